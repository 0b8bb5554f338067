"""Shared plumbing of bench/soak.py and bench/daemon_bench.py: a stand-alone simulator and
a ``webqq run`` daemon as subprocesses on loopback, the /_sim/ control surface, and
/proc readings (RSS, fds, CPU seconds) of the daemon.

It never touches the webqq package's internals: the simulator and the daemon are run
through their console scripts, exactly as a user would, and watched from outside (the
status file, the log file, /proc). Everything it starts is stopped by ``Rig.close()``,
which is safe to call twice and runs on errors and on Ctrl-C (the children run in their
own sessions, so a Ctrl-C reaches only this script, which then stops them in order).
"""
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(os.path.abspath(sys.executable))
#: The simulator's built-in world: the bot's account, its password, a friend and a group.
ACCOUNT, PASSWORD, FRIEND, GROUP, GROUP_MEMBER = 10001, "webqq-demo", 20001, 30001, 20002
#: Every protocol host (webqq.simulator.app.HTTP_HOSTS / TLS_HOSTS) and its port kind;
#: d.web2.qq.com, served on both ports, goes to the plain one here, as in earlier runs.
PLAIN_HOSTS = ("check.ptlogin2.qq.com", "ptlogin2.qq.com", "captcha.qq.com",
               "ptlogin4.web2.qq.com", "web2.qq.com", "web.qq.com", "webqq.qq.com",
               "www.qq.com", "d.web2.qq.com", "s.web2.qq.com")
TLS_HOSTS = ("ssl.ptlogin2.qq.com", "ui.ptlogin2.qq.com", "ssl.captcha.qq.com")
CLK_TCK = os.sysconf("SC_CLK_TCK")
_ONLINE_LINE = re.compile(r"online as \d+ \((logged in|relinked|resumed the saved session)\)")


