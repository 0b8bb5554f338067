"""The send queue: one message at a time, a minimum interval apart, in order.

send_queue: the client's in-memory FIFO of ``OutgoingMessage`` (not the daemon's durable
queue, nor the OneBot API's). Scheduling only: it never builds a request or touches the
network; its owner (``sending.Transmitter``) hands it a ``transmit(message, part, done)``
function that sends one part and later calls ``done(outcome, retcode=None, error="")``.
Every delay is an ``IOLoop.call_later``.

Why one queue: the 2013 server silently dropped, while answering "ok", a message sent
less than 0.5 s after the previous one, and a copy of the previous message sent soon after
it (docs/protocol.rst §7.3), so all sends of a session share one clock; a single FIFO also
keeps every target's messages in the order they were asked for. The clock runs from the
previous part's *answer*: the server had it by then, so the gap it sees is never shorter
than ``interval`` (twice that before a part equal to the previous one, as pual_bot did),
whatever the network delayed. A message waits while the client is not online, up to its
time to live, then fails as ``"expired"``: the queue's bound is what its callers put in
one ``ttl``.
"""
import enum
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from tornado.concurrent import Future
from tornado.ioloop import IOLoop

from webqq.qq import Outgoing

__all__ = ["SendStatus", "Outcome", "OutgoingMessage", "SendQueue", "MIN_SEND_INTERVAL"]

log = logging.getLogger("webqq.send_queue")

#: The least ``interval`` a queue accepts, in seconds: the 2013 server silently dropped
#: a message that came sooner after the previous one (pual_bot's ``MESSAGE_INTERVAL``,
#: docs/protocol.rst §7.3).
MIN_SEND_INTERVAL = 0.5


class SendStatus(enum.Enum):
    """Where a message stands."""
    QUEUED = "queued"          # waiting for its turn, or for the client to be online
    SENT = "sent"              # every part was answered "ok" (not proof of delivery, §7.3)
    FAILED = "failed"          # refused (.retcode), expired, or its target is unknown
    AMBIGUOUS = "ambiguous"    # a part went out but its answer was lost: not resent


class Outcome(enum.Enum):
    """What ``transmit`` reports for one part."""
    SENT = "sent"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"
    NOT_SENT = "not_sent"      # nothing reached the server: keep it queued, send it later


