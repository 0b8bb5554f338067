"""The /_sim/ control surface, the world file, and the simulator under malformed input."""
import asyncio
import json
import random
import re
import socket

import pytest
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

import webqq.simulator
from simulator_helpers import Browser, control_headers, in_thread, next_held, start_simulator
from webqq.simulator import Simulator, WorldError, control, load_world
from webqq.simulator.captcha import render_jpeg
from webqq.simulator.control import ControlHandler
from webqq.simulator.events import POLL_TYPES

# poll_type -> (extra control keys, the value's keys in order)
EVENT_SHAPES = {
    "message": ({"from": 20001, "text": "x"}, ["msg_id", "from_uin", "to_uin", "msg_id2",
                                               "msg_type", "reply_ip", "time", "content"]),
    "group_message": ({"from": 20001, "group": 30001, "text": "x"},
                      ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                       "group_code", "send_uin", "seq", "time", "info_seq", "content"]),
    "discu_message": ({"from": 20003, "discussion": 40001, "text": "x"},
                      ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip", "did",
                       "send_uin", "seq", "time", "info_seq", "content"]),
    "sess_message": ({"from": 20002, "group": 30001, "text": "x"},
                     ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip", "time",
                      "id", "ruin", "service_type", "flags", "content"]),
    "kick_message": ({}, ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                          "show_reason", "reason"]),
    "buddies_status_change": ({"from": 20001, "status": "busy"}, ["uin", "status", "client_type"]),
    "input_notify": ({"from": 20001}, ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type",
                                       "reply_ip"]),
    "shake_message": ({"from": 20001}, ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type",
                                        "reply_ip"]),
    "system_message": ({"from": 379450326, "text": "please add me"},
                       ["seq", "type", "uiuin", "from_uin", "account", "msg", "allow", "stat",
                        "client_type"]),
    "sys_g_msg": ({"from": 20003, "group": 30001},
                  ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip", "type",
                   "gcode", "t_gcode", "op_type", "new_member", "t_new_member", "admin_uin",
                   "admin_nick"]),
    "buddylist_change": ({"from": 20003}, ["added_friends", "removed_friends"]),
    "file_message": ({"from": 20001, "text": "test.txt"},
                     ["msg_id", "mode", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                      "type", "name", "time", "session_id", "inet_ip"]),
    "push_offfile": ({"from": 20001}, ["msg_id", "rkey", "ip", "port", "from_uin", "size", "name",
                                       "expire_time", "time"]),
    "notify_offfile": ({"from": 20001}, ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type",
                                         "reply_ip", "action", "filename", "filesize"]),
    "filesrv_transfer": ({}, ["file_count", "lc_id", "now", "operation", "type", "file_infos"]),
    "group_web_message": ({"group": 30001, "from": 20001},
                          ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                           "group_code", "group_type", "ver", "send_uin", "xml"]),
    "tips": ({"text": "tip"}, ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip",
                               "content"]),
    "av_request": ({"from": 20001}, ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type",
                                     "reply_ip", "time"]),
}


def test_every_poll_type_has_a_shape_test():
    assert set(EVENT_SHAPES) == set(POLL_TYPES)


@pytest.mark.gen_test
async def test_event_pushes_every_poll_type_with_full_values(sim, browser):
    await in_thread(browser.sign_in, 10001)
    pushed = []
    for poll_type, (extra, keys) in EVENT_SHAPES.items():
        reply = await in_thread(browser.control, "event",
                                dict(extra, to=10001, poll_type=poll_type))
        assert reply.status == 200, (poll_type, reply.text)
        item = reply.json()["item"]
        assert item["poll_type"] == poll_type and list(item["value"]) == keys, poll_type
        pushed.append(item)
    delivered = (await in_thread(browser.poll)).json()["result"]
    assert delivered == pushed[::-1]                            # newest first
    by_type = {i["poll_type"]: i["value"] for i in delivered}
    world = sim.world
    assert by_type["system_message"]["account"] == 379450326           # a stranger
    assert by_type["system_message"]["from_uin"] == world.uin(10001, 379450326)
    assert by_type["sys_g_msg"]["new_member"] == world.uin(10001, 20003)
    assert by_type["sess_message"]["id"] == world.groups[30001].gid
    assert by_type["discu_message"]["from_uin"] == 10000
    assert by_type["input_notify"]["reply_ip"] == 4294967295
    assert by_type["buddies_status_change"]["status"] == "busy"


