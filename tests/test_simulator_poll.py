"""poll2 and sends against the simulator (docs/protocol.rst §3.15 - §3.23, §5, §7).

A held poll is observed through the ``held_polls`` fixture (the simulator reports each
poll it holds), never by sleeping. Hold times are a fraction of a second.
"""
import json
import socket
import time

import pytest
from tornado.tcpclient import TCPClient

from simulator_helpers import Browser, default_world, in_thread, next_held, start_simulator

D_REFERER = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"


def items(reply, poll_type=None) -> list:
    body = reply.json()
    assert body["retcode"] == 0, body
    return [i for i in body["result"] if poll_type is None or i["poll_type"] == poll_type]


async def say(browser, **body):
    reply = await in_thread(browser.control, "say", body)
    assert reply.status == 200, reply.text
    return reply.json()["item"]


@pytest.mark.gen_test
async def test_poll_is_held_then_answers_102(sim, browser):
    await in_thread(browser.sign_in, 10001)
    started = time.monotonic()
    reply = await in_thread(browser.poll)
    assert time.monotonic() - started >= sim.poll_hold * 0.9
    assert reply.text == '{"retcode":102,"errmsg":""}'


@pytest.mark.gen_test
async def test_held_poll_answers_as_soon_as_a_message_arrives(sim, browser, held_polls):
    await in_thread(browser.sign_in, 10001)
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    item = await say(browser, to=10001, **{"from": 20001}, text="hi")
    reply = await poll
    assert reply.json() == {"retcode": 0, "result": [item]}
    value = item["value"]
    assert item["poll_type"] == "message"
    assert list(value) == ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                           "time", "content"]
    assert value["from_uin"] == sim.world.uin(10001, 20001) and value["to_uin"] == 10001
    assert value["msg_type"] == 9
    assert value["content"] == [["font", {"size": 10, "color": "000000", "style": [0, 0, 0],
                                          "name": "宋体"}], "hi"]
    assert "\\u5B8B\\u4F53" in reply.text                       # §1.3 upper-case escapes


@pytest.mark.gen_test
async def test_messages_delivered_once_in_order(sim, browser):
    await in_thread(browser.sign_in, 10001)
    sent = [await say(browser, to=10001, **{"from": 20001}, text=str(n)) for n in range(3)]
    got = items(await in_thread(browser.poll))
    assert got == sent[::-1]                    # newest first, as webqq-core and lwqq read it
    assert [i["value"]["msg_id"] for i in got] == sorted((i["value"]["msg_id"] for i in got),
                                                         reverse=True)
    assert (await in_thread(browser.poll)).json()["retcode"] == 102  # nothing twice


@pytest.mark.gen_test
async def test_listeners_are_told_of_each_poll_answer_written(sim, browser):
    told = []
    sim.backend.listeners.append(lambda kind, **fields: told.append((kind, fields)))
    await in_thread(browser.sign_in, 10001)
    said = await say(browser, to=10001, **{"from": 20001}, text="timed")
    assert items(await in_thread(browser.poll)) == [said]
    answered = [fields for kind, fields in told if kind == "answered"]
    assert answered == [{"qq": 10001, "body": {"retcode": 0, "result": [said]}}]


@pytest.mark.gen_test
async def test_a_session_keeps_queue_max_events_for_its_polls(sim, browser, monkeypatch):
    import webqq.simulator.session as session
    monkeypatch.setattr(session, "QUEUE_MAX", 2)
    await in_thread(browser.sign_in, 10001)
    sent = [await say(browser, to=10001, **{"from": 20001}, text=str(n)) for n in range(3)]
    assert items(await in_thread(browser.poll)) == sent[:0:-1]     # the first was dropped


@pytest.mark.gen_test
async def test_oldest_first_world_option(io_loop, request):
    sim = start_simulator(io_loop, request, world=default_world(poll_order="oldest_first"))
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    sent = [await say(browser, to=10001, **{"from": 20001}, text=str(n)) for n in range(3)]
    assert items(await in_thread(browser.poll)) == sent


