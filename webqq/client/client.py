"""WebQQClient: log in, stay online, receive and send messages.

client: drives the WebQQ session. It never opens a socket and never parses bytes: every
request is built by ``webqq.protocol`` and sent through an ``HTTPStream``; every reply is
read by a ``webqq.protocol`` parser. Every delay is an ``IOLoop.call_later``; no threads,
no sleeps. It never logs the password or a token (skey, ptwebqq, vfwebqq, psessionid).

A session, in the order this module is written (PROTOCOL.md §1.2)::

    client = WebQQClient(10001, "password", stream, "./run")
    client.on("message", lambda event: client.reply(event, "hi"))
    client.start()

1. ``start()``: resume a saved session (``login2`` with the saved cookies) or log in:
   ``check`` -> (``getimage``, a ``CaptchaRequired`` event, ``enter_verify_code``) ->
   ``login`` -> ``login2``; then load the contacts (friends, groups and their members,
   discussions, QQ numbers) and go ONLINE.
2. ONLINE: two endless chains on HTTPStream readbacks: ``poll2`` (re-issued at every
   answer) and the heartbeat; a watchdog relinks when no poll is answered for
   ``stall_after`` seconds; contacts are refreshed every ``contacts_refresh`` seconds.
3. A poll answer: 0 -> each event is de-duplicated, its sender resolved from the contacts,
   and emitted as ``MessageReceived`` or ``Notice``; 102 -> poll again; 116 -> store the
   new ptwebqq; 120/121 -> relink (``login2``) and, if the server refuses, log in again;
   100/103/108/... -> log in again; 109/110 or a kick -> OFFLINE.
4. Sends (``send_buddy``, ``send_group``, ``send_discussion``, ``send_session``, ``reply``)
   go through one ``Outbox``: a minimum interval apart, in order, waiting while offline.

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
    "message"       MessageReceived(chat, message, text, sender, group, discussion)
    "notice"        Notice(event): any other poll event (status change, kick, ...)
    "transmitting"  Transmitting(message): its first part is being handed to the network
    "sent"          SendFinished(message): an OutgoingMessage left the queue
A callback that raises is logged; the client carries on.
"""
import enum
import logging
import os
import random
import time
import urllib.parse
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

from tornado import gen
from tornado.ioloop import IOLoop

from webqq import statedir
from webqq.client.contacts import ContactLoader, Contacts, Discussion, Friend, Group, Member
from webqq.client.events import (CaptchaRequired, ClientEvent, ContactsLoaded, LoginFailed,
                                 LoginStep, MessageReceived, Notice, Online, Reconnecting,
                                 Sender, SendFinished, StateChanged, Transmitting)
from webqq.client.outbox import Outbox, Outcome, OutgoingMessage, SendStatus
from webqq.client.session import (SavedSession, cookie_value, cookies_from_data,
                                  cookies_to_data, delete_session, load_session, save_session,
                                  set_cookie)
from webqq.http.errors import HTTPStreamError
from webqq.http.retry import backoff_delay
from webqq.http.stream import HTTPStream, Response, RetryPolicy
from webqq.qq import messages as msgs
from webqq.qq import protocol
from webqq.qq.protocol import Era, LoginCode, PollOutcome, ProtocolError, Retcode, RetcodeError

__all__ = [
    "WebQQClient", "State", "ClientEvent", "StateChanged", "CaptchaRequired",
    "LoginFailed", "Reconnecting", "Online", "ContactsLoaded", "Sender",
    "MessageReceived", "Notice", "Transmitting", "SendFinished", "OutgoingMessage",
    "SendStatus",
]

log = logging.getLogger("webqq.client")


# --- states -----------------------------------------------------------------------------

class State(enum.Enum):
    """Where the client stands (PROTOCOL.md §1.2, from the client's side)."""
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

# Login codes after which trying again cannot help and may lock the account (§2.5).
_FINAL_LOGIN_CODES = {LoginCode.WRONG_PASSWORD, LoginCode.ACCOUNT_EXPIRED,
                      LoginCode.INVALID_ACCOUNT, LoginCode.ACCOUNT_FROZEN}
