"""The one durable outbound queue (webqq.onebot.outbound) in process: plugin and API
messages in the same store and order, an older version's outbox-QQ.json moved into it,
and a store that cannot be written (locked, full): sending stops, nothing is sent twice,
the IOLoop is never blocked long. The daemon around it (SIGKILL, restart) is in
test_api_daemon.py."""
import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import time

import pytest
from api_helpers import DISCUSSION, FRIEND, GROUP, eventually
from client_helpers import Recorder
from tornado.ioloop import IOLoop, PeriodicCallback

from webqq.onebot import outbound as outbound_module
from webqq.onebot.outbound import import_saved_outbox


async def sent_texts(harness):
    return [(m["kind"], m["to"], m["text"]) for m in await harness.world.control.sent()]


@pytest.mark.gen_test(timeout=30)
async def test_plugin_and_api_messages_share_one_queue_in_order(harness):
    await harness.start()
    outbound = harness.outbound
    recorder = Recorder(harness.account.client)
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
async def test_a_finished_text_message_does_not_read_the_whole_queue(harness, monkeypatch):
    # Reading every pending row after each message made a backlog drain in quadratic
    # time (170 ms a message with 17,000 queued); only a row with pictures needs it.
    from conftest import settle
    await harness.start()
    await settle(IOLoop.current())          # the sweep of the start (a loop turn later)
    store = harness.outbound.store
    reads = []
    pending = store.pending_with_pictures
    monkeypatch.setattr(store, "pending_with_pictures", lambda: reads.append(1) or pending())
    ids = [harness.outbound.send_text("buddy", FRIEND, "t%d" % n) for n in range(3)]
    await eventually(lambda: all(store.get(i).status == "sent" for i in ids), "all sent")
    assert reads == []


@pytest.mark.gen_test(timeout=30)
async def test_a_plugin_reply_goes_back_to_the_chat_it_came_from(harness):
    await harness.start()
    recorder = Recorder(harness.account.client)
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
    recorder = Recorder(harness.account.client)
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


# -- a store that cannot be written -------------------------------------------------------

class LoopGaps:
    """The longest time between two runs of a 5 ms timer: how long the IOLoop was
    blocked at most while it ran."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = None
        self._timer = PeriodicCallback(self._tick, 5)

    def _tick(self) -> None:
        now = time.monotonic()
        if self._last is not None:
            self.longest = max(self.longest, now - self._last)
        self._last = now

    def __enter__(self) -> "LoopGaps":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()


def tries(caplog) -> int:
    return len([r for r in caplog.records if "still cannot be written" in r.getMessage()])


def messages(caplog, level) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == level)


#: The longest an IOLoop callback may take while the store is locked: a store call
#: waits BUSY_TIMEOUT (0.05 s) for a lock, once per callback; the rest is slack for a
#: loaded machine. SQLite's default (5 s) would block the loop that long per call.
LOOP_BOUND = 0.5


@pytest.mark.gen_test(timeout=30)
async def test_a_store_locked_as_a_message_goes_out_pauses_sending_never_resends(
        harness, caplog, monkeypatch):
    monkeypatch.setattr(outbound_module, "RETRY", 0.05)
    caplog.set_level(logging.DEBUG, "webqq.api")
    api = await harness.start()
    outbound, store = harness.outbound, harness.outbound.store
    recorder = Recorder(harness.account.client)
    # An admin's sqlite3 shell takes the write lock while "first" is on the wire (after
    # "second" is stored): the outcome of "first" cannot be written.
    locker = sqlite3.connect(str(store.path), isolation_level=None)
    harness.account.client.on("transmitting", lambda event: IOLoop.current().add_callback(
        locker.execute, "BEGIN IMMEDIATE") if event.message.text == "first" else None)
    with LoopGaps() as gaps:
        first = outbound.send_text("buddy", FRIEND, "first")
        second = outbound.send_text("buddy", FRIEND, "second")
        await eventually(lambda: outbound.paused, "sending to pause")
        assert outbound.send_text("buddy", FRIEND, "third") is None    # waits here
        code, answer = await harness.call("send_private_msg", {"user_id": FRIEND,
                                                               "message": "refused"})
        assert (answer["status"], answer["msg"]) == (
            "failed", "the message store cannot be written: database is locked")
        assert (await harness.ok("get_status"))["sending_paused"] == "database is locked"
        await eventually(lambda: tries(caplog) >= 3, "three more tries of the store")
        assert await sent_texts(harness) == [("buddy", FRIEND, "first")]
        assert store.get(first).status == "sending"     # a crash now: ambiguous, not resent
        locker.execute("ROLLBACK")
        await eventually(lambda: len(recorder.of("sent")) == 3, "the other two sent")
    locker.close()
    assert await sent_texts(harness) == [("buddy", FRIEND, "first"),
                                         ("buddy", FRIEND, "second"),
                                         ("buddy", FRIEND, "third")]
    assert [store.get(n).status for n in (first, second, second + 1)] == ["sent"] * 3
    assert store.counts() == {"sent": 3}
    assert gaps.longest < LOOP_BOUND, gaps.longest
    assert "messages.sqlite3 cannot be written (database is locked): sending paused" \
        in messages(caplog, logging.WARNING)
    assert "sending resumed" in messages(caplog, logging.INFO)
    assert (await harness.ok("get_status"))["sending_paused"] is None


# Another process (a backup, an sqlite3 shell) holds the write lock until told to stop.
LOCK_HOLDER = """\
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


