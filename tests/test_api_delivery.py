"""How events reach the bot when things go wrong (issue 11, hardening): a store that
cannot take a received message, a webhook that is down for a while, redirects, a peer
that never reads, a shutdown with a POST in flight."""
import asyncio
import json
import logging
import sqlite3

import pytest
from api_helpers import FRIEND, TOKEN, ReverseServer, Webhook, events_of, eventually
from tornado import web, websocket

from webqq.client.events import MessageReceived, Sender
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
                           sender=Sender(uin=uin, qq=None, name="weird"))


# -- received messages reach every bot connection, stored or not ------------------------

@pytest.mark.gen_test(timeout=30)
async def test_every_received_message_reaches_every_connection_when_the_store_fails(
        harness, bot, caplog):
    """A lone surrogate or a uin of 2**70 raised in the API's listener: the message was
    neither stored, posted nor sent on a WebSocket. A locked store, a value SQLite
    refuses: the message goes out on every way with message_id 0, and the next one is
    stored again."""
    api = await bot.start()
    locker = sqlite3.connect(str(api.store.path), isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        await harness.world.control.say(**{"from": FRIEND, "text": "while locked"})
        await bot.heard(1)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    api.store.probe()                   # the queue would do it on its timer
    api.client._emit(weird_message("half \ud83d emoji", 555))
    api.client._emit(weird_message("a big uin", 2 ** 70))
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
