"""Running out of file descriptors is a local failure: clean errors, no retry
storm, no leak, and the stream works again once the load drops (HTTP_CASES 46)."""
import json
import subprocess
import sys
import textwrap

from tornado import httpserver, netutil, web

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