@pytest.mark.gen_test
async def test_event_subtypes_and_overrides(sim, browser):
    await in_thread(browser.sign_in, 10001)
    reply = await in_thread(browser.control, "event", {
        "to": 10001, "poll_type": "sys_g_msg", "group": 30001, "from": 20003,
        "type": "group_leave", "value": {"op_type": 3, "extra": True}})
    value = reply.json()["item"]["value"]
    assert value["type"] == "group_leave" and value["msg_type"] == 34
    assert value["op_type"] == 3 and value["extra"] is True
    reply = await in_thread(browser.control, "event", {"to": 10001, "poll_type": "system_message",
                                                       "from": 20003, "type": "verify_pass"})
    assert list(reply.json()["item"]["value"]) == ["seq", "type", "from_uin", "stat"]
    bad = await in_thread(browser.control, "event", {"to": 10001, "poll_type": "group_message",
                                                     "from": 20001, "text": "x"})
    assert bad.status == 400 and "group" in bad.json()["error"]
    bad = await in_thread(browser.control, "event", {"to": 10001, "poll_type": "nonsense"})
    assert bad.status == 400


@pytest.mark.gen_test
async def test_say_shapes_and_refusals(sim, browser):
    await in_thread(browser.sign_in, 10001)
    group = await in_thread(browser.control, "say", {"to": 10001, "group": 30001, "from": 20002,
                                                     "text": "hi"})
    value = group.json()["item"]["value"]
    assert value["send_uin"] == sim.world.uin(10001, 20002) and value["seq"] == 1
    discussion = await in_thread(browser.control, "say", {"to": 10001, "discussion": 40001,
                                                          "from": 20003, "text": "hi"})
    assert discussion.json()["item"]["value"]["did"] == sim.world.discussions[40001].did
    faces = await in_thread(browser.control, "say", {"to": 10001, "from": 20001,
                                                     "content": ["a ", ["face", 14]]})
    assert faces.json()["item"]["value"]["content"][1:] == ["a ", ["face", 14]]
    cases = [
        ({"to": 10001, "group": 30001, "from": 20003, "text": "x"}, 400),  # not a member
        ({"to": 10001, "from": 20001}, 400),                                # no text
        ({"to": 12345, "from": 20001, "text": "x"}, 400),                   # no such account
        ({"to": 10002, "from": 20001, "text": "x"}, 409),                   # not logged in
        ({"to": 10001, "from": 20001, "text": "x", "colour": 1}, 400),      # unknown key
    ]
    for body, status in cases:
        reply = await in_thread(browser.control, "say", body)
        assert reply.status == status and "error" in reply.json(), body


@pytest.mark.gen_test
async def test_malformed_control_bodies_are_refused_with_400(sim, browser):
    await in_thread(browser.sign_in, 10001)
    nested = b"[" * 100000 + b"]" * 100000
    cases = [
        ("say", {"to": 10001, "from": 20001, "content": [1, None, {"a": 1}]}),
        ("say", {"to": 10001, "from": 20001, "content": [["face"]]}),
        ("say", {"to": 10001, "from": 20001, "content": [["face", "x"]]}),
        ("say", {"to": 10001, "from": 20001, "content": [["face", True]]}),
        ("say", {"to": 10001, "from": 20001, "content": [["font", {}]]}),
        ("say", {"to": 10001, "from": 20001, "content": []}),
        ("say", {"to": 10001, "group": 30001, "discussion": 40001, "from": 20002,
                 "text": "both"}),
        ("say", {"to": 10001, "from": 2 ** 70, "text": "huge"}),
        ("say", {"to": 2 ** 70, "from": 20001, "text": "huge"}),
        ("kick", {"account": 10001, "kick_mesage": True}),
        ("rotate", {"account": 10001, "bogus": 1}),
        ("captcha", {"account": 10001, "code": "ABCD", "extra": 1}),
        ("offline", {"seconds": 0.5, "typo": 1}),
    ]
    for verb, body in cases:
        reply = await in_thread(browser.control, verb, body)
        assert reply.status == 400 and "error" in reply.json(), (verb, body)
    for verb in ("say", "kick", "offline"):
        status, answer = await in_thread(_raw_control, sim, verb, nested)
        assert (status, json.loads(answer)) == (400, {"error": "the body is not JSON"})
    entry = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert entry["state"] == "online" and entry["captcha"] is None     # nothing happened
    assert await in_thread(browser.control, "say", {
        "to": 10001, "from": 20001, "content": ["a", ["face", 0],
                                                ["cface", "x.jpg", ""]]}) is not None


