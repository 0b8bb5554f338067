"""The plugin API of issue 14: a message's pieces and pictures, replies with pictures,
the file, friend and group request events and their answers through ``Actions``, and
the ``[bot] accept_friends`` key. In process against a recording stand-in for the
client, then end to end with a real client on the simulator."""
import asyncio
from types import SimpleNamespace

import pytest
from media_helpers import b64, kept_by_simulator, online, sha1

from webqq import qq
from webqq.client.pictures import ReceivedPicture
from webqq.client.send_queue import SendStatus
from webqq.daemon import config as configuration
from webqq.plugins import (Actions, Dispatcher, Event, Face, Message, Plugin,
                           UploadPicture)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(64))


class StandIn:
    """Records what Actions asks of the client, with the client's attribute names."""

    def __init__(self):
        self.calls = []
        record = self._record
        self.pictures = SimpleNamespace(fetch=record("fetch"))
        self.files = SimpleNamespace(accept=record("accept"), refuse=record("refuse"),
                                     download=record("download"))
        self.manage = SimpleNamespace(answer_friend=record("answer_friend"),
                                      answer_group_request=record("answer_group_request"),
                                      leave_group=record("leave_group"),
                                      set_group_card=record("set_group_card"))

    def _record(self, name):
        async def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return name
        return call

    def send_group(self, target, content):
        self.calls.append(("send_group", (target, content), {}))

    def reply(self, raw, content):
        self.calls.append(("reply", (raw, content), {}))


def dispatcher_with(plugin, actions=True):
    sent = []
    client = StandIn()
    dispatcher = Dispatcher(lambda *args: sent.append(args),
                            actions=Actions(client) if actions else None)
    dispatcher.plugins = [plugin]
    return dispatcher, client, sent


@pytest.fixture
def run(io_loop):
    return lambda coroutine: io_loop.run_sync(lambda: coroutine)


PICTURE = ReceivedPicture("offpic", "/7acc", 2440652742)


def test_a_message_shows_its_pieces_and_pictures_and_fetches_them(run):
    plugin = Plugin("p")
    got = []

    @plugin.on_message()
    async def handler(ctx):
        got.append(ctx.message.pictures)
        got.append(await ctx.fetch_picture(ctx.message.pictures[0]))

    dispatcher, client, _ = dispatcher_with(plugin)
    message = Message(chat="buddy", text="hi [face:1][image]", sender=20001,
                      reply_to=20001, pieces=("hi ", Face(1), PICTURE))
    run(dispatcher.dispatch(message))
    assert got == [(PICTURE,), "fetch"]
    assert client.calls == [("fetch", (PICTURE,), {})]
    assert Message(chat="buddy", text="x").pictures == ()


def test_replies_with_pictures_go_through_actions_and_text_through_send(run):
    plugin = Plugin("p")
    picture = UploadPicture.from_bytes(JPEG)

    @plugin.on_message()
    def handler(ctx):
        ctx.reply("plain")
        ctx.reply(["look", picture])
        ctx.send("group", 30001, [picture])

    dispatcher, client, sent = dispatcher_with(plugin)
    raw = object()
    run(dispatcher.dispatch(Message(chat="buddy", text="x", sender=20001, reply_to=20001,
                                    raw=raw)))
    assert sent == [("buddy", 20001, "plain")]          # the daemon's outbox: text only
    assert client.calls == [("reply", (raw, ["look", picture]), {}),
                            ("send_group", (30001, [picture]), {})]
    assert dispatcher.counts["replies"] == 3 and dispatcher.counts["errors"] == 0


def test_file_and_request_events_are_answered_from_their_context(run):
    plugin = Plugin("p")
    offer = qq.FileEvent("file_message", 2440652742, "a.txt", "recv", 19823, {}, msg_id=1)
    join = qq.GroupSystemEvent(1, "group_request_join", 2559225925, 3483368056, 30001,
                               2297680537, None, None, "let me in")

    @plugin.on_event("file")
    async def files(ctx):
        await ctx.accept_file()
        await ctx.refuse_file()

    @plugin.on_event("friend_request")
    async def friends(ctx):
        await ctx.answer_friend_request(ctx.event.data["qq"] == 379450326, markname="new")

    @plugin.on_event("group_request")
    async def groups(ctx):
        await ctx.answer_group_request(False, reason="full")
        await ctx.actions.leave_group(30001)
        await ctx.actions.set_group_card(30001, "bot")

    dispatcher, client, _ = dispatcher_with(plugin)
    run(dispatcher.dispatch_event(Event("file", {"change": "offer", "event": offer})))
    run(dispatcher.dispatch_event(Event("friend_request", {"qq": 379450326})))
    run(dispatcher.dispatch_event(Event("group_request", {"event": join})))
    assert client.calls == [
        ("accept", (offer,), {}), ("refuse", (offer,), {}),
        ("answer_friend", (379450326, True), {"markname": "new", "reason": ""}),
        ("answer_group_request", (join, False), {"reason": "full"}),
        ("leave_group", (30001,), {}), ("set_group_card", (30001, "bot"), {})]