@dataclass(eq=False)
class OutgoingMessage:
    """One message asked for by ``send_*``; long texts travel as several parts.

    Attributes:
        id: a number unique within the client, in the order messages were asked for.
        chat: ``"buddy"``, ``"group"``, ``"discussion"`` or ``"session"``.
        target: how the client finds the recipient (see ``Transmitter._resolve``).
        text: the whole text (faces as ``[face:N]``, pictures as ``[image]``).
        parts: what is actually sent, in order: texts, or lists of texts, faces and
            pictures.
        status: a ``SendStatus``.
        retcode: the server's retcode when the status is FAILED by the server.
        error: a short reason for FAILED or AMBIGUOUS.
        queued_at: ``IOLoop.time()`` when asked for.
        sent_at: ``IOLoop.time()`` when each part was handed to the network.
        done: a Future resolved with the message itself when it is no longer QUEUED.
    """
    id: int
    chat: str
    target: Tuple[str, Any]
    text: str
    parts: List[Outgoing]
    queued_at: float
    deadline: float
    status: SendStatus = SendStatus.QUEUED
    retcode: Optional[int] = None
    error: str = ""
    sent_at: List[float] = field(default_factory=list)
    done: "Future[OutgoingMessage]" = field(default_factory=Future, repr=False)
    next_part: int = 0
    retried: bool = False      # resent once after the session was renewed
    part_msg_id: Optional[int] = None   # the msg_id of the part on its way, kept if resent
    resent: int = 0            # the part on its way sent again after an unknown fate
    refused: int = 0           # the part on its way refused unprocessed (429, 503)
    # part index -> its pictures uploaded (uploads.Prepared), kept for a resend
    prepared: Dict[int, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return "<OutgoingMessage %d %s %s %s, %d part(s)>" % (
            self.id, self.chat, self.target[0], self.status.value, len(self.parts))


Transmit = Callable[[OutgoingMessage, str, Callable[..., None]], None]


class _AnyText:
    """Equal to every text: after a restart the server may hold, as the previous
    message of the session, whatever the process before sent last."""

    def __eq__(self, other: Any) -> bool:
        return True


class SendQueue:
    """Sends queued messages one part at a time while ``can_send()`` is true.

    Args:
        io_loop: the loop whose ``call_later`` spaces the sends.
        transmit: ``transmit(message, part_text, done)``; ``done(outcome, retcode=None,
            error="", retry_in=0.0)`` must be called exactly once (``retry_in``: with
            NOT_SENT, seconds to wait before the part goes again).
        can_send: true while the client is online.
        finished: called with each message when it leaves the queue (SENT, FAILED or
            AMBIGUOUS).
        interval: seconds from a part's answer to the next part at least,
            ``MIN_SEND_INTERVAL`` or more (pual_bot's safe value: 0.5).
        ttl: seconds a message may wait before it fails as ``"expired"``.

    Raises:
        ValueError: ``interval`` is under ``MIN_SEND_INTERVAL``.
    """

    def __init__(self, io_loop: IOLoop, transmit: Transmit, can_send: Callable[[], bool],
                 finished: Callable[[OutgoingMessage], None], *, interval: float = 0.5,
                 ttl: float = 300.0) -> None:
        if not interval >= MIN_SEND_INTERVAL:
            raise ValueError("send interval %r s is under %g s: the server silently "
                             "dropped messages sent closer together (docs/protocol.rst "
                             "§8.4)" % (interval, MIN_SEND_INTERVAL))
        self.io_loop = io_loop
        self.interval = interval
        self.ttl = ttl
        self._transmit = transmit
        self._can_send = can_send
        self._finished = finished
        self._queue: Deque[OutgoingMessage] = deque()
        self._next_id = 1
        self._in_flight = False
        self._last_send: Optional[float] = None   # when the previous part ended
        self._last_text: Any = None
        self._hold_until = 0.0                    # a refused part waits till then
        self._timer: Optional[object] = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def next_id(self) -> int:
        """The ``id`` the next ``put`` gives: ``put`` may transmit at once, so a caller
        can tell its own message in the events it causes before it returns."""
        return self._next_id

    def put(self, chat: str, target: Tuple[str, Any], text: str,
            parts: List[Outgoing]) -> OutgoingMessage:
        """Queue a message and return its handle; the queue starts on its own."""
        if self._closed:
            raise RuntimeError("the send queue is closed")
        now = self.io_loop.time()
        message = OutgoingMessage(id=self._next_id, chat=chat, target=target, text=text,
                                  parts=parts, queued_at=now, deadline=now + self.ttl)
        self._next_id += 1
        self._queue.append(message)
        log.debug("Queued message %d (%s, %d part(s))", message.id, chat, len(parts))
        self.wake()
        return message

    def after_restart(self) -> None:
        """The session goes on from a process that may have sent a moment ago: wait as
        if a part had just been answered, one equal to any text (twice the interval)."""
        self._last_send, self._last_text = self.io_loop.time(), _AnyText()

    def wait_for(self, part: Any) -> float:
        """Seconds from now until this queue, idle, would send ``part`` at once (0: at
        once): the pacing rule, from the previous part's answer, twice the interval
        before a repeat, after a restart and a refusal's hold. A caller that hands
        messages over one at a time (the daemon's durable outbound queue) asks first, so
        that its next message waits with it rather than here."""
        return max(0.0, self._ready_at(part) - self.io_loop.time())

    def wake(self) -> None:
        """Look at the queue again (the client calls it when it comes online)."""
        if self._timer is not None:
            self.io_loop.remove_timeout(self._timer)
            self._timer = None
        self._pump()

    def close(self, reason: str = "client stopped") -> None:
        """Fail every queued message and cancel the timer; the message on the wire
        (if any), or waiting to be sent again after an unknown fate, is ambiguous, since
        the server may have it. Safe to call twice."""
        self._closed = True
        if self._timer is not None:
            self.io_loop.remove_timeout(self._timer)
            self._timer = None
        if self._queue and (self._in_flight or self._queue[0].resent):
            self._finish(self._queue.popleft(), SendStatus.AMBIGUOUS,
                         error=reason + " while it was being sent")
        while self._queue:
            # Not a failure of the message: its owner may keep it for later (the
            # daemon saves it for its next start), so no warning.
            message = self._queue.popleft()
            log.info("Message %d to %s not sent: %s", message.id, _recipient(message),
                     reason)
            self._finish(message, SendStatus.FAILED, error=reason, logged=True)

    # -- the pump -------------------------------------------------------------

    def _pump(self) -> None:
        if self._closed or self._in_flight:
            return
        now = self.io_loop.time()
        while self._queue and self._queue[0].deadline <= now:
            self._finish(self._queue.popleft(), SendStatus.FAILED, error="expired")
        if not self._queue:
            return
        if not self._can_send():
            # Wake up when the oldest message expires; the client wakes us when online.
            self._schedule(self._queue[0].deadline - now)
            return
        message = self._queue[0]
        part = message.parts[message.next_part]
        ready = self._ready_at(part)
        if ready > now:
            self._schedule(ready - now)
            return
        self._in_flight = True
        message.sent_at.append(now)
        self._transmit(message, part, lambda outcome, retcode=None, error="", retry_in=0.0:
                       self._part_done(message, part, outcome, retcode, error, retry_in))

    def _ready_at(self, part: Any) -> float:
        if self._last_send is None:
            return self._hold_until
        # PB README 2013-05-10: a repeat of the previous text needs one more interval.
        gap = self.interval * (2 if self._last_text == part else 1)
        return max(self._last_send + gap, self._hold_until)

    def _schedule(self, delay: float) -> None:
        self._timer = self.io_loop.call_later(max(delay, 0.0), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._pump()

    def _part_done(self, message: OutgoingMessage, part: Any, outcome: Outcome,
                   retcode: Optional[int], error: str, retry_in: float) -> None:
        self._in_flight = False
        if self._closed:
            return
        now = self.io_loop.time()
        self._last_send, self._last_text = now, part
        if outcome is Outcome.NOT_SENT:
            message.sent_at.pop()           # it goes again, first in line
            self._hold_until = now + retry_in
        elif outcome is Outcome.SENT:
            message.part_msg_id, message.resent, message.refused = None, 0, 0
            message.next_part += 1
            if message.next_part == len(message.parts):
                self._queue.popleft()
                self._finish(message, SendStatus.SENT)
        else:
            self._queue.popleft()
            status = SendStatus.FAILED if outcome is Outcome.FAILED else SendStatus.AMBIGUOUS
            self._finish(message, status, retcode=retcode, error=error)
        self._pump()

    def _finish(self, message: OutgoingMessage, status: SendStatus,
                retcode: Optional[int] = None, error: str = "",
                logged: bool = False) -> None:
        """Settle ``message`` and tell its owner; ``logged``: the caller has said what
        happened in the log already."""
        message.status, message.retcode, message.error = status, retcode, error
        if logged:
            pass
        elif status is SendStatus.SENT:
            log.info("Message %d to %s sent (%d part(s))", message.id, _recipient(message),
                     len(message.parts))
        else:
            log.warning("Message %d to %s (%r) %s%s%s", message.id, _recipient(message),
                        message.text[:40], status.value,
                        " with retcode %s" % retcode if retcode is not None else "",
                        ": " + error if error else "")
        if not message.done.done():
            message.done.set_result(message)
        try:
            self._finished(message)
        except Exception:
            log.exception("Listener for message %d raised", message.id)


def _recipient(message: OutgoingMessage) -> str:
    """Whom a message is for, as a log line names it: ``buddy 20001``, ``group 30001``,
    ``buddy uin 123456`` (a reply by session id), ``group 'name'``."""
    by, value = message.target
    if message.chat == "session":
        return "session uin %d" % value[0]
    if by in ("qq", "number", "did"):
        return "%s %d" % (message.chat, value)
    if by == "name":
        return "%s %r" % (message.chat, value)
    return "%s %s %d" % (message.chat, by, value)
