"""WebQQClient against the in-process simulator: login, staying online, receiving, sending."""
import os
import stat

import pytest

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
