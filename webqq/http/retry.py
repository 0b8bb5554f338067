"""RetryPolicy: when a failed request is tried again, and after how long.

A policy is a frozen value. HTTPStream holds one default and a request may
bring its own; each retry replaces the request's policy with the one
`increment()` returns, so nothing is shared or mutated. The policy only
decides; HTTPStream waits (with `IOLoop.call_later`) and logs.
"""
import email.utils
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, FrozenSet, Optional

from .errors import (HTTPStatusError, HTTPStreamError, ResolveError, ResponseTooLargeError,
                     TLSError)

#: Methods RFC 9110 §9.2.2 calls idempotent: sending one twice does no harm.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one request.

    Args:
        attempts: tries in all, the first included; 1 never retries.
        backoff: seconds before the first retry; each later one doubles it.
        backoff_max: cap on the doubled delay, in seconds.
        jitter: fraction of the delay taken off at random (0 to 1), so that
            many chains failing together do not come back together.
        statuses: response statuses worth retrying (the server said "not now").
        retry_after_max: cap on a server's Retry-After, in seconds.
        idempotent: None decides by method (GET, HEAD, PUT, DELETE, OPTIONS,
            TRACE may be sent twice); True says this request may be repeated
            whatever its method (a long poll); False never repeats it once sent.

    What is retried, by "did the server see the request?":

    * not sent (refused, connect timeout, DNS failure that may pass, TLS
      handshake cut short): any method;
    * perhaps sent (timeout during the request, connection closed or reset,
      malformed response): only a repeatable request;
    * a status in `statuses`: only a repeatable request; Retry-After, when
      given, replaces the backoff (up to `retry_after_max`);
    * never: certificate failures, a name that does not exist, responses over
      a size cap.

    Delay before retry n (1, 2, ...): ``d = min(backoff_max, backoff * 2**(n-1))``,
    then ``d * (1 - jitter * random())``. With the defaults (0.5 s, cap 30 s,
    jitter 0.5): retry 1 waits 0.25-0.5 s, retry 2 0.5-1 s, retry 3 1-2 s.
    """

    attempts: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    statuses: FrozenSet[int] = frozenset({429, 502, 503, 504})
    retry_after_max: float = 300.0
    idempotent: Optional[bool] = None
    #: retries made so far (state, not configuration).
    retried: int = field(default=0, compare=False)

    def repeatable(self, method: str) -> bool:
        """May a request with this method be sent again after it was sent once?"""
        if self.idempotent is not None:
            return self.idempotent
        return method.upper() in IDEMPOTENT_METHODS

    def increment(self, method: str, error: Optional[HTTPStreamError] = None,
                  response: Any = None) -> "RetryPolicy":
        """The policy for the next attempt after `error` or a retryable `response`.

        Raises:
            the `error` itself, when it is not worth retrying or the attempts
            are spent; `HTTPStatusError` for a response in the same case.
        """
        if error is not None:
            if not self._retryable_error(method, error):
                raise error
        elif response is None or not self.wants_retry(method, response.status):
            raise ValueError("increment() needs an error or a retryable response")
        if self.retried + 1 >= self.attempts:
            if error is not None:
                raise error
            raise HTTPStatusError(f"{response.status} {response.reason} after "
                                  f"{self.attempts} attempts", response)
        return replace(self, retried=self.retried + 1)

    def fresh(self) -> "RetryPolicy":
        """The same policy with no retries counted: for the next request of a chain."""
        return replace(self, retried=0) if self.retried else self

    def wants_retry(self, method: str, status: int) -> bool:
        """Is a response with this status one to retry (attempts permitting)?"""
        return status in self.statuses and self.repeatable(method)

    def delay(self, response: Any = None, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before the attempt this policy is for (see class doc)."""
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.retry_after_max)
        return backoff_delay(max(1, self.retried), self.backoff, self.backoff_max,
                             self.jitter, rng)

    def _retryable_error(self, method: str, error: HTTPStreamError) -> bool:
        if isinstance(error, ResolveError):
            return error.temporary
        if isinstance(error, TLSError):
            return not error.verify
        if isinstance(error, ResponseTooLargeError):
            return False
        return error.certainly_unprocessed or self.repeatable(method)


def backoff_delay(attempt: int, base: float, cap: float, jitter: float = 0.0,
                  rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before try ``attempt`` (1, 2, ...) of something that failed:
    ``min(cap, base * 2**(attempt-1))``, less a random fraction of up to ``jitter``
    (0 to 1) of it, so that many failing together do not come back together.

    The one backoff of webqq: HTTP retries, the client's recovery ladder and the
    API's event POSTs and reverse WebSocket all wait by it. With base 1, cap 60 and
    jitter 0: 1, 2, 4, 8, 16, 32, 60, 60, ... seconds.
    """
    delay = min(cap, base * 2 ** min(attempt - 1, 64))  # the exponent bounded: no overflow
    return delay * (1 - jitter * rng()) if jitter else delay


def retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds a Retry-After header asks for (RFC 9110 §10.2.3), or None.

    Accepts whole seconds (``"120"``) or an HTTP-date; anything else ("-1",
    "1.5", garbage) is ignored, as urllib3 does.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