def test_actions_refused_clearly_where_they_do_not_apply(run, caplog):
    plugin = Plugin("p")

    @plugin.on_event("state")
    async def wrong_event(ctx):
        await ctx.accept_file()

    @plugin.on_message()
    async def no_actions(ctx):
        await ctx.fetch_picture(PICTURE)

    dispatcher, client, _ = dispatcher_with(plugin)
    run(dispatcher.dispatch_event(Event("state", {})))
    assert "p: this needs a file event" in caplog.text
    dispatcher, client, _ = dispatcher_with(plugin, actions=False)
    run(dispatcher.dispatch(Message(chat="buddy", text="x")))
    assert "no account actions here" in caplog.text
    assert dispatcher.counts["errors"] == 1 and client.calls == []
    with pytest.raises(ValueError, match="carrying a FileEvent"):
        run(Actions(client).accept_file(Event("file", {"event": None})))


# --- [bot] accept_friends ---------------------------------------------------------------

@pytest.mark.parametrize("value, policy, shown", [
    ("no", False, "no"), ("all", True, "yes"), ("yes", True, "yes"),
    ("20001, 20002", (20001, 20002), "20001, 20002"),
    ("20001 20002 30003", (20001, 20002, 30003), "20001, 20002, 30003"),
])
def test_accept_friends_key(tmp_path, value, policy, shown):
    path = tmp_path / "webqq.ini"
    path.write_text("[account]\nqq = 10001\npassword = x\n[bot]\naccept_friends = %s\n"
                    % value)
    config = configuration.load(path)
    assert config.bot.accept_friends == policy
    effective = configuration.render_effective(config)
    assert "accept_friends = %s\n" % shown in effective   # what `webqq check` prints
    path.write_text(effective)                             # and it reads back the same
    assert configuration.load(path).bot.accept_friends == policy


def test_accept_friends_defaults_to_no(tmp_path):
    path = tmp_path / "webqq.ini"
    path.write_text("[account]\nqq = 10001\npassword = x\n")
    assert configuration.load(path).bot.accept_friends is False


@pytest.mark.parametrize("value, problem", [
    ("maybe", "'maybe' is not a QQ number"), ("123", "'123' is not a QQ number"),
])
def test_accept_friends_key_refuses_what_it_cannot_read(tmp_path, value, problem):
    path = tmp_path / "webqq.ini"
    path.write_text("[account]\nqq = 10001\npassword = x\n[bot]\naccept_friends = %s\n"
                    % value)
    with pytest.raises(configuration.ConfigError, match=r"\[bot\] accept_friends: " + problem):
        configuration.load(path)


# --- end to end ---------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_plugin_sees_a_picture_and_answers_with_one(world):
    client, events, stream = await online(world)
    alice = client.contacts.friend(qq=20001)
    plugin = Plugin("echo_pictures")
    answered = []

    @plugin.on_message(kinds="buddy")
    async def echo(ctx):
        data = await ctx.fetch_picture(ctx.message.pictures[0])
        answered.append(ctx.reply(["you sent:", UploadPicture.from_bytes(data)]))

    dispatcher = Dispatcher(lambda *args: None, actions=Actions(client))
    dispatcher.plugins = [plugin]
    await world.control.say(**{"from": 20001}, picture={"base64": b64(JPEG)})
    received = await events.wait("message")
    await dispatcher.dispatch(Message(chat="buddy", text=received.text, sender=20001,
                                      reply_to=20001, pieces=received.pieces, raw=received))
    (outgoing,) = answered
    assert (await outgoing.done).status is SendStatus.SENT, outgoing.error
    sent = (await world.control.sent())[-1]             # the same bytes, back to Alice
    assert (sent["to"], sent["text"], sent["pictures"][0]["sha1"]) == (
        20001, "you sent:", sha1(JPEG))
    assert await kept_by_simulator(world, sha1(JPEG)) == JPEG
    assert stream.asked("/channel/get_offpic2")[0]["f_uin"] == str(alice.uin)


def test_the_daemon_hands_the_policy_pieces_and_actions_on(tmp_path, io_loop):
    from daemon_helpers import write_config

    from webqq.daemon.daemon import Daemon
    path = write_config(tmp_path, bot={"accept_friends": "20001"})
    daemon = Daemon(configuration.load(path))
    daemon.config.daemon.state_dir.mkdir()
    io_loop.run_sync(lambda: _start(daemon))
    (account,) = daemon.accounts.values()
    try:
        assert account.client.manage.accept_friends == (20001,)
        received = SimpleNamespace(
            chat="buddy", text="[image]", pieces=(PICTURE,), message=SimpleNamespace(time=5),
            sender=SimpleNamespace(qq=20001, name="Alice"), group=None, discussion=None)
        assert account._as_message(received).pictures == (PICTURE,)
        account.dispatcher = Dispatcher(account._send, actions=Actions(account.client))
        account.outbound = SimpleNamespace(send_interval=0.5, waiting=lambda: 0, paused=False)
        daemon.phase = "running"
        path.write_text(path.read_text().replace("accept_friends = 20001",
                                                 "accept_friends = all"))
        io_loop.run_sync(lambda: _reload(daemon))            # as SIGHUP does
        assert daemon.last_reload["ok"], daemon.last_reload
        assert "[bot] accept_friends" in daemon.last_reload["applied"]
        assert account.client.manage.accept_friends is True
    finally:
        daemon.stream.close()


async def _start(daemon):
    daemon._start_stream()
    (account,) = daemon.accounts.values()
    account.password = "webqq-demo"
    account._start_client()


async def _reload(daemon):
    daemon._reloading = asyncio.Lock()                      # as Daemon._main makes it
    await daemon.reload("test")
