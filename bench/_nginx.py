"""The server side of bench/http_bench.py: nginx in a temporary prefix, and its files.

Nginx(binary, prefix, cpu, hold) writes a configuration and the served files under
`prefix`, starts one master and one worker listening on a free 127.0.0.1 port, and
stops them; nothing outside `prefix` is written.
"""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from _peers import BenchError

# The body of /small and /chunked: 100 bytes, small enough that per-request overhead,
# not byte copying, is what the chains and latency workloads see.
BODY = b"x" * 99 + b"\n"
# /big: incompressible bytes, so nothing on the way could shrink them.
BIG_SIZE = 10 * 1024 * 1024

# Locations nginx serves: /small is a static file (Content-Length framing); /chunked is
# produced by the echo module, so nginx knows no length and sends it chunked. The echo
# directive appends the newline itself.
PATHS = ("/small", "/chunked")


class Nginx:
    """One nginx master and worker under `prefix`, listening on 127.0.0.1 only.

    The worker is pinned to `cpu` with worker_cpu_affinity; /poll holds each request
    `hold` seconds. start() returns once the port accepts; stop() is safe to call twice
    and kills nginx if it does not exit.
    """

    def __init__(self, binary, prefix, cpu, hold):
        self.binary = binary
        self.prefix = Path(prefix)
        self.cpu = cpu
        self.hold = hold
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
            # 10,000 held long polls are 10,000 fds in the worker.
            "worker_rlimit_nofile 20000;",
            "pid %s/nginx.pid;" % p,
            "lock_file %s/nginx.lock;" % p,
            "error_log %s/error.log warn;" % p,
        ]
        if self.cpu is not None:
            # A bit mask, lowest bit = core 0.
            lines.append("worker_cpu_affinity %s;" % format(1 << self.cpu, "b"))
        lines += [
            "events { worker_connections 15000; }",
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
            "        location = /big { }",
            # Requests being served ("Writing") tell when every long poll is held.
            "        location = /status { stub_status; }",
        ]
        if self.echo_module:
            lines.append('        location = /chunked { echo "%s"; }'
                         % BODY.rstrip(b"\n").decode())
            # echo_sleep is a timer inside nginx: it holds the request without blocking
            # the worker, then the body follows.
            lines.append('        location = /poll { echo_sleep %d; echo "%s"; }'
                         % (self.hold, BODY.rstrip(b"\n").decode()))
        lines += ["    }", "}"]
        return "\n".join(lines) + "\n"

    def start(self):
        (self.prefix / "html").mkdir()
        (self.prefix / "tmp").mkdir()
        (self.prefix / "html" / "small").write_bytes(BODY)
        (self.prefix / "html" / "big").write_bytes(os.urandom(BIG_SIZE))
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config())
        # Started as root, the worker runs as nobody: it must be able to read the prefix.
        for path in (self.prefix, self.prefix / "html", self.prefix / "html" / "small",
                     self.prefix / "html" / "big"):
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
