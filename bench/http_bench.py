#!/usr/bin/env python3
"""Small keep-alive GETs against a local nginx: HTTPStream beside other HTTP clients.

What it measures: for each client and each number of concurrent chains (a chain is a
sequence of requests, each sent when the previous response has been read in full), the
requests per second and the CPU time per request the client process spends to fetch
--requests small responses (a 100-byte static file by default) from nginx on loopback.
Each peer is also shown as a ratio to HTTPStream at the same number of chains.

How:
- The script writes an nginx configuration into a temporary directory (one worker pinned
  to one core, access log off, keep-alive limits raised so connections are never
  recycled), starts nginx there on a free 127.0.0.1 port and stops it at the end, also on
  Ctrl-C, SIGTERM or an error. Nothing outside the temporary directory is written.
- Each Python client runs in a fresh subprocess of this script, pinned with
  os.sched_setaffinity to the core nginx does not use. It first sends a warm-up round
  (connections opened, code paths warmed), then the timed round; user+system CPU comes
  from resource.getrusage(RUSAGE_SELF) around the timed round only, together with the
  nginx worker's CPU over the same window (read from /proc), so a run where the server
  was the bottleneck shows up. The subprocess prints one JSON line that the parent reads.
- wrk, the C load generator, is the reference row when installed. It runs for a fixed
  time rather than a fixed count; its CPU is the whole process's (RUSAGE_CHILDREN).
- Every response's status and body length is checked; one wrong response fails the run.
- Each (client, chains) cell runs --repeat times, in a shuffled order per repetition so
  that drift spreads evenly; the table shows medians and the CPU range.

Clients: httpstream (webqq.http_stream.HTTPStream, chained readbacks), tornado
(SimpleAsyncHTTPClient: it never reuses a connection, so every request pays a TCP
connect), tornado-curl (CurlAsyncHTTPClient, when pycurl imports), aiohttp (one
ClientSession, TCPConnector(limit=0)) and wrk.

Run `python bench/http_bench.py --help` for the options; bench/README.md has the setup.
"""
import argparse
import asyncio
import cProfile
import gc
import importlib.util
import json
import os
import platform
import pstats
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request

REPO_ROOT = Path(__file__).resolve().parent.parent

# The body every location serves: 100 bytes, small enough that per-request overhead,
# not byte copying, is what the benchmark sees.
BODY = b"x" * 99 + b"\n"

# Locations nginx serves: /small is a static file (Content-Length framing); /chunked is
# produced by the echo module, so nginx knows no length and sends it chunked. The echo
# directive appends the newline itself.
PATHS = ("/small", "/chunked")

PYTHON_CLIENTS = ("httpstream", "tornado", "tornado-curl", "aiohttp")
ALL_CLIENTS = PYTHON_CLIENTS + ("wrk",)

