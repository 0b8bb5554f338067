#!/usr/bin/env python3
"""HTTPStream beside other HTTP clients, against a local nginx: four workloads.

Workloads (--workloads, all four by default):
- latency: one sequential chain (each request sent when the previous response has been
  read in full); p50 and p99 of each request's time from send to the whole body
  (time.perf_counter around it), and CPU per request.
- chains: 1, 16, 64 and 256 concurrent keep-alive chains sharing --requests small
  GETs; requests per second, CPU microseconds per request and CPU seconds per 1,000
  requests in the client process.
- idle: 10,000 long polls held open by nginx (echo_sleep, longer than the run); the
  client's RSS growth per held connection, then its CPU and wake-ups over an idle window.
- body: sequential GETs of one 10 MiB static file; time, CPU and peak RSS growth per
  response.
Every peer's figure is also printed as a ratio to HTTPStream's in the same cell.

How:
- The script writes an nginx configuration into a temporary directory (one worker pinned
  to one core, access log off, keep-alive limits raised so connections are never
  recycled, 15,000 worker connections), starts nginx there on a free 127.0.0.1 port and
  stops it at the end, also on Ctrl-C, SIGTERM or an error. Each idle run gets an nginx
  of its own, because echo_sleep keeps a request until its timer fires even after the
  client has gone. Nothing outside the temporary directories is written.
- Each Python client runs in a fresh subprocess of this script (bench/_peers.py holds
  the client side, bench/_nginx.py the server's configuration), pinned with
  os.sched_setaffinity to the core nginx does not use, with RLIMIT_NOFILE raised to its
  hard limit. It warms up first (connections opened,
  code paths warmed), then runs the measured part; user+system CPU comes from
  resource.getrusage(RUSAGE_SELF) around it, memory from /proc/self/status. The
  subprocess prints one JSON line that the parent reads.
- wrk, the C load generator, is the reference row when installed. It runs for a fixed
  time rather than a fixed count; its CPU is the whole process's (RUSAGE_CHILDREN, or
  /proc/PID/stat while it holds long polls).
- Every response's status and body length is checked; one wrong response fails the run.
- Each cell runs --repeat times (idle: --idle-repeat), in a shuffled order per
  repetition so that drift spreads evenly; the tables show medians.

Clients: httpstream (webqq.http_stream.HTTPStream, chained readbacks), tornado
(SimpleAsyncHTTPClient: it never reuses a connection, so every request pays a TCP
connect), tornado-curl (CurlAsyncHTTPClient, when pycurl imports), aiohttp (one
ClientSession, TCPConnector(limit=0)), httpx (one AsyncClient, limits and timeouts
raised), urllib (urllib.request in a thread pool, Connection: close) and wrk.

Run `python bench/http_bench.py --help` for the options; bench/README.md has the setup.
"""
import argparse
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _nginx import BIG_SIZE, BODY, PATHS, Nginx
from _peers import (BenchError, held_requests, machine_cpu_seconds, memory_kib,
                    process_cpu_seconds, run_worker)

REPO_ROOT = Path(__file__).resolve().parent.parent

PYTHON_CLIENTS = ("httpstream", "tornado", "tornado-curl", "aiohttp", "httpx", "urllib")
ALL_CLIENTS = PYTHON_CLIENTS + ("wrk",)
WORKLOADS = ("latency", "chains", "idle", "body")

# A run whose nginx worker was busier than this share of its core measured the server,
# not the client: the table flags it.
SERVER_BOUND_SHARE = 0.8

# The idle workload's ramp: this many long polls, then a pause, until all are sent.
IDLE_BATCH = 500
IDLE_BATCH_PAUSE = 0.25
# Seconds between all held and the RSS sample (gc.collect() first), and the most the
# ramp may take: httpx needs over two minutes for 10,000 (its pool is scanned per request).
IDLE_SETTLE = 2
IDLE_RAMP_TIMEOUT = 240


# --------------------------------------------------------------------------------------
# The parent: plans the runs, starts each one, collects and prints.
# --------------------------------------------------------------------------------------

