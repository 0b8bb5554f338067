"""The client side of bench/http_bench.py: one class per HTTP client, and the workloads.

http_bench.py starts `python http_bench.py --worker JOB` once per run; that subprocess
calls run_worker(job) here, which builds one client, runs one workload and prints its
figures as one JSON line. Nothing here imports a client library at module level, so the
parent process stays free of them.

Every client offers the same four operations:
- run_chains(url, counts, expected, latencies=None): len(counts) concurrent chains, chain
  i sending counts[i] requests one after the other; every response's status and body
  length is checked; with a `latencies` list, each request's seconds (perf_counter from
  send to the whole body) are appended to it. Blocks until every chain is done.
- hold(url, n): starts n requests whose responses come late (long polls) and returns at
  once; sleep(seconds) lets the client run meanwhile; hold_problem() says what went
  wrong with them so far (an error, or a response that came back early).
- version() and close().
"""
import asyncio
import gc
import http.client
import json
import os
import re
import resource
import statistics
import sys
import time
from time import perf_counter
from urllib.request import Request

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A run that cannot give a valid figure: a wrong response, a crash, a timeout."""


def split(total, chains):
    """Spread `total` requests over `chains` chains as evenly as possible."""
    share, extra = divmod(total, chains)
    return [share + (1 if i < extra else 0) for i in range(chains)]


def check_response(status, body, expected):
    """Return why a response is wrong, or None when it is the expected one."""
    if status != 200:
        return "status %s" % status
    if len(body) != expected:
        return "body of %d bytes, expected %d" % (len(body), expected)
    return None


def process_cpu_seconds(pid):
    """User+system CPU seconds of a process so far, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_seconds():
    """CPU seconds all processes together have spent on all cores so far (/proc/stat).

    Interrupt and softirq time are left out: this kernel charges them to no process,
    and loopback packet processing, which every client causes alike, lands there.
    """
    with open("/proc/stat") as f:
        user, nice, system = map(int, f.readline().split()[1:4])
    return (user + nice + system) / CLK_TCK


def memory_kib(field, pid="self"):
    """A Vm* line of /proc/PID/status (VmRSS: resident now, VmHWM: its peak), in KiB."""
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError("no %s in /proc/%s/status" % (field, pid))


def reset_peak_rss():
    """Make VmHWM start again from the current RSS (Linux: 5 into clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def held_requests(status_url):
    """Requests nginx is processing now, from its stub_status 'Writing' count.

    A long poll waiting in echo_sleep counts as writing; this status request itself
    counts too, so it is taken off.
    """
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", status_url).groups()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return int(re.search(r"Writing: (\d+)", text).group(1)) - 1


def percentile(sorted_values, share):
    """The value below which `share` of the sorted values lie (nearest rank)."""
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def raise_fd_limit():
    """Soft RLIMIT_NOFILE up to the hard limit: 10,000 held requests need the fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------------------
# The clients.
# --------------------------------------------------------------------------------------

class CoroutineClient:
    """A client driven by coroutines on one asyncio loop: one task per chain.

    Subclasses provide open(), get(url) -> (status, body) and aclose().
    """

    def __init__(self, limit, timeout):
        self.limit = limit          # connections the client may open at once
        self.timeout = timeout      # seconds one request may take
        self.held = []
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.open())

    async def chain(self, url, count, expected, latencies):
        get = self.get
        for _ in range(count):
            if latencies is None:
                status, body = await get(url)
            else:
                started = perf_counter()
                status, body = await get(url)
                latencies.append(perf_counter() - started)
            problem = check_response(status, body, expected)
            if problem:
                raise BenchError(problem)

    def run_chains(self, url, counts, expected, latencies=None):
        async def all_chains():
            await asyncio.gather(*(self.chain(url, count, expected, latencies)
                                   for count in counts))

        self.loop.run_until_complete(all_chains())

    def hold(self, url, n):
        self.held += [self.loop.create_task(self.get(url)) for _ in range(n)]

    def sleep(self, seconds):
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def hold_problem(self):
        for task in self.held:
            if task.done():
                error = task.exception()
                return "a held request ended early: %r" % (error or task.result()[0])
        return None

    def close(self):
        for task in self.held:
            task.cancel()
        if self.held:
            self.loop.run_until_complete(asyncio.gather(*self.held, return_exceptions=True))
        self.loop.run_until_complete(self.aclose())
        self.loop.close()


