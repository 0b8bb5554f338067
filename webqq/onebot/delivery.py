"""Event delivery to the bot's own servers: HTTP POST to ``post_url`` and a universal
reverse WebSocket to ``ws_reverse_url``.

delivery: ``EventPoster`` POSTs each event (``X-Self-ID``, HMAC-SHA1 ``X-Signature``),
retried with backoff from a bounded queue; quick operations in the answer are honoured;
what is still undelivered is kept in the store. ``ReverseConnection`` connects, announces
itself, sends events and answers actions, reconnecting with backoff. What it must never
do: log a URL's credentials (``redact_url``), the token, the secret or an event's body.
"""
import asyncio
import hashlib
import hmac
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Set, Tuple
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

__all__ = ["EventPoster", "ReverseConnection"]

log = logging.getLogger("webqq.api")

#: Seconds a POST to ``post_url`` (or a reverse WebSocket's connect) may take (a future
#: ``[api]`` key).
POST_TIMEOUT = 10.0
#: Tries of one POST before it is kept in the store; the delay before try n+1 is
#: ``min(POST_BACKOFF_MAX, POST_BACKOFF * 2**(n-1))``: 1, 2, 4, 8 s.
POST_ATTEMPTS = 5
POST_BACKOFF = 1.0
POST_BACKOFF_MAX = 60.0
#: Events waiting for ``post_url``; beyond it the oldest goes to the store at once.
POST_QUEUE = 1000
#: Reverse WebSocket reconnect delays: 1, 2, 4 ... capped, reset once connected.
REVERSE_BACKOFF = 1.0
REVERSE_BACKOFF_MAX = 60.0


def _is_heartbeat(event: Dict[str, Any]) -> bool:
    return event.get("meta_event_type") == "heartbeat"


class EventPoster:
    """POSTs each event to ``url`` in order, from a bounded queue, with retries.

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
                                 request_timeout=POST_TIMEOUT)
        self._queue: Deque[Tuple[bytes, Dict[str, Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self.delivered = 0

    def start(self) -> None:
        try:
            kept = self.api.store.take_events(self.url, POST_QUEUE)
        except StoreUnavailable as error:
            log.warning("undelivered events are not taken from the store now: %s", error)
            kept = []
        for body in kept:
            self._queue.append((body, json.loads(body)))
        if self._queue:
            log.info("%d undelivered event(s) from the store will be posted again",
                     len(self._queue))
        self._task = asyncio.ensure_future(self._run())
        self._wakeup.set()

    def put(self, body: bytes, event: Dict[str, Any]) -> None:
        if len(self._queue) >= POST_QUEUE:
            old, old_event = self._queue.popleft()
            if not _is_heartbeat(old_event):
                self._keep(old, "the post queue was full")
        self._queue.append((body, event))
        self._wakeup.set()

    def _keep(self, body: bytes, why: str) -> None:
        try:
            self.api.store.keep_event(self.url, body, why)
        except StoreUnavailable as error:
            log.error("an undelivered event is lost: %s", error)

    def signature(self, body: bytes) -> str:
        """The ``X-Signature`` value: ``sha1=`` and the hex HMAC-SHA1 of the body."""
        return "sha1=" + hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                body, event = self._queue[0]
                await self._deliver(body, event)
                if self._queue and self._queue[0][0] is body:
                    self._queue.popleft()

    async def _deliver(self, body: bytes, event: Dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json", "X-Self-ID": str(self.api.self_id),
                   "User-Agent": "webqq/%s" % webqq.__version__}
        if self.secret:
            headers["X-Signature"] = self.signature(body)
        error = ""
        for attempt in range(1, POST_ATTEMPTS + 1):
            try:
                response = await self.stream.fetch(Request(self.url, data=body,
                                                           headers=headers, method="POST"))
            except HTTPStreamError as failure:
                error = "%s: %s" % (type(failure).__name__, failure)
            else:
                if 200 <= response.status < 300:
                    self.delivered += 1
                    self._quick(event, response)
                    return
                error = "HTTP %d" % response.status
            if attempt < POST_ATTEMPTS:
                delay = backoff_delay(attempt, POST_BACKOFF, POST_BACKOFF_MAX)
                log.warning("event POST to %s failed (%s); try %d in %g s", self.shown,
                            error, attempt + 1, delay)
                await asyncio.sleep(delay)
        if _is_heartbeat(event):
            return          # a stale heartbeat says nothing: not kept
        log.error("event POST to %s failed %d times (%s); kept in the store", self.shown,
                  POST_ATTEMPTS, error)
        self._keep(body, error)

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
        """Stop; events not yet delivered are kept in the store."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            body, event = self._queue.popleft()
            if not _is_heartbeat(event):
                self._keep(body, "daemon stopped")
        self.stream.close()


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
                                request_timeout=POST_TIMEOUT))
            except (OSError, HTTPClientError, websocket.WebSocketError) as error:
                log.warning("reverse WebSocket %s: %s; again in %g s", self.shown, error,
                            delay)
            else:
                self.connects += 1
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
        if self.connection is None:
            return
        try:
            self.connection.write_message(text)
        except websocket.WebSocketClosedError:
            pass

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        pending = list(self._frames) + ([self._task] if self._task else [])
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
