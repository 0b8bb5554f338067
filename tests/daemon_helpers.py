"""Helpers of the daemon and CLI tests: the real ``webqq`` command in a subprocess.

Each test writes its own ini file in a temporary directory (state_dir beside it, the
embedded simulator on ports 0), runs ``python -m webqq.cli`` and waits on conditions:
the status file the daemon rewrites, the simulator's ``/_sim/sent``; never fixed sleeps.
A stand-alone simulator (``python -m webqq.simulator.cli``) serves the tests where the
simulator must outlive the daemon (a session resumed after SIGKILL).
"""
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from webqq.simulator import CA_FILE
from webqq.simulator.app import HTTP_HOSTS, TLS_HOSTS

#: Seconds any wait of these tests may take before the test fails.
DEADLINE = 20.0
QQ = 10001
FRIEND = 20001
GROUP = 30001
DISCUSSION = 40001
PASSWORD = "webqq-demo"
REPO = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Polls ``condition()`` until it returns something true; returns that.

    Raises AssertionError naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.02)


def write_config(directory: Path, *, simulator: Optional[Dict[str, str]] = None,
                 extra: str = "", **sections: Dict[str, str]) -> Path:
    """Writes ``directory/webqq.ini``: an embedded simulator on free ports, state in
    ``directory/run``, debug logging to ``directory/webqq.log``; ``sections`` add or
    replace keys (``bot={"command_prefix": "#"}``); ``extra`` is appended verbatim."""
    values: Dict[str, Dict[str, str]] = {
        "daemon": {"state_dir": "run", "logfile": "webqq.log", "loglevel": "debug"},
        "simulator": {"embedded": "yes", "port": "0", "tls_port": "0", "poll_hold": "5"},
        "api": {"listen": ""},
    }
    if simulator is not None:
        values["simulator"] = simulator
    for name, keys in sections.items():
        values.setdefault(name, {}).update(keys)
    lines = []
    for name, keys in values.items():
        lines.append("[%s]" % name)
        lines += ["%s =%s" % (key, (" " + value) if value else "") for key, value in
                  keys.items()]
        lines.append("")
    path = directory / "webqq.ini"
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    path.chmod(0o600)
    return path


def environment(pythonpath: Optional[Path] = None,
                runtime: Optional[Path] = None) -> Dict[str, str]:
    """The environment of a child: this checkout first on PYTHONPATH, no password
    variable, and ``runtime`` (made if missing) as XDG_RUNTIME_DIR, where a daemon
    leaves the note that leads to its state_dir: each test has its own."""
    env = dict(os.environ)
    env.pop("WEBQQ_PASSWORD", None)
    paths = [str(REPO)] + ([str(pythonpath)] if pythonpath else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if runtime is not None:
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    return env


def runtime_of(config: Path) -> Path:
    """The XDG_RUNTIME_DIR of the daemons and commands of the test owning ``config``."""
    return config.parent / "xdg-runtime"


def webqq(config: Path, *args: str, timeout: float = 60.0,
          pythonpath: Optional[Path] = None,
          runtime: Optional[Path] = None) -> subprocess.CompletedProcess:
    """Runs ``webqq -c CONFIG ARGS...`` to completion; output captured as text."""
    return subprocess.run([sys.executable, "-m", "webqq", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=environment(pythonpath, runtime or runtime_of(config)),
                          cwd=str(config.parent))


class Daemon:
    """A ``webqq run`` child process, and what a test asks of it."""

    def __init__(self, config: Path, pythonpath: Optional[Path] = None,
                 fd_limit: Optional[int] = None) -> None:
        """``fd_limit``: the child's RLIMIT_NOFILE (soft and hard), when given."""
        self.config = config
        self.state_dir = config.parent / "run"
        self.log = config.parent / "webqq.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webqq", "-c", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=environment(pythonpath, runtime_of(config)), cwd=str(config.parent),
            preexec_fn=None if fd_limit is None else lambda: resource.setrlimit(
                resource.RLIMIT_NOFILE, (fd_limit, fd_limit)))
        self.stderr = ""

    def status(self) -> Dict[str, Any]:
        return read_status(self.state_dir)

    def wait_online(self) -> Dict[str, Any]:
        def online():
            if self.process.poll() is not None:
                raise AssertionError("webqq run exited %s: %s%s" % (
                    self.process.returncode, self.process.stderr.read(), self.log_text()))
            status = self.status()
            return status if status.get("state") == "online" else None
        return wait_for(online, "the daemon to be online")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signals the daemon and waits for its exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=DEADLINE)
        finally:
            self.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None and not self.process.stderr.closed:
            self.stderr += self.process.stderr.read()
            self.process.stderr.close()


