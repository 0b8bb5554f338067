"""One login2 session: its tokens, presence, event queue and the poll it holds.

session: the per-session half of §2.5 and §3.15. Events wait in the queue
until a poll takes them; a poll finds them at once or is held until one arrives, a
116/121 is owed, or its hold time ends. An answer that cannot be written goes back to
the queue (``PollAnswer.restore``), so nothing is lost. The only asynchronous objects
are the Futures of held polls; timers belong to the handler. It never touches a socket
and never logs a token.
"""
import collections
import itertools
import logging
from collections import deque
from dataclasses import dataclass

from tornado.concurrent import Future, future_set_result_unless_cancelled

from .errors import channel_refusal
from .events import Stamp

__all__ = ["EXPIRED", "KICKED", "LOGGED_OUT", "MAX_POLL_ITEMS", "ONLINE", "PollAnswer",
           "QUEUE_MAX", "Session"]

log = logging.getLogger("webqq.simulator")

#: Items in one poll answer; the rest wait for the next poll (§3.15 [sim] "a cap").
MAX_POLL_ITEMS = 100
#: [sim] Items a session keeps for polls to come; past it the oldest is dropped (and
#: logged): a session nobody polls (kicked, expired, its client gone) cannot take the
#: simulator's memory.
QUEUE_MAX = 10_000

# Session states (§2.5).
ONLINE, KICKED, EXPIRED, LOGGED_OUT = "online", "kicked", "expired", "logged_out"


@dataclass(frozen=True)
class _Queued:
    seq: int                    # arrival order within the session
    item: dict


@dataclass
class PollAnswer:
    """What a poll2 answers, and how to undo taking it if it never reaches the client.

    ``restore`` is None for answers that carry nothing (102, 121…); otherwise the
    handler calls it when the response could not be written, which puts the taken items
    (or the 116 rotation, or the kick notice) back to be answered again.
    """

    body: dict
    restore: object = None

    @property
    def items(self) -> list:
        result = self.body.get("result")
        return result if isinstance(result, list) else []


