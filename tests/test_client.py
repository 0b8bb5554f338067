"""WebQQClient against the in-process simulator: login, staying online, receiving, sending."""
import asyncio
import json
import os
import stat

import pytest
from client_helpers import PASSWORD, Recorder, RecordingStream, online_client
from tornado import gen

from webqq.client.client import State
from webqq.client.session import cookie_value
from webqq.http_stream import HTTPStream, RetryPolicy


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
async def test_temporary_session_signatures_are_kept_for_c2c_sigs_max_peers(world, monkeypatch):
    import webqq.client.sending as sending
    monkeypatch.setattr(sending, "C2C_SIGS_MAX", 1)
    client, events = await online_client(world)
    group = client.contacts.group(number=30001)
    uins = [uin for uin, member in group.members.items() if member.qq in (20001, 20002)]
    for uin in uins + uins[:1]:
        sent = await client.send_session(uin, "psst", via_id=group.gid).done
        assert sent.status.value == "sent", sent
    # Two peers, one kept: the first peer's signature was dropped and fetched again.
    assert list(client._sending._c2c_sigs) == [(group.gid, uins[0])]
    assert [item["text"] for item in await world.control.sent()] == ["psst"] * 3


@pytest.mark.gen_test(timeout=30)
async def test_the_simulator_keeps_the_last_sent_max_sends_per_account(world, monkeypatch):
    import webqq.simulator.chat as chat
    monkeypatch.setattr(chat, "SENT_MAX", 2)
    client, _ = await online_client(world)
    for n in range(3):
        assert (await client.send_buddy(20001, "n%d" % n).done).status.value == "sent"
    assert [item["text"] for item in await world.control.sent()] == ["n1", "n2"]


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


@pytest.mark.gen_test(timeout=30)
async def test_kick_relinks_with_login2_and_stays_online(world):
    stream = RecordingStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file)
    client, events = await online_client(world, stream=stream)
    await world.control.call("kick", {"account": 10001})
    await events.online()
    assert events.states() == ["logging_in", "online", "relinking", "online"]
    assert stream.paths.count("/login") == 1 and stream.paths.count("/channel/login2") == 2
    await world.control.say(**{"from": 20001, "text": "still there?"})
    assert (await events.wait("message")).text == "still there?"


@pytest.mark.gen_test(timeout=30)
async def test_rotated_ptwebqq_is_kept_and_used_by_the_next_relink(world):
    client, events = await online_client(world)
    before = cookie_value(client.stream.cookiejar, "ptwebqq")
    await world.control.call("rotate", {"account": 10001})
    for _ in range(100):
        if cookie_value(client.stream.cookiejar, "ptwebqq") != before:
            break
        await gen.sleep(0.05)
    assert cookie_value(client.stream.cookiejar, "ptwebqq") != before
    # The simulator's login2 accepts only the current ptwebqq: a relink proves we use it.
    await world.control.call("kick", {"account": 10001})
    await events.online()
    assert "relogging" not in events.states()
    assert events.states()[-2:] == ["relinking", "online"]


@pytest.mark.gen_test(timeout=30)
async def test_session_refused_by_poll_logs_in_again(world):
    stream = RecordingStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file)
    client, events = await online_client(world, stream=stream)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "retcode",
                                       "retcode": 100006})
    await events.online()
    assert events.states() == ["logging_in", "online", "relogging", "online"]
    assert stream.paths.count("/login") == 2


@pytest.mark.gen_test(timeout=40)
async def test_outage_comes_back_online_with_exponential_backoff(world, io_loop):
    client, events = await online_client(world, backoff=0.2, backoff_max=1.6, jitter=0.25)
    went_offline = io_loop.time()
    await world.control.call("offline", {"seconds": 3})
    await events.wait("state", lambda e: e.new is State.RELINKING)
    await events.online(timeout=20)
    back = io_loop.time()
    tries = events.of("reconnect")
    assert len(tries) >= 3, tries
    assert [t.attempt for t in tries] == list(range(1, len(tries) + 1))
    for t in tries:                           # backoff * 2**(n-1), capped, minus jitter
        nominal = min(1.6, 0.2 * 2 ** (t.attempt - 1))
        assert nominal * 0.75 <= t.delay <= nominal
    for earlier, later in zip(tries, tries[1:]):
        assert later.at - earlier.at >= earlier.delay          # never sooner: no spinning
    # Back once the simulator listens again, at most one capped delay later.
    assert 3.0 <= back - went_offline <= 3.0 + 1.6 + 1.0
    await world.control.say(**{"from": 20001, "text": "back?"})
    assert (await events.wait("message")).text == "back?"


