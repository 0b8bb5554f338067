"""RetryPolicy as a value: what it retries, how long it waits, when it gives up."""
from types import SimpleNamespace

import pytest

from webqq.http.errors import (ConnectError, ConnectionClosedError, HTTPStatusError,
                               HTTPTimeoutError, MalformedResponseError, ResolveError,
                               ResponseTooLargeError, TLSError)
from webqq.http.retry import RetryPolicy, backoff_delay, retry_after


class Headers(dict):
    def get(self, name, default=None):
        return super().get(name, default)


def response(status, retry_after_value=None):
    headers = Headers({"Retry-After": retry_after_value} if retry_after_value else {})
    return SimpleNamespace(status=status, reason="Busy", headers=headers)


def test_backoff_doubles_up_to_the_cap_with_jitter_taken_off():
    policy = RetryPolicy(attempts=10, backoff=0.5, backoff_max=3.0, jitter=0.5)
    delays = []
    for _ in range(5):
        policy = policy.increment("GET", error=ConnectError("refused"))
        delays.append((policy.delay(rng=lambda: 0.0), policy.delay(rng=lambda: 1.0)))
    assert delays == [(0.5, 0.25), (1.0, 0.5), (2.0, 1.0), (3.0, 1.5), (3.0, 1.5)]


def test_spent_policy_raises_the_error_itself():
    policy = RetryPolicy(attempts=2).increment("GET", error=ConnectError("refused"))
    error = ConnectError("again")
    with pytest.raises(ConnectError) as caught:
        policy.increment("GET", error=error)
    assert caught.value is error


@pytest.mark.parametrize("error, method, retried", [
    (ConnectError("refused"), "POST", True),
    (ResolveError("try again", temporary=True), "POST", True),
    (ResolveError("no such name", temporary=False), "GET", False),
    (TLSError("cut short"), "POST", True),
    (TLSError("wrong name", verify=True), "GET", False),
    (HTTPTimeoutError("connect", 1), "POST", True),
    (HTTPTimeoutError("request", 1), "POST", False),
    (HTTPTimeoutError("request", 1), "GET", True),
    (ConnectionClosedError("reset"), "POST", False),
    (ConnectionClosedError("reset"), "GET", True),
    (MalformedResponseError("garbage"), "GET", True),
    (ResponseTooLargeError("huge"), "GET", False),
])
def test_what_is_retried_follows_was_it_sent(error, method, retried):
    try:
        RetryPolicy().increment(method, error=error)
    except type(error):
        assert not retried
    else:
        assert retried


def test_marked_repeatable_post_is_retried_after_sending():
    poll = RetryPolicy(idempotent=True)
    assert poll.increment("POST", error=ConnectionClosedError("reset")).retried == 1
    never = RetryPolicy(idempotent=False)
    with pytest.raises(ConnectionClosedError):
        never.increment("GET", error=ConnectionClosedError("reset"))


def test_status_retries_end_in_http_status_error():
    policy = RetryPolicy(attempts=2)
    assert policy.wants_retry("GET", 503) and not policy.wants_retry("POST", 503)
    assert not policy.wants_retry("GET", 500)
    policy = policy.increment("GET", response=response(503))
    with pytest.raises(HTTPStatusError) as caught:
        policy.increment("GET", response=response(503))
    assert caught.value.response.status == 503


def test_retry_after_replaces_the_backoff_and_is_capped():
    policy = RetryPolicy(retry_after_max=60).increment("GET", response=response(429, "7"))
    assert policy.delay(response(429, "7")) == 7.0
    assert policy.delay(response(429, "86400")) == 60.0
    assert policy.delay(response(429, "-1"), rng=lambda: 0.0) == 0.5


def test_retry_after_forms():
    assert retry_after(" 120 ") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("1.5") is None and retry_after("soon") is None and retry_after(None) is None


def test_fresh_policy_for_the_next_request_of_a_chain():
    spent = RetryPolicy(attempts=3).increment("GET", error=ConnectError("x"))
    assert spent.retried == 1 and spent.fresh().retried == 0
    assert spent.fresh() == RetryPolicy(attempts=3)


def test_backoff_delay_is_the_one_formula_with_a_bounded_exponent():
    assert [backoff_delay(n, 1.0, 60.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(3, 1.0, 60.0, jitter=0.5, rng=lambda: 1.0) == 2.0
    assert backoff_delay(10 ** 6, 0.5, 30.0) == 30.0      # no OverflowError


@pytest.mark.parametrize("error, unprocessed", [
    (ConnectError("refused"), True),
    (ResolveError("no such name", temporary=False), True),
    (TLSError("handshake cut", verify=False), True),
    (HTTPTimeoutError("queue", 1.0), True),
    (HTTPTimeoutError("connect", 1.0), True),
    (HTTPTimeoutError("request", 1.0), False),
    (ConnectionClosedError("reset"), False),
    (MalformedResponseError("bad"), False),
    (HTTPStatusError("busy", response(503)), True),
    (HTTPStatusError("busy", response(429)), True),
    (HTTPStatusError("gateway", response(502)), False),
    (HTTPStatusError("gateway", response(504)), False),
])
def test_certainly_unprocessed_says_whether_a_resend_is_safe(error, unprocessed):
    assert error.certainly_unprocessed is unprocessed
