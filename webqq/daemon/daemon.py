"""The daemon: the WebQQ sessions of its accounts kept online, their messages handed to
the plugins.

(Just over 800 lines on purpose: the life below, start to stop, reads best in one place;
the pidfile, the OS effects, the status and the reload are modules of their own.)

What it is for: ``Daemon(config).run()`` is ``webqq run`` (foreground) and, after
``Daemon.start()`` has detached, the body of ``webqq start``. In order, the life of a
daemon, as ``Daemon._main`` reads:

1. take the pidfile lock (``Pidfile``: ``fcntl.flock``, so a live daemon is never
   mistaken for a stale file), set up logging (``webqq.daemon.logs.LogSetup``: one
   format, secrets masked, repeated warnings collapsed, logrotate-friendly or
   size-rotated); refuse to start, in one line naming the key, when a port to listen
   on is taken;
2. start the embedded simulator when ``[simulator] embedded = yes`` and route every
   protocol host to it; its world gains the configured accounts it did not list;
3. build the one ``HTTPStream`` and open the one store (``messages.sqlite3``), start
   the OneBot API when ``[api]`` asks for it, then start each account
   (``webqq.daemon.account.Account``: its cookie scope of the stream, its
   ``WebQQClient``, its rows and outbound queue, its plugins, its part of the API,
   its watch in the one ``Health``, which feeds /readyz, /metrics, the account notices
   and the ``[alert]`` incidents), write the pid into the pidfile (now we are up) and
   leave the note that leads to it (``Pointer``). A waiting ``webqq start`` hears of each step of each login as it
   happens, and is answered once every account is online, waiting for a verify code or
   refused;
4. serve: each account's messages go to its plugins; every message to send is a row of
   its durable queue before its client sees it. ``status.json`` in state_dir
   (``webqq.daemon.status``) is rewritten (atomically) at each change of what it
   says, never on a timer: a state change at once with one account, any other within
   ``STATUS_DELAY``. It holds the daemon's fields, an ``accounts`` map and, with one
   account, that account's fields at the top as before. An account offline for good
   (kicked, logged out, password refused) ends alone; the daemon stops when none is left;
5. on SIGTERM/SIGINT: let the queues drain (``DRAIN_TIMEOUT``; what is left stays queued
   in the store and goes at the next start), close the API, stop the clients (each
   saves its session so the next start resumes it), stop the simulator, remove the
   pidfile. The same signal again while it stops: exit at once (``_force_exit``).
   On SIGHUP: load the configuration again; a bad one is refused, logged, and the old one
   kept; what can change while running is applied (logging, timeouts, pacing, plugins,
   the API, accounts added, removed or changed, each alone), the rest waits for a
   restart (``webqq.daemon.reload``), and the outcome goes to the status file for
   ``webqq reload`` to print.

Why one stream for every account, not one each: one connection pool and limit, one
deadline timer, one resolver cache and one TLS context (the system's CA certificates
cost megabytes each time they are loaded), where a thousand accounts would otherwise
have a thousand; cookies stay apart because each account's requests carry its own jar
(``webqq.http.scope.CookieScope``). The pool's limit grows with the accounts, since each
holds a long poll open.

Signal handlers only hand over (``loop.add_signal_handler`` schedules a method that logs
and acts). Beside it: ``webqq.daemon.pidfile`` (the pidfile lock, the pointer to it) and
``webqq.daemon.process`` (``ExitCode``, ``System``: the OS effects tests swap, the double
fork, the report pipe to a waiting ``webqq start``).

What it must never do: speak the protocol (the clients do), log a secret (``SecretMask``
guards every handler, as defence in depth), block the IOLoop, start a thread or a timer
per account beyond each client's own, or remove a pidfile it did not write.
"""
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Coroutine, Dict, List, Optional, Tuple

from tornado.ioloop import IOLoop, PeriodicCallback

