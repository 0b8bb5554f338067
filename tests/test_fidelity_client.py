"""The client against worlds as strict as the 2013 server (issue 13): the era of the
login, the discussion list's two URLs, the friend-list hash, lazy QQ-number lookups and
sends that keep clear of the server's silent drops."""
import contextlib
import logging

import pytest
from client_helpers import RecordingStream, World, online_client
from simulator_helpers import default_world

from webqq.qq import Era


@contextlib.asynccontextmanager
async def world_of(io_loop, tmp_path, **options):
    """A simulator whose world is the built-in one with ``options``."""
    w = World(io_loop, tmp_path)
    w.start_sim(world=default_world(**options))
    try:
        yield w
    finally:
        await w.aclose()


# --- 1. the era of the login -------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("era", ["A", "B"])
async def test_auto_era_logs_in_the_way_the_login_page_shows(io_loop, tmp_path, caplog,
                                                              era):
    caplog.set_level(logging.INFO, "webqq.client")
    async with world_of(io_loop, tmp_path, era=era) as w:
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        client, events = await online_client(w, stream=stream, era=None)
        assert client._flow.login_era is Era(era)
        assert stream.paths[:3] == ["/cgi-bin/login", "/check", "/login"]
        assert ("/check_sig" in stream.paths) == (era == "B")
        assert ("logging in the %s way (Era %s)" % (
            "late-2013" if era == "B" else "spring-2013", era)) in caplog.text
        await w.control.say(**{"from": 20001, "text": "which era?"})
        message = await events.wait("message")
        assert (await client.reply(message, "era %s" % era).done).status.value == "sent"


@pytest.mark.gen_test(timeout=30)
async def test_auto_era_logs_in_the_era_a_way_when_the_login_page_fails(io_loop, tmp_path):
    async with world_of(io_loop, tmp_path) as w:
        await w.control.call("fault", {"path": "/cgi-bin/login", "kind": "status",
                                       "status": 404})
        client, _events = await online_client(w, era=None)
        assert client._flow.login_era is Era.A


# --- 3. the discussion list's two URLs ---------------------------------------------------

@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("served, asked", [
    ("both", ["/channel/get_discu_list_new2"]),
    ("d.web2", ["/channel/get_discu_list_new2"]),
    ("s.web2", ["/channel/get_discu_list_new2", "/api/get_discus_list"]),
])
async def test_discussions_load_from_whichever_url_the_world_serves(io_loop, tmp_path,
                                                                     served, asked):
    async with world_of(io_loop, tmp_path, discussion_list=served) as w:
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        client, events = await online_client(w, stream=stream)
        assert [d.name for d in client.contacts.discussions.values()] == ["good day"]
        assert [p for p in stream.paths if "discu" in p and "info" not in p] == asked
        await w.control.say(**{"from": 20003, "discussion": 40001, "text": "found us"})
        message = await events.wait("message")
        assert message.discussion is not None and message.discussion.name == "good day"


@pytest.mark.gen_test(timeout=30)
async def test_the_log_says_when_neither_discussion_list_answers(io_loop, tmp_path, caplog):
    async with world_of(io_loop, tmp_path) as w:
        for path in ("/channel/get_discu_list_new2", "/api/get_discus_list"):
            await w.control.call("fault", {"path": path, "kind": "status", "status": 500})
        client, _events = await online_client(w)
        assert client.contacts.discussions == {}
        assert "neither discussion list answered (d.web2: HTTPStreamError: HTTP 500" in \
            caplog.text and "going on without discussions" in caplog.text
        assert client.contacts.friend(name="Alice") is not None


# --- 4. the friend-list hash -------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_friend_list_tries_the_next_hash_after_any_refusal(io_loop, tmp_path):
    # Not only 50: a server refusing a hash it no longer takes said other things too.
    async with world_of(io_loop, tmp_path, friends_hash="O",
                        friends_hash_required=True) as w:
        await w.control.call("fault", {"path": "/api/get_user_friends2", "kind": "retcode",
                                       "retcode": 100101})
        client, _events = await online_client(w)
        assert client.contacts.friend(name="Alice") is not None
        assert client._loader.hash_variant == "O"