class TornadoClient(CoroutineClient):
    """Tornado's SimpleAsyncHTTPClient, max_clients raised to the limit (default 10)."""

    implementation = "tornado.simple_httpclient.SimpleAsyncHTTPClient"

    async def open(self):
        from tornado.httpclient import AsyncHTTPClient

        AsyncHTTPClient.configure(self.implementation, max_clients=self.limit)
        self.client = AsyncHTTPClient()

    def version(self):
        import tornado

        return "tornado %s" % tornado.version

    async def get(self, url):
        response = await self.client.fetch(url, raise_error=False,
                                           connect_timeout=self.timeout,
                                           request_timeout=self.timeout)
        return response.code, response.body

    async def aclose(self):
        self.client.close()


class TornadoCurlClient(TornadoClient):
    """Tornado's CurlAsyncHTTPClient: libcurl keeps connections alive between requests."""

    implementation = "tornado.curl_httpclient.CurlAsyncHTTPClient"

    def version(self):
        import pycurl

        # pycurl.version lists every library libcurl links; the first two matter here.
        return "%s, %s" % (super().version(), " ".join(pycurl.version.split()[:2]))


class AiohttpClient(CoroutineClient):
    """aiohttp: one ClientSession whose connector has no connection limit."""

    async def open(self):
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=self.timeout))

    def version(self):
        import aiohttp
        from aiohttp import http_parser

        compiled = getattr(http_parser, "HttpResponseParserC", None)
        parser = "C" if http_parser.HttpResponseParser is compiled else "pure Python"
        return "aiohttp %s (%s parser)" % (aiohttp.__version__, parser)

    async def get(self, url):
        async with self.session.get(url) as response:
            return response.status, await response.read()

    async def aclose(self):
        await self.session.close()


class HttpxClient(CoroutineClient):
    """httpx: one AsyncClient, its pool (default 100, 20 kept alive) and timeouts
    (default 5 s) raised; trust_env off so no proxy variable can reroute it."""

    async def open(self):
        import httpx

        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=self.limit,
                                max_keepalive_connections=self.limit),
            timeout=httpx.Timeout(self.timeout), trust_env=False)

    def version(self):
        import anyio
        import h11
        import httpcore
        import httpx

        return "httpx %s (httpcore %s, h11 %s, anyio %s)" % (
            httpx.__version__, httpcore.__version__, h11.__version__,
            getattr(anyio, "__version__", None) or _dist_version("anyio"))

    async def get(self, url):
        response = await self.client.get(url)
        return response.status_code, response.content

    async def aclose(self):
        await self.client.aclose()


def _dist_version(name):
    from importlib.metadata import version

    return version(name)


class UrllibClient:
    """urllib.request in a ThreadPoolExecutor of `limit` threads, one chain per thread.

    urllib sends Connection: close, so every request opens a TCP connection. The opener
    has no ProxyHandler, so no proxy variable can reroute it.
    """

    def __init__(self, limit, timeout):
        import urllib.request
        from concurrent.futures import ThreadPoolExecutor

        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.executor = ThreadPoolExecutor(max_workers=limit)
        self.held = []

    def version(self):
        return "urllib.request (Python %s), ThreadPoolExecutor" % sys.version.split()[0]

    def get(self, url):
        with self.opener.open(url, timeout=self.timeout) as response:
            return response.status, response.read()

    def chain(self, url, count, expected, latencies):
        for _ in range(count):
            started = perf_counter()
            status, body = self.get(url)
            if latencies is not None:
                latencies.append(perf_counter() - started)
            problem = check_response(status, body, expected)
            if problem:
                raise BenchError(problem)

    def run_chains(self, url, counts, expected, latencies=None):
        futures = [self.executor.submit(self.chain, url, count, expected, latencies)
                   for count in counts]
        for future in futures:
            future.result()

    def hold(self, url, n):
        self.held += [self.executor.submit(self.get, url) for _ in range(n)]

    def sleep(self, seconds):
        time.sleep(seconds)

    def hold_problem(self):
        for future in self.held:
            if future.done():
                error = future.exception()
                return "a held request ended early: %r" % (error or future.result()[0])
        return None

    def close(self):
        # Held threads are blocked in recv(); the worker exits without joining them.
        self.executor.shutdown(wait=False, cancel_futures=True)