class Session:
    """One login2 session of an account: tokens, presence, queue and the held poll.

    Args:
        table: the ``Sessions`` it belongs to (clock, rng, options, ptwebqq rotation).
        account: the world's account.
        clientid: the client's id, a decimal string.
        status: the presence asked for at login2.
        grant: the login server's grant (skey, p_skey, ptwebqq).
    """

    def __init__(self, table, account, clientid: str, status: str, grant):
        rng = table.rng
        self.table = table
        self.account = account
        self.qq = account.qq
        self.clientid = clientid
        self.status = status
        self.skey = grant.skey
        self.p_skey = grant.p_skey
        # The current ptwebqq: the friend-list hash uses it; a 116 replaces it.
        self.ptwebqq = grant.ptwebqq
        self.psessionid = ""
        self.vfwebqq = ""
        self.state = ONLINE
        self.queue = []                 # _Queued, in arrival order; QUEUE_MAX at most
        self.pending = None             # Future[PollAnswer] of the held poll, if any
        self.kick_notice = None         # kick_message item owed to the next poll
        self.rotation = None            # new ptwebqq owed to the next poll (116)
        self.polls = 0
        self.last_activity = table.clock()
        self.last_send = None           # (time, pieces) of the previous send
        self.recent_sends = collections.OrderedDict()  # msg_id -> pieces, the last few
        self.sigs = {}                  # group_sig -> _SessSig; chat.SESSION_SIGS_MAX
        self.lookups = deque()          # times of get_friend_uin2 calls
        self.reply_ip = rng.randrange(176_000_000, 180_000_000)
        self._msg_ids = itertools.count(rng.randrange(1000, 60000))
        self._seq = itertools.count()

    def stamp(self, seq: int = 0) -> Stamp:
        """Header values for the next item this session receives."""
        return Stamp(msg_id=next(self._msg_ids), msg_id2=self.table.rng.randrange(100000, 1000000),
                     reply_ip=self.reply_ip, time=int(self.table.clock()), seq=seq)

    def expire_if_idle(self) -> None:
        """§2.5 idle expiry: no poll for ``idle_expiry`` seconds makes a session expired."""
        limit = self.table.options.idle_expiry
        if (self.state == ONLINE and self.pending is None and limit > 0
                and self.table.clock() - self.last_activity > limit):
            self.state = EXPIRED
            log.info("session of %d expired (no poll for %.0f s)", self.qq, limit)

    # --- the queue and the held poll ---------------------------------------------------

    def push(self, item: dict) -> None:
        """Queue an event; a held poll of a live session gets it at once."""
        self.queue.append(_Queued(next(self._seq), item))
        if len(self.queue) > QUEUE_MAX:
            del self.queue[0]
            log.warning("session of %d: %d events wait unpolled; the oldest was dropped",
                        self.qq, QUEUE_MAX)
        if self.pending is not None and self.state == ONLINE:
            self._answer(self._take())

    def begin_poll(self) -> Future:
        """Start a poll2. Returns a Future of its PollAnswer, resolved now or later.

        A poll already held for this session is answered 102 first (§3.15 [sim]: the
        most recent poller receives the events).
        """
        self.expire_if_idle()
        if self.pending is not None:
            self._answer(PollAnswer(channel_refusal(102).body))
        self.polls += 1
        self.last_activity = self.table.clock()
        every = self.table.options.rotate_every
        if self.state == ONLINE and every and self.polls % every == 0 and self.rotation is None:
            self.rotation = self.table.draw_ptwebqq()
        future = Future()
        self.pending = future
        if self.state in (KICKED, EXPIRED):
            self._answer(self._dead_answer())
        elif self.rotation is not None:
            self._answer(self._rotation_answer())
        elif self.queue:
            self._answer(self._take())
        return future

    def end_hold(self, future: Future) -> None:
        """The hold time of ``future``'s poll passed: answer 102 if still held."""
        if self.pending is future:
            self._answer(PollAnswer(channel_refusal(102).body))

    def abandon(self, future: Future) -> None:
        """The held poll's connection closed: forget it; nothing was taken."""
        if self.pending is future:
            self.pending = None
            self.last_activity = self.table.clock()
            future_set_result_unless_cancelled(future, None)

    def end(self, body: dict) -> None:
        """Answer a held poll with ``body`` (109 at logout, 103 when the login expires)."""
        if self.pending is not None:
            self._answer(PollAnswer(body))

    def hand_over(self) -> list:
        """Empty the queue, returning its items in arrival order (for the next session)."""
        items, self.queue = [q.item for q in self.queue], []
        return items

    def kick(self, notice: "dict | None") -> None:
        """Mark the session kicked; polls get ``notice`` (a kick_message) first, then 121."""
        self.state, self.kick_notice = KICKED, notice
        if self.pending is not None:
            self._answer(self._dead_answer())

    def offer_rotation(self, p: str) -> None:
        """Owe the next poll a 116 with ``p``; a held poll gets it now. The ptwebqq
        changes when a poll answers the 116 (``_rotation_answer``), not here."""
        self.rotation = p
        if self.pending is not None and self.state == ONLINE:
            self._answer(self._rotation_answer())

    def close(self) -> None:
        """The simulator stops: a held poll's Future resolves with None."""
        if self.pending is not None:
            future, self.pending = self.pending, None
            future_set_result_unless_cancelled(future, None)

    def _answer(self, answer: PollAnswer) -> None:
        future, self.pending = self.pending, None
        self.last_activity = self.table.clock()
        future_set_result_unless_cancelled(future, answer)

    def _take(self) -> PollAnswer:
        taken, self.queue = self.queue[:MAX_POLL_ITEMS], self.queue[MAX_POLL_ITEMS:]
        items = [q.item for q in taken]
        if self.table.options.poll_order == "newest_first":
            items.reverse()
        return PollAnswer({"retcode": 0, "result": items}, lambda: self._requeue(taken))

    def _requeue(self, taken: list) -> None:
        self.queue = sorted(taken + self.queue, key=lambda q: q.seq)
        log.info("poll answer for %d not written: %d item(s) queued again", self.qq, len(taken))
        if self.pending is not None and self.state == ONLINE:
            self._answer(self._take())

    def _rotation_answer(self) -> PollAnswer:
        """The 116 owed: ``p`` becomes the ptwebqq now; if the answer is never written,
        the old one stands again and the 116 is owed again, as a poll's items go back."""
        p, self.rotation = self.rotation, None
        old = self.ptwebqq
        self.table.set_ptwebqq(self, p)
        log.info("ptwebqq of %d rotated (116 answered)", self.qq)

        def undo():
            self.table.set_ptwebqq(self, old, replacing=p)
            self.rotation = p
            log.info("116 for %d not written: the old ptwebqq stands, the 116 is owed again",
                     self.qq)
        return PollAnswer({"retcode": 116, "p": p}, undo)

    def _dead_answer(self) -> PollAnswer:
        notice, self.kick_notice = self.kick_notice, None
        if notice is None:
            return PollAnswer({"retcode": 121, "t": "0"})

        def owe_again():
            self.kick_notice = notice
        return PollAnswer({"retcode": 0, "result": [notice]}, owe_again)
