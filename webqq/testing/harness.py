"""The processes of a bot test: a simulator and a ``webqq run`` daemon, wired to the bot.

harness: starts ``python -m webqq.testing.simulator_child`` (a Simulator on free ports,
its control token on its first line), writes the daemon's ini file (the simulator's hosts
and CA, its account's password, the bot's reverse WebSocket or POST URL, the plugins),
starts ``python -m webqq ... run``, and waits until the simulator sees the account online
and, for a reverse WebSocket, until webqq says it connected to the bot. ``Control`` is
the simulator's /_sim/ surface, called with the token.

It runs webqq as a child process, as a user would, and never imports the daemon or the
client: the simulator side judges what the bot did. It never logs a password or a token;
the files it writes (ini, logs) stay in the directory it was given.
"""
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from webqq.simulator import CA_FILE, WorldError, load_world

__all__ = ["Control", "Harness", "HarnessError", "SimulatorError", "TOKEN_HEADER", "free_port"]

#: The header /_sim/ reads its control token from.
TOKEN_HEADER = "X-Sim-Token"
#: Seconds to wait for the children to start, log in and (reverse WebSocket) connect.
STARTUP_TIMEOUT = 30.0
#: Seconds a child has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
#: Seconds between two looks at a child process's progress (its files, /_sim/state).
CHECK_INTERVAL = 0.05

# The directory that holds the webqq package, for the children's PYTHONPATH: they must
# run this very webqq, whatever the current directory.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)
# What the daemon logs once its reverse WebSocket is up (webqq/onebot).
_REVERSE_CONNECTED = "reverse WebSocket connected to"


class HarnessError(Exception):
    """Raised when the simulator or webqq cannot be started, or the bot is not reached;
    the message says which, with the end of the child's output."""


