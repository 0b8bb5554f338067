"""The OneBot API against bad input (issue 11, hardening): numbers that are no integers,
lone surrogates, bytes that are not UTF-8, a JSON body sent as a form. Each is a clear
refusal (a 400 or retcode 100), never a traceback, never a log line with the token or
the message text in it, and nothing is sent."""
import json
import logging
import urllib.parse

import pytest
from api_helpers import FRIEND, GROUP, TOKEN, Webhook, events_of, eventually
from tornado import web, websocket
from tornado.httpclient import HTTPClientError

from webqq.onebot import mapping as onebot
from webqq.onebot.actions import lone_surrogate, to_json


async def sent_texts(harness):
    return [(m["kind"], m["to"], m["text"]) for m in await harness.world.control.sent()]


def no_traceback(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
            or r.exc_info]


# -- integers -----------------------------------------------------------------------------

def test_int64_takes_integers_only():
    for good, value in ((20001, 20001), ("20001", 20001), (" -5 ", -5), (20001.0, 20001),
                        (2 ** 63 - 1, 2 ** 63 - 1), ("+7", 7)):
        assert onebot.int64(good) == value, good
    for bad in (True, False, 20001.9, "20001.9", "20001.0", "0x10", "1_000", "", " ",
                None, [], {}, [20001], float("inf"), float("nan"), 2.0 ** 60, 2 ** 63,
                "1e3", "٣"):
        assert onebot.int64(bad) is None, bad


@pytest.mark.gen_test(timeout=30)
async def test_every_id_parameter_refuses_what_is_no_integer(harness, caplog):
    """``user_id: true`` was user 1 and ``20001.9`` was 20001: every action that takes
    an id refuses both, over JSON and over a query."""
    await harness.start()
    calls = [("send_private_msg", "user_id", {"message": "x"}),
             ("send_msg", "user_id", {"message": "x"}),
             ("send_group_msg", "group_id", {"message": "x"}),
             ("send_discuss_msg", "discuss_id", {"message": "x"}),
             ("get_group_info", "group_id", {}),
             ("get_group_member_list", "group_id", {}),
             ("get_group_member_info", "user_id", {"group_id": GROUP}),
             ("get_group_member_info", "group_id", {"user_id": FRIEND}),
             ("get_stranger_info", "user_id", {}),
             ("get_msg", "message_id", {}),
             ("set_restart", "delay", {})]
    for action, key, others in calls:
        for bad in (True, False, 20001.9, "20001.9", [20001], {"id": 1}):
            code, answer = await harness.call(action, dict(others, **{key: bad}))
            assert (code, answer["status"], answer["retcode"]) == (200, "failed", 100), (
                action, key, bad, answer)
        query = "?%s=20001.9&%s" % (key, urllib.parse.urlencode(others))
        code, answer = await harness.call(action, method="GET", query=query)
        assert answer["retcode"] == 100, (action, key)
    for segment in ({"type": "face", "data": {"id": True}},
                    {"type": "face", "data": {"id": "14.5"}},
                    {"type": "face", "data": {"id": -1}}):
        code, answer = await harness.call("send_private_msg", {"user_id": FRIEND,
                                                               "message": [segment]})
        assert answer["retcode"] == 100, segment
    assert await sent_texts(harness) == []
    assert not no_traceback(caplog)


# -- lone surrogates ------------------------------------------------------------------------

def test_lone_surrogates_are_found_and_escaped_in_answers():
    assert lone_surrogate({"message": [{"type": "text", "data": {"text": "a\ud800"}}]}) \
        == "params.message[0].data.text holds a lone surrogate (U+D800), which is not text"
    assert lone_surrogate({"k\udfff": 1}).startswith("params.<key> holds")
    assert lone_surrogate({"message": "中文 😀", "n": [1, 2.5, None, True]}) is None
    assert to_json({"echo": "\ud83d"}) == '{"echo": "\\ud83d"}'
    assert json.loads(to_json({"echo": "\ud83d"}))["echo"] == "\ud83d"
    assert to_json({"t": "中"}) == '{"t": "中"}'