def unavailable(client):
    """Why `client` cannot run here, or None when it can."""
    if client == "wrk":
        return None if shutil.which("wrk") else "wrk not installed (apt-get install wrk)"
    if client == "urllib":
        return None
    if client == "httpstream":
        # Looked for, not imported: the parent stays free of the clients' imports.
        if (REPO_ROOT / "webqq" / "http_stream.py").exists():
            return None
        return "webqq/http_stream.py does not exist yet"
    module = {"tornado": "tornado", "tornado-curl": "pycurl", "aiohttp": "aiohttp",
              "httpx": "httpx"}[client]
    return None if importlib.util.find_spec(module) else "%s is not installed" % module


def worker_env():
    """The environment of a client subprocess: webqq importable from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      env.get("PYTHONPATH")]))
    return env


def run_python_client(job, args):
    """Run `job` in a fresh subprocess; its figures, or BenchError."""
    timeout = args.timeout + (IDLE_RAMP_TIMEOUT if job["workload"] == "idle" else 0)
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)],
                              capture_output=True, text=True, timeout=timeout,
                              env=worker_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError("no result within %s s" % timeout) from None
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        # The worker's own one-line verdict, else the last line of whatever it printed.
        said = re.findall(r"^worker failed: (.*)$", done.stderr, re.M)
        tail = said or done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise BenchError("exit status %d: %s" % (done.returncode, tail[-1]))
    return json.loads(lines[-1])


def wrk_preexec(cpu):
    """What runs in wrk's child before exec: the client core, and fds for 10,000."""
    def preexec():
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return preexec


def wrk_version():
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return out.split(" Copyright")[0].strip()