@pytest.mark.gen_test(timeout=30)
async def test_restart_resumes_the_saved_session_without_the_password_check(world):
    first, _ = await online_client(world)
    first.stop("restart")
    path = os.path.join(first.state_dir, "session-10001.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as saved:
        text = saved.read()
    assert PASSWORD not in text and json.loads(text)["qq"] == 10001
    stream = RecordingStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file)
    second = world.client(stream=stream, password="unused: the session is resumed")
    events = Recorder(second)
    second.start()
    online = await events.wait("online")
    assert online.resumed and events.states() == ["resuming", "online"]
    assert "/check" not in stream.paths and "/login" not in stream.paths
    assert second.contacts.friend(qq=20001) is not None
    await world.control.say(**{"from": 20001, "text": "after restart"})
    assert (await events.wait("message")).text == "after restart"


@pytest.mark.gen_test(timeout=30)
async def test_restart_with_a_session_the_server_refuses_logs_in_again(world):
    first, _ = await online_client(world)
    first.stop("restart")
    path = os.path.join(first.state_dir, "session-10001.json")
    with open(path) as saved:
        data = json.load(saved)
    for cookie in data["cookies"]:
        if cookie["name"] == "ptwebqq":
            cookie["value"] = "0" * 48                            # no longer the server's
    with open(path, "w") as saved:
        json.dump(data, saved)
    second = world.client()
    events = Recorder(second)
    second.start()
    online = await events.wait("online")
    assert not online.resumed
    assert events.states() == ["resuming", "logging_in", "online"]


@pytest.mark.gen_test(timeout=30)
async def test_messages_sent_while_offline_go_out_after_reconnect_in_order_once(world):
    client, events = await online_client(world)
    await world.control.call("offline", {"seconds": 1.5})
    await events.wait("state", lambda e: e.new is State.RELINKING)
    queued = [client.send_buddy(20001, "offline %d" % i) for i in range(3)]
    queued.append(client.send_group(30001, "offline group"))
    assert all(message.status.value == "queued" for message in queued)
    await events.online()
    for message in queued:
        assert (await message.done).status.value == "sent"
    log = await world.control.sent()
    assert [item["text"] for item in log] == \
        ["offline 0", "offline 1", "offline 2", "offline group"]
    assert [event.message.id for event in events.of("sent")] == [m.id for m in queued]


@pytest.mark.gen_test(timeout=30)
async def test_a_send_that_cannot_connect_waits_for_the_reconnect(world):
    client, events = await online_client(world)
    await world.control.call("offline", {"seconds": 1.0})
    message = client.send_buddy(20001, "sent into the outage")     # still ONLINE here
    assert (await message.done).status.value == "sent"
    assert [item["text"] for item in await world.control.sent()] == ["sent into the outage"]


@pytest.mark.gen_test(timeout=30)
async def test_queued_message_expires_after_its_ttl(world):
    client, events = await online_client(world, send_ttl=0.3)
    await world.control.call("offline", {"seconds": 2})
    await events.wait("state", lambda e: e.new is State.RELINKING)
    message = await client.send_buddy(20001, "too late").done
    assert (message.status.value, message.error) == ("failed", "expired")
    await events.online()
    assert await world.control.sent() == []


@pytest.mark.gen_test(timeout=30)
async def test_sends_keep_the_minimum_interval(world):
    client, events = await online_client(world, send_interval=0.5)
    queued = [client.send_buddy(20001, "rate %d" % i) for i in range(3)]
    queued.append(client.send_group(30001, "rate 2"))   # same text as before: 2 intervals
    for message in queued:
        assert (await message.done).status.value == "sent"
    times = [message.sent_at[0] for message in queued]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= 0.5 for gap in gaps[:2]), gaps
    assert gaps[2] >= 1.0, gaps
    log = await world.control.sent()
    assert [item["text"] for item in log] == ["rate 0", "rate 1", "rate 2", "rate 2"]


@pytest.mark.gen_test(timeout=30)
async def test_a_long_message_is_split_at_the_limit_on_character_boundaries(world):
    client, events = await online_client(world, max_text=50)
    text = "".join("第%d句话。" % i for i in range(30)) + "👍🏽" * 20
    message = await client.send_buddy(20001, text).done
    assert message.status.value == "sent" and len(message.parts) > 2
    assert all(len(part) <= 50 for part in message.parts)
    log = await world.control.sent()
    assert "".join(item["text"] for item in log) == text
    assert all(not part.startswith("\U0001F3FD") for part in message.parts)  # modifier kept


