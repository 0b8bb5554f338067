"""The daemon: one WebQQ session kept online, its messages handed to the plugins.

What it is for: ``Daemon(config).run()`` is ``webqq run`` (foreground) and, after
``Daemon.start()`` has detached, the body of ``webqq start``. In order, the life of a
daemon, as ``Daemon._main`` reads:

1. take the pidfile lock (``Pidfile``: ``fcntl.flock``, so a live daemon is never
   mistaken for a stale file), set up logging (``webqq.daemon.logs.LogSetup``: one
   format, secrets masked, repeated warnings collapsed, logrotate-friendly or
   size-rotated); refuse to start, in one line naming the key, when a port to listen
   on is taken;
2. start the embedded simulator when ``[simulator] embedded = yes`` and route every
   protocol host to it;
3. build the ``HTTPStream`` and the ``WebQQClient``, load the plugins into a
   ``Dispatcher``, write the pid into the pidfile (now we are up) and leave the note
   that leads to it (``Pointer``), start the client. A waiting ``webqq start`` hears of
   each step of the login as it happens;
4. serve: each ``"message"`` event becomes a ``webqq.plugins.Message`` for the plugins.
   Every message to send, a plugin's reply or an API call's, is a row of the one
   durable queue (``webqq.onebot.outbound.Outbound``, in ``messages.sqlite3``) before
   the client sees it; an older version's ``outbox-QQ.json`` is moved into it at start.
   With ``[api] listen`` (or a ``post_url`` / ``ws_reverse_url``),
   ``webqq.onebot.server.OneBotApi`` serves OneBot v11 on the same IOLoop.
   ``status.json`` in state_dir (``webqq.daemon.status``) is rewritten (atomically) on
   every state change and every ``STATUS_INTERVAL`` seconds; it tells since when, the
   last error while it applies, the next attempt, and why the client went offline for
   good (then the daemon stops: kicked, logged out);
5. on SIGTERM/SIGINT: let the queue drain (``DRAIN_TIMEOUT``; what is left stays queued
   in the store and goes at the next start), close the API, stop the client (it saves
   the session so the next start resumes it), stop the simulator, remove the pidfile.
   The same signal again while it stops: exit at once (``_force_exit``).
   On SIGHUP: load the configuration again; a bad one is refused, logged, and the old one
   kept; what can change while running is applied (logging, timeouts, pacing, plugins,
   the API), the rest waits for a restart (``webqq.daemon.reload``), and the outcome goes
   to the status file for ``webqq reload`` to print.

Signal handlers only hand over (``loop.add_signal_handler`` schedules a method that logs
and acts). Beside it: ``webqq.daemon.pidfile`` (the pidfile lock, the pointer to it) and
``webqq.daemon.process`` (``ExitCode``, ``System``: the OS effects tests swap, the double
fork, the report pipe to a waiting ``webqq start``).

What it must never do: speak the protocol (the client does), log a secret (``SecretMask``
guards every handler, as defence in depth), block the IOLoop, start a thread, or remove a
pidfile it did not write.
"""
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from tornado.ioloop import IOLoop, PeriodicCallback

from webqq import statedir
from webqq.client.client import State, WebQQClient
from webqq.client.session import load_session
from webqq.daemon import config as configuration
from webqq.daemon import reload as reloading
from webqq.daemon.alerts import Alerts
from webqq.daemon.config import Config, ConfigError
from webqq.daemon.logs import LogSetup, MaskingCookieJar, SecretMask
from webqq.daemon.pidfile import AlreadyRunning, Pidfile, Pointer, pidfile_path
from webqq.daemon.process import (ExitCode, ReportPipe, StartupError, System, detach,
                                  await_report, check_ports)