@pytest.mark.gen_test
async def test_two_sessions_in_one_group_see_each_other(sim, held_polls):
    alice_bot, other_bot = Browser(sim), Browser(sim)
    await in_thread(alice_bot.sign_in, 10001, "11111111")
    await in_thread(other_bot.sign_in, 10002, "22222222")
    # 10001 is 10002's friend: it was told that 10002 came online.
    status = items(await in_thread(alice_bot.poll), "buddies_status_change")
    assert status == [{"poll_type": "buddies_status_change",
                       "value": {"uin": sim.world.uin(10001, 10002), "status": "online",
                                 "client_type": 41}}]
    group = sim.world.groups[30001]
    poll = in_thread(other_bot.poll)
    await next_held(held_polls, 10002)
    assert (await in_thread(alice_bot.send, "send_qun_msg2", {"group_uin": str(group.gid)},
                            ["hi all ", ["face", 14]])).json() == {"retcode": 0, "result": "ok"}
    [item] = items(await poll)
    value = item["value"]
    assert item["poll_type"] == "group_message"
    assert list(value) == ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                           "group_code", "send_uin", "seq", "time", "info_seq", "content"]
    assert (value["from_uin"], value["group_code"], value["info_seq"]) == (group.gid, group.code, 30001)
    assert value["send_uin"] == sim.world.uin(10002, 10001) and value["to_uin"] == 10002
    assert value["content"] == [["font", {"size": 10, "color": "000000", "style": [0, 0, 0],
                                          "name": "Monospace"}], "hi all ", ["face", 14]]
    # The sender is not echoed its own message; the other bot answers by buddy message.
    poll = in_thread(alice_bot.poll)
    await next_held(held_polls, 10001)
    await in_thread(other_bot.send, "send_buddy_msg2", {"to": sim.world.uin(10002, 10001),
                                                        "face": 564})
    [item] = items(await poll)
    assert item["poll_type"] == "message" and item["value"]["content"][1] == "hello"
    sent = (await in_thread(alice_bot.control, "sent?account=10001")).json()
    assert sent == [{"kind": "group", "to": 30001, "text": "hi all ", "msg_id": 21870001,
                     "time": sent[0]["time"], "content": ["hi all ", ["face", 14]],
                     "dropped": None, "pictures": []}]


@pytest.mark.gen_test
async def test_answer_lost_in_a_reset_is_delivered_again(sim, browser):
    await in_thread(browser.sign_in, 10001)
    item = await say(browser, to=10001, **{"from": 20001}, text="keep me")
    await in_thread(browser.control, "fault", {"path": "/channel/poll2", "kind": "reset"})
    with pytest.raises((ConnectionError, OSError)):
        await in_thread(browser.poll)
    assert items(await in_thread(browser.poll)) == [item]


@pytest.mark.gen_test
async def test_client_gone_during_hold_loses_nothing(sim, browser, held_polls):
    session = await in_thread(browser.sign_in, 10001)
    r = json.dumps({"clientid": int(session["clientid"]), "psessionid": session["psessionid"]})
    body = ("r=" + r).encode()
    cookie = "; ".join("%s=%s" % (c.name, c.value) for c in browser.jar)
    stream = await TCPClient().connect("127.0.0.1", sim.port)
    await stream.write(b"POST /channel/poll2 HTTP/1.1\r\nHost: d.web2.qq.com\r\nReferer: %s\r\n"
                       b"Cookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       b"Content-Length: %d\r\n\r\n%s"
                       % (D_REFERER.encode(), cookie.encode(), len(body), body))
    await next_held(held_polls, 10001)
    held = sim.backend.sessions.get(10001).pending
    stream.close()
    assert await held is None           # the server noticed the close: nothing was taken
    item = await say(browser, to=10001, **{"from": 20001}, text="after the close")
    assert items(await in_thread(browser.poll)) == [item]


