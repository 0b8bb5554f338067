"""Health of the accounts: /healthz and /readyz, the notices of an account's troubles
(bot_offline, bot_online, login_captcha) and the delivery receipts of API sends, on a
client online on the in-process simulator with the OneBot API on loopback."""
import json
from types import SimpleNamespace

import pytest
from api_helpers import FRIEND, TOKEN, Webhook, eventually, events_of
from tornado import web
from tornado.httpclient import HTTPRequest

from webqq.client.client import State
from webqq.onebot import health as health_module
from webqq.onebot.health import AccountNotice, AccountWatch, notice_event


async def get(harness, path, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    response = await harness.http.fetch(HTTPRequest(harness.api.url + path, headers=headers),
                                        raise_error=False)
    body = response.body
    try:
        return response.code, json.loads(body)
    except ValueError:
        return response.code, body


def notices(record, notice_type):
    return [e for e in events_of(record, "notice") if e["notice_type"] == notice_type]


async def start_with_webhook(harness, **settings):
    record = {}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port, **settings)
    return record


@pytest.mark.gen_test(timeout=30)
async def test_healthz_and_readyz_answer_a_loopback_probe_without_the_token(harness):
    await harness.start()
    assert await get(harness, "/healthz") == (200, {"status": "ok", "accounts": 1})
    code, body = await get(harness, "/readyz")
    assert code == 200 and body["ready"] is True
    account = body["accounts"]["10001"]
    assert account["state"] == "online" and account["last_poll_seconds"] < 5
    assert (await get(harness, "/readyz/10001"))[0] == 200
    assert (await get(harness, "/readyz/99999"))[0] == 404

    # An outage: the poll fails, the client relinks until the server is back.
    await harness.world.control.call("offline", {"seconds": 1.5})
    await eventually(lambda: harness.api.health.watches[10001].state is not State.ONLINE,
                     "the client to notice the outage")
    code, body = await get(harness, "/readyz")
    assert code == 503 and body["ready"] is False
    assert body["accounts"]["10001"]["state"] in ("relinking", "relogging", "logging_in")
    await eventually(lambda: harness.api.health.ready(), "the client back online")
    assert (await get(harness, "/readyz"))[0] == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_probe_from_elsewhere_needs_the_token(harness, monkeypatch):
    await harness.start()
    monkeypatch.setattr(health_module, "_loopback", lambda address: False)
    assert (await get(harness, "/readyz"))[0] == 401
    assert (await get(harness, "/healthz", token="wrong"))[0] == 403
    assert (await get(harness, "/readyz", token=TOKEN))[0] == 200


def test_ready_means_online_and_a_poll_answered_within_the_stall_window():
    loop = SimpleNamespace(time=lambda: 1000.0)
    client = SimpleNamespace(state=State.ONLINE, io_loop=loop, last_poll_answer=990.0,
                             stall_after=30.0, on=lambda kind, callback: None)
    watch = AccountWatch(10001, client)
    assert watch.ready() and watch.poll_age() == 10.0
    client.last_poll_answer = 960.0                 # 40 s without an answer: stalled
    assert not watch.ready()
    client.state, client.last_poll_answer = State.RELINKING, 999.0
    assert not watch.ready() and watch.poll_age() is None


def test_notice_events_name_the_sub_type_and_carry_the_facts():
    kicked = notice_event(AccountNotice(10001, "kicked", "kicked: elsewhere", 5.0,
                                        final=True), self_id=10001)
    assert (kicked["notice_type"], kicked["sub_type"], kicked["tag"]) == (
        "bot_offline", "kicked", "kicked")
    assert kicked["message"] == "kicked: elsewhere" and kicked["user_id"] == 10001
    refused = notice_event(AccountNotice(10001, "offline", "logged out", 5.0, final=True),
                           self_id=10001)
    assert refused["sub_type"] == "refused"
    back = notice_event(AccountNotice(10001, "online", "relinked", 12.5, since=2.0),
                        self_id=10001)
    assert (back["notice_type"], back["sub_type"], back["offline_seconds"]) == (
        "bot_online", "back", 10.5)
    captcha = notice_event(AccountNotice(10001, "captcha", "verify code required", 5.0,
                                         attempt=2, image_path="/x.jpg"),
                           self_id=10001, urls={"image": "http://i", "page": "http://p"})
    assert (captcha["notice_type"], captcha["attempt"], captcha["image_url"],
            captcha["page_url"]) == ("login_captcha", 2, "http://i", "http://p")
    assert "image_path" not in captcha          # the file is the daemon's business


