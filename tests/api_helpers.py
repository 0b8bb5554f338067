"""Helpers of the API tests: a client online on the in-process simulator with a
``OneBotApi`` on loopback, a real HTTP client to call it, a webhook receiver and a
reverse WebSocket server (small Tornado apps on loopback) that record what they get."""
import asyncio
import hashlib
import hmac
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from client_helpers import Recorder
from tornado import netutil, web, websocket
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer

from webqq.daemon.config import ApiConfig
from webqq.onebot.bot import AccountApi
from webqq.onebot.outbound import Outbound
from webqq.onebot.server import OneBotApi
from webqq.onebot.store import Store

TOKEN = "test-token-0123456789"
SECRET = "test-secret"
FRIEND, GROUP, DISCUSSION = 20001, 30001, 40001


async def eventually(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Polls ``condition()`` on the loop until it is true; returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        await asyncio.sleep(0.02)


class Harness:
    """A client online on the test's simulator, and the API in front of it."""

    def __init__(self, world, tmp_path) -> None:
        self.world = world
        self.tmp_path = tmp_path
        self.api: Optional[OneBotApi] = None
        self.account: Optional[AccountApi] = None      # the API's one account, 10001
        self.outbound: Optional[Outbound] = None
        self.http = AsyncHTTPClient(force_instance=True)
        self.servers: List[HTTPServer] = []

    async def start(self, *, heartbeat_interval: float = 0.0, stream: Any = None,
                    **settings: Any) -> OneBotApi:
        """Start a client (on ``stream``, default the simulator's) and the API."""
        client = self.world.client(stream=stream)
        recorder = Recorder(client)
        client.start()
        await recorder.online()
        await recorder.wait("contacts")
        settings.setdefault("listen", ("127.0.0.1", 0))
        settings.setdefault("token", TOKEN)
        store = Store(self.tmp_path / "messages.sqlite3")
        self.outbound = Outbound(client, store, self_id=10001, send_interval=0.1)
        self.outbound.start()
        self.api = OneBotApi(ApiConfig(**settings), token=settings["token"] or TOKEN,
                             heartbeat_interval=heartbeat_interval)
        self.account = self.api.add(client, self_id=10001, outbound=self.outbound)
        await self.api.start()
        return self.api

    async def call(self, action: str, params: Optional[Dict] = None, *,
                   token: Optional[str] = TOKEN, body: Optional[bytes] = None,
                   headers: Optional[Dict[str, str]] = None,
                   method: str = "POST", query: str = "") -> Tuple[int, Any]:
        """One action over HTTP: returns ``(status, parsed JSON body or None)``."""
        headers = dict(headers or {})
        if token is not None:
            headers.setdefault("Authorization", "Bearer " + token)
        if method == "POST":
            headers.setdefault("Content-Type", "application/json")
            if body is None:
                body = json.dumps(params or {}).encode()
        url = "%s/%s%s" % (self.api.url, action, query)
        response = await self.http.fetch(HTTPRequest(url, method=method, body=body,
                                                     headers=headers),
                                         raise_error=False)
        try:
            parsed = json.loads(response.body) if response.body else None
        except ValueError:
            parsed = None
        return response.code, parsed

    async def ok(self, action: str, params: Optional[Dict] = None) -> Any:
        """The data of an action that must succeed."""
        code, answer = await self.call(action, params)
        assert code == 200 and answer["status"] == "ok", (action, code, answer)
        return answer["data"]

    def serve(self, app: web.Application) -> int:
        """Serve ``app`` on a loopback port (closed after the test); returns the port."""
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        self.servers.append(server)
        return sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()
        if self.outbound is not None:
            self.outbound.release()
            self.outbound.close()
            self.outbound.store.close()
        for server in self.servers:
            server.stop()
            await server.close_all_connections()
        self.http.close()
        await self.world.aclose()


@pytest.fixture
def harness(world, tmp_path, io_loop):
    h = Harness(world, tmp_path)
    yield h
    io_loop.run_sync(h.close)


class Webhook(web.RequestHandler):
    """A bot's HTTP endpoint: checks the signature, records the event, and answers
    ``answer(event)`` (a quick operation) or nothing; ``fail`` first answers 500 that
    many times."""

    def initialize(self, record: Dict[str, Any]) -> None:
        self.record = record

    def post(self) -> None:
        body = self.request.body
        self.record.setdefault("attempts", 0)
        self.record["attempts"] += 1
        if self.record.get("fail", 0) > 0:
            self.record["fail"] -= 1
            self.set_status(500)
            return
        expected = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        signature = self.request.headers.get("X-Signature")
        self.record.setdefault("events", []).append({
            "event": json.loads(body), "self_id": self.request.headers.get("X-Self-ID"),
            "signed": signature == expected, "signature": signature})
        answer = self.record.get("answer", lambda event: None)(json.loads(body))
        if answer is None:
            self.set_status(204)
        else:
            self.write(answer)


def events_of(record: Dict[str, Any], post_type: str) -> List[Dict[str, Any]]:
    return [e["event"] for e in record.get("events", []) if e["event"]["post_type"] == post_type]


class ReverseServer(websocket.WebSocketHandler):
    """A bot's universal reverse WebSocket endpoint (as aiocqhttp serves ``/ws/``):
    records the handshake headers and the frames; ``script`` runs on each open."""

    def initialize(self, record: Dict[str, Any]) -> None:
        self.record = record

    def open(self) -> None:
        self.record.setdefault("headers", []).append(dict(self.request.headers))
        self.record.setdefault("sockets", []).append(self)
        script = self.record.get("script")
        if script is not None:
            script(self)

    def on_message(self, message: Any) -> None:
        self.record.setdefault("frames", []).append(json.loads(message))
