"""The OneBot v11 API in process: a client online on the simulator, the API on loopback,
called with a real HTTP client (Tornado's), its events received by a local webhook and
local WebSocket servers. The daemon, the CLI and an OneBot SDK are in test_api_daemon.py."""
import asyncio
import json
import logging

import pytest
from api_helpers import (DISCUSSION, FRIEND, GROUP, SECRET, TOKEN, ReverseServer, Webhook,
                         events_of, eventually)
from tornado import web, websocket
from tornado.httpclient import HTTPClientError, HTTPRequest

from webqq import statedir
from webqq.daemon.config import ApiConfig
from webqq.onebot import actions, delivery, handlers, server
from webqq.onebot.token import api_token


async def sent_texts(harness):
    return [(m["kind"], m["to"], m["text"]) for m in await harness.world.control.sent()]


async def wait_sent(harness, item, count=1):
    async def check():
        return (await sent_texts(harness)).count(item) >= count
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not await check():
        assert loop.time() < deadline, "never sent: %r in %r" % (item, await sent_texts(
            harness))
        await asyncio.sleep(0.05)


# -- actions ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_information_actions_speak_qq_and_group_numbers(harness):
    await harness.start()
    assert await harness.ok("get_login_info") == {"user_id": 10001, "nickname": "webqq"}
    friends = {f["user_id"]: f for f in await harness.ok("get_friend_list")}
    assert friends[FRIEND]["nickname"] == "Alice"
    assert friends[20002]["remark"] == "Bob (work)"
    groups = await harness.ok("get_group_list")
    assert [(g["group_id"], g["group_name"]) for g in groups] == [(GROUP, "测试群")]
    info = await harness.ok("get_group_info", {"group_id": GROUP})
    assert info["member_count"] == 4
    members = {m["user_id"]: m for m in await harness.ok("get_group_member_list",
                                                           {"group_id": GROUP})}
    assert set(members) == {20001, 20002, 10001, 10002}
    assert members[20001]["card"] == "Alice@work"
    member = await harness.ok("get_group_member_info", {"group_id": GROUP, "user_id": 10002})
    assert member["card"] == "bot two"
    assert (await harness.ok("get_stranger_info", {"user_id": 20002}))["nickname"] == "Bob"
    version = await harness.ok("get_version_info")
    assert version["app_name"] == "webqq" and version["protocol_version"] == "v11"
    assert await harness.ok("can_send_image") == {"yes": True}
    assert await harness.ok("can_send_record") == {"yes": False}
    status = await harness.ok("get_status")
    assert status["online"] is True and status["good"] is True
    code, answer = await harness.call("get_group_info", {"group_id": 99999})
    assert (code, answer["status"], answer["retcode"]) == (200, "failed", 100)


@pytest.mark.gen_test(timeout=30)
async def test_send_actions_in_both_message_formats_reach_the_server(harness):
    await harness.start()
    data = await harness.ok("send_private_msg", {"user_id": FRIEND,
                                                 "message": "hi &#91;1&#93; [CQ:face,id=14]"})
    await harness.ok("send_group_msg", {"group_id": GROUP, "message": [
        {"type": "text", "data": {"text": "hello "}},
        {"type": "at", "data": {"qq": "20001"}}, {"type": "text", "data": {"text": "!"}}]})
    # A discussion has no public number: discuss_id is its did.
    did, = harness.account.client.contacts.discussions
    await harness.ok("send_msg", {"message_type": "discuss", "discuss_id": did,
                                  "message": "[CQ:face,id=14]", "auto_escape": True})
    await harness.ok("send_msg", {"user_id": FRIEND, "message": {"type": "text",
                                                                 "data": {"text": "one"}}})
    sent = await sent_texts(harness)
    assert sent == [("buddy", FRIEND, "hi [1] "),
                    ("group", GROUP, "hello @Alice@work !"),
                    ("discussion", DISCUSSION, "[CQ:face,id=14]"),
                    ("buddy", FRIEND, "one")]
    # The face went out as a WebQQ face, not as text.
    first = (await harness.world.control.sent())[0]
    assert first["content"] == ["hi [1] ", ["face", 14]]
    stored = await harness.ok("get_msg", {"message_id": data["message_id"]})
    assert stored["message_type"] == "private" and stored["send_status"] == "sent"
    assert stored["message"] == "hi &#91;1&#93; [CQ:face,id=14]"


