"""The one durable outbound queue (webqq.onebot.outbound) in process: plugin and API
messages in the same store and order, an older version's outbox-QQ.json moved into it.
The daemon around it (SIGKILL, restart) is in test_api_daemon.py."""
import json
import logging

import pytest
from api_helpers import DISCUSSION, FRIEND, GROUP, eventually
from client_helpers import Recorder

from webqq.onebot.outbound import import_saved_outbox


async def sent_texts(harness):
    return [(m["kind"], m["to"], m["text"]) for m in await harness.world.control.sent()]


@pytest.mark.gen_test(timeout=30)
async def test_plugin_and_api_messages_share_one_queue_in_order(harness):
    await harness.start()
    outbound = harness.outbound
    recorder = Recorder(harness.api.client)
    from_plugin = outbound.send_text("buddy", FRIEND, "from a plugin")
    data = await harness.ok("send_private_msg", {"user_id": FRIEND,
                                                 "message": "from the API"})
    assert data["message_id"] == from_plugin + 1
    await eventually(lambda: len(recorder.of("sent")) == 2, "both sent")
    assert await sent_texts(harness) == [("buddy", FRIEND, "from a plugin"),
                                         ("buddy", FRIEND, "from the API")]
    stored = await harness.ok("get_msg", {"message_id": from_plugin})
    assert (stored["send_status"], stored["origin"]) == ("sent", "plugin")
    stored = await harness.ok("get_msg", {"message_id": data["message_id"]})
    assert stored["origin"] == "api"
    with pytest.raises(ValueError, match="session messages can only be replied to"):
        outbound.send_text("session", FRIEND, "x")
    with pytest.raises(ValueError, match="empty"):
        outbound.send_text("buddy", FRIEND, "")


@pytest.mark.gen_test(timeout=30)
async def test_a_plugin_reply_goes_back_to_the_chat_it_came_from(harness):
    await harness.start()
    recorder = Recorder(harness.api.client)
    control = harness.world.control
    await control.say(**{"from": 20002, "group": GROUP, "text": "in the group"})
    await control.call("event", {"to": 10001, "poll_type": "sess_message", "from": 20003,
                                 "discussion": DISCUSSION, "text": "psst"})
    await control.say(**{"from": FRIEND, "text": "to me"})
    await eventually(lambda: len(recorder.of("message")) == 3, "three messages")
    for event in recorder.of("message"):
        harness.outbound.reply(event, "re: " + event.text)
    await eventually(lambda: len(recorder.of("sent")) == 3, "three replies")
    assert await sent_texts(harness) == [("group", GROUP, "re: in the group"),
                                         ("session", 20003, "re: psst"),
                                         ("buddy", FRIEND, "re: to me")]


@pytest.mark.gen_test(timeout=30)
async def test_a_saved_outbox_of_an_older_version_moves_into_the_store(harness, caplog):
    await harness.start()
    recorder = Recorder(harness.api.client)
    saved = harness.tmp_path / "outbox-10001.json"
    content = json.dumps([["buddy", FRIEND, "kept one"], ["session", 1, "no session"],
                          ["group", "30001", "not a number"], "junk",
                          ["group", GROUP, ""], ["group", GROUP, "kept two"]])
    saved.write_text(content)
    caplog.set_level(logging.WARNING, "webqq.api")
    assert import_saved_outbox(saved, harness.outbound) == 2
    assert not saved.exists()
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == ["saved outbox outbox-10001.json: entry %s skipped (%s)" % item
                       for item in ((2, "session messages can only be replied to"),
                                    (3, "the target is not a number"),
                                    (4, "not [chat, target, text]"),
                                    (5, "cannot send an empty message"))]
    # A crash before the file was removed: the same file again queues nothing twice.
    saved.write_text(content)
    assert import_saved_outbox(saved, harness.outbound) == 2
    await eventually(lambda: len(recorder.of("sent")) == 2, "the two kept messages")
    assert await sent_texts(harness) == [("buddy", FRIEND, "kept one"),
                                         ("group", GROUP, "kept two")]
    assert harness.outbound.store.counts() == {"sent": 2}
    # A file that is not a list of messages is moved aside, never deleted.
    saved.write_text("{not json")
    assert import_saved_outbox(saved, harness.outbound) == 0
    aside, = harness.tmp_path.glob("outbox-10001.json.bad-*")
    assert aside.read_text() == "{not json" and not saved.exists()
    assert import_saved_outbox(saved, harness.outbound) == 0     # no file: nothing
