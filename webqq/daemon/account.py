"""One account of the daemon: its WebQQ session, its queue, its plugins, its login story.

What it is for: a daemon runs one ``Account`` per ``[account]`` or ``[account:NAME]``
section, all on one IOLoop and one ``HTTPStream``. Each has what no other account may
touch: its cookie jar (``CookieScope``), its ``WebQQClient`` (session and captcha files
named by its QQ number in state_dir), its rows of the one store and its ``Outbound``
queue, its plugins (a ``Dispatcher`` of its own), its part of the OneBot API, its watch
in the daemon's ``Health`` (readiness, metrics, notices, alerts; its requests counted
under its QQ number) and the ``Login`` that ``webqq status`` tells. In order::

    account = Account(daemon, settings)
    account.prepare(world)     # the password (and, embedded, its place in the world)
    account.start()            # client, queue, API part, plugins
    account.open_session()  # the session: resumed, or a login
    ...                        # client events: counts, status, plugins, start report
    await account.stop(drain)  # queue drained or left in the store, session saved

One account's wrong password, kick or captcha ends or holds only that account: it tells
the daemon (``Daemon.account_ended``), which stops only when none is left.

What it must never do: share its cookies, session or rows with another account, start
a thread, or keep a timer of its own besides its client's and its queue's (status
files, heartbeats and the log flush are the daemon's, one for all accounts).
"""
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from webqq import statedir
from webqq.client.client import State, WebQQClient
from webqq.client.session import load_session
from webqq.daemon import config as configuration
from webqq.daemon.config import AccountConfig, ConfigError
from webqq.daemon.logs import MaskingCookieJar
from webqq.daemon.process import ExitCode
from webqq.daemon.status import Login
from webqq.http.retry import RetryPolicy
from webqq.http.scope import CookieScope
from webqq.onebot.outbound import Outbound, import_saved_outbox
from webqq.plugins import Actions, Dispatcher, Event, Message
from webqq.qq.kinds import Era

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.daemon.daemon import Daemon
    from webqq.onebot.bot import AccountApi

__all__ = ["Account", "POLL_RETRY"]

log = logging.getLogger("webqq.daemon")

#: The long poll is retried twice by HTTPStream (within about 1.5 s), no more: a hiccup
#: passes quietly, an outage reaches the client's recovery, and the status, at once.
POLL_RETRY = RetryPolicy(idempotent=True, attempts=3)


class _Named(logging.LoggerAdapter):
    """The daemon's logger, each line starting with ``[NAME]`` when several accounts
    run (one account's lines read as they always did)."""

    def process(self, msg: str, kwargs: Any) -> Any:
        if self.extra["daemon"].several:
            return "[%s] %s" % (self.extra["name"], msg), kwargs
        return msg, kwargs