from webqq.daemon.status import Login, status_path
from webqq.http.stream import HTTPStream, RetryPolicy
from webqq.onebot.health import Health
from webqq.onebot.metrics import Metrics
from webqq.onebot.outbound import Outbound, import_saved_outbox
from webqq.onebot.server import ApiError, OneBotApi
from webqq.onebot.store import Store, StoreError, open_store
from webqq.onebot.token import api_token
from webqq.plugins import Actions, Dispatcher, Event, Message
from webqq.tasks import TaskSet

__all__ = ["Daemon", "STATUS_INTERVAL", "DRAIN_TIMEOUT"]

log = logging.getLogger("webqq.daemon")


#: Seconds between two rewrites of the status file while nothing changes.
STATUS_INTERVAL = 5.0
#: Seconds a count change (a message in or out) may wait before the status file shows
#: it: a busy bot rewrites the file at most this often.
STATUS_DELAY = 0.5
#: Seconds the outbound queue may take to drain at shutdown (the rest stays queued).
DRAIN_TIMEOUT = 10.0
#: The long poll is retried twice by HTTPStream (within about 1.5 s), no more: a hiccup
#: passes quietly, an outage reaches the client's recovery, and the status, at once.
POLL_RETRY = RetryPolicy(idempotent=True, attempts=3)