@pytest.mark.gen_test
async def test_state_sent_and_verb_errors(sim, browser):
    state = (await in_thread(browser.control, "state")).json()
    assert state["accounts"]["10001"] == {"state": "offline", "status": "offline",
                                          "nick": "webqq", "captcha": None}
    assert state["poll_hold"] == sim.poll_hold and state["era"] == "A"
    await in_thread(browser.sign_in, 10001)
    entry = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert entry["state"] == "online" and entry["polling"] is False and entry["sent"] == 0
    assert (await in_thread(browser.control, "sent?account=10001")).json() == []
    assert (await in_thread(browser.control, "sent")).status == 400
    assert (await in_thread(browser.control, "nonsense")).status == 404
    assert (await in_thread(browser.control, "kick")).status == 405      # GET of a POST verb
    garbage = await in_thread(_raw_control, sim, "kick", b"{nope")
    assert garbage[0] == 400
    assert (await in_thread(browser.control, "kick", {"account": 10002})).status == 409
    assert (await in_thread(browser.control, "rotate", {"account": "x"})).status == 400
    assert (await in_thread(browser.control, "captcha", {"account": 10001,
                                                         "code": "no spaces"})).status == 400
    # Any Host reaches /_sim/.
    reply = await browser.get("http://s.web2.qq.com/_sim/state", control_headers(sim, False))
    assert reply.status == 200 and "accounts" in reply.json()