@pytest.mark.gen_test(timeout=30)
async def test_a_relink_and_a_kick_become_bot_offline_and_bot_online(harness):
    record = await start_with_webhook(harness)
    await harness.world.control.call("kick", {"account": 10001})       # 121: relink
    await eventually(lambda: notices(record, "bot_online"), "bot_online")
    dropped, = notices(record, "bot_offline")
    assert (dropped["sub_type"], dropped["self_id"]) == ("dropped", 10001)
    back, = notices(record, "bot_online")
    assert back["sub_type"] == "back" and back["offline_seconds"] >= 0
    assert harness.api.health.watches[10001].counts["relinks"] == 1

    await harness.world.control.call("kick", {"account": 10001, "kick_message": True})
    await eventually(lambda: len(notices(record, "bot_offline")) == 2, "the kick")
    kicked = notices(record, "bot_offline")[1]
    assert kicked["sub_type"] == "kicked" and kicked["user_id"] == 10001


@pytest.mark.gen_test(timeout=30)
async def test_every_api_send_ends_in_a_receipt_and_get_msg_agrees(harness):
    record = await start_with_webhook(harness)
    sent = await harness.ok("send_private_msg", {"user_id": FRIEND, "message": "one"})
    refused = await harness.call("send_private_msg", {"user_id": 99999, "message": "two"})
    failed_id = refused[1]["data"]["message_id"]
    harness.outbound.send_text("buddy", FRIEND, "from a plugin")
    receipts = await eventually(lambda: len(notices(record, "message_receipt")) >= 2 and
                                notices(record, "message_receipt"), "two receipts")
    by_id = {r["message_id"]: r for r in receipts}
    assert by_id[sent["message_id"]]["result"] == "sent"
    assert by_id[sent["message_id"]]["reason"] is None
    assert by_id[sent["message_id"]]["user_id"] == FRIEND
    assert by_id[failed_id]["result"] == "failed" and by_id[failed_id]["reason"]
    for message_id, receipt in by_id.items():
        stored = await harness.ok("get_msg", {"message_id": message_id})
        assert stored["send_status"] == receipt["result"]
        assert (stored["error"] or None) == receipt["reason"]
    # The plugin's message is not the API's: no receipt for it.
    await eventually(lambda: harness.api.health.watches[10001].counts["sent"] == 2,
                     "the plugin's message sent")
    assert len(notices(record, "message_receipt")) == 2


@pytest.mark.gen_test(timeout=40)
async def test_a_captcha_is_announced_shown_and_answered_after_a_wrong_code(harness):
    record = await start_with_webhook(harness)
    control = harness.world.control
    await control.call("captcha", {"account": 10001, "code": "ABCD"})
    await control.call("expire", {"account": 10001})        # the next login needs it
    first = await eventually(lambda: notices(record, "login_captcha"), "login_captcha")
    first = first[0]
    assert first["attempt"] == 1 and first["self_id"] == 10001
    assert first["image_url"] == harness.api.url + "/captcha/image?account=10001"
    assert first["page_url"] == harness.api.url + "/captcha?account=10001"

    assert (await get(harness, "/captcha/image?account=10001"))[0] == 401
    code, image = await get(harness, "/captcha/image?account=10001", token=TOKEN)
    assert code == 200 and image[:2] == b"\xff\xd8"
    code, page = await get(harness, "/captcha?account=10001", token=TOKEN)
    assert code == 200 and b"waiting for a verify code (image 1)" in page
    assert (await get(harness, "/captcha"))[0] == 401
    listed = await harness.ok("get_captcha")
    assert listed[0]["waiting"] and listed[0]["image_path"].endswith("captcha-10001.jpg")

    async def answer(code):
        body = "account=10001&code=%s&access_token=%s" % (code, TOKEN)
        response = await harness.http.fetch(HTTPRequest(
            harness.api.url + "/captcha", method="POST", body=body), raise_error=False)
        return response.code, response.body.decode()

    status, page = await answer("WXYZ")
    assert status == 200 and "verify code entered for 10001" in page
    second = await eventually(lambda: len(notices(record, "login_captcha")) == 2 and
                              notices(record, "login_captcha")[1], "a new image")
    assert second["attempt"] == 2 and "wrong" in second["message"].lower()
    code, state = await get(harness, "/captcha/state?account=10001", token=TOKEN)
    assert state["attempt"] == 2 and state["waiting"] is True
    status, _ = await answer("ABCD")
    assert status == 200
    await eventually(lambda: notices(record, "bot_online"), "online again")
    status, page = await answer("ABCD")
    assert status == 409 and "does not wait for a verify code" in page
