"""The daemon: one WebQQ session kept online, its messages handed to the plugins.

What it is for: ``Daemon(config).run()`` is ``webqq run`` (foreground) and, after
``Daemon.start()`` has detached, the body of ``webqq start``. In order, the life of a
daemon, as ``Daemon._main`` reads:

1. take the pidfile lock (``Pidfile``: ``fcntl.flock``, so a live daemon is never
   mistaken for a stale file), set up logging (``webqq.logs.LogSetup``: one format, secrets masked,
   repeated warnings collapsed, logrotate-friendly or size-rotated);
2. start the embedded simulator when ``[simulator] embedded = yes`` and route every
   protocol host to it;
3. build the ``HTTPStream`` and the ``WebQQClient``, load the plugins into a
   ``Dispatcher``, write the pid into the pidfile (now we are up), start the client;
4. serve: each ``"message"`` event becomes a ``webqq.plugins.Message`` for the plugins;
   replies go back through the client's queue. With ``[api] listen`` (or a
   ``post_url`` / ``ws_reverse_url``), ``webqq.api.OneBotApi`` serves OneBot v11 on the
   same IOLoop, its messages and queue in ``webqq.store`` (``messages.sqlite3``). ``status.json`` in state_dir is rewritten
   (atomically) on every state change and every ``STATUS_INTERVAL`` seconds;
5. on SIGTERM/SIGINT: let the outbound queue drain (``DRAIN_TIMEOUT``), save what is left
   to ``outbox-QQ.json`` (sent at the next start), close the API (what it accepted stays
   queued in its store), stop the client (it saves the session
   so the next start resumes it), stop the simulator, remove the pidfile.
   On SIGHUP: load the configuration again; a bad one is refused, logged, and the old one
   kept; plugins are re-imported with their new settings.

Signal handlers only hand over (``loop.add_signal_handler`` schedules a method that logs
and acts); OS effects (fork, setsid, kill, ...) are methods of ``System`` so tests can
swap them. Exit codes are ``ExitCode``.

What it must never do: speak the protocol (the client does), log a secret (``SecretMask``
guards every handler, as defence in depth), block the IOLoop, start a thread, or remove a
pidfile it did not write.
"""
import asyncio
import enum
import fcntl
import json
import logging
import logging.handlers
import os
import select
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from tornado.ioloop import IOLoop, PeriodicCallback

from webqq import statedir
from webqq.client.client import State, WebQQClient
from webqq.client.session import load_session
from webqq.daemon import config as configuration
from webqq.daemon.config import Config, ConfigError
from webqq.daemon.logs import LogSetup, MaskingCookieJar, SecretMask
from webqq.http.redact import url_secrets
from webqq.http.stream import HTTPStream, RetryPolicy
from webqq.onebot.api import ApiError, OneBotApi, check_listen
from webqq.onebot.store import Store
from webqq.onebot.token import api_token
from webqq.plugins import Dispatcher, Event, Message
from webqq.qq import Era
from webqq.tasks import TaskSet

__all__ = ["ExitCode", "Pidfile", "AlreadyRunning", "System", "Daemon", "read_status",
           "pidfile_path", "status_path"]

log = logging.getLogger("webqq.daemon")


class ExitCode(enum.IntEnum):
    """What the ``webqq`` process exits with, so that a supervisor can act on it."""
    OK = 0              # done, or stopped cleanly
    FAILURE = 1         # anything else that went wrong (not running, killed, offline)
    USAGE = 2           # a bad command line (argparse)
    CONFIG = 3          # the configuration cannot be used: restarting will not help
    LOGIN_REFUSED = 4   # the server refused the login for good (password): do not retry


#: Seconds between two rewrites of the status file while nothing changes.
STATUS_INTERVAL = 5.0
#: Seconds a count change (a message in or out) may wait before the status file shows
#: it: a busy bot rewrites the file at most this often.
STATUS_DELAY = 0.5
#: Seconds the outbound queue may take to drain at shutdown before the rest is saved.
DRAIN_TIMEOUT = 10.0


def pidfile_path(config: Config) -> Path:
    return config.daemon.state_dir / statedir.PIDFILE


def status_path(config: Config) -> Path:
    return config.daemon.state_dir / statedir.STATUS


def outbox_path(config: Config) -> Path:
    return config.daemon.state_dir / ("outbox-%d.json" % config.account.qq)


# --- pidfile and status file -----------------------------------------------------------