class SimulatorError(Exception):
    """Raised when the simulator refuses a control request (its answer is the message),
    or cannot be reached (an outage)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Control:
    """The /_sim/ surface of a simulator on ``port``: JSON in and out, with its token.

    ``call`` is a plain blocking request (the simulator runs in another process and
    answers at once); ``call_async`` is the same on the running event loop.
    """

    def __init__(self, port: int, token: str, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.token = host, port, token

    def _request(self, verb: str, body, method) -> tuple:
        method = method or ("GET" if body is None else "POST")
        headers = {TOKEN_HEADER: self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return method, "/_sim/" + verb, headers, data

    def _answer(self, verb: str, status: int, data: bytes) -> Any:
        try:
            value = json.loads(data or b"null")
        except ValueError:
            value = None
        if status != 200:
            reason = value.get("error") if isinstance(value, dict) else \
                data[:200].decode("utf-8", "replace")
            raise SimulatorError("/_sim/%s: %s (HTTP %d)" % (verb.split("?")[0], reason, status),
                                 status)
        return value

    def _unreachable(self, verb: str, error: Exception) -> SimulatorError:
        return SimulatorError("/_sim/%s: the simulator at %s:%d cannot be reached (%s); "
                              "is it in an outage?" % (verb.split("?")[0], self.host,
                                                       self.port, error))

    def call(self, verb: str, body=None, method: Optional[str] = None) -> Any:
        """One control request: ``body`` None is a GET. Returns the decoded answer.

        Raises:
            SimulatorError: refused (the simulator's error message) or unreachable.
        """
        method, path, headers, data = self._request(verb, body, method)
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return self._answer(verb, response.status, response.read())
        except (OSError, http.client.HTTPException) as error:
            raise self._unreachable(verb, error) from None
        finally:
            connection.close()

    async def call_async(self, verb: str, body=None, method: Optional[str] = None) -> Any:
        """``call`` on the running event loop."""
        method, path, headers, data = self._request(verb, body, method)
        client = AsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(HTTPRequest(
                "http://%s:%d%s" % (self.host, self.port, path), method=method, headers=headers,
                body=data, request_timeout=10, connect_timeout=5), raise_error=False)
        except (OSError, HTTPClientError) as error:     # refused, reset, timed out
            raise self._unreachable(verb, error) from None
        finally:
            client.close()
        return self._answer(verb, response.code, response.body)

    def account_state(self, qq: int) -> Dict[str, Any]:
        return self.call("state")["accounts"][str(qq)]


class Harness:
    """A simulator and a webqq daemon in child processes, for one test or scenario.

    Args:
        directory: where the ini file, the state and the logs go (created).
        bot_url: the bot's reverse WebSocket (``ws://``, ``wss://``) or event POST
            (``http://``, ``https://``) URL; None: no OneBot bot.
        plugins: webqq plugin modules to load; None: none with a bot, else
            ``webqq.plugins.builtin``.
        token: the OneBot access token webqq presents and requires (None: generated
            by webqq into its state_dir).
        secret: signs POSTed events (``X-Signature``).
        api_listen: ``HOST:PORT`` of webqq's OneBot API (port 0: any free one).
        world: a world file for the simulator; None: the built-in world.
        account: the bot's QQ number; None: the world's first account.
        startup_timeout: seconds to wait for everything to be up.

    Raises:
        HarnessError: the bot URL is not ws(s):// or http(s)://, the world file cannot
            be loaded, or the account is not in it.
    """

    def __init__(self, directory, *, bot_url: Optional[str] = None,
                 plugins: Optional[Sequence[str]] = None, token: Optional[str] = None,
                 secret: Optional[str] = None, api_listen: str = "127.0.0.1:0",
                 world: Optional[str] = None, account: Optional[int] = None,
                 startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.directory = Path(directory).resolve()
        if bot_url is not None and bot_url.split("://")[0] not in ("ws", "wss", "http", "https"):
            raise HarnessError("the bot URL must start with ws://, wss:// (reverse "
                               "WebSocket) or http://, https:// (events POSTed): %s" % bot_url)
        self.bot_url = bot_url
        if plugins is None:
            plugins = () if bot_url else ("webqq.plugins.builtin",)
        self.plugins = tuple(plugins)
        self.token, self.secret, self.api_listen = token, secret, api_listen
        self.world_file = None if world is None else str(Path(world).resolve())
        #: The simulator's world, loaded here too: names for reports, the password.
        try:
            self.world = load_world(self.world_file)
        except (OSError, WorldError) as error:     # unreadable, or not a world
            raise HarnessError("the simulator's world %s: %s" % (
                world, getattr(error, "strerror", None) or error)) from None
        if account is None:
            account = next(iter(self.world.accounts))
        if account not in self.world.accounts:
            raise HarnessError("account %d is not in the simulator's world" % account)
        self.account = account
        self.startup_timeout = startup_timeout
        self.config = self.directory / "webqq.ini"
        self.log = self.directory / "webqq.log"
        self.port = self.tls_port = 0
        self.hosts: Dict[str, list] = {}        # protocol host -> [address, port]
        self.control: Optional[Control] = None
        self._simulator = None
        self._daemon = None
        self._daemon_output = None

    # --- starting -----------------------------------------------------------------------

    def start(self) -> "Harness":
        """Start both children and wait until the bot can be talked to.

        Raises:
            HarnessError: a child failed or the bot was not reached in time (everything
                started is stopped again).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.startup_timeout
        try:
            self._start_simulator(deadline)
            self._write_config()
            self._start_daemon()
            self._wait(self._online, "webqq to log in as %d" % self.account, deadline)
            if self.bot_url and self.bot_url.startswith("ws"):
                self._wait(lambda: _REVERSE_CONNECTED in self.log_text(),
                           "webqq to connect to the bot at %s (is the bot running?)"
                           % self.bot_url, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("WEBQQ_PASSWORD", None)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
        return env

    def _start_simulator(self, deadline: float) -> None:
        command = [sys.executable, "-m", "webqq.testing.simulator_child"]
        if self.world_file:
            command += ["--world", self.world_file]
        errors = open(self.directory / "simulator.log", "wb")
        try:
            self._simulator = subprocess.Popen(command, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, stderr=errors,
                                               env=self._environment())
        finally:
            errors.close()
        line = _read_line(self._simulator.stdout, deadline)
        try:
            ready = json.loads(line)
            self.port, self.tls_port = ready["port"], ready["tls_port"]
            self.hosts = ready["hosts"]
            self.control = Control(self.port, ready["token"])
        except (ValueError, KeyError, TypeError):
            raise HarnessError("the simulator did not start: %s" % (
                line.decode("utf-8", "replace").strip()
                or _tail(self.directory / "simulator.log"))) from None

    def _write_config(self) -> None:
        api = {"listen": self.api_listen, "token": self.token,
               "secret": self.secret}
        if self.bot_url:
            api["ws_reverse_url" if self.bot_url.startswith("ws") else "post_url"] = self.bot_url
        sections = {
            "account": {"qq": self.account,
                        "password": self.world.accounts[self.account].password},
            "daemon": {"state_dir": self.directory / "run", "logfile": self.log,
                       "loglevel": "info"},
            "network": {"ca_file": CA_FILE},
            "hosts": {name: "%s:%d" % (address, port)
                      for name, (address, port) in self.hosts.items()},
            "simulator": {"embedded": "no"},
            "bot": {"plugins": ", ".join(self.plugins)},
            "api": api,
        }
        lines = ["# Written by webqq.testing for one test run."]
        for name, keys in sections.items():
            lines.append("[%s]" % name)
            for key, value in keys.items():
                if value is None:
                    continue
                lines.append("%s =%s" % (key, " %s" % value if value != "" else ""))
            lines.append("")
        self.config.write_text("\n".join(lines), encoding="utf-8")
        self.config.chmod(0o600)

    def _start_daemon(self) -> None:
        self._daemon_output = open(self.directory / "webqq.out", "wb")
        self._daemon = subprocess.Popen(
            [sys.executable, "-m", "webqq", "-c", str(self.config), "run"],
            stdin=subprocess.DEVNULL, stdout=self._daemon_output,
            stderr=subprocess.STDOUT, env=self._environment(), cwd=str(self.directory))

    def _online(self) -> bool:
        entry = self.control.account_state(self.account)
        return entry["state"] == "online" and entry.get("polls", 0) > 0

    def _wait(self, condition: Callable[[], bool], what: str, deadline: float) -> None:
        """Until ``condition`` is true. The children give no event for it across the
        process boundary, so it is looked at every CHECK_INTERVAL; webqq exiting is one,
        and ends the wait at once (HarnessError), as does the deadline."""
        assert self._daemon is not None, "_wait runs after _start_daemon"
        while not condition():
            try:
                self._daemon.wait(CHECK_INTERVAL)
            except subprocess.TimeoutExpired:
                pass
            else:
                raise HarnessError("webqq exited (status %s) while waiting for %s:\n%s"
                                   % (self._daemon.returncode, what, self.output_tail()))
            if time.monotonic() > deadline:
                raise HarnessError("timed out after %g s waiting for %s; the end of webqq's "
                                   "log:\n%s" % (self.startup_timeout, what, self.output_tail()))

    # --- while running ------------------------------------------------------------------

    @property
    def feed_url(self) -> str:
        """The simulator's chat feed (``webqq.simulator.web``)."""
        return "ws://127.0.0.1:%d/_chat/feed" % self.port

    @property
    def page_url(self) -> str:
        return "http://127.0.0.1:%d/" % self.port

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def output_tail(self, lines: int = 20) -> str:
        """The end of webqq's log (or of its output, when it never got to logging)."""
        return _tail(self.log, lines) or _tail(self.directory / "webqq.out", lines)

    # --- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop webqq (SIGTERM, then SIGKILL after STOP_TIMEOUT) and the simulator. Safe
        to call twice."""
        for process in (self._daemon, self._simulator):
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._simulator is not None:
            for pipe in (self._simulator.stdin, self._simulator.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        if self._daemon_output is not None:
            self._daemon_output.close()
        self._daemon = self._simulator = self._daemon_output = None


def _read_line(pipe, deadline: float) -> bytes:
    """One line from a child's stdout, or b"" at EOF or when the deadline passes."""
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            return line
        chunk = os.read(pipe.fileno(), 4096)
        if not chunk:
            return line
        line += chunk
    return line


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A loopback port free at the time of asking (for a bot to listen on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