@pytest.mark.gen_test
async def test_newer_poll_supersedes_the_held_one(sim, browser, held_polls):
    await in_thread(browser.sign_in, 10001)
    first = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    second = in_thread(browser.poll)
    assert (await first).json() == {"retcode": 102, "errmsg": ""}
    await next_held(held_polls, 10001)
    item = await say(browser, to=10001, **{"from": 20002}, text="to the newest")
    assert items(await second) == [item]


@pytest.mark.gen_test
async def test_kick_with_notice_then_121_and_relink(sim, browser, held_polls):
    session = await in_thread(browser.sign_in, 10001)
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    await in_thread(browser.control, "kick", {"account": 10001, "kick_message": True})
    [notice] = items(await poll)
    assert notice["poll_type"] == "kick_message"
    assert list(notice["value"]) == ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type",
                                     "reply_ip", "show_reason", "reason"]
    assert notice["value"]["from_uin"] == 10000 and notice["value"]["msg_type"] == 48
    assert (await in_thread(browser.poll)).text == '{"retcode":121,"t":"0"}'
    assert (await in_thread(browser.send, "send_buddy_msg2", {"to": 1})).json()["retcode"] == 108
    # A message queued while kicked waits for the relink of the same client.
    item = await say(browser, to=10001, **{"from": 20001}, text="while away")
    assert (await in_thread(browser.login2, session["clientid"])).json()["retcode"] == 0
    assert items(await in_thread(browser.poll)) == [item]


@pytest.mark.gen_test
async def test_login_from_another_client_kicks_the_first(sim):
    first, second = Browser(sim), Browser(sim)
    await in_thread(first.sign_in, 10001, "11111111")
    await in_thread(second.sign_in, 10001, "22222222")
    assert items(await in_thread(first.poll))[0]["poll_type"] == "kick_message"
    assert (await in_thread(first.poll)).json() == {"retcode": 121, "t": "0"}
    state = (await in_thread(first.control, "state")).json()["accounts"]["10001"]
    assert state["state"] == "online" and state["clientid"] == "22222222"


@pytest.mark.gen_test
async def test_logout_answers_the_held_poll_109(sim, browser, held_polls):
    await in_thread(browser.sign_in, 10001)
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    assert (await in_thread(browser.channel_get, "logout2", ids="")).json() == {
        "retcode": 0, "result": "ok"}
    assert (await poll).json() == {"retcode": 109, "errmsg": ""}
    assert (await in_thread(browser.poll)).json() == {"retcode": 103, "errmsg": ""}
    state = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert state["state"] == "logged_out"


@pytest.mark.gen_test
async def test_rotate_every_and_idle_expiry(io_loop, request):
    now = [1366948800.0]
    sim = start_simulator(io_loop, request, clock=lambda: now[0],
                          world=default_world(rotate_every=2, idle_expiry=300))
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    await say(browser, to=10001, **{"from": 20001}, text="first")
    assert len(items(await in_thread(browser.poll))) == 1
    assert (await in_thread(browser.poll)).json()["retcode"] == 116     # every 2nd poll
    now[0] += 301
    assert (await in_thread(browser.poll)).json() == {"retcode": 121, "t": "0"}
    state = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert state["state"] == "expired"


@pytest.mark.gen_test
async def test_session_message_via_c2c_sig(sim):
    bot, other = Browser(sim), Browser(sim)
    await in_thread(bot.sign_in, 10001, "11111111")
    await in_thread(other.sign_in, 10002, "22222222")
    group = sim.world.groups[30001]
    peer = sim.world.uin(10001, 10002)
    sig = (await in_thread(bot.channel_get, "get_c2cmsg_sig2", id=group.gid, to_uin=peer,
                           service_type=0)).json()
    assert sig["retcode"] == 0 and len(sig["result"]["value"]) == 96
    assert sig["result"]["flags"] == {"text": 1, "pic": 1, "file": 1, "audio": 1, "video": 1}
    assert (await in_thread(bot.send, "send_sess_msg2", {"to": peer, "group_sig": "bad",
                                                         "service_type": 0})).json()["retcode"] == 108
    assert (await in_thread(bot.send, "send_sess_msg2", {"to": peer, "face": 564,
                                                         "group_sig": sig["result"]["value"],
                                                         "service_type": 0})).json()["retcode"] == 0
    [item] = items(await in_thread(other.poll), "sess_message")
    assert item["value"]["id"] == group.gid and item["value"]["ruin"] == 10001
    assert item["value"]["from_uin"] == sim.world.uin(10002, 10001)
    assert item["value"]["service_type"] == 0 and item["value"]["msg_type"] == 140
    stranger = sim.world.uin(10001, 20003)                              # not in the group
    assert (await in_thread(bot.channel_get, "get_c2cmsg_sig2", id=group.gid, to_uin=stranger,
                            service_type=0)).json() == {"retcode": 100001}


