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

Each error answers one question for whoever decides to send a request again:
``certainly_unprocessed`` is True when the server cannot have acted on the request
(it never left this machine whole, or the server refused it before processing).

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

    #: True when the server certainly did not act on the request, so sending it again
    #: cannot make it happen twice; False when it may have (the safe default).
    certainly_unprocessed = False

    def __init__(self, message: str, request: Any = None) -> None:
        super().__init__(message)
        self.request = request
        self.attempts = 0


class ConnectError(HTTPStreamError):
    """Raised when no connection could be made (refused, unreachable, reset during
    connect): nothing of the request reached the server."""

    certainly_unprocessed = True


class ResolveError(ConnectError):
    """Raised when the host name did not resolve. `.temporary` is True for a
    failure worth retrying (EAI_AGAIN), False for a name that does not exist."""

    def __init__(self, message: str, request: Any = None, temporary: bool = True) -> None:
        super().__init__(message, request)
        self.temporary = temporary


class TLSError(HTTPStreamError):
    """Raised when the TLS handshake failed. `.verify` is True when the server's
    certificate was refused (untrusted, expired, wrong name): never retried. The
    request is never sent before the handshake completes."""

    certainly_unprocessed = True

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

    @property
    def certainly_unprocessed(self) -> bool:
        """Waiting for a slot or a connection: nothing was sent yet."""
        return self.phase in ("queue", "connect")


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

    @property
    def certainly_unprocessed(self) -> bool:
        """429 and 503 say "not now": the server refused before processing
        (RFC 6585 §4, RFC 9110 §15.6.4); a 502 or 504 came from a gateway that may
        have passed the request on."""
        return self.response.status in (429, 503)


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
