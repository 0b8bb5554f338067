"""WebQQClient: log in, stay online, receive and send messages.

client: drives the WebQQ session. It never opens a socket and never parses bytes: every
request is built by ``webqq.qq`` and sent through an ``HTTPStream``; every
reply is read by a ``webqq.qq`` parser. Every delay is an ``IOLoop.call_later``;
no threads, no sleeps. It never logs the password or a token (skey, ptwebqq, vfwebqq, psessionid).

Its parts, each in its own module, report back through callables and never change the
state: ``login.LoginFlow`` (the requests of a login, relink or resume),
``sending.Transmitter`` (the ``SendQueue`` and each part's request), and
``receiving.Receiver`` (repeats dropped, senders named, events emitted in order) and
``numbers.NumberBook`` (QQ numbers, looked up when needed). This class keeps the state
machine, the poll and heartbeat chains, the contact refreshes and the recovery ladder.

A session, in the order this module is written (§2.2)::

    client = WebQQClient(10001, "password", stream, "./run")
    client.on("message", lambda event: client.reply(event, "hi"))
    client.start()

1. ``start()``: resume a saved session (``login2`` with the saved cookies) or log in:
   ``check`` -> (``getimage``, a ``CaptchaRequired`` event, ``enter_verify_code``) ->
   ``login`` -> ``login2`` (the ``LoginFlow``); then load the contacts (friends, groups
   and their members, discussions; no QQ-number lookups) and go ONLINE.
2. ONLINE: two endless chains on HTTPStream readbacks: ``poll2`` (re-issued at every
   answer) and the heartbeat; a watchdog relinks when no poll is answered for
   ``stall_after`` seconds; contacts are refreshed every ``contacts_refresh`` seconds.
3. A poll answer: 0 -> each event is de-duplicated, its sender resolved from the contacts
   (the ``Receiver``), and emitted as ``MessageReceived`` or ``Notice``; 102 -> poll
   again; 116 -> store the new ptwebqq; 120/121 -> relink (``login2``) and, if the
   server refuses, log in again; 100/103/108/... -> log in again; 109/110 or a kick ->
   OFFLINE.
4. Sends (``send_buddy``, ``send_group``, ``send_discussion``, ``send_session``, ``reply``)
   go through the ``Transmitter`` and its one ``SendQueue``: a minimum interval apart, in
   order, waiting while offline; pictures in them are uploaded at their turn.
5. Besides sending, three parts act in the session: ``client.pictures`` (a received
   picture's bytes, cached), ``client.files`` (take, refuse or fetch a file) and
   ``client.manage`` (friend and group requests, leaving a group, our group card; the
   ``accept_friends`` policy).

Recovery: HTTPStream retries network errors and 5xx by its policy; when a chain fails for
good, the client retries its step (relink, resume or login) after ``backoff * 2**(n-1)``
seconds (capped at ``backoff_max``, minus up to ``jitter`` of it at random), announcing
each attempt with a ``Reconnecting`` event. A relink or relogin the server asks for runs
at once the first time, then climbs the same ladder until a poll is answered normally
again. A wrong password is final: no retry.

States (``State``), the only moves allowed (``_MOVES``)::

    STOPPED -> RESUMING | LOGGING_IN          OFFLINE -> LOGGING_IN | STOPPED
    RESUMING -> ONLINE | LOGGING_IN | OFFLINE | STOPPED
    LOGGING_IN, RELOGGING -> WAITING_CAPTCHA | ONLINE | OFFLINE | STOPPED
    WAITING_CAPTCHA -> LOGGING_IN | OFFLINE | STOPPED
    ONLINE -> RELINKING | RELOGGING | OFFLINE | STOPPED
    RELINKING -> ONLINE | RELOGGING | OFFLINE | STOPPED

Events: ``client.on(kind, callback)`` for one kind, ``client.add_listener(callback)`` for
all; a callback gets one event object whose ``kind`` is one of:

    "state"         StateChanged(old, new, reason)
    "captcha"       CaptchaRequired(path): the image to read; then enter_verify_code(code)
    "login_failed"  LoginFailed(error, final): final=True means no retry (wrong password)
    "login_step"    LoginStep(step): checking the account, logging in, loading contacts
    "reconnect"     Reconnecting(step, attempt, delay, at, reason): a recovery is scheduled
    "online"        Online(resumed, relinked)
    "contacts"      ContactsLoaded(contacts)
    "message"       MessageReceived(chat, message, text, sender, group, discussion,
                    pieces): pieces are texts, faces and ReceivedPictures
    "notice"        Notice(event): any other poll event (status change, kick, ...), as
                    sent; the five kinds below follow it with the client's reading
    "friend_request"        FriendRequestReceived(qq, uin, message, accepting)
    "friend_change"         FriendChanged(change, uin, qq, name, category)
    "group_member"          GroupMemberChanged(change, sub_type, gid, group, member,
                            operator)
    "group_request"         GroupJoinRequest(gid, group, requester, message)
    "group_request_answer"  GroupJoinAnswered(gid, group, accepted, admin, message)
    "file"                  FileNotice(change, sender, name, size)
    "transmitting"  Transmitting(message): its first part is being handed to the network
    "sent"          SendFinished(message): an OutgoingMessage left the queue
A callback that raises is logged; the client carries on.
"""
import enum
import logging
import random
import time
from pathlib import Path
from typing import Any, Callable, Collection, Dict, List, Optional, Tuple, Union