class HTTPStreamClient:
    """webqq's HTTPStream: each chain is a readback that returns the next request.

    run_chains() adds one request per chain and starts the IOLoop; the last chain to
    finish (or the first failure) stops it.
    """

    def __init__(self, limit, timeout):
        from tornado.ioloop import IOLoop
        from webqq.http_stream import HTTPStream

        self.io_loop = IOLoop()
        self.stream = HTTPStream(io_loop=self.io_loop, max_connections=limit,
                                 connect_timeout=timeout, request_timeout=timeout)
        self.running = 0
        self.error = None
        self.hold_error = None

    def version(self):
        import tornado

        return "HTTPStream on tornado %s" % tornado.version

    def run_chains(self, url, counts, expected, latencies=None):
        self.running = len(counts)
        for count in counts:
            readback = self._readback(url, count, expected, latencies)
            self.stream.add_request(Request(url), readback=readback, errback=self._errback)
        self.io_loop.start()
        if self.error:
            raise BenchError(self.error)

    def _readback(self, url, count, expected, latencies):
        left = count
        started = perf_counter()

        def readback(response):
            nonlocal left, started
            if latencies is not None:
                latencies.append(perf_counter() - started)
            problem = check_response(response.status, response.read(), expected)
            if problem:
                self._fail(problem)
                return None
            left -= 1
            if left:
                if latencies is not None:
                    started = perf_counter()
                return Request(url), readback
            self.running -= 1
            if not self.running:
                self.io_loop.stop()
            return None

        return readback

    def _errback(self, request, exc):
        self._fail("%s failed: %r" % (request.full_url, exc))

    def _fail(self, problem):
        self.error = self.error or problem
        self.io_loop.stop()

    def hold(self, url, n):
        for _ in range(n):
            self.stream.add_request(Request(url), readback=self._held_back,
                                    errback=self._held_error)

    def _held_back(self, response):
        self.hold_error = self.hold_error or "a held request ended early: %s" % response.status

    def _held_error(self, request, exc):
        self.hold_error = self.hold_error or "a held request failed: %r" % exc

    def sleep(self, seconds):
        self.io_loop.call_later(seconds, self.io_loop.stop)
        self.io_loop.start()

    def hold_problem(self):
        return self.hold_error

    def close(self):
        self.stream.close()
        self.io_loop.close()


CLIENT_CLASSES = {
    "httpstream": HTTPStreamClient,
    "tornado": TornadoClient,
    "tornado-curl": TornadoCurlClient,
    "aiohttp": AiohttpClient,
    "httpx": HttpxClient,
    "urllib": UrllibClient,
}


# --------------------------------------------------------------------------------------
# The workloads: each returns the dict that the worker prints as JSON.
# --------------------------------------------------------------------------------------

def cpu_seconds(before, after):
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def chains_workload(client, job, profiler):
    """--requests small GETs over `chains` concurrent keep-alive chains."""
    counts = split(job["requests"], job["chains"])
    client.run_chains(job["url"], split(job["warmup"], job["chains"]), job["expected"])
    gc.collect()
    server_before = process_cpu_seconds(job["server_pid"])
    machine_before = machine_cpu_seconds()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = perf_counter()
    if profiler:
        profiler.enable()
    client.run_chains(job["url"], counts, job["expected"])
    if profiler:
        profiler.disable()
    wall = perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    return {"requests": job["requests"], "wall": wall,
            "cpu": cpu_seconds(usage_before, usage_after),
            "server_cpu": process_cpu_seconds(job["server_pid"]) - server_before,
            "machine_cpu": machine_cpu_seconds() - machine_before}