@pytest.mark.gen_test(timeout=30)
async def test_the_hash_variant_that_worked_is_kept_in_the_saved_session(io_loop, tmp_path):
    async with world_of(io_loop, tmp_path, friends_hash="P",
                        friends_hash_required=True) as w:
        state_dir = str(tmp_path / "state")
        first, _events = await online_client(w, state_dir=state_dir)
        first.stop("restart")
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        second, events = await online_client(w, state_dir=state_dir, stream=stream)
        assert events.states()[0] == "resuming"
        assert stream.paths.count("/api/get_user_friends2") == 1   # P, straight away
        assert second.contacts.friend(name="Alice") is not None


# --- 6. QQ numbers looked up when needed -------------------------------------------------

LOOKUP = "/api/get_friend_uin2"


def with_strangers(**options):
    """The built-in world, and in its group 30001 Eve (20005), whom the bot has in no
    list but the group's; Dave (20004), a friend of the bot's, too."""
    description = default_world(**options)
    description["people"] += [{"qq": 20004, "nick": "Dave"}, {"qq": 20005, "nick": "Eve"}]
    description["accounts"][0]["friends"].append({"qq": 20004})
    description["groups"][0]["members"].append({"qq": 20005})
    return description


@contextlib.asynccontextmanager
async def strange_world(io_loop, tmp_path, **options):
    w = World(io_loop, tmp_path)
    w.start_sim(world=with_strangers(**options))
    try:
        yield w
    finally:
        await w.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_numbers_are_looked_up_when_a_message_needs_one_and_kept_across_a_restart(
        io_loop, tmp_path):
    async with strange_world(io_loop, tmp_path) as w:
        state_dir = str(tmp_path / "state")
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        client, events = await online_client(w, state_dir=state_dir, stream=stream)
        # At login: the friends and the group whose numbers no list carries (Bob, Dave,
        # the group); never the members. Alice's came free with the discussion.
        assert stream.paths.count(LOOKUP) == 3
        assert client.contacts.friend(name="Alice").qq == 20001
        assert client.contacts.friend(name="Dave").qq == 20004
        assert client.contacts.group(number=30001).name == "测试群"
        # Eve is in no list but the group's: one lookup, when her message needs it.
        await w.control.say(**{"from": 20005, "group": 30001, "text": "from Eve"})
        eve = await events.wait("message")
        assert (eve.sender.qq, eve.sender.name, eve.group.number) == (20005, "Eve", 30001)
        await w.control.say(**{"from": 20005, "group": 30001, "text": "Eve again"})
        assert (await events.wait("message")).sender.qq == 20005
        assert stream.paths.count(LOOKUP) == 4
        client.stop("restart")
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        again, events = await online_client(w, state_dir=state_dir, stream=stream)
        assert events.states()[0] == "resuming"
        await w.control.say(**{"from": 20005, "group": 30001, "text": "Eve, resumed"})
        assert (await events.wait("message")).sender.qq == 20005
        assert again.contacts.friend(qq=20004) is not None
        assert stream.paths.count(LOOKUP) == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_message_waiting_for_a_lookup_keeps_its_place(io_loop, tmp_path):
    async with strange_world(io_loop, tmp_path) as w:
        client, events = await online_client(w)
        await w.control.call("fault", {"path": LOOKUP, "kind": "delay", "seconds": 0.5})
        await w.control.say(**{"from": 20005, "group": 30001, "text": "first, from Eve"})
        await w.control.say(**{"from": 20001, "text": "second, from Alice"})
        first = await events.wait("message")
        second = await events.wait("message")
        assert (first.text, first.sender.qq) == ("first, from Eve", 20005)
        assert (second.text, second.sender.qq) == ("second, from Alice", 20001)