@pytest.mark.gen_test(timeout=30)
async def test_unsupported_segments_and_bad_params_are_refused_with_retcodes(harness):
    await harness.start()
    code, answer = await harness.call("send_private_msg", {
        "user_id": FRIEND, "message": "listen [CQ:record,file=cat.amr]"})
    assert (code, answer["status"], answer["retcode"]) == (200, "failed", 102)
    assert "'record'" in answer["msg"]
    for params in ({"message": "x"}, {"user_id": "abc", "message": "x"},
                   {"user_id": FRIEND}, {"user_id": FRIEND, "message": 5},
                   {"user_id": FRIEND, "message": " "}):
        code, answer = await harness.call("send_private_msg", params)
        assert (code, answer["retcode"]) == (200, 100), params
    code, answer = await harness.call("send_msg", {"message_type": "channel", "user_id": 1,
                                                   "message": "x"})
    assert answer["retcode"] == 100
    code, answer = await harness.call("send_private_msg", {"user_id": 55555,
                                                           "message": "who?"})
    assert (answer["status"], answer["retcode"]) == ("failed", 103)
    assert "unknown buddy" in answer["msg"] and answer["data"]["message_id"]
    assert await sent_texts(harness) == []


@pytest.mark.gen_test(timeout=30)
async def test_hostile_bodies_and_numbers_are_refused_not_crashed_on(harness, caplog):
    await harness.start()
    nested = b"[" * 100000 + b"]" * 100000
    code, answer = await harness.call("get_status", body=nested)
    assert (code, answer["retcode"]) == (400, 1400)
    assert answer["msg"] == "the body is not valid JSON: nested too deeply"
    code, answer = await harness.call("send_private_msg",
                                      body=b'{"user_id": 20001, "message": ' + nested + b"}")
    assert (code, answer["retcode"]) == (400, 1400)
    for action, body in (
            ("send_private_msg", b'{"user_id": Infinity, "message": "x"}'),
            ("send_private_msg", b'{"user_id": NaN, "message": "x"}'),
            ("send_private_msg", b'{"user_id": 1e400, "message": "x"}'),
            ("send_private_msg", b'{"user_id": %d, "message": "x"}' % 2 ** 63),
            ("send_msg", b'{"message_type": ["private"], "user_id": 20001, "message": "x"}'),
            ("get_msg", b'{"message_id": %d}' % 10 ** 30),
            ("get_stranger_info", b'{"user_id": -Infinity}')):
        code, answer = await harness.call(action, body=body)
        assert (code, answer["status"], answer["retcode"]) == (200, "failed", 100), body
    actions = await websocket.websocket_connect(
        harness.api.url.replace("http", "ws") + "/api?access_token=" + TOKEN)
    try:
        await actions.write_message(nested)
        answer = json.loads(await actions.read_message())
        assert (answer["status"], answer["retcode"]) == ("failed", 1400)
        await actions.write_message(json.dumps({"action": "get_status", "echo": 2}))
        assert json.loads(await actions.read_message())["echo"] == 2    # still open
    finally:
        actions.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await sent_texts(harness) == []