from webqq import statedir
from webqq.daemon import config as configuration
from webqq.daemon import reload as reloading
from webqq.daemon.account import Account
from webqq.daemon.alerts import Alerts
from webqq.daemon.config import AccountConfig, Config, ConfigError
from webqq.daemon.logs import LogSetup, SecretMask
from webqq.daemon.pidfile import AlreadyRunning, Pidfile, Pointer, pidfile_path
from webqq.daemon.process import (ExitCode, ReportPipe, StartupError, System, detach,
                                  await_report, check_ports)
from webqq.daemon.status import status_path
from webqq.http.stream import MAX_CONNECTIONS, HTTPStream, RetryPolicy
from webqq.onebot.health import Health
from webqq.onebot.media import OutgoingPictures
from webqq.onebot.metrics import Metrics
from webqq.onebot.server import ApiError, OneBotApi
from webqq.onebot.store import Store, StoreError, StoreUnavailable, open_store
from webqq.onebot.token import api_token
from webqq.tasks import TaskSet

__all__ = ["Daemon", "STATUS_DELAY", "DRAIN_TIMEOUT"]

log = logging.getLogger("webqq.daemon")


#: Seconds between two rounds of housekeeping (``Daemon._tick``): the log's pending
#: "last message repeated" line, and the C heap's free pages given back.
TICK_INTERVAL = 5.0
#: Seconds a count change (a message in or out, a plugin's handler, the queue), or
#: with several accounts a state change, may wait before the status file shows it: a
#: busy daemon rewrites the file at most this often.
STATUS_DELAY = 0.5
#: ... or this many times what the last rewrite took, if longer (a thousand accounts'
#: file takes tens of ms, which held up the replies behind it every half second).
STATUS_COST_FACTOR = 20
#: Seconds the outbound queues may take to drain at shutdown (the rest stays queued).
DRAIN_TIMEOUT = 10.0
#: Sockets each account may hold besides the pool's own ``MAX_CONNECTIONS``: its long
#: poll, held open, and one request beside it.
CONNECTIONS_PER_ACCOUNT = 2


