"""Simulator: the two listening ports, TLS, timers, going offline and stopping.

server: owns every resource the simulator holds on the IOLoop (listening sockets,
accepted streams, connections not yet read, timers) so that ``stop()`` can give all of
them back. It runs inside the caller's IOLoop, starts no thread and never blocks.

The plain port speaks HTTP. The TLS port speaks both: 2013 clients reached some hosts
over http and https alike (``d.web2.qq.com`` from August 2013, ``ui.ptlogin2.qq.com``),
and a client's ``hosts`` maps a name to one port, so a connection that opens with a TLS
handshake record is served over TLS and any other as plain HTTP.
"""
import os
import random
import re
import secrets
import socket
import ssl
import time
import weakref

from tornado import gen
from tornado.concurrent import Future, future_set_result_unless_cancelled
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

from .app import HTTP_HOSTS, TLS_HOSTS, make_application
from .control import ControlHandler
from .faults import FaultPlan
from .mediaapp import ROUTES as MEDIA_ROUTES
from .mediaapp import SERVER_ROUTES
from .state import Backend
from .web import ChatFeed, routes as web_routes
from .world import load_world

__all__ = ["CA_FILE", "DEFAULT_POLL_HOLD", "Simulator", "check_control_token"]

_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")
#: The CA that signed the TLS port's certificate (TEST MATERIAL: its key is public).
CA_FILE = os.path.join(_CERTS, "ca.pem")

#: Seconds a poll2 is held before 102 (docs/protocol.rst §3.15 [sim]: 55 s, under the 60 s
#: request timeout of pual_bot and twqq; LQ called 90 s "official", IQ used 70 s).
DEFAULT_POLL_HOLD = 55.0

# A control token travels in an HTTP header: printable ASCII, no spaces.
_TOKEN = re.compile(r"[!-~]{8,256}\Z")


def check_control_token(token: str) -> str:
    """``token`` if it can be a control token (8 to 256 printable ASCII characters, no
    spaces: it travels in a header); raises ValueError without quoting it otherwise."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ValueError("a control token is 8 to 256 printable ASCII characters "
                         "without spaces")
    return token


class _TrackingHTTPServer(HTTPServer):
    """An HTTPServer that lets the Simulator close every accepted stream at once."""

    streams: "weakref.WeakSet" = None

    def handle_stream(self, stream, address):
        self.streams.add(stream)
        super().handle_stream(stream, address)


# The first byte of a TLS connection: a handshake record (RFC 8446 §5.1, content type 22).
_TLS_HANDSHAKE = b"\x16"


class _DualHTTPServer(_TrackingHTTPServer):
    """TLS and plain HTTP on one port, told apart by the connection's first byte.

    Hooks ``TCPServer._handle_connection`` (Tornado's per-accept step, which wraps the
    socket when ``ssl_options`` is set): the accepted socket waits, without blocking,
    until its first byte can be peeked; a TLS handshake goes on as Tornado would, any
    other byte gets a plain ``IOStream``. ``pending`` holds the sockets still waiting, so
    that the Simulator can close them at stop.
    """

    pending: dict = None                # fd -> accepted socket not yet read

    def _handle_connection(self, connection, address):
        connection.setblocking(False)
        io_loop = IOLoop.current()
        fd = connection.fileno()

        def readable(fd, events):
            try:
                first = connection.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                return                  # not yet: keep waiting
            except OSError:
                first = b""
            io_loop.remove_handler(fd)
            self.pending.pop(fd, None)
            if not first:               # closed before saying anything
                connection.close()
            elif first == _TLS_HANDSHAKE:
                super(_DualHTTPServer, self)._handle_connection(connection, address)
            else:
                self.handle_stream(IOStream(connection, max_buffer_size=self.max_buffer_size,
                                            read_chunk_size=self.read_chunk_size), address)

        self.pending[fd] = connection
        io_loop.add_handler(fd, readable, IOLoop.READ)

    def close_pending(self) -> None:
        io_loop = IOLoop.current()
        for fd, connection in list(self.pending.items()):
            io_loop.remove_handler(fd)
            connection.close()
        self.pending.clear()


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
        control_token: the secret every /_sim/ request must carry (``X-Sim-Token``);
            None draws a new one from ``secrets`` (never from the seeded ``rng``).

    Raises:
        OSError: a port cannot be bound (nothing stays bound then).
        WorldError: the world is not valid.
        ValueError: the control token is not printable ASCII of 8 to 256 characters.
    """

    def __init__(self, world=None, poll_hold: float = DEFAULT_POLL_HOLD, host: str = "127.0.0.1",
                 port: int = 0, tls_port: int = 0, *, seed=None, clock=time.time,
                 control_token=None):
        #: The secret of the /_sim/ surface for this run (see control.py).
        self.control_token = check_control_token(
            secrets.token_urlsafe(24) if control_token is None else control_token)
        self.rng = random.Random(seed)
        self.world = load_world(world, self.rng)
        self.options = self.world.options
        self.poll_hold = float(poll_hold)
        self.backend = Backend(self.world, self.rng, clock,
                               address=lambda: (self.host, self.port))
        self.faults = FaultPlan()
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
        # The plain port also answers to its own address: the picture and file server.
        self._plain_app = make_application(self, HTTP_HOSTS + (host,),
                                           [(r"/_sim/(\w+)", ControlHandler)] + web_routes(),
                                           dict(MEDIA_ROUTES, **{host: SERVER_ROUTES}))
        self._tls_app = make_application(self, TLS_HOSTS, (), MEDIA_ROUTES)
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

        The hosts of the TLS port map there (it answers https and http), the others to
        the plain port.
        """
        mapping = {host: (self.host, self.port) for host in HTTP_HOSTS}
        mapping.update({host: (self.host, self.tls_port) for host in TLS_HOSTS})
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
        dual = _DualHTTPServer(self._tls_app, ssl_options=self._ssl_context)
        dual.pending = {}
        for server, sockets in ((_TrackingHTTPServer(self._plain_app), plain), (dual, tls)):
            server.streams = self._streams
            server.add_sockets(sockets)
            self._servers.append(server)
            self._all_servers.append(server)

    def _close_listeners_and_streams(self) -> None:
        for server in self._servers:
            server.stop()
            if isinstance(server, _DualHTTPServer):
                server.close_pending()
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
