"""The API's HTTP server: Tornado's, with the limits a server needs that shares its
process, and its file descriptors, with the WebQQ session and the status file.

listener: ``ApiServer`` (``listen_on(sockets)``, ``stop()``). Three limits:

* Timeouts: a request head must arrive within ``HEADER_TIMEOUT`` seconds of the
  connection (or, on a kept-alive one, of the last answer: Tornado has one timeout for
  both), a body within ``BODY_TIMEOUT``; the connection is closed otherwise. A peer that
  connects and sends half a head no longer holds its file descriptor for ever.
* A cap on open connections, WebSockets included: ``connection_cap()``, below the
  process's file descriptor limit (``RLIMIT_NOFILE``) by ``FD_RESERVE``. At the cap the
  server stops accepting (new connections wait in the kernel's backlog) and looks again
  every ``CAP_RECHECK`` seconds; the rest of the daemon keeps the descriptors it needs.
* Its own accept loop: when ``accept`` fails for want of descriptors or memory
  (EMFILE, ENFILE, ENOBUFS, ENOMEM) it stops accepting for ``ACCEPT_BACKOFF`` seconds,
  doubled while it goes on, up to ``ACCEPT_BACKOFF_MAX``. Tornado's loop lets the error
  out of the handler; the socket stays readable, and the IOLoop calls it again at once,
  for ever: a core spinning and a log line each time.

Tornado logs a request it cannot parse with the offending header's value, a refused
request with its query string, an uncaught exception with the request's headers: the
token and message text may be in any of them. ``ApiServer`` makes Tornado's loggers
leave them out (``_QuietTornado``), whichever handler (actions, health, metrics, a
future one) let the error out.

What it must never do: take the last file descriptors, spin on ``accept``, keep a
connection that sends nothing, or let a header's value reach the log.
"""
import errno
import logging
import re
import resource
import socket
from typing import Any, List, Optional, Set

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from webqq.http.retry import backoff_delay

__all__ = ["ApiServer", "connection_cap", "HEADER_TIMEOUT", "BODY_TIMEOUT",
           "MAX_CONNECTIONS", "FD_RESERVE"]

log = logging.getLogger("webqq.api")

#: Seconds a request head may take to arrive (nginx waits 60 s; a bot on the same host
#: sends its head at once), and a kept-alive connection may stay idle.
HEADER_TIMEOUT = 30.0
#: Seconds a request body may take to arrive.
BODY_TIMEOUT = 30.0
#: Connections open at once, at most: a bot uses a handful.
MAX_CONNECTIONS = 1000
#: File descriptors left to the rest of the daemon below ``RLIMIT_NOFILE``: the WebQQ
#: session's connections, the store, the log, the status file, the embedded simulator.
FD_RESERVE = 128
#: Seconds between two looks at the connection count while at the cap.
CAP_RECHECK = 0.25
#: Seconds without accepting after EMFILE and its kind (doubled while it lasts).
ACCEPT_BACKOFF = 0.1
ACCEPT_BACKOFF_MAX = 2.0
#: Connections accepted per readable event, as Tornado does (its listen backlog).
ACCEPT_BATCH = 128
#: The errors of an ``accept`` that will fail again at once if tried at once.
_STARVED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_cap() -> int:
    """How many connections the API may hold: ``MAX_CONNECTIONS``, and at most
    ``RLIMIT_NOFILE`` less ``FD_RESERVE`` (half the limit when that leaves less)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, max(soft // 2, soft - FD_RESERVE)))


class _QuietTornado(logging.Filter):
    """Keeps the request out of Tornado's own log lines, whichever handler they come
    from (the query string may hold the token and a message's text, the headers the
    token, a quoted value the text):

    * "Malformed HTTP message ... Invalid header value 'Bearer ...'": the value goes;
    * "400 GET /path?query (ip): Invalid unicode in x: b'...'" (an ``HTTPError`` a
      handler let out): the query goes, and the detail too when it quotes a value;
    * "Uncaught exception GET /path?query (ip)" and the request's repr: both go;
    * Tornado's own access line (an application without ``log_function``): the query.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "Malformed HTTP message from %s: %s" and len(args) == 2:
            problem = str(args[1])
            cut = min([at for at in (problem.find("'"), problem.find('"')) if at >= 0],
                      default=-1)
            if cut >= 0:
                record.args = (args[0], problem[:cut].rstrip() + " (not shown)")
            return True
        args = tuple(_QUERY.sub(r"\1\2", arg) if isinstance(arg, str) else arg
                     for arg in args)
        if record.msg == "Uncaught exception %s\n%r" and len(args) == 2:
            record.msg, args = "Uncaught exception %s (the request is not shown)", args[:1]
        elif isinstance(record.msg, str) and record.msg.startswith("%d %s: ") and (
                any(mark in record.msg for mark in ("%r", "'", '"'))
                or any(isinstance(arg, (bytes, str)) for arg in args[2:])):
            record.msg = "%d %s: refused (the reason quotes the request: not shown)"
            args = args[:2]
        if args:
            record.args = args
        return True


