"""The health of each account: online and polling or not, and what happened to it.

health: ``AccountWatch`` follows one account's client (its state changes, captcha
images, login failures, a kick, messages in and out) and keeps what an operator asks:
is it ready (online, a poll answered within the stall window), since when, which
captcha it waits for, and counts for ``/metrics``. Each change a person must hear of
becomes an ``AccountNotice``, handed to the listeners of ``Health``:

    offline   it left ONLINE (relinking, logging in again) or was refused for good
    kicked    the server put it out (a login elsewhere): offline for good
    captcha   a login waits for a verify code (again after a wrong one: a new image)
    online    it is online (``since``: when it went down, None at the first login)

The OneBot server turns a notice into a OneBot event (``notice_event``: ``bot_offline``,
``bot_online``, ``login_captcha``), the daemon's alerts into a webhook call or an
e-mail. ``Health`` holds the watches of one daemon by QQ number (one per account) and
answers ``/healthz`` and ``/readyz`` (``HealthHandler``).

What it must never do: change the client's state, hold a secret (notices go to
webhooks and mailboxes), or block the IOLoop.
"""
import ipaddress
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from tornado import web

from webqq.client.client import State
from webqq.onebot.handlers import check_token
from webqq.onebot.store import StoreUnavailable
from webqq.qq import Kick

__all__ = ["AccountNotice", "AccountWatch", "Health", "HealthHandler", "notice_event",
           "receipt_event", "NOTICE_KINDS"]

#: The kinds of ``AccountNotice``.
NOTICE_KINDS = ("offline", "kicked", "captcha", "online")
#: States in which the account cannot send: it has left ONLINE.
_DOWN = (State.RELINKING, State.RELOGGING, State.OFFLINE, State.WAITING_CAPTCHA,
         State.LOGGING_IN, State.RESUMING)


@dataclass(frozen=True)
class AccountNotice:
    """What happened to an account, for people and bots.

    Attributes:
        account: its QQ number.
        kind: one of ``NOTICE_KINDS``.
        reason: the client's words (``"poll stalled"``, ``"kicked: ..."``).
        time: wall-clock seconds.
        final: offline for good (kicked, logged out, refused): no retry; the daemon
            stops, and only ``webqq start`` logs in again.
        since: ``online``: when it went down (None for the first login).
        attempt: ``captcha``: the image's number in this login (2 after a wrong code).
        image_path: ``captcha``: the image file in state_dir.
    """
    account: int
    kind: str
    reason: str
    time: float
    final: bool = False
    since: Optional[float] = None
    attempt: int = 0
    image_path: Optional[str] = None

    def line(self) -> str:
        """One line for a person (an e-mail subject, a log line)."""
        if self.kind == "captcha":
            return "%d needs a verify code (image %d): %s" % (self.account, self.attempt,
                                                              self.image_path)
        if self.kind == "online":
            return "%d is online%s" % (self.account, "" if self.since is None else
                                       " again after %.0f s" % (self.time - self.since))
        return "%d is %s: %s" % (self.account, "kicked" if self.kind == "kicked" else
                                 "offline for good" if self.final else "offline",
                                 self.reason)