# login2 retcodes that mean "not this account, not now": stop (§5).
_FINAL_LOGIN2_CODES = {Retcode.NOT_WHITELISTED, Retcode.BLACKLISTED}
# msg_ids reserved per save of the session (see _save_session): one small file write
# per thousand messages.
MSG_ID_BLOCK = 1000
# A send is repeated as it was (same msg_id, same content) when its answer is lost or
# the server answers 502/503/504/429: the server takes an exact repeat for the same
# message (PROTOCOL.md §6.2), so it cannot show twice, and a message is not lost to a
# passing fault. Short backoff: the resend must come while the server remembers.
_SEND_RETRY = RetryPolicy(idempotent=True, attempts=4, backoff=0.5, backoff_max=4.0)
# Send retcodes that mean the session is gone: renew it, then send again once (§5).
_SESSION_GONE = {Retcode.LOGIN_EXPIRED, Retcode.SESSION_GONE, Retcode.VFWEBQQ_EXPIRED,
                 Retcode.CREDENTIALS_EXPIRED, Retcode.NO_COOKIE}
# A login step is not retried by HTTPStream: the client's own ladder tries the login
# again, with a Reconnecting event and one log line per attempt.
_LOGIN_RETRY = RetryPolicy(attempts=1)
# Consecutive unknown poll retcodes (e.g. 114) before logging in again (§5, MJ).
_UNKNOWN_POLL_CODES_BEFORE_RELOGIN = 3
# Remembered (kind, msg_id, msg_id2) of received events, for de-duplication.
_SEEN_MAX = 2000


_CHATS = {msgs.BuddyMessage: "buddy", msgs.GroupMessage: "group",
          msgs.DiscussionMessage: "discussion", msgs.SessionMessage: "session"}


