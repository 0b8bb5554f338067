"""HTTPStream: HTTP/1.1 on Tornado's IOLoop with raw sockets; knows nothing of WebQQ.

(Just over 800 lines on purpose: admission, retries, redirects, cookies and chains are
the one job of the class that owns the requests; one socket, framing, retry policy and
name resolution are already modules of their own.)

Requests are `urllib.request.Request` objects. Each is sent on a raw
non-blocking socket registered with the IOLoop (`webqq.http.connection`), its
response framed by a strict reader (`webqq.http.reader`) and parsed by
`http.client`, then handed to a *readback*: a callable that may return the
next request of its chain. A chain is how the WebQQ client drives everything:
login, the long poll, the heartbeat.

What it guarantees, where the 2013 design it replaces did not:

* Nothing blocks the loop: DNS runs on the loop's resolver and is cached for a
  minute, not forever (`webqq.http.resolver`); connect, TLS, send and receive
  follow IOLoop events; delays use `IOLoop.call_later`; no threads.
* Failures are retried by a `RetryPolicy` (`webqq.http.retry`) that asks
  "did the server see the request?".
* A pooled keep-alive connection is watched while idle and checked again
  before reuse; a request that still meets a dead reused connection before any
  byte of the response is resent once on a fresh one when it may be repeated.
  That was the 2013 `BadStatusLine`.
* Every request ends exactly once, in its readback or its errback; nothing it
  does can raise into the IOLoop; every socket, handler and timer is released
  on every path.

Modules: `webqq.http.errors` (the error tree), `.reader` (framing), `.retry`,
`.resolver`, `.connection` (one socket), `.cookies` (the default cookie jar). This
module holds `Response` and `HTTPStream`, which owns limits, pooling, retries,
redirects, cookies and chains.
"""
import functools
import http.client
import io
import json
import logging
import re
import ssl
from collections import deque
from http.cookiejar import CookieJar
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple
from urllib.parse import urljoin, urlsplit
from urllib.request import Request

from tornado.concurrent import Future, future_set_exception_unless_cancelled, \
    future_set_result_unless_cancelled
from tornado.ioloop import IOLoop
from tornado.netutil import Resolver

from webqq.http.connection import CLOSED, IDLE, Connection
from webqq.http.cookies import CachingCookieJar
from webqq.http.errors import (ConnectError, ConnectionClosedError, HTTPStatusError,
                               HTTPStreamError, HTTPTimeoutError, MalformedResponseError,
                               ResolveError, ResponseTooLargeError, HTTPStreamShutdownError,
                               TLSError, TooManyRedirectsError, describe)
from webqq.http.reader import MAX_BODY_SIZE, MAX_HEADER_SIZE, Message, ResponseReader, \
    decode_body, decode_text
from webqq.http.resolver import CachingResolver, HostsMap
from webqq.http.retry import RetryPolicy

__all__ = [
    "HTTPStream", "Response", "RetryPolicy", "HTTPStreamError", "ConnectError",
    "ResolveError", "TLSError", "HTTPTimeoutError", "ConnectionClosedError",
    "MalformedResponseError", "ResponseTooLargeError", "TooManyRedirectsError",
    "HTTPStatusError", "HTTPStreamShutdownError",
]

log = logging.getLogger("webqq.http")

Readback = Callable[["Response"], Any]
Errback = Callable[[Request, HTTPStreamError], Any]
#: ``observer(request, status or error, seconds)``: see ``HTTPStream.observer``.
Observer = Callable[[Request, Any, float], Any]

