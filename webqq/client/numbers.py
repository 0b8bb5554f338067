"""The QQ numbers behind uins and the public numbers behind group codes, learnt lazily.

numbers: ``NumberBook``, the one place the client asks ``get_friend_uin2`` and keeps
its answers. A number is learnt for free wherever the protocol carries it (a group
message's ``info_seq``, a temporary session's ``ruin``, a discussion's member list, a
saved session) and looked up only when a message or a call needs it, never for a whole
list at login: libwebqq warned that lookups in bulk got accounts black-listed
(docs/protocol.rst §3.12). Lookups go one after another, never two at once (libwebqq's
rule), at most ``LOOKUP_BUDGET`` a minute; after a refusal (99999) the book asks nothing for
``LOOKUP_PAUSE`` seconds and says so in the log. A number it cannot get is None: the
caller goes on without it (a OneBot user id then falls back to the uin).

It never opens a socket (lookups go through the client's ``HTTPStream``), never parses
bytes (``webqq.qq`` does), and never changes the client's state: what it learns reaches
the client through the ``learnt(key, number)`` callable.

Keys: a uin stands for itself; a group code ``c`` is kept as ``-c`` (``group_key``), so
one dict and the session file hold both.
"""
import logging
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Set

from tornado import gen
from tornado.concurrent import Future
from tornado.ioloop import IOLoop

from webqq.http.errors import HTTPStreamError
from webqq.qq import ProtocolError, QQRetcode, RetcodeError, build_friend_uin, parse_friend_uin

__all__ = ["NumberBook", "group_key", "LOOKUP_BUDGET", "LOOKUP_PAUSE"]

log = logging.getLogger("webqq.client")

#: Lookups per minute at most. No source gives the server's limit; the simulator
#: refuses past 20 by default, and half of that leaves room for a slower server.
LOOKUP_BUDGET = 10
#: Seconds without any lookup after the server refused one.
LOOKUP_PAUSE = 600.0
#: The window of ``LOOKUP_BUDGET``, in seconds.
_WINDOW = 60.0
# Retcodes that refuse lookups as such (libwebqq treats both so, §3.12).
_REFUSALS = {QQRetcode.LOOKUP_REFUSED, QQRetcode.VFWEBQQ_EXPIRED}


def group_key(code: int) -> int:
    """The book's key for a group code (its public number is what it maps to)."""
    return -code