class WebQQClient:
    """One WebQQ account's session on an ``HTTPStream``.

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
        send_interval: seconds between two sends at least (§6.3).
        send_ttl: seconds a queued message may wait for the client to be online.
        max_text: characters per message part; longer texts are split.
        backoff, backoff_max, jitter: the recovery ladder (seconds, seconds, fraction).
        poll_retry: the HTTPStream policy of a poll (repeatable: a long poll may be
            sent twice).
        lookup_qq: look up the QQ number of every friend and member (one at a time).
        resume: try the saved session before logging in.
        era: ``Era.A`` (spring 2013, the default) or ``Era.B`` (login page and
            ``login_sig`` first, then the ``check_sig`` hop after ``login``).
        rng: the randomness (client id, jitter, check nonces); ``random.Random()``.
        clock: wall-clock seconds for the protocol's ``t`` stamps; ``time.time``.
    """

    def __init__(self, qq: int, password: str, stream: HTTPStream, state_dir: str, *,
                 poll_hold: float = 60.0, stall_after: Optional[float] = None,
                 heartbeat_interval: float = 60.0, contacts_refresh: float = 3600.0,
                 send_interval: float = 0.5, send_ttl: float = 300.0,
                 max_text: int = msgs.MAX_TEXT_CHARS, backoff: float = 1.0,
                 backoff_max: float = 300.0, jitter: float = 0.5,
                 poll_retry: Optional[RetryPolicy] = None, lookup_qq: bool = True,
                 resume: bool = True, era: Era = Era.A, rng: Optional[random.Random] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.qq = qq
        self._password = password
        self.stream = stream
        self.io_loop: IOLoop = stream.io_loop
        self.state_dir = state_dir
        self.poll_hold = poll_hold
        self.stall_after = stall_after if stall_after is not None else 3 * poll_hold
        self.heartbeat_interval = heartbeat_interval
        self.contacts_refresh = contacts_refresh
        self.max_text = max_text
        self.backoff, self.backoff_max, self.jitter = backoff, backoff_max, jitter
        self.poll_retry = poll_retry or RetryPolicy(idempotent=True, attempts=3)
        self.resume = resume
        self.era = era
        self.rng = rng or random.Random()
        self.clock = clock

        self.state = State.STOPPED
        self.contacts = Contacts()
        self.nick = ""
        self.last_error: Optional[Exception] = None
        self._listeners: List[Tuple[Optional[str], Callable[[ClientEvent], Any]]] = []
        self._epoch = 0                      # bumped whenever running chains must end
        self._timers: Dict[str, object] = {}
        self._attempt = 0                    # recoveries since the last healthy poll
        self._clientid = 0
        self._psessionid: Optional[str] = None
        self._vfwebqq: Optional[str] = None
        self._msg_id = self.rng.randrange(1111111, 99999999)
        self._msg_id_saved = self._msg_id    # the saved session resumes at this id
        self._check: Optional[protocol.CheckResult] = None
        self._login_sig: Optional[str] = None
        self._last_poll_answer = 0.0
        self._poll_sent = 0.0
        self._unknown_poll_codes = 0
        self._heartbeats = 0
        self._seen: "OrderedDict[tuple, None]" = OrderedDict()
        self._c2c_sigs: Dict[Tuple[int, int], str] = {}
        self._loader = ContactLoader(stream, clock, lookup_qq)
        self._loading_contacts: Optional[int] = None   # the epoch of the running load
        self._send_interval, self._send_ttl = send_interval, send_ttl
        self.outbox = self._new_outbox()

    def _new_outbox(self) -> Outbox:
        return Outbox(self.io_loop, self._transmit, self._is_online,
                      lambda message: self._emit(SendFinished(message)),
                      interval=self._send_interval, ttl=self._send_ttl)

    def __repr__(self) -> str:
        return "<WebQQClient qq=%d %s>" % (self.qq, self.state.value)

    @property
    def send_interval(self) -> float:
        """Seconds between two sends at least; may change while running (a reload)."""
        return self._send_interval

    @send_interval.setter
    def send_interval(self, seconds: float) -> None:
        self._send_interval = self.outbox.interval = seconds

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
            self.outbox.wake()

    def _is_online(self) -> bool:
        return self.state is State.ONLINE

    def _new_epoch(self) -> int:
        """End every running chain (their readbacks see a stale epoch) and timer."""
        self._epoch += 1
        for name in list(self._timers):
            self._cancel(name)
        return self._epoch

    def _later(self, name: str, delay: float, callback: Callable[[], Any]) -> None:
        """Run ``callback`` in ``delay`` seconds; one timer per name, replaced if armed."""
        self._cancel(name)

        def fire() -> None:
            self._timers.pop(name, None)
            callback()
        self._timers[name] = self.io_loop.call_later(delay, fire)

    def _spawn(self, coroutine, then: Callable[[], Any]) -> None:
        """Run ``coroutine`` on the loop, then ``then()``; a crash is logged."""
        def finished(future) -> None:
            if future.exception() is not None:
                log.error("%s crashed", coroutine.__name__, exc_info=future.exception())
            then()
        self.io_loop.add_future(gen.convert_yielded(coroutine), finished)

    def _cancel(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            self.io_loop.remove_timeout(handle)

    # -- public control ----------------------------------------------------------------

    def start(self) -> None:
        """Resume the saved session if there is one (and ``resume``), else log in.
        From OFFLINE (refused, kicked or logged out) it logs in afresh.

        Raises:
            RuntimeError: the client is neither STOPPED nor OFFLINE.
        """
        if self.state not in (State.STOPPED, State.OFFLINE):
            raise RuntimeError("start() on a client that is %s" % self.state.value)
        if self.outbox.closed:
            self.outbox = self._new_outbox()
        saved = None
        if self.resume and self.state is State.STOPPED:
            saved = load_session(self.state_dir, self.qq)
        if saved is not None:
            self._restore(saved)
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
        if self._psessionid is not None:
            self._save_session()
        self._new_epoch()
        self.outbox.close()
        self._set_state(State.STOPPED, reason)

    def logout(self) -> None:
        """End the session at the server (``logout2``, not awaited), forget the saved
        session, and stop."""
        if self._psessionid is not None and self.state is State.ONLINE:
            request = protocol.build_logout(clientid=self._clientid,
                                            psessionid=self._psessionid,
                                            t=int(self.clock() * 1000))
            self.stream.add_request(request, self._on_logout, retry=RetryPolicy(attempts=1),
                                    errback=lambda _r, e: log.info("logout2: %s", e))
        delete_session(self.state_dir, self.qq)
        self._psessionid = None
        self.stop("logged out")

    @staticmethod
    def _on_logout(response: Response) -> None:
        try:
            protocol.parse_logout(response.read())
            log.info("logout2 accepted")
        except ProtocolError as exc:
            log.info("logout2: %s", exc)

    def enter_verify_code(self, code: str) -> None:
        """Answer the captcha of the last ``CaptchaRequired`` event; the login goes on.

        Raises:
            RuntimeError: the client is not WAITING_CAPTCHA.
        """
        if self.state is not State.WAITING_CAPTCHA or self._check is None:
            raise RuntimeError("no captcha is waiting (state %s)" % self.state.value)
        self._set_state(State.LOGGING_IN, "verify code entered")
        self._send_login(code, after_captcha=True)

    # -- logging in: check, (captcha), login, login2 ------------------------------------

    def _login(self) -> None:
        """Start over from ``check`` with a fresh client id (§1.2 S0-S2)."""
        epoch = self._new_epoch()
        self._clientid = self.rng.randrange(10_000_000, 100_000_000)
        self._psessionid = self._vfwebqq = None
        self._c2c_sigs.clear()
        self._loader.forget()
        if self.era is Era.B:                   # late 2013: the login page's login_sig first
            request, readback = protocol.build_login_page(), self._on_login_page
        else:
            request, readback = self._check_request(), self._on_check
        self._emit(LoginStep("checking the account"))
        self.stream.add_request(request, self._step(epoch, "login", readback),
                                errback=self._errback(epoch, "login"), retry=_LOGIN_RETRY)

    def _on_login_page(self, response: Response):
        self._login_sig = protocol.parse_login_sig(response.read())
        return self._check_request(), self._step(self._epoch, "login", self._on_check)

    def _check_request(self):
        return protocol.build_check(self.qq, self.rng.random(), era=self.era,
                                    login_sig=self._login_sig)

    def _on_check(self, response: Response):
        self._check = protocol.parse_check(response.read())
        if self._check.captcha_required:
            request = protocol.build_captcha(self.qq, self.rng.random(),
                                             vc_type=self._check.code)
            return request, self._step(self._epoch, "login", self._on_captcha)
        return self._login_request(self._check.code, after_captcha=False)

    def _on_captcha(self, response: Response) -> None:
        path = os.path.join(self.state_dir, statedir.captcha_file(self.qq))
        statedir.ensure_dir(self.state_dir)
        statedir.atomic_write(path, response.read(), durable=False)
        self._set_state(State.WAITING_CAPTCHA, "verify code required")
        self._emit(CaptchaRequired(path))

    def _login_request(self, verifycode: str, after_captcha: bool):
        encrypted = protocol.encrypt_password(self._password, self._check.uin_bytes,
                                              verifycode)
        request = protocol.build_login(self.qq, encrypted, verifycode, era=self.era,
                                       login_sig=self._login_sig, after_captcha=after_captcha)
        self._emit(LoginStep("logging in"))
        return request, self._step(self._epoch, "login", self._on_login)

    def _send_login(self, verifycode: str, after_captcha: bool) -> None:
        request, readback = self._login_request(verifycode, after_captcha)
        self.stream.add_request(request, readback, errback=self._errback(self._epoch, "login"),
                                retry=_LOGIN_RETRY)

    def _on_login(self, response: Response):
        result = protocol.parse_login(response.read())
        self.nick = result.nick
        if result.check_sig_url:                # Era B: the hop that sets p_skey (§2.6)
            epoch = self._epoch
            self.stream.add_request(
                protocol.build_check_sig(result.check_sig_url),
                self._step(epoch, "login", self._after_check_sig),
                errback=lambda _r, error: self._check_sig_failed(epoch, error))
            return None
        return self._login2_request("login")

    def _after_check_sig(self, response: Response):
        return self._login2_request("login")

    def _check_sig_failed(self, epoch: int, error: HTTPStreamError) -> None:
        """Only the hop's cookies matter, not the page it redirects to (PB@87beb87 did
        not even follow it): with ``p_skey`` set, go on to login2 whatever happened."""
        if epoch != self._epoch:
            return
        if cookie_value(self.stream.cookiejar, "p_skey") is None:
            self._failed("login", error)
            return
        request, readback = self._login2_request("login")
        self.stream.add_request(request, readback, errback=self._errback(epoch, "login"))

    def _login2_request(self, step: str):
        ptwebqq = cookie_value(self.stream.cookiejar, "ptwebqq") or ""
        request = protocol.build_login2(ptwebqq, clientid=self._clientid,
                                        psessionid=self._psessionid)
        return request, self._step(self._epoch, step, self._on_login2)

    def _on_login2(self, response: Response) -> None:
        result = protocol.parse_login2(response.read())
        self._psessionid, self._vfwebqq = result.psessionid, result.vfwebqq
        self._save_session()
        self._go_online()

    # -- relink and resume: login2 with the cookies we have ------------------------------

    def _relink(self, step: str) -> None:
        """``login2`` again with the current cookies and psessionid (a kick, a stall,
        a network failure, or a restart with a saved session)."""
        epoch = self._new_epoch()
        request, readback = self._login2_request(step)
        self.stream.add_request(request, readback, errback=self._errback(epoch, step),
                                retry=RetryPolicy(attempts=1))

    def _restore(self, saved: SavedSession) -> None:
        cookies_from_data(self.stream.cookiejar, saved.cookies)
        self._clientid, self._psessionid = saved.clientid, saved.psessionid
        self._vfwebqq, self._msg_id = saved.vfwebqq, saved.msg_id
        self._msg_id_saved = saved.msg_id

    def _save_session(self) -> None:
        # The file holds the end of a block of msg_ids, not the last one used: after a
        # crash the resumed session starts past every id it may have sent, since the
        # server takes a known id with the same text for a repeat and drops it.
        self._msg_id_saved = self._msg_id + MSG_ID_BLOCK
        try:
            save_session(self.state_dir, SavedSession(
                qq=self.qq, clientid=self._clientid, psessionid=self._psessionid,
                vfwebqq=self._vfwebqq, msg_id=self._msg_id_saved,
                cookies=cookies_to_data(self.stream.cookiejar)))
        except OSError as exc:
            log.warning("Could not save the session in %s: %s", self.state_dir, exc)

    # -- chain plumbing: every readback and errback goes through these two ---------------

    def _step(self, epoch: int, step: str, handler: Callable[[Response], Any]):
        """A readback that ignores answers of an ended chain, refuses non-200 statuses
        and turns any failure into ``_failed(step, error)``."""
        def readback(response: Response):
            if epoch != self._epoch:
                return None
            if response.status != 200:
                where = urllib.parse.urlsplit(response.url).path   # the query has tokens
                self._failed(step, HTTPStreamError("HTTP %d %s from %s" % (
                    response.status, response.reason, where)))
                return None
            try:
                return handler(response)
            except (ProtocolError, OSError) as exc:
                self._failed(step, exc)
            except Exception as exc:            # a bug: log it, and recover all the same
                log.exception("%s step failed unexpectedly", step)
                self._failed(step, exc)
            return None
        readback.__name__ = handler.__name__
        return readback

    def _errback(self, epoch: int, step: str):
        def errback(request, error: HTTPStreamError) -> None:
            if epoch == self._epoch:
                self._failed(step, error)
        return errback

    def _failed(self, step: str, error: Exception) -> None:
        """Decide what a failed step leads to: retry later, log in again, or stop."""
        self.last_error = error
        if isinstance(error, protocol.LoginError):
            final = error.code in _FINAL_LOGIN_CODES or isinstance(
                error, protocol.UnblockRequired)
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
            log.warning("poll failed: %s", _describe(error))
            self._relink_later("poll failed: %s" % error.__class__.__name__)
        else:                                   # one line: what failed, and what next
            self._retry_later(step, "%s failed: %s" % (step, _describe(error)),
                              logging.WARNING)

    def _give_up(self, reason: str) -> None:
        self._new_epoch()
        self._psessionid = None                 # nothing left to save or resume
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
        resumed = self.state is State.RESUMING
        relinked = self.state is State.RELINKING
        if relinked:
            self._become_online(resumed, relinked)
            return
        epoch = self._epoch
        self._emit(LoginStep("loading contacts"))
        self._spawn(self._load_contacts(epoch),
                    lambda: self._become_online(resumed, relinked, epoch))

    def _become_online(self, resumed: bool, relinked: bool,
                       epoch: Optional[int] = None) -> None:
        if epoch is not None and epoch != self._epoch:
            return
        self._unknown_poll_codes = 0
        how = "session resumed" if resumed else "relinked" if relinked else "logged in"
        self._set_state(State.ONLINE, how)
        self._emit(Online(resumed, relinked))
        self._last_poll_answer = self.io_loop.time()
        self._poll(self._epoch)
        self._later("heartbeat", self.heartbeat_interval, self._heartbeat)
        self._later("watchdog", self.poll_hold, self._watchdog)
        if self.contacts_refresh:
            self._later("contacts", self.contacts_refresh, self._refresh_contacts)

    def _poll(self, epoch: int) -> None:
        self._poll_sent = self.io_loop.time()
        self.stream.add_request(self._poll_request(), lambda r: self._on_poll(epoch, r),
                                errback=self._errback(epoch, "poll"), retry=self.poll_retry)

    def _poll_request(self):
        return protocol.build_poll(clientid=self._clientid, psessionid=self._psessionid)

    def _next_poll(self, epoch: int, delay: float = 0.0):
        """The chain's next poll, as a readback returns it."""
        self._poll_sent = self.io_loop.time() + delay
        return self._poll_request(), lambda r: self._on_poll(epoch, r), delay

    def _on_poll(self, epoch: int, response: Response):
        """One poll answer: dispatch its events (even from an ended chain: a message is
        never thrown away), then decide the next step (§5)."""
        if self.state is State.STOPPED:
            return None
        current = epoch == self._epoch
        if current:
            self._last_poll_answer = self.io_loop.time()
        if response.status != 200:
            if current:
                self._failed("poll", HTTPStreamError("HTTP %d from poll2" % response.status))
            return None
        try:
            result = protocol.parse_poll(response.read())
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
            self._relogin("poll2 answered %d" % result.retcode)
            return None
        elif outcome is PollOutcome.LOGGED_OUT:
            delete_session(self.state_dir, self.qq)
            self._give_up("poll2 answered %d: logged out" % result.retcode)
            return None
        # An empty answer long before the hold time is up is not a held poll: a broken
        # server answering at once must not make us spin.
        quick = self.io_loop.time() - self._poll_sent < self.poll_hold / 10
        empty = outcome is not PollOutcome.MESSAGES
        return self._next_poll(epoch, self.poll_hold / 10 if quick and empty else 0.0)

    def _watchdog(self) -> None:
        """Relink when no poll was answered for ``stall_after`` seconds."""
        silent = self.io_loop.time() - self._last_poll_answer
        if self.state is State.ONLINE and silent >= self.stall_after:
            self._set_state(State.RELINKING, "no poll answer for %.0f s" % silent)
            self._recover("relink", "poll stalled")
            return
        self._later("watchdog", self.poll_hold, self._watchdog)

    def _heartbeat(self) -> None:
        self._heartbeats += 1
        request = protocol.build_heartbeat(rc=self._heartbeats, t=int(self.clock() * 1000))
        self.stream.add_request(request, self._on_heartbeat,
                                errback=lambda _r, e: log.debug("heartbeat failed: %s", e),
                                retry=RetryPolicy(attempts=1))
        self._later("heartbeat", self.heartbeat_interval, self._heartbeat)

    @staticmethod
    def _on_heartbeat(response: Response) -> None:
        try:
            protocol.parse_heartbeat(response.read())
        except ProtocolError as exc:     # nobody knows its real format (§7.6)
            log.debug("heartbeat answer: %s", exc)

    # -- receiving: de-duplicate, resolve the sender, emit --------------------------------

    def _dispatch(self, event: msgs.Event, current: bool = True) -> None:
        """Emit one poll event. ``current`` is false for an answer to a poll of a
        session we already left: its messages count, its kick does not (our own new
        login is what kicked that session)."""
        key = _dedup_key(event)
        if key is not None:
            if key in self._seen:
                log.debug("Dropped a repeated %s (msg_id %s)", type(event).__name__, key[1])
                return
            self._seen[key] = None
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
        chat = _CHATS.get(type(event))
        if chat is None:
            self._emit(Notice(event))
            if isinstance(event, msgs.Kick) and current and self.state is State.ONLINE:
                delete_session(self.state_dir, self.qq)
                self._give_up("kicked: %s" % (event.reason or "logged in elsewhere"))
            elif isinstance(event, (msgs.BuddyListChange, msgs.GroupSystemEvent)):
                self._later("contacts", 1.0, self._refresh_contacts)
            return
        group = discussion = None
        if chat == "buddy":
            sender = self._sender(event.from_uin)
        elif chat == "group":
            group = self.contacts.group(gid=event.gid) or self.contacts.group(code=event.code)
            sender = self._sender(event.send_uin, group)
        elif chat == "discussion":
            discussion = self.contacts.discussion(did=event.did)
            sender = self._sender(event.send_uin, discussion)
        else:
            sender = self._sender(event.from_uin, qq=event.qq)
        self._emit(MessageReceived(chat, event, event.content.text, sender, group, discussion))

    def _sender(self, uin: int, chat: Any = None, qq: Optional[int] = None) -> Sender:
        friend = self.contacts.friend(uin=uin)
        member: Optional[Member] = chat.members.get(uin) if chat is not None else None
        name = (member.card if member is not None and member.card else None) or \
            (friend.display_name if friend is not None else None) or \
            (member.nick if member is not None else "") or ""
        qq = qq or self.contacts.qq_of(uin) or self._loader.qq_of(uin)
        return Sender(uin, qq, name or (str(qq) if qq else ""))

    # -- contacts ------------------------------------------------------------------------

    def _refresh_contacts(self) -> None:
        if self.state is not State.ONLINE:
            return
        self._spawn(self._load_contacts(self._epoch), lambda: None)
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
                self.contacts, qq=self.qq, ptwebqq=cookie_value(self.stream.cookiejar, "ptwebqq") or "",
                clientid=self._clientid, psessionid=self._psessionid,
                vfwebqq=self._vfwebqq, current=lambda: epoch == self._epoch,
                now=self.io_loop.time())
        finally:
            if self._loading_contacts == epoch:
                self._loading_contacts = None
        if contacts is not None:
            self.contacts = contacts
            log.info("Contacts: %d friends, %d groups, %d discussions", len(
                contacts.friends), len(contacts.groups), len(contacts.discussions))
            self._emit(ContactsLoaded(contacts))

    # -- sending -------------------------------------------------------------------------

    def send_buddy(self, friend: Any, text: msgs.Outgoing) -> OutgoingMessage:
        """Queue a message to a friend.

        Args:
            friend: a QQ number (int), a nick or remark name (str), or a ``Friend``.
            text: the text, or a sequence of texts and ``messages.Face`` pieces; split
                into parts of ``max_text`` characters (a face counts one) if longer.

        Returns:
            The ``OutgoingMessage``; await ``.done`` or listen for ``"sent"`` events.
            An unknown friend fails when its turn comes (``error`` says so); while the
            client is not online the message waits, ``send_ttl`` seconds at most.

        Raises:
            ValueError: an empty text. RuntimeError: the client is STOPPED.
        """
        key = ("uin", friend.uin) if isinstance(friend, Friend) else \
            ("name", friend) if isinstance(friend, str) else ("qq", int(friend))
        return self._queue("buddy", key, text)

    def send_group(self, group: Any, text: msgs.Outgoing) -> OutgoingMessage:
        """Queue a message to a group: its public number (int), name (str) or ``Group``."""
        key = ("gid", group.gid) if isinstance(group, Group) else \
            ("name", group) if isinstance(group, str) else ("number", int(group))
        return self._queue("group", key, text)

    def send_discussion(self, discussion: Any, text: msgs.Outgoing) -> OutgoingMessage:
        """Queue a message to a discussion: its did (int), name (str) or ``Discussion``."""
        key = ("did", discussion.did) if isinstance(discussion, Discussion) else \
            ("name", discussion) if isinstance(discussion, str) else ("did", int(discussion))
        return self._queue("discussion", key, text)

    def send_session(self, uin: int, text: msgs.Outgoing, *, via_id: int,
                     service_type: int = 0) -> OutgoingMessage:
        """Queue a temporary-session message to ``uin`` met in group or discussion
        ``via_id`` (``SessionMessage.via_id``; ``service_type`` 0 group, 1 discussion)."""
        return self._queue("session", ("uin", (uin, via_id, service_type)), text)

    def reply(self, event: MessageReceived, text: msgs.Outgoing) -> OutgoingMessage:
        """Answer a ``MessageReceived`` in its own chat (to the sender for buddy and
        session messages, to the group or discussion otherwise)."""
        message = event.message
        if event.chat == "buddy":
            return self._queue("buddy", ("uin", message.from_uin), text)
        if event.chat == "group":
            return self._queue("group", ("gid", message.gid), text)
        if event.chat == "discussion":
            return self._queue("discussion", ("did", message.did), text)
        return self.send_session(message.from_uin, text, via_id=message.via_id,
                                 service_type=message.service_type)

    def _queue(self, chat: str, key: Tuple[str, Any], content: msgs.Outgoing) -> OutgoingMessage:
        parts = msgs.split_content(content, self.max_text)
        if not parts:
            raise ValueError("cannot send an empty message")
        if self.state is State.STOPPED:
            raise RuntimeError("the client is stopped")
        return self.outbox.put(chat, key, msgs.content_text(content), parts)

    def _resolve(self, chat: str, key: Tuple[str, Any]) -> Optional[int]:
        """The wire id (uin, gid or did) of a queued message's target, now."""
        by, value = key
        if chat == "buddy":
            found = self.contacts.friend(**{by: value})
            return found.uin if found else value if by == "uin" else None
        if chat == "group":
            found = self.contacts.group(**{by: value})
            return found.gid if found else value if by == "gid" else None
        if chat == "discussion":
            found = self.contacts.discussion(**{by: value})
            return found.did if found else value if by == "did" else None
        return value[0]

    def _transmit(self, message: OutgoingMessage, part: str, done) -> None:
        """Send one part (the outbox's ``transmit``): build, send, classify the answer."""
        to = self._resolve(message.chat, message.target)
        if to is None:
            done(Outcome.FAILED, error="unknown %s %r" % (message.chat, message.target[1]))
            return
        epoch = self._epoch
        if message.chat == "session":
            _uin, via_id, service_type = message.target[1]
            sig = self._c2c_sigs.get((via_id, to))
            if sig is None:
                request = protocol.build_c2c_sig(
                    via_id, to, service_type=service_type, clientid=self._clientid,
                    psessionid=self._psessionid, t=int(self.clock() * 1000))
                self.stream.add_request(
                    request, lambda r: self._on_c2c_sig(r, message, part, to, done),
                    errback=lambda _r, e: self._send_failed(epoch, e, done, sent=False))
                return
        self._send_part(message, part, to, done)

    def _on_c2c_sig(self, response: Response, message, part, to, done) -> None:
        try:
            sig = protocol.parse_c2c_sig(response.read())
        except ProtocolError as exc:
            done(Outcome.FAILED, retcode=getattr(exc, "retcode", None), error=str(exc))
            return
        self._c2c_sigs[(message.target[1][1], to)] = sig.group_sig
        self._send_part(message, part, to, done)

    def _send_part(self, message: OutgoingMessage, part: str, to: int, done) -> None:
        self._msg_id += 1
        if self._msg_id >= self._msg_id_saved:
            self._save_session()             # reserve the next block first
        ids = dict(msg_id=self._msg_id, clientid=self._clientid, psessionid=self._psessionid)
        if message.chat == "buddy":
            request = protocol.build_send_buddy(to, part, **ids)
        elif message.chat == "group":
            request = protocol.build_send_group(to, part, **ids)
        elif message.chat == "discussion":
            request = protocol.build_send_discussion(to, part, **ids)
        else:
            _uin, via_id, service_type = message.target[1]
            request = protocol.build_send_session(
                to, part, group_sig=self._c2c_sigs[(via_id, to)],
                service_type=service_type, **ids)
        if message.next_part == 0:
            self._emit(Transmitting(message))
        epoch = self._epoch
        self.stream.add_request(
            request, lambda r: self._on_sent(epoch, r, message, done),
            errback=lambda _r, e: self._send_failed(epoch, e, done, sent=True),
            retry=_SEND_RETRY)

    def _on_sent(self, epoch: int, response: Response, message: OutgoingMessage,
                 done) -> None:
        if response.status != 200:
            done(Outcome.AMBIGUOUS, error="HTTP %d" % response.status)
            return
        try:
            protocol.parse_send(response.read())
        except RetcodeError as exc:
            if exc.retcode in _SESSION_GONE and not message.retried:
                # Refused, so not delivered: renew the session and send it again once.
                message.retried = True
                if epoch == self._epoch and self.state is State.ONLINE:
                    self._relogin("send answered %d" % exc.retcode)
                done(Outcome.NOT_SENT)
                return
            done(Outcome.FAILED, retcode=int(exc.retcode), error=exc.errmsg)
            return
        except ProtocolError as exc:
            done(Outcome.AMBIGUOUS, error=str(exc))
            return
        done(Outcome.SENT)

    def _send_failed(self, epoch: int, error: HTTPStreamError, done, sent: bool) -> None:
        """A send that failed for good: nothing left if it never connected (it goes out
        again after recovery); otherwise its fate is unknown, and it is not repeated."""
        if error.certainly_unprocessed or not sent:
            if epoch == self._epoch and self.state is State.ONLINE:
                self._relink_later("send could not connect: %s" % _describe(error))
            done(Outcome.NOT_SENT)
        else:
            done(Outcome.AMBIGUOUS, error=_describe(error))


def _dedup_key(event: msgs.Event) -> Optional[tuple]:
    msg_id = getattr(event, "msg_id", None)
    if msg_id is None:
        return None
    return type(event).__name__, msg_id, getattr(event, "msg_id2", None)


def _code_name(code: Any) -> str:
    return "%s (%d)" % (code.name, code) if isinstance(code, enum.Enum) else str(code)


def _describe(error: Exception) -> str:
    return "%s: %s" % (error.__class__.__name__, error)