def run_wrk(url, chains, seconds, server_pid, cpu, latency=False):
    """wrk -t1 -cCHAINS for `seconds`: requests, wall, CPU (and p50/p99 with latency)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = process_cpu_seconds(server_pid)
    machine_before = machine_cpu_seconds()
    command = ["wrk", "-t1", "-c%d" % chains, "-d%ds" % seconds, url]
    if latency:
        command.insert(1, "--latency")
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              preexec_fn=wrk_preexec(cpu), stdin=subprocess.DEVNULL,
                              timeout=seconds + 30)
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
    result = {"requests": int(counted.group(1)), "wall": wall,
              "cpu": (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime),
              "server_cpu": server_cpu, "machine_cpu": machine_cpu,
              "version": wrk_version()}
    if latency:
        # "Latency Distribution" lines: "     50%   57.00us".
        for name, share in (("p50", "50"), ("p99", "99")):
            found = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % share, done.stdout, re.M)
            if not found:
                raise BenchError("no %s%% line in wrk's output" % share)
            scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[found.group(2)]
            result[name] = float(found.group(1)) * scale
    return result


def wrk_idle(nginx, n, args, cpu):
    """wrk holding `n` long polls: its RSS per connection and CPU over the idle window.

    wrk opens every connection at once and cannot report memory itself, so the parent
    samples /proc/PID of a `-c1` wrk (the baseline) and of the `-cN` one once nginx
    shows all N held.
    """
    def start(connections):
        seconds = IDLE_RAMP_TIMEOUT + IDLE_SETTLE + args.idle_seconds + 30
        return subprocess.Popen(
            ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
             "--timeout", "%ds" % (args.idle_hold + 60), nginx.url("/poll")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, preexec_fn=wrk_preexec(cpu))

    def wait_held(process, count):
        deadline = time.monotonic() + IDLE_RAMP_TIMEOUT
        while held_requests(nginx.url("/status")) < count:
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError("wrk did not hold %d long polls" % count)
            time.sleep(0.5)

    def voluntary_switches(pid):
        with open("/proc/%d/status" % pid) as f:
            return int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", f.read(),
                                 re.M).group(1))

    processes = []
    try:
        one = start(1)
        processes.append(one)
        wait_held(one, 1)
        time.sleep(IDLE_SETTLE)
        rss_base = memory_kib("VmRSS", one.pid)
        one.kill()
        one.wait()
        started = time.perf_counter()
        many = start(n)
        processes.append(many)
        # The -c1 wrk's poll stays held in nginx until its timer fires: count it.
        wait_held(many, n + 1)
        ramp = time.perf_counter() - started
        time.sleep(IDLE_SETTLE)
        rss_held = memory_kib("VmRSS", many.pid)
        cpu_before = process_cpu_seconds(many.pid)
        switches_before = voluntary_switches(many.pid)
        idle_started = time.perf_counter()
        time.sleep(args.idle_seconds)
        idle_wall = time.perf_counter() - idle_started
        idle_cpu = process_cpu_seconds(many.pid) - cpu_before
        switches = voluntary_switches(many.pid) - switches_before
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    # One connection is in the baseline already.
    return {"n": n, "ramp": ramp, "rss_setup_kib": rss_base, "rss_base_kib": rss_base,
            "rss_held_kib": rss_held, "per_conn_n": n - 1, "idle_wall": idle_wall,
            "idle_cpu": idle_cpu, "idle_wakeups": switches, "version": wrk_version()}


def job_for(workload, path, chains, client, nginx, args, cpu):
    """The worker's instructions for one Python client run."""
    job = {"workload": workload, "client": client, "chains": chains, "cpu": cpu,
           "server_pid": nginx.worker_pid, "limit": chains,
           "timeout": args.idle_hold + 60, "url": nginx.url(path),
           "expected": len(BODY), "small_url": nginx.url("/small"),
           "small_expected": len(BODY)}
    if workload == "chains":
        job.update(requests=args.requests, warmup=max(chains, args.requests // 10))
    elif workload == "latency":
        job.update(requests=args.latency_requests,
                   warmup=max(1, args.latency_requests // 10))
    elif workload == "body":
        job.update(requests=args.body_requests, expected=BIG_SIZE)
    elif workload == "idle":
        job.update(n=chains, batch=IDLE_BATCH, batch_pause=IDLE_BATCH_PAUSE,
                   ramp_timeout=IDLE_RAMP_TIMEOUT, settle=IDLE_SETTLE,
                   window=args.idle_seconds, status_url=nginx.url("/status"))
    return job


def run_cell(workload, path, chains, client, nginx, args, cpu):
    """One run of one cell; the figures as a dict, or BenchError."""
    if client != "wrk":
        return run_python_client(job_for(workload, path, chains, client, nginx, args, cpu),
                                 args)
    if workload == "chains":
        return run_wrk(nginx.url(path), chains, args.wrk_seconds, nginx.worker_pid, cpu)
    if workload == "latency":
        return run_wrk(nginx.url(path), 1, args.wrk_seconds, nginx.worker_pid, cpu,
                       latency=True)
    if workload == "body":
        return run_wrk(nginx.url(path), 1, args.wrk_seconds, nginx.worker_pid, cpu)
    return wrk_idle(nginx, chains, args, cpu)


def idle_size(client, args):
    """How many long polls a client holds: urllib's thread per request gets fewer."""
    return args.idle_urllib if client == "urllib" else args.idle


def plan_cells(workload, clients, args):
    """The (workload, path, chains, client) cells of one workload."""
    if workload == "chains":
        return [(workload, path, chains, client) for path in args.paths
                for chains in args.chains for client in clients]
    if workload == "latency":
        return [(workload, path, 1, client) for path in args.paths for client in clients]
    if workload == "body":
        return [(workload, "/big", 1, client) for client in clients]
    return [(workload, "/poll", idle_size(client, args), client) for client in clients]


def run_all(nginx_binary, nginx, clients, args, server_cpu, client_cpu, notes):
    """Every cell of every chosen workload, each repetition in a new random order."""
    cells = {}
    rng = random.Random(args.seed)
    plans = []
    for workload in args.workloads:
        plan = plan_cells(workload, clients, args)
        repeat = args.idle_repeat if workload == "idle" else args.repeat
        plans += [plan] * repeat
        cells.update((cell, []) for cell in plan)
    total = sum(len(plan) for plan in plans)
    done = 0
    for plan in plans:
        order = plan[:]
        rng.shuffle(order)
        for cell in order:
            workload, path, chains, client = cell
            done += 1
            try:
                if workload == "idle":
                    # echo_sleep keeps a request until its timer fires, even after the
                    # client has gone: each idle run starts from an empty nginx.
                    with tempfile.TemporaryDirectory(prefix="http_bench-idle-") as prefix:
                        idle_nginx = Nginx(nginx_binary, prefix, server_cpu, args.idle_hold)
                        try:
                            idle_nginx.start()
                            result = run_cell(*cell, idle_nginx, args, client_cpu)
                        finally:
                            idle_nginx.stop()
                else:
                    result = run_cell(*cell, nginx, args, client_cpu)
            except BenchError as e:
                notes.append("%s %s %s n=%d failed: %s" % (workload, client, path, chains, e))
                progress = "FAILED: %s" % e
            else:
                cells[cell].append(result)
                progress = progress_line(workload, result)
            print("[%d/%d] %s %s %s %d: %s" % (done, total, workload, client, path, chains,
                                                progress), file=sys.stderr, flush=True)
    return cells


def progress_line(workload, r):
    if workload == "idle":
        return "%.1f KiB/conn, %.1f ms CPU/s idle" % (
            (r["rss_held_kib"] - r["rss_base_kib"]) / r.get("per_conn_n", r["n"]),
            r["idle_cpu"] / r["idle_wall"] * 1e3)
    if workload == "latency":
        return "p50 %.0f µs, p99 %.0f µs" % (r["p50"] * 1e6, r["p99"] * 1e6)
    return "%.0f req/s, %.1f µs CPU/req" % (r["requests"] / r["wall"],
                                           r["cpu"] / r["requests"] * 1e6)


def profile_httpstream(nginx, clients, args, client_cpu, notes):
    if "httpstream" not in clients:
        notes.append("--profile ignored: httpstream is not among the clients run")
        return
    for chains in args.chains:
        profile = Path("%s-c%d.prof" % (args.profile, chains)).resolve()
        job = job_for("chains", args.paths[0], chains, "httpstream", nginx, args, client_cpu)
        job["profile"] = str(profile)
        try:
            run_python_client(job, args)
        except BenchError as e:
            notes.append("profiled httpstream run at %d chains failed: %s" % (chains, e))
            continue
        summary = profile.with_suffix(".txt")
        write_profile_summary(profile, summary)
        notes.append("profile of httpstream at %d chains (not in the table): %s, %s"
                     % (chains, profile, summary))


# --------------------------------------------------------------------------------------
# Summaries and tables.
# --------------------------------------------------------------------------------------

def median_of(runs, figure):
    return statistics.median(figure(r) for r in runs)


def summarize(cells, clients, paths):
    """Per workload: medians per cell, then ratios to HTTPStream in the same cell."""
    results = {}
    for (workload, path, chains, client), runs in cells.items():
        if not runs:
            continue
        row = {"client": client, "path": path, "chains": chains, "runs": len(runs)}
        if workload in ("chains", "latency", "body"):
            row["rps"] = median_of(runs, lambda r: r["requests"] / r["wall"])
            row["cpu_us"] = median_of(runs, lambda r: r["cpu"] / r["requests"] * 1e6)
        if workload == "chains":
            cpu_us = [r["cpu"] / r["requests"] * 1e6 for r in runs]
            row["cpu_us_min"], row["cpu_us_max"] = min(cpu_us), max(cpu_us)
            row["server_share"] = max(r["server_cpu"] / r["wall"] for r in runs)
            # Whatever other processes ran meanwhile: busy neighbours on the client's
            # core lower req/s (the client waits for the core) more than CPU per request.
            row["others_share"] = max(
                max(0.0, r["machine_cpu"] - r["cpu"] - r["server_cpu"]) / r["wall"]
                for r in runs)
        elif workload == "latency":
            row["p50_us"] = median_of(runs, lambda r: r["p50"] * 1e6)
            row["p99_us"] = median_of(runs, lambda r: r["p99"] * 1e6)
        elif workload == "body":
            row["mb_s"] = median_of(runs, lambda r: r["requests"] * BIG_SIZE / r["wall"] / 1e6)
            row["ms_per_body"] = median_of(runs, lambda r: r["wall"] / r["requests"] * 1e3)
            row["cpu_ms"] = row.pop("cpu_us") / 1e3
            row["peak_mib"] = (median_of(runs, lambda r: r["peak_kib"] / 1024)
                               if "peak_kib" in runs[0] else None)
        elif workload == "idle":
            row["ramp_s"] = median_of(runs, lambda r: r["ramp"])
            row["kib_per_conn"] = median_of(
                runs, lambda r: (r["rss_held_kib"] - r["rss_base_kib"])
                / r.get("per_conn_n", r["n"]))
            row["kib_per_conn_setup"] = median_of(
                runs, lambda r: (r["rss_held_kib"] - r["rss_setup_kib"])
                / r.get("per_conn_n", r["n"]))
            row["idle_cpu_ms_s"] = median_of(runs, lambda r: r["idle_cpu"] / r["idle_wall"] * 1e3)
            row["wakeups_s"] = median_of(runs, lambda r: r["idle_wakeups"] / r["idle_wall"])
        results.setdefault(workload, []).append(row)
    ratio_figures = {"chains": ("rps", "cpu_us"), "latency": ("p50_us", "p99_us", "cpu_us"),
                     "body": ("mb_s", "cpu_ms", "peak_mib"),
                     "idle": ("kib_per_conn", "kib_per_conn_setup")}
    for workload, rows in results.items():
        base = {(r["path"], r["chains"] if workload == "chains" else 0): r
                for r in rows if r["client"] == "httpstream"}
        for row in rows:
            ours = base.get((row["path"], row["chains"] if workload == "chains" else 0))
            for figure in ratio_figures[workload]:
                valid = ours and row[figure] is not None and ours[figure]
                row[figure + "_ratio"] = row[figure] / ours[figure] if valid else None
        rows.sort(key=lambda r: (paths.index(r["path"]) if r["path"] in paths else 0,
                                 r["chains"] if workload == "chains" else 0,
                                 clients.index(r["client"])))
    return results


def ratio(value):
    return "-" if value is None else "%.2f" % value


def optional(value, form):
    return "-" if value is None else form % value


def format_table(header, lines):
    """Text columns: the first two left-aligned, the rest right-aligned."""
    lines = [header] + lines
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def print_tables(report):
    results = report["results"]
    if "latency" in results:
        print("== latency: one sequential keep-alive chain, %d requests (wrk: %d s) =="
              % (report["latency_requests"], report["wrk_seconds"]))
        print(format_table(
            ("client", "path", "p50 µs", "p99 µs", "CPU µs/req", "p50 ×HS", "p99 ×HS",
             "CPU ×HS"),
            [(r["client"], r["path"], "%.0f" % r["p50_us"], "%.0f" % r["p99_us"],
              "%.1f" % r["cpu_us"], ratio(r["p50_us_ratio"]), ratio(r["p99_us_ratio"]),
              ratio(r["cpu_us_ratio"])) for r in results["latency"]]))
        print()
    if "chains" in results:
        print("== chains: %d requests over N concurrent keep-alive chains (wrk: %d s) =="
              % (report["requests"], report["wrk_seconds"]))
        lines = []
        for r in results["chains"]:
            flag = " server-bound" if r["server_share"] > SERVER_BOUND_SHARE else ""
            lines.append((r["client"], r["path"], str(r["chains"]), "%.0f" % r["rps"],
                          "%.1f" % r["cpu_us"], "%.3f" % (r["cpu_us"] / 1e3),
                          "%.1f-%.1f" % (r["cpu_us_min"], r["cpu_us_max"]),
                          ratio(r["rps_ratio"]), ratio(r["cpu_us_ratio"]),
                          "%.0f%%%s" % (100 * r["server_share"], flag),
                          "%.0f%%" % (100 * r["others_share"])))
        print(format_table(("client", "path", "chains", "req/s", "CPU µs/req",
                            "CPU s/1k req", "CPU range", "req/s ×HS", "CPU ×HS",
                            "nginx CPU", "others"), lines))
        print()
    if "idle" in results:
        print("== idle: N long polls held by nginx; RSS growth per held connection, then "
              "a %d s idle window ==" % report["idle_seconds"])
        print(format_table(
            ("client", "path", "N held", "ramp s", "KiB/conn", "KiB/conn ×HS",
             "incl. setup", "setup ×HS", "idle CPU ms/s", "wakeups/s"),
            [(r["client"], r["path"], str(r["chains"]), "%.1f" % r["ramp_s"],
              "%.1f" % r["kib_per_conn"], ratio(r["kib_per_conn_ratio"]),
              "%.1f" % r["kib_per_conn_setup"], ratio(r["kib_per_conn_setup_ratio"]),
              "%.2f" % r["idle_cpu_ms_s"], "%.1f" % r["wakeups_s"])
             for r in results["idle"]]))
        print()
    if "body" in results:
        print("== body: %d sequential GETs of a %d MiB static file on a warm connection "
              "(wrk: %d s) ==" % (report["body_requests"], BIG_SIZE >> 20,
                                  report["wrk_seconds"]))
        print(format_table(
            ("client", "path", "MB/s", "ms/body", "CPU ms/body", "peak RSS +MiB",
             "MB/s ×HS", "CPU ×HS", "RSS ×HS"),
            [(r["client"], r["path"], "%.0f" % r["mb_s"], "%.1f" % r["ms_per_body"],
              "%.1f" % r["cpu_ms"], optional(r["peak_mib"], "%.1f"), ratio(r["mb_s_ratio"]),
              ratio(r["cpu_ms_ratio"]), ratio(r["peak_mib_ratio"]))
             for r in results["body"]]))
        print()
    print("×HS: the peer's figure divided by HTTPStream's in the same cell (req/s and MB/s: "
          "above 1 is faster; every other figure: above 1 costs more).")
    print("nginx CPU: the busiest run's nginx worker CPU over its timed window "
          "(above %d%% the server, not the client, was the limit). others: the most CPU "
          "anything else used during one of the cell's timed windows, in %% of one core."
          % (100 * SERVER_BOUND_SHARE))
    print("KiB/conn: (RSS with N held - RSS after the client was built and had sent two "
          "small GETs) / N; incl. setup: from before the client was built.")
    print("Date %s; runs per cell: %d (idle: %d), the median shown; seed %d." % (
        report["date"], report["repeat"], report["idle_repeat"], report["seed"]))
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
    paths = ["webqq/http_stream.py", "webqq/http"]
    last = subprocess.run(git + ["log", "-1", "--format=%h %cs", "--"] + paths,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--"] + paths,
                           capture_output=True, text=True).stdout.strip()
    return "%s%s" % (last or "uncommitted", " + uncommitted edits" if dirty and last else "")


def versions(nginx_binary, cells, clients):
    """The versions each client reported from its own process, plus Python and nginx."""
    found = {"python": "%s %s" % (platform.python_implementation(),
                                  platform.python_version())}
    nginx = subprocess.run([nginx_binary, "-v"], capture_output=True, text=True).stderr
    found["nginx"] = nginx.strip().replace("nginx version: ", "")
    for client in clients:
        reported = [r["version"] for (_, _, _, c), runs in cells.items() if c == client
                    for r in runs]
        if reported:
            found[client] = reported[0]
    if "httpstream" in found:
        found["httpstream"] += ", webqq/http_stream.py and webqq/http/ at %s" % (
            httpstream_version())
    return found


def parse_args():
    parser = argparse.ArgumentParser(
        description="HTTPStream beside Tornado's clients, aiohttp, httpx, urllib and wrk "
                    "against a local nginx: latency, concurrent chains, idle long polls "
                    "and a large body.")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, from %s (default: all)" % ",".join(WORKLOADS))
    parser.add_argument("--clients", default=",".join(ALL_CLIENTS),
                        help="comma-separated, from %s (default: all)" % ",".join(ALL_CLIENTS))
    parser.add_argument("--paths", default="/small",
                        help="latency and chains: comma-separated locations, /small "
                             "(Content-Length) and, with the echo module, /chunked "
                             "(default /small)")
    parser.add_argument("--requests", type=int, default=20000,
                        help="chains: timed requests per Python client run (default "
                             "20000); a tenth more are sent first as a warm-up")
    parser.add_argument("--chains", default="1,16,64,256",
                        help="chains: numbers of concurrent chains (default 1,16,64,256)")
    parser.add_argument("--latency-requests", type=int, default=5000,
                        help="latency: timed requests in the one chain (default 5000)")
    parser.add_argument("--idle", type=int, default=10000,
                        help="idle: long polls each client holds (default 10000)")
    parser.add_argument("--idle-urllib", type=int, default=1000,
                        help="idle: long polls urllib holds, one thread each (default 1000)")
    parser.add_argument("--idle-seconds", type=int, default=10,
                        help="idle: the idle window once all are held (default 10)")
    parser.add_argument("--idle-hold", type=int, default=300,
                        help="idle: seconds nginx holds each long poll; must outlast the "
                             "ramp (at most %d s) and the window (default 300)" % IDLE_RAMP_TIMEOUT)
    parser.add_argument("--body-requests", type=int, default=5,
                        help="body: timed GETs of the 10 MiB file per run (default 5)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per latency, chains and body cell; the tables show "
                             "the median (default 3)")
    parser.add_argument("--idle-repeat", type=int, default=1,
                        help="runs per idle cell (default 1)")
    parser.add_argument("--wrk-seconds", type=int, default=3,
                        help="duration of each wrk run (default 3)")
    parser.add_argument("--timeout", type=float, default=240,
                        help="seconds one client run may take before it fails (default 240)")
    parser.add_argument("--seed", type=int, help="seed of the run order (default: random)")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx",
                        help="the nginx binary (default: from PATH)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="after the benchmark, one extra cProfile'd HTTPStream chains "
                             "run per chains value: PREFIX-cN.prof and a top-15 "
                             "PREFIX-cN.txt")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON document instead of tables")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return args
    args.chains = [int(c) for c in args.chains.split(",")]
    args.clients = args.clients.split(",")
    args.paths = args.paths.split(",")
    args.workloads = args.workloads.split(",")
    for name, given, known in (("client", args.clients, ALL_CLIENTS),
                               ("path", args.paths, PATHS),
                               ("workload", args.workloads, WORKLOADS)):
        for value in given:
            if value not in known:
                parser.error("unknown %s %r; choose from %s" % (name, value, ", ".join(known)))
    if min(args.chains) < 1 or args.requests < max(args.chains):
        parser.error("--chains must be >= 1 and --requests >= the largest chains value")
    if args.idle_hold < IDLE_RAMP_TIMEOUT + IDLE_SETTLE + args.idle_seconds + 10:
        parser.error("--idle-hold must outlast the ramp (%d s at most), %d s of settling "
                     "and the idle window, with 10 s to spare"
                     % (IDLE_RAMP_TIMEOUT, IDLE_SETTLE))
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    return args


def main():
    args = parse_args()
    if args.worker:
        try:
            run_worker(json.loads(args.worker))
        except BaseException as e:
            # Said last, before the interpreter's warnings about what was left open.
            print("worker failed: %r" % e, file=sys.stderr, flush=True)
            raise
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
        nginx = Nginx(args.nginx, prefix, server_cpu, args.idle_hold)
        if not nginx.echo_module:
            if "/chunked" in args.paths:
                notes.append("/chunked skipped: the echo module is not installed "
                             "(apt-get install libnginx-mod-http-echo)")
                args.paths.remove("/chunked")
            if "idle" in args.workloads:
                notes.append("idle skipped: /poll needs the echo module")
                args.workloads.remove("idle")
        if "urllib" in clients and "idle" in args.workloads:
            notes.append("idle: urllib holds %d, not %d: a thread per held request"
                         % (args.idle_urllib, args.idle))
        try:
            nginx.start()
            cells = run_all(args.nginx, nginx, clients, args, server_cpu, client_cpu, notes)
            if args.profile and "chains" in args.workloads:
                profile_httpstream(nginx, clients, args, client_cpu, notes)
        finally:
            nginx.stop()

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "workloads": args.workloads,
        "requests": args.requests, "latency_requests": args.latency_requests,
        "body_requests": args.body_requests, "idle": args.idle,
        "idle_urllib": args.idle_urllib, "idle_seconds": args.idle_seconds,
        "idle_hold": args.idle_hold, "wrk_seconds": args.wrk_seconds,
        "repeat": args.repeat, "idle_repeat": args.idle_repeat, "seed": args.seed,
        "server_cpu": server_cpu, "client_cpu": client_cpu,
        "versions": versions(args.nginx, cells, clients), "notes": notes,
        "results": summarize(cells, clients, args.paths),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; nginx stopped and its directory removed", file=sys.stderr)
        sys.exit(130)
    except BenchError as e:
        print("http_bench: %s" % e, file=sys.stderr)
        sys.exit(1)
