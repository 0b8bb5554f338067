"""Deadlines of requests in flight: one IOLoop timer watches them all.

A timer armed and cancelled per request cost 3 µs of a 50 µs keep-alive request
(issue 17); now every queue, connect and request deadline sits in one table, and
a single timer is due at the earliest. These tests pin that structure and the
timeouts it must still deliver on time.
"""
import asyncio
import time
from urllib.request import Request

import pytest

from conftest import pending_timers
from webqq.http_stream import HTTPStream, HTTPTimeoutError, RetryPolicy

ONCE = RetryPolicy(attempts=1)


def holding_server(raw_server, expected: int):
    """A server that reads requests and answers none until `release` is set;
    `arrived` is set once `expected` requests are in."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(stream):
        await server.read_request(stream)
        if len(server.requests) == expected:
            arrived.set()
        await release.wait()
        await stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    server = raw_server(hold)
    return server, arrived, release


@pytest.mark.gen_test
async def test_requests_in_flight_share_one_timer(io_loop, no_leaks, raw_server):
    server, arrived, release = holding_server(raw_server, 20)
    http = HTTPStream(retry=ONCE, request_timeout=30)
    before = len(pending_timers(io_loop))  # pytest-tornado's own timeout
    try:
        fetches = [asyncio.ensure_future(http.fetch(Request(f"{server.url}/{i}")))
                   for i in range(20)]
        await arrived.wait()
        assert len(pending_timers(io_loop)) == before + 1
        release.set()
        assert [(await f).read() for f in fetches] == [b"ok"] * 20
    finally:
        http.close()


@pytest.mark.gen_test
async def test_every_held_request_times_out_at_its_deadline(io_loop, no_leaks, raw_server):
    server, arrived, release = holding_server(raw_server, 3)
    http = HTTPStream(retry=ONCE, request_timeout=0.3)
    try:
        start = time.monotonic()
        outcomes = await asyncio.gather(
            *(http.fetch(Request(f"{server.url}/{i}")) for i in range(3)),
            return_exceptions=True)
        assert [(type(o), o.phase) for o in outcomes] == [(HTTPTimeoutError, "request")] * 3
        assert 0.3 <= time.monotonic() - start < 0.6
    finally:
        release.set()
        http.close()


@pytest.mark.gen_test
async def test_a_nearer_deadline_comes_first(io_loop, no_leaks, raw_server, never_accepts):
    # The timer waits for a held request's 30 s; a connect limit of 0.2 s armed
    # after it must still fire at 0.2 s.
    server, arrived, release = holding_server(raw_server, 1)
    http = HTTPStream(retry=ONCE, request_timeout=30, connect_timeout=0.2)
    try:
        held = asyncio.ensure_future(http.fetch(Request(server.url + "/")))
        await arrived.wait()
        start = time.monotonic()
        with pytest.raises(HTTPTimeoutError) as caught:
            await http.fetch(Request(f"http://127.0.0.1:{never_accepts.port}/"))
        assert caught.value.phase == "connect"
        assert 0.2 <= time.monotonic() - start < 0.5
        release.set()
        assert (await held).read() == b"ok"
    finally:
        http.close()
