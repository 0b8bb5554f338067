"""One raw non-blocking socket on the IOLoop: connect, TLS, one exchange at a time.

A `Connection` never blocks and never decides policy (retries, pooling,
timeouts belong to HTTPStream). It follows the iostream discipline: one fd,
one handler (`_handle_events`), added once, its mask changed only when it
must, removed in the single close path, which is safe to call twice.

Its life::

    connect(addresses, ...) ─► CONNECTING ─► [HANDSHAKING] ─► on_connect(None)
    exchange(payload, reader, on_response) ─► WRITING ─► READING ─► on_response(message, None)
    park() ─► IDLE (still watched for READ: a close from the server drops it)
    close(reason) ─► CLOSED  (from any state)

Failures reach the same callbacks as an error: `on_connect(error)` during
connect, `on_response(None, error)` during an exchange, `on_idle_close(self)`
while parked. Each callback runs at most once per phase.
"""
import errno
import logging
import os
import select
import socket
import ssl
from typing import Callable, List, Optional, Tuple

from tornado.ioloop import IOLoop

from .errors import ConnectError, ConnectionClosedError, HTTPStreamError, TLSError
from .reader import Message, ResponseReader

log = logging.getLogger("webqq.http")

_READ, _WRITE = IOLoop.READ, IOLoop.WRITE
#: Bytes asked of the kernel per recv: a whole WebQQ reply in one call. Kept
#: under glibc's 128 KiB mmap threshold: recv allocates this much before it
#: shrinks to what came, and 256 KiB meant an mmap, mremap and munmap per
#: call (8 µs on loopback, against 1 µs for 64 KiB).
_RECV_SIZE = 64 * 1024
#: Nothing left to send: one empty view for every connection (a view of its own was
#: two objects, 300 bytes, on each of a daemon's two thousand idle connections).
_NOTHING = memoryview(b"")
#: errnos that mean "the peer went away", reported as a closed connection
#: rather than a bug (as Tornado's iostream groups them).
_GONE = (errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
         errno.ENOTCONN, errno.ESHUTDOWN)

CONNECTING, HANDSHAKING, WRITING, READING, IDLE, CLOSED, READY = (
    "connecting", "handshaking", "writing", "reading", "idle", "closed", "ready")


