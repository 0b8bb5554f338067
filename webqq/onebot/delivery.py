"""Event delivery to the bot's own servers: HTTP POST to ``post_url`` and a universal
reverse WebSocket to ``ws_reverse_url``.

delivery: ``EventPoster`` POSTs each event (``X-Self-ID``, HMAC-SHA1 ``X-Signature``),
retried with backoff from a bounded queue; quick operations in the answer are honoured;
what the webhook does not take waits in the store and goes out, in order and before
anything newer, as soon as it answers again. ``ReverseConnection`` connects, announces
itself, sends events and answers actions, reconnecting with backoff. What it must never
do: log a URL's credentials (``redact_url``), the token, the secret or an event's body;
follow a redirect (the signature, the token and a quick reply belong to the configured
URL alone); post an event twice while it runs, or one before an older one.
"""
import asyncio
import hashlib
import hmac
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Optional, Set, Tuple
from urllib.request import Request

from tornado import websocket
from tornado.httpclient import HTTPClientError, HTTPRequest

import webqq
from webqq.http.redact import redact_url
from webqq.http.retry import backoff_delay
from webqq.http.stream import HTTPStream, HTTPStreamError, RetryPolicy
from webqq.onebot.actions import answer_frame
from webqq.onebot.store import StoreUnavailable

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.onebot.server import OneBotApi

__all__ = ["EventPoster", "ReverseConnection", "Backlog", "PEER_BACKLOG"]

log = logging.getLogger("webqq.api")

#: Seconds a POST to ``post_url`` (or a reverse WebSocket's connect) may take (a future
#: ``[api]`` key).
POST_TIMEOUT = 10.0
#: Tries of one POST before it is kept in the store; the delay before try n+1 is
#: ``min(POST_BACKOFF_MAX, POST_BACKOFF * 2**(n-1))``: 1, 2, 4, 8 s. Once an event is
#: kept, ``post_url`` is tried again with one POST a round, the delays going on
#: doubling from there: 16, 32, 60, 60 ... s.
POST_ATTEMPTS = 5
POST_BACKOFF = 1.0
POST_BACKOFF_MAX = 60.0
#: Events waiting for ``post_url`` in memory; beyond it the oldest goes to the store.
POST_QUEUE = 1000
#: Reverse WebSocket reconnect delays: 1, 2, 4 ... capped, reset once connected.
REVERSE_BACKOFF = 1.0
REVERSE_BACKOFF_MAX = 60.0


#: Bytes a WebSocket peer may leave untaken (written, not yet in the kernel's buffer,
#: which holds a few MB more) before it is closed: thousands of events. A bot that reads
#: keeps it near 0; one that never reads grew the daemon by 20 MB a minute.
PEER_BACKLOG = 4 * 1024 * 1024


class Backlog:
    """The bytes one WebSocket peer has not taken yet: frames handed to
    ``write_message`` whose futures have not resolved (Tornado resolves one once the
    frame is in the kernel). ``send`` refuses a frame that would take it past
    ``PEER_BACKLOG``: the caller then closes the peer, which frees what it holds."""

    def __init__(self) -> None:
        self.pending = 0

    def send(self, write: Callable[[str], "asyncio.Future"], text: str) -> bool:
        """``write(text)`` unless the peer is too far behind. Returns whether it was
        written.

        Raises:
            websocket.WebSocketClosedError: the peer is gone (what ``write`` raises).
        """
        size = len(text.encode("utf-8"))
        if self.pending and self.pending + size > PEER_BACKLOG:
            return False
        future = write(text)
        self.pending += size
        future.add_done_callback(lambda done: self._taken(done, size))
        return True

    def _taken(self, future: "asyncio.Future", size: int) -> None:
        self.pending -= size
        if not future.cancelled():
            future.exception()          # a peer gone meanwhile is no error: retrieved

    def why(self) -> str:
        """The reason given when the peer is closed."""
        return "%d bytes of events and answers left unread" % self.pending


def _is_heartbeat(event: Dict[str, Any]) -> bool:
    return event.get("meta_event_type") == "heartbeat"