@pytest.mark.gen_test(timeout=30)
async def test_a_poll_answer_lost_in_a_reset_loses_no_message(world):
    client, events = await online_client(world)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "reset"})
    await world.control.say(**{"from": 20001, "text": "through the reset"})
    assert (await events.wait("message")).text == "through the reset"
    await world.control.say(**{"from": 20001, "text": "next"})
    assert (await events.wait("message")).text == "next"
    assert [e.text for e in events.of("message")] == ["through the reset", "next"]
    assert client.state is State.ONLINE


@pytest.mark.gen_test(timeout=30)
async def test_a_stalled_poll_makes_the_watchdog_relink(world):
    client, events = await online_client(world, stall_after=1.0)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "delay",
                                       "seconds": 4})
    changed = await events.wait("state", lambda e: e.new is State.RELINKING)
    assert "no poll answer" in changed.reason
    await events.online()


@pytest.mark.gen_test(timeout=30)
async def test_nothing_is_left_behind_after_stop(no_leaks, io_loop, tmp_path):
    from client_helpers import World
    w = World(io_loop, tmp_path)
    w.start_sim()
    try:
        client = w.client()
        events = Recorder(client)
        client.start()
        await events.online()
        await w.control.say(**{"from": 20001, "text": "hi"})
        await client.reply(await events.wait("message"), "bye").done
    finally:
        await w.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_start_while_the_server_is_down_logs_in_when_it_is_back(world, io_loop):
    await world.control.call("offline", {"seconds": 2.5})
    start = io_loop.time()
    stream = HTTPStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file,
                        retry=RetryPolicy(attempts=2, backoff=0.1))
    client = world.client(stream=stream, backoff=0.2, backoff_max=0.8, jitter=0)
    events = Recorder(client)
    client.start()
    await events.online()
    assert io_loop.time() - start >= 2.4
    tries = events.of("reconnect")
    assert tries and all(t.step == "login" for t in tries)
    assert [t.delay for t in tries][:3] == [0.2, 0.4, 0.8][:len(tries)]
    assert events.states() == ["logging_in", "online"]


@pytest.mark.gen_test(timeout=30)
async def test_another_login_of_the_account_kicks_this_one_offline(world, tmp_path):
    first, events = await online_client(world)
    second, _ = await online_client(world, state_dir=str(tmp_path / "elsewhere"))
    offline = await events.wait("state", lambda e: e.new is State.OFFLINE)
    assert "kicked" in offline.reason
    notice = await events.wait("notice")
    assert type(notice.event).__name__ == "Kick"
    assert second.state is State.ONLINE
    assert not os.path.exists(os.path.join(first.state_dir, "session-10001.json"))


@pytest.mark.gen_test(timeout=30)
async def test_poll_5xx_is_retried_by_the_stream_without_leaving_online(world):
    client, events = await online_client(world)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "status",
                                       "status": 502, "count": 2})
    await world.control.say(**{"from": 20001, "text": "after the 502s"})
    assert (await events.wait("message")).text == "after the 502s"
    assert events.states() == ["logging_in", "online"]


@pytest.mark.gen_test(timeout=30)
async def test_contacts_are_refreshed_periodically_and_after_a_relogin(world):
    client, events = await online_client(world, contacts_refresh=0.3)
    await events.wait("contacts")
    await events.wait("contacts")
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "retcode",
                                       "retcode": 103})
    await events.wait("state", lambda e: e.new is State.RELOGGING)
    await events.online()
    await events.wait("contacts")
    assert client.contacts.friend(name="Bob (work)").nick == "Bob"


@pytest.mark.gen_test(timeout=30)
async def test_a_send_to_an_unknown_friend_fails_at_once(world):
    client, events = await online_client(world)
    message = await client.send_buddy(99999, "nobody").done
    assert (message.status.value, message.error) == ("failed", "unknown buddy 99999")
    assert (await events.wait("sent")).message is message


