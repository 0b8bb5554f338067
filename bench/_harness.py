"""Shared plumbing of the daemon benches (soak, daemon_bench, latency_bench,
accounts_bench): a stand-alone simulator and ``webqq run`` daemons as subprocesses on
loopback (``Rig``, ``Fleet``), the /_sim/ control surface, and /proc readings (RSS, PSS,
fds, CPU) of the daemons.

It never touches the webqq package's internals: the simulator and the daemons are run
through their console scripts, exactly as a user would, and watched from outside (the
status file, the log files, /proc). Two wrappers are the exceptions, each a bench's own
lens: bench/_traced_daemon.py (the daemon under tracemalloc, for the soak) and
bench/_timed_simulator.py (the simulator with a message generator and a clock, for the
latency bench). Everything started is stopped by ``Fleet.close()`` and ``Rig.close()``,
which are safe to call twice and run on errors and on Ctrl-C (the children run in their
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
import tracemalloc

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
        tracemalloc_frames: when above 0, the daemon runs under bench/_traced_daemon.py
            (tracemalloc with that many frames per allocation) and ``snapshot()`` works.
        world: a world JSON file for the simulator (None: its built-in world).
        simulator: the simulator's command line before the port options (None:
            ``webqq-simulator``; bench/latency_bench.py runs bench/_timed_simulator.py).
        accounts: the QQ numbers the daemon logs in as (None: ``ACCOUNT``); more than
            one are written as ``[account:qNUMBER]`` sections.

    ``log_file`` may be moved before ``start_daemon`` (out of a state_dir on a tmpfs).
    """

    def __init__(self, seed: int = 1, send_interval: float = 0.5, poll_hold=None,
                 keep: bool = False, loglevel: str = "info", resend_ambiguous: bool = False,
                 api: bool = False, tracemalloc_frames: int = 0, world=None, simulator=None,
                 accounts=None):
        self.dir = tempfile.mkdtemp(prefix="webqq-bench-")
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir)
        self.log_file = os.path.join(self.state_dir, "webqq.log")
        self.status_file = os.path.join(self.state_dir, "status.json")
        self.seed, self.send_interval, self.poll_hold = seed, send_interval, poll_hold
        self.keep, self.loglevel = keep, loglevel
        self.resend_ambiguous = resend_ambiguous
        self.tracemalloc_frames = tracemalloc_frames
        self.world, self.simulator = world, simulator
        self.accounts = list(accounts or [ACCOUNT])
        self.snapshot_dir = os.path.join(self.dir, "tracemalloc")
        self._snapshots = 0
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
            argv = list(self.simulator or [os.path.join(BIN, "webqq-simulator")])
            argv += ["--port", str(self.port), "--tls-port", str(self.tls_port),
                     "--seed", str(self.seed),
                     # One word: a token drawn with a leading "-" is no option.
                     "--control-token=" + self.control_token]
            if self.world is not None:
                argv += ["--world", self.world]
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

    def write_config(self, accounts=None, state_dir=None, name: str = "webqq.ini") -> str:
        """The daemon's configuration file (``name`` in the rig's directory, mode 0600),
        for ``accounts`` (default the rig's) keeping its state in ``state_dir`` (default
        the rig's, its log there as webqq.log)."""
        accounts = list(accounts or self.accounts)
        state_dir = state_dir or self.state_dir
        if len(accounts) == 1:
            lines = ["[account]", "qq = %d" % accounts[0], ""]
        else:
            lines = []
            for qq in accounts:
                lines += ["[account:q%d]" % qq, "qq = %d" % qq, "password = %s" % PASSWORD, ""]
        log_file = self.log_file if state_dir == self.state_dir \
            else os.path.join(state_dir, "webqq.log")
        lines += ["[daemon]", "state_dir = %s" % state_dir, "logfile = %s" % log_file,
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
        path = os.path.join(self.dir, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as ini:
            ini.write("\n".join(lines))
        os.chmod(path, 0o600)               # it may hold the API token (or passwords)
        return path

    @staticmethod
    def simulator_ca() -> str:
        import webqq.simulator
        return webqq.simulator.CA_FILE

    def start_daemon(self, timeout: float = 30.0) -> None:
        """``webqq -c INI run``, then wait until the status file says online."""
        self.start_daemon_process()
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

    def start_daemon_process(self) -> None:
        """``webqq -c INI run``, not waiting for anything."""
        env = dict(os.environ, WEBQQ_PASSWORD=PASSWORD)
        argv = [os.path.join(BIN, "webqq")]
        if self.tracemalloc_frames > 0:
            argv = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "_traced_daemon.py")]
            env.update(WEBQQ_TRACEMALLOC=self.snapshot_dir,
                       WEBQQ_TRACEMALLOC_FRAMES=str(self.tracemalloc_frames))
        self.daemon = self._spawn(argv + ["-c", self.write_config(), "run"], "daemon", env)

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

    def snapshot(self, timeout: float = 120.0):
        """A tracemalloc snapshot of the daemon (SIGUSR2, then wait for its file): the
        ``tracemalloc.Snapshot``, or None when the daemon runs without tracemalloc, is
        gone, or wrote nothing within ``timeout`` seconds."""
        if self.tracemalloc_frames <= 0 or self.daemon is None or self.daemon.poll() is not None:
            return None
        self._snapshots += 1
        path = os.path.join(self.snapshot_dir, "snapshot-%d.pickle" % self._snapshots)
        self.daemon.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() >= deadline or self.daemon.poll() is not None:
                return None
            time.sleep(0.2)
        return tracemalloc.Snapshot.load(path)

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