@pytest.mark.gen_test(timeout=30)
async def test_a_send_to_a_number_no_contact_has_yet_finds_the_friend(io_loop, tmp_path):
    async with world_of(io_loop, tmp_path) as w:
        await w.control.call("fault", {"path": LOOKUP, "kind": "status", "status": 500})
        client, _events = await online_client(w)            # Bob's lookup failed
        assert client.contacts.friend(qq=20002) is None
        message = await client.send_buddy(20002, "found you").done
        assert message.status.value == "sent"
        assert [(m["to"], m["text"]) for m in await w.control.sent()] == [(20002,
                                                                            "found you")]


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_lookup_stops_the_lookups_for_a_while_and_says_so(io_loop, tmp_path,
                                                                          caplog):
    async with strange_world(io_loop, tmp_path, lookup_limit=1) as w:
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        client, events = await online_client(w, stream=stream)
        # Bob's number came; Dave's was refused (99999), and nothing more was asked.
        assert "refused a lookup (99999): no more QQ-number lookups for 600 s" in caplog.text
        assert stream.paths.count(LOOKUP) == 2
        assert client.contacts.friend(name="Dave").qq is None
        await w.control.say(**{"from": 20005, "group": 30001, "text": "from Eve"})
        eve = await events.wait("message")
        assert (eve.text, eve.sender.qq, eve.sender.name) == ("from Eve", None, "Eve")
        failed = await client.send_buddy(20004, "to Dave").done
        assert (failed.status.value, failed.error) == ("failed", "unknown buddy 20004")
        assert stream.paths.count(LOOKUP) == 2


# --- 5. sends that keep clear of the server's silent drops -------------------------------

SEND = "/channel/send_buddy_msg2"


def test_a_send_interval_under_half_a_second_is_refused(tmp_path):
    from webqq.client.client import WebQQClient
    from webqq.http_stream import HTTPStream
    stream = HTTPStream()
    try:
        with pytest.raises(ValueError, match="under 0.5 s: the server silently dropped"):
            WebQQClient(10001, "pw", stream, str(tmp_path), send_interval=0.1)
    finally:
        stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_sends_keep_clear_of_the_2013_drops_even_across_a_crash(world, tmp_path):
    # The default world drops a send 0.5 s after the previous one and a copy within 1 s.
    state_dir = str(tmp_path / "state")
    first, _events = await online_client(world, state_dir=state_dir)
    texts = ["one", "one", "two", "one", "two", "two"]
    for message in [first.send_buddy(20001, text) for text in texts]:
        assert (await message.done).status.value == "sent"
    first._save_session = lambda: None          # a crash: nothing more is saved
    first.stop("crash")
    second, events = await online_client(world, state_dir=state_dir)
    assert events.states()[0] == "resuming"
    assert (await second.send_buddy(20001, "two").done).status.value == "sent"
    assert await world.control.call("dropped?account=10001") == []
    assert [m["text"] for m in await world.control.sent()] == texts + ["two"]


@pytest.mark.gen_test(timeout=30)
async def test_resend_ambiguous_sends_a_part_of_unknown_fate_again(world):
    client, events = await online_client(world, resend_ambiguous=True)
    await world.control.call("fault", {"path": SEND, "kind": "reset", "when": "after"})
    twice = await client.send_buddy(20001, "delivered, answer lost").done
    await world.control.call("fault", {"path": SEND, "kind": "status", "status": 502,
                                       "when": "before"})
    once = await client.send_buddy(20001, "not delivered, 502").done
    assert (twice.status.value, once.status.value) == ("sent", "sent")
    sent = await world.control.sent()
    # At least once: the first arrived twice, under one msg_id; the second once.
    assert [m["text"] for m in sent] == ["delivered, answer lost"] * 2 + [
        "not delivered, 502"]
    assert sent[0]["msg_id"] == sent[1]["msg_id"]
    assert await world.control.call("dropped?account=10001") == []


@pytest.mark.gen_test(timeout=30)
async def test_an_ambiguous_send_is_reported_in_the_log_and_the_event(world, caplog):
    client, events = await online_client(world)
    await world.control.call("fault", {"path": SEND, "kind": "reset", "when": "after"})
    message = await client.send_buddy(20001, "fate unknown").done
    finished = await events.wait("sent")
    assert finished.message is message and message.status.value == "ambiguous"
    assert "to buddy 20001 ('fate unknown') ambiguous: its fate is unknown, so it was not " \
        "sent again (it may have arrived): ConnectionClosedError" in caplog.text
    assert [m["text"] for m in await world.control.sent()] == ["fate unknown"]