class AlreadyRunning(Exception):
    """Raised when another live process holds the pidfile lock; ``pid`` is the one it
    wrote (None while it is still starting)."""

    def __init__(self, path: Path, pid: Optional[int]) -> None:
        self.path, self.pid = path, pid
        who = "pid %d" % pid if pid else "a process that is starting"
        super().__init__("already running (%s holds %s)" % (who, path))


class Pidfile:
    """``state_dir/webqq.pid``: an ``fcntl.flock`` lock held for the daemon's life, and
    the pid written into it once the daemon is up (empty while it starts).

    The lock, not the file, says whether a daemon runs: a file left by a killed daemon is
    unlocked, so it is replaced. ``release()`` removes the file only if this process
    wrote it, and closing the descriptor (even by death) drops the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self._wrote = False

    def acquire(self) -> Optional[int]:
        """Take the lock and empty the file. Returns the pid a stale file held (None if
        none).

        The stale pid goes at once: until ``write`` a locked, empty file reads as
        "starting", so ``webqq stop`` or ``reload`` never signal a dead daemon's pid,
        which an unrelated process may have reused.

        Raises AlreadyRunning when a live process holds it; OSError when the file
        cannot be opened.
        """
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _parse_pid(os.pread(fd, 32, 0))
                os.close(fd)
                raise AlreadyRunning(self.path, pid) from None
            # The holder we waited on may have removed the file before we locked it:
            # then our lock is on a file nobody else will look at; take the new one.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        stale = _parse_pid(os.pread(fd, 32, 0))
        os.ftruncate(fd, 0)
        return stale

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def write(self, pid: int) -> None:
        """Write ``pid`` (the daemon is up)."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, b"%d\n" % pid, 0)
        os.fsync(self._fd)
        self._wrote = True

    def release(self) -> None:
        """Remove the file if we wrote it, then drop the lock. Safe to call twice."""
        if self._fd is None:
            return
        if self._wrote:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def probe(path: Path) -> Tuple[bool, Optional[int]]:
        """``(running, pid)``: whether a live process holds the lock, and the pid in the
        file (a stale one when not running; None when absent or empty)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False, None
        try:
            pid = _parse_pid(os.pread(fd, 32, 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True, pid
            return False, pid
        finally:
            os.close(fd)


def _parse_pid(data: bytes) -> Optional[int]:
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def read_status(config: Config) -> Optional[Dict[str, Any]]:
    """What the daemon last wrote to its status file, or None (absent or unreadable)."""
    try:
        with open(status_path(config), encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


# --- the operating system, as methods tests can swap ------------------------------------

class System:
    """Every effect on the process the daemon and the CLI have, in one place."""

    fork = staticmethod(os.fork)
    setsid = staticmethod(os.setsid)
    umask = staticmethod(os.umask)
    chdir = staticmethod(os.chdir)
    kill = staticmethod(os.kill)
    waitpid = staticmethod(os.waitpid)
    exit_now = staticmethod(os._exit)
    getpid = staticmethod(os.getpid)
    sleep = staticmethod(time.sleep)        # only the CLI waiting for another process
    monotonic = staticmethod(time.monotonic)

    def redirect_stdio(self) -> None:
        """Point stdin, stdout and stderr at /dev/null (a detached daemon has no tty)."""
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)

    def alive(self, pid: int) -> bool:
        """Whether process ``pid`` exists (signal 0)."""
        try:
            self.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


# --- the daemon ------------------------------------------------------------------------

class StartupError(Exception):
    """Raised before the daemon is up: ``code`` is the ExitCode to leave with."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    def line(self) -> str:
        """What the CLI prints: a configuration error's one line as it is."""
        return str(self) if self.code == ExitCode.CONFIG else "webqq: %s" % self