@pytest.mark.gen_test(timeout=30)
async def test_http_statuses_for_token_action_and_body(harness, caplog):
    caplog.set_level(logging.DEBUG)
    await harness.start()
    assert (await harness.call("get_status", token=None))[0] == 401
    code, answer = await harness.call("get_status", token="wrong-token")
    assert (code, answer["retcode"]) == (403, 1403)
    assert (await harness.call("get_status", token=None,
                               query="?access_token=" + TOKEN))[0] == 200
    assert (await harness.call("get_status", token=None, query="?access_token=x"))[0] == 403
    assert (await harness.call("get_status", token=None,
                               headers={"Authorization": "Basic " + TOKEN}))[0] == 401
    code, answer = await harness.call("no_such_action")
    assert (code, answer["retcode"]) == (404, 1404)
    assert (await harness.call("no_such_action", token=None))[0] == 401
    assert (await harness.call("get_status", body=b"{not json"))[0] == 400
    assert (await harness.call("get_status", body=b"[1, 2]"))[0] == 400
    assert (await harness.call("get_status", body=b"x=1",
                               headers={"Content-Type": "text/plain"}))[0] == 406
    huge = json.dumps({"message": "x" * (handlers.MAX_BODY + 1)}).encode()
    assert (await harness.call("send_private_msg", body=huge))[0] == 400
    # GET with a query, and a form body, work like JSON.
    code, answer = await harness.call("get_stranger_info", method="GET",
                                      query="?user_id=%d" % FRIEND)
    assert (code, answer["data"]["nickname"]) == (200, "Alice")
    code, answer = await harness.call("get_stranger_info", body=b"user_id=20002", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert (code, answer["data"]["nickname"]) == (200, "Bob")
    # The access log leaves out the query, where a token may travel.
    assert "/get_status (127.0.0.1)" in caplog.text and TOKEN not in caplog.text


@pytest.mark.gen_test(timeout=30)
async def test_async_and_rate_limited_suffixes(harness, monkeypatch):
    monkeypatch.setattr(actions, "RATE_LIMIT_INTERVAL", 0.05)
    await harness.start()
    code, answer = await harness.call("send_private_msg_async", {"user_id": FRIEND,
                                                                 "message": "later"})
    assert (code, answer) == (200, {"status": "async", "retcode": 1, "data": None})
    for n in range(2):
        code, answer = await harness.call("send_group_msg_rate_limited",
                                          {"group_id": GROUP, "message": "slow %d" % n})
        assert answer["status"] == "async"
    await wait_sent(harness, ("buddy", FRIEND, "later"))
    await wait_sent(harness, ("group", GROUP, "slow 1"))
    assert (await harness.call("no_such_action_async"))[0] == 404


@pytest.mark.gen_test(timeout=30)
async def test_an_idempotency_key_sends_once(harness):
    await harness.start()
    params = {"user_id": FRIEND, "message": "only once", "idempotency_key": "k-1"}
    first = await harness.ok("send_private_msg", params)
    second = await harness.ok("send_private_msg", params)
    assert first == second
    assert await sent_texts(harness) == [("buddy", FRIEND, "only once")]


# -- events: HTTP POST ------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_events_are_posted_signed_and_a_quick_reply_is_sent(harness):
    record = {"answer": lambda event: {"reply": "pong"}
              if event.get("raw_message") == "ping" else None}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port, secret=SECRET)
    await harness.world.control.say(**{"from": FRIEND, "text": "ping"})
    await harness.world.control.say(**{"from": 20002, "group": GROUP, "text": "ping"})
    await wait_sent(harness, ("buddy", FRIEND, "pong"))
    await wait_sent(harness, ("group", GROUP, "@Bob pong"))
    assert all(e["signed"] and e["self_id"] == "10001" for e in record["events"])
    lifecycle = events_of(record, "meta_event")[0]
    assert (lifecycle["meta_event_type"], lifecycle["sub_type"]) == ("lifecycle", "enable")
    private, group = events_of(record, "message")
    assert (private["message_type"], private["sub_type"], private["user_id"],
            private["sender"]["nickname"]) == ("private", "friend", FRIEND, "Alice")
    assert (group["message_type"], group["group_id"], group["user_id"]) == (
        "group", GROUP, 20002)
    stored = await harness.ok("get_msg", {"message_id": private["message_id"]})
    assert (stored["message"], stored["direction"]) == ("ping", "in")


@pytest.mark.gen_test(timeout=30)
async def test_received_faces_become_face_segments(harness):
    record = {}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    await harness.world.control.say(**{"from": FRIEND, "content": ["a[b]", ["face", 14]]})
    message = (await eventually(lambda: events_of(record, "message"), "the event"))[0]
    assert message["message"] == "a&#91;b&#93;[CQ:face,id=14]"
    assert all(e["signature"] is None for e in record["events"])


