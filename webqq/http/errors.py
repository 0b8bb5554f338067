"""The errors HTTPStream reports, one tree for every way a request can fail.

::

    HTTPStreamError                 base; .request is the urllib Request (or None)
    ├── ConnectError                the request was certainly not sent
    │   └── ResolveError            the host name did not resolve
    ├── TLSError                    TLS handshake failed (.verify: a certificate problem)
    ├── HTTPTimeoutError            a deadline passed; .phase: queue, connect, request
    ├── ConnectionClosedError       the server closed or reset before the response ended
    ├── MalformedResponseError      the response broke HTTP/1.1 syntax or framing
    │   └── ResponseTooLargeError   a header section or body over its cap
    ├── TooManyRedirectsError       more redirects than allowed, or a redirect loop
    ├── HTTPStatusError             a retryable status (503, ...) outlasted the retries
    └── HTTPStreamShutdownError     HTTPStream.close() ended the request

An HTTP status is not an error: a 404 reaches the readback as a response. Only a
status the retry policy retries and that is still there when the attempts are spent
becomes `HTTPStatusError`, carrying that last response.
"""
from typing import Any, Optional


class HTTPStreamError(Exception):
    """Base of every HTTPStream failure.

    `request` is the request that failed (set by HTTPStream before the errback
    sees the error); `attempts` is how many times it was tried.
    """

    def __init__(self, message: str, request: Any = None) -> None:
        super().__init__(message)
        self.request = request
        self.attempts = 0


class ConnectError(HTTPStreamError):
    """Raised when no connection could be made (refused, unreachable, reset during
    connect): nothing of the request reached the server."""


class ResolveError(ConnectError):
    """Raised when the host name did not resolve. `.temporary` is True for a
    failure worth retrying (EAI_AGAIN), False for a name that does not exist."""

    def __init__(self, message: str, request: Any = None, temporary: bool = True) -> None:
        super().__init__(message, request)
        self.temporary = temporary


class TLSError(HTTPStreamError):
    """Raised when the TLS handshake failed. `.verify` is True when the server's
    certificate was refused (untrusted, expired, wrong name): never retried."""

    def __init__(self, message: str, request: Any = None, verify: bool = False) -> None:
        super().__init__(message, request)
        self.verify = verify


class HTTPTimeoutError(HTTPStreamError):
    """Raised when a deadline passed. `.phase` names it: "queue" (waiting for a
    connection slot), "connect" (DNS, TCP and TLS) or "request" (the whole
    exchange, from the start of the attempt to the last byte of the response)."""

    def __init__(self, phase: str, seconds: float, request: Any = None) -> None:
        super().__init__(f"Timeout {_PHASE_WORDS[phase]} ({seconds:g} s)", request)
        self.phase = phase
        self.seconds = seconds


_PHASE_WORDS = {"queue": "in request queue", "connect": "while connecting",
                "request": "during request"}


class ConnectionClosedError(HTTPStreamError):
    """Raised when the server closed or reset the connection after the request
    was (perhaps) sent and before the response was complete. `.response_started`
    says whether any byte of the response had arrived."""

    def __init__(self, message: str, request: Any = None,
                 response_started: bool = False) -> None:
        super().__init__(message, request)
        self.response_started = response_started


class MalformedResponseError(HTTPStreamError):
    """Raised when the response broke HTTP/1.1: a bad status line, a header
    line without a colon, conflicting lengths, an invalid chunk size, a corrupt
    gzip body. The connection is closed, never reused."""


class ResponseTooLargeError(MalformedResponseError):
    """Raised when the header section or the body (on the wire or decoded)
    passed its cap."""


class TooManyRedirectsError(HTTPStreamError):
    """Raised when a chain of redirects went past the limit or came back to a
    URL it had already visited."""


class HTTPStatusError(HTTPStreamError):
    """Raised when the server kept answering with a status the retry policy
    retries (429, 502, 503, 504) until the attempts were spent. `.response` is
    the last response."""

    def __init__(self, message: str, response: Any, request: Any = None) -> None:
        super().__init__(message, request)
        self.response = response


class HTTPStreamShutdownError(HTTPStreamError):
    """Raised for every request still pending when HTTPStream.close() ran.

    Not a closed connection (that is `ConnectionClosedError`), and named apart
    from Tornado's `iostream.StreamClosedError` and
    `simple_httpclient.HTTPStreamClosedError`, which mean one.
    """


def describe(error: Optional[BaseException]) -> str:
    """A short text for logs: the class name and message."""
    if error is None:
        return "no error"
    return f"{type(error).__name__}: {error}"
