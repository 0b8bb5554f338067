"""Shared fixtures: leak checks, and small servers on loopback that misbehave on cue.

Every test that takes `no_leaks` ends with the fds, IOLoop handlers and
pending timers it started with: a socket, handler or timer left behind fails it.
"""
import asyncio
import os
import socket
from typing import Awaitable, Callable, List, Optional

import pytest
from tornado import netutil
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

# Fixtures of the simulator, client, API and media suites (sim, browser, held_polls,
# world, harness, admin_world), available to every test module without importing them;
# and webqq.testing's pytest plugin (webqq_sim), which an installed webqq also registers
# under this name.
pytest_plugins = ("simulator_helpers", "client_helpers", "api_helpers", "media_helpers",
                  "webqq.testing.plugin")


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOOPBACK_NAMES:
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve loopback names only, not {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture
def io_loop():
    """pytest-tornado's fixture (its gen_test runs each test on it), made the way Tornado
    6.2+ asks: a new asyncio loop set as this thread's current one and Tornado's IOLoop
    over it, instead of the deprecated ``IOLoop().make_current()``, which on Python 3.12+
    also warns that no current event loop exists."""
    asyncio_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(asyncio_loop)
    loop = IOLoop.current()
    yield loop
    loop.close(all_fds=True)
    asyncio.set_event_loop(None)


@pytest.fixture(autouse=True)
def loopback_only_dns(monkeypatch):
    """Tests never leave the machine: a lookup of any other name fails at once."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def pending_timers(io_loop: IOLoop) -> list:
    loop = io_loop.asyncio_loop
    return [handle for handle in loop._scheduled if not handle.cancelled()]


async def settle(io_loop: IOLoop) -> None:
    """Let callbacks already scheduled run (errbacks, closes); not a sleep for an event."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def no_leaks(io_loop):
    """Fail the test if it leaves an fd, an IOLoop handler or a timer behind."""
    fds, handlers = open_fds(), set(io_loop.handlers)
    yield
    # Servers and streams are closed by the tests' own fixtures first.
    assert set(io_loop.handlers) == handlers, "IOLoop handlers left registered"
    assert pending_timers(io_loop) == [], "timers left pending"
    assert open_fds() == fds, "file descriptors leaked"


Handler = Callable[[IOStream], Awaitable[None]]


class RawServer:
    """A loopback TCP server that hands each accepted connection to `handler`
    as a Tornado IOStream, so a test can write exact bytes (or none).

    `connections` counts accepted connections; `requests` collects the raw
    request heads read through `read_request`.
    """

    def __init__(self, handler: Handler, family: int = socket.AF_INET) -> None:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self._sockets = netutil.bind_sockets(0, host, family=family)
        self.port = self._sockets[0].getsockname()[1]
        self.url = f"http://{'[::1]' if family == socket.AF_INET6 else '127.0.0.1'}:{self.port}"
        self.connections = 0
        self.requests: List[bytes] = []
        self._handler = handler
        self._streams: List[IOStream] = []
        self._tasks: list = []
        self._removers = [netutil.add_accept_handler(sock, self._accepted) for sock in self._sockets]

    def _accepted(self, connection: socket.socket, address) -> None:
        self.connections += 1
        stream = IOStream(connection)
        self._streams.append(stream)
        self._tasks.append(asyncio.ensure_future(self._serve(stream)))

    async def _serve(self, stream: IOStream) -> None:
        try:
            await self._handler(stream)
        except StreamClosedError:
            pass

    async def read_request(self, stream: IOStream) -> bytes:
        """Read one request (head, and a body framed by Content-Length)."""
        head = await stream.read_until(b"\r\n\r\n")
        self.requests.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await stream.read_bytes(length) if length else b""
        return head + body

    async def close(self) -> None:
        for remove in self._removers:
            remove()
        for sock in self._sockets:
            sock.close()
        for stream in self._streams:
            stream.close()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
def raw_server(io_loop):
    """Factory: `server = raw_server(handler)`; every server is closed after the test."""
    servers: List[RawServer] = []

    def make(handler: Handler, family: int = socket.AF_INET) -> RawServer:
        server = RawServer(handler, family)
        servers.append(server)
        return server

    yield make
    for server in servers:
        io_loop.run_sync(server.close)


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class NeverAccepts:
    """A listening socket with a full backlog that never accepts: connects to
    it hang (SYNs dropped), the loopback stand-in for a black-holed address."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers: List[socket.socket] = []
        # Fill the accept queue so that later SYNs are dropped.
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(filler)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


@pytest.fixture
def never_accepts():
    server = NeverAccepts()
    yield server
    server.close()


async def respond(server: Optional[RawServer], stream: IOStream, data: bytes,
                  close: bool = True) -> None:
    """Read a request, write `data`, and close (or keep) the connection."""
    await server.read_request(stream)
    await stream.write(data)
    if close:
        stream.close()