@pytest.mark.gen_test(timeout=30)
async def test_failed_posts_are_retried_then_kept_in_the_store(harness, monkeypatch, caplog):
    monkeypatch.setattr(delivery, "POST_BACKOFF", 0.01)
    monkeypatch.setattr(delivery, "POST_ATTEMPTS", 3)
    record = {"fail": 2}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    api = await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    await eventually(lambda: events_of(record, "meta_event"), "the lifecycle event")
    assert record["attempts"] == 3
    assert [r.getMessage().split(";")[1] for r in caplog.records if "failed (HTTP 500)"
            in r.getMessage()] == [" try 2 in 0.01 s", " try 3 in 0.02 s"]
    record["fail"] = 10
    await harness.world.control.say(**{"from": FRIEND, "text": "lost?"})
    await eventually(lambda: harness.account.store.undelivered() == 1, "the event to be kept")
    assert record["attempts"] == 6
    # The next start posts what was kept.
    record["fail"] = 0
    await api.close()
    harness.api = None
    harness.outbound.close()                # the first start's queue and its store
    harness.outbound.store.close()
    api = await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    kept = await eventually(lambda: events_of(record, "message"), "the kept event")
    assert kept[0]["raw_message"] == "lost?" and harness.account.store.undelivered() == 0


# -- events and actions over WebSocket ----------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_forward_websockets_carry_events_and_actions(harness):
    await harness.start(heartbeat_interval=0.2)
    base = harness.api.url.replace("http", "ws")
    with pytest.raises(HTTPClientError) as refused:
        await websocket.websocket_connect(base + "/ws")
    assert refused.value.code == 401
    with pytest.raises(HTTPClientError) as refused:
        await websocket.websocket_connect(base + "/ws?access_token=nope")
    assert refused.value.code == 403
    universal = await websocket.websocket_connect(HTTPRequest(
        base + "/ws", headers={"Authorization": "Bearer " + TOKEN}))
    actions = await websocket.websocket_connect(base + "/api?access_token=" + TOKEN)
    events = await websocket.websocket_connect(base + "/event?access_token=" + TOKEN)
    try:
        first = json.loads(await universal.read_message())
        assert (first["meta_event_type"], first["sub_type"]) == ("lifecycle", "connect")
        await actions.write_message(json.dumps({"action": "send_private_msg", "echo": 7,
                                                "params": {"user_id": FRIEND,
                                                           "message": "over ws"}}))
        answer = json.loads(await actions.read_message())
        assert (answer["status"], answer["echo"]) == ("ok", 7)
        await actions.write_message("{bad")
        assert json.loads(await actions.read_message())["retcode"] == 1400
        await actions.write_message(json.dumps({"action": "nope", "echo": "e"}))
        assert json.loads(await actions.read_message())["retcode"] == 1404
        await harness.world.control.say(**{"from": FRIEND, "text": "to sockets"})
        for socket in (universal, events):
            while True:
                event = json.loads(await socket.read_message())
                if event["post_type"] == "message":
                    break
                # Heartbeats, and the receipt of the message sent above.
                assert event["post_type"] == "meta_event" or \
                    event["notice_type"] == "message_receipt", event
            assert event["raw_message"] == "to sockets"
        heartbeat = None
        while heartbeat is None:
            event = json.loads(await events.read_message())
            if event.get("meta_event_type") == "heartbeat":
                heartbeat = event
        assert heartbeat["interval"] == 200 and heartbeat["status"]["online"] is True
    finally:
        for socket in (universal, actions, events):
            socket.close()
    await wait_sent(harness, ("buddy", FRIEND, "over ws"))


@pytest.mark.gen_test(timeout=30)
async def test_reverse_websocket_connects_answers_and_reconnects(harness, monkeypatch):
    monkeypatch.setattr(delivery, "REVERSE_BACKOFF", 0.05)

    def script(socket):
        if len(record["sockets"]) == 1:
            socket.write_message(json.dumps({"action": "send_msg", "echo": "r1", "params": {
                "message_type": "group", "group_id": GROUP, "message": "from reverse"}}))
        else:
            socket.write_message(json.dumps({"action": "get_login_info", "echo": "r2"}))
    record = {"script": script}
    port = harness.serve(web.Application([(r"/ws/", ReverseServer, {"record": record})]))
    await harness.start(ws_reverse_url="ws://127.0.0.1:%d/ws/" % port)
    answers = lambda: [f for f in record.get("frames", []) if "echo" in f]  # noqa: E731
    await eventually(lambda: answers(), "the first answer")
    assert answers()[0]["status"] == "ok"
    headers = record["headers"][0]
    assert (headers["X-Self-Id"], headers["X-Client-Role"], headers["Authorization"]) == (
        "10001", "Universal", "Bearer " + TOKEN)
    assert record["frames"][0]["sub_type"] == "connect"
    await wait_sent(harness, ("group", GROUP, "from reverse"))
    record["sockets"][0].close()        # the bot restarts: we connect again
    await eventually(lambda: len(answers()) == 2, "the answer after the reconnect")
    assert answers()[1]["data"]["user_id"] == 10001
    assert harness.account.reverse.connects == 2
    await harness.world.control.say(**{"from": FRIEND, "text": "to reverse"})
    await eventually(lambda: any(f.get("raw_message") == "to reverse"
                                 for f in record["frames"]), "the event")


