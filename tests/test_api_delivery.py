"""How events reach the bot when things go wrong (issue 11, hardening): a store that
cannot take a received message, a webhook that is down for a while, redirects, a peer
that never reads, a shutdown with a POST in flight."""
import asyncio
import base64
import hashlib
import json
import logging
import socket
import sqlite3

import pytest
from api_helpers import FRIEND, TOKEN, ReverseServer, Webhook, events_of, eventually
from tornado import netutil, web, websocket
from tornado.iostream import IOStream
from tornado.tcpserver import TCPServer

from webqq.client.events import MessageReceived, Sender
from webqq.onebot import delivery
from webqq.qq import decode_content
from webqq.qq.poll import BuddyMessage


class Bot:
    """A bot on every way events go out: a webhook, a reverse WebSocket and a forward
    /event socket; ``messages(way)`` lists the message events each got."""

    def __init__(self, harness) -> None:
        self.harness = harness
        self.hook, self.reverse = {}, {}
        self.forward = None
        self.forwarded = []

    async def start(self, **settings):
        port = self.harness.serve(web.Application([
            (r"/hook", Webhook, {"record": self.hook}),
            (r"/ws/", ReverseServer, {"record": self.reverse})]))
        api = await self.harness.start(post_url="http://127.0.0.1:%d/hook" % port,
                                       ws_reverse_url="ws://127.0.0.1:%d/ws/" % port,
                                       **settings)
        self.forward = await websocket.websocket_connect(
            api.url.replace("http", "ws") + "/event?access_token=" + TOKEN)
        asyncio.ensure_future(self._read())
        await eventually(lambda: self.reverse.get("frames"), "the reverse WebSocket")
        return api

    async def _read(self) -> None:
        while True:
            frame = await self.forward.read_message()
            if frame is None:
                return
            self.forwarded.append(json.loads(frame))

    def messages(self):
        return {"webhook": events_of(self.hook, "message"),
                "reverse": [f for f in self.reverse.get("frames", [])
                            if f.get("post_type") == "message"],
                "forward": [f for f in self.forwarded if f.get("post_type") == "message"]}

    async def heard(self, count: int):
        """Each way's message events, once each has ``count``."""
        await eventually(lambda: all(len(got) >= count for got in self.messages().values()),
                         "%d message(s) on every way" % count)
        return self.messages()

    def close(self) -> None:
        if self.forward is not None:
            self.forward.close()


@pytest.fixture
def bot(harness):
    bot = Bot(harness)
    yield bot
    bot.close()


def weird_message(text: str, uin: int) -> MessageReceived:
    """A buddy message as no parser should let through: the API must cope anyway."""
    message = BuddyMessage(msg_id=1, msg_id2=2, from_uin=uin, time=1700000000,
                           content=decode_content([text]))
    return MessageReceived(chat="buddy", message=message, text=text,
                           sender=Sender(uin=uin, qq=None, name="weird"), pieces=(text,))


# -- received messages reach every bot connection, stored or not ------------------------