class Daemon:
    """One daemon process: ``run()`` in the foreground, or ``start()`` to detach first.

    Args:
        config: the loaded configuration (``webqq.config.load``).
        system: the OS effects (``System()``); tests may pass a stand-in.
    """

    def __init__(self, config: Config, *, system: Optional[System] = None) -> None:
        self.config = config
        # Loaded again on SIGHUP, after a detached daemon has changed directory.
        self.config_path = Path(os.path.abspath(config.source))
        self.system = system or System()
        self.mask = SecretMask()
        self._mask_configured_secrets(config)
        self.logs = LogSetup(self.mask)
        self.pidfile = Pidfile(pidfile_path(config))
        self.drain_timeout = DRAIN_TIMEOUT
        self.exit_code = ExitCode.OK
        self.started_at = time.time()
        self.phase = "starting"             # starting, running, stopping, stopped
        self.password: Optional[str] = None
        self.world = None                   # the embedded simulator's, after preflight()
        self.simulator = None
        self.stream = None
        self.client = None
        self.api: Optional[OneBotApi] = None
        self.dispatcher: Optional[Dispatcher] = None
        self.plugin_problems: List[str] = []
        self.counts: Dict[str, int] = dict.fromkeys(
            ("received", "sent", "send_failed", "send_ambiguous"), 0)
        self.online_since: Optional[float] = None
        self.resumed = False
        self.login_error: Optional[str] = None
        self.reloads = 0
        self.last_reload: Optional[Dict[str, Any]] = None
        self.shutdown_report: Dict[str, Any] = {}
        # OutgoingMessage.id -> (the message, (chat, target, text) to save if unsent)
        self._pending: Dict[int, Tuple[Any, Tuple[str, int, str]]] = {}
        self._tasks = TaskSet()
        self._stopping: Optional[asyncio.Event] = None
        self._status_timer: Optional[PeriodicCallback] = None
        self._status_timer_soon: Optional[object] = None     # a pending _status_soon()
        self._ready_fd: Optional[int] = None
        self._announced = False

    # -- the two ways in ---------------------------------------------------------------

    def run(self) -> int:
        """``webqq run``: the whole life of the daemon in this process. Returns the exit
        code (``ExitCode``)."""
        try:
            if self.password is None:
                self.preflight()
            return asyncio.run(self._main())
        except StartupError as error:
            self._tell_parent("fail %d %s" % (error.code, error))
            if self.logs.handler is not None:
                log.error("%s", error)
            else:
                print(error.line(), file=sys.stderr)
            return error.code
        except Exception as error:
            # A bug: its traceback belongs in the log, where a detached daemon's goes.
            self._tell_parent("fail %d crashed: %s: %s" % (ExitCode.FAILURE,
                                                          type(error).__name__, error))
            log.critical("the daemon crashed", exc_info=True)
            if self.logs.handler is None:
                raise
            return ExitCode.FAILURE
        finally:
            self.logs.close()
            self.pidfile.release()

    def preflight(self) -> None:
        """What can be refused before anything starts: the password and, with an
        embedded simulator, its world and our account in it.

        Raises StartupError (exit 3, the one ConfigError line).
        """
        try:
            password = configuration.resolve_password(self.config)
        except ConfigError as error:
            raise StartupError(ExitCode.CONFIG, str(error)) from None
        try:
            check_listen(self.config)
        except ApiError as error:
            raise StartupError(ExitCode.CONFIG, str(ConfigError(
                self.config.source, "api", "token", str(error)))) from None
        if self.config.simulator.embedded:
            from webqq.simulator import WorldError, load_world
            world_file = self.config.simulator.world
            try:
                self.world = load_world(str(world_file) if world_file else None)
            except WorldError as error:
                raise StartupError(ExitCode.CONFIG, str(ConfigError(
                    self.config.source, "simulator", "world", str(error)))) from None
            account = self.world.accounts.get(self.config.account.qq)
            if account is None:
                known = ", ".join(str(qq) for qq in sorted(self.world.accounts))
                raise StartupError(ExitCode.CONFIG, str(ConfigError(
                    self.config.source, "account", "qq", "%d is not an account of the "
                    "embedded simulator (its accounts: %s)" % (self.config.account.qq,
                                                               known))))
            if password is None:
                password = account.password
        self.mask.add(password)
        self.password = password

    def start(self, wait: float = 30.0) -> Tuple[int, str]:
        """``webqq start``: detach (double fork) and run in the grandchild. Here, in the
        parent, wait up to ``wait`` seconds for the daemon to report that it is up and
        how its login went.

        Returns ``(exit code, one line for the user)``. Never returns in the daemon.
        """
        try:
            self.preflight()
        except StartupError as error:
            return error.code, error.line()
        read_end, write_end = os.pipe()
        first = self.system.fork()
        if first == 0:
            os.close(read_end)
            self._detach(write_end)         # never returns
        os.close(write_end)
        self.system.waitpid(first, 0)       # the first child exits at once
        return self._await_report(read_end, wait)

    def _detach(self, ready_fd: int) -> None:
        """In the first child: new session, second fork, then the daemon's life.

        Forking before ``setsid`` makes us a process-group follower, which setsid
        requires; the second fork leaves the session leader behind, so the daemon can
        never acquire a controlling terminal by opening one.
        """
        code = ExitCode.FAILURE
        try:
            self.system.setsid()
            if self.system.fork() != 0:
                self.system.exit_now(0)
            self.system.umask(0o027)
            self.system.chdir("/")
            self.system.redirect_stdio()
            self._ready_fd = ready_fd
            if self.config.daemon.logfile is None:
                self.logs.fallback_file = self.config.daemon.state_dir / statedir.LOG
            code = self.run()
        finally:
            self.system.exit_now(int(code))

    def _await_report(self, read_end: int, wait: float) -> Tuple[int, str]:
        """Read the daemon's report lines until it closes the pipe or ``wait`` runs out:
        "up PID" (pidfile written), then "login HOW", "pending WHY" (a captcha) or
        "refused WHY"; or "fail CODE MESSAGE" when it could not start."""
        deadline = self.system.monotonic() + wait
        data = b""
        try:
            while True:
                left = deadline - self.system.monotonic()
                if left <= 0 or not select.select([read_end], [], [], left)[0]:
                    break
                chunk = os.read(read_end, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(read_end)
        lines = data.decode("utf-8", "replace").splitlines()
        up = next((line for line in lines if line.startswith("up ")), None)
        for line in lines:
            word, _, rest = line.partition(" ")
            if word == "fail":
                code, _, message = rest.partition(" ")
                return int(code), message
            if word == "refused":
                return ExitCode.LOGIN_REFUSED, "login refused: %s" % rest
        logfile = self.config.daemon.logfile or self.config.daemon.state_dir / statedir.LOG
        if up is None:
            return ExitCode.FAILURE, ("the daemon did not report within %g s; see %s"
                                      % (wait, logfile))
        pid = up.split()[1]
        outcome = next((line.partition(" ")[2] for line in lines
                        if line.startswith("login ") or line.startswith("pending ")),
                       "not online yet")
        return ExitCode.OK, "started, pid %s: %s; log: %s" % (pid, outcome, logfile)

    def _tell_parent(self, line: str) -> None:
        """One report line for a waiting ``webqq start`` (nothing when run in the
        foreground)."""
        if self._ready_fd is None:
            return
        try:
            os.write(self._ready_fd, line.encode("utf-8") + b"\n")
        except OSError:
            pass

    def _close_parent_pipe(self) -> None:
        if self._ready_fd is not None:
            os.close(self._ready_fd)
            self._ready_fd = None

    # -- the life, in order ------------------------------------------------------------

    async def _main(self) -> int:
        stale = self._take_pidfile()
        try:
            self.logs.apply(self.config.daemon)
        except OSError as error:
            raise StartupError(ExitCode.CONFIG, str(ConfigError(
                self.config.source, "daemon", "logfile", "%s: %s" % (
                    error.filename, error.strerror or error)))) from None
        log.info("webqq starting (pid %d), configuration %s", self.system.getpid(),
                 self.config_path)
        if stale is not None:
            log.info("replaced the stale pidfile of pid %d (it was not locked)", stale)
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._signalled, signum, self.shutdown)
        loop.add_signal_handler(signal.SIGHUP, self._signalled, signal.SIGHUP, self.reload)
        try:
            self._start_simulator()
            self._start_client(self.password)
            await self._start_api()
            self.dispatcher = Dispatcher(self._send, reply=self._reply,
                                         prefix=self.config.bot.command_prefix)
            self.plugin_problems = self.dispatcher.load(self.config.bot.plugins,
                                                        self.config.plugin_settings)
            self.pidfile.write(self.system.getpid())
            self.phase = "running"
            self._tell_parent("up %d" % self.system.getpid())
            self.client.start()
            self._resend_saved_outbox()
            self._status_timer = PeriodicCallback(self._tick, STATUS_INTERVAL * 1000)
            self._status_timer.start()
            self.write_status()
            await self._stopping.wait()
        except StartupError as error:
            self.exit_code = error.code
            raise
        finally:
            # The handlers stay while shutting down: a SIGHUP then is logged and ignored
            # (its default action would kill us before the session is saved).
            await self._shut_down()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        return int(self.exit_code)

    def _take_pidfile(self) -> Optional[int]:
        """Lock the pidfile; returns the pid of a stale file (None if there was none)."""
        state_dir = self.config.daemon.state_dir
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            stale = self.pidfile.acquire()
        except AlreadyRunning as error:
            raise StartupError(ExitCode.FAILURE, str(error)) from None
        except OSError as error:
            raise StartupError(ExitCode.CONFIG, str(ConfigError(
                self.config.source, "daemon", "state_dir", "%s: %s"
                % (state_dir, error.strerror or error)))) from None
        return stale

    def _start_simulator(self) -> None:
        settings = self.config.simulator
        if not settings.embedded:
            return
        from webqq.simulator import Simulator  # only a daemon that embeds it needs it
        options: Dict[str, Any] = {}
        if settings.poll_hold is not None:
            options["poll_hold"] = settings.poll_hold
        try:
            self.simulator = Simulator(world=self.world, port=settings.port,
                                       tls_port=settings.tls_port, **options)
        except OSError as error:
            raise StartupError(ExitCode.FAILURE, "the embedded simulator cannot listen on "
                               "ports %d/%d: %s" % (settings.port, settings.tls_port,
                                                    error.strerror or error)) from None
        # Its access log (a line per request, polls included) is for debugging.
        logging.getLogger("webqq.simulator").setLevel(
            logging.NOTSET if self.config.daemon.loglevel <= logging.DEBUG else logging.WARNING)
        log.info("embedded simulator listening on 127.0.0.1:%d (http, /_sim/) and "
                 "127.0.0.1:%d (https); /_sim/ control token %s", self.simulator.port,
                 self.simulator.tls_port, self.simulator.control_token)

    def _start_client(self, password: str) -> None:
        network = self.config.network
        if self.simulator is not None:
            hosts, ca_file = self.simulator.hosts, self.simulator.ca_file
        else:
            hosts = dict(self.config.hosts) or None
            ca_file = str(network.ca_file) if network.ca_file else None
        self.stream = HTTPStream(
            cookiejar=MaskingCookieJar(self.mask), hosts=hosts,
            retry=RetryPolicy(attempts=network.retries + 1),
            connect_timeout=network.connect_timeout,
            request_timeout=network.request_timeout, ca_file=ca_file)
        state_dir = str(self.config.daemon.state_dir)
        self._mask_session(load_session(state_dir, self.config.account.qq))
        # [network] retries bounds every request's retries, the long poll's included.
        options: Dict[str, Any] = {
            "send_interval": self.config.bot.send_interval,
            "resend_ambiguous": self.config.bot.resend_ambiguous,
            "era": None if self.config.account.era == "auto" else Era(
                self.config.account.era),
            "poll_retry": RetryPolicy(idempotent=True, attempts=network.retries + 1)}
        if self.simulator is not None:
            options["poll_hold"] = self.simulator.poll_hold
        self.client = WebQQClient(self.config.account.qq, password, self.stream,
                                  state_dir, **options)
        self.client.add_listener(self._on_client_event)

    async def _start_api(self) -> None:
        """The OneBot API, when ``[api]`` asks for any of its ways (listen, post_url,
        ws_reverse_url); its token is the configured one or generated into state_dir."""
        settings = self.config.api
        if settings.listen is None and not settings.post_url and not settings.ws_reverse_url:
            return
        token = api_token(self.config, create=True)
        self.mask.add(token)
        store = Store(self.config.daemon.state_dir / statedir.STORE)
        self.api = OneBotApi(self.client, settings, self_id=self.config.account.qq,
                             store=store, token=token)
        try:
            await self.api.start()
        except ApiError as error:
            await self.api.close()
            self.api = None
            raise StartupError(ExitCode.FAILURE, "the API %s" % error) from None

    def _mask_configured_secrets(self, config: Config) -> None:
        """The secrets the configuration itself holds: the API's token and secret, the
        credentials in its URLs, and the plugin settings ``webqq check`` masks."""
        self.mask.add(config.account.password)
        self.mask.add(config.api.token)
        self.mask.add(config.api.secret)
        for url in (config.api.post_url, config.api.ws_reverse_url):
            for part in url_secrets(url):
                self.mask.add(part)
        for settings in config.plugin_settings.values():
            for key, value in settings.items():
                if configuration._looks_secret(key):
                    self.mask.add(value)

    def _mask_session(self, saved: Any) -> None:
        if saved is not None:
            self.mask.add(saved.psessionid)
            self.mask.add(saved.vfwebqq)

    # -- client events -----------------------------------------------------------------

    def _on_client_event(self, event: Any) -> None:
        """Every client event: bookkeeping here, then the plugins."""
        kind = event.kind
        if kind == "message":
            self.counts["received"] += 1
            self._tasks.spawn(self._handle(self._as_message(event)))
            return
        if kind == "sent":
            self._on_sent(event.message)
        elif kind == "online":
            self._on_online(event)
        elif kind == "login_failed":
            self.login_error = str(event.error)
            if event.final:
                log.error("login refused for good: %s", event.error)
                self._tell_parent("refused %s" % event.error)
                self.exit_code = ExitCode.LOGIN_REFUSED
                self.shutdown()
        elif kind == "captcha":
            log.warning("the server wants a verify code: read %s, then answer with "
                        "webqq captcha CODE", event.path)
            self._tell_parent("pending waiting for a verify code (%s)" % event.path)
            self._close_parent_pipe()
        elif kind == "state":
            if event.new is State.OFFLINE and self.exit_code is ExitCode.OK \
                    and self.phase == "running":
                log.error("offline for good: %s; stopping", event.reason)
                self.exit_code = ExitCode.FAILURE
                self.shutdown()
            self.write_status()
        if self.phase == "running":
            self._tasks.spawn(self.dispatcher.dispatch_event(self._as_event(event)))

    def _on_online(self, event: Any) -> None:
        self._mask_session(load_session(str(self.config.daemon.state_dir),
                                        self.config.account.qq))
        self.online_since = time.time()
        self.resumed = bool(event.resumed)
        how = "resumed the saved session" if event.resumed else \
            "relinked" if event.relinked else "logged in"
        log.info("online as %d (%s)", self.config.account.qq, how)
        self.write_status()
        self._tell_parent("login online as %d (%s)" % (self.config.account.qq, how))
        self._close_parent_pipe()
        if self.simulator is not None and not self._announced:
            self._announced = True
            base = "http://127.0.0.1:%d" % self.simulator.port
            log.info("embedded simulator: %s/_sim/ ; make friend 20001 say !ping with:", base)
            log.info("curl -d '{\"to\": %d, \"from\": 20001, \"text\": \"%sping\"}' %s/_sim/say"
                     " && sleep 1 && curl '%s/_sim/sent?account=%d'", self.config.account.qq,
                     self.config.bot.command_prefix, base, base, self.config.account.qq)

    def _on_sent(self, message: Any) -> None:
        self._pending.pop(message.id, None)
        self._status_soon()
        status = message.status.value
        if status == "sent":
            self.counts["sent"] += 1
        elif status == "failed":
            self.counts["send_failed"] += 1
            if self.phase == "running":
                log.warning("a %s message was not sent: %s", message.chat, message.error)
        elif status == "ambiguous":
            self.counts["send_ambiguous"] += 1

    @staticmethod
    def _as_message(event: Any) -> Message:
        """The client's MessageReceived in the plugins' terms (QQ and group numbers)."""
        sender = event.sender
        group = event.group.number if event.group is not None else None
        discussion = event.discussion.did if event.discussion is not None else None
        reply_to = {"buddy": sender.qq, "group": group, "discussion": discussion,
                    "session": sender.qq}.get(event.chat)
        return Message(chat=event.chat, text=event.text, sender=sender.qq,
                       sender_name=sender.name, group=group, discussion=discussion,
                       reply_to=reply_to, time=getattr(event.message, "time", 0) or 0,
                       raw=event)

    @staticmethod
    def _as_event(event: Any) -> Event:
        data = {key: value for key, value in vars(event).items()} \
            if hasattr(event, "__dict__") else {}
        return Event(kind=event.kind, data=data)

    async def _handle(self, message: Message) -> None:
        await self.dispatcher.dispatch(message)
        self._status_soon()

    # -- sending (the plugins' send and reply) -----------------------------------------

    def _send(self, chat: str, target: int, text: str) -> Any:
        """The plugins' ``send``: queue ``text`` on the client, remembered until sent."""
        senders = {"buddy": self.client.send_buddy, "group": self.client.send_group,
                   "discussion": self.client.send_discussion}
        if chat not in senders:
            raise ValueError("%s messages can only be replied to" % chat)
        outgoing = senders[chat](target, text)
        self._pending[outgoing.id] = (outgoing, (chat, target, text))
        return outgoing

    def _reply(self, message: Message, text: str) -> Any:
        """The plugins' ``reply``: by number when we know it (so it survives a restart
        in the saved outbox), else through the client's own ``reply``."""
        if message.chat != "session" and message.reply_to is not None:
            return self._send(message.chat, message.reply_to, text)
        return self.client.reply(message.raw, text)

    def _resend_saved_outbox(self) -> None:
        """Queue what the last run could not send (``outbox-QQ.json``), then forget it."""
        path = outbox_path(self.config)
        try:
            with open(path, encoding="utf-8") as stream:
                saved = json.load(stream)
            os.unlink(path)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            log.warning("cannot read the saved outbox %s: %s", path, error)
            return
        for chat, target, text in saved:
            self._send(chat, target, text)
        log.info("queued %d message(s) the last run could not send", len(saved))

    # -- signals -----------------------------------------------------------------------

    def _signalled(self, signum: int, action: Any) -> None:
        """The signal handler: hand over to ``action`` on the IOLoop, nothing more."""
        IOLoop.current().add_callback(action, signal.Signals(signum).name)

    def shutdown(self, why: str = "") -> None:
        """Ask the daemon to stop (SIGTERM, SIGINT, a final login refusal)."""
        if self._stopping is None or self._stopping.is_set():
            return
        if why:
            log.info("%s: shutting down", why)
        self._stopping.set()

    def reload(self, why: str = "reload") -> None:
        """SIGHUP: load the configuration again and re-import the plugins. A bad
        configuration is refused and logged; the running one stays."""
        log.info("%s: reloading config and plugins", why)
        if self.phase != "running":
            log.warning("%s ignored: the daemon is %s", why, self.phase)
            return
        self.reloads += 1
        try:
            new = configuration.load(self.config_path)
        except ConfigError as error:
            log.error("reload refused, keeping the running configuration: %s", error)
            self.last_reload = {"serial": self.reloads, "at": time.time(), "ok": False,
                                "error": str(error), "plugin_errors": []}
            self.write_status()
            return
        try:
            self.logs.apply(new.daemon)
        except OSError as error:
            log.error("reload refused, keeping the running configuration: %s: %s",
                      new.daemon.logfile, error.strerror or error)
            self.last_reload = {"serial": self.reloads, "at": time.time(), "ok": False,
                                "error": "%s: %s" % (new.daemon.logfile,
                                                     error.strerror or error),
                                "plugin_errors": []}
            self.write_status()
            return
        self._warn_needs_restart(new)
        self._mask_configured_secrets(new)
        self.config = new
        self.dispatcher.prefix = new.bot.command_prefix
        self.plugin_problems = self.dispatcher.load(new.bot.plugins, new.plugin_settings,
                                                    reload=True)
        self.last_reload = {"serial": self.reloads, "at": time.time(), "ok": True,
                            "error": None, "plugin_errors": self.plugin_problems}
        log.info("reloaded: prefix %r, plugins %s", new.bot.command_prefix,
                 ", ".join(p.name for p in self.dispatcher.plugins) or "none")
        self.write_status()

    def _warn_needs_restart(self, new: Config) -> None:
        old = self.config
        for name in ("account", "network", "simulator", "api"):
            if getattr(old, name) != getattr(new, name):
                log.warning("reload: [%s] changed; it takes effect at the next restart", name)
        if dict(old.hosts) != dict(new.hosts):
            log.warning("reload: [hosts] changed; it takes effect at the next restart")
        if old.daemon.state_dir != new.daemon.state_dir:
            log.warning("reload: [daemon] state_dir changed; it takes effect at the next "
                        "restart")
        if old.bot.send_interval != new.bot.send_interval:
            log.warning("reload: [bot] send_interval changed; it takes effect at the next "
                        "restart")

    # -- stopping ----------------------------------------------------------------------

    async def _shut_down(self) -> None:
        """Drain or save the outbox, stop the client (session saved), stop the
        simulator, write the last status. Runs once, whatever stopped the daemon."""
        self.phase = "stopping"
        if self._status_timer is not None:
            self._status_timer.stop()
        report = self.shutdown_report
        if self.client is not None:
            if self._pending and self.client.state is State.ONLINE:
                waiting = [outgoing.done for outgoing, _ in self._pending.values()]
                log.info("waiting up to %g s for %d queued message(s)", self.drain_timeout,
                         len(waiting))
                await asyncio.wait(waiting, timeout=self.drain_timeout)
            report["outbox"] = self._save_outbox()
            if self.api is not None:
                await self.api.close()
            had_session = self.client.state not in (State.STOPPED, State.OFFLINE,
                                                    State.LOGGING_IN)
            self.client.stop("the daemon is stopping")
            report["session"] = "saved" if had_session else "none"
        await self._tasks.cancel_all()
        if self.stream is not None:
            self.stream.close()
        if self.simulator is not None:
            await self.simulator.stop()
        report["exit_code"] = int(self.exit_code)
        self.phase = "stopped"
        if self.pidfile.held:
            self.write_status()
        log.info("stopped (exit code %d): outbox %s, session %s", self.exit_code,
                 report.get("outbox", "-"), report.get("session", "-"))
        self._close_parent_pipe()

    def _save_outbox(self) -> str:
        """Save the messages that never left to ``outbox-QQ.json`` (the next start sends
        them); one with a part already sent is not saved, as resending could repeat it.
        Returns what happened, for the status file."""
        unsent = [saved for outgoing, saved in self._pending.values() if not outgoing.sent_at]
        in_flight = len(self._pending) - len(unsent)
        self._pending.clear()
        if in_flight:
            log.warning("%d message(s) were being sent as the daemon stopped; their fate "
                        "is unknown and they are not sent again", in_flight)
        if not unsent and not in_flight:
            return "drained"
        if unsent:
            path = outbox_path(self.config)
            try:
                statedir.atomic_write_json(path, unsent)
            except OSError as error:
                log.error("cannot save %d unsent message(s) to %s: %s", len(unsent), path,
                          error.strerror or error)
                return "lost %d" % len(unsent)
            log.info("saved %d unsent message(s) to %s", len(unsent), path)
        return "saved %d" % len(unsent) + (", %d in flight" % in_flight if in_flight else "")

    # -- status ------------------------------------------------------------------------

    def _tick(self) -> None:
        self.logs.flush()
        self.write_status()

    def status(self) -> Dict[str, Any]:
        """What ``webqq status`` shows, as written to ``status.json``."""
        client_state = self.client.state.value if self.client is not None else None
        dispatcher = self.dispatcher
        simulator = None
        if self.simulator is not None:
            base = "http://127.0.0.1:%d" % self.simulator.port
            simulator = {"port": self.simulator.port, "tls_port": self.simulator.tls_port,
                         "control": base + "/_sim/"}
        return {
            "pid": self.system.getpid(),
            "qq": self.config.account.qq,
            "config": str(self.config_path),
            "phase": self.phase,
            "state": client_state,
            "started_at": self.started_at,
            "updated_at": time.time(),
            "online_since": self.online_since,
            "resumed": self.resumed,
            "login_error": self.login_error,
            "queued": len(self.client.send_queue) if self.client is not None else 0,
            "counts": dict(self.counts, **(dispatcher.counts if dispatcher else {})),
            "plugins": [plugin.name for plugin in dispatcher.plugins] if dispatcher else [],
            "plugin_errors": self.plugin_problems,
            "command_prefix": self.config.bot.command_prefix,
            "reloads": self.reloads,
            "last_reload": self.last_reload,
            "simulator": simulator,
            "api": {"url": self.api.url} if self.api is not None else None,
            "log": str(self.config.daemon.logfile or self.logs.fallback_file or "stderr"),
            "shutdown": self.shutdown_report or None,
        }

    def _status_soon(self) -> None:
        """Rewrite the status file within ``STATUS_DELAY`` seconds (counts changed)."""
        if self._status_timer_soon is None and self.phase == "running":
            self._status_timer_soon = IOLoop.current().call_later(STATUS_DELAY,
                                                                  self._status_due)

    def _status_due(self) -> None:
        self._status_timer_soon = None
        self.write_status()

    def write_status(self) -> None:
        """Replace the status file now (state changes, ticks, reloads, the end)."""
        if self._status_timer_soon is not None:
            IOLoop.current().remove_timeout(self._status_timer_soon)
            self._status_timer_soon = None
        try:
            statedir.atomic_write_json(status_path(self.config), self.status(), durable=False)
        except OSError as error:
            log.warning("cannot write the status file %s: %s", status_path(self.config),
                        error.strerror or error)