# --- the daemon ------------------------------------------------------------------------

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
        self.mask.add_config(config)
        self.logs = LogSetup(self.mask)
        self.pidfile = Pidfile(pidfile_path(config))
        self.drain_timeout = DRAIN_TIMEOUT
        self.exit_code = ExitCode.OK
        self.started_at = time.time()
        self.phase = "starting"             # starting, running, stopping, stopped
        #: The accounts by name, in the configuration's order.
        self.accounts: Dict[str, Account] = {
            settings.name: Account(self, settings) for settings in config.accounts}
        self.prepared = False               # preflight() has run
        self.world = None                   # the embedded simulator's, after preflight()
        self.simulator = None
        self.stream: Optional[HTTPStream] = None
        self.store: Optional[Store] = None
        #: The queued pictures of every account: one directory, so one keeper of it.
        self.pictures = OutgoingPictures(self.config.daemon.state_dir / statedir.MEDIA_OUT)
        self.api: Optional[OneBotApi] = None
        # Every account's readiness and notices (OneBot events, alerts), /metrics.
        self.health = Health()
        self.metrics = Metrics(self.health)
        self.alerts: Optional[Alerts] = None
        self.pointer = Pointer(self.config_path)
        self.reloads = 0
        self.last_reload: Optional[Dict[str, Any]] = None
        self.shutdown_report: Dict[str, Any] = {}
        self._tasks = TaskSet()
        self._stopping: Optional[asyncio.Event] = None
        self._reloading: Optional[asyncio.Lock] = None
        self._tick_timer: Optional[PeriodicCallback] = None
        self._status_timer_soon: Optional[object] = None     # a pending status_soon()
        self._status_cost = 0.0         # seconds the last status file write took
        self.report = ReportPipe()           # to a waiting `webqq start`, once detached
        self._announced = False

    @property
    def several(self) -> bool:
        """Whether the configuration names more than one account."""
        return len(self.config.accounts) > 1

    def spawn(self, coroutine: Coroutine) -> Any:
        """Run ``coroutine`` as a task the shutdown cancels."""
        return self._tasks.spawn(coroutine)

    # -- the two ways in ---------------------------------------------------------------

    def run(self) -> int:
        """``webqq run``: the whole life of the daemon in this process. Returns the exit
        code (``ExitCode``)."""
        try:
            if not self.prepared:
                self.preflight()
            return asyncio.run(self._main())
        except StartupError as error:
            self._refuse_start(error)
            return error.code
        except Exception as error:
            self._crashed(error)
            if self.logs.handler is None:
                raise
            return ExitCode.FAILURE
        finally:
            self.report.close()
            self.logs.close()
            self.pointer.remove(self.system.getpid())
            self.pidfile.release()

    def _refuse_start(self, error: StartupError) -> None:
        """Say once why the daemon cannot start: to a waiting ``webqq start``, in the
        log when there is one, and on the terminal when the log goes elsewhere."""
        self.report.tell("fail %d %s" % (error.code, error))
        if self.logs.handler is not None:
            log.error("%s", error)
        if not self.logs.to_stderr:
            print(error.line(), file=sys.stderr)

    def _crashed(self, error: Exception) -> None:
        """A bug: its traceback belongs in the log, where a detached daemon's goes."""
        self.exit_code = ExitCode.FAILURE
        line = "crashed: %s: %s" % (type(error).__name__, error)
        self.report.tell("fail %d %s" % (ExitCode.FAILURE, line))
        log.critical("the daemon crashed", exc_info=True)
        if self.logs.handler is not None and not self.logs.to_stderr:
            print("webqq: %s; the traceback is in the log" % line, file=sys.stderr)

    def preflight(self) -> None:
        """What can be refused before anything starts: each account's password and, with
        an embedded simulator, its world (which gains the accounts it does not list).

        Raises StartupError (exit 3, the one ConfigError line).
        """
        if self.config.simulator.embedded:
            from webqq.simulator import WorldError, load_world  # only an embedding daemon
            world_file = self.config.simulator.world
            try:
                self.world = load_world(str(world_file) if world_file else None)
            except WorldError as error:
                raise StartupError(ExitCode.CONFIG, str(ConfigError(
                    self.config.source, "simulator", "world", str(error)))) from None
        for account in self.accounts.values():
            try:
                account.prepare(self.world)
            except ConfigError as error:
                raise StartupError(ExitCode.CONFIG, str(error)) from None
        self.prepared = True

    def start(self, wait: float = 30.0,
              progress: Callable[[str], None] = lambda line: None) -> Tuple[int, str]:
        """``webqq start``: detach (double fork) and run in the grandchild. Here, in the
        parent, wait up to ``wait`` seconds for the daemon to be online, passing each
        step of its start to ``progress`` as it happens (a line for the user).

        Returns ``(exit code, one line for the user)``: OK once online or waiting for a
        verify code; LOGIN_REFUSED; FAILURE when it could not start or is not online by
        the deadline (it keeps trying then). Never returns in the daemon.
        """
        try:
            self.preflight()
        except StartupError as error:
            return error.code, error.line()
        read_end, write_end = os.pipe()
        first = self.system.fork()
        if first == 0:
            os.close(read_end)
            self.report = ReportPipe(write_end)
            if self.config.daemon.logfile is None:
                self.logs.fallback_file = self.config.daemon.state_dir / statedir.LOG
            detach(self.system, self.run)   # never returns
        os.close(write_end)
        self.system.waitpid(first, 0)       # the first child exits at once
        logfile = self.config.daemon.logfile or self.config.daemon.state_dir / statedir.LOG
        return await_report(read_end, wait, self.system, logfile, progress)

    # -- the life, in order ------------------------------------------------------------

    async def _main(self) -> int:
        stale = self._take_pidfile()
        try:
            self.logs.apply(self.config.daemon)
        except OSError as error:
            raise StartupError(ExitCode.CONFIG, str(ConfigError(
                self.config.source, "daemon", "logfile", "%s: %s" % (
                    error.filename, error.strerror or error)))) from None
        log.info("webqq starting (pid %d), configuration %s, %s", self.system.getpid(),
                 self.config_path, ", ".join("%s (%d)" % (a.name, a.qq)
                                             for a in self.accounts.values()))
        if stale is not None:
            log.info("replaced the stale pidfile of pid %d (it was not locked)", stale)
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._reloading = asyncio.Lock()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._signalled, signum, self.shutdown)
        loop.add_signal_handler(signal.SIGHUP, self._signalled, signal.SIGHUP,
                                lambda why: self._tasks.spawn(self.reload(why)))
        try:
            self._check_ports()
            self._start_simulator()
            self._start_stream()
            self._open_store()
            self.alerts = Alerts(self.config.alert, links=self.captcha_links)
            self.health.add_listener(self.alerts.notice)
            await self._start_api()
            for account in self.accounts.values():
                account.start()
            self.pidfile.write(self.system.getpid())
            self._leave_pointer()
            self.phase = "running"
            self.report.tell("up %d" % self.system.getpid())
            for account in self.accounts.values():
                account.open_session()
            self._tick_timer = PeriodicCallback(self._tick, TICK_INTERVAL * 1000)
            self._tick_timer.start()
            self.write_status()
            await self._stopping.wait()
        except StartupError as error:
            self.exit_code = error.code
            self._refuse_start(error)         # before the shutdown logs "stopped"
        except Exception as error:
            self._crashed(error)
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

    def _leave_pointer(self) -> None:
        """The note that lets ``webqq stop`` and ``status`` find us after a bad edit of
        the configuration file (``Pointer``)."""
        try:
            self.pointer.write(self.config.daemon.state_dir, self.system.getpid())
        except OSError as error:
            log.debug("no pointer to the state_dir in %s: %s", self.pointer.directory, error)

    def _check_ports(self) -> None:
        """Refuse to start, naming the key, when a port to listen on is taken: before
        anything listens, so the one line says which it is."""
        wanted = []
        if self.config.simulator.embedded:
            wanted += [("127.0.0.1", self.config.simulator.port, "[simulator] port"),
                       ("127.0.0.1", self.config.simulator.tls_port, "[simulator] tls_port")]
        if self.config.api.listen is not None:
            wanted.append(self.config.api.listen + ("[api] listen",))
        check_ports(wanted)

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

    def _start_stream(self) -> None:
        """The one HTTPStream of every account (each talks through its own cookie
        scope of it); its socket limit grows with the accounts."""
        network = self.config.network
        if self.simulator is not None:
            hosts, ca_file = self.simulator.hosts, self.simulator.ca_file
        else:
            hosts = dict(self.config.hosts) or None
            ca_file = str(network.ca_file) if network.ca_file else None
        self.stream = HTTPStream(
            hosts=hosts, retry=RetryPolicy(attempts=network.retries + 1),
            connect_timeout=network.connect_timeout,
            request_timeout=network.request_timeout, ca_file=ca_file,
            max_connections=self._connection_limit(len(self.accounts)))

    @staticmethod
    def _connection_limit(accounts: int) -> int:
        return MAX_CONNECTIONS + CONNECTIONS_PER_ACCOUNT * accounts

    def _open_store(self) -> None:
        """The one store of every account. A damaged one is moved aside (logged); one
        that cannot be opened at all stops the start: exit 1 while another process
        holds it, else 3 (the line names the file and what to do). Rows from before
        rows had an account are the first account's."""
        try:
            self.store = open_store(self.config.daemon.state_dir / statedir.STORE)
        except StoreError as error:
            if error.temporary:
                raise StartupError(ExitCode.FAILURE, str(error)) from None
            raise StartupError(ExitCode.CONFIG, str(ConfigError(
                self.config.source, "daemon", "state_dir", str(error)))) from None
        first = self.store.for_account(self.config.accounts[0].qq)
        try:
            first.adopt()
        except StoreUnavailable as error:       # the queue pauses and says so, later
            log.warning("the rows of an older store are not given to %s now: %s",
                        self.config.accounts[0].section, error)
        finally:
            first.forget()

    async def _start_api(self) -> None:
        """The OneBot API, when ``[api]`` asks for any of its ways (listen, post_url,
        ws_reverse_url), serving the accounts that run; its token is the configured one
        or generated into state_dir."""
        settings = self.config.api
        if settings.listen is None and not settings.post_url and not settings.ws_reverse_url:
            return
        token = api_token(self.config, create=True)
        self.mask.add(token)
        self.api = OneBotApi(settings, token=token, health=self.health,
                             metrics=self.metrics)
        for account in self.accounts.values():
            if account.client is not None and account.ended is None:
                account.api = self.api.add(account.client, self_id=account.qq,
                                           outbound=account.outbound)
        try:
            await self.api.start()
        except ApiError as error:
            await self.api.close()
            self.api = None
            raise StartupError(ExitCode.FAILURE, "the API %s" % error) from None

    def captcha_links(self, qq: int) -> Dict[str, str]:
        """The captcha image and page of account ``qq`` on the API (none without a
        listening one)."""
        return self.api.captcha_urls(qq) if self.api is not None else {}

    # -- what the accounts tell the daemon ---------------------------------------------

    def report_step(self, account: Account, word: str, rest: str) -> None:
        """A step of ``account``'s login for a waiting ``webqq start`` (``step WHAT``,
        ``retry SECONDS WHY``), named when several accounts start."""
        if self.several:
            if word == "retry":
                delay, _, why = rest.partition(" ")
                rest = "%s %s: %s" % (delay, account.name, why)
            else:
                rest = "%s: %s" % (account.name, rest)
        self.report.tell("%s %s" % (word, rest))

    def settle(self, account: Account, word: str, rest: str) -> None:
        """How ``account``'s start ended: ``login`` (online), ``pending`` (a verify code),
        ``refused`` or ``fail``. A waiting ``webqq start`` hears the daemon's outcome
        once every account has one: online when one is online or waiting, else the
        last refusal or failure."""
        if account.settled or self.report.fd is None:
            account.settled = True
            return
        account.settled = True
        if not self.several:
            self.report.tell("%s %s" % (word, rest))
            if word in ("login", "pending"):
                self.report.close()
            return
        what = {"refused": "login refused: " + rest,
                "fail": rest.partition(" ")[2]}.get(word, rest)
        self.report_step(account, "step", what)
        running = [a for a in self.accounts.values() if not a.settled]
        if running:
            return
        good = [a for a in self.accounts.values() if a.ended is None]
        if good:
            self.report.tell("login %d of %d accounts online or waiting for a verify code "
                             "(webqq status tells each)" % (len(good), len(self.accounts)))
            self.report.close()
        else:
            self.report.tell("%s %s" % (word, rest))

    def account_ended(self, account: Account, code: ExitCode) -> None:
        """``account`` is offline for good: the others go on; with none left the daemon
        stops with ``code``."""
        if any(other.ended is None for other in self.accounts.values()):
            account.log.error("this account stays offline (%s); the other accounts go on",
                              account.ended)
            self.status_changed()
            return
        self.exit_code = code
        self.shutdown()

    def announce_simulator(self, account: Account) -> None:
        """Once, when the first account is online with the embedded simulator: how to
        talk to the bot."""
        if self.simulator is None or self._announced:
            return
        self._announced = True
        base = "http://127.0.0.1:%d" % self.simulator.port
        log.info("chat with the bot in a browser: %s/", base)
        log.info("embedded simulator: %s/_sim/ ; make friend 20001 say !ping with:", base)
        token = "-H 'X-Sim-Token: %s'" % self.simulator.control_token
        log.info("curl -H 'Content-Type: application/json' %s -d '{\"to\": %d, \"from\": "
                 "20001, \"text\": \"%sping\"}' %s/_sim/say && sleep 1 && curl %s "
                 "'%s/_sim/sent?account=%d'", token, account.qq,
                 self.config.bot.command_prefix, base, token, base, account.qq)

    # -- signals -----------------------------------------------------------------------

    def _signalled(self, signum: int, action: Any) -> None:
        """The signal handler: hand over to ``action`` on the IOLoop, nothing more."""
        IOLoop.current().add_callback(action, signal.Signals(signum).name)

    def shutdown(self, why: str = "") -> None:
        """Ask the daemon to stop (SIGTERM, SIGINT, the last account refused or offline). The same
        signal again while it stops forces the exit (``_force_exit``)."""
        if self._stopping is None:
            return
        if self._stopping.is_set():
            if why:
                self._force_exit(why)
            return
        if why:
            log.info("%s: shutting down", why)
        self._stopping.set()

    def _force_exit(self, why: str) -> None:
        """A second SIGINT or SIGTERM: leave now, as after a SIGKILL (the session file
        is kept up to date as it goes, every queued message is a row of the store), but
        with the message in hand put back in the queue if it never left, the status
        written and the pidfile gone."""
        log.warning("%s again: exiting now, without waiting for the shutdown to finish",
                    why)
        self.exit_code = ExitCode.FAILURE
        report = self.shutdown_report
        outboxes = [account.outbound.release() for account in self.accounts.values()
                    if account.outbound is not None]
        if outboxes:
            report["outbox"] = _joined(outboxes)
        report.setdefault("session", "as last saved")
        report.update(exit_code=int(self.exit_code), forced=why)
        self.phase = "stopped"
        if self.pidfile.held:
            self.write_status()
        self.report.close()
        self.logs.close()
        self.pointer.remove(self.system.getpid())
        self.pidfile.release()
        self.system.exit_now(int(self.exit_code))

    async def reload(self, why: str = "reload") -> None:
        """SIGHUP: load the configuration again; apply what can change while running
        (``webqq.daemon.reload``), report the rest in the status file's ``last_reload``
        for ``webqq reload`` to print. A bad configuration is refused and logged; the
        running one stays. Reloads run one at a time."""
        log.info("%s: reloading config and plugins", why)
        if self.phase != "running":
            log.warning("%s ignored: the daemon is %s", why, self.phase)
            return
        async with self._reloading:
            self.reloads += 1
            outcome = {"ok": False, "error": None, "plugin_errors": [], "applied": [],
                       "at_restart": [], "api_error": None, "account_errors": []}
            outcome.update(await self._reload())
            self.last_reload = dict(outcome, serial=self.reloads, at=time.time())
            self.write_status()

    async def _reload(self) -> Dict[str, Any]:
        try:
            new = configuration.load(self.config_path)
        except ConfigError as error:
            return self._reload_refused(str(error))
        try:
            self.logs.apply(new.daemon)
        except OSError as error:
            return self._reload_refused("%s: %s" % (new.daemon.logfile,
                                                    error.strerror or error))
        return await self._apply(new)

    @staticmethod
    def _reload_refused(problem: str) -> Dict[str, Any]:
        log.error("reload refused, keeping the running configuration: %s", problem)
        return {"error": problem}

    async def _apply(self, new: Config) -> Dict[str, Any]:
        """Run with ``new`` where it can be done live; returns the reload's outcome."""
        old = self.config
        live, at_restart = reloading.compare(old, new)
        self.mask.add_config(new)
        self.config = reloading.in_effect(old, new)
        network = self.config.network
        self.stream.connect_timeout = network.connect_timeout
        self.stream.request_timeout = network.request_timeout
        self.stream.retry = RetryPolicy(attempts=network.retries + 1)
        if self.alerts is not None:
            self.alerts.configure(self.config.alert)
        changes, account_errors = await self._apply_accounts(new.accounts)
        live += changes
        plugin_problems = []
        for account in self.accounts.values():
            if account.client is not None:
                account.apply(account.settings)
                plugin_problems += ["%s%s" % ("[%s] " % account.name if self.several
                                              else "", problem)
                                    for problem in account.plugin_problems]
        api_error = await self._restart_api(old) if old.api != new.api else None
        if api_error is not None:
            live = [key for key in live if not key.startswith("[api]")]
        if at_restart:
            log.warning("reload: %s changed; that takes effect at the next restart",
                        ", ".join(at_restart))
        log.info("reloaded: prefix %r; applied: %s", new.bot.command_prefix,
                 ", ".join(live) or "nothing")
        return {"ok": True, "plugin_errors": plugin_problems, "applied": live,
                "at_restart": at_restart, "api_error": api_error,
                "account_errors": account_errors}

    async def _apply_accounts(self, wanted: Tuple[AccountConfig, ...]
                              ) -> Tuple[List[str], List[str]]:
        """Add, remove and restart accounts so that those of ``wanted`` run, touching no
        other. Returns what was done (``"[account:b] added"``) and what could not be
        (an account whose password cannot be read is not started; the one it was to
        replace keeps running)."""
        done, problems = [], []
        plan = reloading.account_changes(tuple(a.settings for a in self.accounts.values()),
                                         wanted)
        for settings in plan.removed:
            await self._remove_account(self.accounts[settings.name], "removed")
            done.append("[%s] removed" % settings.section)
        for settings in plan.restarted + plan.added:
            fresh = Account(self, settings)
            try:
                fresh.prepare(self.world)
            except ConfigError as error:
                log.error("reload: %s not started: %s", settings.section, error)
                problems.append(str(error))
                continue
            old = self.accounts.get(settings.name)
            if old is not None:
                await self._remove_account(old, "restarted")
            self.accounts[settings.name] = fresh
            fresh.start()
            fresh.open_session()
            done.append("[%s] %s" % (settings.section, "restarted" if old else "added"))
        for settings in plan.kept:
            self.accounts[settings.name].settings = settings
        names = [settings.name for settings in wanted if settings.name in self.accounts]
        self.accounts = {name: self.accounts[name] for name in names}
        self.stream.max_connections = self._connection_limit(len(self.accounts))
        running = tuple(account.settings for account in self.accounts.values())
        self.config = dataclasses.replace(self.config, accounts=running)
        if done:
            self.status_changed()
        return done, problems

    async def _remove_account(self, account: Account, why: str) -> None:
        account.log.info("account %s: its session is saved, its queue stays in the store",
                         why)
        del self.accounts[account.name]
        await account.stop("the account was %s by a reload" % why)

    async def _restart_api(self, old: Config) -> Optional[str]:
        """Close the API and start it with ``[api]`` as it now is (its queues and
        undelivered events wait in the store meanwhile). Returns None, or why the new
        settings failed: the API then runs with the old ones again."""
        if self.api is not None:
            await self.api.close()
            self.api = None
        try:
            await self._start_api()
            return None
        except StartupError as error:
            problem = str(error)
        log.error("reload: [api] not applied: %s; the API keeps its old settings", problem)
        self.config = dataclasses.replace(self.config, api=old.api)
        try:
            await self._start_api()
        except StartupError as error:
            log.error("the API is off: %s", error)
        return problem

    # -- stopping ----------------------------------------------------------------------

    async def _shut_down(self) -> None:
        """Let the queues drain (the rest stays in the store), stop the clients (sessions
        saved), stop the simulator, write the last status. Runs once, whatever stopped
        the daemon."""
        self.phase = "stopping"
        if self._tick_timer is not None:
            self._tick_timer.stop()
        report = self.shutdown_report
        started = [a for a in self.accounts.values() if a.outbound is not None]
        if started:
            waiting = [a for a in started if a.outbound.waiting()]
            drained = dict(zip(waiting, await asyncio.gather(
                *(a.drain(self.drain_timeout) for a in waiting))))
            report["outbox"] = _joined([drained.get(a) or a.outbound.release()
                                        for a in started])
        if self.api is not None:
            await self.api.close()
            for account in self.accounts.values():
                account.api = None          # closed with the API
        if self.alerts is not None:
            await self.alerts.close()       # a kick that stops us is still told
        sessions = []
        for account in self.accounts.values():
            if account.client is not None:
                sessions.append((await account.stop("the daemon is stopping"))["session"])
        if sessions:
            report["session"] = _joined(sessions)
        self.health.close()
        await self._tasks.cancel_all()
        if self.stream is not None:
            self.stream.close()
        if self.simulator is not None:
            await self.simulator.stop()
        report["exit_code"] = int(self.exit_code)
        self.phase = "stopped"
        if self.pidfile.held:
            self.write_status()
        if self.store is not None:
            self.store.close()
        log.info("stopped (exit code %d): outbox %s, session %s", self.exit_code,
                 report.get("outbox", "-"), report.get("session", "-"))
        self.report.close()

    def _tick(self) -> None:
        """Housekeeping: the log's pending summary line; the memory a burst freed (a
        thousand logins' TLS buffers: a third of the daemon's) given back, which costs
        a quarter of a millisecond when there is none."""
        self.logs.flush()
        self.system.release_free_memory()

    # -- status ------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """What ``webqq status`` shows, as written to ``status.json``: the daemon's
        fields, ``accounts`` (name -> the account's fields) and, with one account, its
        fields at the top level too (``qq``, ``state``, the login, ``counts``, ...)."""
        simulator = None
        if self.simulator is not None:
            base = "http://127.0.0.1:%d" % self.simulator.port
            simulator = {"port": self.simulator.port, "tls_port": self.simulator.tls_port,
                         "control": base + "/_sim/"}
        accounts = {name: account.status() for name, account in self.accounts.items()}
        status = {
            "pid": self.system.getpid(),
            "config": str(self.config_path),
            "phase": self.phase,
            "started_at": self.started_at,
            "updated_at": time.time(),
            "command_prefix": self.config.bot.command_prefix,
            "reloads": self.reloads,
            "last_reload": self.last_reload,
            "simulator": simulator,
            "api": {"url": self.api.url, "token": "configured" if self.config.api.token
                    else "generated"} if self.api is not None else None,
            "log": str(self.config.daemon.logfile or self.logs.fallback_file or "stderr"),
            "shutdown": self.shutdown_report or None,
            "accounts": accounts,
        }
        if len(accounts) == 1:
            (only,) = accounts.values()
            status.update((key, value) for key, value in only.items() if key != "name")
        return status

    def status_changed(self) -> None:
        """An account's state changed: the status file says so now (with several
        accounts within ``STATUS_DELAY``: a thousand logins are not a thousand
        rewrites)."""
        if self.several:
            self.status_soon()
        else:
            self.write_status()

    def status_soon(self) -> None:
        """Rewrite the status file within ``STATUS_DELAY`` seconds: something it says
        changed (counts, the queue, a login's error). Every such change must call this
        (or ``write_status``): nothing rewrites the file on a timer."""
        if self._status_timer_soon is None and self.phase == "running":
            delay = max(STATUS_DELAY, STATUS_COST_FACTOR * self._status_cost)
            self._status_timer_soon = IOLoop.current().call_later(delay, self._status_due)

    def _status_due(self) -> None:
        self._status_timer_soon = None
        self.write_status()

    def write_status(self) -> None:
        """Replace the status file now (state changes, ticks, reloads, the end)."""
        if self._status_timer_soon is not None:
            IOLoop.current().remove_timeout(self._status_timer_soon)
            self._status_timer_soon = None
        started = time.perf_counter()
        try:
            # On one line: indenting takes the pure-Python encoder, three times as long.
            statedir.atomic_write_json(status_path(self.config), self.status(),
                                       durable=False, indent=None)
        except OSError as error:
            log.warning("cannot write the status file %s: %s", status_path(self.config),
                        error.strerror or error)
        self._status_cost = time.perf_counter() - started


def _joined(outcomes: List[str]) -> str:
    """One account's outcome as it is; several's, each counted once
    (``"drained"``, ``"2 x saved, none"``)."""
    counted: Dict[str, int] = {}
    for outcome in outcomes:
        counted[outcome] = counted.get(outcome, 0) + 1
    return ", ".join(outcome if times == 1 else "%d x %s" % (times, outcome)
                     for outcome, times in counted.items())