@pytest.mark.gen_test(timeout=30)
async def test_every_received_message_reaches_every_connection_when_the_store_fails(
        harness, bot, caplog):
    """A lone surrogate or a uin of 2**70 raised in the API's listener: the message was
    neither stored, posted nor sent on a WebSocket. A locked store, a value SQLite
    refuses: the message goes out on every way with message_id 0, and the next one is
    stored again."""
    api = await bot.start()
    locker = sqlite3.connect(str(harness.account.store.path), isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        await harness.world.control.say(**{"from": FRIEND, "text": "while locked"})
        await bot.heard(1)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    harness.account.store.probe()                   # the queue would do it on its timer
    harness.account.client._emit(weird_message("half \ud83d emoji", 555))
    harness.account.client._emit(weird_message("a big uin", 2 ** 70))
    await bot.heard(3)
    await harness.world.control.say(**{"from": FRIEND, "text": "stored again"})
    heard = await bot.heard(4)
    for way, events in heard.items():
        assert [(e["raw_message"], e["user_id"], e["message_id"]) for e in events] == [
            ("while locked", FRIEND, 0), ("half \ud83d emoji", 555, 0),
            ("a big uin", 2 ** 70, 0), ("stored again", FRIEND, events[3]["message_id"])
        ], way
        assert events[3]["message_id"] > 0, way
    reasons = [r.getMessage() for r in caplog.records
               if "a received message is not stored" in r.getMessage()]
    assert reasons == [
        "a received message is not stored (database is locked); delivered with "
        "message_id 0",
        "a received message is not stored (UnicodeEncodeError: 'utf-8' codec can't "
        "encode character '\\ud83d' in position 5: surrogates not allowed); delivered "
        "with message_id 0",
        "a received message is not stored (OverflowError: Python int too large to "
        "convert to SQLite INTEGER); delivered with message_id 0"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the webhook: kept events go out again, in order, once it answers ---------------------

@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(delivery, "POST_ATTEMPTS", 2)
    monkeypatch.setattr(delivery, "POST_BACKOFF", 0.01)
    monkeypatch.setattr(delivery, "POST_BACKOFF_MAX", 0.05)


def raw_messages(record):
    return [e.get("raw_message", e.get("sub_type")) for e in
            (item["event"] for item in record.get("events", []))
            if e["post_type"] in ("message", "meta_event")]


@pytest.mark.gen_test(timeout=30)
async def test_kept_events_are_posted_in_order_once_the_webhook_answers_again(
        harness, quick_retries, monkeypatch, caplog):
    """They waited in the store for the next restart, and later events overtook them.
    Now the webhook is tried again while the daemon runs, and every event arrives once,
    in order, through a full memory queue too."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(delivery, "POST_QUEUE", 2)
    record = {"fail": 10 ** 6}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    api = await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    await eventually(lambda: harness.account.store.undelivered() == 1, "the lifecycle event kept")
    for n in range(5):
        await harness.world.control.say(**{"from": FRIEND, "text": "m%d" % n})
    await eventually(lambda: harness.account.counts["received"] == 5, "five messages")
    assert harness.account.store.undelivered() == 4          # enable, m0, m1, m2: the queue holds 2
    tries = record["attempts"]
    await eventually(lambda: record["attempts"] >= tries + 2, "two more rounds")
    assert "events" not in record
    record["fail"] = 0
    await eventually(lambda: len(raw_messages(record)) == 6, "every event")
    await harness.world.control.say(**{"from": FRIEND, "text": "after"})
    await eventually(lambda: len(raw_messages(record)) == 7, "the next one")
    assert raw_messages(record) == ["enable", "m0", "m1", "m2", "m3", "m4", "after"]
    assert harness.account.store.undelivered() == 0
    assert [r.getMessage() for r in caplog.records if "work again" in r.getMessage()] == [
        "event POSTs to http://127.0.0.1:%d/hook work again" % port]


@pytest.mark.gen_test(timeout=30)
async def test_an_event_the_store_cannot_keep_waits_first_in_memory(
        harness, quick_retries, caplog):
    """The webhook is down and the store locked: the event that failed its tries stays
    first in memory (not lost), and goes out first once the webhook answers."""
    record = {"fail": 10 ** 6}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    locker = sqlite3.connect(str(harness.tmp_path / "messages.sqlite3"),
                             isolation_level=None)
    try:
        api = await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
        locker.execute("BEGIN IMMEDIATE")
        await harness.world.control.say(**{"from": FRIEND, "text": "one"})
        await harness.world.control.say(**{"from": FRIEND, "text": "two"})
        refusal = ("an undelivered event cannot be kept in the store (database is "
                   "locked): it waits in memory, still first")
        await eventually(lambda: [r.getMessage() for r in caplog.records].count(refusal)
                         >= 2, "two refusals")
        record["fail"] = 0
        await eventually(lambda: len(raw_messages(record)) == 3, "every event")
    finally:
        locker.close()
    assert raw_messages(record) == ["enable", "one", "two"]
    assert harness.account.store.undelivered() == 0


# -- redirects are never followed ------------------------------------------------------------

class Elsewhere(web.RequestHandler):
    """Another origin: records whatever reaches it (it must be nothing)."""

    def initialize(self, record):
        self.record = record

    def prepare(self):
        self.record.setdefault("requests", []).append(
            (self.request.method, self.request.path, dict(self.request.headers)))
        self.finish({"reply": "from elsewhere"})


class Redirect(web.RequestHandler):
    def initialize(self, to, status):
        self.to, self.status = to, status

    def prepare(self):
        self.redirect(self.to, status=self.status)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.gen_test(timeout=30)
async def test_neither_the_webhook_nor_the_reverse_websocket_follows_a_redirect(
        harness, quick_retries, monkeypatch, caplog, status):
    """The webhook followed a 303 to another origin, sending it X-Signature and
    X-Self-ID and honouring its quick reply. No redirect is followed, by the webhook or
    the reverse WebSocket: it is a failure, and says so."""
    monkeypatch.setattr(delivery, "REVERSE_BACKOFF", 0.01)
    elsewhere = {}
    other = harness.serve(web.Application([(r"/.*", Elsewhere, {"record": elsewhere})]))
    port = harness.serve(web.Application([
        (r"/hook", Redirect, {"to": "http://127.0.0.1:%d/hook" % other, "status": status}),
        (r"/ws/", Redirect, {"to": "ws://127.0.0.1:%d/ws/" % other, "status": status})]))
    api = await harness.start(post_url="http://127.0.0.1:%d/hook" % port, secret="s",
                              ws_reverse_url="ws://127.0.0.1:%d/ws/" % port)
    await eventually(lambda: harness.account.store.undelivered() == 1, "the event kept")
    await harness.world.control.say(**{"from": FRIEND, "text": "hi"})
    await eventually(lambda: len([r for r in caplog.records if "reverse WebSocket"
                                  in r.getMessage()]) >= 3, "three reverse tries")
    assert elsewhere == {}
    assert await harness.world.control.sent() == []
    lines = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed (HTTP %d, a redirect: not followed, set post_url to where it leads)" \
        % status in lines
    assert "reverse WebSocket ws://127.0.0.1:%d/ws/: HTTP %d" % (port, status) in lines


# -- a shutdown with a POST and a connect in flight ----------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_closing_with_a_post_and_a_connect_in_flight_logs_no_error(harness, caplog):
    """The API closed while an event POST was in flight logged 'Exception after Future
    was cancelled' (and the event was kept only by luck). A server that accepts and
    never answers holds both a POST and the reverse WebSocket's handshake: the close
    logs nothing at ERROR and keeps the event, in order before the queued ones."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        api = await harness.start(post_url="http://127.0.0.1:%d/hook" % port,
                                  ws_reverse_url="ws://127.0.0.1:%d/ws/" % port)
        await harness.world.control.say(**{"from": FRIEND, "text": "queued"})
        await eventually(lambda: harness.account.counts["received"] == 1, "the message")
        assert harness.account.poster.stream.active == 1            # the lifecycle POST, in flight
        await api.close()
        harness.api = None
        await asyncio.sleep(0.05)           # let a late errback run, as it did
    finally:
        silent.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    kept, after = [], 0
    while harness.account.store.kept_event(harness.account.poster.url, after):
        after, body = harness.account.store.kept_event(harness.account.poster.url, after)
        kept.append(json.loads(body).get("raw_message", "enable"))
    assert kept == ["enable", "queued"]


# -- a WebSocket peer that never reads ------------------------------------------------------------

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def deaf_client(url_path: str, port: int) -> IOStream:
    """A WebSocket client that completes the handshake and then never reads (its
    receive buffer small, so the server's writes back up soon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = IOStream(sock)
    await stream.connect(("127.0.0.1", port))
    await stream.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n" % (
                            url_path, base64.b64encode(b"0123456789abcdef").decode())
                        ).encode())
    head = await stream.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return stream


class DeafServer(TCPServer):
    """A bot's reverse WebSocket endpoint that answers the handshake, then never
    reads."""

    def __init__(self) -> None:
        super().__init__()
        self.streams = []

    async def handle_stream(self, stream: IOStream, address) -> None:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.streams.append(stream)
        head = await stream.read_until(b"\r\n\r\n")
        key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        await stream.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                           + b"\r\n\r\n")

    def close(self) -> None:
        self.stop()
        for stream in self.streams:
            stream.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_websocket_peer_that_never_reads_is_closed_at_its_bound(
        harness, monkeypatch, caplog):
    """Memory grew without bound (+20 MB a minute) for one /event socket that never
    read. Each peer's unread bytes are bounded; a forward and a reverse peer that stay
    behind are closed with a logged reason, while a bot that reads hears everything."""
    monkeypatch.setattr(delivery, "PEER_BACKLOG", 256 * 1024)
    deaf = DeafServer()
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    deaf.add_sockets(sockets)
    reader = client = None
    try:
        api = await harness.start(
            ws_reverse_url="ws://127.0.0.1:%d/ws/" % sockets[0].getsockname()[1])
        await eventually(lambda: harness.account.reverse in harness.account.sockets, "the reverse WebSocket")
        reader = await websocket.websocket_connect(
            api.url.replace("http", "ws") + "/event?access_token=" + TOKEN)
        client = await deaf_client("/event?access_token=" + TOKEN, api.port)
        await eventually(lambda: len(harness.account.sockets) == 3, "three peers")
        key = base64.b64encode(b"0123456789abcdef").decode()
        deaf_peers = [harness.account.reverse] + [
            peer for peer in harness.account.sockets if peer is not harness.account.reverse
            and peer.request.headers.get("Sec-WebSocket-Key") == key]
        assert len(deaf_peers) == 2
        heard, highest = 0, 0
        padding = "x" * 8000
        for n in range(3000):               # 24 MB: far more than any kernel buffer
            harness.account.publish({"post_type": "notice", "n": n, "padding": padding})
            highest = max([highest] + [peer.backlog.pending for peer in deaf_peers])
            while True:
                frame = json.loads(await reader.read_message())
                if frame.get("n") == n:
                    heard += 1
                    break
            if not any(peer in harness.account.sockets for peer in deaf_peers):
                break
        assert not any(peer in harness.account.sockets for peer in deaf_peers)
        assert highest <= delivery.PEER_BACKLOG
        assert heard == n + 1
    finally:
        for stream in (reader, client):
            if stream is not None:
                stream.close()
        deaf.close()
    lines = [r.getMessage() for r in caplog.records if "is closed:" in r.getMessage()]
    assert len(lines) == 2
    assert any(line.startswith("forward WebSocket /event from 127.0.0.1 is closed: ")
               and line.endswith("bytes of events and answers left unread (the bot does "
                                 "not read)") for line in lines)
    assert any(line.startswith("reverse WebSocket ws://127.0.0.1:") for line in lines)