# -- the token --------------------------------------------------------------------------

@pytest.mark.parametrize("saved", ["", " \n\n", "\xff\n"])
def test_an_empty_token_file_is_replaced_atomically(tmp_path, saved):
    from types import SimpleNamespace
    config = SimpleNamespace(api=ApiConfig(), daemon=SimpleNamespace(state_dir=tmp_path))
    token_file = tmp_path / statedir.TOKEN
    token_file.write_bytes(saved.encode("latin-1"))
    assert api_token(config) is None                  # the CLI finds none
    token = api_token(config, create=True)
    assert token and token == token.strip() and len(token) >= 32
    assert token_file.read_text() == token + "\n"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [statedir.TOKEN]
    assert api_token(config, create=True) == token   # kept from now on
    with pytest.raises(ValueError, match="the API needs a token"):
        server.OneBotApi(ApiConfig(), token=" ")


# -- notices, quick operations, restart, the store's rules ---------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_notices_and_requests_become_onebot_events(harness):
    record = {}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    control = harness.world.control
    await control.call("event", {"to": 10001, "poll_type": "input_notify", "from": FRIEND})
    await control.call("event", {"to": 10001, "poll_type": "system_message", "from": 20003,
                                 "type": "verify_required", "text": "add me"})
    await control.call("event", {"to": 10001, "poll_type": "sys_g_msg", "from": 20003,
                                 "group": GROUP, "type": "group_join"})
    await control.call("event", {"to": 10001, "poll_type": "shake_message", "from": FRIEND})
    await eventually(lambda: len(events_of(record, "notice")) == 2, "the notices")
    request, = events_of(record, "request")
    assert (request["request_type"], request["user_id"], request["comment"]) == (
        "friend", 20003, "add me")
    joined, poke = events_of(record, "notice")
    assert (joined["notice_type"], joined["sub_type"], joined["group_id"]) == (
        "group_increase", "invite", GROUP)
    assert (poke["notice_type"], poke["sub_type"], poke["user_id"], poke["target_id"]) == (
        "notify", "poke", FRIEND, 10001)


@pytest.mark.gen_test(timeout=30)
async def test_handle_quick_operation_action_and_at_sender(harness):
    await harness.start()
    context = {"post_type": "message", "message_type": "group", "group_id": GROUP,
               "user_id": 20002, "self_id": 10001}
    await harness.ok(".handle_quick_operation", {"context": context,
                                                 "operation": {"reply": "plain",
                                                               "at_sender": False}})
    await wait_sent(harness, ("group", GROUP, "plain"))
    code, answer = await harness.call(".handle_quick_operation_async", {
        "context": context, "operation": {"reply": "to you"}})
    assert answer["status"] == "async"
    await wait_sent(harness, ("group", GROUP, "@Bob to you"))
    assert await sent_texts(harness) == [("group", GROUP, "plain"),
                                         ("group", GROUP, "@Bob to you")]
    code, answer = await harness.call(".handle_quick_operation", {"context": 1})
    assert answer["retcode"] == 100