class _InFlight:
    """The event being posted: its body, its JSON, and its row in the store if it has
    one (it came from there, or was kept while it was being posted)."""

    __slots__ = ("body", "event", "kept")

    def __init__(self, body: bytes, event: Dict[str, Any], kept: Optional[int]) -> None:
        self.body, self.event, self.kept = body, event, kept


class EventPoster:
    """POSTs each event to ``url``, in order, with retries; what ``url`` does not take
    waits in the store and is posted, still in order, once it answers again.

    The order: the events kept in the store (``undelivered_events``, for this url) are
    older than every event in memory, and their row ids are their order. So the oldest
    event is always the first kept one, or else the head of the memory queue; events
    go into the store only at its end: one that failed ``POST_ATTEMPTS`` times (older
    than the queue), the oldest of the queue when it is full, and the rest at
    ``close()``. While ``url`` fails, one POST a round tries the oldest event again,
    after a growing delay; heartbeats are dropped meanwhile (a stale one says nothing).
    A kept event is removed once posted; should the store refuse that, ``_posted``
    remembers it so it is not posted again while the daemon runs.

    A POST never follows a redirect: the ``X-Signature`` and ``X-Self-ID`` headers, and
    the quick operation in the answer, are for ``url`` alone. A 3xx is a failure.

    Args:
        api: the ``OneBotApi`` (its store, actions for quick operations, self_id).
        url: ``[api] post_url``.
        secret: ``[api] secret``; None: no ``X-Signature``.
    """

    def __init__(self, api: "OneBotApi", url: str, secret: Optional[str]) -> None:
        self.api = api
        self.url = url
        self.shown = redact_url(url)        # for the log: no credentials
        self.secret = secret
        self.stream = HTTPStream(retry=RetryPolicy(attempts=1), connect_timeout=POST_TIMEOUT,
                                 request_timeout=POST_TIMEOUT, max_redirects=0)
        self._queue: Deque[Tuple[bytes, Dict[str, Any]]] = deque()
        self._kept = 0                      # events kept in the store for url (or 1: unknown)
        self._posted = 0                    # the last kept id posted (removal may lag)
        self._in_flight: Optional[_InFlight] = None
        self._failures = 0                  # rounds failed in a row; 0: url answers
        self._closing = False
        self._wakeup = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self.delivered = 0

    def start(self) -> None:
        try:
            self._kept = self.api.store.undelivered(self.url)
        except StoreUnavailable as error:
            log.warning("the events kept for %s cannot be counted now (%s): posted once "
                        "the store can be read", self.shown, error.reason)
            self._kept = 1
        if self._kept:
            log.info("%d undelivered event(s) kept in the store will be posted first, in "
                     "order", self._kept)
        self._task = asyncio.ensure_future(self._run())

    def put(self, body: bytes, event: Dict[str, Any]) -> None:
        """Queue an event (after every one queued or kept before it)."""
        if self._failures and _is_heartbeat(event):
            return                          # url is down: a stale heartbeat says nothing
        if len(self._queue) >= POST_QUEUE:
            flying = self._in_flight
            if flying is not None and flying.kept is None and not _is_heartbeat(
                    flying.event):
                # Kept first, being older: should its POST fail, it stays first.
                flying.kept = self._keep(flying.body, "the post queue was full")
            old, old_event = self._queue.popleft()
            if not _is_heartbeat(old_event):
                self._keep(old, "the post queue was full")
        self._queue.append((body, event))
        self._wakeup.set()

    def _keep(self, body: bytes, why: str, otherwise: str = "is lost") -> Optional[int]:
        """Keep an event at the end of the store's; its row id, or None when the store
        refused it (logged, with ``otherwise``: what becomes of it)."""
        try:
            kept = self.api.store.keep_event(self.url, body, why)
        except StoreUnavailable as error:
            log.error("an undelivered event cannot be kept in the store (%s): it %s",
                      error.reason, otherwise)
            return None
        self._kept += 1
        return kept

    def signature(self, body: bytes) -> str:
        """The ``X-Signature`` value: ``sha1=`` and the hex HMAC-SHA1 of the body."""
        return "sha1=" + hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()

    async def _run(self) -> None:
        while True:
            while self._failures and self._queue and _is_heartbeat(self._queue[0][1]):
                self._queue.popleft()       # url is down: a stale heartbeat says nothing
            if not self._kept and not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            posted, error = await self._post_oldest()
            if self._closing:
                return
            if error is None:
                if posted and self._failures:
                    log.info("event POSTs to %s work again", self.shown)
                    self._failures = 0
                continue
            self._failures += 1
            delay = backoff_delay(POST_ATTEMPTS - 1 + self._failures, POST_BACKOFF,
                                  POST_BACKOFF_MAX)
            log.warning("event POST to %s failed (%s); %d event(s) wait (%d kept in the "
                        "store); next try in %g s", self.shown, error,
                        self._kept + len(self._queue), self._kept, delay)
            await asyncio.sleep(delay)

    async def _post_oldest(self) -> Tuple[bool, Optional[str]]:
        """POST the oldest event: the first kept one, else the head of the queue.
        Returns ``(posted, error)``: ``(True, None)`` once it is delivered, ``(False,
        None)`` when the store had none after all, else ``(False, why not)``."""
        attempts = 1 if self._failures else POST_ATTEMPTS
        if self._kept:
            try:
                found = self.api.store.kept_event(self.url, after=self._posted)
            except StoreUnavailable as error:
                return False, "the kept events cannot be read: %s" % error.reason
            if found is None:
                self._kept = 0
                return False, None
            kept, body = found
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            self._in_flight = _InFlight(body, event, kept)
        else:
            body, event = self._queue.popleft()
            self._in_flight = _InFlight(body, event, None)
        error = await self._post(self._in_flight.body, self._in_flight.event, attempts)
        if self._closing and error is not None:
            return False, error             # close() keeps what is in flight
        flying, self._in_flight = self._in_flight, None
        if error is None:
            if flying.kept is not None:
                self._forget(flying.kept)
            return True, None
        if flying.kept is None and not _is_heartbeat(flying.event):
            log.error("event POST to %s failed %d times (%s); kept in the store",
                      self.shown, attempts, error)
            if self._keep(flying.body, error, "waits in memory, still first") is None:
                self._queue.appendleft((flying.body, flying.event))
        return False, error

    def _forget(self, kept: int) -> None:
        """A kept event was posted: remove it (and any posted before it)."""
        self._posted = kept
        self._kept = max(0, self._kept - 1)
        try:
            self.api.store.forget_events(self.url, kept)
        except StoreUnavailable as error:
            log.warning("posted events stay in the store for now (%s); not posted again",
                        error.reason)

    async def _post(self, body: bytes, event: Dict[str, Any], attempts: int
                    ) -> Optional[str]:
        """Up to ``attempts`` POSTs of one event. Returns None once ``url`` took it (its
        quick operation honoured), else the last failure."""
        headers = {"Content-Type": "application/json", "X-Self-ID": str(self.api.self_id),
                   "User-Agent": "webqq/%s" % webqq.__version__}
        if self.secret:
            headers["X-Signature"] = self.signature(body)
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                response = await self.stream.fetch(Request(self.url, data=body,
                                                           headers=headers, method="POST"))
            except HTTPStreamError as failure:
                error = "%s: %s" % (type(failure).__name__, failure)
            else:
                if 200 <= response.status < 300:
                    self.delivered += 1
                    self._quick(event, response)
                    return None
                error = "HTTP %d" % response.status
                if 300 <= response.status < 400:
                    error += ", a redirect: not followed, set post_url to where it leads"
            if attempt < attempts and not self._closing:
                delay = backoff_delay(attempt, POST_BACKOFF, POST_BACKOFF_MAX)
                log.warning("event POST to %s failed (%s); try %d in %g s", self.shown,
                            error, attempt + 1, delay)
                await asyncio.sleep(delay)
        return error

    def _quick(self, event: Dict[str, Any], response: Any) -> None:
        data = response.read()
        if not data.strip():
            return
        try:
            operation = json.loads(data)
        except (ValueError, RecursionError):            # too deeply nested
            log.warning("the answer of %s to an event is not JSON; ignored", self.shown)
            return
        if isinstance(operation, dict):
            self.api.actions.quick_operation(event, operation)

    async def close(self) -> None:
        """Stop; events not yet delivered are kept in the store, in order. A POST in
        flight is ended by closing the stream, and the task left to see it fail and
        stop: cancelled meanwhile, it would leave the fetch's future cancelled, and the
        stream's errback, which comes a moment later, would make Tornado log 'Exception
        after Future was cancelled'. A task that is waiting or sleeping is cancelled."""
        self._closing = True
        fetching = self.stream.active > 0
        self.stream.close()
        if self._task is not None:
            if not fetching:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        flying, self._in_flight = self._in_flight, None
        if flying is not None and flying.kept is None and not _is_heartbeat(flying.event):
            self._keep(flying.body, "daemon stopped")
        while self._queue:
            body, event = self._queue.popleft()
            if not _is_heartbeat(event):
                self._keep(body, "daemon stopped")


