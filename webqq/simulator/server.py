"""Simulator: the two listening ports, TLS, timers, going offline and stopping.

server: owns every resource the simulator holds on the IOLoop (listening sockets,
accepted streams, timers) so that ``stop()`` can give all of them back. It runs inside
the caller's IOLoop, starts no thread and never blocks.
"""
import os
import random
import secrets
import ssl
import time
import weakref

from tornado import gen
from tornado.concurrent import Future, future_set_result_unless_cancelled
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from .app import HTTP_HOSTS, HTTPS_HOSTS, TLS_HOSTS, make_application
from .control import ControlHandler
from .faults import FaultPlan
from .state import Backend
from .web import ChatFeed, routes as web_routes
from .world import load_world

__all__ = ["CA_FILE", "DEFAULT_POLL_HOLD", "Simulator"]

_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")
#: The CA that signed the TLS port's certificate (TEST MATERIAL: its key is public).
CA_FILE = os.path.join(_CERTS, "ca.pem")

#: Seconds a poll2 is held before 102 (PROTOCOL.md §2.16 [sim]: 55 s, under the 60 s
#: request timeout of pual_bot and twqq; LQ called 90 s "official", IQ used 70 s).
DEFAULT_POLL_HOLD = 55.0


class _TrackingHTTPServer(HTTPServer):
    """An HTTPServer that lets the Simulator close every accepted stream at once."""

    streams: "weakref.WeakSet" = None

    def handle_stream(self, stream, address):
        self.streams.add(stream)
        super().handle_stream(stream, address)


class Simulator:
    """The WebQQ 2013 servers on loopback, started by the constructor.

    Constructing it binds both ports and starts serving on the current IOLoop (so make
    it inside a running IOLoop, or with one current): one line starts it, and ``.port``,
    ``.tls_port`` and ``.hosts`` are valid at once. ``stop()`` undoes everything.

    Args:
        world: None for the built-in world (account 10001, password "webqq-demo"), a
            path to a world JSON file, a dict of that shape, or a loaded World.
        poll_hold: seconds a poll2 is held before it answers 102.
        host: the address to listen on (loopback).
        port: the plain HTTP port (0: any free port).
        tls_port: the TLS port (0: any free port).
        seed: seeds the simulator's ``random.Random`` (ids, tokens, codes) for
            reproducible runs; None seeds from the system.
        clock: unix time in seconds; tests may pass a fake one to drive idle expiry.

    Raises:
        OSError: a port cannot be bound (nothing stays bound then).
        WorldError: the world is not valid.
    """

    def __init__(self, world=None, poll_hold: float = DEFAULT_POLL_HOLD, host: str = "127.0.0.1",
                 port: int = 0, tls_port: int = 0, *, seed=None, clock=time.time):
        self.rng = random.Random(seed)
        self.world = load_world(world, self.rng)
        self.options = self.world.options
        self.poll_hold = float(poll_hold)
        self.backend = Backend(self.world, self.rng, clock)
        self.faults = FaultPlan()
        #: The secret of /_sim/ for this run; the chat page carries it to its buttons.
        self.control_token = secrets.token_urlsafe(24)
        #: What the chat page shows live: messages said and sent (webqq.simulator.web).
        self.chat_feed = ChatFeed(self.backend, self.world)
        #: Path of the CA certificate a client must trust for the TLS port.
        self.ca_file = CA_FILE
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self._io_loop = IOLoop.current()
        self._ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl_context.load_cert_chain(os.path.join(_CERTS, "server.pem"),
                                          os.path.join(_CERTS, "server-key.pem"))
        self._plain_app = make_application(self, HTTP_HOSTS,
                                           [(r"/_sim/(\w+)", ControlHandler)] + web_routes())
        self._tls_app = make_application(self, TLS_HOSTS)
        self._streams = weakref.WeakSet()
        self._servers = []              # the listening servers now
        self._all_servers = []          # every server ever started, drained at stop()
        self._timers = set()            # IOLoop timeout handles of call_later()
        self._sleeps = {}               # Future -> handle, of sleep()
        self._offline_timer = None
        self._stopped = None            # the Future stop() returns, once called
        self._listen()

    @property
    def hosts(self) -> dict:
        """Host name -> (address, port) for every protocol host, as a client's ``hosts=``.

        The https hosts map to the TLS port, the others to the plain port.
        """
        mapping = {host: (self.host, self.port) for host in HTTP_HOSTS}
        mapping.update({host: (self.host, self.tls_port) for host in HTTPS_HOSTS})
        return mapping

    # --- listening ---------------------------------------------------------------------

    def _listen(self) -> None:
        plain = bind_sockets(self.port, self.host)
        try:
            tls = bind_sockets(self.tls_port, self.host)
        except OSError:
            for sock in plain:
                sock.close()
            raise
        self.port = plain[0].getsockname()[1]
        self.tls_port = tls[0].getsockname()[1]
        for app, sockets, ssl_options in ((self._plain_app, plain, None),
                                          (self._tls_app, tls, self._ssl_context)):
            server = _TrackingHTTPServer(app, ssl_options=ssl_options)
            server.streams = self._streams
            server.add_sockets(sockets)
            self._servers.append(server)
            self._all_servers.append(server)

    def _close_listeners_and_streams(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers = []
        for stream in list(self._streams):
            stream.close()

    def go_offline(self, seconds: float) -> None:
        """Refuse every connection for ``seconds`` (/_sim/offline), then listen again.

        Both listening sockets close (connects are refused) and every open connection
        closes with them; held polls lose nothing (their items were not taken). The
        same ports are bound again when the time is up. The control surface is
        unreachable meanwhile: it lives on the plain port.
        """
        if self._stopped is not None or self._offline_timer is not None:
            return
        self._close_listeners_and_streams()
        self._offline_timer = self.call_later(seconds, self._come_back)

    def _come_back(self) -> None:
        self._offline_timer = None
        self._listen()

    # --- timers ------------------------------------------------------------------------

    def call_later(self, delay: float, callback, *args):
        """IOLoop.call_later, remembered so that stop() can cancel it."""
        def fire():
            self._timers.discard(handle)
            callback(*args)
        handle = self._io_loop.call_later(delay, fire)
        self._timers.add(handle)
        return handle

    def cancel_timer(self, handle) -> None:
        self._timers.discard(handle)
        self._io_loop.remove_timeout(handle)

    def sleep(self, seconds: float) -> Future:
        """A Future resolved after ``seconds``, or at once when the simulator stops."""
        future = Future()

        def wake():
            self._sleeps.pop(future, None)
            future_set_result_unless_cancelled(future, None)
        self._sleeps[future] = self.call_later(seconds, wake)
        return future

    # --- stopping ----------------------------------------------------------------------

    def stop(self) -> Future:
        """Close both listening sockets, every connection and held poll, every timer.

        Sockets and timers are gone when it returns. Returns a Future that resolves once
        the connections' coroutines have ended; await it (optional) before closing the
        IOLoop. Calling it again returns the same Future.
        """
        if self._stopped is None:
            self._close_listeners_and_streams()
            self.backend.close()
            for handle in list(self._timers):
                self.cancel_timer(handle)
            self._offline_timer = None
            for future in list(self._sleeps):
                future_set_result_unless_cancelled(future, None)
            self._sleeps.clear()
            self._stopped = gen.convert_yielded(self._drain())
        return self._stopped

    async def _drain(self) -> None:
        for server in self._all_servers:
            await server.close_all_connections()
        self._all_servers = []