#: Redirects followed for one request before TooManyRedirectsError (Tornado's default).
MAX_REDIRECTS = 5
#: Visits of one (method, URL) in a redirect chain; one more is a loop.
MAX_VISITS = 2
#: Seconds a keep-alive connection may sit unused: under nginx's 75 s and
#: Tornado's server default, so we close first and never race the server's close.
IDLE_TIMEOUT = 30.0
#: Open sockets at most (active and idle), far below this machine's fd limit;
#: further requests wait in order.
MAX_CONNECTIONS = 64
USER_AGENT = "webqq/0.1 (+Tornado)"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Response:
    """A complete HTTP response, as a readback receives it.

    Attributes: `status` (int), `reason` (str), `version` (10 or 11), `url` (the
    URL that answered, after redirects), `request` (the `Request` that was
    sent for it), `headers` (an `http.client.HTTPMessage`, parsed on first
    use). `read()` gives the whole body (de-chunked, decompressed), `text` the
    body decoded by its charset (UTF-8 when it names none, or none Python can
    decode text with), `json()` the parsed body.
    `getcode()`, `info()` and `geturl()` make it usable where urllib's
    responses are, e.g. by `http.cookiejar`.
    """

    __slots__ = ("status", "reason", "version", "url", "request", "_body", "_header_block",
                 "_headers", "_fields")

    def __init__(self, message: Message, body: bytes, request: Request) -> None:
        self.status = message.status
        self.reason = message.reason
        self.version = message.version
        self.url = request.full_url
        self.request = request
        self._body = body
        self._header_block = message.header_block
        self._fields = message.fields
        self._headers: Optional[http.client.HTTPMessage] = None

    @property
    def headers(self) -> http.client.HTTPMessage:
        if self._headers is None:
            self._headers = http.client.parse_headers(io.BytesIO(self._header_block))
        return self._headers

    def read(self) -> bytes:
        return self._body

    @property
    def text(self) -> str:
        return decode_text(self._body, self.headers.get_content_charset())

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self._body)

    def getcode(self) -> int:
        return self.status

    def info(self) -> http.client.HTTPMessage:
        return self.headers

    def geturl(self) -> str:
        return self.url

    def field(self, name: str) -> Optional[str]:
        """The first value of a header field (name in lower case), without
        building `headers`: the cheap path for HTTPStream itself."""
        values = self._fields.get(name)
        return values[0] if values else None

    def __repr__(self) -> str:
        return f"<Response {self.status} {_safe_url(self.url)}>"


class _Job:
    """One request from `add_request` until its readback or errback: every
    attempt, redirect and retry of it."""

    __slots__ = ("request", "readback", "errback", "retry", "method", "key", "attempts",
                 "redirects", "visited", "fresh_retry", "timer", "conn", "done",
                 "started_at", "phase", "cookiejar", "observer")

    def __init__(self, request: Request, readback: Optional[Readback],
                 errback: Optional[Errback], retry: RetryPolicy, cookiejar: CookieJar,
                 observer: Optional[Observer] = None) -> None:
        self.request = request
        self.cookiejar = cookiejar     # the stream's, or the one add_request was given
        self.observer = observer       # None: the stream's
        self.readback = readback
        self.errback = errback
        self.retry = retry             # policy for the next attempt (replaced on each retry)
        self.method = request.get_method()
        self.key = _origin(request)    # (scheme, host, port)
        self.attempts = 0              # attempts started
        self.redirects = 0
        self.visited: Dict[Tuple[str, str], int] = {}   # (method, URL) -> times redirected from
        self.fresh_retry = False       # the free resend after a dead reused connection is spent
        self.timer: Optional[object] = None   # pending IOLoop call of _submit (delay, retry)
        self.conn: Optional[Connection] = None
        self.done = False
        self.started_at = 0.0          # IOLoop.time() when the current attempt began
        self.phase = "queue"           # queue, connect, request (each with a deadline), wait