@pytest.mark.gen_test(timeout=30)
async def test_set_restart_restarts_the_client_and_sends_still_work(harness):
    api = await harness.start()
    states = []
    harness.account.client.on("state", lambda event: states.append(event.new.value))
    await harness.ok("set_restart", {"delay": 0})
    await eventually(lambda: states[-1:] == ["online"], "the client to be back")
    assert states[0] == "stopped"
    await harness.ok("send_private_msg", {"user_id": FRIEND, "message": "after restart"})
    assert await sent_texts(harness) == [("buddy", FRIEND, "after restart")]
    code, answer = await harness.call("get_msg", {"message_id": 999})
    assert (answer["status"], answer["retcode"]) == ("failed", 100)
    code, answer = await harness.call("enter_verify_code", {"code": "ABCD"})
    assert (answer["retcode"], answer["msg"]) == (
        103, "no verify code is awaited (the client is online)")


@pytest.mark.gen_test(timeout=30)
async def test_a_row_left_sending_by_a_crash_is_not_sent_again(harness):
    from webqq.onebot.store import Store
    store = Store(harness.tmp_path / "messages.sqlite3")
    in_flight, _ = store.add_outgoing(chat="buddy", target=FRIEND, user_id=10001,
                                      text="was on the wire",
                                      data={"pieces": ["was on the wire"]})
    queued, _ = store.add_outgoing(chat="buddy", target=FRIEND, user_id=10001,
                                   text="never left", data={"pieces": ["never left"]})
    store.set_status(in_flight, "sending")
    store.close()
    api = await harness.start()
    await wait_sent(harness, ("buddy", FRIEND, "never left"))
    assert await sent_texts(harness) == [("buddy", FRIEND, "never left")]
    assert harness.account.store.get(in_flight).status == "ambiguous"
    assert harness.account.store.get(queued).status == "sent"


@pytest.mark.gen_test(timeout=30)
async def test_a_row_waits_its_turn_queued_and_is_sending_before_it_goes_out(harness):
    from webqq.onebot.store import Store
    api = await harness.start()
    harness.outbound.send_interval = 60.0       # the second message waits its turn
    at_transmit = []
    harness.account.client.on("transmitting", lambda event: at_transmit.append(
        (event.message.text, harness.account.store.counts().get("sending"))))
    ids = [(await harness.ok("send_private_msg", {"user_id": FRIEND,
                                                  "message": "first"}))["message_id"]]
    code, answer = await harness.call("send_private_msg_async", {"user_id": FRIEND,
                                                                 "message": "second"})
    assert (code, answer["status"]) == (200, "async")
    await eventually(lambda: harness.account.store.queued(), "second accepted")
    # "second" waits in the store, not in the client: still queued, so a SIGKILL now
    # would leave it to be sent at the next start.
    assert [(row.text, row.status) for row in harness.account.store.queued()] == [("second", "queued")]
    ids.append(harness.account.store.queued()[0].id)
    assert harness.account.store.get(ids[0]).status == "sent"
    crashed = Store(harness.tmp_path / "messages.sqlite3")
    assert crashed.recover() == 0
    crashed.close()
    harness.outbound.send_interval = 0.0
    harness.outbound.pump()
    await wait_sent(harness, ("buddy", FRIEND, "second"))
    await eventually(lambda: harness.account.store.get(ids[1]).status == "sent", "second sent")
    assert at_transmit == [("first", 1), ("second", 1)]     # marked before it went out


@pytest.mark.gen_test(timeout=30)
async def test_the_post_queue_is_bounded_and_kept_at_close(harness, monkeypatch):
    from webqq.onebot.store import Store
    monkeypatch.setattr(delivery, "POST_QUEUE", 2)
    monkeypatch.setattr(delivery, "POST_BACKOFF", 30.0)    # the first stays in retry
    from conftest import refused_port
    api = await harness.start(post_url="http://127.0.0.1:%d/" % refused_port())
    for n in range(3):
        await harness.world.control.say(**{"from": FRIEND, "text": "m%d" % n})
    await eventually(lambda: harness.account.counts["received"] == 3, "the messages")
    assert harness.account.store.undelivered() == 2          # lifecycle enable, then m0 spilled
    await api.close()
    harness.api = None
    store = Store(harness.tmp_path / "messages.sqlite3")
    kept = [json.loads(body) for body in store.take_events(harness.account.poster.url, 10)]
    store.close()
    assert [e.get("raw_message") for e in kept] == [None, "m0", "m1", "m2"]


