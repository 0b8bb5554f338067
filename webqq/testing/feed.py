"""The simulator's chat feed, read from a test: every message said and sent, as it happens.

feed: ``Watcher`` opens the simulator's WebSocket feed (``webqq.simulator.web``), takes
the history its hello carries and then each new event, in order, and lets a coroutine
wait until the events seen so far hold what it looks for. Through an outage it connects
again (the simulator refuses connections for a while) and takes the history once more,
so nothing is missed and nothing counted twice (events carry sequence numbers).

It only reads; it never sends a message to the simulator, and never blocks the event
loop it runs on.
"""
import asyncio
import json
import time
from typing import Any, Callable, List, Optional

from tornado import websocket
from tornado.httpclient import HTTPClientError, HTTPRequest

from .harness import TOKEN_HEADER

__all__ = ["Watcher", "Seen"]

#: Seconds between two connection attempts while the simulator refuses them.
RECONNECT_DELAY = 0.2
#: Seconds ``close`` waits for the simulator to answer the closing handshake.
CLOSE_TIMEOUT = 5.0


class Seen:
    """One feed event and when it arrived (``time.monotonic()``)."""

    __slots__ = ("event", "arrived")

    def __init__(self, event: dict, arrived: float) -> None:
        self.event, self.arrived = event, arrived


class Watcher:
    """Every message event of one simulator, kept in order, awaitable.

    Use ``async with Watcher(url, token) as watcher:`` (or ``await start()`` and
    ``await close()``); ``seen`` is the list so far, ``accounts`` the latest account
    states.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.seen: List[Seen] = []
        self.accounts: dict = {}
        self.connected = False
        self._seqs = set()
        self._run_id = None
        self._changed = asyncio.Event()
        self._connection = None
        self._task: Optional[asyncio.Task] = None
        self._closing = False

    async def __aenter__(self) -> "Watcher":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and take the history; raises OSError or HTTPClientError when the
        simulator cannot be reached now."""
        await self._connect()
        self._task = asyncio.ensure_future(self._run())

    async def _connect(self) -> None:
        request = HTTPRequest(self.url, headers={TOKEN_HEADER: self.token},
                              connect_timeout=5, request_timeout=5)
        self._connection = await websocket.websocket_connect(request)
        self.connected = True
        first = await self._connection.read_message()
        if first is not None:
            self._take(json.loads(first))

    async def _run(self) -> None:
        while not self._closing:
            frame = await self._connection.read_message()
            if frame is not None:
                self._take(json.loads(frame))
                continue
            self.connected = False
            self._changed.set()
            while not self._closing:
                try:
                    await self._connect()
                    break
                except (OSError, HTTPClientError, websocket.WebSocketError):
                    await asyncio.sleep(RECONNECT_DELAY)

    def _take(self, event: dict) -> None:
        arrived = time.monotonic()
        if event["type"] == "hello":
            if event["run"] != self._run_id:        # a new simulator: a new count
                self._run_id, self._seqs = event["run"], set()
            self.accounts = event["accounts"]
            for old in event["history"]:
                self._add(old, arrived)
        elif event["type"] == "accounts":
            self.accounts = event["accounts"]
        elif event["type"] == "message":
            self._add(event, arrived)
        self._changed.set()

    def _add(self, event: dict, arrived: float) -> None:
        if event["seq"] not in self._seqs:
            self._seqs.add(event["seq"])
            self.seen.append(Seen(event, arrived))

    async def wait(self, look: Callable[[], Any], timeout: float) -> Any:
        """``look()`` as soon as it returns something other than None, or None once
        ``timeout`` seconds passed. It is asked now and after each event."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            found = look()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        """Close the connection and end the reading task once the simulator answered the
        close (or CLOSE_TIMEOUT passed), so that no socket outlives the event loop."""
        self._closing = True
        if self._connection is not None:
            self._connection.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                pass