class NumberBook:
    """What the client knows of numbers, and its paced lookups (see the module doc).

    Args:
        stream: the client's ``HTTPStream``.
        vfwebqq: the current session's ``vfwebqq`` (None when not logged in).
        clock: wall-clock seconds, for the requests' ``t``.
        enabled: False: never ask the server (numbers come only for free).
        learnt: ``learnt(key, number)``, called for each number the book did not know.

    Bound: one number (and one "cannot see" mark) per uin or group code of the session's
    contacts and senders, all dropped at each login (``forget``).
    """

    def __init__(self, stream: Any, vfwebqq: Callable[[], Optional[str]],
                 clock: Callable[[], float], *, enabled: bool = True,
                 learnt: Callable[[int, int], None] = lambda key, number: None) -> None:
        self.stream = stream
        self.io_loop: IOLoop = stream.io_loop
        self.enabled = enabled
        self._vfwebqq = vfwebqq
        self._clock = clock
        self._learnt = learnt
        self._numbers: Dict[int, int] = {}
        self._unseen: Set[int] = set()       # keys the server said it cannot see (100001)
        self._asking: Dict[int, "Future[Optional[int]]"] = {}
        self._sent: Deque[float] = deque()   # IOLoop times of the lookups in the window
        self._turn: Optional[Future] = None  # the lookup before the next one
        self._paused_until = 0.0
        self._over_budget_since: Optional[float] = None   # logged once per window
        self._generation = 0                 # bumped by forget(): late answers are void

    # -- what is known --------------------------------------------------------------------

    def known(self, key: int) -> Optional[int]:
        """The number behind ``key`` (a uin, or ``group_key(code)``), or None."""
        return self._numbers.get(key)

    def learn(self, key: int, number: Optional[int]) -> None:
        """Remember a number the protocol carried; ``learnt`` hears of it if it is new."""
        if number is None or self._numbers.get(key) == number:
            return
        self._numbers[key] = number
        self._unseen.discard(key)
        self._learnt(key, number)

    def forget(self) -> None:
        """A fresh login: the uins of the old one may mean others now (pidgin-lwqq)."""
        self._numbers.clear()
        self._unseen.clear()
        self._generation += 1

    def entries(self) -> List[List[int]]:
        """Every ``[key, number]`` known, for the session file."""
        return [[key, number] for key, number in self._numbers.items()]

    def restore(self, entries: List[List[int]]) -> None:
        """Put back the ``entries()`` of a saved session (the same uins)."""
        self._numbers.update((key, number) for key, number in entries)

    # -- asking the server ----------------------------------------------------------------

    def qq_of(self, uin: int) -> "Future[Optional[int]]":
        """The QQ number of ``uin``, as a Future: already done when it is known or
        cannot be asked for now, else done when a lookup answered (after the ones asked
        before it). Its result is None when the number cannot be had (lookups off,
        paused or over budget, refused, failed); it never raises."""
        return self._ask(uin, uin, 1)

    def group_number(self, code: int) -> "Future[Optional[int]]":
        """The public number of the group with ``code``, as ``qq_of`` gives it
        (``get_friend_uin2`` with ``type=4``)."""
        return self._ask(group_key(code), code, 4)

    def _ask(self, key: int, tuin: int, kind: int) -> "Future[Optional[int]]":
        future: "Future[Optional[int]]" = Future()
        if key in self._numbers or not self._may_ask(key):
            future.set_result(self._numbers.get(key))
            return future
        if key in self._asking:
            return self._asking[key]
        self._asking[key] = future
        previous, self._turn = self._turn, future
        self.io_loop.add_future(gen.convert_yielded(self._lookup(key, tuin, kind, previous)),
                                lambda done: self._finished(key, done))
        return future

    def _may_ask(self, key: int) -> bool:
        return (self.enabled and key not in self._unseen and self._vfwebqq() is not None
                and self.io_loop.time() >= self._paused_until)

    def _finished(self, key: int, done: Future) -> None:
        future = self._asking.pop(key)
        if done.exception() is not None:          # a bug: logged, the caller goes on
            log.error("QQ-number lookup crashed", exc_info=done.exception())
        future.set_result(self._numbers.get(key))

    async def _lookup(self, key: int, tuin: int, kind: int,
                      previous: Optional[Future]) -> None:
        if previous is not None:
            await previous                         # one at a time
        generation = self._generation
        now = self.io_loop.time()
        while self._sent and now - self._sent[0] > _WINDOW:
            self._sent.popleft()
        if key in self._numbers or not self._may_ask(key):
            return
        if len(self._sent) >= LOOKUP_BUDGET:
            if self._over_budget_since is None or now - self._over_budget_since > _WINDOW:
                self._over_budget_since = now
                log.info("QQ-number lookups: %d in the last minute already; the numbers "
                         "asked for meanwhile stay unknown for now", LOOKUP_BUDGET)
            return
        self._sent.append(now)
        request = build_friend_uin(tuin, vfwebqq=self._vfwebqq(), t=self._clock(),
                                   lookup_type=kind)
        try:
            response = await self.stream.fetch(request)
            if response.status != 200:
                raise HTTPStreamError("HTTP %d" % response.status)
            found = parse_friend_uin(response.read())
        except RetcodeError as exc:
            self._refused(key, exc)
            return
        except (HTTPStreamError, ProtocolError) as exc:
            log.warning("QQ-number lookup of %d failed: %s: %s", tuin,
                        exc.__class__.__name__, exc)
            return
        if generation == self._generation:
            self.learn(key, found.qq)

    def _refused(self, key: int, error: RetcodeError) -> None:
        if error.retcode in _REFUSALS:
            self._paused_until = self.io_loop.time() + LOOKUP_PAUSE
            log.warning("get_friend_uin2 refused a lookup (%s): no more QQ-number lookups "
                        "for %.0f s; until then a sender whose number is unknown is named "
                        "by uin", error.retcode, LOOKUP_PAUSE)
        else:
            self._unseen.add(key)
            log.warning("QQ-number lookup: %s", error)