@pytest.mark.gen_test(timeout=30)
async def test_instant_empty_poll_answers_do_not_make_the_client_spin(world):
    stream = RecordingStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file)
    client, events = await online_client(world, stream=stream)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "retcode",
                                       "retcode": 102, "count": 10})
    await world.control.call("kick", {"account": 10001})   # answers the held poll: 121
    await events.wait("state", lambda e: e.new is State.RELINKING)
    await events.online()
    while (await world.control.call("fault")):
        await gen.sleep(0.05)
    await world.control.say(**{"from": 20001, "text": "after ten instant 102s"})
    assert (await events.wait("message")).text == "after ten instant 102s"
    polls = [at for path, at in stream.sends if path == "/channel/poll2"][2:]
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert len(gaps) >= 10 and min(gaps[:9]) >= client.poll_hold / 10 - 0.01, gaps


@pytest.mark.gen_test(timeout=30)
async def test_logout_ends_the_session_and_forgets_it(world):
    client, events = await online_client(world)
    client.logout()
    assert client.state is State.STOPPED
    assert not os.path.exists(os.path.join(client.state_dir, "session-10001.json"))
    for _ in range(50):
        state = (await world.control.call("state"))["accounts"]["10001"]["state"]
        if state != "online":
            break
        await gen.sleep(0.05)
    assert state != "online"


@pytest.mark.gen_test(timeout=30)
async def test_a_session_refused_at_every_poll_climbs_the_ladder_instead_of_storming(world):
    client, events = await online_client(world, backoff=0.2, jitter=0)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "retcode",
                                       "retcode": 121, "count": 3})
    for _ in range(3):
        await events.wait("state", lambda e: e.new is State.RELINKING)
        await events.online()
    # The first relink runs at once; the next ones wait 0.4 s, then 0.8 s.
    assert [(t.step, t.attempt, t.delay) for t in events.of("reconnect")] == \
        [("relink", 2, 0.4), ("relink", 3, 0.8)]
    await world.control.say(**{"from": 20001, "text": "calm again"})
    assert (await events.wait("message")).text == "calm again"
    assert client._attempt == 0


@pytest.mark.gen_test(timeout=30)
async def test_send_results_sent_failed_with_retcode_and_ambiguous(world):
    client, events = await online_client(world)
    path = "/channel/send_buddy_msg2"
    await world.control.call("fault", {"path": path, "kind": "retcode", "retcode": 114})
    refused = await client.send_buddy(20001, "refused").done
    assert (refused.status.value, refused.retcode) == ("failed", 114)
    # Delivered, its answer lost: the client cannot know, says so, and does not resend.
    await world.control.call("fault", {"path": path, "kind": "reset", "when": "after"})
    lost = await client.send_buddy(20001, "answer lost").done
    assert lost.status.value == "ambiguous" and "may have arrived" in lost.error
    # A 502 from before the server handled it looks the same from here: ambiguous too.
    await world.control.call("fault", {"path": path, "kind": "status", "status": 502,
                                       "when": "before"})
    gateway = await client.send_buddy(20001, "bad gateway").done
    assert (gateway.status.value, gateway.retcode) == ("ambiguous", None)
    # Refused with 503 (twice): certainly not processed, so it goes again.
    await world.control.call("fault", {"path": path, "kind": "status", "status": 503,
                                       "count": 2})
    busy = await client.send_buddy(20001, "after a busy spell").done
    assert busy.status.value == "sent"
    delivered = [item["text"] for item in await world.control.sent() if not item["dropped"]]
    assert delivered == ["answer lost", "after a busy spell"]
    assert [e.message.status.value for e in events.of("sent")] == \
        ["failed", "ambiguous", "ambiguous", "sent"]
    assert await world.control.call("dropped?account=10001") == []


@pytest.mark.gen_test(timeout=30)
async def test_a_send_refused_for_a_dead_session_is_sent_again_after_a_relink(world):
    client, events = await online_client(world)
    await world.control.call("fault", {"path": "/channel/send_qun_msg2", "kind": "retcode",
                                       "retcode": 108})
    message = await client.send_group(30001, "once, after the relink").done
    assert message.status.value == "sent"
    assert "relinking" in events.states() and client.state is State.ONLINE
    assert [item["text"] for item in await world.control.sent()] == ["once, after the relink"]


@pytest.mark.gen_test(timeout=30)
async def test_a_send_refused_108_relinks_first_and_keeps_what_was_queued(world):
    # A kicked session answers sends 108 before its poll says 121: a relink (the same
    # client) keeps the server's queue, which a fresh login would not find.
    client, events = await online_client(world)
    await world.control.call("fault", {"path": "/channel/send_buddy_msg2", "kind": "retcode",
                                       "retcode": 108})
    message = await client.send_buddy(20001, "after the relink").done
    assert message.status.value == "sent"
    assert "relinking" in events.states() and "relogging" not in events.states()
    await world.control.say(**{"from": 20001, "text": "still here"})
    assert (await events.wait("message")).text == "still here"