class AccountWatch:
    """One account's client, watched (see the module doc).

    Args:
        account: the QQ number.
        client: its ``WebQQClient``.
        outbound: its ``Outbound`` (the queue and store), or None.
        emit: ``emit(notice)``, called with each ``AccountNotice``.
        clock: wall-clock seconds.

    Attributes (read by /metrics and /readyz): ``counts`` (relinks, relogins, received,
    sent, failed, ambiguous, dropped, captchas, offline), ``down_since``, ``captcha``
    (``(path, attempt, since)`` while one waits, else None), ``last_error``.
    """

    def __init__(self, account: int, client: Any, outbound: Any = None, *,
                 emit: Callable[[AccountNotice], None] = lambda notice: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.account = account
        self.client = client
        self.outbound = outbound
        self.clock = clock
        self._emit = emit
        self.counts: Dict[str, int] = dict.fromkeys(
            ("relinks", "relogins", "received", "sent", "failed", "ambiguous", "dropped",
             "captchas", "offline"), 0)
        self.down_since: Optional[float] = None
        self.captcha: Optional[Tuple[str, int, float]] = None
        self.last_error: Optional[str] = None
        self._attempt = 0                   # captcha images in this login
        self._kicked = False                # the poll brought a kick: the next OFFLINE
        # Kept: the client forgets a listener by equality.
        self._listeners = (("state", self._on_state), ("captcha", self._on_captcha),
                           ("login_failed", self._on_login_failed),
                           ("notice", self._on_notice), ("message", self._on_message),
                           ("sent", self._on_sent))
        for kind, listener in self._listeners:
            client.on(kind, listener)

    def close(self) -> None:
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)

    # -- what /readyz and /metrics read --------------------------------------------------

    @property
    def state(self) -> State:
        return self.client.state

    def poll_age(self) -> Optional[float]:
        """Seconds since the last poll answer (or since it went online); None while not
        online."""
        if self.client.state is not State.ONLINE:
            return None
        return max(0.0, self.client.io_loop.time() - self.client.last_poll_answer)

    def ready(self) -> bool:
        """Online, and a poll answered within the client's stall window."""
        age = self.poll_age()
        return age is not None and age < self.client.stall_after

    def describe(self) -> Dict[str, Any]:
        """The account as ``/readyz`` shows it."""
        age = self.poll_age()
        return {"ready": self.ready(), "state": self.client.state.value,
                "last_poll_seconds": None if age is None else round(age, 3),
                "stall_after": self.client.stall_after, "down_since": self.down_since,
                "waiting_captcha": self.captcha is not None}

    def outbox(self) -> Tuple[int, Optional[float]]:
        """``(messages waiting to be sent, seconds the oldest has waited)``; the age is
        None when none waits or the store cannot be read."""
        if self.outbound is None:
            return 0, None
        depth = self.outbound.waiting()
        try:
            oldest = self.outbound.store.next_queued()
        except StoreUnavailable:
            return depth, None
        return depth, None if oldest is None else max(0.0, self.clock() - oldest.time)

    # -- client events -------------------------------------------------------------------

    def _on_state(self, event: Any) -> None:
        new, old = event.new, event.old
        if new is State.RELINKING:
            self.counts["relinks"] += 1
        elif new is State.RELOGGING:
            self.counts["relogins"] += 1
        if new is not State.WAITING_CAPTCHA:
            self.captcha = None
        if new is State.ONLINE:
            since, self.down_since = self.down_since, None
            self._attempt = 0
            self.last_error = None
            self._notify("online", event.reason, since=since)
            return
        if new is State.OFFLINE:
            kicked, self._kicked = self._kicked, False
            self.counts["offline"] += 1
            self._went_down()
            self._notify("kicked" if kicked else "offline", event.reason, final=True)
        elif old is State.ONLINE and new in _DOWN:
            self.counts["offline"] += 1
            self._went_down()
            self._notify("offline", event.reason)

    def _went_down(self) -> None:
        if self.down_since is None:
            self.down_since = self.clock()

    def _on_captcha(self, event: Any) -> None:
        self._attempt += 1
        self.counts["captchas"] += 1
        now = self.clock()
        self.captcha = (event.path, self._attempt, now)
        reason = "verify code required" if self._attempt == 1 else \
            "a new image after: %s" % (self.last_error or "a failed login")
        self._notify("captcha", reason, attempt=self._attempt, image_path=event.path)

    def _on_login_failed(self, event: Any) -> None:
        self.last_error = str(event.error)

    def _on_notice(self, event: Any) -> None:
        if isinstance(event.event, Kick):
            self._kicked = True

    def _on_message(self, event: Any) -> None:
        self.counts["received"] += 1

    def _on_sent(self, event: Any) -> None:
        message = event.message
        status = message.status.value
        if status == "failed" and message.error == "expired":
            self.counts["dropped"] += 1     # its time to live passed before its turn
        elif status in ("sent", "failed", "ambiguous"):
            self.counts[status] += 1

    def _notify(self, kind: str, reason: str, **facts: Any) -> None:
        self._emit(AccountNotice(self.account, kind, reason, self.clock(), **facts))