class HTTPStream:
    """Runs HTTP requests and readback chains on one IOLoop.

    Args:
        io_loop: default `IOLoop.current()`.
        cookiejar: an `http.cookiejar.CookieJar`; cookies are added before each
            send and taken from each response, redirects included. Default: a new
            `CachingCookieJar` (`webqq.http.cookies`), which sends the same cookies
            at a fraction of the cost.
        hosts: ``{"d.web2.qq.com": ("127.0.0.1", 18080)}``: like /etc/hosts plus
            a port (None keeps the URL's). The Host header and the TLS name
            stay those of the URL.
        retry: the default `RetryPolicy`; a request may bring its own.
        connect_timeout: seconds for DNS, TCP connect and TLS handshake; 0: no limit.
        request_timeout: seconds for a whole attempt, connect included (a long
            poll needs more than the server's hold); 0: no limit.
        max_connections: open sockets at most; more requests wait in order.
        ssl_context: for https; default `ssl.create_default_context()`
            (certificates and host names verified).
        ca_file: extra CA certificates (PEM) trusted besides the system's.
        resolver: a `tornado.netutil.Resolver`; default the loop's getaddrinfo.
        idle_timeout: seconds an unused keep-alive connection is kept.
        max_header_size, max_body_size: caps in bytes (see webqq.http.reader).
        max_redirects: redirects followed per request; 0 hands every 3xx to
            the readback.

    Attribute `observer`: None, or ``observer(request, status or error, seconds
    since its last attempt began)``, called once as each request ends (metrics).

    Bounds: `max_connections` sockets, idle ones included (closed after `idle_timeout`);
    the DNS answers as `CachingResolver` keeps them (``DNS_CACHE_MAX``, ``DNS_TTL``).
    """

    def __init__(self, io_loop: Optional[IOLoop] = None, cookiejar: Optional[CookieJar] = None,
                 hosts: Optional[HostsMap] = None, retry: Optional[RetryPolicy] = None,
                 connect_timeout: float = 10.0, request_timeout: float = 120.0,
                 max_connections: int = MAX_CONNECTIONS,
                 ssl_context: Optional[ssl.SSLContext] = None, *,
                 ca_file: Optional[str] = None, resolver: Optional[Resolver] = None,
                 idle_timeout: float = IDLE_TIMEOUT, max_header_size: int = MAX_HEADER_SIZE,
                 max_body_size: int = MAX_BODY_SIZE, max_redirects: int = MAX_REDIRECTS) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.io_loop = io_loop or IOLoop.current()
        self.cookiejar = cookiejar if cookiejar is not None else CachingCookieJar()
        self.retry = retry or RetryPolicy()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self.max_redirects = max_redirects
        self._ssl_context = ssl_context
        self._ca_file = ca_file
        self._resolver = CachingResolver(hosts, resolver, io_loop=self.io_loop)
        self._jobs: Set[_Job] = set()              # every request not yet ended
        self._queue: Deque[_Job] = deque()         # waiting for a connection slot
        self._idle: Dict[Tuple[str, str, int], List[Connection]] = {}
        self._open = 0                             # sockets open: connecting, busy or idle
        self._sweep_timer: Optional[object] = None
        # Deadlines of the jobs in a timed phase (queue, connect, request), all
        # watched by one IOLoop timer armed for the earliest: a timer per request,
        # armed and cancelled each time, was 3 µs of a 50 µs keep-alive request.
        self._deadlines: Dict[_Job, float] = {}
        self._watchdog: Optional[object] = None   # the timer, due at _watchdog_at
        self._watchdog_at = 0.0
        self._closed = False
        self.observer: Optional[Observer] = None

    # -- public API ---------------------------------------------------------

    def add_request(self, request: Request, readback: Optional[Readback] = None,
                    delay: float = 0, errback: Optional[Errback] = None,
                    retry: Optional[RetryPolicy] = None,
                    cookiejar: Optional[CookieJar] = None,
                    observer: Optional[Observer] = None) -> None:
        """Send `request` (after `delay` seconds) and hand its response to `readback`.

        `readback(response)` may return None (the chain ends), ``(request,
        readback)`` or ``(request, readback, delay)``: the next request of the
        chain, which keeps this one's errback and retry policy. `errback(request,
        error)` runs when the request failed for good; without one the failure
        is logged. Exactly one of the two runs, from the IOLoop, never inline.
        `cookiejar` replaces the stream's for this request, its redirects and the
        rest of its chain (one engine, several cookie sessions: `CookieScope`);
        `observer`, likewise, replaces the stream's `observer` for them.

        Raises:
            ValueError / TypeError at once for a request that cannot be sent
            (unknown scheme, CR or LF in a header, a body that is not bytes),
            RuntimeError after `close()`.
        """
        if self._closed:
            raise RuntimeError("HTTPStream is closed")
        _validate(request)
        job = _Job(request, readback, errback, retry or self.retry,
                   self.cookiejar if cookiejar is None else cookiejar, observer)
        self._jobs.add(job)
        if delay > 0:
            job.phase = "wait"
            job.timer = self.io_loop.call_later(delay, self._submit, job)
        else:
            self._submit(job)

    async def fetch(self, request: Request, retry: Optional[RetryPolicy] = None,
                    cookiejar: Optional[CookieJar] = None,
                    observer: Optional[Observer] = None) -> Response:
        """Send one request and return its response (the same engine, as a coroutine;
        `cookiejar` and `observer` as for `add_request`).

        Raises:
            an `HTTPStreamError` subclass when the request failed for good.
        """
        future: "Future[Response]" = Future()
        self.add_request(
            request,
            readback=lambda response: future_set_result_unless_cancelled(future, response),
            errback=lambda _request, error: future_set_exception_unless_cancelled(future, error),
            retry=retry, cookiejar=cookiejar, observer=observer)
        return await future

    def close(self) -> None:
        """Close every socket, cancel every timer; pending requests get
        `HTTPStreamShutdownError` through their errbacks. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for job in list(self._jobs):
            self._fail(job, HTTPStreamShutdownError("HTTPStream closed"))
        for conns in self._idle.values():
            for conn in conns:
                conn.close(None)
        self._idle.clear()
        self._open = 0
        if self._sweep_timer is not None:
            self.io_loop.remove_timeout(self._sweep_timer)
            self._sweep_timer = None
        if self._watchdog is not None:
            self.io_loop.remove_timeout(self._watchdog)
            self._watchdog = None
        self._resolver.close()

    @property
    def active(self) -> int:
        """Requests not yet ended (waiting, queued or in flight)."""
        return len(self._jobs)

    # -- admission ----------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        """Start an attempt now if a connection is free, else queue it."""
        job.timer = None
        if job.done:
            return
        conn = self._take_idle(job.key, careful=not job.retry.repeatable(job.method))
        if conn is not None:
            self._begin(job, "request", self.request_timeout)
            self._send(job, conn)
            return
        if self._open >= self.max_connections and not self._close_an_idle():
            self._arm(job, "queue", self.request_timeout)
            self._queue.append(job)
            return
        self._open += 1
        self._begin(job, "connect", self._connect_limit())
        self._resolve(job)

    def _connect_limit(self) -> float:
        """Seconds for DNS, TCP and TLS: the tighter of the two timeouts (0: none)."""
        limits = [t for t in (self.connect_timeout, self.request_timeout) if t > 0]
        return min(limits) if limits else 0

    def _begin(self, job: _Job, phase: str, seconds: float) -> None:
        job.attempts += 1
        job.started_at = self.io_loop.time()
        self._arm(job, phase, seconds)

    def _arm(self, job: _Job, phase: str, seconds: float) -> None:
        """Enter `phase`, which times out after `seconds` (0: never)."""
        job.phase = phase
        if seconds <= 0:
            self._deadlines.pop(job, None)
            return
        deadline = self.io_loop.time() + seconds
        self._deadlines[job] = deadline
        if self._watchdog is None or deadline < self._watchdog_at:
            self._set_watchdog(deadline)

    def _set_watchdog(self, when: float) -> None:
        if self._watchdog is not None:
            self.io_loop.remove_timeout(self._watchdog)
        self._watchdog_at = when
        self._watchdog = self.io_loop.call_at(when, self._watch)

    def _watch(self) -> None:
        """Time out every job whose deadline has come; wait for the next one.

        A job that ended or changed phase since left or moved in `_deadlines`,
        so the timer may find nothing due: it then only waits on.
        """
        self._watchdog = None
        now = max(self.io_loop.time(), self._watchdog_at)
        for job in [job for job, deadline in self._deadlines.items() if deadline <= now]:
            # An earlier timeout may have ended or re-armed this one (_pump).
            if self._deadlines.get(job, now + 1) <= now:
                del self._deadlines[job]
                self._timed_out(job)
        if self._deadlines:
            earliest = min(self._deadlines.values())
            if self._watchdog is None or earliest < self._watchdog_at:
                self._set_watchdog(earliest)

    def _pump(self) -> None:
        """Give freed capacity to the queue, in order."""
        while self._queue and not self._closed:
            job = self._queue[0]
            if job.done:
                self._queue.popleft()
                continue
            if self._open >= self.max_connections and job.key not in self._idle \
                    and not self._close_an_idle():
                return
            self._queue.popleft()
            self._submit(job)

    # -- connecting ---------------------------------------------------------

    def _resolve(self, job: _Job) -> None:
        scheme, host, port = job.key
        addresses = self._resolver.cached(host, port)
        if addresses is not None:
            self._connect(job, addresses)
            return
        future = self._resolver.resolve(host, port)
        attempt = job.attempts
        self.io_loop.add_future(future, lambda done: self._resolved(job, attempt, done))

    def _resolved(self, job: _Job, attempt: int, done: "Future[list]") -> None:
        if job.done or job.attempts != attempt or job.phase != "connect" or job.conn is not None:
            return  # timed out or closed while resolving; the slot went with it
        try:
            addresses = done.result()
        except HTTPStreamError as exc:
            self._release_slot()
            self._attempt_failed(job, exc)
            return
        self._connect(job, addresses)

    def _connect(self, job: _Job, addresses: list) -> None:
        scheme, host, port = job.key
        conn = Connection(self.io_loop, job.key, self._idle_closed)
        job.conn = conn
        context = self._tls_context() if scheme == "https" else None
        conn.connect(addresses, host, context, lambda error: self._connected(job, conn, error))

    def _connected(self, job: _Job, conn: Connection, error: Optional[HTTPStreamError]) -> None:
        if error is not None:
            job.conn = None
            self._release_slot()
            if isinstance(error, ConnectError):
                self._resolver.forget(job.key[1], job.key[2])
            self._attempt_failed(job, error)
            return
        if self.request_timeout > 0:
            remaining = self.request_timeout - (self.io_loop.time() - job.started_at)
            if remaining <= 0:  # connected, but only after the attempt's deadline
                conn.close(None)
                job.conn = None
                self._release_slot()
                self._attempt_failed(job, HTTPTimeoutError("request", self.request_timeout))
                return
            self._arm(job, "request", remaining)
        self._send(job, conn)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=self._ca_file) \
                if self._ca_file else ssl.create_default_context()
            if self._ca_file:
                self._ssl_context.load_default_certs()
        return self._ssl_context

    # -- the exchange -------------------------------------------------------

    def _send(self, job: _Job, conn: Connection) -> None:
        job.conn = conn
        request = job.request
        if request.unredirected_hdrs:
            request.unredirected_hdrs.pop("Cookie", None)
        job.cookiejar.add_cookie_header(request)
        reader = ResponseReader(job.method == "HEAD", self.max_header_size, self.max_body_size)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s (attempt %d%s)", job.method, _safe_url(request.full_url),
                      job.attempts, ", reused connection" if conn.reused else "")
        conn.exchange(_serialize(request, job.method), reader,
                      lambda message, error: self._exchanged(job, conn, message, error))

    def _exchanged(self, job: _Job, conn: Connection, message: Optional[Message],
                   error: Optional[HTTPStreamError]) -> None:
        job.conn = None
        self._deadlines.pop(job, None)
        if error is not None:
            self._release_slot()
            if (conn.reused and isinstance(error, ConnectionClosedError)
                    and not error.response_started and not job.fresh_retry
                    and job.retry.repeatable(job.method)):
                # The server closed a keep-alive connection as we reused it:
                # resend once on a fresh one, free of the retry budget.
                job.fresh_retry = True
                job.attempts -= 1
                log.info("%s %s: reused connection was closed (%s); resending on a new one",
                         job.method, _safe_url(job.request.full_url), error)
                self._submit(job)
                return
            self._attempt_failed(job, error)
            return
        if conn.state == CLOSED:
            self._release_slot()
        else:
            self._park(conn)
        try:
            body = message.body
            coding = message.fields.get("content-encoding")
            if coding and body:
                body = decode_body(body, coding[-1], self.max_body_size)
        except MalformedResponseError as exc:
            self._attempt_failed(job, exc)
            return
        response = Response(message, body, job.request)
        if "set-cookie" in message.fields or "set-cookie2" in message.fields:
            job.cookiejar.extract_cookies(response, job.request)
        if response.status in _REDIRECTS and self._follow_redirect(job, response):
            return
        if job.retry.wants_retry(job.method, response.status):
            try:
                job.retry = job.retry.increment(job.method, response=response)
            except HTTPStreamError as exc:
                self._fail(job, exc)
                return
            self._schedule_retry(job, f"{response.status} {response.reason}",
                                 job.retry.delay(response))
            return
        self._succeed(job, response)

    def _follow_redirect(self, job: _Job, response: Response) -> bool:
        """Turn `job` into a request for the Location; False when not followed.

        A chain may come back to a URL (a login page that sets a cookie and sends
        the client back): only a third visit with the same method is a loop.
        """
        location = response.field("location")
        method = job.method
        if location is None or self.max_redirects == 0 or \
                not (method in ("GET", "HEAD") or response.status == 303):
            return False
        old = job.request
        job.redirects += 1
        if job.redirects > self.max_redirects:
            self._fail(job, TooManyRedirectsError(
                f"More than {self.max_redirects} redirects from {_safe_url(old.full_url)}"))
            return True
        new_method = "GET" if response.status == 303 and method != "HEAD" else method
        headers = {name: value for name, value in old.header_items()
                   if name.lower() not in ("cookie", "host", "content-length", "content-type")}
        try:
            url = urljoin(old.full_url, location)
            new = Request(url, data=None if new_method in ("GET", "HEAD") else old.data,
                          headers=headers, method=new_method)
            _validate(new)
        except (ValueError, TypeError) as exc:
            self._fail(job, MalformedResponseError(
                f"Redirect from {_safe_url(old.full_url)} to an unusable Location: {exc}"))
            return True
        here = (method, old.full_url)
        job.visited[here] = job.visited.get(here, 0) + 1
        if job.visited.get((new_method, url), 0) >= MAX_VISITS:
            self._fail(job, TooManyRedirectsError(f"Redirect loop at {_safe_url(url)}"))
            return True
        old_key, job.key = job.key, _origin(new)
        if job.key != old_key:  # another origin gets no credentials of this one
            new.remove_header("Authorization")
        job.request, job.method = new, new_method
        job.fresh_retry = False
        self._submit(job)
        return True

    # -- pooling ------------------------------------------------------------

    def _park(self, conn: Connection) -> None:
        if self._closed:
            conn.close(None)
            return
        conn.park(self.io_loop.time())
        self._idle.setdefault(conn.key, []).append(conn)
        if self._sweep_timer is None:
            self._sweep_timer = self.io_loop.call_later(self.idle_timeout, self._sweep)
        if self._queue:
            self._pump()

    def _take_idle(self, key: Tuple[str, str, int], careful: bool) -> Optional[Connection]:
        """The most recently parked live connection to `key`, if any.

        Parked connections are watched, so a close the loop has seen already
        dropped them. A request that must not be sent twice (`careful`) also
        pays for a zero-timeout poll that catches a close not yet seen; any
        other request meets such a close through the free resend instead.
        """
        conns = self._idle.get(key)
        while conns:
            conn = conns.pop()
            if not conns:
                del self._idle[key]
            if conn.state == IDLE and (not careful or conn.alive()):
                return conn
            conn.close(ConnectionClosedError("closed while idle"))
            self._open -= 1
        return None

    def _close_an_idle(self) -> bool:
        """Free a slot by closing the longest-idle connection, if any."""
        oldest: Optional[Connection] = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is None:
            return False
        self._unpool(oldest)
        oldest.close(None)
        self._open -= 1
        return True

    def _unpool(self, conn: Connection) -> None:
        conns = self._idle.get(conn.key)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._idle[conn.key]

    def _idle_closed(self, conn: Connection) -> None:
        """The server closed a parked connection: forget it."""
        self._unpool(conn)
        self._release_slot()

    def _sweep(self) -> None:
        self._sweep_timer = None
        deadline = self.io_loop.time() - self.idle_timeout
        for conns in list(self._idle.values()):
            for conn in [c for c in conns if c.idle_since <= deadline]:
                self._unpool(conn)
                conn.close(None)
                self._open -= 1
        if self._idle:
            oldest = min(c.idle_since for conns in self._idle.values() for c in conns)
            self._sweep_timer = self.io_loop.call_at(oldest + self.idle_timeout, self._sweep)
        self._pump()

    def _release_slot(self) -> None:
        if self._closed:
            return
        self._open -= 1
        if self._queue:
            self._pump()

    # -- endings ------------------------------------------------------------

    def _timed_out(self, job: _Job) -> None:
        phase = job.phase
        seconds = self.request_timeout if phase != "connect" else self._connect_limit()
        error = HTTPTimeoutError(phase, seconds)
        if phase == "queue":
            try:
                self._queue.remove(job)
            except ValueError:
                pass
        elif job.conn is not None:
            job.conn.abort(error)
            job.conn = None
            self._release_slot()
        elif phase == "connect":  # still resolving
            self._release_slot()
        job.phase = "failed"
        self._attempt_failed(job, error)

    def _attempt_failed(self, job: _Job, error: HTTPStreamError) -> None:
        self._deadlines.pop(job, None)
        try:
            job.retry = job.retry.increment(job.method, error=error)
        except HTTPStreamError as final:
            self._fail(job, final)
            return
        self._schedule_retry(job, describe(error), job.retry.delay())

    def _schedule_retry(self, job: _Job, reason: str, delay: float) -> None:
        if self._closed:
            self._fail(job, HTTPStreamShutdownError("HTTPStream closed"))
            return
        log.warning("%s %s: attempt %d of %d failed (%s); retrying in %.2f s",
                    job.method, _safe_url(job.request.full_url), job.attempts,
                    job.retry.attempts, reason, delay)
        job.phase = "wait"
        job.timer = self.io_loop.call_later(delay, self._submit, job)

    def _succeed(self, job: _Job, response: Response) -> None:
        self._end(job)
        if job.observer is not None or self.observer is not None:
            self._observe(job, response.status)
        if job.readback is not None:
            self.io_loop.add_callback(self._run_readback, job, response)

    def _fail(self, job: _Job, error: HTTPStreamError) -> None:
        if job.done:
            return
        self._end(job)
        if job.conn is not None:
            job.conn.abort(error)
            job.conn = None
            if not self._closed:
                self._release_slot()
        error.request = job.request
        error.attempts = job.attempts
        if job.observer is not None or self.observer is not None:
            self._observe(job, error)
        if job.errback is not None:
            self.io_loop.add_callback(self._run_errback, job.errback, job.request, error)
        else:
            log.warning("%s %s failed after %d attempt(s): %s", job.method,
                        _safe_url(job.request.full_url), job.attempts, describe(error))

    def _end(self, job: _Job) -> None:
        job.done = True
        self._jobs.discard(job)
        self._deadlines.pop(job, None)
        if job.timer is not None:
            self.io_loop.remove_timeout(job.timer)
            job.timer = None
        if job.phase == "queue":
            try:
                self._queue.remove(job)
            except ValueError:
                pass

    def _observe(self, job: _Job, outcome: Any) -> None:
        seconds = self.io_loop.time() - job.started_at if job.started_at else 0.0
        observer = job.observer or self.observer
        try:
            observer(job.request, outcome, seconds)
        except Exception:
            log.exception("HTTPStream observer %s raised", _name(observer))

    def _run_readback(self, job: _Job, response: Response) -> None:
        try:
            following = job.readback(response)
        except Exception:
            log.exception("Readback %s raised on %r; its chain ends", _name(job.readback), response)
            return
        if following is None:
            return
        try:
            if not isinstance(following, tuple) or len(following) not in (2, 3):
                raise TypeError(f"a readback returns None, (request, readback) or "
                                f"(request, readback, delay), not {following!r}")
            request, readback, *delay = following
            self.add_request(request, readback, delay[0] if delay else 0,
                             errback=job.errback, retry=job.retry.fresh(),
                             cookiejar=job.cookiejar, observer=job.observer)
        except Exception:
            if self._closed:
                return
            log.exception("Readback %s returned a request that cannot be sent; its chain ends",
                          _name(job.readback))

    @staticmethod
    def _run_errback(errback: Errback, request: Request, error: HTTPStreamError) -> None:
        try:
            errback(request, error)
        except Exception:
            log.exception("Errback %s raised", _name(errback))


def _origin(request: Request) -> Tuple[str, str, int]:
    """(scheme, host, port) of the request's URL; ValueError for a non-HTTP URL."""
    return _origin_of(request.type, request.host)