# A run whose nginx worker was busier than this share of its core measured the server,
# not the client: the table flags it.
SERVER_BOUND_SHARE = 0.8

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A run that cannot give a valid figure: a wrong response, a crash, a timeout."""


# --------------------------------------------------------------------------------------
# The client side: runs inside one subprocess per (client, chains) run.
# --------------------------------------------------------------------------------------

def split(total, chains):
    """Spread `total` requests over `chains` chains as evenly as possible."""
    share, extra = divmod(total, chains)
    return [share + (1 if i < extra else 0) for i in range(chains)]


def check_response(status, body):
    """Return why a response is wrong, or None when it is the expected one."""
    if status != 200:
        return "status %s" % status
    if len(body) != len(BODY):
        return "body of %d bytes, expected %d" % (len(body), len(BODY))
    return None


def process_cpu_seconds(pid):
    """User+system CPU seconds of another process so far, from /proc/PID/stat."""
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


class CoroutineClient:
    """A client driven by coroutines: one task per chain, all on one asyncio loop.

    Subclasses provide open(), chain(count) and aclose(); run() blocks until every
    chain has sent its share.
    """

    def __init__(self, url, chains):
        self.url = url
        self.chains = chains
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.open())

    def run(self, counts):
        async def all_chains():
            await asyncio.gather(*(self.chain(count) for count in counts))

        self.loop.run_until_complete(all_chains())

    def close(self):
        self.loop.run_until_complete(self.aclose())
        self.loop.close()


class TornadoClient(CoroutineClient):
    """Tornado's SimpleAsyncHTTPClient, max_clients raised to the number of chains."""

    implementation = "tornado.simple_httpclient.SimpleAsyncHTTPClient"

    async def open(self):
        from tornado.httpclient import AsyncHTTPClient

        # max_clients defaults to 10: below that many chains, requests would queue.
        AsyncHTTPClient.configure(self.implementation, max_clients=self.chains)
        self.client = AsyncHTTPClient()

    def version(self):
        import tornado

        return "tornado %s" % tornado.version

    async def chain(self, count):
        for _ in range(count):
            response = await self.client.fetch(self.url, raise_error=False)
            problem = check_response(response.code, response.body)
            if problem:
                raise BenchError(problem)

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

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def version(self):
        import aiohttp
        from aiohttp import http_parser

        compiled = getattr(http_parser, "HttpResponseParserC", None)
        parser = "C" if http_parser.HttpResponseParser is compiled else "pure Python"
        return "aiohttp %s (%s parser)" % (aiohttp.__version__, parser)

    async def chain(self, count):
        for _ in range(count):
            async with self.session.get(self.url) as response:
                body = await response.read()
            problem = check_response(response.status, body)
            if problem:
                raise BenchError(problem)

    async def aclose(self):
        await self.session.close()


class HTTPStreamClient:
    """webqq's HTTPStream: each chain is a readback that returns the next request.

    run() adds one request per chain and starts the IOLoop; the last chain to finish
    (or the first failure) stops it.
    """

    def __init__(self, url, chains):
        from tornado.ioloop import IOLoop
        from webqq.http_stream import HTTPStream

        self.url = url
        self.io_loop = IOLoop()
        self.stream = HTTPStream(io_loop=self.io_loop, max_connections=chains)
        self.running = 0
        self.error = None

    def version(self):
        import tornado

        return "HTTPStream on tornado %s" % tornado.version

    def run(self, counts):
        self.running = len(counts)
        for count in counts:
            self.stream.add_request(Request(self.url), readback=self._readback(count),
                                    errback=self._errback)
        self.io_loop.start()
        if self.error:
            raise BenchError(self.error)

    def _readback(self, count):
        left = count

        def readback(response):
            nonlocal left
            problem = check_response(response.status, response.read())
            if problem:
                self._fail(problem)
                return None
            left -= 1
            if left:
                return Request(self.url), readback
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

    def close(self):
        self.stream.close()
        self.io_loop.close()


CLIENT_CLASSES = {
    "httpstream": HTTPStreamClient,
    "tornado": TornadoClient,
    "tornado-curl": TornadoCurlClient,
    "aiohttp": AiohttpClient,
}


def run_worker(job):
    """One client run inside this subprocess; prints its figures as one JSON line."""
    if job["cpu"] is not None:
        os.sched_setaffinity(0, {job["cpu"]})
    client = CLIENT_CLASSES[job["client"]](job["url"], job["chains"])
    client.run(split(job["warmup"], job["chains"]))
    gc.collect()
    profiler = cProfile.Profile() if job["profile"] else None

    server_before = process_cpu_seconds(job["server_pid"])
    machine_before = machine_cpu_seconds()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    client.run(split(job["requests"], job["chains"]))
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = process_cpu_seconds(job["server_pid"]) - server_before
    machine_cpu = machine_cpu_seconds() - machine_before

    version = client.version()
    client.close()
    if profiler:
        profiler.dump_stats(job["profile"])
    cpu = (usage_after.ru_utime - usage_before.ru_utime
           + usage_after.ru_stime - usage_before.ru_stime)
    print(json.dumps({"requests": job["requests"], "wall": wall, "cpu": cpu,
                      "server_cpu": server_cpu, "machine_cpu": machine_cpu,
                      "version": version}))


# --------------------------------------------------------------------------------------
# The server: nginx in a temporary prefix.
# --------------------------------------------------------------------------------------