class Health:
    """The watches of one daemon, by QQ number, and the listeners of their notices."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.watches: Dict[int, AccountWatch] = {}
        self._listeners: List[Callable[[AccountNotice], Any]] = []

    def watch(self, account: int, client: Any, outbound: Any = None) -> AccountWatch:
        """Follow ``client`` as ``account`` (replacing an earlier watch of it)."""
        self.forget(account)
        watch = AccountWatch(account, client, outbound, emit=self._emit, clock=self.clock)
        self.watches[account] = watch
        return watch

    def forget(self, account: int) -> None:
        watch = self.watches.pop(account, None)
        if watch is not None:
            watch.close()

    def close(self) -> None:
        for account in list(self.watches):
            self.forget(account)

    def add_listener(self, callback: Callable[[AccountNotice], Any]) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[AccountNotice], Any]) -> None:
        self._listeners = [c for c in self._listeners if c != callback]

    def _emit(self, notice: AccountNotice) -> None:
        for callback in list(self._listeners):
            callback(notice)

    def ready(self) -> bool:
        """Every account ready (and at least one)."""
        return bool(self.watches) and all(w.ready() for w in self.watches.values())


# --- OneBot events ------------------------------------------------------------------------

def notice_event(notice: AccountNotice, *, self_id: int,
                 urls: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The OneBot notice of an ``AccountNotice`` (webqq's, named as NapCat and Lagrange,
    which go-cqhttp's users know, name theirs):

    * ``bot_offline``: ``sub_type`` ``dropped`` (it relinks or logs in again by itself),
      ``kicked`` or ``refused`` (offline for good); ``tag`` repeats ``sub_type``,
      ``message`` is the reason.
    * ``bot_online``: ``sub_type`` ``login`` (the first) or ``back``;
      ``offline_seconds`` how long it was down.
    * ``login_captcha``: ``attempt``, ``message``, and ``image_url`` and ``page_url``
      (``urls``: the API's ``/captcha/image`` and ``/captcha``; the access token is
      needed for both), null without a listening API.
    """
    event: Dict[str, Any] = {"time": int(notice.time), "self_id": self_id,
                             "post_type": "notice", "user_id": notice.account,
                             "message": notice.reason}
    if notice.kind in ("offline", "kicked"):
        sub_type = "kicked" if notice.kind == "kicked" else \
            "refused" if notice.final else "dropped"
        event.update(notice_type="bot_offline", sub_type=sub_type, tag=sub_type)
    elif notice.kind == "online":
        event.update(notice_type="bot_online",
                     sub_type="login" if notice.since is None else "back",
                     offline_seconds=None if notice.since is None
                     else round(notice.time - notice.since, 3))
    else:
        urls = urls or {}
        event.update(notice_type="login_captcha", attempt=notice.attempt,
                     image_url=urls.get("image"), page_url=urls.get("page"))
    return event


def receipt_event(row: Any, *, status: str, reason: Optional[str], self_id: int,
                  time: float) -> Dict[str, Any]:
    """The ``message_receipt`` notice (webqq's) of an outgoing message that became
    final: ``message_id``, ``result`` (``status``: ``sent``, ``failed``, ``ambiguous``),
    ``reason`` (null when sent), and the chat as ``send_msg`` named it (``row``: the
    stored message)."""
    message_type = {"buddy": "private", "session": "private", "group": "group",
                    "discussion": "discuss"}[row.chat]
    key = {"private": "user_id", "group": "group_id", "discuss": "discuss_id"}[message_type]
    return {"time": int(time), "self_id": self_id, "post_type": "notice",
            "notice_type": "message_receipt", "message_id": row.id, "result": status,
            "reason": None if status == "sent" else reason,
            "message_type": message_type, key: row.target}


# --- /healthz and /readyz -------------------------------------------------------------------

def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class HealthHandler(web.RequestHandler):
    """``GET /healthz`` (the process answers: always 200) and ``GET /readyz`` or
    ``/readyz/QQ`` (200 while every account, or that one, is ready; else 503), with a
    JSON body. No token is asked of a loopback peer, so that a supervisor can probe;
    others need it, as for every action."""

    def initialize(self, health: Health, token: str, readiness: bool) -> None:
        self.health = health
        self.token = token
        self.readiness = readiness

    def compute_etag(self) -> None:
        return None

    def _answer(self, status: int, body: Dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def get(self, account: Optional[str] = None) -> None:
        if not _loopback(self.request.remote_ip or ""):
            refused = check_token(self.token, self.request.headers.get("Authorization"),
                                  self.get_query_argument("access_token", None))
            if refused:
                self._answer(refused, {"error": "access token missing" if refused == 401
                                       else "access token wrong"})
                return
        if not self.readiness:
            self._answer(200, {"status": "ok", "accounts": len(self.health.watches)})
            return
        watches = self.health.watches
        if account is not None:
            watch = watches.get(int(account))
            if watch is None:
                self._answer(404, {"error": "no account %s" % account})
                return
            watches = {watch.account: watch}
        accounts = {str(qq): watch.describe() for qq, watch in watches.items()}
        ready = bool(accounts) and all(a["ready"] for a in accounts.values())
        self._answer(200 if ready else 503, {"ready": ready, "accounts": accounts})