def read_status(state_dir: Path) -> Dict[str, Any]:
    """The daemon's status file, or {} when it is not there yet."""
    try:
        return json.loads((state_dir / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class SimulatorControl:
    """The ``/_sim/`` surface of a simulator on ``port``, whose control token is
    ``token``."""

    def __init__(self, port: int, token: str) -> None:
        self.base = "http://127.0.0.1:%d/_sim/" % port
        self.token = token

    def _call(self, verb: str, body: Optional[dict] = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-Sim-Token": self.token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + verb, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def offline(self, seconds: float) -> None:
        """Refuse every connection for ``seconds`` (this surface included)."""
        self._call("offline", {"seconds": seconds})

    def kick(self) -> None:
        """Kick the bot's session, with the notice a login elsewhere brings."""
        self._call("kick", {"account": QQ, "kick_message": True})

    def say(self, text: str, *, sender: int = FRIEND, **where: int) -> None:
        """A message to the bot: from a friend, or in ``group=`` / ``discussion=``."""
        self._call("say", dict({"to": QQ, "from": sender, "text": text}, **where))

    def sent(self) -> List[Dict[str, Any]]:
        return self._call("sent?account=%d" % QQ)

    def wait_sent(self, text: str, timeout: float = DEADLINE) -> Dict[str, Any]:
        """The first message the bot sent with this text, once it is there."""
        return wait_for(lambda: next((m for m in self.sent() if m["text"] == text), None),
                        "the bot to send %r" % text, timeout)

    def rotate(self) -> None:
        """The next poll answers 116 with a new ptwebqq."""
        self._call("rotate", {"account": QQ})

    def state(self) -> Dict[str, Any]:
        return self._call("state")

    def demand_captcha(self, code: str) -> None:
        """The bot's next check asks for a verify code showing ``code``."""
        self._call("captcha", {"account": QQ, "code": code})

    def expire(self) -> None:
        """The bot's login expires: its next poll and relink are refused (103)."""
        self._call("expire", {"account": QQ})


def daemon_simulator(daemon: Daemon) -> SimulatorControl:
    """The control surface of a running daemon's embedded simulator (its token is in the
    line the daemon logs when it starts the simulator)."""
    port = daemon.wait_online()["simulator"]["port"]
    found = re.search(r"embedded simulator listening on 127\.0\.0\.1:%d .*control token "
                      r"(\S+)" % port, daemon.log_text())
    assert found, "the daemon did not log the embedded simulator's control token"
    return SimulatorControl(port, found.group(1))


class StandaloneSimulator:
    """``webqq-simulator`` in a child process on free ports (outlives a daemon)."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(16)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webqq.simulator.cli", "--port", "0", "--tls-port", "0",
             # One word with "=": a token drawn with a leading "-" is no option.
             "--poll-hold", "5", "--control-token=" + self.token],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=environment())
        banner = self.process.stdout.readline()
        ports = re.findall(r"127\.0\.0\.1:(\d+)", banner)
        if len(ports) < 2:
            self.close()
            raise AssertionError("unexpected simulator banner: %r" % banner)
        self.port, self.tls_port = int(ports[0]), int(ports[1])
        self.control = SimulatorControl(self.port, self.token)

    def hosts(self) -> Dict[str, str]:
        """A daemon's ``[hosts]`` section for this simulator."""
        hosts = {host: "127.0.0.1:%d" % self.port for host in HTTP_HOSTS}
        hosts.update({host: "127.0.0.1:%d" % self.tls_port for host in TLS_HOSTS})
        return hosts

    def config(self, directory: Path, **sections: Dict[str, str]) -> Path:
        """An ini file for a daemon logging in to this simulator as a real server."""
        sections.setdefault("account", {}).update({"qq": str(QQ), "password": PASSWORD})
        sections.setdefault("network", {}).update({"ca_file": CA_FILE})
        return write_config(directory, simulator={"embedded": "no"}, hosts=self.hosts(),
                            **sections)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