class Nginx:
    """One nginx master and worker under `prefix`, listening on 127.0.0.1 only.

    The worker is pinned to `cpu` with worker_cpu_affinity. start() returns once the
    port accepts; stop() is safe to call twice and kills nginx if it does not exit.
    """

    def __init__(self, binary, prefix, cpu):
        self.binary = binary
        self.prefix = Path(prefix)
        self.cpu = cpu
        self.port = free_port()
        self.echo_module = find_echo_module(binary)
        self.process = None
        self.worker_pid = None

    def config(self):
        p = self.prefix
        lines = []
        if self.echo_module:
            lines.append("load_module %s;" % self.echo_module)
        lines += [
            "worker_processes 1;",
            "pid %s/nginx.pid;" % p,
            "lock_file %s/nginx.lock;" % p,
            "error_log %s/error.log warn;" % p,
        ]
        if self.cpu is not None:
            # A bit mask, lowest bit = core 0.
            lines.append("worker_cpu_affinity %s;" % format(1 << self.cpu, "b"))
        lines += [
            "events { worker_connections 4096; }",
            "http {",
            "    access_log off;",
            # The compiled-in temp paths are under /var/lib/nginx: keep them in the prefix.
            "    client_body_temp_path %s/tmp/body;" % p,
            "    proxy_temp_path %s/tmp/proxy;" % p,
            "    fastcgi_temp_path %s/tmp/fastcgi;" % p,
            "    uwsgi_temp_path %s/tmp/uwsgi;" % p,
            "    scgi_temp_path %s/tmp/scgi;" % p,
            "    default_type text/plain;",
            "    sendfile on;",
            "    tcp_nodelay on;",
            "    gzip off;",
            # Saves nginx an open() and fstat() of /small per request.
            "    open_file_cache max=16 inactive=300s;",
            "    open_file_cache_valid 300s;",
            # The default of 1000 would close every 1000th keep-alive connection.
            "    keepalive_requests 1000000;",
            "    keepalive_timeout 300s;",
            "    server {",
            "        listen 127.0.0.1:%d backlog=4096;" % self.port,
            "        root %s/html;" % p,
            "        location = /small { }",
        ]
        if self.echo_module:
            lines.append('        location = /chunked { echo "%s"; }'
                         % BODY.rstrip(b"\n").decode())
        lines += ["    }", "}"]
        return "\n".join(lines) + "\n"

    def start(self):
        (self.prefix / "html").mkdir()
        (self.prefix / "tmp").mkdir()
        (self.prefix / "html" / "small").write_bytes(BODY)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config())
        # Started as root, the worker runs as nobody: it must be able to read the prefix.
        for path in (self.prefix, self.prefix / "html", self.prefix / "html" / "small"):
            path.chmod(0o755)
        # A session of its own: Ctrl-C reaches the script, which then stops nginx itself.
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(conf),
             "-e", str(self.prefix / "error.log"), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError("nginx exited with %s:\n%s"
                                 % (self.process.returncode, self.error_log()))
            self.worker_pid = child_pid(self.process.pid)
            if self.worker_pid and accepts(self.port):
                return
            time.sleep(0.05)
        raise BenchError("nginx did not accept on port %d within 10 s" % self.port)

    def error_log(self):
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def child_pid(parent):
    """The pid of one child of `parent` (nginx's only worker), or None yet."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == parent:
            return int(entry)
    return None


def find_echo_module(binary):
    """Path of Debian's echo module for this nginx, or None when it is not installed."""
    configure = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    found = re.search(r"--modules-path=(\S+)", configure)
    if not found:
        return None
    module = Path(found.group(1)) / "ngx_http_echo_module.so"
    return module if module.exists() else None


# --------------------------------------------------------------------------------------
# The parent: plans the runs, starts each one, collects and prints.
# --------------------------------------------------------------------------------------

def unavailable(client):
    """Why `client` cannot run here, or None when it can."""
    if client == "wrk":
        return None if shutil.which("wrk") else "wrk not installed (apt-get install wrk)"
    if client == "httpstream":
        # Looked for, not imported: the parent stays free of the clients' imports.
        if (REPO_ROOT / "webqq" / "http_stream.py").exists():
            return None
        return "webqq/http_stream.py does not exist yet"
    module = {"tornado": "tornado", "tornado-curl": "pycurl", "aiohttp": "aiohttp"}[client]
    return None if importlib.util.find_spec(module) else "%s is not installed" % module