@functools.lru_cache(maxsize=256)        # bound: 256 (scheme, netloc) pairs
def _origin_of(scheme: str, netloc: str) -> Tuple[str, str, int]:
    parts = urlsplit(f"{scheme}://{netloc}/")
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"HTTPStream cannot send {scheme}://{netloc}: not an http(s) URL")
    return scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme]


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\0]")
_UNSAFE_TARGET = re.compile(r"[ \r\n\0]")


def _validate(request: Request) -> None:
    """Refuse, before anything is sent, what would corrupt the request on the wire."""
    if not isinstance(request, Request):
        raise TypeError(f"HTTPStream takes urllib.request.Request, not {type(request).__name__}")
    _origin(request)
    method = request.get_method()
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"Invalid method {method!r}")
    if _UNSAFE_TARGET.search(request.selector) or not request.selector.isascii():
        raise ValueError(f"Invalid characters in the request target {request.selector!r} "
                         f"(percent-encode them)")
    if not request.host.isascii():
        raise ValueError(f"Host {request.host!r} is not ASCII (IDNA-encode it)")
    for name, value in request.header_items():
        value = str(value)
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"Invalid header {name!r}: CR, LF or NUL would split the request")
        if not (name + value).isascii():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"Header {name!r} is not Latin-1; percent-encode it") from None
    if request.data is not None and not isinstance(request.data, (bytes, bytearray)):
        raise TypeError("The request body must be bytes (urlencode and .encode() a form)")


def _serialize(request: Request, method: str) -> bytes:
    """The request's bytes on the wire: request line, headers, body."""
    data = request.data
    lines = [f"{method} {request.selector or '/'} HTTP/1.1"]
    present = set()
    for name, value in request.header_items():
        present.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in present:
        lines.append(f"Host: {request.host}")
    if "user-agent" not in present:
        lines.append(f"User-Agent: {USER_AGENT}")
    if "accept-encoding" not in present:
        lines.append("Accept-Encoding: gzip, deflate")
    if data is not None:
        if "content-type" not in present:
            lines.append("Content-Type: application/x-www-form-urlencoded")
        if "content-length" not in present:
            lines.append(f"Content-Length: {len(data)}")
    elif method in ("POST", "PUT", "PATCH") and "content-length" not in present:
        lines.append("Content-Length: 0")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="strict")
    return head + bytes(data) if data else head


def _safe_url(url: str) -> str:
    """The URL without its query: queries carry WebQQ tokens, never logged."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _name(function: Any) -> str:
    return getattr(function, "__qualname__", repr(function))