#: A request summary's query string: "GET /path?query (ip)" -> "GET /path (ip)".
_QUERY = re.compile(r"^(\S+ [^?\s]*)\?\S*( \(.*\))$")
_QUIET_TORNADO = _QuietTornado()


class ApiServer(HTTPServer):
    """Tornado's ``HTTPServer`` with the header and body timeouts, the connection cap
    and the accept loop of the module doc. Give it sockets with ``listen_on`` (not
    ``add_sockets``)."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("idle_connection_timeout", HEADER_TIMEOUT)
        kwargs.setdefault("body_timeout", BODY_TIMEOUT)
        super().initialize(*args, **kwargs)
        self.cap = connection_cap()
        for name in ("tornado.general", "tornado.application", "tornado.access"):
            logging.getLogger(name).addFilter(_QUIET_TORNADO)     # once: same object
        self.acceptors: List[_Acceptor] = []
        self._open: Set[socket.socket] = set()      # accepted, not yet closed

    def listen_on(self, sockets: List[socket.socket]) -> None:
        """Accept connections on ``sockets`` (``netutil.bind_sockets``'s)."""
        for sock in sockets:
            self.acceptors.append(_Acceptor(sock, self))

    def stop(self) -> None:
        """Stop accepting and close the listening sockets (connections stay)."""
        for acceptor in self.acceptors:
            acceptor.close()
        self.acceptors = []
        super().stop()

    def connections(self) -> int:
        """Connections open now: HTTP, and WebSockets (whose streams leave Tornado's
        own count)."""
        self._open = {sock for sock in self._open if sock.fileno() != -1}
        return len(self._open)

    def full(self) -> bool:
        return len(self._open) >= self.cap and self.connections() >= self.cap

    def serve(self, connection: socket.socket, address: Any) -> None:
        """A new connection: count it, and let Tornado's HTTP server read it."""
        self._open.add(connection)
        stream = IOStream(connection, max_buffer_size=self.max_buffer_size,
                          read_chunk_size=self.read_chunk_size)
        self.handle_stream(stream, address)


class _Acceptor:
    """The accept loop of one listening socket (see the module doc)."""

    def __init__(self, sock: socket.socket, server: ApiServer) -> None:
        self.sock = sock
        self.server = server
        self.io_loop = IOLoop.current()
        self._resume_timer: Optional[object] = None
        self._starved = 0                   # accept failures in a row for want of fds
        self._capped = False
        self.io_loop.add_handler(sock, self._ready, IOLoop.READ)

    def _ready(self, fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self.server.full():
                if not self._capped:
                    self._capped = True
                    log.warning("the API holds %d connections, its cap: new ones wait "
                                "until some close", self.server.cap)
                self._pause(CAP_RECHECK)
                return
            if self._capped:
                self._capped = False
                log.info("the API accepts connections again (%d open)",
                         self.server.connections())
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _STARVED:
                    raise
                self._starved += 1
                delay = backoff_delay(self._starved, ACCEPT_BACKOFF, ACCEPT_BACKOFF_MAX)
                if self._starved == 1:
                    log.error("the API cannot accept a connection: %s (%d open); not "
                              "accepting for %g s, longer while it lasts",
                              error.strerror or errno.errorcode[error.errno],
                              self.server.connections(), delay)
                self._pause(delay)
                return
            if self._starved:
                log.info("the API accepts connections again after %d failed accept(s)",
                         self._starved)
                self._starved = 0
            self.server.serve(connection, address)

    def _pause(self, delay: float) -> None:
        self.io_loop.remove_handler(self.sock)
        self._resume_timer = self.io_loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._resume_timer = None
        self.io_loop.add_handler(self.sock, self._ready, IOLoop.READ)

    def close(self) -> None:
        """Stop and close the socket; safe to call twice."""
        if self.sock.fileno() == -1:
            return
        if self._resume_timer is not None:
            self.io_loop.remove_timeout(self._resume_timer)
            self._resume_timer = None
        else:
            self.io_loop.remove_handler(self.sock)
        self.sock.close()