@pytest.mark.gen_test
async def test_control_surface_refuses_cross_site_requests(sim, browser, caplog):
    caplog.set_level("DEBUG", logger="webqq.simulator")
    await in_thread(browser.sign_in, 10001)
    token, port = sim.control_token, sim.port
    kick = {"account": 10001}
    # What a page's no-cors fetch can send: a "simple" POST, no custom header.
    for headers in ({"Content-Type": "text/plain", "Origin": "http://evil.example"},
                    {"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    {"Content-Type": None}):
        reply = await in_thread(browser.control, "kick", kick, headers=dict(
            headers, **{"X-Sim-Token": None}))
        reason = "Origin" if "Origin" in headers else "X-Sim-Token"
        assert reply.status == 403 and reason in reply.json()["error"], headers
    # With the token, a body that is not declared JSON is still refused.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        reply = await in_thread(browser.control, "kick", kick,
                                headers={"Content-Type": content_type})
        assert reply.status == 415, content_type
        assert "Content-Type: application/json" in reply.json()["error"]
    # A foreign Origin is refused even with the token (and a JSON body).
    for origin in ("http://evil.example", "null", "http://127.0.0.1:%d" % (port + 1),
                   "https://127.0.0.1:%d" % port):
        reply = await in_thread(browser.control, "kick", kick, headers={"Origin": origin})
        assert reply.status == 403 and "Origin" in reply.json()["error"], origin
    # Reads need the token too; a wrong one is no better than none.
    for verb, method in (("state", None), ("sent?account=10001", None), ("fault", "DELETE")):
        for wrong in (None, token[:-1], token + "x", "Bearer " + token):
            reply = await in_thread(browser.control, verb, method=method,
                                    headers={"X-Sim-Token": wrong})
            assert reply.status == 403, (verb, wrong)
    entry = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert entry["state"] == "online"                       # nothing was done
    # The surface's own origins, charset parameters and Authorization: Bearer pass.
    for origin in ("http://127.0.0.1:%d" % port, "http://localhost:%d" % port,
                   "http://[::1]:%d" % port):
        reply = await in_thread(browser.control, "state", headers={"Origin": origin})
        assert reply.status == 200, origin
    reply = await in_thread(browser.control, "rotate", kick, headers={
        "X-Sim-Token": None, "Authorization": "Bearer " + token,
        "Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 200, reply.text
    assert token not in caplog.text
    assert token not in (await in_thread(browser.control, "state")).text


def test_each_simulator_draws_its_own_control_token(io_loop, request):
    one, two = (start_simulator(io_loop, request) for _ in range(2))   # same seed
    assert len(one.control_token) >= 32 and one.control_token != two.control_token
    fixed = start_simulator(io_loop, request, control_token="fixed-token-1")
    assert fixed.control_token == "fixed-token-1"
    for bad in ("", "short", "has a space", "caf\u00e9-token", "x" * 257):
        with pytest.raises(ValueError) as caught:
            Simulator(control_token=bad)
        assert bad not in str(caught.value) or not bad


def _raw_control(sim, verb, body, headers=None):
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    try:
        connection.request("POST", "/_sim/" + verb, body,
                           control_headers(sim) if headers is None else headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.gen_test
async def test_fault_verbs(sim, browser):
    reply = await in_thread(browser.control, "fault", {"path": "/channel/poll2", "kind": "delay",
                                                       "seconds": 2, "count": 3})
    assert reply.json()["faults"] == [{"path": "/channel/poll2", "kind": "delay", "count": 3,
                                       "status": 502, "seconds": 2.0, "retcode": 0, "host": None,
                                       "when": None}]
    assert len((await in_thread(browser.control, "fault")).json()) == 1
    assert (await in_thread(browser.control, "fault", method="DELETE")).json() == {"ok": True}
    assert (await in_thread(browser.control, "fault")).json() == []
    reply = await in_thread(browser.control, "fault", {"path": "/x", "kind": "reset"})
    assert reply.json()["faults"][0]["when"] == "after"                 # the default
    await in_thread(browser.control, "fault", method="DELETE")
    for body in ({"path": "/_sim/state", "kind": "reset"}, {"path": "/x", "kind": "melt"},
                 {"path": "/channel/poll2", "kind": "retcode", "retcode": 116},
                 {"path": "/x", "kind": "status", "status": 99},
                 {"path": "/x", "kind": "status", "when": "during"},
                 {"path": "/x", "kind": "delay", "when": "after"}):
        assert (await in_thread(browser.control, "fault", body)).status == 400, body


@pytest.mark.gen_test
async def test_offline_refuses_connections_then_comes_back(sim, browser, monkeypatch):
    back = asyncio.Event()
    come_back = sim._come_back

    def come_back_and_tell():
        come_back()
        back.set()
    monkeypatch.setattr(sim, "_come_back", come_back_and_tell)
    port, tls_port = sim.port, sim.tls_port
    reply = await in_thread(browser.control, "offline", {"seconds": 0.3})
    assert reply.json() == {"ok": True, "seconds": 0.3}
    for refused in (port, tls_port):
        with pytest.raises(ConnectionRefusedError):
            await in_thread(_connect, refused)
    await asyncio.wait_for(back.wait(), 5)
    assert (sim.port, sim.tls_port) == (port, tls_port)
    assert (await in_thread(browser.control, "state")).status == 200
    assert (await in_thread(browser.control, "offline", {"seconds": 0})).status == 400


def _connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.gen_test
async def test_survives_malformed_requests(sim, browser):
    close = b"Connection: close\r\n"
    garbage = [
        b"\x16\x03\x01\x00\xff garbage that is not HTTP\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: d.web2.qq.com\r\nContent-Length: -5\r\n\r\n",
        b"GET /check?uin=%ff%fe HTTP/1.1\r\nHost: check.ptlogin2.qq.com\r\n" + close + b"\r\n",
        b"POST /channel/poll2 HTTP/1.1\r\nHost: d.web2.qq.com\r\nReferer: http://d.web2.qq.com/\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n" + close
        + b"\r\nr=%ff%fe{",
        b"POST /api/get_user_friends2 HTTP/1.1\r\nHost: s.web2.qq.com\r\nCookie: uin=o; skey=;\r\n"
        b"Referer: http://s.web2.qq.com/\r\nContent-Length: 3\r\n" + close + b"\r\nr=[",
        b"GET /nowhere HTTP/1.1\r\nHost: example.com\r\n" + close + b"\r\n",
        b"GET /channel/nothing HTTP/1.1\r\nHost: d.web2.qq.com\r\n" + close + b"\r\n",
        b"X" * 70000 + b"\r\n\r\n",
    ]
    answers = []
    for request in garbage:
        stream = await TCPClient().connect("127.0.0.1", sim.port)
        try:
            await stream.write(request)
            answers.append(await stream.read_until_close())
        except StreamClosedError:
            answers.append(b"")
        finally:
            stream.close()
    assert answers[0].startswith(b"HTTP/1.1 400") and answers[1].startswith(b"HTTP/1.1 400")
    assert b"ptui_checkVC('0'," in answers[2]
    assert answers[3].endswith(b'{"retcode":100006,"errmsg":""}')
    assert answers[4].endswith(b'{"retcode":100003}')
    assert answers[5].startswith(b"HTTP/1.1 404") and answers[6].startswith(b"HTTP/1.1 404")
    # A TLS client hello on the plain port, HTTP on the TLS port: still alive afterwards.
    stream = await TCPClient().connect("127.0.0.1", sim.tls_port)
    await stream.write(b"GET / HTTP/1.1\r\n" + close + b"\r\n")
    await stream.read_until_close()
    stream.close()
    assert (await in_thread(browser.sign_in, 10001))["uin"] == 10001


@pytest.mark.gen_test
async def test_stop_ends_held_polls_and_listeners(io_loop, request, held_polls):
    sim = start_simulator(io_loop, request, poll_hold=30)
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    # A connection to the TLS port that has not said a word (TLS or plain?) yet.
    silent = socket.create_connection(("127.0.0.1", sim.tls_port), timeout=5)
    await _until(lambda: sim._servers[1].pending)
    await sim.stop()
    with pytest.raises((ConnectionError, OSError)):     # the held poll's connection closed
        await poll
    with silent:
        assert silent.recv(1) == b""                     # closed too, not left waiting
    with pytest.raises(ConnectionRefusedError):
        await in_thread(_connect, sim.port)
    assert not sim._timers and not sim._sleeps


async def _until(condition, timeout=5.0):
    """Wait, a loop turn at a time, until ``condition()`` is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never came true"
        await asyncio.sleep(0.01)


def test_world_validation_names_the_key():
    base = {"accounts": [{"qq": 10001, "password": "pw"}]}
    cases = [
        ({}, "accounts: the world needs at least one account"),
        ({"accounts": [{"qq": 10001}]}, "accounts[0].password: missing"),
        ({"accounts": [{"qq": 10001, "password": "pw", "friends": [{"qq": 20001}]}]},
         "accounts[0].friends[0].qq: nobody with QQ number 20001"),
        (dict(base, groups=[{"number": 30001, "name": "g", "owner": 10001,
                             "members": [{"qq": 5}]}]), "groups[0].members[0].qq: 5 is not a QQ number"),
        (dict(base, options={"era": "C"}), "options.era: 'C' is not one of A, B"),
        (dict(base, colour="red"), "world: unknown key 'colour'"),
        (dict(base, people=[{"qq": 10001}]), "accounts[0].qq: 10001 is listed twice"),
    ]
    for data, message in cases:
        with pytest.raises(WorldError) as caught:
            load_world(data, random.Random(1))
        assert message in str(caught.value), (data, str(caught.value))


def test_default_world_and_reproducible_ids():
    one, two = load_world(None, random.Random(5)), load_world(None, random.Random(5))
    assert one.accounts[10001].password == "webqq-demo"
    assert one.groups[30001].gid == two.groups[30001].gid
    assert one.uin(10001, 20001) == two.uin(10001, 20001) != one.uin(10002, 20001)
    assert one.qq_of_uin(10001, one.uin(10001, 20001)) == 20001
    assert one.qq_of_uin(10001, str(one.uin(10001, 20001))) == 20001   # string form too


def test_the_world_s_lookups_follow_its_changes():
    # friend(), member(), listed_by() and the gid/code/did lookups are indexes now (a
    # thousand accounts were walked per login); each must see set_friends,
    # set_members and add_account at once.
    world = load_world(None, random.Random(5))
    group, discussion = world.groups[30001], world.discussions[40001]
    assert world.group_by_gid(group.gid) is group is world.group_by_code(str(group.code))
    assert world.discussion_by_did(str(discussion.did)) is discussion
    for missing in (None, True, "x", group.code + 1, discussion.did):
        assert world.group_by_gid(missing) is None
    assert world.discussion_by_did(group.gid) is None
    assert world.listed_by(10002) == (10001,) and world.listed_by(20001) == (10001, 10002)
    assert world.listed_by(20003) == ()

    world.set_friends(10001, [f for f in world.accounts[10001].friends if f.qq != 10002])
    assert world.accounts[10001].friend(10002) is None
    assert world.accounts[10001].friend(20001).qq == 20001
    assert world.listed_by(10002) == ()
    world.set_members(30001, [m for m in group.members if m.qq != 20002])
    assert world.group_by_gid(group.gid).member(20002) is None
    assert world.group_by_code(group.code).member(20001).qq == 20001

    world.add_account(10005)
    assert world.listed_by(20003) == (10005,) and world.listed_by(20001) == (10001, 10002, 10005)
    assert world.group_by_gid(group.gid).member(10005).qq == 10005
    assert 10005 in world.discussion_by_did(discussion.did).members


def test_world_file_option(tmp_path, io_loop):
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"accounts": [{"qq": 55555, "password": "x", "nick": "n"}]}))
    sim = Simulator(world=str(path), poll_hold=0.1)
    try:
        assert list(sim.world.accounts) == [55555]
        assert sim.hosts["ssl.ptlogin2.qq.com"] == ("127.0.0.1", sim.tls_port)
        assert sim.hosts["s.web2.qq.com"] == ("127.0.0.1", sim.port)
        assert sim.hosts["d.web2.qq.com"] == ("127.0.0.1", sim.tls_port)   # http and https
    finally:
        io_loop.run_sync(sim.stop)


def test_captcha_jpeg_structure():
    image = render_jpeg("AB7Z", random.Random(1))
    assert image[:2] == b"\xff\xd8" and image[-2:] == b"\xff\xd9"
    sof = image.index(b"\xff\xc0")
    height, width = int.from_bytes(image[sof + 5:sof + 7], "big"), int.from_bytes(image[sof + 7:sof + 9], "big")
    assert (width, height) == ((2 + 4 * 6 - 1) * 8, (2 + 7 + 1) * 8)
    assert render_jpeg("AB7Z", random.Random(1)) == image


def test_command_prints_ports_and_serves_until_interrupted():
    import os
    import re
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    launcher = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "bin", "webqq-simulator")
    process = subprocess.Popen([sys.executable, launcher, "--port", "0", "--tls-port", "0",
                                "--poll-hold", "5", "--seed", "1",
                                "--control-token", "from-the-command-line"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        match = re.match(r"webqq-simulator: HTTP on 127\.0\.0\.1:(\d+) .* TLS on 127\.0\.0\.1:(\d+)",
                         first)
        assert match, first
        assert process.stdout.readline().startswith("CA certificate (TEST MATERIAL): ")
        token = re.match(r"control token: (\S+) \(send it as X-Sim-Token",
                         process.stdout.readline()).group(1)
        assert token == "from-the-command-line"
        assert "-H 'X-Sim-Token: %s' " % token in process.stdout.readline()
        assert process.stdout.readline().startswith("try:     curl --cacert ")
        state = "http://127.0.0.1:%s/_sim/state" % match.group(1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(state, timeout=5)
        assert refused.value.code == 403
        refused.value.close()
        request = urllib.request.Request(state, headers={"X-Sim-Token": token})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["poll_hold"] == 5.0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        log = process.stderr.read()
        assert "GET 127.0.0.1/_sim/state 200" in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_command_refuses_a_bad_control_token(capsys):
    from webqq.simulator import cli
    with pytest.raises(SystemExit) as caught:
        cli.main(["--control-token", "no spaces allowed"])
    assert caught.value.code == 2
    assert "printable ASCII characters without spaces" in capsys.readouterr().err


def test_the_command_collects_young_objects_less_often(monkeypatch):
    # Held polls outlive Python's default young collections (bench/sim_load.py: a fifth
    # of the simulator's CPU per message, nothing freed); the command raises the
    # threshold for its own process before it serves.
    import gc
    from webqq.simulator import cli
    order = []
    monkeypatch.setattr(gc, "set_threshold", lambda *values: order.append(values))
    monkeypatch.setattr(cli.asyncio, "run", lambda coroutine: order.append("serve")
                        or coroutine.close() or 0)
    assert cli.main(["--port", "0", "--tls-port", "0"]) == 0
    assert order == [(cli.GC_FIRST_THRESHOLD, *gc.get_threshold()[1:]), "serve"]


# JSON values of every type but the one a key wants (null means "not given").
WRONG_VALUES = {
    control.NUMBER: [True, 1.5, "x", [1], {"a": 1}],
    control.SECONDS: [True, "1", [1], {"a": 1}],
    control.TEXT: [True, 1, 1.5, [1], {"a": 1}],
    control.FLAG: [1, "true", [True], {"a": 1}],
    control.PIECES: [True, 1, "x", {"a": 1}],
    control.OBJECT: [True, 1, "x", [1]],
}
VALID_BODIES = {
    "say": {"to": 10001, "from": 20001, "text": "x"},
    "event": {"to": 10001, "poll_type": "input_notify", "from": 20001},
    "kick": {"account": 10001},
    "rotate": {"account": 10001},
    "expire": {"account": 10001},
    "captcha": {"account": 10001, "code": "ABCD"},
    "fault": {"path": "/x", "kind": "delay"},
    "offline": {"seconds": 1},
    "file": {"to": 10001, "from": 20001, "name": "a.txt", "base64": "aGk="},
    "friend": {"to": 10001, "from": 20005, "text": "please add me"},
    "group": {"group": 30001, "action": "join", "member": 20005},
}


@pytest.mark.gen_test(timeout=60)
async def test_every_verb_answers_a_wrong_json_type_with_400(sim, browser):
    assert set(ControlHandler.POST_VERBS) == set(control.BODIES) == set(VALID_BODIES)
    await in_thread(browser.sign_in, 10001)
    # The report of issue 11: a list or an object as poll_type was a 500.
    for poll_type in (["message"], {"a": 1}):
        reply = await in_thread(browser.control, "event", dict(
            VALID_BODIES["event"], poll_type=poll_type))
        assert reply.status == 400 and reply.json()["error"].startswith("poll_type: "), \
            reply.text
    cases = [(verb, key, wrong) for verb, keys in control.BODIES.items()
             for key, kind in keys.items() for wrong in WRONG_VALUES[kind]]
    for verb, key, wrong in cases:
        reply = await in_thread(browser.control, verb, dict(VALID_BODIES[verb], **{key: wrong}))
        assert reply.status == 400, (verb, key, wrong, reply.status, reply.text)
        assert reply.json()["error"].startswith(key + ": "), (verb, key, wrong, reply.text)
    state = (await in_thread(browser.control, "state")).json()
    assert state["accounts"]["10001"]["state"] == "online" and state["faults"] == []
    assert state["accounts"]["10001"]["queued"] == 0 and state["accounts"]["10001"]["captcha"] is None


def test_every_control_verb_is_documented_in_the_package_docstring():
    doc = webqq.simulator.__doc__
    for method, verbs in (("GET", ControlHandler.GET_VERBS), ("POST", ControlHandler.POST_VERBS),
                          ("DELETE", ControlHandler.DELETE_VERBS)):
        for verb in verbs:
            assert re.search(r"\b%s\s+/_sim/%s\b" % (method, verb), doc), (method, verb)