def free_port() -> int:
    """A loopback port free right now (the usual small race is accepted for a bench)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stamp() -> str:
    return time.strftime("%H:%M:%S")


# --- /proc --------------------------------------------------------------------------------

def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 when the process is gone)."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (/proc/PID/stat fields 14 and 15), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            text = stat.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()     # fields from 3 (state) on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- the rig ------------------------------------------------------------------------------

class Rig:
    """A simulator and a daemon, each a subprocess, in one temporary directory.

    Args:
        seed: the simulator's ``--seed``.
        send_interval: ``[bot] send_interval`` of the generated configuration (0.5 at
            least: the daemon refuses less).
        resend_ambiguous: ``[bot] resend_ambiguous`` of the generated configuration.
        poll_hold: the simulator's ``--poll-hold`` (None: its default, 55 s).
        keep: keep the temporary directory (logs, status file) after ``close()``.
        api: serve the OneBot API on a free loopback port with a token of its own
            (``api_call``).

    ``log_file`` may be moved before ``start_daemon`` (out of a state_dir on a tmpfs).
    """

    def __init__(self, seed: int = 1, send_interval: float = 0.5, poll_hold=None,
                 keep: bool = False, loglevel: str = "info", resend_ambiguous: bool = False,
                 api: bool = False):
        self.dir = tempfile.mkdtemp(prefix="webqq-bench-")
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir)
        self.log_file = os.path.join(self.state_dir, "webqq.log")
        self.status_file = os.path.join(self.state_dir, "status.json")
        self.seed, self.send_interval, self.poll_hold = seed, send_interval, poll_hold
        self.keep, self.loglevel = keep, loglevel
        self.resend_ambiguous = resend_ambiguous
        self.port = self.tls_port = None
        # The /_sim/ surface's secret, given to the simulator this rig starts.
        self.control_token = secrets.token_urlsafe(16)
        self.api_token = secrets.token_urlsafe(16) if api else None
        self.api_port = None
        self.sim = self.daemon = None
        self._files = []
        self._closed = False

    # -- starting ----------------------------------------------------------------------

    def _spawn(self, argv, name, env=None):
        out = open(os.path.join(self.dir, name + ".out"), "wb")
        self._files.append(out)
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def start_simulator(self, timeout: float = 15.0) -> None:
        for _ in range(5):
            self.port, self.tls_port = free_port(), free_port()
            if self.port == self.tls_port:
                continue
            argv = [os.path.join(BIN, "webqq-simulator"), "--port", str(self.port),
                    "--tls-port", str(self.tls_port), "--seed", str(self.seed),
                    # One word: a token drawn with a leading "-" is no option.
                    "--control-token=" + self.control_token]
            if self.poll_hold is not None:
                argv += ["--poll-hold", str(self.poll_hold)]
            self.sim = self._spawn(argv, "simulator")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.sim.poll() is None:
                status, _ = self.control("GET", "state")
                if status == 200:
                    return
                time.sleep(0.1)
            if self.sim.poll() is None:
                break
            self.sim = None             # lost the port race: try other ports
        raise RuntimeError("the simulator did not come up; see %s/simulator.out" % self.dir)

    def write_config(self) -> str:
        lines = ["[account]", "qq = %d" % ACCOUNT, "",
                 "[daemon]", "state_dir = %s" % self.state_dir, "logfile = %s" % self.log_file,
                 "loglevel = %s" % self.loglevel, "",
                 "[network]", "ca_file = %s" % self.simulator_ca(), "",
                 "[hosts]"]
        lines += ["%s = 127.0.0.1:%d" % (host, self.port) for host in PLAIN_HOSTS]
        lines += ["%s = 127.0.0.1:%d" % (host, self.tls_port) for host in TLS_HOSTS]
        lines += ["", "[simulator]", "embedded = no", "",
                  "[bot]", "plugins = webqq.plugins.builtin",
                  "send_interval = %g" % self.send_interval,
                  "resend_ambiguous = %s" % ("yes" if self.resend_ambiguous else "no"), "",
                  "[api]"]
        if self.api_token:
            self.api_port = free_port()
            lines += ["listen = 127.0.0.1:%d" % self.api_port, "token = %s" % self.api_token,
                      ""]
        else:
            lines += ["listen =", ""]
        path = os.path.join(self.dir, "webqq.ini")
        with open(path, "w") as ini:
            ini.write("\n".join(lines))
        os.chmod(path, 0o600)               # it may hold the API token
        return path

    @staticmethod
    def simulator_ca() -> str:
        import webqq.simulator
        return webqq.simulator.CA_FILE

    def start_daemon(self, timeout: float = 30.0) -> None:
        """``webqq -c INI run``, then wait until the status file says online."""
        env = dict(os.environ, WEBQQ_PASSWORD=PASSWORD)
        self.daemon = self._spawn([os.path.join(BIN, "webqq"), "-c", self.write_config(), "run"],
                                  "daemon", env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("the daemon exited with %s; see %s"
                                   % (self.daemon.returncode, self.log_file))
            status = self.status()
            if status and status.get("pid") == self.daemon.pid and status.get("state") == "online":
                return
            time.sleep(0.1)
        raise RuntimeError("the daemon was not online after %g s; see %s" % (timeout, self.log_file))

    # -- watching ----------------------------------------------------------------------

    def status(self):
        try:
            with open(self.status_file) as status:
                return json.load(status)
        except (OSError, ValueError):
            return None

    def onlines(self) -> dict:
        """How often the daemon's log says it came online, by how: logged in, relinked,
        resumed (the first login included)."""
        counts = {"logged in": 0, "relinked": 0, "resumed the saved session": 0}
        try:
            with open(self.log_file, errors="replace") as log:
                for line in log:
                    match = _ONLINE_LINE.search(line)
                    if match:
                        counts[match.group(1)] += 1
        except OSError:
            pass
        return counts

    def grep_log(self, pattern: str) -> list:
        try:
            with open(self.log_file, errors="replace") as log:
                return [line.rstrip("\n") for line in log if re.search(pattern, line)]
        except OSError:
            return []

    def sample(self) -> dict:
        pid = self.daemon.pid
        return {"t": time.monotonic(), "rss_kb": rss_kb(pid), "fds": fd_count(pid),
                "cpu_s": cpu_seconds(pid)}

    # -- the control surface -----------------------------------------------------------

    def control(self, method: str, verb: str, body=None, query: str = "", timeout: float = 10.0):
        """One /_sim/ call: (HTTP status, decoded JSON), or (None, "error text") when the
        simulator cannot be reached (it is offline, or gone)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"X-Sim-Token": self.control_token}
            if payload:
                headers["Content-Type"] = "application/json"
            conn.request(method, "/_sim/%s%s" % (verb, query), body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
            try:
                return response.status, json.loads(data or b"null")
            except ValueError:
                return response.status, data.decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            return None, "%s: %s" % (type(exc).__name__, exc)
        finally:
            conn.close()

    def api_call(self, action: str, params: dict, timeout: float = 30.0):
        """One OneBot action: (HTTP status, decoded JSON), or (None, "error text")."""
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=timeout)
        try:
            conn.request("POST", "/" + action, body=json.dumps(params).encode(), headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer " + self.api_token})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, "%s: %s" % (type(exc).__name__, exc)
        finally:
            conn.close()

    def say(self, text: str, group: bool = False):
        body = {"to": ACCOUNT, "from": GROUP_MEMBER if group else FRIEND, "text": text}
        if group:
            body["group"] = GROUP
        return self.control("POST", "say", body)

    def sent(self):
        status, records = self.control("GET", "sent", query="?account=%d" % ACCOUNT, timeout=30)
        return records if status == 200 else None

    # -- stopping ----------------------------------------------------------------------

    def stop_daemon(self, timeout: float = 20.0):
        """SIGTERM the daemon and wait; SIGKILL after ``timeout``. Returns its exit code."""
        proc, self.daemon = self.daemon, None
        return _terminate(proc, timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A second Ctrl-C must not leave a child running: hold signals while stopping.
        held = {signum: signal.signal(signum, signal.SIG_IGN)
                for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.daemon is not None:
                self.stop_daemon()
            if self.sim is not None:
                _terminate(self.sim, 10.0)
                self.sim = None
            for handle in self._files:
                handle.close()
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            for signum, handler in held.items():
                signal.signal(signum, handler)


def _terminate(proc, timeout: float):
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def sigterm_as_interrupt() -> None:
    """Let SIGTERM unwind like Ctrl-C, so that ``finally: rig.close()`` runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, handler)