@pytest.mark.gen_test
async def test_a_session_keeps_session_sigs_max_c2c_sigs(sim, monkeypatch):
    import webqq.simulator.chat as chat
    monkeypatch.setattr(chat, "SESSION_SIGS_MAX", 1)
    bot = Browser(sim)
    await in_thread(bot.sign_in, 10001, "11111111")
    group, peer = sim.world.groups[30001], sim.world.uin(10001, 10002)
    sigs = [(await in_thread(bot.channel_get, "get_c2cmsg_sig2", id=group.gid, to_uin=peer,
                             service_type=0)).json()["result"]["value"] for _ in range(2)]
    answers = [(await in_thread(bot.send, "send_sess_msg2", {
        "to": peer, "face": 564, "group_sig": sig, "service_type": 0})).json()["retcode"]
        for sig in sigs]
    assert answers == [108, 0]                  # the first sig was let go


@pytest.mark.gen_test
async def test_sends_are_checked(sim, browser):
    await in_thread(browser.sign_in, 10001)
    alice = sim.world.uin(10001, 20001)
    bad_content = await in_thread(browser.send, "send_buddy_msg2", {"to": alice, "content": "hi"})
    assert bad_content.json() == {"retcode": 100006, "errmsg": ""}
    bad_face = await in_thread(browser.send, "send_buddy_msg2",
                               {"to": alice, "content": json.dumps([["face", "x"]])})
    assert bad_face.json()["retcode"] == 100006
    bad_id = await in_thread(browser.send, "send_buddy_msg2", {"to": alice, "msg_id": "x1"})
    assert bad_id.json()["retcode"] == 100006
    assert (await in_thread(browser.send, "send_buddy_msg2", {"to": 1})).json()["retcode"] == 108
    assert (await in_thread(browser.send, "send_qun_msg2", {"group_uin": 1})).json()["retcode"] == 108
    did = sim.world.discussions[40001].did
    assert (await in_thread(browser.send, "send_discu_msg2", {"did": str(did)})).json()["retcode"] == 0
    # A browser-style send: size as a string, no trailing font is tolerated too.
    assert (await in_thread(browser.send, "send_buddy_msg2",
                            {"to": alice, "content": json.dumps(["x"])})).json()["retcode"] == 0
    sent = (await in_thread(browser.control, "sent?account=10001")).json()
    assert [(s["kind"], s["to"], s["text"]) for s in sent] == [("discussion", 40001, "hello"),
                                                              ("buddy", 20001, "x")]


@pytest.mark.gen_test
async def test_silent_drops_of_fast_or_repeated_sends(io_loop, request):
    sim = start_simulator(io_loop, request, world=default_world(min_interval=60))
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    alice = sim.world.uin(10001, 20001)
    for msg_id in (21870001, 21870002):
        reply = await in_thread(browser.send, "send_buddy_msg2", {"to": alice, "msg_id": msg_id})
        assert reply.json() == {"retcode": 0, "result": "ok"}   # a drop still answers ok
    sent = (await in_thread(browser.control, "sent?account=10001")).json()
    assert [s["dropped"] for s in sent] == [None, "too_fast"]