def worker_env():
    """The environment of a client subprocess: webqq importable from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      env.get("PYTHONPATH")]))
    return env


def run_python_client(client, url, chains, args, server_pid, cpu, profile=None):
    job = {"client": client, "url": url, "chains": chains, "requests": args.requests,
           "warmup": max(chains, args.requests // 10), "cpu": cpu,
           "server_pid": server_pid, "profile": profile}
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)],
                              capture_output=True, text=True, timeout=args.timeout,
                              env=worker_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError("no result within --timeout %s s" % args.timeout) from None
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise BenchError("exit status %d: %s" % (done.returncode, tail[0]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_wrk(url, chains, args, server_pid, cpu):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = process_cpu_seconds(server_pid)
    machine_before = machine_cpu_seconds()
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    started = time.perf_counter()
    try:
        done = subprocess.run(
            ["wrk", "-t1", "-c%d" % chains, "-d%ds" % args.wrk_seconds, url],
            capture_output=True, text=True, preexec_fn=pin, stdin=subprocess.DEVNULL,
            timeout=args.wrk_seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError("wrk did not finish") from None
    wall = time.perf_counter() - started
    server_cpu = process_cpu_seconds(server_pid) - server_before
    machine_cpu = machine_cpu_seconds() - machine_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    counted = re.search(r"(\d+) requests in", done.stdout)
    if done.returncode or not counted:
        raise BenchError("wrk failed: %s" % (done.stderr or done.stdout).strip())
    if re.search(r"Non-2xx|Socket errors", done.stdout):
        raise BenchError("wrk saw errors:\n" + done.stdout)
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {"requests": int(counted.group(1)), "wall": wall,
            "cpu": (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime),
            "server_cpu": server_cpu, "machine_cpu": machine_cpu,
            "version": version.split(" Copyright")[0].strip()}


def summarize(cells, clients, paths):
    """Medians per cell and ratios to HTTPStream at the same path and chains."""
    rows = []
    for (path, chains, client), runs in cells.items():
        if not runs:
            continue
        rps = [r["requests"] / r["wall"] for r in runs]
        cpu_us = [r["cpu"] / r["requests"] * 1e6 for r in runs]
        server = [r["server_cpu"] / r["wall"] for r in runs]
        # Whatever other processes ran meanwhile: busy neighbours on the client's core
        # lower req/s (the client waits for the core) more than CPU per request.
        others = [max(0.0, r["machine_cpu"] - r["cpu"] - r["server_cpu"]) / r["wall"]
                  for r in runs]
        rows.append({"client": client, "path": path, "chains": chains, "runs": len(runs),
                     "rps": statistics.median(rps), "cpu_us": statistics.median(cpu_us),
                     "cpu_us_min": min(cpu_us), "cpu_us_max": max(cpu_us),
                     "server_share": max(server), "others_share": max(others)})
    base = {(r["path"], r["chains"]): r for r in rows if r["client"] == "httpstream"}
    for row in rows:
        ours = base.get((row["path"], row["chains"]))
        row["rps_ratio"] = row["rps"] / ours["rps"] if ours else None
        row["cpu_ratio"] = row["cpu_us"] / ours["cpu_us"] if ours else None
    rows.sort(key=lambda r: (paths.index(r["path"]), r["chains"], clients.index(r["client"])))
    return rows


def format_ratio(ratio):
    return "-" if ratio is None else "%.2f" % ratio


def print_table(rows, report):
    header = ("client", "path", "chains", "req/s", "CPU µs/req", "CPU range",
              "req/s ×HS", "CPU ×HS", "nginx CPU", "others")
    lines = [header]
    for r in rows:
        flag = " server-bound" if r["server_share"] > SERVER_BOUND_SHARE else ""
        lines.append((r["client"], r["path"], str(r["chains"]), "%.0f" % r["rps"],
                      "%.1f" % r["cpu_us"],
                      "%.1f-%.1f" % (r["cpu_us_min"], r["cpu_us_max"]),
                      format_ratio(r["rps_ratio"]), format_ratio(r["cpu_ratio"]),
                      "%.0f%%%s" % (100 * r["server_share"], flag),
                      "%.0f%%" % (100 * r["others_share"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("×HS: the peer's figure divided by HTTPStream's at the same path and chains "
          "(req/s: above 1 is faster; CPU: above 1 costs more).")
    print("nginx CPU: the busiest run's nginx worker CPU over its timed window "
          "(above %d%% the server, not the client, was the limit)."
          % (100 * SERVER_BOUND_SHARE))
    print("others: the most CPU anything else used during one of the cell's timed windows, "
          "in % of one core.")
    print("Date %s; %d timed requests per run (wrk: %d s per run), median of %d runs; "
          "seed %d." % (report["date"], report["requests"], report["wrk_seconds"],
                        report["repeat"], report["seed"]))
    for name, version in report["versions"].items():
        print("  %-12s %s" % (name, version))
    for note in report["notes"]:
        print("Note: " + note)


def write_profile_summary(profile, out):
    with open(out, "w") as f:
        stats = pstats.Stats(str(profile), stream=f)
        stats.strip_dirs()
        for order in ("tottime", "cumulative"):
            print("== top 15 by %s ==" % order, file=f)
            stats.sort_stats(order).print_stats(15)


def httpstream_version():
    """Which HTTPStream was measured: its last commit, and whether it has edits since."""
    git = ["git", "-C", str(REPO_ROOT)]
    path = "webqq/http_stream.py"
    last = subprocess.run(git + ["log", "-1", "--format=%h %cs", "--", path],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--", path],
                           capture_output=True, text=True).stdout.strip()
    return "%s%s" % (last or "uncommitted", " + uncommitted edits" if dirty and last else "")


def parse_args():
    parser = argparse.ArgumentParser(
        description="Small keep-alive GETs against a local nginx: HTTPStream, Tornado's "
                    "AsyncHTTPClient, aiohttp and wrk, side by side.")
    parser.add_argument("--requests", type=int, default=20000,
                        help="timed requests per Python client run (default 20000); "
                             "a tenth more are sent first as a warm-up")
    parser.add_argument("--chains", default="1,16,64",
                        help="comma-separated numbers of concurrent chains (default 1,16,64)")
    parser.add_argument("--clients", default="httpstream,tornado,aiohttp,wrk",
                        help="comma-separated, from %s (default "
                             "httpstream,tornado,aiohttp,wrk)" % ",".join(ALL_CLIENTS))
    parser.add_argument("--paths", default="/small",
                        help="comma-separated locations: /small (Content-Length) and, "
                             "with the echo module, /chunked (default /small)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per cell, the table shows the median (default 3)")
    parser.add_argument("--wrk-seconds", type=int, default=3,
                        help="duration of each wrk run (default 3)")
    parser.add_argument("--timeout", type=float, default=180,
                        help="seconds one client run may take before it fails (default 180)")
    parser.add_argument("--seed", type=int, help="seed of the run order (default: random)")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx",
                        help="the nginx binary (default: from PATH)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="after the benchmark, one extra cProfile'd HTTPStream run per "
                             "chains value: PREFIX-cN.prof and a top-15 PREFIX-cN.txt")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON document instead of a table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return args
    args.chains = [int(c) for c in args.chains.split(",")]
    args.clients = args.clients.split(",")
    args.paths = args.paths.split(",")
    for client in args.clients:
        if client not in ALL_CLIENTS:
            parser.error("unknown client %r; choose from %s" % (client, ", ".join(ALL_CLIENTS)))
    for path in args.paths:
        if path not in PATHS:
            parser.error("unknown path %r; choose from %s" % (path, ", ".join(PATHS)))
    if min(args.chains) < 1 or args.requests < max(args.chains):
        parser.error("--chains must be >= 1 and --requests >= the largest chains value")
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    return args


def main():
    args = parse_args()
    if args.worker:
        run_worker(json.loads(args.worker))
        return 0
    # SIGTERM unwinds like Ctrl-C, so the finally clauses stop nginx and remove the prefix.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    notes = []
    clients = []
    for client in args.clients:
        reason = unavailable(client)
        if reason:
            notes.append("%s skipped: %s" % (client, reason))
        else:
            clients.append(client)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        server_cpu, client_cpu = cores[0], cores[1]
    else:
        server_cpu = client_cpu = None
        notes.append("only one core available: nothing pinned, server and client share it")
    if not os.path.exists(args.nginx):
        print("nginx not found at %s: apt-get install nginx-light (see bench/README.md)"
              % args.nginx, file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="http_bench-") as prefix:
        nginx = Nginx(args.nginx, prefix, server_cpu)
        if "/chunked" in args.paths and not nginx.echo_module:
            notes.append("/chunked skipped: the echo module is not installed "
                         "(apt-get install libnginx-mod-http-echo)")
            args.paths.remove("/chunked")
        try:
            nginx.start()
            cells = run_all(nginx, clients, args, client_cpu, notes)
            if args.profile:
                profile_httpstream(nginx, clients, args, client_cpu, notes)
        finally:
            nginx.stop()

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "requests": args.requests, "wrk_seconds": args.wrk_seconds, "repeat": args.repeat,
        "seed": args.seed, "server_cpu": server_cpu, "client_cpu": client_cpu,
        "versions": versions(args.nginx, cells, clients), "notes": notes,
        "results": summarize(cells, clients, args.paths),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report["results"], report)
    return 0


def run_all(nginx, clients, args, client_cpu, notes):
    """Every (path, chains, client) cell --repeat times, shuffled per repetition."""
    plan = [(path, chains, client) for path in args.paths for chains in args.chains
            for client in clients]
    cells = {cell: [] for cell in plan}
    rng = random.Random(args.seed)
    total = len(plan) * args.repeat
    done = 0
    for repetition in range(args.repeat):
        order = plan[:]
        rng.shuffle(order)
        for path, chains, client in order:
            done += 1
            url = nginx.url(path)
            try:
                if client == "wrk":
                    result = run_wrk(url, chains, args, nginx.worker_pid, client_cpu)
                else:
                    result = run_python_client(client, url, chains, args,
                                               nginx.worker_pid, client_cpu)
            except BenchError as e:
                notes.append("%s %s chains=%d run %d failed: %s"
                             % (client, path, chains, repetition + 1, e))
                progress = "FAILED: %s" % e
            else:
                cells[(path, chains, client)].append(result)
                progress = "%.0f req/s, %.1f µs CPU/req" % (
                    result["requests"] / result["wall"],
                    result["cpu"] / result["requests"] * 1e6)
            print("[%d/%d] %s %s chains=%d: %s" % (done, total, client, path, chains,
                                                    progress), file=sys.stderr, flush=True)
    return cells


def profile_httpstream(nginx, clients, args, client_cpu, notes):
    if "httpstream" not in clients:
        notes.append("--profile ignored: httpstream is not among the clients run")
        return
    for chains in args.chains:
        profile = Path("%s-c%d.prof" % (args.profile, chains)).resolve()
        try:
            run_python_client("httpstream", nginx.url(args.paths[0]), chains, args,
                              nginx.worker_pid, client_cpu, profile=str(profile))
        except BenchError as e:
            notes.append("profiled httpstream run at %d chains failed: %s" % (chains, e))
            continue
        summary = profile.with_suffix(".txt")
        write_profile_summary(profile, summary)
        notes.append("profile of httpstream at %d chains (not in the table): %s, %s"
                     % (chains, profile, summary))


def versions(nginx_binary, cells, clients):
    """The versions each client reported from its own process, plus Python and nginx."""
    found = {"python": "%s %s" % (platform.python_implementation(),
                                  platform.python_version())}
    nginx = subprocess.run([nginx_binary, "-v"], capture_output=True, text=True).stderr
    found["nginx"] = nginx.strip().replace("nginx version: ", "")
    for client in clients:
        reported = [r["version"] for (_, _, c), runs in cells.items() if c == client
                    for r in runs]
        if reported:
            found[client] = reported[0]
    if "httpstream" in found:
        found["httpstream"] += ", webqq/http_stream.py at %s" % httpstream_version()
    return found


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; nginx stopped and its directory removed", file=sys.stderr)
        sys.exit(130)
    except BenchError as e:
        print("http_bench: %s" % e, file=sys.stderr)
        sys.exit(1)