class ReverseConnection:
    """A universal reverse WebSocket: connect to ``url``, announce ourselves
    (``X-Self-ID``, ``X-Client-Role: Universal``, the token as Bearer), send events,
    answer actions; reconnect after ``REVERSE_BACKOFF * 2**n`` seconds (capped)."""

    #: What the API's publisher asks of every peer: this one wants events.
    wants_events = True

    def __init__(self, api: "OneBotApi", url: str) -> None:
        self.api = api
        self.url = url
        self.shown = redact_url(url)        # for the log: no credentials
        self.connection: Optional[websocket.WebSocketClientConnection] = None
        self.backlog = Backlog()
        self.connects = 0
        self._task: Optional[asyncio.Task] = None
        self._frames: Set[asyncio.Future] = set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        failures = 0
        while True:
            delay = backoff_delay(failures + 1, REVERSE_BACKOFF, REVERSE_BACKOFF_MAX)
            headers = {"X-Self-ID": str(self.api.self_id), "X-Client-Role": "Universal",
                       "Authorization": "Bearer %s" % self.api.token,
                       "User-Agent": "webqq/%s" % webqq.__version__}
            try:
                self.connection = await websocket.websocket_connect(
                    HTTPRequest(self.url, headers=headers, connect_timeout=POST_TIMEOUT,
                                request_timeout=POST_TIMEOUT, follow_redirects=False))
            except (OSError, HTTPClientError, websocket.WebSocketError) as error:
                log.warning("reverse WebSocket %s: %s; again in %g s", self.shown, error,
                            delay)
            else:
                self.connects += 1
                self.backlog = Backlog()
                failures = 0
                delay = REVERSE_BACKOFF
                log.info("reverse WebSocket connected to %s", self.shown)
                self.send_text(json.dumps(self.api.lifecycle("connect")))
                self.api.sockets.add(self)
                try:
                    await self._serve(self.connection)
                finally:
                    self.api.sockets.discard(self)
                    self.connection.close()     # the peer's close: ours completes it
                    self.connection = None
                log.warning("reverse WebSocket %s closed; again in %g s", self.shown, delay)
            await asyncio.sleep(delay)
            failures += 1

    async def _serve(self, connection: websocket.WebSocketClientConnection) -> None:
        while True:
            frame = await connection.read_message()
            if frame is None:
                return
            task = asyncio.ensure_future(self._answer(frame))
            self._frames.add(task)
            task.add_done_callback(self._frames.discard)

    async def _answer(self, frame: Any) -> None:
        self.send_text(await answer_frame(self.api.actions, frame))

    def send_text(self, text: str) -> None:
        connection = self.connection
        if connection is None:
            return
        try:
            if self.backlog.send(connection.write_message, text):
                return
        except websocket.WebSocketClosedError:
            return
        log.warning("reverse WebSocket %s is closed: %s (the bot does not read)",
                    self.shown, self.backlog.why())
        self.api.sockets.discard(self)
        connection.close(1008, "too far behind")

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        pending = list(self._frames) + ([self._task] if self._task else [])
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