@pytest.mark.gen_test(timeout=30)
async def test_a_lock_held_by_another_process_stops_sending_until_released(
        harness, caplog, monkeypatch):
    monkeypatch.setattr(outbound_module, "RETRY", 0.05)
    caplog.set_level(logging.DEBUG, "webqq.api")
    api = await harness.start()
    outbound, store = harness.outbound, harness.outbound.store
    recorder = Recorder(harness.account.client)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, str(store.path), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE)
    assert await holder.stdout.readline() == b"locked\n"
    with LoopGaps() as gaps:
        code, answer = await harness.call("send_group_msg", {"group_id": GROUP,
                                                             "message": "not stored"})
        assert answer["status"] == "failed" and "database is locked" in answer["msg"]
        assert outbound.paused == "database is locked"
        assert outbound.send_text("group", GROUP, "from a plugin") is None
        # A message received meanwhile still reaches the bots, without a message_id.
        await harness.world.control.say(**{"from": FRIEND, "text": "while locked"})
        await eventually(lambda: harness.account.counts["received"] == 1, "the message received")
        assert "a received message is not stored (database is locked); delivered with " \
               "message_id 0" in messages(caplog, logging.WARNING)
        await eventually(lambda: tries(caplog) >= 3, "three more tries of the store")
        assert await sent_texts(harness) == []
        holder.stdin.write(b"\n")
        assert await holder.wait() == 0
        await eventually(lambda: recorder.of("sent"), "the plugin's message sent")
    assert await sent_texts(harness) == [("group", GROUP, "from a plugin")]
    assert store.counts() == {"sent": 1}
    assert gaps.longest < LOOP_BOUND, gaps.longest


def fill_up(db):
    """A full disk, portably: the store's own connection may not grow the file."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute("PRAGMA max_page_count = %d" % pages)
    return lambda: db.execute("PRAGMA max_page_count = 1073741823")


def read_only(db):
    """A read-only file, even for root: the store's own connection may not write."""
    db.execute("PRAGMA query_only = 1")
    return lambda: db.execute("PRAGMA query_only = 0")


@pytest.mark.parametrize("make, reason", [
    (fill_up, "database or disk is full"),
    (read_only, "attempt to write a readonly database")])
