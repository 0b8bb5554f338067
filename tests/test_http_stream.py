"""HTTPStream against real servers on loopback: Tornado apps for the normal paths,
raw-socket servers that misbehave on purpose for the rest.

Every test ends with no leaked fd, IOLoop handler or timer (`no_leaks`).
"""
import asyncio
import gzip
import logging
import os
import resource
import socket
import ssl
import threading
import time
from urllib.parse import urlencode
from urllib.request import Request

import pytest
import trustme
from tornado import httpserver, netutil, web
from tornado.netutil import Resolver

from conftest import respond, refused_port, settle
from webqq.http_stream import (ConnectError, ConnectionClosedError, HTTPStatusError, HTTPStream,
                               HTTPStreamShutdownError, HTTPTimeoutError, MalformedResponseError,
                               ResolveError, ResponseTooLargeError, RetryPolicy, TLSError,
                               TooManyRedirectsError)

FAST = RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.05)
ONCE = RetryPolicy(attempts=1)


# -- a well-behaved Tornado server --------------------------------------------

class Echo(web.RequestHandler):
    def get(self):
        self.write({"path": self.request.path, "query": self.request.query,
                    "cookie": self.request.headers.get("Cookie", ""),
                    "host": self.request.host})

    def post(self):
        self.write({"form": {k: self.get_body_argument(k) for k in self.request.body_arguments},
                    "type": self.request.headers.get("Content-Type")})


class SetCookie(web.RequestHandler):
    def get(self):
        self.set_cookie("session", "abc123")
        self.set_cookie("other", "x-y", path="/")
        self.write("set")


class Redirect(web.RequestHandler):
    def get(self, target):
        self.redirect(target.replace("_", "/"), status=int(self.get_argument("status", "302")))

    def post(self, target):
        self.redirect(target.replace("_", "/"), status=int(self.get_argument("status", "303")))


class Gzipped(web.RequestHandler):
    def get(self):
        self.set_header("Content-Encoding", "gzip")
        self.write(gzip.compress(b"compressed " * 100))


class Connections(web.RequestHandler):
    def get(self):
        self.write(str(id(self.request.connection.stream)))


def make_app():
    return web.Application([
        ("/echo.*", Echo), ("/set-cookie", SetCookie), ("/redirect/(.*)", Redirect),
        ("/gzip", Gzipped), ("/connection", Connections),
    ])