from tornado import gen
from tornado.ioloop import IOLoop

from webqq import statedir
from webqq.client.calls import Calls
from webqq.client.contacts import ContactLoader, Contacts
from webqq.client.numbers import NumberBook
from webqq.client.events import (CaptchaRequired, ClientEvent, ContactsLoaded, LoginFailed,
                                 LoginStep, MessageReceived, Notice, Online, Reconnecting,
                                 Sender, SendFinished, StateChanged, Transmitting)
from webqq.client.files import FILE_MAX_BYTES, Files
from webqq.client.login import LoginFlow
from webqq.client.manage import Manager
from webqq.client.pictures import CACHE_MAX_AGE, CACHE_MAX_BYTES, PictureCache, Pictures
from webqq.client.receiving import Receiver
from webqq.client.send_queue import OutgoingMessage, SendQueue, SendStatus
from webqq.client.sending import Transmitter, describe
from webqq.client.session import (cookie_value, delete_session, load_session, save_session,
                                  set_cookie)
from webqq.client.uploads import Uploader
from webqq.http.errors import HTTPStreamError
from webqq.http.retry import backoff_delay
from webqq.http.stream import HTTPStream, Response, RetryPolicy
from webqq.qq import (BuddyListChange, Era, FriendAdded, FriendRequest, FriendRequestAccepted,
                      GroupSystemEvent, Kick, LoginCode, LoginError, MAX_TEXT_CHARS, Outgoing,
                      PollEvent, PollOutcome, ProtocolError, QQRetcode, RetcodeError,
                      UnblockRequired, build_heartbeat, build_logout, build_poll,
                      parse_heartbeat, parse_logout, parse_poll)

__all__ = [
    "WebQQClient", "State", "ClientEvent", "StateChanged", "CaptchaRequired",
    "LoginFailed", "Reconnecting", "Online", "ContactsLoaded", "Sender",
    "MessageReceived", "Notice", "Transmitting", "SendFinished", "OutgoingMessage",
    "SendStatus",
]

log = logging.getLogger("webqq.client")


# --- states -----------------------------------------------------------------------------

class State(enum.Enum):
    """Where the client stands (docs/protocol.rst §2.2, from the client's side)."""
    STOPPED = "stopped"                  # not started, or stop() was called
    RESUMING = "resuming"                # login2 with a saved session's cookies
    LOGGING_IN = "logging_in"            # check, login, login2, contacts
    WAITING_CAPTCHA = "waiting_captcha"  # a human must read the image
    ONLINE = "online"                    # polling; sends go out
    RELINKING = "relinking"              # login2 again with the same cookies
    RELOGGING = "relogging"              # the session is gone: check, login, login2 again
    OFFLINE = "offline"                  # refused for good (password, kick, logout)


_MOVES = {
    State.STOPPED: {State.RESUMING, State.LOGGING_IN},
    State.RESUMING: {State.ONLINE, State.LOGGING_IN, State.OFFLINE, State.STOPPED},
    State.LOGGING_IN: {State.WAITING_CAPTCHA, State.ONLINE, State.OFFLINE, State.STOPPED},
    State.WAITING_CAPTCHA: {State.LOGGING_IN, State.OFFLINE, State.STOPPED},
    State.ONLINE: {State.RELINKING, State.RELOGGING, State.OFFLINE, State.STOPPED},
    State.RELINKING: {State.ONLINE, State.RELOGGING, State.OFFLINE, State.STOPPED},
    State.RELOGGING: {State.WAITING_CAPTCHA, State.ONLINE, State.OFFLINE, State.STOPPED},
    State.OFFLINE: {State.LOGGING_IN, State.STOPPED},
}

# Login codes after which trying again cannot help and may lock the account (§3.4).
_FINAL_LOGIN_CODES = {LoginCode.WRONG_PASSWORD, LoginCode.ACCOUNT_EXPIRED,
                      LoginCode.INVALID_ACCOUNT, LoginCode.ACCOUNT_FROZEN}
# login2 retcodes that mean "not this account, not now": stop (§6).
_FINAL_LOGIN2_CODES = {QQRetcode.NOT_WHITELISTED, QQRetcode.BLACKLISTED}
# Consecutive unknown poll retcodes (e.g. 114) before logging in again (§6, MJ).
_UNKNOWN_POLL_CODES_BEFORE_RELOGIN = 3