@pytest.mark.gen_test
async def test_an_exact_repeat_is_answered_but_delivered_once(io_loop, request, held_polls):
    # The invented rule, now an option (off by default): a repeated msg_id is dropped.
    sim = start_simulator(io_loop, request, world=default_world(
        drop_exact_repeats=True, min_interval=0, dup_window=0))
    bot, friend = Browser(sim), Browser(sim)
    await in_thread(bot.sign_in, 10001, "11111111")
    await in_thread(friend.sign_in, 10002, "22222222")
    await in_thread(friend.poll)                                 # 10001 came online
    to = sim.world.uin(10001, 10002)
    for content in (("once",), ("once",), ("again",)):
        # The first two are the same message (same msg_id): a resend after a lost answer.
        msg_id = 21870001 if content == ("once",) else 21870002
        reply = await in_thread(bot.send, "send_buddy_msg2", {"to": to, "msg_id": msg_id},
                                content)
        assert reply.json() == {"retcode": 0, "result": "ok"}
    sent = (await in_thread(bot.control, "sent?account=10001")).json()
    assert [(s["text"], s["dropped"]) for s in sent] == \
        [("once", None), ("once", "repeat"), ("again", None)]
    received = [item["value"]["content"][-1] for item in items(await in_thread(friend.poll))]
    assert received == ["again", "once"]                        # newest first


@pytest.mark.gen_test
async def test_status_change_is_announced_to_friends(sim, held_polls):
    bot, other = Browser(sim), Browser(sim)
    await in_thread(bot.sign_in, 10001, "11111111")
    await in_thread(other.sign_in, 10002, "22222222")
    await in_thread(bot.poll)                                   # 10002 came online
    assert (await in_thread(other.channel_get, "change_status2",
                            newstatus="busy")).json() == {"retcode": 0, "result": "ok"}
    [change] = items(await in_thread(bot.poll))
    assert change["value"]["status"] == "busy"
    assert (await in_thread(other.channel_get, "change_status2",
                            newstatus="dancing")).json()["retcode"] == 100006


@pytest.mark.gen_test
async def test_status_and_delay_faults(sim, browser):
    await in_thread(browser.control, "fault", {"path": "/check", "kind": "status",
                                               "status": 502, "count": 2})
    for _ in range(2):
        reply = await browser.get("http://check.ptlogin2.qq.com/check?uin=10001")
        assert reply.status == 502
    assert (await browser.get("http://check.ptlogin2.qq.com/check?uin=10001")).status == 200
    await in_thread(browser.control, "fault", {"path": "/web2/get_msg_tip", "kind": "delay",
                                               "seconds": 0.2})
    started = time.monotonic()
    assert (await browser.get("http://web.qq.com/web2/get_msg_tip")).status == 200
    assert time.monotonic() - started >= 0.18
    await in_thread(browser.control, "fault", {"path": "/login", "kind": "retcode",
                                               "retcode": 19})
    reply = await in_thread(browser.login, 10001)
    assert reply.text.startswith("ptuiCB('19','0','','0',")
    await in_thread(browser.sign_in, 10001)
    await in_thread(browser.control, "fault", {"path": "/channel/poll2", "kind": "retcode",
                                               "retcode": 100006})
    assert (await in_thread(browser.poll)).json() == {"retcode": 100006, "errmsg": ""}


@pytest.mark.gen_test
async def test_a_too_deeply_nested_r_is_a_bad_parameter_not_a_500(sim, browser):
    await in_thread(browser.login, 10001)
    relogin = await browser.post("http://d.web2.qq.com/channel/login2", {
        "r": "[" * 100000 + "]" * 100000, "clientid": "53999199", "psessionid": "null"},
        {"Referer": "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=3",
         "Origin": "http://d.web2.qq.com"})
    assert (relogin.status, relogin.json()) == (200, {"retcode": 100006, "errmsg": ""})
    await in_thread(browser.sign_in, 10001)
    s = browser.session
    reply = await browser.post("http://d.web2.qq.com/channel/poll2", {
        "r": "[" * 100000 + "]" * 100000, "clientid": s["clientid"],
        "psessionid": s["psessionid"]},
        {"Referer": "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"})
    assert (reply.status, reply.json()) == (200, {"retcode": 100006, "errmsg": ""})
    sent = await in_thread(browser.send, "send_buddy_msg2", {
        "to": 1, "content": "[" * 100000 + "]" * 100000})
    assert (sent.status, sent.json()["retcode"]) == (200, 100006)