@pytest.fixture
def app_server(io_loop):
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(make_app())
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def tls(tmp_path):
    """A throwaway CA and a certificate for localhost and 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_context, str(ca_file), ca


@pytest.fixture
def stream(io_loop):
    streams = []

    def make(**options):
        options.setdefault("retry", FAST)
        made = HTTPStream(**options)
        streams.append(made)
        return made

    yield make
    for made in streams:
        made.close()
    io_loop.run_sync(lambda: settle(io_loop))


def chain_collector():
    """A list of responses and an errback that appends errors to it."""
    results = []
    done = asyncio.Event()

    def errback(request, error):
        results.append(error)
        done.set()
    return results, done, errback


# -- normal paths --------------------------------------------------------------

@pytest.mark.gen_test
async def test_chain_of_three_readbacks(io_loop, no_leaks, app_server, stream):
    http = stream()
    seen, done, errback = chain_collector()

    def third(response):
        seen.append(response.json()["path"])
        done.set()

    def second(response):
        seen.append(response.json()["path"])
        return Request(app_server + "/echo/3"), third

    def first(response):
        seen.append(response.json()["path"])
        return Request(app_server + "/echo/2"), second

    http.add_request(Request(app_server + "/echo/1"), first, errback=errback)
    await done.wait()
    assert seen == ["/echo/1", "/echo/2", "/echo/3"]


@pytest.mark.gen_test
async def test_delayed_request_uses_the_loop_not_a_thread(io_loop, no_leaks, app_server, stream):
    http = stream()
    await http.fetch(Request(app_server + "/echo"))   # warm: connection pooled
    threads = threading.active_count()
    arrived = asyncio.Event()
    start = io_loop.time()
    times = []

    def readback(response):
        times.append(io_loop.time() - start)
        arrived.set()

    http.add_request(Request(app_server + "/echo"), readback, delay=0.3)
    await arrived.wait()
    assert 0.3 <= times[0] < 0.45
    assert threading.active_count() == threads


@pytest.mark.gen_test
async def test_chained_delay(io_loop, no_leaks, app_server, stream):
    http = stream()
    arrived = asyncio.Event()
    stamps = []

    def second(response):
        stamps.append(io_loop.time())
        arrived.set()

    def first(response):
        stamps.append(io_loop.time())
        return Request(app_server + "/echo"), second, 0.2

    http.add_request(Request(app_server + "/echo"), first)
    await arrived.wait()
    assert 0.2 <= stamps[1] - stamps[0] < 0.35


@pytest.mark.gen_test
async def test_post_form(io_loop, no_leaks, app_server, stream):
    http = stream()
    body = urlencode({"r": '{"a": 1}', "clientid": "53999199"}).encode()
    response = await http.fetch(Request(app_server + "/echo", data=body))
    assert response.status == 200
    assert response.json() == {"form": {"r": '{"a": 1}', "clientid": "53999199"},
                               "type": "application/x-www-form-urlencoded"}


@pytest.mark.gen_test
async def test_cookies_set_by_one_response_are_sent_by_the_next(io_loop, no_leaks, app_server,
                                                                  stream):
    http = stream()
    await http.fetch(Request(app_server + "/set-cookie"))
    response = await http.fetch(Request(app_server + "/echo"))
    cookies = dict(part.split("=", 1) for part in response.json()["cookie"].split("; "))
    assert cookies["session"] == "abc123" and cookies["other"] == "x-y"
    assert {c.name for c in http.cookiejar} == {"session", "other"}


@pytest.mark.gen_test
async def test_keep_alive_reuses_one_connection(io_loop, no_leaks, app_server, stream):
    http = stream()
    ids = {(await http.fetch(Request(app_server + "/connection"))).text for _ in range(5)}
    assert len(ids) == 1


@pytest.mark.gen_test
async def test_a_kept_connection_past_descriptor_1024_is_checked_before_a_post(
        io_loop, no_leaks, app_server, stream):
    # A POST may not be resent, so a kept connection is checked before it goes out;
    # select() cannot watch descriptors from 1024 on, which a daemon of a thousand
    # accounts has: the check raised and the login chain ended.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1300
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("the open-file limit (hard %d) cannot reach descriptor 1024" % hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        http = stream()
        first = await http.fetch(Request(app_server + "/connection"))
        posted = await http.fetch(Request(app_server + "/echo", data=b"a=1", method="POST"))
        again = await http.fetch(Request(app_server + "/connection"))
        assert posted.json()["form"] == {"a": "1"}
        assert first.text == again.text             # the one kept connection, reused
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.gen_test
async def test_gzip_body_is_decoded(io_loop, no_leaks, app_server, stream):
    http = stream()
    response = await http.fetch(Request(app_server + "/gzip"))
    assert response.read() == b"compressed " * 100
    assert response.headers["Content-Encoding"] == "gzip"


@pytest.mark.gen_test
async def test_response_is_urllib_compatible(io_loop, no_leaks, app_server, stream):
    http = stream()
    response = await http.fetch(Request(app_server + "/echo?x=1"))
    assert response.getcode() == 200 and response.geturl() == app_server + "/echo?x=1"
    assert response.info()["Content-Type"].startswith("application/json")
    assert response.json()["query"] == "x=1" and '"query"' in response.text


@pytest.mark.gen_test
async def test_hosts_override_keeps_the_host_header(io_loop, no_leaks, app_server, stream):
    port = int(app_server.rsplit(":", 1)[1])
    http = stream(hosts={"d.web2.qq.com": ("127.0.0.1", port)})
    response = await http.fetch(Request("http://d.web2.qq.com/echo"))
    assert response.json()["host"] == "d.web2.qq.com"


@pytest.mark.gen_test
async def test_localhost_resolves_through_the_loop_resolver(io_loop, no_leaks, app_server, stream):
    port = int(app_server.rsplit(":", 1)[1])
    http = stream()
    response = await http.fetch(Request(f"http://localhost:{port}/echo"))
    assert response.status == 200


@pytest.mark.gen_test
async def test_ipv6_loopback(io_loop, no_leaks, raw_server, stream):
    server = raw_server(lambda s: respond(server, s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6"),
                        family=socket.AF_INET6)
    response = await stream().fetch(Request(server.url + "/"))
    assert response.read() == b"v6"


@pytest.mark.gen_test
async def test_https_with_extra_ca(io_loop, no_leaks, tls, stream):
    server_context, ca_file, _ = tls
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(make_app(), ssl_options=server_context)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        http = stream(ca_file=ca_file)
        response = await http.fetch(Request(f"https://localhost:{port}/echo"))
        again = await http.fetch(Request(f"https://localhost:{port}/echo"))
        assert response.status == again.status == 200
        assert response.json()["path"] == "/echo"
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test
async def test_https_certificate_for_another_name_is_refused_once(io_loop, no_leaks, tls, stream):
    server_context, ca_file, ca = tls
    wrong = ca.issue_cert("example.org")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    wrong.configure_cert(context)
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(make_app(), ssl_options=context)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        http = stream(ca_file=ca_file)
        with pytest.raises(TLSError) as caught:
            await http.fetch(Request(f"https://localhost:{port}/echo"))
        assert caught.value.verify and caught.value.attempts == 1
        assert "localhost" in str(caught.value)
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test
async def test_https_untrusted_without_the_ca(io_loop, no_leaks, tls, stream):
    server_context, _, _ = tls
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(make_app(), ssl_options=server_context)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        with pytest.raises(TLSError, match="refused"):
            await stream().fetch(Request(f"https://localhost:{port}/echo"))
    finally:
        server.stop()
        await server.close_all_connections()


# -- redirects -------------------------------------------------------------------

@pytest.mark.gen_test
async def test_relative_redirect_is_followed(io_loop, no_leaks, app_server, stream):
    response = await stream().fetch(Request(app_server + "/redirect/_echo_landed"))
    assert response.status == 200 and response.json()["path"] == "/echo/landed"
    assert response.url == app_server + "/echo/landed"


@pytest.mark.gen_test
async def test_303_turns_post_into_get(io_loop, no_leaks, app_server, stream):
    response = await stream().fetch(Request(app_server + "/redirect/_echo_after", data=b"a=1"))
    assert response.json()["path"] == "/echo/after"   # only GET answers with a path


@pytest.mark.gen_test
async def test_post_is_not_redirected_by_307(io_loop, no_leaks, app_server, stream):
    response = await stream().fetch(
        Request(app_server + "/redirect/_echo?status=307", data=b"a=1"))
    assert response.status == 307


@pytest.mark.gen_test
async def test_redirect_loop_is_an_error(io_loop, no_leaks, app_server, stream):
    with pytest.raises(TooManyRedirectsError, match="loop"):
        await stream().fetch(Request(app_server + "/redirect/_redirect__redirect_"))


@pytest.mark.gen_test
async def test_redirect_limit(io_loop, no_leaks, raw_server, stream):
    async def forever(s):
        n = 0
        while True:
            await server.read_request(s)
            n += 1
            await s.write(b"HTTP/1.1 302 Found\r\nLocation: /hop%d\r\nContent-Length: 0\r\n\r\n" % n)
    server = raw_server(forever)
    with pytest.raises(TooManyRedirectsError, match="More than 5 redirects"):
        await stream().fetch(Request(server.url + "/"))
    assert len(server.requests) == 6


@pytest.mark.gen_test
async def test_cookies_set_on_a_redirect_hop_are_sent_to_the_next(io_loop, no_leaks, raw_server,
                                                                   stream):
    async def handler(s):
        await server.read_request(s)
        await s.write(b"HTTP/1.1 302 Found\r\nSet-Cookie: hop=1; Path=/\r\nLocation: /next\r\n"
                      b"Content-Length: 0\r\n\r\n")
        await server.read_request(s)
        await s.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    server = raw_server(handler)
    await stream().fetch(Request(server.url + "/"))
    assert b"Cookie: hop=1" in server.requests[1]


# -- connecting --------------------------------------------------------------------

@pytest.mark.gen_test
async def test_refused_connect_is_retried_then_reported(io_loop, no_leaks, stream):
    with pytest.raises(ConnectError, match="Connection refused") as caught:
        await stream().fetch(Request(f"http://127.0.0.1:{refused_port()}/"))
    assert caught.value.attempts == 3


@pytest.mark.gen_test
async def test_connect_timeout(io_loop, no_leaks, never_accepts, stream):
    http = stream(connect_timeout=0.2, retry=ONCE)
    start = time.monotonic()
    with pytest.raises(HTTPTimeoutError) as caught:
        await http.fetch(Request(f"http://127.0.0.1:{never_accepts.port}/"))
    assert caught.value.phase == "connect" and str(caught.value) == "Timeout while connecting (0.2 s)"
    assert 0.2 <= time.monotonic() - start < 0.5


class FailingResolver(Resolver):
    """Answers every lookup with a gaierror, counting the lookups."""

    def initialize(self, code):
        self.code = code
        self.lookups = 0

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        self.lookups += 1
        raise socket.gaierror(self.code, "lookup failed")


class SilentResolver(Resolver):
    """Never answers: drives the connect deadline through DNS."""

    def initialize(self):
        self.waiting = asyncio.get_event_loop().create_future()

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        return await self.waiting


@pytest.mark.gen_test
async def test_name_that_does_not_exist_fails_at_once(io_loop, no_leaks, stream):
    resolver = FailingResolver(code=socket.EAI_NONAME)
    with pytest.raises(ResolveError) as caught:
        await stream(resolver=resolver).fetch(Request("http://no-such-host.invalid/"))
    assert not caught.value.temporary and resolver.lookups == 1


@pytest.mark.gen_test
async def test_temporary_dns_failure_is_retried(io_loop, no_leaks, stream):
    resolver = FailingResolver(code=socket.EAI_AGAIN)
    with pytest.raises(ResolveError):
        await stream(resolver=resolver).fetch(Request("http://flaky.example/"))
    assert resolver.lookups == 3


@pytest.mark.gen_test
async def test_hanging_dns_runs_into_the_connect_timeout(io_loop, no_leaks, stream):
    resolver = SilentResolver()
    http = stream(resolver=resolver, connect_timeout=0.1, retry=ONCE)
    with pytest.raises(HTTPTimeoutError) as caught:
        await http.fetch(Request("http://silent.example/"))
    assert caught.value.phase == "connect"
    resolver.waiting.cancel()


@pytest.mark.gen_test
async def test_second_address_is_tried_when_the_first_refuses(io_loop, no_leaks, raw_server,
                                                             stream):
    server = raw_server(lambda s: respond(server, s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))

    class TwoAddresses(Resolver):
        async def resolve(self, host, port, family=socket.AF_UNSPEC):
            return [(socket.AF_INET, ("127.0.0.1", refused_port())),
                    (socket.AF_INET, ("127.0.0.1", server.port))]

    response = await stream(resolver=TwoAddresses(), retry=ONCE).fetch(Request("http://two.example/"))
    assert response.status == 200


# -- responses that end early or break the rules ----------------------------------

def raw(data: bytes, close: bool = True):
    """A handler that answers every request with `data`."""
    async def handler(s):
        await server_of[handler].read_request(s)
        await s.write(data)
        if close:
            s.close()
    return handler


server_of = {}


def serve(raw_server, data: bytes, close: bool = True):
    handler = raw(data, close)
    server = raw_server(handler)
    server_of[handler] = server
    return server


BROKEN = {
    "close before the status line": (b"", ConnectionClosedError),
    "close mid-headers": (b"HTTP/1.1 200 OK\r\nContent-Le", ConnectionClosedError),
    "close mid-body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", ConnectionClosedError),
    "truncated chunked body": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                               ConnectionClosedError),
    "invalid chunk size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                           MalformedResponseError),
    "garbage status line": (b"HTTP/1.1 Omg What Is This?\r\n\r\n", MalformedResponseError),
    "header line without a colon": (b"HTTP/1.1 200 OK\r\nBroken\r\nContent-Length: 0\r\n\r\n",
                                    MalformedResponseError),
    "oversized headers": (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
                          ResponseTooLargeError),
    "body over the cap": (b"HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\n\r\n",
                          ResponseTooLargeError),
    "conflicting content-lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 42"
                                    b"\r\n\r\nhello", MalformedResponseError),
    "content-length with chunked": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: "
                                    b"chunked\r\n\r\n0\r\n\r\n", MalformedResponseError),
    "corrupt gzip": (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
                     MalformedResponseError),
}


@pytest.mark.gen_test
@pytest.mark.parametrize("data, error", BROKEN.values(), ids=BROKEN.keys())
async def test_broken_response_is_an_error_after_the_retries(io_loop, no_leaks, raw_server,
                                                             stream, data, error):
    server = serve(raw_server, data)
    with pytest.raises(error) as caught:
        await stream().fetch(Request(server.url + "/"))
    expected_attempts = 1 if error is ResponseTooLargeError else 3
    assert caught.value.attempts == expected_attempts == server.connections


@pytest.mark.gen_test
async def test_post_is_not_retried_once_sent(io_loop, no_leaks, raw_server, stream):
    server = serve(raw_server, b"")
    with pytest.raises(ConnectionClosedError):
        await stream().fetch(Request(server.url + "/send", data=b"msg=1"))
    assert server.connections == 1


@pytest.mark.gen_test
async def test_a_request_marked_repeatable_is_retried(io_loop, no_leaks, raw_server, stream):
    server = serve(raw_server, b"")
    poll = RetryPolicy(attempts=2, backoff=0.01, idempotent=True)
    with pytest.raises(ConnectionClosedError):
        await stream().fetch(Request(server.url + "/channel/poll2", data=b"r=1"), retry=poll)
    assert server.connections == 2


@pytest.mark.gen_test
async def test_103_before_the_200(io_loop, no_leaks, raw_server, stream):
    server = serve(raw_server, b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                               b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    response = await stream().fetch(Request(server.url + "/"))
    assert (response.status, response.read()) == (200, b"final")


@pytest.mark.gen_test
async def test_slow_trickle_runs_into_the_request_timeout(io_loop, no_leaks, raw_server, stream):
    async def trickle(s):
        await server.read_request(s)
        await s.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while True:
            await s.write(b"x")
            await asyncio.sleep(0.05)   # the fault itself: one byte per interval
    server = raw_server(trickle)
    http = stream(request_timeout=0.4, retry=ONCE)
    start = time.monotonic()
    with pytest.raises(HTTPTimeoutError) as caught:
        await http.fetch(Request(server.url + "/"))
    assert caught.value.phase == "request"
    assert 0.4 <= time.monotonic() - start < 0.7


@pytest.mark.gen_test
async def test_answer_before_the_body_is_read(io_loop, no_leaks, raw_server, stream):
    async def early(s):
        await s.read_until(b"\r\n\r\n")
        await s.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n"
                      b"Connection: close\r\n\r\ntoo long")
        s.close()
    server = raw_server(early)
    response = await stream().fetch(Request(server.url + "/", data=b"x" * (8 * 1024 * 1024)))
    assert (response.status, response.read()) == (413, b"too long")


# -- retries and keep-alive --------------------------------------------------------

@pytest.mark.gen_test
async def test_503_then_200_is_retried(io_loop, no_leaks, raw_server, stream):
    answers = [b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]

    async def handler(s):
        while answers:
            await server.read_request(s)
            await s.write(answers.pop(0))
    server = raw_server(handler)
    response = await stream().fetch(Request(server.url + "/"))
    assert response.read() == b"ok" and len(server.requests) == 2


@pytest.mark.gen_test
async def test_503_forever_ends_in_the_errback(io_loop, no_leaks, raw_server, stream, caplog):
    async def handler(s):
        while True:
            await server.read_request(s)
            await s.write(b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n")
    server = raw_server(handler)
    with caplog.at_level(logging.WARNING, "webqq.http"):
        with pytest.raises(HTTPStatusError) as caught:
            await stream().fetch(Request(server.url + "/"))
    assert caught.value.response.status == 503 and caught.value.attempts == 3
    assert len(server.requests) == 3
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and "attempt 1 of 3 failed (503 Busy)" in retries[0]


@pytest.mark.gen_test
async def test_reused_connection_closed_by_the_server_is_resent_once(io_loop, no_leaks,
                                                                     raw_server, stream):
    async def handler(s):
        # First connection: answer once, then close when the second request
        # arrives without answering it (a keep-alive timeout racing the reuse).
        await server.read_request(s)
        await s.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        if server.connections == 1:
            await s.read_until(b"\r\n\r\n")
            s.close()
    server = raw_server(handler)
    http = stream(retry=ONCE)   # the resend must not need the retry budget
    first = await http.fetch(Request(server.url + "/a"))
    second = await http.fetch(Request(server.url + "/b"))
    assert first.read() == second.read() == b"first"
    assert server.connections == 2


@pytest.mark.gen_test
async def test_idle_connection_closed_by_the_server_is_dropped(io_loop, no_leaks, raw_server,
                                                               stream):
    closed = asyncio.Event()

    async def handler(s):
        await server.read_request(s)
        await s.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        s.close()   # no Connection: close header: the client finds out by watching
        closed.set()
    server = raw_server(handler)
    http = stream(retry=ONCE)
    await http.fetch(Request(server.url + "/"))
    await closed.wait()
    await settle(io_loop)
    assert http._open == 0 and not http._idle
    assert (await http.fetch(Request(server.url + "/"))).read() == b"ok"


@pytest.mark.gen_test
async def test_idle_connections_expire(io_loop, no_leaks, app_server, stream):
    http = stream(idle_timeout=0.1)
    await http.fetch(Request(app_server + "/echo"))
    assert http._open == 1
    await asyncio.sleep(0.25)   # the idle timeout itself is what is tested
    assert http._open == 0 and not http._idle


@pytest.mark.gen_test
async def test_max_connections_queues_in_order(io_loop, no_leaks, raw_server, stream):
    release = asyncio.Event()

    async def handler(s):
        request = await server.read_request(s)
        if b"/hold" in request:
            await release.wait()
        await s.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        s.close()
    server = raw_server(handler)
    http = stream(max_connections=2, retry=ONCE)
    order = []
    done = asyncio.Event()

    def readback(response):
        order.append(response.url.rsplit("/", 1)[1])
        if len(order) == 4:
            done.set()
    for name in ("hold1", "hold2", "q1", "q2"):
        http.add_request(Request(f"{server.url}/{name}"), readback)
    await settle(io_loop)
    await asyncio.sleep(0.05)
    assert server.connections == 2 and http.active == 4
    release.set()
    await done.wait()
    assert order[2:] == ["q1", "q2"]


@pytest.mark.gen_test
async def test_queue_timeout(io_loop, no_leaks, raw_server, stream):
    release = asyncio.Event()

    async def handler(s):
        await server.read_request(s)
        await release.wait()
    server = raw_server(handler)
    http = stream(max_connections=1, request_timeout=0.2, retry=ONCE)
    first = asyncio.ensure_future(http.fetch(Request(server.url + "/1")))
    with pytest.raises(HTTPTimeoutError) as caught:
        await http.fetch(Request(server.url + "/2"))
    assert caught.value.phase in ("queue", "request")
    with pytest.raises(HTTPTimeoutError):
        await first
    release.set()


# -- errors never escape ---------------------------------------------------------

@pytest.mark.gen_test
async def test_readback_that_raises_is_logged_and_others_go_on(io_loop, no_leaks, app_server,
                                                              stream, caplog):
    http = stream()
    survived = asyncio.Event()

    def bad(response):
        raise RuntimeError("plugin bug")

    http.add_request(Request(app_server + "/echo/bad"), bad)
    http.add_request(Request(app_server + "/echo/good"), lambda r: survived.set())
    with caplog.at_level(logging.ERROR, "webqq.http"):
        await survived.wait()
        await settle(io_loop)
    [record] = [r for r in caplog.records if "raised" in r.getMessage()]
    assert record.exc_info[0] is RuntimeError and "its chain ends" in record.getMessage()
    assert (await http.fetch(Request(app_server + "/echo"))).status == 200


@pytest.mark.gen_test
async def test_close_with_requests_in_flight(io_loop, no_leaks, raw_server, stream):
    server = raw_server(lambda s: s.read_until(b"\r\n\r\n"))   # reads, never answers
    http = stream()
    errors = []
    done = asyncio.Event()

    def errback(request, error):
        errors.append(error)
        if len(errors) == 3:
            done.set()
    http.add_request(Request(server.url + "/a"), errback=errback)
    http.add_request(Request(server.url + "/b"), errback=errback)
    http.add_request(Request(server.url + "/c"), errback=errback, delay=5)
    await asyncio.sleep(0.05)
    http.close()
    await done.wait()
    assert all(isinstance(e, HTTPStreamShutdownError) for e in errors)
    assert http.active == 0
    with pytest.raises(RuntimeError):
        http.add_request(Request(server.url + "/d"))


@pytest.mark.gen_test
async def test_bad_requests_are_refused_before_sending(io_loop, no_leaks, stream):
    http = stream()
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        http.add_request(Request("http://127.0.0.1/", headers={"X": "a\r\nInjected: 1"}))
    with pytest.raises(ValueError, match="not an http"):
        http.add_request(Request("ftp://127.0.0.1/"))
    with pytest.raises(TypeError, match="bytes"):
        http.add_request(Request("http://127.0.0.1/", data="text"))
    assert http.active == 0


@pytest.mark.gen_test(timeout=60)
async def test_a_thousand_requests_leave_no_fd_behind(io_loop, no_leaks, raw_server, stream):
    async def sometimes(s):
        while True:
            request = await server.read_request(s)
            if b"/fail" in request:
                s.close()
                return
            await s.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    server = raw_server(sometimes)
    http = stream(retry=ONCE)
    refused = f"http://127.0.0.1:{refused_port()}/"
    outcomes = {"ok": 0, "error": 0}
    for n in range(1000):
        url = refused if n % 10 == 0 else server.url + ("/fail" if n % 3 == 0 else "/ok")
        try:
            await http.fetch(Request(url))
            outcomes["ok"] += 1
        except (ConnectError, ConnectionClosedError):
            outcomes["error"] += 1
    assert outcomes["ok"] > 500 and outcomes["error"] > 300


# -- DNS cache -----------------------------------------------------------------

class CountingResolver(Resolver):
    """Answers with the current `port`, counting lookups; `gate` holds answers back."""

    def initialize(self, port):
        self.port = port
        self.lookups = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        self.lookups += 1
        await self.gate.wait()
        return [(socket.AF_INET, ("127.0.0.1", self.port))]


@pytest.mark.gen_test
async def test_dns_answers_expire_and_concurrent_lookups_share_one_query(io_loop, no_leaks):
    from webqq.http.resolver import CachingResolver
    upstream = CountingResolver(port=1111)
    resolver = CachingResolver(resolver=upstream, ttl=0.2)
    upstream.gate.clear()
    first, second = resolver.resolve("svc.example", 80), resolver.resolve("svc.example", 80)
    upstream.gate.set()
    assert await first == await second == [(socket.AF_INET, ("127.0.0.1", 1111))]
    assert upstream.lookups == 1
    upstream.port = 2222   # the record changes
    assert resolver.cached("svc.example", 80)[0][1][1] == 1111
    await asyncio.sleep(0.25)   # the TTL itself is what is tested
    assert resolver.cached("svc.example", 80) is None
    assert (await resolver.resolve("svc.example", 80))[0][1][1] == 2222
    assert upstream.lookups == 2
    resolver.forget("svc.example", 80)
    assert resolver.cached("svc.example", 80) is None


@pytest.mark.gen_test
async def test_dns_cache_keeps_at_most_max_entries_oldest_dropped_first(io_loop, no_leaks):
    from webqq.http.resolver import CachingResolver
    upstream = CountingResolver(port=1111)
    resolver = CachingResolver(resolver=upstream, ttl=3600, max_entries=3)
    for n in range(5):
        await resolver.resolve("host%d.example" % n, 80)
    assert len(resolver._cache) == 3
    assert [resolver.cached("host%d.example" % n, 80) is not None for n in range(5)] == \
        [False, False, True, True, True]
    # A name resolved again moves to the young end: the next one pushes out host3.
    await resolver.resolve("host2.example", 80)    # cached: no new entry, no lookup
    assert upstream.lookups == 5
    resolver.forget("host2.example", 80)
    await resolver.resolve("host2.example", 80)
    await resolver.resolve("host5.example", 80)
    assert [resolver.cached("host%d.example" % n, 80) is not None for n in (2, 3, 4, 5)] == \
        [True, False, True, True]


@pytest.mark.gen_test
async def test_large_body_over_tls(io_loop, no_leaks, tls, stream):
    server_context, ca_file, _ = tls

    class Big(web.RequestHandler):
        def get(self):
            self.write(b"z" * (1024 * 1024))

    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application([("/big", Big)]), ssl_options=server_context)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        response = await stream(ca_file=ca_file).fetch(Request(f"https://127.0.0.1:{port}/big"))
        assert response.read() == b"z" * (1024 * 1024)
    finally:
        server.stop()
        await server.close_all_connections()


# -- found by review --------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("location", [b"http://h:99999/", b"http://[::1/", b"/a b", b"ftp://x/"])
async def test_a_redirect_to_an_unusable_location_ends_in_an_error(io_loop, no_leaks, raw_server,
                                                                  stream, location):
    server = serve(raw_server, b"HTTP/1.1 302 Found\r\nLocation: " + location +
                   b"\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(MalformedResponseError, match="unusable Location"):
        await stream().fetch(Request(server.url + "/"))
    assert len(server.requests) == 1


class PostRedirectGet(web.RequestHandler):
    def post(self):
        self.redirect("/form", status=303)

    def get(self):
        self.write("form page")


class Home(web.RequestHandler):
    def get(self):
        if self.get_cookie("s"):
            self.write("welcome")
        else:
            self.redirect("/login")


class Login(web.RequestHandler):
    def get(self):
        self.set_cookie("s", "1")
        self.redirect("/")


@pytest.mark.gen_test
async def test_a_redirect_back_to_a_visited_url_is_not_a_loop(io_loop, no_leaks, stream):
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application(
        [("/form", PostRedirectGet), ("/", Home), ("/login", Login)]))
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        http = stream()
        posted = await http.fetch(Request(base + "/form", data=b"a=1"))
        home = await http.fetch(Request(base + "/"))
        assert (posted.read(), home.read()) == (b"form page", b"welcome")
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test
async def test_a_non_ascii_target_is_refused_at_once(io_loop, no_leaks, stream):
    http = stream()
    with pytest.raises(ValueError, match="percent-encode"):
        http.add_request(Request("http://127.0.0.1/\u8def\u5f84"))
    assert http.active == 0


@pytest.mark.gen_test
async def test_a_refused_address_of_a_mapped_name_leaves_the_dns_cache(io_loop, no_leaks, stream):
    port = refused_port()
    http = stream(hosts={"svc.example": ("localhost", port)}, retry=ONCE)
    with pytest.raises(ConnectError):
        await http.fetch(Request("http://svc.example/"))
    assert http._resolver.cached("svc.example", 80) is None


@pytest.mark.gen_test
async def test_a_connect_that_ends_after_the_deadline_still_times_out(io_loop, no_leaks, stream):
    # A listener whose queue is not full accepts in the kernel and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        http = stream(connect_timeout=0.3, request_timeout=0.3, retry=ONCE)
        fetch = asyncio.ensure_future(http.fetch(
            Request(f"http://127.0.0.1:{listener.getsockname()[1]}/")))
        await asyncio.sleep(0)
        # The fault: one callback keeps the loop busy past the attempt's deadline, so
        # the connect completes after it.
        io_loop.add_callback(time.sleep, 0.35)
        with pytest.raises(HTTPTimeoutError) as caught:
            await asyncio.wait_for(fetch, 3)
        assert caught.value.phase == "request"
    finally:
        listener.close()


@pytest.mark.gen_test(timeout=20)
async def test_an_idle_tls_connection_goes_sooner_than_a_plain_one(io_loop, no_leaks, tls,
                                                                   app_server, stream):
    # OpenSSL keeps about 35 KB per connection; WebQQ speaks TLS only for logins, so
    # an idle TLS connection is kept briefly (a burst of logins reuses it), a plain
    # one (polls, sends) for the whole idle_timeout (issue 17).
    server_context, ca_file, _ = tls
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(make_app(), ssl_options=server_context)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        http = stream(ca_file=ca_file, idle_timeout=30.0, tls_idle_timeout=0.2)
        first = await http.fetch(Request(f"https://localhost:{port}/connection"))
        again = await http.fetch(Request(f"https://localhost:{port}/connection"))
        assert first.read() == again.read()             # kept alive between the two
        await http.fetch(Request(app_server + "/echo"))
        assert http._open == 2
        while any(key[0] == "https" for key in http._idle):
            await asyncio.sleep(0.05)                   # the timeout itself is tested
        assert http._open == 1 and [key[0] for key in http._idle] == ["http"]
    finally:
        server.stop()
        await server.close_all_connections()