@pytest.mark.gen_test(timeout=30)
async def test_a_lone_surrogate_in_a_send_is_refused_over_every_carrier(harness, caplog):
    """It answered 'internal error' with a traceback in the log (SQLite cannot store
    it). Now: retcode 100 naming where it is, over HTTP, a WebSocket frame (whose echo
    comes back as sent) and a webhook's quick reply, and nothing is sent."""
    record = {"answer": lambda event: {"reply": "bad \ud800 reply"}
              if event.get("post_type") == "message" else None}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    body = b'{"user_id": 20001, "message": "half \\ud83d an emoji"}'
    code, answer = await harness.call("send_private_msg", body=body)
    assert (code, answer["status"], answer["retcode"]) == (200, "failed", 100)
    assert answer["msg"] == "params.message holds a lone surrogate (U+D83D), which is " \
                            "not text"
    code, answer = await harness.call("send_private_msg_async", body=body)
    assert answer["retcode"] == 100
    code, answer = await harness.call("send_private_msg", body=(
        b'{"user_id": 20001, "message": "ok", "idempotency_key": "\\udc00"}'))
    assert answer["retcode"] == 100
    socket = await websocket.websocket_connect(
        harness.api.url.replace("http", "ws") + "/api?access_token=" + TOKEN)
    try:
        await socket.write_message('{"action": "send_private_msg", "echo": "e\\ud800", '
                                   '"params": {"user_id": 20001, "message": "x\\udfff"}}')
        frame = await socket.read_message()
        answer = json.loads(frame)
        assert (answer["retcode"], answer["echo"]) == (100, "e\ud800")
        await socket.write_message('{"action": "get_status", "echo": "\\ud800"}')
        assert json.loads(await socket.read_message())["echo"] == "\ud800"
    finally:
        socket.close()
    await harness.world.control.say(**{"from": FRIEND, "text": "hello"})
    await eventually(lambda: events_of(record, "message"), "the event")
    await eventually(lambda: [r for r in caplog.records
                              if "a quick operation is ignored" in r.getMessage()],
                     "the quick reply refused")
    assert await sent_texts(harness) == []
    assert not no_traceback(caplog)


# -- bytes that are not UTF-8, and a JSON body sent as a form -----------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_bytes_that_are_not_utf8_are_refused_without_logging_the_request(
        harness, caplog):
    """Tornado refused them itself and logged the whole URL at WARNING: the token and
    the message text. Now a 400 that names the parameter, and no line with either."""
    caplog.set_level(logging.DEBUG)
    await harness.start()
    secret_text = "SecretText42"
    for query, named in (
            ("?access_token=%s&user_id=20001&message=%s%%FF" % (TOKEN, secret_text),
             "the query is not valid UTF-8 (parameter message)"),
            ("?access_token=%s%%FF&message=%s" % (TOKEN, secret_text),
             "the query is not valid UTF-8 (parameter access_token)"),
            ("?access_token=%s&%%FFkey=%s" % (TOKEN, secret_text),
             "the query is not valid UTF-8 (a parameter name)")):
        code, answer = await harness.call("send_private_msg", token=None, method="GET",
                                          query=query)
        assert (code, answer["retcode"], answer["msg"]) == (400, 1400, named), query
    code, answer = await harness.call(
        "send_private_msg", body=("user_id=20001&message=%s%%FF" % secret_text).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (code, answer["msg"]) == (400, "the form is not valid UTF-8 (parameter message)")
    code, answer = await harness.call(
        "send_private_msg", body=b'{"user_id": 20001, "message": "' + secret_text.encode()
        + b'\xff"}')
    assert code == 400 and answer["msg"].startswith("the body is not valid JSON")
    code, answer = await harness.call("images/x.jpg", token=None, method="GET", query=(
        "?access_token=%s&m=%s%%FF" % (TOKEN, secret_text)))
    assert (code, answer["msg"]) == (400, "the query is not valid UTF-8 (parameter m)")
    with pytest.raises(HTTPClientError) as refused:
        await websocket.websocket_connect("%s/ws?access_token=%s&m=%s%%FF" % (
            harness.api.url.replace("http", "ws"), TOKEN, secret_text))
    assert refused.value.code == 400
    # Handlers that read the query Tornado's way: its log lines leave it out too.
    for path in ("healthz", "readyz", "metrics"):
        code, _ = await harness.call(path, token=None, method="GET", query=(
            "?access_token=%s&m=%s%%FF" % (TOKEN, secret_text)))
        assert code in (200, 400, 401), path
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in text and secret_text not in text
    assert "400 GET /send_private_msg (127.0.0.1)" in text
    assert not no_traceback(caplog)
    assert await sent_texts(harness) == []


@pytest.mark.gen_test(timeout=30)
async def test_a_json_body_sent_as_a_form_is_named_as_such(harness):
    """curl -d sends application/x-www-form-urlencoded: the answer was 'user_id is
    required'; it says what to send instead."""
    await harness.start()
    body = json.dumps({"user_id": FRIEND, "message": "via curl"}).encode()
    for content_type in ("application/x-www-form-urlencoded",
                         "application/x-www-form-urlencoded; charset=utf-8"):
        code, answer = await harness.call("send_private_msg", body=body,
                                          headers={"Content-Type": content_type})
        assert (code, answer["retcode"]) == (406, 1400)
        assert answer["msg"] == ("the body is JSON but its Content-Type says "
                                 "application/x-www-form-urlencoded: send Content-Type: "
                                 "application/json")
    # A real form still works, even one whose value starts with a brace.
    code, answer = await harness.call(
        "send_private_msg", body=b"user_id=20001&message=%7Bbraces%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (code, answer["status"]) == (200, "ok")
    assert await sent_texts(harness) == [("buddy", FRIEND, "{braces}")]