@pytest.mark.gen_test(timeout=30)
async def test_tokens_are_compared_in_constant_time(harness, monkeypatch):
    await harness.start()
    seen = []
    real = handlers.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)
    monkeypatch.setattr(handlers.hmac, "compare_digest", spy)
    assert (await harness.call("get_status", token="guess"))[0] == 403
    assert seen == [(b"guess", TOKEN.encode())]


@pytest.mark.gen_test(timeout=30)
async def test_reverse_websocket_backs_off_while_refused(harness, monkeypatch, caplog):
    from conftest import refused_port
    monkeypatch.setattr(delivery, "REVERSE_BACKOFF", 0.01)
    monkeypatch.setattr(delivery, "REVERSE_BACKOFF_MAX", 0.04)
    await harness.start(ws_reverse_url="ws://127.0.0.1:%d/ws/" % refused_port())

    def delays():
        return [r.getMessage().rsplit(" again in ", 1)[1] for r in caplog.records
                if "reverse WebSocket" in r.getMessage()]
    await eventually(lambda: len(delays()) >= 4, "four attempts")
    assert delays()[:4] == ["0.01 s", "0.02 s", "0.04 s", "0.04 s"]


@pytest.mark.gen_test(timeout=30)
async def test_credentials_in_the_event_urls_are_not_logged(harness, monkeypatch, caplog):
    from conftest import refused_port
    monkeypatch.setattr(delivery, "POST_BACKOFF", 0.01)
    monkeypatch.setattr(delivery, "REVERSE_BACKOFF", 0.01)
    port = refused_port()
    await harness.start(
        post_url="http://user:UrlPass-qx7@127.0.0.1:%d/hook?key=QueryKey-qx5" % port,
        ws_reverse_url="ws://127.0.0.1:%d/ws?access_token=WsTok-qx4" % port)
    await eventually(lambda: [r for r in caplog.records if "failed 5 times" in r.getMessage()]
                     and [r for r in caplog.records if "reverse WebSocket" in r.getMessage()],
                     "a failed POST and a failed connect")
    lines = [r.getMessage() for r in caplog.records]
    # Each secret's tail, not digits: a port number may hold "555" (55589 did).
    assert not [line for line in lines if "qx7" in line or "qx5" in line or "qx4" in line]
    assert "event POST to http://********@127.0.0.1:%d/hook?key=******** failed" % port \
        in "\n".join(lines)
    assert "reverse WebSocket ws://127.0.0.1:%d/ws?access_token=********:" % port \
        in "\n".join(lines)


@pytest.mark.gen_test(timeout=30)
async def test_temporary_session_routes_are_kept_for_sessions_max_strangers(harness,
                                                                           monkeypatch):
    import webqq.onebot.outbound as outbound
    monkeypatch.setattr(outbound, "SESSIONS_MAX", 2)
    await harness.start()
    for person, via in ((20003, {"discussion": DISCUSSION}), (20002, {"group": 30001}),
                        (20003, {"discussion": DISCUSSION}), (20001, {"group": 30001})):
        seen = len(harness.outbound.sessions)
        await harness.world.control.call("event", dict(to=10001, poll_type="sess_message",
                                                       text="psst", **via, **{"from": person}))
        deadline = asyncio.get_running_loop().time() + 10
        while person not in harness.outbound.sessions or \
                list(harness.outbound.sessions)[-1] != person:
            assert asyncio.get_running_loop().time() < deadline, harness.outbound.sessions
            await asyncio.sleep(0.02)
        assert len(harness.outbound.sessions) == min(seen + 1, 2)
    # 20002 was heard from longest ago: forgotten; 20003 spoke again and stays.
    assert list(harness.outbound.sessions) == [20003, 20001]


@pytest.mark.gen_test(timeout=30)
async def test_a_stranger_met_in_a_discussion_is_answered_in_a_temporary_session(harness):
    record = {"answer": lambda event: {"reply": "hello stranger"}
              if event.get("post_type") == "message" else None}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    await harness.world.control.call("event", {"to": 10001, "poll_type": "sess_message",
                                               "from": 20003, "discussion": DISCUSSION,
                                               "text": "psst"})
    await wait_sent(harness, ("session", 20003, "hello stranger"))
    event, = events_of(record, "message")
    assert (event["message_type"], event["sub_type"], event["user_id"]) == (
        "private", "group", 20003)