class Fleet:
    """The daemons of one bench cell against a rig's simulator: ``shared`` is one daemon
    with every account (``[account:qQQ]`` sections), ``process`` one daemon per account
    (the peers' model), each with its own configuration, state_dir and log.

    ``pin_core``: the core the daemons are pinned to (None: not pinned).
    """

    def __init__(self, rig: Rig, model: str, accounts: list, pin_core=None) -> None:
        if model not in ("shared", "process"):
            raise ValueError("model: shared or process")
        self.rig, self.model, self.accounts = rig, model, list(accounts)
        self.groups = [self.accounts] if model == "shared" else [[qq] for qq in self.accounts]
        self.pin_core = pin_core
        self.daemons, self.logs, self.states = [], [], []

    def _ini(self, index: int) -> str:
        return self.rig.write_config(accounts=self.groups[index],
                                     state_dir=self.states[index],
                                     name="webqq-%d.ini" % index)

    def start(self) -> None:
        env = dict(os.environ, WEBQQ_PASSWORD=PASSWORD)
        for index in range(len(self.groups)):
            state_dir = os.path.join(self.rig.dir, "state-%d" % index)
            os.makedirs(state_dir, exist_ok=True)
            self.states.append(state_dir)
            self.logs.append(os.path.join(state_dir, "webqq.log"))
            proc = self.rig._spawn([os.path.join(BIN, "webqq"), "-c", self._ini(index), "run"],
                                   "daemon-%d" % index, env)
            if self.pin_core is not None:
                try:
                    os.sched_setaffinity(proc.pid, {self.pin_core})
                except OSError:
                    pass
            self.daemons.append(proc)

    def online(self) -> set:
        """The accounts whose "online as QQ" is in the logs."""
        seen = set()
        for path in self.logs:
            try:
                with open(path, errors="replace") as log:
                    for line in log:
                        if "online as " in line:
                            seen.add(int(line.split("online as ", 1)[1].split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return seen

    def wait_online(self, timeout: float) -> float:
        """Seconds until every account was online; RuntimeError after ``timeout``."""
        start = time.monotonic()
        want = set(self.accounts)
        while True:
            online = self.online()
            if want <= online:
                return time.monotonic() - start
            if not self.alive():
                raise RuntimeError("a daemon exited; see %s" % self.rig.dir)
            if time.monotonic() - start > timeout:
                raise RuntimeError("%d of %d accounts online after %g s; see %s" % (
                    len(online & want), len(want), timeout, self.rig.dir))
            time.sleep(0.2)

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.daemons)

    def cpu(self) -> float:
        """Seconds on a CPU of every daemon's threads (schedstat: ns, not 10 ms ticks)."""
        return sum(cpu_exact(proc.pid) for proc in self.daemons)

    def rss(self) -> int:
        return sum(rss_kb(proc.pid) for proc in self.daemons)

    def pss(self) -> int:
        return sum(pss_kb(proc.pid) for proc in self.daemons)

    def close(self) -> None:
        for proc in self.daemons:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        for proc in self.daemons:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.daemons = []


def cpu_exact(pid: int) -> float:
    """Seconds on a CPU of every thread of ``pid`` (/proc/PID/task/*/schedstat, in ns):
    /proc/PID/stat counts in 10 ms ticks, too coarse for an idle daemon."""
    total = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def pss_kb(pid: int) -> int:
    """Pss of ``pid`` (/proc/PID/smaps_rollup): a page shared by k processes counts 1/k."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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