@pytest.mark.gen_test(timeout=30)
async def test_friend_list_finds_the_hash_variant_the_server_wants(io_loop, tmp_path):
    from client_helpers import World

    from webqq.simulator.world import DEFAULT_WORLD_FILE
    with open(DEFAULT_WORLD_FILE) as source:
        description = json.load(source)
    description["options"].update(friends_hash="P", friends_hash_required=True)
    w = World(io_loop, tmp_path)
    w.start_sim(world=description)
    try:
        client, events = await online_client(w)
        assert client.contacts.friend(name="Alice") is not None
        assert client._loader.hash_variant == "P"
    finally:
        await w.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_era_b_login_with_login_sig_and_check_sig(io_loop, tmp_path):
    from client_helpers import World

    from webqq.qq import Era
    from webqq.simulator.world import DEFAULT_WORLD_FILE
    with open(DEFAULT_WORLD_FILE) as source:
        description = json.load(source)
    description["options"]["era"] = "B"
    w = World(io_loop, tmp_path)
    w.start_sim(world=description)
    try:
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        client, events = await online_client(w, stream=stream, era=Era.B)
        assert stream.paths[:3] == ["/cgi-bin/login", "/check", "/login"]
        assert "/check_sig" in stream.paths
        assert client.contacts.friend(name="Alice") is not None  # s.web2 took p_skey
        await w.control.say(**{"from": 20001, "text": "era B"})
        message = await events.wait("message")
        assert (await client.reply(message, "era B reply").done).status.value == "sent"
    finally:
        await w.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_a_wrong_verify_code_brings_a_new_captcha(world):
    await world.control.call("captcha", {"account": 10001, "code": "ABCD"})
    client = world.client()
    events = Recorder(client)
    client.start()
    await events.wait("captcha")
    client.enter_verify_code("WXYZ")
    failed = await events.wait("login_failed")
    assert not failed.final and "WRONG_VERIFYCODE" in str(failed.error)
    await events.wait("captcha")                    # check again: a new image to read
    client.enter_verify_code("ABCD")
    await events.online()


@pytest.mark.gen_test(timeout=30)
async def test_a_session_resumed_after_a_crash_never_reuses_a_msg_id(world, tmp_path):
    # The server takes a known msg_id with the same text for a repeat and drops it, so
    # a resumed session must start past every id the crashed one may have used.
    state_dir = str(tmp_path / "state")
    first = world.client(state_dir=state_dir)
    events = Recorder(first)
    first.start()
    await events.online()
    assert (await first.send_buddy(20001, "pong").done).status.value == "sent"
    used = first._sending.msg_id
    first._save_session = lambda: None       # a crash: stop() cannot save anything
    first.stop("crash")
    second = world.client(state_dir=state_dir)
    resumed = Recorder(second)
    second.start()
    await resumed.online()
    assert resumed.states()[0] == "resuming"
    assert (await second.send_buddy(20001, "pong").done).status.value == "sent"
    assert second._sending.msg_id > used
    delivered = [item["text"] for item in await world.control.sent() if not item["dropped"]]
    assert delivered == ["pong", "pong"]


@pytest.mark.gen_test(timeout=30)
async def test_stop_during_a_send_reports_it_ambiguous(world):
    client = world.client()
    events = Recorder(client)
    client.start()
    await events.online()
    await world.control.call("fault", {"path": "/channel/send_buddy_msg2", "kind": "delay",
                                       "seconds": 0.5})
    message = client.send_buddy(20001, "in flight at stop")
    while not client.send_queue._in_flight:       # on its way to the server
        await asyncio.sleep(0.01)
    client.stop("operator stop")
    finished = await message.done
    assert finished.status.value == "ambiguous"
    assert finished.error == "client stopped while it was being sent"


@pytest.mark.gen_test(timeout=30)
async def test_a_restart_during_the_contact_load_loads_them_again(world):
    await world.control.call("fault", {"path": "/api/get_group_info_ext2", "kind": "delay",
                                       "seconds": 2.0})
    client = world.client(resume=False)
    events = Recorder(client)
    client.start()
    while client._loading_contacts is None:   # the load is running, held by the server
        await asyncio.sleep(0.01)
    client.stop("operator restart")
    client.start()
    await events.online()
    assert len(client.contacts.friends) == 3
    assert (await client.send_buddy(20001, "hello after restart").done).status.value == "sent"