def test_blocking_socket_refused_after_stop(io_loop, request):
    sim = start_simulator(io_loop, request)
    port = sim.port
    io_loop.run_sync(sim.stop)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.gen_test
async def test_the_2013_send_rules_drop_fast_sends_and_quick_copies(io_loop, request):
    # The default world's rules: min_interval 0.5, dup_window 1.0, no drop of repeats.
    now = [1366948800.0]
    sim = start_simulator(io_loop, request, clock=lambda: now[0], world=default_world())
    bot, friend = Browser(sim), Browser(sim)
    await in_thread(bot.sign_in, 10001, "11111111")
    await in_thread(friend.sign_in, 10002, "22222222")
    await in_thread(friend.poll)                                 # 10001 came online
    to = sim.world.uin(10001, 10002)
    plan = [(0.0, 1, "a"),      # delivered
            (0.2, 2, "b"),      # 0.2 s after "a": too fast
            (0.6, 3, "b"),      # a copy of "b", 0.6 s after it
            (1.2, 4, "b"),      # a copy again, but 1.2 s later: delivered
            (1.2, 4, "b")]      # the same message again after a lost answer: delivered
    for delay, msg_id, text in plan:
        now[0] += delay
        reply = await in_thread(bot.send, "send_buddy_msg2", {"to": to, "msg_id": 21870000 + msg_id},
                                (text,))
        assert reply.json() == {"retcode": 0, "result": "ok"}    # a drop still answers ok
    dropped = (await in_thread(bot.control, "dropped?account=10001")).json()
    assert [(d["text"], d["msg_id"], d["dropped"]) for d in dropped] == [
        ("b", 21870002, "too_fast"), ("b", 21870003, "duplicate")]
    assert len((await in_thread(bot.control, "sent?account=10001")).json()) == 5
    received = [item["value"]["content"][-1] for item in items(await in_thread(friend.poll))]
    assert received == ["b", "b", "a"]                          # newest first
    assert (await in_thread(friend.control, "dropped?account=10002")).json() == []


@pytest.mark.gen_test
@pytest.mark.parametrize("kind, when, status, delivered", [
    ("status", "before", 502, False), ("status", "after", 502, True),
    ("reset", "before", None, False), ("reset", "after", None, True),
])
async def test_a_send_fault_strikes_before_or_after_delivery(sim, kind, when, status, delivered):
    bot, friend = Browser(sim), Browser(sim)
    await in_thread(bot.sign_in, 10001, "11111111")
    await in_thread(friend.sign_in, 10002, "22222222")
    await in_thread(friend.poll)                                 # 10001 came online
    await in_thread(bot.control, "fault", {"path": "/channel/send_buddy_msg2", "kind": kind,
                                           "when": when})
    send = in_thread(bot.send, "send_buddy_msg2", {"to": sim.world.uin(10001, 10002)})
    if kind == "status":
        reply = await send
        assert (reply.status, reply.body) == (status, b"")
    else:
        with pytest.raises((ConnectionError, OSError)):
            await send
    sent = (await in_thread(bot.control, "sent?account=10001")).json()
    assert [s["text"] for s in sent] == (["hello"] if delivered else [])
    if delivered:
        assert [i["value"]["content"][-1] for i in items(await in_thread(friend.poll))] == ["hello"]
    else:
        assert (await in_thread(friend.poll)).json()["retcode"] == 102


@pytest.mark.gen_test
async def test_a_poll_answer_replaced_by_a_5xx_is_delivered_again(sim, browser):
    await in_thread(browser.sign_in, 10001)
    item = await say(browser, to=10001, **{"from": 20001}, text="keep me too")
    await in_thread(browser.control, "fault", {"path": "/channel/poll2", "kind": "status",
                                               "status": 504, "when": "after"})
    assert (await in_thread(browser.poll)).status == 504
    assert items(await in_thread(browser.poll)) == [item]
