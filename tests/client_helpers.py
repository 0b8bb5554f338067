"""Helpers for the client tests: an in-process simulator, clients on it, its /_sim/
control surface, and a recorder that lets a test await the client's events."""
import json
from typing import Any, Callable, List, Optional
from urllib.request import Request

import pytest
from tornado.concurrent import Future
from tornado.ioloop import IOLoop

from webqq.client.client import ClientEvent, WebQQClient
from webqq.http_stream import HTTPStream, RetryPolicy
from webqq.simulator.server import Simulator

PASSWORD = "webqq-demo"
# Short enough for a fast suite, long enough that a loaded machine still answers in time.
POLL_HOLD = 0.5


class Recorder:
    """Every event a client emits, with the loop time it arrived; awaitable."""

    def __init__(self, client: WebQQClient) -> None:
        self.client = client
        self.events: List[ClientEvent] = []
        self.times: List[float] = []
        self._waiters: List[tuple] = []
        self._taken: set = set()
        client.add_listener(self._record)

    def _record(self, event: ClientEvent) -> None:
        self.events.append(event)
        self.times.append(IOLoop.current().time())
        for waiter in list(self._waiters):
            kind, predicate, future = waiter
            if self._take(event, kind, predicate) and not future.done():
                self._waiters.remove(waiter)
                future.set_result(event)
                break

    def _take(self, event: ClientEvent, kind: str, predicate) -> bool:
        if event.kind != kind or id(event) in self._taken or not predicate(event):
            return False
        self._taken.add(id(event))
        return True

    def of(self, kind: str) -> List[ClientEvent]:
        return [event for event in self.events if event.kind == kind]

    def states(self) -> List[str]:
        return [event.new.value for event in self.of("state")]

    async def wait(self, kind: str, predicate: Callable[[Any], bool] = lambda e: True,
                   timeout: float = 10.0) -> ClientEvent:
        """The first event of ``kind`` matching ``predicate`` that no earlier wait
        returned, whether it already happened or is still to come."""
        for event in self.events:
            if self._take(event, kind, predicate):
                return event
        future: Future = Future()
        waiter = (kind, predicate, future)
        self._waiters.append(waiter)
        loop = IOLoop.current()
        handle = loop.call_later(timeout, lambda: future.done() or future.set_exception(
            TimeoutError("no %s event in %.1f s; got %r" % (kind, timeout, self.events[-8:]))))
        try:
            return await future
        finally:
            loop.remove_timeout(handle)
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def online(self, timeout: float = 10.0) -> ClientEvent:
        return await self.wait("state", lambda e: e.new.value == "online", timeout)


class SimControl:
    """The simulator's /_sim/ surface, through an HTTPStream of its own."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.stream = HTTPStream(retry=RetryPolicy(attempts=1))

    async def call(self, verb: str, body: Optional[dict] = None) -> Any:
        url = "http://127.0.0.1:%d/_sim/%s" % (self.sim.port, verb)
        token = {"X-Sim-Token": self.sim.control_token}
        if body is None:
            request = Request(url, method="GET", headers=token)
        else:
            request = Request(url, data=json.dumps(body).encode(), method="POST",
                              headers=dict(token, **{"Content-Type": "application/json"}))
        response = await self.stream.fetch(request)
        assert response.status == 200, (verb, response.status, response.text)
        return response.json()

    async def clear_faults(self) -> None:
        url = "http://127.0.0.1:%d/_sim/fault" % self.sim.port
        response = await self.stream.fetch(Request(
            url, method="DELETE", headers={"X-Sim-Token": self.sim.control_token}))
        assert response.status == 200, response.text

    async def say(self, **body) -> Any:
        body.setdefault("to", 10001)
        return await self.call("say", body)

    async def sent(self, account: int = 10001) -> list:
        return await self.call("sent?account=%d" % account)


class World:
    """The simulator, its control surface and the clients of one test."""

    def __init__(self, io_loop: IOLoop, tmp_path) -> None:
        self.io_loop = io_loop
        self.tmp_path = tmp_path
        self.sim: Optional[Simulator] = None
        self.control: Optional[SimControl] = None
        self.clients: List[WebQQClient] = []
        self.streams: List[HTTPStream] = []

    def start_sim(self, **kwargs) -> Simulator:
        kwargs.setdefault("poll_hold", POLL_HOLD)
        kwargs.setdefault("seed", 7)
        self.sim = Simulator(**kwargs)
        self.control = SimControl(self.sim)
        return self.sim

    def client(self, qq: int = 10001, password: str = PASSWORD, state_dir: str = None,
               stream: Optional[HTTPStream] = None, **kwargs) -> WebQQClient:
        if stream is None:
            stream = HTTPStream(hosts=self.sim.hosts, ca_file=self.sim.ca_file,
                                request_timeout=POLL_HOLD + 5, connect_timeout=2)
        self.streams.append(stream)
        kwargs.setdefault("poll_hold", POLL_HOLD)
        kwargs.setdefault("heartbeat_interval", 5.0)
        kwargs.setdefault("backoff", 0.2)
        kwargs.setdefault("backoff_max", 2.0)
        kwargs.setdefault("send_interval", 0.5)
        kwargs.setdefault("poll_retry", RetryPolicy(idempotent=True, attempts=3, backoff=0.05))
        client = WebQQClient(qq, password, stream, state_dir or str(self.tmp_path / str(qq)),
                             **kwargs)
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        """``close()`` from inside a running test."""
        for client in self.clients:
            client.stop("test over")
        for stream in self.streams:
            stream.close()
        if self.control is not None:
            self.control.stream.close()
        if self.sim is not None:
            await self.sim.stop()
        await _settle()

    def close(self) -> None:
        for client in self.clients:
            client.stop("test over")
        for stream in self.streams:
            stream.close()
        if self.control is not None:
            self.control.stream.close()
        if self.sim is not None:
            self.io_loop.run_sync(self.sim.stop)
        self.io_loop.run_sync(_settle)


async def _settle() -> None:
    import asyncio
    for _ in range(5):
        await asyncio.sleep(0)


class RecordingStream(HTTPStream):
    """An HTTPStream that remembers the URL path of every request it is given, and
    when it will be sent (``sends``: (path, loop time + delay))."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.paths: List[str] = []
        self.sends: List[tuple] = []

    def add_request(self, request, readback=None, delay=0, **kwargs):
        path = request.selector.split("?")[0]
        self.paths.append(path)
        self.sends.append((path, self.io_loop.time() + delay))
        return super().add_request(request, readback, delay, **kwargs)


@pytest.fixture
def world(io_loop, tmp_path):
    w = World(io_loop, tmp_path)
    w.start_sim()
    yield w
    w.close()


async def online_client(world: "World", qq: int = 10001, **kwargs):
    """A client of ``world`` for account ``qq`` (``world.client``'s keywords), started
    and online, with the ``Recorder`` of its events."""
    client = world.client(qq, **kwargs)
    events = Recorder(client)
    client.start()
    await events.online()
    return client, events