class WebQQClient:
    """One WebQQ account's session on an ``HTTPStream``.

    The client holds the state machine, the poll and heartbeat chains, the contact
    refreshes and the recovery ladder, and wires three parts it owns: a ``LoginFlow``
    (the requests of a login, relink or resume), a ``Transmitter`` (the send queue and
    each part's request), and a ``Receiver`` (de-duplication, the sender's name). The
    parts never change the state: they report through the callables given here.

    Args:
        qq: the account's QQ number.
        password: its password (kept in memory only; never logged or saved).
        stream: the ``HTTPStream`` every request goes through; its cookie jar holds the
            session cookies. The caller closes it.
        state_dir: where the session file and the captcha image are written.
        poll_hold: seconds the server holds a poll (60 in 2013); the watchdog and the
            default ``stall_after`` derive from it.
        stall_after: seconds without a poll answer before a forced relink
            (default ``3 * poll_hold``).
        heartbeat_interval: seconds between two ``get_msg_tip`` beats.
        contacts_refresh: seconds between two contact reloads (0: only at login).
        send_interval: seconds between two sends at least, ``MIN_SEND_INTERVAL`` (0.5)
            or more (docs/protocol.rst §7.3).
        resend_ambiguous: send again a part whose fate is unknown (at least once)
            instead of ending its message AMBIGUOUS (at most once, the default).
        send_ttl: seconds a queued message may wait for the client to be online.
        max_text: characters per message part; longer texts are split.
        backoff, backoff_max, jitter: the recovery ladder (seconds, seconds, fraction).
        poll_retry: the HTTPStream policy of a poll (repeatable: a long poll may be
            sent twice).
        lookup_qq: look up a QQ number when a message or a send needs one (paced; see
            ``numbers.NumberBook``); False: only the numbers the protocol carries.
        resume: try the saved session before logging in.
        era: ``Era.A`` (spring 2013, the default), ``Era.B`` (login page and
            ``login_sig`` first, then the ``check_sig`` hop after ``login``), or None
            ("auto"): at each login, Era B when the login page carries a ``login_sig``,
            else Era A.
        rng: the randomness (client id, jitter, check nonces); ``random.Random()``.
        clock: wall-clock seconds for the protocol's ``t`` stamps; ``time.time``.
        accept_friends: the friend policy (``Manager``): False answers no request by
            itself, True accepts all, a set of QQ numbers accepts those.
        picture_cache_bytes, picture_cache_age: caps of ``state_dir/pictures`` (bytes, s).
        file_max_bytes: the cap on a file taken or fetched (bytes).

    Attributes:
        state: a ``State``. contacts: the ``Contacts`` of the last load, numbers filled
            in as they are learnt.
        numbers: the ``NumberBook``: ``numbers.qq_of(uin)`` and
            ``numbers.group_number(code)`` give a number a caller needs (a Future that
            never raises; None when it cannot be had now), looked up if unknown.
        pictures: ``Pictures``: ``await client.pictures.fetch(picture)`` -> bytes.
        files: ``Files``: ``accept``, ``refuse`` or ``download`` a file.
        manage: ``Manager``: answer friend and group requests, leave a group, set our
            group card; its ``accept_friends`` is the friend policy.
        resend_ambiguous: the argument; a change applies to the next unknown fate.
    """

    def __init__(self, qq: int, password: str, stream: HTTPStream, state_dir: str, *,
                 poll_hold: float = 60.0, stall_after: Optional[float] = None,
                 heartbeat_interval: float = 60.0, contacts_refresh: float = 3600.0,
                 send_interval: float = 0.5, send_ttl: float = 300.0,
                 resend_ambiguous: bool = False,
                 max_text: int = MAX_TEXT_CHARS, backoff: float = 1.0,
                 backoff_max: float = 300.0, jitter: float = 0.5,
                 poll_retry: Optional[RetryPolicy] = None, lookup_qq: bool = True,
                 resume: bool = True, era: Optional[Era] = Era.A,
                 rng: Optional[random.Random] = None,
                 clock: Callable[[], float] = time.time,
                 accept_friends: Union[bool, Collection[int]] = False,
                 picture_cache_bytes: int = CACHE_MAX_BYTES,
                 picture_cache_age: float = CACHE_MAX_AGE,
                 file_max_bytes: int = FILE_MAX_BYTES) -> None:
        self.qq = qq
        self.stream = stream
        self.io_loop: IOLoop = stream.io_loop
        self.state_dir = state_dir
        self.poll_hold = poll_hold
        self.stall_after = stall_after if stall_after is not None else 3 * poll_hold
        self.heartbeat_interval = heartbeat_interval
        self.contacts_refresh = contacts_refresh
        self.backoff, self.backoff_max, self.jitter = backoff, backoff_max, jitter
        self.poll_retry = poll_retry or RetryPolicy(idempotent=True, attempts=3)
        self.resume = resume
        self.rng = rng or random.Random()
        self.clock = clock

        self.state = State.STOPPED
        self.contacts = Contacts()
        self.last_error: Optional[Exception] = None
        self._listeners: List[Tuple[Optional[str], Callable[[ClientEvent], Any]]] = []
        self._epoch = 0                      # bumped whenever running chains must end
        self._timers: Dict[str, object] = {}
        self._attempt = 0                    # recoveries since the last healthy poll
        # IOLoop.time() of the last poll answer of this session (or of going online): the
        # watchdog relinks stall_after seconds after it; /readyz reads it.
        self.last_poll_answer = 0.0
        self.polls_answered = 0              # poll answers (status 200) of live sessions
        self._poll_sent = 0.0
        self._unknown_poll_codes = 0
        self._quick_116 = False              # the last poll answer was a fast 116
        self._heartbeats = 0
        self._loading_contacts: Optional[int] = None   # the epoch of the running load
        self.resend_ambiguous = resend_ambiguous
        # The parts, and the callables through which they report (see their modules).
        self._flow = LoginFlow(qq, password, stream, state_dir, era=era, rng=self.rng,
                               epoch=lambda: self._epoch, failed=self._failed,
                               captcha=self._on_captcha, linked=self._go_online,
                               progress=lambda step: self._emit(LoginStep(step)))
        self._link = self._flow.link         # clientid, psessionid, vfwebqq
        # What the book learns goes into the contacts, and the session file when saved.
        self.numbers = NumberBook(stream, lambda: self._link.vfwebqq, clock,
                                  enabled=lookup_qq,
                                  learnt=lambda key, number: self.contacts.learn(key, number))
        self._loader = ContactLoader(stream, clock, self.numbers)
        calls = Calls(stream, self._link, online=lambda: self.state is State.ONLINE,
                      clock=clock)
        self._sending = Transmitter(
            stream, self._link, contacts=lambda: self.contacts, epoch=lambda: self._epoch,
            can_send=lambda: self.state is State.ONLINE, emit=self._emit,
            save=self._save_session, renew=self._renew_link, interval=send_interval,
            ttl=send_ttl, max_text=max_text, clock=clock,
            resend_ambiguous=lambda: self.resend_ambiguous,
            numbers=self.numbers, msg_id=self.rng.randrange(1111111, 99999999),
            uploader=Uploader(calls, qq, self.rng))
        self._receiver = Receiver(self.io_loop, lambda: self.contacts, self.numbers,
                                  self._emit, qq)
        self.pictures = Pictures(calls, PictureCache(
            Path(state_dir) / statedir.PICTURES, max_bytes=picture_cache_bytes,
            max_age=picture_cache_age, clock=clock))
        self.files = Files(calls, Path(state_dir) / statedir.FILES,
                           max_bytes=file_max_bytes, io_loop=self.io_loop)
        self.manage = Manager(calls, lambda: self.contacts, accept_friends=accept_friends)

    def __repr__(self) -> str:
        return "<WebQQClient qq=%d %s>" % (self.qq, self.state.value)

    @property
    def nick(self) -> str:
        """The account's nickname, as the last login answered it ("" before)."""
        return self._flow.nick

    @property
    def send_queue(self) -> SendQueue:
        """The in-memory queue of messages asked for and not finished (``len()``, and
        ``next_id``: the id the next message will get)."""
        return self._sending.queue

    # -- listeners ---------------------------------------------------------------------

    def on(self, kind: str, callback: Callable[[ClientEvent], Any]) -> None:
        """Call ``callback(event)`` for every event of this ``kind`` (see the module doc)."""
        self._listeners.append((kind, callback))

    def add_listener(self, callback: Callable[[ClientEvent], Any]) -> None:
        """Call ``callback(event)`` for every event."""
        self._listeners.append((None, callback))

    def remove_listener(self, callback: Callable[[ClientEvent], Any]) -> None:
        """Forget ``callback`` (every registration of it)."""
        # == rather than "is": a bound method is a new object at each attribute access.
        self._listeners = [(k, c) for k, c in self._listeners if c != callback]

    def _emit(self, event: ClientEvent) -> None:
        for kind, callback in list(self._listeners):
            if kind is None or kind == event.kind:
                try:
                    callback(event)
                except Exception:
                    log.exception("Listener %r raised on a %s event", callback, event.kind)

    # -- the state machine -------------------------------------------------------------

    def _set_state(self, new: State, reason: str) -> None:
        """The only assignment of ``self.state``: checks ``_MOVES``, logs, notifies."""
        old = self.state
        if new is old:
            return
        if new not in _MOVES[old]:
            raise RuntimeError("no move from %s to %s (%s)" % (old.name, new.name, reason))
        self.state = new
        log.info("%s -> %s: %s", old.name, new.name, reason)
        self._emit(StateChanged(old, new, reason))
        if new is State.ONLINE:
            self._sending.wake()

    def _new_epoch(self) -> int:
        """End every running chain (their readbacks see a stale epoch) and timer."""
        self._epoch += 1
        for handle in self._timers.values():
            self.io_loop.remove_timeout(handle)
        self._timers.clear()
        return self._epoch

    def _later(self, name: str, delay: float, callback: Callable[[], Any]) -> None:
        """Run ``callback`` in ``delay`` seconds; one timer per name, replaced if armed."""
        handle = self._timers.pop(name, None)
        if handle is not None:
            self.io_loop.remove_timeout(handle)

        def fire() -> None:
            self._timers.pop(name, None)
            callback()
        self._timers[name] = self.io_loop.call_later(delay, fire)

    # -- public control ----------------------------------------------------------------

    def start(self) -> None:
        """Resume the saved session if there is one (and ``resume``), else log in.
        From OFFLINE (refused, kicked or logged out) it logs in afresh.

        Raises:
            RuntimeError: the client is neither STOPPED nor OFFLINE.
        """
        if self.state not in (State.STOPPED, State.OFFLINE):
            raise RuntimeError("start() on a client that is %s" % self.state.value)
        self._sending.open()
        saved = None
        if self.resume and self.state is State.STOPPED:
            saved = load_session(self.state_dir, self.qq)
        if saved is not None:
            self._flow.restore(saved)
            self._sending.resume_at(saved.msg_id)
            self.numbers.restore(saved.numbers)
            self._loader.hash_variant = saved.hash_variant
            self._set_state(State.RESUMING, "found a saved session")
            self._relink("resume")
        else:
            self._set_state(State.LOGGING_IN, "start")
            self._login()

    def stop(self, reason: str = "stop() called") -> None:
        """Stop polling and sending; the session is saved (not logged out), so a later
        ``start()`` can resume it. Queued messages fail. Safe to call twice."""
        if self.state is State.STOPPED:
            return
        if self._link.psessionid is not None:
            self._save_session()
        self._new_epoch()
        self._receiver.flush()
        self._sending.close("client stopped")
        self._set_state(State.STOPPED, reason)

    def logout(self) -> None:
        """End the session at the server (``logout2``, not awaited), forget the saved
        session, and stop."""
        if self._link.psessionid is not None and self.state is State.ONLINE:
            request = build_logout(clientid=self._link.clientid,
                                   psessionid=self._link.psessionid,
                                   t=self.clock())
            self.stream.add_request(request, _on_logout, retry=RetryPolicy(attempts=1),
                                    errback=lambda _r, e: log.info("logout2: %s", e))
        delete_session(self.state_dir, self.qq)
        self._link.psessionid = None
        self.stop("logged out")

    def enter_verify_code(self, code: str) -> None:
        """Answer the captcha of the last ``CaptchaRequired`` event; the login goes on.

        Raises:
            RuntimeError: the client is not WAITING_CAPTCHA.
        """
        if self.state is not State.WAITING_CAPTCHA or not self._flow.waiting_code:
            raise RuntimeError("no captcha is waiting (state %s)" % self.state.value)
        self._set_state(State.LOGGING_IN, "verify code entered")
        self._flow.enter_code(code)

    # -- sending: the Transmitter's, refused while STOPPED --------------------------------

    def send_buddy(self, friend: Any, text: Outgoing) -> OutgoingMessage:
        """Queue a message to a friend: a QQ number (int), a nick or remark name (str),
        or a ``Friend``. Returns the ``OutgoingMessage`` (await ``.done``); arguments,
        results and errors as in ``Transmitter.send_buddy``."""
        return self._sending.send_buddy(friend, text)

    def send_group(self, group: Any, text: Outgoing) -> OutgoingMessage:
        """Queue a message to a group: its public number (int), name (str) or ``Group``."""
        return self._sending.send_group(group, text)

    def send_discussion(self, discussion: Any, text: Outgoing) -> OutgoingMessage:
        """Queue a message to a discussion: its did (int), name (str) or ``Discussion``."""
        return self._sending.send_discussion(discussion, text)

    def send_session(self, uin: int, text: Outgoing, *, via_id: int,
                     service_type: int = 0) -> OutgoingMessage:
        """Queue a temporary-session message to ``uin`` met in group or discussion
        ``via_id`` (``SessionMessage.via_id``; ``service_type`` 0 group, 1 discussion)."""
        return self._sending.send_session(uin, text, via_id=via_id,
                                          service_type=service_type)

    def reply(self, event: MessageReceived, text: Outgoing) -> OutgoingMessage:
        """Answer a ``MessageReceived`` in its own chat (to the sender for buddy and
        session messages, to the group or discussion otherwise)."""
        return self._sending.reply(event, text)

    # -- logging in: the LoginFlow's requests, this client's states ----------------------

    def _login(self) -> None:
        """Start over from ``check`` (§2.2 S0-S2), with the same client id."""
        self._new_epoch()
        self._sending.forget()
        self.numbers.forget()
        self._flow.begin()

    def _relink(self, step: str) -> None:
        """``login2`` again with the current cookies and psessionid (a kick, a stall,
        a network failure, or a restart with a saved session)."""
        self._new_epoch()
        self._flow.relink(step)

    def _on_captcha(self, path: str) -> None:
        """The flow saved a verify-code image: wait for ``enter_verify_code``."""
        self._set_state(State.WAITING_CAPTCHA, "verify code required")
        self._emit(CaptchaRequired(path))

    def _save_session(self) -> None:
        """Write the session file: the flow's link and cookies, the end of a new block
        of msg_ids (``Transmitter.reserve``), the numbers learnt and the friend-list
        hash variant. A failure is logged, not raised."""
        saved = self._flow.saved(self._sending.reserve())
        saved.numbers, saved.hash_variant = self.numbers.entries(), self._loader.hash_variant
        try:
            save_session(self.state_dir, saved)
        except OSError as exc:
            log.warning("Could not save the session in %s: %s", self.state_dir, exc)

    # -- recovery: what a failure leads to ------------------------------------------------

    def _failed(self, step: str, error: Exception) -> None:
        """Decide what a failed step leads to: retry later, log in again, or stop."""
        self.last_error = error
        if isinstance(error, LoginError):
            final = error.code in _FINAL_LOGIN_CODES or isinstance(
                error, UnblockRequired)
            log.warning("Login refused: %s", error)
            self._emit(LoginFailed(error, final))
            if final:
                self._give_up("login refused: %s" % _code_name(error.code))
            else:                       # a wrong verify code included: check again
                self._retry_later("login", str(error))
            return
        if isinstance(error, RetcodeError) and step in ("login", "relink", "resume"):
            if error.retcode in _FINAL_LOGIN2_CODES:
                self._emit(LoginFailed(error, True))
                self._give_up("login2 refused: %s" % _code_name(error.retcode))
            elif step == "login":
                self._emit(LoginFailed(error, False))
                self._retry_later("login", str(error))
            elif step == "resume":              # the usual fate of an old session
                self._relogin("saved session expired; logging in", at_once=True)
            else:                               # the session is gone: log in again
                self._relogin("%s refused (%s)" % (step, _code_name(error.retcode)),
                              at_once=True)
            return
        if step == "poll":
            log.warning("poll failed: %s", describe(error))
            self._relink_later("poll failed: %s" % error.__class__.__name__)
        else:                                   # one line: what failed, and what next
            self._retry_later(step, "%s failed: %s" % (step, describe(error)),
                              logging.WARNING)

    def _renew_link(self, epoch: int, why: str, reason: str) -> None:
        """A send found its session refused (the Transmitter's ``renew``, ``why``
        "refused": 108 and the like) or unreachable ("unreachable"); nothing when the
        client has left that session or is not online. A refusal relinks at once, as a
        poll's 121 does, and logs in again only if login2 refuses too: a session kicked
        a moment ago answers sends 108 before its poll says 121, and a relink keeps what
        the server queued for it, which a new login would not find."""
        if epoch != self._epoch or self.state is not State.ONLINE:
            return
        if why == "refused":
            self._set_state(State.RELINKING, reason)
            self._recover("relink", reason)
        else:
            self._relink_later(reason)

    def _give_up(self, reason: str) -> None:
        """OFFLINE for good: every chain ends; only ``start()`` logs in again."""
        self._new_epoch()
        self._link.psessionid = None            # nothing left to save or resume
        self._set_state(State.OFFLINE, reason)

    def _relogin(self, reason: str, at_once: bool = False) -> None:
        """The session is gone: log in from ``check`` (RESUMING: from the start)."""
        delete_session(self.state_dir, self.qq)
        if self.state is State.RESUMING:
            self._set_state(State.LOGGING_IN, reason)
        elif self.state is not State.LOGGING_IN:
            self._set_state(State.RELOGGING, reason)
        if at_once:
            self._login()
        else:
            self._recover("login", reason)

    def _recover(self, step: str, reason: str) -> None:
        """Relink or log in again: at once the first time since the last healthy poll,
        after the ladder's delay when the server keeps sending us back, so that a
        session refused at every poll never turns into a login storm."""
        if self._attempt:
            self._retry_later(step, reason)
            return
        self._attempt = 1
        if step == "login":
            self._login()
        else:
            self._relink(step)

    def _relink_later(self, reason: str) -> None:
        """The link broke (a poll or a send could not get through): RELINKING, then
        login2 again after the ladder's delay."""
        if self.state is State.ONLINE:
            self._set_state(State.RELINKING, reason)
        self._retry_later("relink", reason)

    def _retry_later(self, step: str, reason: str, level: int = logging.INFO) -> None:
        """The recovery ladder: run ``step`` again after an exponential, jittered,
        capped delay; never at once, so a dead server is never hammered."""
        self._new_epoch()
        self._attempt += 1
        delay = backoff_delay(self._attempt, self.backoff, self.backoff_max, self.jitter,
                              self.rng.random)
        log.log(level, "%s; %s again in %.2f s (attempt %d)", reason, step, delay,
                self._attempt)
        self._emit(Reconnecting(step, self._attempt, delay, self.io_loop.time(), reason))
        if step == "login":
            self._later("recover", delay, self._login)
        else:
            self._later("recover", delay, lambda: self._relink(step))

    # -- online: contacts, then the poll and heartbeat chains ---------------------------

    def _go_online(self) -> None:
        """login2 accepted (the flow's ``linked``): save the session; after a login or
        a resume, load the contacts first; then ONLINE."""
        self.numbers.learn(self.qq, self.qq)      # our own uin is our number (§2.2)
        self._save_session()
        resumed = self.state is State.RESUMING
        relinked = self.state is State.RELINKING
        if relinked:
            self._become_online(resumed, relinked)
            return
        epoch = self._epoch
        self._emit(LoginStep("loading contacts"))
        _spawn(self.io_loop, self._load_contacts(epoch),
               lambda: self._become_online(resumed, relinked, epoch))

    def _become_online(self, resumed: bool, relinked: bool,
                       epoch: Optional[int] = None) -> None:
        """ONLINE (unless the chain that loaded the contacts ended): the queue wakes,
        and the poll chain, the heartbeat, the watchdog and the refresh timer start."""
        if epoch is not None and epoch != self._epoch:
            return
        self._unknown_poll_codes, self._quick_116 = 0, False
        how = "session resumed" if resumed else "relinked" if relinked else "logged in"
        self._set_state(State.ONLINE, how)
        self._emit(Online(resumed, relinked))
        self.last_poll_answer = self.io_loop.time()
        epoch = self._epoch
        request, readback, _delay = self._next_poll(epoch)
        # A poll that failed for good, if its chain is still the current one: recover.
        self.stream.add_request(request, readback, retry=self.poll_retry,
                                errback=lambda _r, error: epoch == self._epoch
                                and self._failed("poll", error))
        self._later("heartbeat", self.heartbeat_interval, self._heartbeat)
        self._later("watchdog", self.poll_hold, self._watchdog)
        if self.contacts_refresh:
            self._later("contacts", self.contacts_refresh, self._refresh_contacts)

    def _next_poll(self, epoch: int, delay: float = 0.0):
        """The chain's next poll, as a readback returns it."""
        self._poll_sent = self.io_loop.time() + delay
        request = build_poll(clientid=self._link.clientid,
                             psessionid=self._link.psessionid)
        return request, lambda r: self._on_poll(epoch, r), delay

    def _on_poll(self, epoch: int, response: Response):
        """One poll answer: dispatch its events (even from an ended chain: a message is
        never thrown away), then decide the next step (§6)."""
        if self.state is State.STOPPED:
            return None
        current = epoch == self._epoch
        if current:
            self.last_poll_answer = self.io_loop.time()
        if response.status != 200:
            if current:
                self._failed("poll", HTTPStreamError("HTTP %d from poll2" % response.status))
            return None
        self.polls_answered += 1
        try:
            result = parse_poll(response.read())
        except RetcodeError as exc:
            if not current:
                return None
            self._unknown_poll_codes += 1
            log.warning("poll2: %s (%d in a row)", exc, self._unknown_poll_codes)
            if self._unknown_poll_codes >= _UNKNOWN_POLL_CODES_BEFORE_RELOGIN:
                self._relogin("poll2 kept answering %s" % exc.retcode)
                return None
            return self._next_poll(epoch, self.backoff)
        except ProtocolError as exc:
            if not current:
                return None
            log.warning("poll2 answer unusable, polling again: %s", exc)
            return self._next_poll(epoch, self.backoff)
        for event in result.events:
            self._dispatch(event, current)
        if not current or self.state is not State.ONLINE:
            return None
        self._unknown_poll_codes = 0
        outcome = result.outcome
        if outcome in (PollOutcome.MESSAGES, PollOutcome.RETRY, PollOutcome.NEW_PTWEBQQ):
            self._attempt = 0                   # a healthy poll: the ladder starts over
        if outcome is PollOutcome.NEW_PTWEBQQ:
            set_cookie(self.stream.cookiejar, "ptwebqq", result.ptwebqq)
            self._save_session()
            log.info("poll2: ptwebqq rotated (116)")
        elif outcome is PollOutcome.RELINK:
            self._set_state(State.RELINKING, "poll2 answered %d" % result.retcode)
            self._recover("relink", "poll2 answered %d" % result.retcode)
            return None
        elif outcome is PollOutcome.RELOGIN:
            if result.retcode is QQRetcode.WRONG_WEB_CLIENT:
                log.warning("poll2 answered 122: logging in as another client; what the "
                            "server still held for this one may never come")
                self._flow.new_clientid()
            self._relogin("poll2 answered %d" % result.retcode)
            return None
        elif outcome is PollOutcome.LOGGED_OUT:
            delete_session(self.state_dir, self.qq)
            self._give_up("poll2 answered %d: logged out" % result.retcode)
            return None
        # An empty answer long before the hold time is up is not a held poll: a broken
        # server answering at once must not make us spin. A 116 brings news, so the next
        # poll goes at once (messages wait behind it), unless the last one came fast too.
        quick = self.io_loop.time() - self._poll_sent < self.poll_hold / 10
        rotated, self._quick_116 = self._quick_116, quick and outcome is PollOutcome.NEW_PTWEBQQ
        empty = outcome is PollOutcome.RETRY or (self._quick_116 and rotated)
        return self._next_poll(epoch, self.poll_hold / 10 if quick and empty else 0.0)

    def _watchdog(self) -> None:
        """Relink when no poll was answered for ``stall_after`` seconds."""
        silent = self.io_loop.time() - self.last_poll_answer
        if self.state is State.ONLINE and silent >= self.stall_after:
            self._set_state(State.RELINKING, "no poll answer for %.0f s" % silent)
            self._recover("relink", "poll stalled")
            return
        self._later("watchdog", self.poll_hold, self._watchdog)

    def _heartbeat(self) -> None:
        """One ``get_msg_tip`` beat, not retried, its answer only logged; the next one
        is armed at once."""
        self._heartbeats += 1
        request = build_heartbeat(rc=self._heartbeats, t=self.clock())
        self.stream.add_request(request, _on_heartbeat,
                                errback=lambda _r, e: log.debug("heartbeat failed: %s", e),
                                retry=RetryPolicy(attempts=1))
        self._later("heartbeat", self.heartbeat_interval, self._heartbeat)

    def _dispatch(self, event: PollEvent, current: bool = True) -> None:
        """Emit one poll event (the Receiver drops repeats and names the sender), then
        act on what it means for the session. ``current`` is false for an answer to a
        poll of a session we already left: its messages count, its kick does not (our
        own new login is what kicked that session)."""
        received = self._receiver.receive(event)
        if received is None:
            return
        self._receiver.deliver(received)
        for reading in self._receiver.read(event, self.manage.accepts):
            self._receiver.deliver(reading)     # in order, behind a message that waits
        if isinstance(event, Kick) and current and self.state is State.ONLINE:
            delete_session(self.state_dir, self.qq)
            self._give_up("kicked: %s" % (event.reason or "logged in elsewhere"))
        elif isinstance(event, FriendRequest) and current:
            self.manage.on_request(event)
        elif isinstance(event, (BuddyListChange, GroupSystemEvent, FriendAdded,
                                FriendRequestAccepted)):
            self._later("contacts", 1.0, self._refresh_contacts)

    # -- contacts ------------------------------------------------------------------------

    def _refresh_contacts(self) -> None:
        """Reload the contacts in the background while ONLINE (every
        ``contacts_refresh`` seconds, and soon after a contact list change)."""
        if self.state is not State.ONLINE:
            return
        _spawn(self.io_loop, self._load_contacts(self._epoch), lambda: None)
        if self.contacts_refresh:
            self._later("contacts", self.contacts_refresh, self._refresh_contacts)

    async def _load_contacts(self, epoch: int) -> None:
        """Reload the contacts (one load per session at a time: a load of an older
        session stops by itself and does not hold up this one) and emit
        ``ContactsLoaded``."""
        if self._loading_contacts == epoch:
            return
        self._loading_contacts = epoch
        try:
            contacts = await self._loader.load(
                self.contacts, qq=self.qq,
                ptwebqq=cookie_value(self.stream.cookiejar, "ptwebqq") or "",
                clientid=self._link.clientid, psessionid=self._link.psessionid,
                vfwebqq=self._link.vfwebqq, current=lambda: epoch == self._epoch,
                now=self.io_loop.time())
        finally:
            if self._loading_contacts == epoch:
                self._loading_contacts = None
        if contacts is not None:
            self.contacts = contacts
            log.info("Contacts: %d friends, %d groups, %d discussions", len(
                contacts.friends), len(contacts.groups), len(contacts.discussions))
            self._emit(ContactsLoaded(contacts))


def _spawn(io_loop: IOLoop, coroutine, then: Callable[[], Any]) -> None:
    """Run ``coroutine`` on the loop, then ``then()``; a crash is logged."""
    def finished(future) -> None:
        if future.exception() is not None:
            log.error("%s crashed", coroutine.__name__, exc_info=future.exception())
        then()
    io_loop.add_future(gen.convert_yielded(coroutine), finished)


def _on_logout(response: Response) -> None:
    try:
        parse_logout(response.read())
        log.info("logout2 accepted")
    except ProtocolError as exc:
        log.info("logout2: %s", exc)


def _on_heartbeat(response: Response) -> None:
    try:
        parse_heartbeat(response.read())
    except ProtocolError as exc:     # nobody knows its real format (§8.11)
        log.debug("heartbeat answer: %s", exc)


def _code_name(code: Any) -> str:
    return "%s (%d)" % (code.name, code) if isinstance(code, enum.Enum) else str(code)
