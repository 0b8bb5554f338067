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


def _observe_alike(metrics, reference, endpoints, values):
    """The same WebQQ requests into ``metrics`` and into prometheus_client's own Counter
    and Histogram (``reference``: a registry), as the observer would count them."""
    from prometheus_client import Counter, Histogram
    from webqq.onebot.metrics import HTTP_BUCKETS
    counter = Counter("webqq_http_requests", "WebQQ requests by endpoint and status.",
                      ("account", "endpoint", "status"), registry=reference)
    histogram = Histogram("webqq_http_request_seconds", "WebQQ requests: seconds.",
                          ("account", "endpoint"), buckets=HTTP_BUCKETS,
                          registry=reference)
    for account in (10001, 10002):
        observer = metrics.http_observer(account)
        for endpoint in endpoints:
            for index, seconds in enumerate(values):
                status = 200 if index % 3 else 502
                observer(Request("http://d.web2.qq.com%s?t=%d" % (endpoint, index)),
                         status, seconds)
                counter.labels(str(account), endpoint, str(status)).inc()
                histogram.labels(str(account), endpoint).observe(seconds)


def test_request_series_are_prometheus_clients_own_without_created():
    """The compact counts write what prometheus_client's Counter and Histogram would:
    a value on a bound counts in that bucket, the buckets are cumulative, +Inf holds
    everything, _count and _sum; only their _created series are left out."""
    from prometheus_client import CollectorRegistry, generate_latest
    from webqq.onebot.health import Health
    from webqq.onebot.metrics import Metrics
    metrics, reference = Metrics(Health()), CollectorRegistry()
    values = [0.0, 0.05, 0.0500001, 1.0, 7.5, 60.0, 119.0, 120.0, 121.0, 400.0]
    _observe_alike(metrics, reference, ["/channel/poll2", "/channel/get_msg_tip"], values)
    ours = {key: value for key, value in samples(metrics.exposition().decode()).items()
            if key[0].startswith("webqq_http_")}
    theirs = {key: value for key, value in samples(generate_latest(reference).decode())
              .items() if not key[0].endswith("_created")}
    assert ours == theirs
    assert value(ours, "webqq_http_request_seconds_bucket", account="10001",
                 endpoint="/channel/poll2", le="0.05") == 2       # 0.0 and 0.05 itself
    assert value(ours, "webqq_http_request_seconds_bucket", account="10002",
                 endpoint="/channel/poll2", le="+Inf") == len(values)


def test_request_counts_cost_an_account_little_memory():
    """A thousand accounts' request series in one daemon: each account's dozen endpoints
    cost a few KB (prometheus_client's Counter and Histogram children took 30 KB: an
    object and a lock per bucket)."""
    import gc
    import tracemalloc
    from webqq.onebot.health import Health
    from webqq.onebot.metrics import Metrics
    metrics = Metrics(Health())
    endpoints = ["/channel/ep%d" % n for n in range(12)]
    requests = [Request("http://d.web2.qq.com%s" % endpoint) for endpoint in endpoints]
    accounts = 200
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for account in range(10001, 10001 + accounts):
            observer = metrics.http_observer(account)
            for request in requests:
                observer(request, 200, 0.3)
                observer(request, 404, 2.0)
        per_account = (tracemalloc.get_traced_memory()[0] - before) / accounts
    finally:
        tracemalloc.stop()
    assert per_account < 8 * 1024, per_account
    found = samples(metrics.exposition().decode())
    assert value(found, "webqq_http_request_seconds_count", account="10200",
                 endpoint="/channel/ep11") == 2