class Connection:
    """A TCP connection (TLS when `ssl_context` is given) to one origin.

    Args:
        io_loop: the loop whose handler table holds the socket's fd.
        key: (scheme, host, port) of the origin, for pooling and logs.
        on_idle_close: called with this connection when the server closes it
            (or sends anything) while it is parked.
    """

    # A daemon of a thousand accounts keeps two thousand of these: no __dict__ each.
    __slots__ = ("io_loop", "key", "state", "reused", "idle_since", "error",
                 "_on_idle_close", "_sock", "_fd", "_mask", "_addresses", "_connecting_to",
                 "_server_hostname", "_ssl_context", "_on_connect", "_on_response", "_out",
                 "_reader", "_write_error")

    def __init__(self, io_loop: IOLoop, key: Tuple[str, str, int],
                 on_idle_close: Callable[["Connection"], None]) -> None:
        self.io_loop = io_loop
        self.key = key
        self.state = CONNECTING
        self.reused = False        # has carried an exchange before the current one
        self.idle_since = 0.0      # IOLoop.time() when parked
        self.error: Optional[BaseException] = None   # why it closed
        self._on_idle_close = on_idle_close
        self._sock: Optional[socket.socket] = None
        self._fd = -1
        self._mask = 0             # events registered with the IOLoop; 0: none
        self._addresses: List[tuple] = []
        self._server_hostname = ""
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._on_connect: Optional[Callable[[Optional[HTTPStreamError]], None]] = None
        self._on_response: Optional[Callable[[Optional[Message], Optional[HTTPStreamError]], None]] = None
        self._out = _NOTHING
        self._reader: Optional[ResponseReader] = None
        self._write_error: Optional[OSError] = None

    # -- connecting ---------------------------------------------------------

    def connect(self, addresses: List[tuple], server_hostname: str,
                ssl_context: Optional[ssl.SSLContext],
                on_connect: Callable[[Optional[HTTPStreamError]], None]) -> None:
        """Connect to the first address that answers; `on_connect(None)` when
        ready to send, `on_connect(error)` when every address failed."""
        self._addresses = list(addresses)
        self._server_hostname = server_hostname
        self._ssl_context = ssl_context
        self._on_connect = on_connect
        self._try_next_address(None)

    def _try_next_address(self, previous: Optional[HTTPStreamError]) -> None:
        while self._addresses:
            family, sockaddr = self._addresses.pop(0)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:  # EMFILE and friends: a local failure
                previous = ConnectError(f"Cannot create a socket: {exc.strerror or exc}")
                continue
            sock.setblocking(False)
            if family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(sockaddr)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                sock.close()
                previous = ConnectError(_connect_message(self.key, sockaddr, code))
                continue
            self._sock, self._fd = sock, sock.fileno()
            self._connecting_to = sockaddr
            self._set_mask(_WRITE)
            return
        self._connect_failed(previous or ConnectError(f"No address to connect to for {self.key[1]}"))

    def _finish_connect(self) -> None:
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._drop_socket()
            self._try_next_address(ConnectError(_connect_message(self.key, self._connecting_to, code)))
            return
        if self._ssl_context is None:
            self._connected()
            return
        self._sock = self._ssl_context.wrap_socket(
            self._sock, server_hostname=self._server_hostname, do_handshake_on_connect=False)
        self.state = HANDSHAKING
        self._handshake()

    def _handshake(self) -> None:
        try:
            self._sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_mask(_READ)
            return
        except ssl.SSLWantWriteError:
            self._set_mask(_WRITE)
            return
        except ssl.SSLCertVerificationError as exc:
            self._connect_failed(TLSError(
                f"Certificate of {self._server_hostname} refused: {exc.verify_message}",
                verify=True))
            return
        except (ssl.SSLError, OSError) as exc:
            self._connect_failed(TLSError(
                f"TLS handshake with {self._server_hostname} failed: {exc}"))
            return
        self._connected()

    def _connected(self) -> None:
        self.state = READY
        callback, self._on_connect = self._on_connect, None
        callback(None)

    def _connect_failed(self, error: HTTPStreamError) -> None:
        self.close(error)
        callback, self._on_connect = self._on_connect, None
        if callback is not None:
            callback(error)

    # -- one exchange -------------------------------------------------------

    def exchange(self, payload: bytes, reader: ResponseReader,
                 on_response: Callable[[Optional[Message], Optional[HTTPStreamError]], None]) -> None:
        """Send `payload`, then feed the answer to `reader` until it has a message.

        `on_response(message, None)` on success, `on_response(None, error)` on
        failure; the connection is closed on failure, left READY on success
        (the owner then parks or closes it).
        """
        self._out = memoryview(payload)
        self._reader = reader
        self._on_response = on_response
        self._write_error = None
        self.state = WRITING
        self._write()  # most requests fit the socket buffer: no wait for WRITE

    def _write(self) -> None:
        sock = self._sock
        try:
            while self._out:
                sent = sock.send(self._out)
                self._out = self._out[sent:]
        except (BlockingIOError, ssl.SSLWantWriteError):
            self._set_mask(_WRITE)
            return
        except ssl.SSLWantReadError:
            self._set_mask(_READ)
            return
        except OSError as exc:
            if not _is_gone(exc):
                raise
            # The server stopped reading (it may have answered early, e.g. a
            # 413 to a big upload): stop writing and read what it said.
            self._write_error = exc
        self._out = _NOTHING
        self.state = READING
        self._set_mask(_READ)

    def _read(self) -> None:
        sock, reader = self._sock, self._reader
        while True:
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""
            except OSError as exc:
                if not _is_gone(exc):
                    raise
                self._exchange_failed(ConnectionClosedError(
                    f"Connection reset by {self.key[1]}: {exc.strerror or exc}",
                    response_started=reader.started))
                return
            if data:
                message = reader.feed(data)
                if message is None:
                    continue
            else:
                if self._write_error is not None and not reader.started:
                    self._exchange_failed(ConnectionClosedError(
                        f"Connection closed by {self.key[1]} while sending the request: "
                        f"{self._write_error.strerror or self._write_error}",
                        response_started=False))
                    return
                message = reader.feed_eof()
                message.reusable = False
            if self._write_error is not None:
                message.reusable = False
            self._exchange_done(message)
            return

    def _exchange_done(self, message: Message) -> None:
        self.state = READY
        self._reader = None
        callback, self._on_response = self._on_response, None
        if not message.reusable:
            self.close(None)
        callback(message, None)

    def _exchange_failed(self, error: HTTPStreamError) -> None:
        self.close(error)
        callback, self._on_response = self._on_response, None
        if callback is not None:
            callback(None, error)

    # -- parked between exchanges -------------------------------------------

    def park(self, now: float) -> None:
        """Keep the connection for reuse; any event on it now means it is dead."""
        self.state = IDLE
        self.reused = True
        self.idle_since = now
        # The mask is READ already: the last phase was reading.

    def alive(self) -> bool:
        """A last zero-timeout check before reuse: nothing may be readable on an
        idle connection (not an EOF, not stray bytes)."""
        if self.state != IDLE:
            return False
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return False
        # poll, not select: select cannot watch a descriptor of 1024 or above, which a
        # daemon of many accounts has (it raised, and ended the request's chain).
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        return not poller.poll(0)

    # -- the one handler and the one close ----------------------------------

    def _handle_events(self, fd: int, events: int) -> None:
        try:
            state = self.state
            if state == READING:
                self._read()
            elif state == WRITING:
                self._write()
            elif state == CONNECTING:
                self._finish_connect()
            elif state == HANDSHAKING:
                self._handshake()
            elif state == IDLE:
                self.close(ConnectionClosedError(f"Idle connection to {self.key[1]} closed"))
                self._on_idle_close(self)
        except HTTPStreamError as exc:  # the reader refused the response
            if self.state in (READING, WRITING):
                self._exchange_failed(exc)
            else:
                self._connect_failed(exc)
        except Exception as exc:
            log.error("Unexpected error on the connection to %s", self.key[1], exc_info=True)
            error = ConnectionClosedError(f"Unexpected error: {exc!r}")
            if self._on_response is not None:
                self._exchange_failed(error)
            elif self._on_connect is not None:
                self._connect_failed(error)
            else:
                self.close(error)

    def _set_mask(self, mask: int) -> None:
        if mask == self._mask:
            return
        if self._mask == 0:
            self.io_loop.add_handler(self._fd, self._handle_events, mask)
        else:
            self.io_loop.update_handler(self._fd, mask)
        self._mask = mask

    def _drop_socket(self) -> None:
        if self._mask:
            self.io_loop.remove_handler(self._fd)
            self._mask = 0
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._fd = -1

    def close(self, error: Optional[BaseException]) -> None:
        """Unregister and close the socket; safe to call twice. Callbacks of a
        phase in progress are not called: the caller ends that phase itself."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.error = error
        self._drop_socket()
        self._out = _NOTHING
        self._reader = None

    def abort(self, error: HTTPStreamError) -> None:
        """Close and forget the phase in progress (a deadline passed)."""
        self._on_connect = None
        self._on_response = None
        self.close(error)


def _is_gone(exc: OSError) -> bool:
    return exc.errno in _GONE or isinstance(exc, (ConnectionError, ssl.SSLEOFError))


def _connect_message(key: Tuple[str, str, int], sockaddr: tuple, code: int) -> str:
    return f"Cannot connect to {key[1]} ({sockaddr[0]} port {sockaddr[1]}): {os.strerror(code)}"