def saved_outbox_path(config: Config) -> Path:
    """Where versions before the one durable queue saved unsent plugin replies at a
    clean stop; moved into the store at start."""
    return config.daemon.state_dir / statedir.saved_outbox_file(config.account.qq)


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
        self.password: Optional[str] = None
        self.world = None                   # the embedded simulator's, after preflight()
        self.simulator = None
        self.stream = None
        self.client = None
        self.store: Optional[Store] = None
        self.outbound: Optional[Outbound] = None
        self.api: Optional[OneBotApi] = None
        # Per account: readiness, notices (OneBot events, alerts), /metrics.
        self.health = Health()
        self.metrics = Metrics(self.health)
        self.alerts: Optional[Alerts] = None
        self.dispatcher: Optional[Dispatcher] = None
        self.plugin_problems: List[str] = []
        self.counts: Dict[str, int] = dict.fromkeys(
            ("received", "sent", "send_failed", "send_ambiguous"), 0)
        self.login = Login()                # the login as the status file tells it
        self.pointer = Pointer(self.config_path)
        self.reloads = 0
        self.last_reload: Optional[Dict[str, Any]] = None
        self.shutdown_report: Dict[str, Any] = {}
        self._tasks = TaskSet()
        self._stopping: Optional[asyncio.Event] = None
        self._reloading: Optional[asyncio.Lock] = None
        self._status_timer: Optional[PeriodicCallback] = None
        self._status_timer_soon: Optional[object] = None     # a pending _status_soon()
        self.report = ReportPipe()           # to a waiting `webqq start`, once detached
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
        """What can be refused before anything starts: the password and, with an
        embedded simulator, its world and our account in it.

        Raises StartupError (exit 3, the one ConfigError line).
        """
        try:
            password = configuration.resolve_password(self.config)
        except ConfigError as error:
            raise StartupError(ExitCode.CONFIG, str(error)) from None
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
        log.info("webqq starting (pid %d), configuration %s", self.system.getpid(),
                 self.config_path)
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
            self._start_client(self.password)
            self._start_queue()
            self.alerts = Alerts(self.config.alert, links=self._captcha_links)
            self.health.add_listener(self.alerts.notice)
            await self._start_api()
            self.dispatcher = Dispatcher(self._send, reply=self._reply,
                                         prefix=self.config.bot.command_prefix,
                                         actions=Actions(self.client))
            self.plugin_problems = self.dispatcher.load(self.config.bot.plugins,
                                                        self.config.plugin_settings)
            self.pidfile.write(self.system.getpid())
            self._leave_pointer()
            self.phase = "running"
            self.report.tell("up %d" % self.system.getpid())
            self.client.start()
            self._status_timer = PeriodicCallback(self._tick, STATUS_INTERVAL * 1000)
            self._status_timer.start()
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
        # [network] retries bounds every request's retries but the long poll's
        # (POLL_RETRY): an outage reaches the client's ladder, with its events, and
        # shows in `webqq status` as it starts, not after [network] retries.
        options: Dict[str, Any] = {
            "send_interval": self.config.bot.send_interval,
            "accept_friends": self.config.bot.accept_friends,
            "poll_retry": POLL_RETRY}
        if self.simulator is not None:
            options["poll_hold"] = self.simulator.poll_hold
        self.client = WebQQClient(self.config.account.qq, password, self.stream,
                                  state_dir, **options)
        self.client.add_listener(self._on_client_event)
        self.stream.observer = self.metrics.http_observer(self.config.account.qq)

    def _start_queue(self) -> None:
        """The store and the one outbound queue (with or without the API), and what an
        older version left in ``outbox-QQ.json`` moved into it. A damaged store is moved
        aside (logged); one that cannot be opened at all stops the start: exit 1 while
        another process holds it, else 3 (the line names the file and what to do)."""
        try:
            self.store = open_store(self.config.daemon.state_dir / statedir.STORE)
        except StoreError as error:
            if error.temporary:
                raise StartupError(ExitCode.FAILURE, str(error)) from None
            raise StartupError(ExitCode.CONFIG, str(ConfigError(
                self.config.source, "daemon", "state_dir", str(error)))) from None
        self.outbound = Outbound(self.client, self.store, self_id=self.config.account.qq,
                                 send_interval=self.config.bot.send_interval)
        import_saved_outbox(saved_outbox_path(self.config), self.outbound)
        self.health.watch(self.config.account.qq, self.client, self.outbound)
        self.outbound.start()

    async def _start_api(self) -> None:
        """The OneBot API, when ``[api]`` asks for any of its ways (listen, post_url,
        ws_reverse_url); its token is the configured one or generated into state_dir."""
        settings = self.config.api
        if settings.listen is None and not settings.post_url and not settings.ws_reverse_url:
            return
        token = api_token(self.config, create=True)
        self.mask.add(token)
        self.api = OneBotApi(self.client, settings, self_id=self.config.account.qq,
                             outbound=self.outbound, token=token, health=self.health,
                             metrics=self.metrics)
        try:
            await self.api.start()
        except ApiError as error:
            await self.api.close()
            self.api = None
            raise StartupError(ExitCode.FAILURE, "the API %s" % error) from None

    def _captcha_links(self, account: int) -> Dict[str, str]:
        return self.api.captcha_urls(account) if self.api is not None else {}

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
            self._log_incoming(event)
            self._tasks.spawn(self._handle(self._as_message(event)))
            return
        if kind == "sent":
            self._on_sent(event.message)
        elif kind == "online":
            self._on_online(event)
        elif kind == "login_step":
            self.report.tell("step %s" % event.step)
        elif kind == "reconnect":
            self._on_reconnect(event)
        elif kind == "login_failed":
            self.login.refused(str(event.error))
            if event.final:
                log.error("login refused for good: %s", event.error)
                self.report.tell("refused %s" % event.error)
                self.exit_code = ExitCode.LOGIN_REFUSED
                self.shutdown()
        elif kind == "captcha":
            page = self._captcha_links(self.config.account.qq).get("page")
            log.warning("the server wants a verify code: read %s, then answer with "
                        "webqq captcha CODE%s", event.path, " or at %s (with the API's "
                        "token)" % page if page else "")
            self.login.captcha_wanted(event.path)
            self.write_status()
            self.report.tell("pending waiting for a verify code (%s)" % event.path)
            self.report.close()
        elif kind == "state":
            self._on_state(event)
        if self.phase == "running":
            self._tasks.spawn(self.dispatcher.dispatch_event(self._as_event(event)))

    def _on_state(self, event: Any) -> None:
        """The status file says since when and (offline for good: kicked, logged out)
        why; then the daemon stops, since only a person can tell whether to log in
        again."""
        self.login.state(event.old.value, event.new.value, event.reason)
        if event.new is State.RESUMING:
            self.report.tell("step resuming the saved session")
        elif event.new is State.OFFLINE:
            if self.exit_code is ExitCode.OK and self.phase == "running":
                log.error("offline for good: %s; stopping", event.reason)
                self.report.tell("fail %d offline for good: %s" % (ExitCode.FAILURE,
                                                                   event.reason))
                self.exit_code = ExitCode.FAILURE
                self.shutdown()
        self.write_status()

    def _on_reconnect(self, event: Any) -> None:
        """The client will try ``event.step`` again after ``event.delay`` seconds."""
        reason = event.reason or "%s failed" % event.step
        self.login.retry(event.step, event.attempt, event.delay, reason)
        self.report.tell("retry %.1f %s" % (event.delay, reason))
        self.write_status()

    def _log_incoming(self, event: Any) -> None:
        """One INFO line per message received: chat, sender, length; its text only at
        DEBUG (a message is the users' business, not the operator's)."""
        sender = event.sender.qq or "uin %d" % event.sender.uin
        if event.group is not None:
            chat = "group %s" % (event.group.number or "gid %d" % event.group.gid)
        elif event.discussion is not None:
            chat = "discussion %d" % event.discussion.did
        else:
            chat = event.chat
        log.info("message in %s from %s, %d characters", chat, sender, len(event.text))
        log.debug("message text: %r", event.text)

    def _on_online(self, event: Any) -> None:
        self._mask_session(load_session(str(self.config.daemon.state_dir),
                                        self.config.account.qq))
        self.login.online(bool(event.resumed))
        how = "resumed the saved session" if event.resumed else \
            "relinked" if event.relinked else "logged in"
        log.info("online as %d (%s)", self.config.account.qq, how)
        self.write_status()
        self.report.tell("login online as %d (%s)" % (self.config.account.qq, how))
        self.report.close()
        if self.simulator is not None and not self._announced:
            self._announced = True
            base = "http://127.0.0.1:%d" % self.simulator.port
            log.info("chat with the bot in a browser: %s/", base)
            log.info("embedded simulator: %s/_sim/ ; make friend 20001 say !ping with:", base)
            token = "-H 'X-Sim-Token: %s'" % self.simulator.control_token
            log.info("curl -H 'Content-Type: application/json' %s -d '{\"to\": %d, \"from\": "
                     "20001, \"text\": \"%sping\"}' %s/_sim/say && sleep 1 && curl %s "
                     "'%s/_sim/sent?account=%d'", token, self.config.account.qq,
                     self.config.bot.command_prefix, base, token, base, self.config.account.qq)

    def _on_sent(self, message: Any) -> None:
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
                       pieces=event.pieces, raw=event)

    @staticmethod
    def _as_event(event: Any) -> Event:
        data = {key: value for key, value in vars(event).items()} \
            if hasattr(event, "__dict__") else {}
        return Event(kind=event.kind, data=data)

    async def _handle(self, message: Message) -> None:
        await self.dispatcher.dispatch(message)
        self._status_soon()

    # -- sending (the plugins' send and reply) -----------------------------------------

    def _send(self, chat: str, target: int, text: str) -> Optional[int]:
        """The plugins' ``send``: a row of the durable queue. Returns its message_id
        (None while the store cannot be written: the message waits in memory).

        Raises ValueError for a chat that cannot be sent to (a temporary session can
        only be replied to) or an empty text."""
        message_id = self.outbound.send_text(chat, target, text)
        self._status_soon()
        return message_id

    def _reply(self, message: Message, text: str) -> Optional[int]:
        """The plugins' ``reply``: a row of the durable queue, to the chat ``message``
        came from. Returns what ``_send`` returns."""
        message_id = self.outbound.reply(message.raw, text)
        self._status_soon()
        return message_id

    # -- signals -----------------------------------------------------------------------

    def _signalled(self, signum: int, action: Any) -> None:
        """The signal handler: hand over to ``action`` on the IOLoop, nothing more."""
        IOLoop.current().add_callback(action, signal.Signals(signum).name)

    def shutdown(self, why: str = "") -> None:
        """Ask the daemon to stop (SIGTERM, SIGINT, a final login refusal). The same
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
        if self.outbound is not None:
            report["outbox"] = self.outbound.release()
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
                       "at_restart": [], "api_error": None}
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
        self.client.send_queue.interval = self.config.bot.send_interval
        self.client.manage.accept_friends = self.config.bot.accept_friends
        self.outbound.send_interval = self.config.bot.send_interval     # its pacing too
        if self.alerts is not None:
            self.alerts.configure(self.config.alert)
        self.dispatcher.prefix = new.bot.command_prefix
        self.plugin_problems = self.dispatcher.load(new.bot.plugins, new.plugin_settings,
                                                    reload=True)
        api_error = await self._restart_api(old) if old.api != new.api else None
        if api_error is not None:
            live = [key for key in live if not key.startswith("[api]")]
        if at_restart:
            log.warning("reload: %s changed; that takes effect at the next restart",
                        ", ".join(at_restart))
        log.info("reloaded: prefix %r, plugins %s; applied: %s", new.bot.command_prefix,
                 ", ".join(p.name for p in self.dispatcher.plugins) or "none",
                 ", ".join(live) or "nothing")
        return {"ok": True, "plugin_errors": self.plugin_problems, "applied": live,
                "at_restart": at_restart, "api_error": api_error}

    async def _restart_api(self, old: Config) -> Optional[str]:
        """Close the API and start it with ``[api]`` as it now is (its queue and
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
        """Let the queue drain (the rest stays in the store), stop the client (session
        saved), stop the simulator, write the last status. Runs once, whatever stopped
        the daemon."""
        self.phase = "stopping"
        if self._status_timer is not None:
            self._status_timer.stop()
        report = self.shutdown_report
        if self.outbound is not None:
            report["outbox"] = await self._drain()
        if self.api is not None:
            await self.api.close()
        if self.alerts is not None:
            await self.alerts.close()       # a kick that stops us is still told
        if self.client is not None:
            had_session = self.client.state not in (State.STOPPED, State.OFFLINE,
                                                    State.LOGGING_IN)
            self.client.stop("the daemon is stopping")
            report["session"] = "saved" if had_session else "none"
        if self.outbound is not None:
            self.outbound.close()       # after the client: an outcome on the wire is kept
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

    async def _drain(self) -> str:
        """While online, wait up to ``drain_timeout`` for the queue to empty; then stop
        handing messages over. Returns what is left, for the shutdown report."""
        waiting = self.outbound.waiting()
        if waiting and self.client.state is State.ONLINE:
            log.info("waiting up to %g s for %d queued message(s)", self.drain_timeout,
                     waiting)
            await self.outbound.drain(self.drain_timeout)
        left = self.outbound.release()
        if left != "drained":
            log.info("%s: sent at the next start", left)
        return left

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
            **self.login.as_dict(),
            "queued": self.outbound.waiting() if self.outbound is not None else 0,
            "sending_paused": self.outbound.paused if self.outbound is not None else None,
            "counts": dict(self.counts, **(dispatcher.counts if dispatcher else {})),
            "plugins": [plugin.name for plugin in dispatcher.plugins] if dispatcher else [],
            "plugin_errors": self.plugin_problems,
            "command_prefix": self.config.bot.command_prefix,
            "reloads": self.reloads,
            "last_reload": self.last_reload,
            "simulator": simulator,
            "api": {"url": self.api.url, "token": "configured" if self.config.api.token
                    else "generated"} if self.api is not None else None,
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
