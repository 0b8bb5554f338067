"""/metrics: the Prometheus text format, parsed by prometheus_client's own parser, whose
counters match what the test did; and HTTPStream's observer, once per request."""
import asyncio
import socket

import pytest
from api_helpers import FRIEND, TOKEN, eventually
from prometheus_client.parser import text_string_to_metric_families
from tornado import web
from tornado.httpclient import HTTPRequest
from urllib.request import Request

from webqq.http.stream import ConnectError, HTTPStream, RetryPolicy


async def scrape(harness, token=TOKEN):
    headers = {"Authorization": "Bearer " + token} if token else {}
    response = await harness.http.fetch(HTTPRequest(harness.api.url + "/metrics",
                                                    headers=headers), raise_error=False)
    return response


def samples(text):
    """{(sample name, sorted label items): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.mark.gen_test(timeout=40)
async def test_metrics_parse_and_count_what_the_test_did(harness):
    api = await harness.start()
    client = harness.account.client
    client.stream.observer = api.metrics.http_observer(10001)
    for text in ("m1", "m2"):
        await harness.ok("send_private_msg", {"user_id": FRIEND, "message": text})
    for text in ("in1", "in2", "in3"):
        await harness.world.control.say(**{"from": FRIEND, "text": text})
    watch = api.health.watches[10001]
    await eventually(lambda: watch.counts["received"] == 3, "three messages in")
    await harness.world.control.call("kick", {"account": 10001})        # one relink
    await eventually(lambda: watch.counts["relinks"] == 1 and watch.ready(), "relinked")
    for _ in range(4):
        await harness.ok("get_status")

    response = await scrape(harness)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    found = samples(response.body.decode())
    account = "10001"
    assert value(found, "webqq_messages_sent_total", account=account) == 2
    assert value(found, "webqq_messages_received_total", account=account) == 3
    assert value(found, "webqq_messages_failed_total", account=account) == 0
    assert value(found, "webqq_relinks_total", account=account) == 1
    assert value(found, "webqq_relogins_total", account=account) == 0
    assert value(found, "webqq_account_state", account=account, state="online") == 1
    assert value(found, "webqq_account_state", account=account, state="relinking") == 0
    assert value(found, "webqq_account_ready", account=account) == 1
    polls = value(found, "webqq_polls_answered_total", account=account)
    assert 0 < polls <= client.polls_answered
    assert value(found, "webqq_outbox_depth", account=account) == 0
    assert value(found, "webqq_store_messages", account=account, status="sent") == 2
    assert value(found, "webqq_store_messages", account=account, status="received") == 3
    assert value(found, "webqq_store_bytes", account=account) > 0
    assert value(found, "webqq_api_requests_total", endpoint="get_status",
                 status="200") == 4
    assert value(found, "webqq_api_requests_total", endpoint="send_private_msg",
                 status="200") == 2
    assert value(found, "webqq_api_request_seconds_count", endpoint="get_status") == 4
    # The client's own requests since the observer was set: the two sends, the polls.
    assert value(found, "webqq_http_requests_total", account=account,
                 endpoint="/channel/send_buddy_msg2", status="200") == 2
    assert value(found, "webqq_http_requests_total", account=account,
                 endpoint="/channel/poll2", status="200") >= 1
    assert value(found, "webqq_http_request_seconds_count", account=account,
                 endpoint="/channel/send_buddy_msg2") == 2


@pytest.mark.gen_test(timeout=30)
async def test_metrics_need_the_token_unless_public(harness):
    await harness.start()
    assert (await scrape(harness, token=None)).code == 401
    assert (await scrape(harness, token="wrong")).code == 403


@pytest.mark.gen_test(timeout=30)
async def test_public_metrics_need_no_token(harness):
    await harness.start(metrics_public=True)
    response = await scrape(harness, token=None)
    assert response.code == 200 and b"webqq_account_ready" in response.body


class _Hello(web.RequestHandler):
    def get(self, status):
        self.set_status(int(status))
        self.finish("hi")


@pytest.mark.gen_test(timeout=30)
async def test_the_observer_sees_each_request_once_with_its_status_or_error(harness,
                                                                            caplog):
    port = harness.serve(web.Application([(r"/status/(\d+)", _Hello)]))
    with socket.socket() as probe:                  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
    stream = HTTPStream(retry=RetryPolicy(attempts=1))
    seen = []
    stream.observer = lambda request, outcome, seconds: seen.append(
        (request.selector, outcome if isinstance(outcome, int) else type(outcome),
         seconds))
    try:
        assert (await stream.fetch(Request("http://127.0.0.1:%d/status/200" % port))
                ).status == 200
        assert (await stream.fetch(Request("http://127.0.0.1:%d/status/404" % port))
                ).status == 404
        with pytest.raises(ConnectError):
            await stream.fetch(Request("http://127.0.0.1:%d/x" % refused))
        assert [(path, outcome) for path, outcome, _ in seen] == [
            ("/status/200", 200), ("/status/404", 404), ("/x", ConnectError)]
        assert all(0 <= seconds < 5 for _, _, seconds in seen)

        # An observer that raises is logged; the request still ends in its readback.
        stream.observer = lambda *args: 1 / 0
        assert (await stream.fetch(Request("http://127.0.0.1:%d/status/200" % port))
                ).status == 200
        assert "HTTPStream observer" in caplog.text
    finally:
        stream.close()
        await asyncio.sleep(0)
