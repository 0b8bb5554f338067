"""The API's server against peers that hold connections (issue 11, hardening): half a
request head, a body that never comes, an idle kept-alive connection, more connections
than the cap, and an accept that fails for want of file descriptors. The same at the
daemon's real fd limit, in a child process, is in test_api_daemon.py."""
import asyncio
import errno
import logging
import socket

import pytest
from api_helpers import eventually
from tornado import netutil, web
from tornado.httpclient import AsyncHTTPClient
from tornado.iostream import IOStream

from webqq.onebot import listener

HALF_HEAD = b"GET /get_status HTTP/1.1\r\nHost: 127.0.0.1\r\n"


async def connect(port: int, data: bytes = b"") -> IOStream:
    stream = IOStream(socket.socket())
    await stream.connect(("127.0.0.1", port))
    if data:
        await stream.write(data)
    return stream


async def closed_by_server(stream: IOStream) -> bytes:
    """What the server sent before it closed the connection."""
    try:
        return await stream.read_until_close()
    finally:
        stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_connections_that_hold_without_a_request_are_closed_and_capped(
        harness, monkeypatch, caplog):
    """1,100 peers that each sent half a head held the daemon's descriptors until they
    left. A head, a body and an idle kept-alive connection each have a timeout; beyond
    the cap new connections wait, and are served as soon as a place is free."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(listener, "HEADER_TIMEOUT", 0.5)
    monkeypatch.setattr(listener, "BODY_TIMEOUT", 0.5)
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 3)
    api = await harness.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    holders = [await connect(api.port, HALF_HEAD),
               await connect(api.port, b"POST /get_status HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Length: 100\r\n\r\n{\"a\""),
               await connect(api.port)]
    await eventually(lambda: api.server.connections() == 3, "three connections")
    waiting = asyncio.ensure_future(harness.call("get_status"))
    await eventually(lambda: "the API holds 3 connections, its cap: new ones wait until "
                             "some close" in caplog.text, "the cap")
    assert not waiting.done()
    answers = [await closed_by_server(stream) for stream in holders]
    assert answers == [b"", b"", b""]
    assert loop.time() - started < 5
    code, answer = await waiting
    assert (code, answer["status"]) == (200, "ok")
    assert "the API accepts connections again" in caplog.text
    # A kept-alive connection that stays idle is closed too.
    kept = await connect(api.port, b"GET /get_status HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await kept.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    assert b"Connection: close" not in head
    await closed_by_server(kept)


@pytest.mark.gen_test(timeout=30)
async def test_accept_backs_off_when_out_of_file_descriptors(harness, monkeypatch, caplog):
    """At the fd limit Tornado's accept loop let EMFILE out of its handler, and the
    IOLoop called it again at once, for ever: a core spinning, the API dead. The
    accept now pauses, longer while it lasts, logs once, and serves once it can."""
    monkeypatch.setattr(listener, "ACCEPT_BACKOFF", 0.05)
    monkeypatch.setattr(listener, "ACCEPT_BACKOFF_MAX", 0.2)
    api = await harness.start()
    loop = asyncio.get_running_loop()
    real_accept = socket.socket.accept
    tries, starved = [], [True]

    def accept(sock):
        if sock.getsockname()[1] == api.port:       # the API's listening socket
            tries.append(loop.time())
            if starved[0]:
                raise OSError(errno.EMFILE, "Too many open files")
        return real_accept(sock)
    monkeypatch.setattr(socket.socket, "accept", accept)
    waiting = asyncio.ensure_future(harness.call("get_status"))
    await eventually(lambda: len(tries) >= 5, "five tries to accept")
    gaps = [round(later - earlier, 2) for earlier, later in zip(tries, tries[1:5])]
    assert all(gap >= 0.04 for gap in gaps), gaps          # 0.05, 0.1, 0.2, 0.2
    assert not waiting.done()
    starved[0] = False
    code, answer = await waiting
    assert (code, answer["status"]) == (200, "ok")
    lines = [r.getMessage() for r in caplog.records if "accept" in r.getMessage()]
    assert lines == ["the API cannot accept a connection: Too many open files (0 open); "
                     "not accepting for 0.05 s, longer while it lasts"]


def test_the_cap_leaves_descriptors_to_the_rest_of_the_daemon(monkeypatch):
    limits = {}
    monkeypatch.setattr(listener.resource, "getrlimit", lambda kind: limits["now"])
    for soft, cap in ((1024, 896), (256, 128), (100, 50), (2, 1), (20000, 1000),
                      (listener.resource.RLIM_INFINITY, 1000)):
        limits["now"] = (soft, soft)
        assert listener.connection_cap() == cap, soft


@pytest.mark.gen_test(timeout=30)
async def test_a_header_tornado_cannot_parse_is_not_logged(harness, caplog):
    """Tornado logs 'Malformed HTTP message ... Invalid header value' with the value,
    here a token: the value is left out."""
    caplog.set_level(logging.DEBUG)
    api = await harness.start()
    stream = await connect(api.port, b"GET /get_status HTTP/1.1\r\nHost: x\r\n"
                                     b"Authorization: Bearer Secret-Token-77\x01\r\n\r\n")
    await closed_by_server(stream)
    await eventually(lambda: "Malformed HTTP message" in caplog.text, "the log line")
    assert "Secret-Token-77" not in caplog.text
    assert "Invalid header value (not shown)" in caplog.text


class Careless(web.RequestHandler):
    """A handler as a new route might be written: it reads the query Tornado's way and
    may crash."""

    def get(self) -> None:
        if self.get_query_argument("crash", None):
            raise RuntimeError("a bug")
        self.get_query_argument("text", None)
        self.write("ok")


@pytest.mark.gen_test(timeout=30)
async def test_tornados_own_log_lines_leave_the_request_out(caplog):
    """Whatever handler lets an error out, Tornado's lines about it keep out the query
    (a token, a message's text) and the request's headers (the token)."""
    caplog.set_level(logging.DEBUG)
    server = listener.ApiServer(web.Application([(r"/careless", Careless)]))
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server.listen_on(sockets)
    port = sockets[0].getsockname()[1]
    http = AsyncHTTPClient(force_instance=True)
    try:
        for query in ("access_token=Tok-55&text=Words-66%FF", "crash=1&access_token=Tok-55"):
            response = await http.fetch("http://127.0.0.1:%d/careless?%s" % (port, query),
                                        headers={"Authorization": "Bearer Tok-55"},
                                        raise_error=False)
            assert response.code in (400, 500)
    finally:
        http.close()
        server.stop()
        await server.close_all_connections()
    text = caplog.text
    assert "Tok-55" not in text and "Words-66" not in text
    assert "400 GET /careless (127.0.0.1): refused (the reason quotes the request: not " \
           "shown)" in text
    assert "Uncaught exception GET /careless (127.0.0.1) (the request is not shown)" in text