@pytest.mark.gen_test(timeout=30)
async def test_a_full_or_read_only_store_refuses_new_messages_and_says_so(
        harness, caplog, monkeypatch, make, reason):
    monkeypatch.setattr(outbound_module, "RETRY", 0.05)
    caplog.set_level(logging.DEBUG, "webqq.api")
    api = await harness.start()
    outbound, store = harness.outbound, harness.outbound.store
    recorder = Recorder(harness.account.client)
    undo = make(store._db)
    big = "x" * 2000
    code, answer = await harness.call("send_private_msg", {"user_id": FRIEND,
                                                           "message": big})
    assert (answer["status"], answer["msg"]) == (
        "failed", "the message store cannot be written: " + reason)
    assert (await harness.ok("get_status"))["sending_paused"] == reason
    assert outbound.send_text("buddy", FRIEND, big) is None
    await eventually(lambda: tries(caplog) >= 3, "three more tries of the store")
    assert await sent_texts(harness) == []
    undo()
    await eventually(lambda: recorder.of("sent"), "the plugin's message sent")
    assert "".join(text for _, _, text in await sent_texts(harness)) == big
    assert store.counts() == {"sent": 1} and outbound.paused is None


# --- the pacing agrees with the client's ------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_after_a_resume_a_row_waits_queued_until_the_client_would_send_it(harness):
    # A resumed session waits twice the interval before its first part, in case the
    # process before had sent a moment ago: the row must wait that out in the store as
    # "queued", not in the client as "sending" (a crash meanwhile would make it
    # ambiguous, never sent).
    await harness.start()
    client, outbound = harness.account.client, harness.outbound
    at_transmit = []
    client.on("transmitting", lambda event: at_transmit.append(IOLoop.current().time()))
    client.send_queue.after_restart()
    started = IOLoop.current().time()
    message_id = outbound.send_text("buddy", FRIEND, "after the resume")
    await asyncio.sleep(0.2)                  # what must not happen meanwhile; the hold: 1 s
    assert outbound.store.get(message_id).status == "queued"
    assert len(client.send_queue) == 0
    await eventually(lambda: outbound.store.get(message_id).status == "sent", "sent")
    (at,) = at_transmit
    assert at - started >= 2 * client.send_queue.interval - 0.05


# --- what the daemon's status file follows ------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_the_queue_tells_each_change_of_what_waits_and_of_the_pause(
        harness, monkeypatch):
    # The daemon's status file shows waiting() and paused; it is rewritten when the
    # queue says they changed, not on a timer (issue 17): a change it is not told of
    # would stay unshown. Each call sees the new values.
    monkeypatch.setattr(outbound_module, "RETRY", 0.05)
    await harness.start()
    outbound = harness.outbound
    seen = []
    outbound.on_change = lambda: seen.append((outbound.waiting(), outbound.paused))
    recorder = Recorder(harness.account.client)
    await harness.ok("send_private_msg", {"user_id": FRIEND, "message": "from the API"})
    assert seen[0] == (1, None)
    await eventually(lambda: recorder.of("sent"), "sent")
    assert seen[-1] == (0, None)
    locker = sqlite3.connect(str(outbound.store.path), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    assert outbound.send_text("buddy", FRIEND, "from a plugin") is None
    assert seen[-1] == (1, "database is locked")
    locker.execute("ROLLBACK")
    locker.close()
    await eventually(lambda: len(recorder.of("sent")) == 2, "the plugin's message sent")
    assert (outbound.waiting(), outbound.paused) == (0, None) and seen[-1] == (0, None)


def test_what_waits_is_counted_from_the_pending_rows_alone(tmp_path):
    # waiting() runs at each status write for every account: it must not read the
    # account's whole history, only its queued and sending rows (the partial index).
    from webqq.onebot.store import Store
    store = Store(tmp_path / "messages.sqlite3")
    mine, other = store.for_account(10001), store.for_account(10002)
    for n in range(50):
        mine.add_received(chat="buddy", target=FRIEND, user_id=FRIEND, text="in %d" % n,
                          data={})
    ids = [mine.add_outgoing(chat="buddy", target=FRIEND, user_id=10001, text="out",
                             data={})[0] for _ in range(4)]
    other.add_outgoing(chat="buddy", target=FRIEND, user_id=10002, text="out", data={})
    mine.mark_sending(ids[0])
    mine.set_status(ids[1], "sent")
    statements = []
    store._db.set_trace_callback(statements.append)
    assert mine.pending_count() == 3 and other.pending_count() == 1
    store._db.set_trace_callback(None)
    plan = " ".join(row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + statements[0]))
    assert "USING INDEX messages_pending" in plan, plan
    store.close()
