"""Limits that protect the process, not the protocol.

Running out of file descriptors is a local failure: clean errors, no retry
storm, no leak, and the stream works again once the load drops (HTTP_CASES 46).
A chunked body costs memory in proportion to its size, whatever its chunks.
"""
import json
import subprocess
import sys
import textwrap
import tracemalloc
from urllib.request import Request

import pytest
from tornado import httpserver, netutil, web

from webqq.http_stream import HTTPStream, ResponseTooLargeError, RetryPolicy

CLIENT = textwrap.dedent("""
    import asyncio, json, resource, sys
    from urllib.request import Request
    from webqq.http_stream import HTTPStream, HTTPStreamError, RetryPolicy

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    url = sys.argv[1]

    async def main():
        stream = HTTPStream(max_connections=500, retry=RetryPolicy(attempts=1))
        outcomes = await asyncio.gather(*(stream.fetch(Request(url)) for _ in range(200)),
                                        return_exceptions=True)
        errors = sorted({str(o) for o in outcomes if isinstance(o, HTTPStreamError)})
        others = [repr(o) for o in outcomes if isinstance(o, Exception)
                  and not isinstance(o, HTTPStreamError)]
        ok = sum(1 for o in outcomes if not isinstance(o, Exception))
        after = [(await stream.fetch(Request(url))).status for _ in range(5)]
        # Every open socket is an idle keep-alive one: no slot leaked by a failure.
        leaked = stream._open - sum(len(pool) for pool in stream._idle.values())
        stream.close()
        print(json.dumps({"ok": ok, "errors": errors, "others": others, "after": after,
                          "leaked": leaked}))

    asyncio.run(main())
""")


class Hello(web.RequestHandler):
    def get(self):
        self.write("hello")


def test_fd_exhaustion_fails_cleanly_and_recovers(io_loop):
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application([("/", Hello)]))
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/"
    try:
        process = subprocess.Popen([sys.executable, "-c", CLIENT, url], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        # The client runs in its own process; this loop serves it meanwhile.
        stdout, stderr = io_loop.run_sync(
            lambda: io_loop.run_in_executor(None, process.communicate), timeout=60)
    finally:
        server.stop()
        io_loop.run_sync(server.close_all_connections)
    assert process.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert report["others"] == []
    assert report["ok"] > 0 and report["ok"] < 200
    assert report["errors"] == ["Cannot create a socket: Too many open files"]
    assert report["after"] == [200] * 5 and report["leaked"] == 0


# -- memory per chunked body ----------------------------------------------------

def chunked_in_pieces(raw_server, body_size: int, chunk_size: int):
    """A server answering with `body_size` bytes of "x" in chunks of `chunk_size`,
    written 64 KiB of wire at a time as the client reads them."""
    chunk = b"%x\r\n" % chunk_size + b"x" * chunk_size + b"\r\n"
    per_write = max(1, 65536 // len(chunk))

    async def answer(stream):
        await server.read_request(stream)
        await stream.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        left = body_size // chunk_size
        while left:
            count = min(left, per_write)
            await stream.write(chunk * count)
            left -= count
        await stream.write(b"0\r\n\r\n")
    server = raw_server(answer)
    return server


async def fetch_traced(url: str):
    """Fetch `url` once; (response or error, peak bytes traced meanwhile)."""
    http = HTTPStream(retry=RetryPolicy(attempts=1))
    tracemalloc.start()
    try:
        outcome = await http.fetch(Request(url))
    except ResponseTooLargeError as exc:
        outcome = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        http.close()
    return outcome, peak


BODY = 4 * 1024 * 1024


@pytest.mark.gen_test(timeout=30)
async def test_a_body_in_one_byte_chunks_is_refused_without_growing_memory(io_loop, no_leaks,
                                                                           raw_server):
    # 4 MiB of body as 24 MiB of wire: before the framing cap it was read, with
    # a Python object per chunk (over 100 bytes of memory per body byte).
    server = chunked_in_pieces(raw_server, BODY, 1)
    outcome, peak = await fetch_traced(server.url + "/")
    assert isinstance(outcome, ResponseTooLargeError)
    assert "Chunk framing over its cap" in str(outcome)
    assert peak < 4 * BODY


@pytest.mark.gen_test(timeout=30)
async def test_a_body_in_small_chunks_costs_memory_like_its_size(io_loop, no_leaks, raw_server):
    server = chunked_in_pieces(raw_server, BODY, 512)
    outcome, peak = await fetch_traced(server.url + "/")
    assert outcome.read() == b"x" * BODY
    assert peak < 4 * BODY


def test_a_kept_connection_and_a_reader_in_flight_cost_a_few_hundred_bytes(io_loop):
    # A daemon of a thousand accounts keeps two thousand connections and a thousand
    # polls in flight (issue 17): a __dict__ and an empty memoryview of its own each
    # made a connection 760 bytes.
    from webqq.http.connection import Connection
    from webqq.http.reader import ResponseReader
    origin, closed = ("http", "d.web2.qq.com", 80), lambda conn: None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [(Connection(io_loop, origin, closed), ResponseReader()) for _ in range(1000)]
        each = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert each < 800, each          # 1,030 before