@pytest.mark.gen_test(timeout=30)
async def test_the_interval_runs_from_the_answer_so_a_slow_send_is_not_followed_too_soon(
        world):
    # The first send reaches the server 0.4 s late; counted from when it left, the next
    # one would reach it 0.1 s after it, and vanish.
    client, _events = await online_client(world)
    await world.control.call("fault", {"path": SEND, "kind": "delay", "seconds": 0.4})
    late, on_time = client.send_buddy(20001, "late"), client.send_buddy(20001, "on time")
    assert [(await m.done).status.value for m in (late, on_time)] == ["sent", "sent"]
    assert await world.control.call("dropped?account=10001") == []


def test_the_session_file_keeps_numbers_and_the_hash_variant(tmp_path, caplog):
    import json as json_module
    from pathlib import Path

    from webqq.client.session import SavedSession, load_session, save_session
    session = SavedSession(qq=10001, clientid=12345678, psessionid="p" * 8, vfwebqq="v" * 8,
                           msg_id=7, numbers=[[3105574629, 20002], [-1943205136, 30001]],
                           hash_variant="P")
    path = Path(save_session(str(tmp_path), session))
    loaded = load_session(str(tmp_path), 10001)
    assert (loaded.numbers, loaded.hash_variant) == ([[3105574629, 20002],
                                                      [-1943205136, 30001]], "P")
    data = json_module.loads(path.read_text())
    del data["numbers"], data["hash_variant"]             # a file of before issue 13
    path.write_text(json_module.dumps(data))
    assert (load_session(str(tmp_path), 10001).numbers,
            load_session(str(tmp_path), 10001).hash_variant) == ([], None)
    for bad in ({"numbers": [[1, "x"]]}, {"hash_variant": "Z"}):
        path.write_text(json_module.dumps(dict(data, **bad)))
        assert load_session(str(tmp_path), 10001) is None       # moved aside, logged
    assert "Unusable session file" in caplog.text


@pytest.mark.gen_test
async def test_a_stop_while_a_part_of_unknown_fate_waits_to_go_again_is_ambiguous(io_loop):
    from webqq.client.send_queue import Outcome, SendQueue
    transmits = []
    queue = SendQueue(io_loop, lambda message, part, done: transmits.append(done),
                      lambda: True, lambda message: None)
    message = queue.put("buddy", ("qq", 20001), "maybe", ["maybe"])
    message.resent = 1                           # resend_ambiguous: it goes again soon
    transmits[0](Outcome.NOT_SENT, retry_in=5.0)
    queue.close("client stopped")
    assert (message.status.value, message.error) == (
        "ambiguous", "client stopped while it was being sent")


@pytest.mark.gen_test(timeout=30)
async def test_a_relogin_is_the_same_client_and_finds_what_was_queued_meanwhile(world):
    # pual_bot and twqq drew their clientid once ("random, fixed"); a relogin with it
    # is the same client to the server, which keeps the session's queue for it.
    client, events = await online_client(world)
    clientid = client._link.clientid
    await world.control.call("fault", {"path": "/channel/login2", "kind": "retcode",
                                       "retcode": 103})
    await world.control.call("fault", {"path": "/login", "kind": "delay", "seconds": 1.0})
    await world.control.call("kick", {"account": 10001})
    await events.wait("state", lambda e: e.new.value == "relogging")
    await world.control.say(**{"from": 20001, "text": "said while it was away"})
    assert (await events.wait("message")).text == "said while it was away"
    assert client._link.clientid == clientid


@pytest.mark.gen_test(timeout=30)
async def test_a_wrong_web_client_122_logs_in_again_as_another_client(world):
    client, events = await online_client(world)
    clientid = client._link.clientid
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "retcode",
                                       "retcode": 122})
    await events.wait("state", lambda e: e.new.value == "relogging")
    await events.online()
    assert client._link.clientid != clientid