class Account:
    """One account of ``daemon``, as ``settings`` describes it.

    Args:
        daemon: the ``Daemon`` it runs in: its configuration (``[bot]``, ``[api]``,
            ``[simulator]``), its shared stream, store, secret mask, simulator, API and
            start report.
        settings: the account's ``AccountConfig``.
    """

    def __init__(self, daemon: "Daemon", settings: AccountConfig) -> None:
        self.daemon = daemon
        self.settings = settings
        self.name = settings.name
        self.qq = settings.qq
        self.password: Optional[str] = None
        # auto: the client loads the login page and takes the era it shows.
        self.era = None if settings.era == "auto" else Era(settings.era)
        self.client: Optional[WebQQClient] = None
        self.store = None                   # the account's view of the daemon's store
        self.outbound: Optional[Outbound] = None
        self.api: Optional["AccountApi"] = None
        self.dispatcher: Optional[Dispatcher] = None
        self.plugin_problems: List[str] = []
        self.counts: Dict[str, int] = dict.fromkeys(
            ("received", "sent", "send_failed", "send_ambiguous"), 0)
        self.login = Login()
        #: Why the account is offline for good (kicked, refused), once it is.
        self.ended: Optional[str] = None
        self.settled = False                # the start report has its outcome
        self.log = _Named(log, {"daemon": daemon, "name": self.name})

    # -- before the start --------------------------------------------------------------

    def prepare(self, world: Any = None) -> None:
        """Find the password; with an embedded simulator (its ``world``), the account's
        place in it: an account the world does not list is added to it.

        Raises ConfigError (its one line): no password, an unreadable password file, a
        QQ number the world gives to a person.
        """
        config = self.daemon.config
        password = configuration.resolve_password(config, self.settings)
        if world is not None:
            from webqq.simulator import WorldError   # only an embedding daemon needs it
            account = world.accounts.get(self.qq)
            if account is None:
                try:
                    account = world.add_account(self.qq, nick="webqq " + self.name)
                except WorldError as error:
                    raise ConfigError(config.source, self.settings.section, "qq",
                                      "not an account of the embedded simulator: %s"
                                      % error) from None
                self.log.info("the embedded simulator's world did not list %d: added "
                              "(password %s, friends with everyone)", self.qq,
                              "as configured" if password else "its default")
            if password is None:
                password = account.password
        self.daemon.mask.add(password)
        self.password = password

    # -- the start ---------------------------------------------------------------------

    def start(self) -> None:
        """Build the client, the queue, the API part and the plugins; ``open_session()`` then
        starts the session."""
        self._start_client()
        self._start_queue()
        if self.daemon.api is not None:
            self.api = self.daemon.api.add(self.client, self_id=self.qq,
                                           outbound=self.outbound)
        self._load_plugins()

    def open_session(self) -> None:
        """Start the session: resume the saved one, or log in."""
        self.client.start()

    def _start_client(self) -> None:
        daemon = self.daemon
        config = daemon.config
        state_dir = str(config.daemon.state_dir)
        self._mask_session(load_session(state_dir, self.qq))
        # [network] retries bounds every request's retries but the long poll's: a poll
        # that fails makes the client relink at once (its own ladder, with events), so
        # that an outage shows in `webqq status` as it starts, not after the retries.
        options: Dict[str, Any] = {
            "send_interval": config.bot.send_interval,
            "accept_friends": config.bot.accept_friends,
            "resend_ambiguous": config.bot.resend_ambiguous,
            "poll_retry": POLL_RETRY, "era": self.era}
        if daemon.simulator is not None:
            options["poll_hold"] = daemon.simulator.poll_hold
        scope = CookieScope(daemon.stream, MaskingCookieJar(daemon.mask))
        scope.observer = daemon.metrics.http_observer(self.qq)
        self.client = WebQQClient(self.qq, self.password, scope, state_dir, **options)
        self.client.add_listener(self._on_client_event)

    def _start_queue(self) -> None:
        """Its rows of the store and its outbound queue; what an older version left in
        ``outbox-QQ.json`` moved into it."""
        config = self.daemon.config
        self.store = self.daemon.store.for_account(self.qq)
        self.outbound = Outbound(self.client, self.store, self_id=self.qq,
                                 send_interval=config.bot.send_interval,
                                 pictures=self.daemon.pictures)
        self.outbound.on_change = self.daemon.status_soon       # queued, sending_paused
        import_saved_outbox(config.daemon.state_dir / statedir.saved_outbox_file(self.qq),
                            self.outbound)
        self.daemon.health.watch(self.qq, self.client, self.outbound)
        self.outbound.start()

    def _load_plugins(self, reload: bool = False) -> None:
        config = self.daemon.config
        if self.dispatcher is None:
            self.dispatcher = Dispatcher(self._send, reply=self._reply,
                                         prefix=config.bot.command_prefix,
                                         actions=Actions(self.client))
        self.dispatcher.prefix = config.bot.command_prefix
        self.plugin_problems = self.dispatcher.load(
            self.settings.plugins or config.bot.plugins, config.plugin_settings,
            reload=reload)

    def _mask_session(self, saved: Any) -> None:
        if saved is not None:
            self.daemon.mask.add(saved.psessionid, session=self.name)
            self.daemon.mask.add(saved.vfwebqq, session=self.name)

    # -- while it runs -----------------------------------------------------------------

    def apply(self, settings: AccountConfig) -> None:
        """A reload: the daemon's ``[bot]`` and this account's ``plugins`` as they now
        are (the rest of ``settings`` equals what runs)."""
        self.settings = settings
        config = self.daemon.config
        self.client.send_queue.interval = config.bot.send_interval
        self.client.manage.accept_friends = config.bot.accept_friends
        self.client.resend_ambiguous = config.bot.resend_ambiguous
        self.outbound.send_interval = config.bot.send_interval      # its pacing too
        self._load_plugins(reload=True)

    def _on_client_event(self, event: Any) -> None:
        """Every client event: bookkeeping here, then the plugins."""
        kind = event.kind
        if kind == "message":
            self.counts["received"] += 1
            self._log_incoming(event)
            self.daemon.status_soon()
            self.daemon.spawn(self._handle(self._as_message(event)))
            return
        if kind == "sent":
            self._on_sent(event.message)
        elif kind == "online":
            self._on_online(event)
        elif kind == "login_step":
            self.daemon.report_step(self, "step", event.step)
        elif kind == "reconnect":
            self._on_reconnect(event)
        elif kind == "login_failed":
            self.login.refused(str(event.error))
            self.daemon.status_soon()
            if event.final:
                self.log.error("login refused for good: %s", event.error)
                self._end("login refused: %s" % event.error, ExitCode.LOGIN_REFUSED,
                          "refused", str(event.error))
        elif kind == "captcha":
            page = self.daemon.captcha_links(self.qq).get("page")
            self.log.warning("the server wants a verify code: read %s, then answer with "
                             "webqq captcha %sCODE%s", event.path,
                             "--account %s " % self.name if self.daemon.several else "",
                             " or at %s (with the API's token)" % page if page else "")
            self.login.captcha_wanted(event.path)
            self.daemon.write_status()          # status names the image at once
            self.daemon.settle(self, "pending", "waiting for a verify code (%s)"
                               % event.path)
        elif kind == "state":
            self._on_state(event)
        if self.daemon.phase == "running" and self.dispatcher is not None:
            self.daemon.status_soon()                           # its "events" count
            self.daemon.spawn(self._handle_event(self._as_event(event)))

    def _end(self, why: str, code: ExitCode, word: str, line: str) -> None:
        """Offline for good: the start report hears it, the daemon decides whether to
        go on (other accounts run) or stop with ``code``."""
        if self.ended is not None:
            return
        self.ended = why
        self.daemon.settle(self, word, line)
        self.daemon.account_ended(self, code)

    def _on_state(self, event: Any) -> None:
        """The status says since when and (offline for good: kicked, logged out) why;
        then the account ends, since only a person can tell whether to log in again."""
        self.login.state(event.old.value, event.new.value, event.reason)
        if event.new is State.RESUMING:
            self.daemon.report_step(self, "step", "resuming the saved session")
        elif event.new is State.OFFLINE and self.ended is None \
                and self.daemon.phase == "running":
            self.log.error("offline for good: %s", event.reason)
            self._end(event.reason, ExitCode.FAILURE, "fail",
                      "%d offline for good: %s" % (ExitCode.FAILURE, event.reason))
        self.daemon.status_changed()

    def _on_reconnect(self, event: Any) -> None:
        """The client will try ``event.step`` again after ``event.delay`` seconds."""
        reason = event.reason or "%s failed" % event.step
        self.login.retry(event.step, event.attempt, event.delay, reason)
        self.daemon.report_step(self, "retry", "%.1f %s" % (event.delay, reason))
        self.daemon.status_changed()

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
        self.log.info("message in %s from %s, %d characters", chat, sender, len(event.text))
        self.log.debug("message text: %r", event.text)

    def _on_online(self, event: Any) -> None:
        self._mask_session(load_session(str(self.daemon.config.daemon.state_dir), self.qq))
        self.login.online(bool(event.resumed))
        how = "resumed the saved session" if event.resumed else \
            "relinked" if event.relinked else "logged in"
        self.log.info("online as %d (%s)", self.qq, how)
        self.daemon.status_changed()
        self.daemon.settle(self, "login", "online as %d (%s)" % (self.qq, how))
        self.daemon.announce_simulator(self)

    def _on_sent(self, message: Any) -> None:
        self.daemon.status_soon()
        status = message.status.value
        if status == "sent":
            self.counts["sent"] += 1
        elif status == "failed":
            self.counts["send_failed"] += 1
            if self.daemon.phase == "running":
                self.log.warning("a %s message was not sent: %s", message.chat,
                                 message.error)
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
        self.daemon.status_soon()               # the handlers' counts

    async def _handle_event(self, event: Event) -> None:
        await self.dispatcher.dispatch_event(event)
        self.daemon.status_soon()

    # -- sending (the plugins' send and reply) -----------------------------------------

    def _send(self, chat: str, target: int, text: str) -> Optional[int]:
        """The plugins' ``send``: a row of the durable queue. Returns its message_id
        (None while the store cannot be written: the message waits in memory).

        Raises ValueError for a chat that cannot be sent to (a temporary session can
        only be replied to) or an empty text."""
        message_id = self.outbound.send_text(chat, target, text)
        self.daemon.status_soon()
        return message_id

    def _reply(self, message: Message, text: str) -> Optional[int]:
        """The plugins' ``reply``: a row of the durable queue, to the chat ``message``
        came from. Returns what ``_send`` returns."""
        message_id = self.outbound.reply(message.raw, text)
        self.daemon.status_soon()
        return message_id

    # -- the end -----------------------------------------------------------------------

    def had_session(self) -> bool:
        return self.client is not None and self.client.state not in (
            State.STOPPED, State.OFFLINE, State.LOGGING_IN)

    async def drain(self, timeout: float) -> str:
        """While online, wait up to ``timeout`` seconds for the queue to empty; then
        stop handing messages over. Returns what is left, for the shutdown report."""
        waiting = self.outbound.waiting()
        if waiting and self.client.state is State.ONLINE:
            self.log.info("waiting up to %g s for %d queued message(s)", timeout, waiting)
            await self.outbound.drain(timeout)
        left = self.outbound.release()
        if left != "drained":
            self.log.info("%s: sent at the next start", left)
        return left

    async def stop(self, why: str, drain: float = 0.0) -> Dict[str, str]:
        """Stop the account: its queue drained for up to ``drain`` seconds (the rest
        stays in the store), its API part gone, its client stopped (session saved).
        Returns ``{"outbox": ..., "session": ...}`` for the shutdown report."""
        report = {}
        if self.outbound is not None:
            report["outbox"] = await self.drain(drain) if drain else \
                self.outbound.release()
        if self.api is not None and self.daemon.api is not None:
            await self.daemon.api.remove(self.qq)
            self.api = None
        if self.client is not None:
            report["session"] = "saved" if self.had_session() else "none"
            self.client.stop(why)
            self.client.remove_listener(self._on_client_event)
        self.daemon.health.forget(self.qq)
        if self.outbound is not None:
            self.outbound.close()       # after the client: an outcome on the wire is kept
        if self.store is not None:
            self.store.forget()
        return report

    # -- status ------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """The account's part of ``status.json``."""
        dispatcher = self.dispatcher
        return {
            "name": self.name,
            "qq": self.qq,
            "state": self.client.state.value if self.client is not None else None,
            **self.login.as_dict(),
            "queued": self.outbound.waiting() if self.outbound is not None else 0,
            "sending_paused": self.outbound.paused if self.outbound is not None else None,
            "counts": dict(self.counts, **(dispatcher.counts if dispatcher else {})),
            "plugins": [plugin.name for plugin in dispatcher.plugins] if dispatcher else [],
            "plugin_errors": self.plugin_problems,
        }
