"""WebQQClient against the in-process simulator: login, staying online, receiving, sending."""
import os
import stat

import pytest
from tornado import gen

from webqq.client import State
from client_helpers import PASSWORD, RecordingStream, Recorder, world  # noqa: F401


@pytest.mark.gen_test(timeout=30)
async def test_login_loads_contacts_and_receives_a_buddy_message(world):
    client = world.client()
    events = Recorder(client)
    client.start()
    await events.online()
    assert events.states() == ["logging_in", "online"]
    friends = client.contacts
    alice = friends.friend(qq=20001)
    assert alice is not None and alice.nick == "Alice"
    assert friends.friend(name="Bob (work)").qq == 20002
    group = friends.group(number=30001)
    assert group is not None and group.name == "测试群"
    await world.control.say(**{"from": 20001, "text": "hello bot"})
    event = await events.wait("message")
    assert (event.chat, event.text, event.sender.qq, event.sender.name) == \
        ("buddy", "hello bot", 20001, "Alice")


@pytest.mark.gen_test(timeout=30)
async def test_login_with_captcha_saves_the_image_and_resumes_on_the_code(world):
    await world.control.call("captcha", {"account": 10001, "code": "ABCD"})
    client = world.client()
    events = Recorder(client)
    client.start()
    captcha = await events.wait("captcha")
    assert client.state is State.WAITING_CAPTCHA
    assert os.path.dirname(captcha.path) == client.state_dir
    with open(captcha.path, "rb") as image:
        assert image.read(2) == b"\xff\xd8"                       # a JPEG
    assert stat.S_IMODE(os.stat(captcha.path).st_mode) == 0o600
    client.enter_verify_code("abcd")                               # case does not matter
    await events.online()
    assert events.states() == ["logging_in", "waiting_captcha", "logging_in", "online"]


@pytest.mark.gen_test(timeout=30)
async def test_wrong_password_stops_with_a_clear_error_and_no_retry(world, io_loop):
    stream = RecordingStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file)
    client = world.client(password="not-the-password", stream=stream)
    events = Recorder(client)
    client.start()
    failed = await events.wait("login_failed")
    assert failed.final and "WRONG_PASSWORD" in str(failed.error)
    assert client.state is State.OFFLINE
    await gen.sleep(5 * client.backoff)                # would be time for a few retries
    assert stream.paths.count("/login") == 1
    assert events.of("reconnect") == []
    assert events.states() == ["logging_in", "offline"]


async def online_client(world, qq=10001, **kwargs):
    client = world.client(qq, **kwargs)
    events = Recorder(client)
    client.start()
    await events.online()
    return client, events


@pytest.mark.gen_test(timeout=30)
async def test_each_message_type_arrives_with_its_sender_resolved(world):
    client, events = await online_client(world)
    await world.control.say(**{"from": 20001, "group": 30001, "text": "to the group"})
    group = await events.wait("message")
    assert (group.chat, group.text, group.sender.qq, group.sender.name) == \
        ("group", "to the group", 20001, "Alice@work")            # the card wins
    assert group.group.number == 30001
    await world.control.say(**{"from": 20003, "discussion": 40001, "text": "to the discussion"})
    discussion = await events.wait("message")
    assert (discussion.chat, discussion.text, discussion.sender.qq,
            discussion.sender.name) == ("discussion", "to the discussion", 20003, "Carol")
    assert discussion.discussion.name == "good day"
    await world.control.call("event", {"to": 10001, "poll_type": "sess_message",
                                       "from": 20002, "group": 30001, "text": "psst"})
    session = await events.wait("message")
    assert (session.chat, session.text, session.sender.qq) == ("session", "psst", 20002)
    await world.control.say(**{"from": 20002, "text": "from a friend"})
    buddy = await events.wait("message")
    assert (buddy.chat, buddy.sender.name) == ("buddy", "Bob (work)")      # the remark
    await world.control.call("event", {"to": 10001, "poll_type": "buddies_status_change",
                                       "from": 20001, "status": "busy"})
    notice = await events.wait("notice")
    assert type(notice.event).__name__ == "StatusChange" and notice.event.status == "busy"


@pytest.mark.gen_test(timeout=30)
async def test_replies_reach_each_chat(world):
    client, events = await online_client(world)
    for say, answer in (({"from": 20001, "text": "hi"}, "hi Alice"),
                        ({"from": 20002, "group": 30001, "text": "hi"}, "hi group"),
                        ({"from": 20001, "discussion": 40001, "text": "hi"}, "hi discussion")):
        await world.control.say(**say)
        message = await events.wait("message")
        sent = await client.reply(message, answer).done
        assert sent.status.value == "sent", sent
    await world.control.call("event", {"to": 10001, "poll_type": "sess_message",
                                       "from": 20002, "group": 30001, "text": "psst"})
    sent = await client.reply(await events.wait("message"), "hi session").done
    assert sent.status.value == "sent", sent
    log = await world.control.sent()
    assert [(item["kind"], item["text"]) for item in log] == [
        ("buddy", "hi Alice"), ("group", "hi group"), ("discussion", "hi discussion"),
        ("session", "hi session")]
    assert log[0]["to"] == 20001 and log[1]["to"] == 30001


@pytest.mark.gen_test(timeout=30)
async def test_a_group_message_from_one_client_is_seen_by_the_other(world):
    one, _ = await online_client(world, 10001)
    two, events_two = await online_client(world, 10002)
    sent = await one.send_group(30001, "hello from one").done
    assert sent.status.value == "sent"
    seen = await events_two.wait("message")
    assert (seen.chat, seen.text, seen.sender.qq, seen.group.number) == \
        ("group", "hello from one", 10001, 30001)
    assert seen.sender.name == "webqq"                             # no card: the nick