def latency_workload(client, job, profiler):
    """One chain: each request's seconds from send to the whole body."""
    client.run_chains(job["url"], [job["warmup"]], job["expected"])
    gc.collect()
    latencies = []
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = perf_counter()
    client.run_chains(job["url"], [job["requests"]], job["expected"], latencies)
    wall = perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    return {"requests": len(latencies), "wall": wall,
            "cpu": cpu_seconds(usage_before, usage_after),
            "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
            "mean": statistics.fmean(latencies)}


def body_workload(client, job, profiler):
    """--body-requests sequential GETs of one large static file, on a warm connection.

    Peak RSS growth: VmHWM is reset to the current RSS right before the timed GETs, so
    (VmHWM after - VmRSS before) is the most memory the client held at once for a body.
    """
    client.run_chains(job["small_url"], [2], job["small_expected"])
    client.run_chains(job["url"], [1], job["expected"])
    gc.collect()
    reset_peak_rss()
    rss_before = memory_kib("VmRSS")
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = perf_counter()
    client.run_chains(job["url"], [job["requests"]], job["expected"])
    wall = perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    return {"requests": job["requests"], "wall": wall,
            "cpu": cpu_seconds(usage_before, usage_after),
            "peak_kib": memory_kib("VmHWM") - rss_before}


def idle_workload(client, job, profiler):
    """N long polls held open: RSS per held connection, then CPU over an idle window.

    The requests go out in batches (the same ramp for every client, so nginx's accept
    backlog never overflows) until nginx's stub_status shows all N in its hands.
    """
    n = job["n"]
    client.run_chains(job["small_url"], [2], job["small_expected"])
    gc.collect()
    rss_base = memory_kib("VmRSS")
    started = perf_counter()
    deadline = started + job["ramp_timeout"]
    sent = 0
    while sent < n:
        batch = min(job["batch"], n - sent)
        client.hold(job["url"], batch)
        sent += batch
        client.sleep(job["batch_pause"])
    while True:
        problem = client.hold_problem()
        if problem:
            raise BenchError(problem)
        held = held_requests(job["status_url"])
        if held >= n:
            break
        if perf_counter() > deadline:
            raise BenchError("only %d of %d requests held after %d s"
                             % (held, n, job["ramp_timeout"]))
        client.sleep(0.5)
    ramp = perf_counter() - started
    gc.collect()
    client.sleep(job["settle"])
    rss_held = memory_kib("VmRSS")
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    idle_started = perf_counter()
    client.sleep(job["window"])
    idle_wall = perf_counter() - idle_started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    problem = client.hold_problem()
    if problem:
        raise BenchError(problem)
    still_held = held_requests(job["status_url"])
    if still_held < n:
        raise BenchError("%d of %d requests still held after the idle window"
                         % (still_held, n))
    return {"n": n, "ramp": ramp, "rss_setup_kib": job["rss_start_kib"],
            "rss_base_kib": rss_base, "rss_held_kib": rss_held,
            "idle_wall": idle_wall, "idle_cpu": cpu_seconds(usage_before, usage_after),
            "idle_wakeups": usage_after.ru_nvcsw - usage_before.ru_nvcsw}


WORKLOADS = {"chains": chains_workload, "latency": latency_workload,
             "body": body_workload, "idle": idle_workload}


def run_worker(job):
    """One client run inside this subprocess; prints its figures as one JSON line."""
    import cProfile

    raise_fd_limit()
    if job["cpu"] is not None:
        os.sched_setaffinity(0, {job["cpu"]})
    job["rss_start_kib"] = memory_kib("VmRSS")  # interpreter and this module, no client yet
    client = CLIENT_CLASSES[job["client"]](job["limit"], job["timeout"])
    profiler = cProfile.Profile() if job.get("profile") else None
    result = WORKLOADS[job["workload"]](client, job, profiler)
    result["version"] = client.version()
    if profiler:
        profiler.dump_stats(job["profile"])
    print(json.dumps(result), flush=True)
    if job["workload"] == "idle":
        # Thousands of held requests: closing them one by one only costs time here.
        os._exit(0)
    client.close()
