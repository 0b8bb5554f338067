"""Strict HTTP/1.1 response framing, without I/O.

`ResponseReader` decides where a response ends and whether it is well-formed;
it never touches a socket or a clock. Bytes go in through `feed()` and
`feed_eof()`; a finished `Message` comes out, or `MalformedResponseError` /
`ConnectionClosedError` is raised. `http.client` later parses the header block
of a message known to be complete (see `webqq.http_stream.Response`): it is
lenient (it takes a 103 as final, ignores `Content-Length: 5, 42`, stops at a
header line without a colon), so it is never asked where a response ends.

The rules, each from RFC 9112 unless noted, and agreeing with llhttp's strict
mode (the parser of Node.js; its vectors run in tests/test_http_vectors.py):

* Lines end in CRLF. A bare CR or a bare LF is an error (llhttp strict; bare LF
  is a classic request-smuggling vector).
* Status line: ``HTTP/1.0`` or ``HTTP/1.1``, one space, three digits (100 to
  999, RFC 9110 §15), then an optional space and reason. Empty lines before it
  are skipped (§2.2).
* Header lines: a token, a colon, a value. No whitespace before the colon
  (§5.1), no NUL or bare CR in a value; the whitespace around a value is SP
  and HTAB only (RFC 9110 §5.6.3: a no-break space before a Content-Length
  is an error). A line starting with SP or HTAB continues the previous value
  (obs-fold, §5.2: joined with a space); right after the status line it is an
  error.
* Interim 1xx responses are skipped (§9.1); 101 is an error, since we never ask
  for an upgrade.
* No body for HEAD, 204 or 304 (§6.3). A 204 that claims a body is answered
  but its connection is not reused.
* ``Transfer-Encoding`` must be exactly ``chunked``; together with
  ``Content-Length`` it is refused (§6.3: the smuggling risk). Anything else
  (``gzip, chunked``) is refused too, as Tornado and h11 do.
* ``Content-Length``: digits only; several fields or a list are fine when they
  all agree (§6.3), otherwise an error.
* Chunk sizes are 1 to 16 hex digits, optionally followed by extensions
  (``;name`` or ``;name=token`` or ``;name="quoted"``, no CR or control
  character inside the quotes); nothing else, not even a trailing space
  (llhttp strict). The CRLF after each chunk's data is checked. Trailers are
  parsed like headers and dropped. Chunk framing is capped against the body
  (`CHUNK_FRAMING_ALLOWANCE`): a body in 1-byte chunks is refused, not read at
  a loop pass per byte.
* Neither length nor chunking: the body runs to the close, and the connection
  cannot be reused.
* The verdict never depends on how the bytes were split into pieces
  (tests/test_http_reader_splits.py feeds every split of every case).
* Bytes beyond the end of the response mean the peer is out of step with us
  (we never pipeline): the message is delivered, the connection not reused.
"""
import codecs
import re
import zlib
from typing import Dict, List, Optional, Tuple

from .errors import ConnectionClosedError, MalformedResponseError, ResponseTooLargeError

#: Cap on the status line plus headers, as Tornado's max_header_size (64 KiB);
#: larger than any WebQQ reply's head by two orders of magnitude.
MAX_HEADER_SIZE = 64 * 1024
#: Cap on a body, on the wire and once decoded: WebQQ's largest replies (group
#: member lists) are well under 1 MiB; 16 MiB leaves room and bounds memory.
MAX_BODY_SIZE = 16 * 1024 * 1024
#: Cap on header fields: http.client refuses more than 100 (its _MAXHEADERS),
#: and it must never fail on a head we accepted.
MAX_HEADERS = 100
#: Interim (1xx) responses skipped before the final one; a server sending more
#: is broken or hostile.
MAX_INTERIM_RESPONSES = 8

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: name ":" OWS value OWS, on a head already free of NUL, CR and LF.
_HEADER_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")
#: A whole header block of "name:value" lines, each ending in CRLF.
_HEADER_BLOCK = re.compile(r"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*\r\n)*")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
#: Optional whitespace is SP and HTAB only (RFC 9110 §5.6.3). str.strip()
#: without arguments would also take NBSP, VT, FF and more from latin-1 text,
#: so "Content-Length: \xa05" would pass for "5": values are stripped of this.
_OWS = " \t"
#: A token as text, for list elements of Connection.
_TOKEN_TEXT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN_CHARS = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
#: quoted-string (RFC 9110 §5.6.4): qdtext is HTAB, SP, VCHAR but '"' and '\',
#: or obs-text; a quoted-pair escapes HTAB, SP, VCHAR or obs-text. No CR, no
#: control character, inside the quotes or after a backslash.
_QUOTED_STRING = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"((?:;" + _TOKEN_CHARS + rb"+(?:=(?:" + _TOKEN_CHARS + rb"+|" + _QUOTED_STRING + rb"))?)*)")
#: Longest chunk-size line we wait for (size plus extensions).
_MAX_CHUNK_LINE = 4096
#: Chunk framing (each size line with its extensions and CRLF, and the CRLF
#: after each chunk's data) may take CHUNK_FRAMING_ALLOWANCE bytes plus one
#: byte per CHUNK_FRAMING_RATIO body bytes. Each chunk costs a pass of a
#: Python loop (about 1.3 µs): 16 MiB sent in 1-byte chunks (6 wire bytes per
#: body byte) used to cost 24 s of CPU and 2 GB of memory. Such a body is now
#: refused after about 13,000 chunks, and the largest body allowed takes at
#: most (64 KiB + 16 MiB / 32) / 5 ≈ 120,000 passes (0.15 s). Servers send
#: chunks the size of their write buffers (nginx 4-8 KiB), framing well under
#: 1/32 of the body; the 64 KiB allowance lets a small body come in many tiny
#: chunks. Go's net/http caps framing against data for the same reason
#: (CVE-2023-39326), with a 16 KiB allowance.
CHUNK_FRAMING_ALLOWANCE = 64 * 1024
CHUNK_FRAMING_RATIO = 32

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class Message:
    """A complete response as framed by `ResponseReader`.

    status, reason (str), version (10 or 11), header_block (the header lines as
    bytes, CRLF-terminated, ending in an empty line: what http.client parses),
    fields (lower-cased name -> list of values, both str), body (bytes as
    received, de-chunked, not yet decoded), reusable (whether the connection
    may carry another request).
    """

    __slots__ = ("status", "reason", "version", "header_block", "fields", "body", "reusable")

    def __init__(self, status: int, reason: str, version: int, header_block: bytes,
                 fields: Dict[str, List[str]], body: bytes, reusable: bool) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.header_block = header_block
        self.fields = fields
        self.body = body
        self.reusable = reusable


class ResponseReader:
    """Frames one HTTP/1.1 response from bytes fed in any pieces.

    Args:
        head_request: the request was HEAD, so the response has no body.
        max_header_size: cap on the status line and headers, in bytes.
        max_body_size: cap on the body on the wire, in bytes.

    `feed(data)` returns the `Message` once complete, else None (more bytes
    needed). `feed_eof()` says the peer closed: it returns the message when the
    close is its natural end (a body framed by the close), else raises
    `ConnectionClosedError`. Both raise `MalformedResponseError` (or
    `ResponseTooLargeError`) when the bytes break the rules above. After a
    result or an error the reader is spent. `started` tells whether any byte
    of the response has arrived.
    """

    # One per request in flight: a daemon of a thousand accounts holds a thousand polls.
    __slots__ = ("_head_request", "_max_header_size", "_max_body_size", "_buf", "_state",
                 "_scanned", "_interim", "_length", "_pieces", "_chunked", "_body_size",
                 "_framing", "_trailer_size", "_message", "started")

    def __init__(self, head_request: bool = False, max_header_size: int = MAX_HEADER_SIZE,
                 max_body_size: int = MAX_BODY_SIZE) -> None:
        self._head_request = head_request
        self._max_header_size = max_header_size
        self._max_body_size = max_body_size
        self._buf = bytearray()
        self._state = _HEAD
        self._scanned = 0          # bytes of _buf already searched for the end of head
        self._interim = 0          # 1xx responses skipped so far
        self._length = 0           # body length (_LENGTH) or bytes left of a chunk (_CHUNK_DATA)
        self._pieces: List[bytes] = []    # a length- or close-framed body, as recv gave it
        self._chunked = bytearray()       # a chunked body: the chunks' data, one buffer
        self._body_size = 0        # body bytes received or announced by chunk sizes
        self._framing = 0          # bytes of chunk framing so far
        self._trailer_size = 0
        self._message: Optional[Message] = None
        self.started = False

    def feed(self, data: bytes) -> Optional[Message]:
        """Take the next bytes from the connection; the message when complete."""
        state = self._state
        if state == _DONE:
            if data:
                self._message.reusable = False
            return None
        if data:
            self.started = True
        # A body framed by length or by the close is kept as the pieces recv gave,
        # joined once at the end: a large body is copied once, not at every recv.
        if state == _LENGTH:
            return self._add_body(data)
        if state == _UNTIL_CLOSE:
            self._add_body(data)
            return None
        self._buf += data
        if state == _HEAD:
            if not self._read_head():
                return None
            if self._state in (_LENGTH, _UNTIL_CLOSE):
                rest = bytes(self._buf)
                self._buf.clear()
                message = self._add_body(rest)
                return message if self._state != _UNTIL_CLOSE else None
        return self._read_chunked()

    def feed_eof(self) -> Message:
        """The peer closed the connection; the message if that is its end."""
        if self._state == _UNTIL_CLOSE:
            return self._finish(b"".join(self._pieces), reusable=False)
        if self._state == _HEAD:
            if not self._buf.strip(b"\r\n"):
                raise ConnectionClosedError("Connection closed before the response",
                                            response_started=self.started)
            self._check_partial_head()
            raise ConnectionClosedError("Connection closed in the response's header section",
                                        response_started=True)
        if self._state == _LENGTH:
            got = self._body_size
            raise ConnectionClosedError(
                f"Connection closed after {got} of {self._length} body bytes",
                response_started=True)
        if self._state == _DONE:
            return self._message
        raise ConnectionClosedError("Connection closed inside the chunked body",
                                    response_started=True)

    # -- the header section -------------------------------------------------

    def _read_head(self) -> bool:
        """Parse a whole head if one is buffered; True when the body state is set."""
        while True:
            buf = self._buf
            # A response may be preceded by empty lines (RFC 9112 §2.2).
            while buf[:2] == b"\r\n":
                del buf[:2]
                self._scanned = max(0, self._scanned - 2)
            end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(buf)
                if len(buf) > self._max_header_size:
                    raise ResponseTooLargeError(
                        f"Response header section over {self._max_header_size} bytes")
                self._check_partial_head()
                return False
            if end + 4 > self._max_header_size:
                raise ResponseTooLargeError(
                    f"Response header section over {self._max_header_size} bytes")
            head = bytes(buf[:end + 2])
            del buf[:end + 4]
            self._scanned = 0
            if self._parse_head(head):
                return True
            # An interim response was skipped; the final one follows.

    def _check_partial_head(self) -> None:
        """Fail early on a head that can never become valid (garbage, TLS bytes,
        bare LF) instead of waiting for the cap or the close."""
        buf = self._buf
        if buf == b"\r":
            return  # the first half of an empty line before the status line
        prefix = bytes(buf[:8])
        if not b"HTTP/1.1"[:len(prefix)] == prefix and not b"HTTP/1.0"[:len(prefix)] == prefix:
            raise MalformedResponseError(f"Invalid response start {prefix!r}")
        newline = buf.find(b"\n")
        if newline >= 0:
            if newline == 0 or buf[newline - 1] != 0x0D:
                raise MalformedResponseError("Bare LF in the response head")
            _parse_status_line(bytes(buf[:newline - 1]))

    def _parse_head(self, head: bytes) -> bool:
        """Parse status line and headers; set the body state. False for a 1xx."""
        crlf = head.count(b"\r\n")
        if head.count(b"\r") != crlf or head.count(b"\n") != crlf:
            raise MalformedResponseError("Bare CR or LF in the response head")
        if b"\0" in head:
            raise MalformedResponseError("NUL byte in the response head")
        if crlf > MAX_HEADERS + 1:
            raise ResponseTooLargeError(f"Response has more than {MAX_HEADERS} header lines")
        text = head.decode("latin-1")
        end = text.index("\r\n")
        version, status, reason = _parse_status_line(head[:end])
        fields: Dict[str, List[str]] = {}
        folded = False
        block = text[end + 2:]
        if _HEADER_BLOCK.fullmatch(block):
            # The common case: every line is "name:value", checked by one regex
            # in C; then split (a lazy regex group costs twice as much).
            for line in block.split("\r\n")[:-1]:
                name, _, value = line.partition(":")
                name = name.lower()
                value = value.strip(_OWS)
                if name in fields:
                    fields[name].append(value)
                else:
                    fields[name] = [value]
        else:
            folded = self._parse_lines(block.split("\r\n")[:-1], fields)

        if 100 <= status < 200:
            if status == 101:
                raise MalformedResponseError("Unexpected 101 Switching Protocols")
            self._interim += 1
            if self._interim > MAX_INTERIM_RESPONSES:
                raise MalformedResponseError("Too many interim (1xx) responses")
            return False

        if folded:
            header_block = b"".join(
                f"{name}: {value}\r\n".encode("latin-1")
                for name, values in fields.items() for value in values) + b"\r\n"
        else:
            first = head.find(b"\r\n") + 2
            header_block = head[first:] + b"\r\n"
        self._message = Message(status, reason, version, header_block, fields, b"",
                                _keep_alive(version, fields))
        self._set_body_state(status, fields)
        return True

    @staticmethod
    def _parse_lines(lines: List[str], fields: Dict[str, List[str]]) -> bool:
        """Header lines one by one: obs-fold, or the line that breaks the rules.
        True when a folded line was joined."""
        folded = False
        values: Optional[List[str]] = None
        for line in lines:
            match = _HEADER_LINE.fullmatch(line)
            if match is not None:
                name, value = match.groups()
                values = fields.setdefault(name.lower(), [])
                values.append(value)
            elif line[:1] in (" ", "\t") and values is not None:
                values[-1] = (values[-1] + " " + line.strip(_OWS)).strip(_OWS)
                folded = True
            elif values is None and line[:1] in (" ", "\t"):
                raise MalformedResponseError("Unexpected space after the status line")
            else:
                raise MalformedResponseError(f"Invalid header line {line[:40]!r}")
        return folded

    def _set_body_state(self, status: int, fields: Dict[str, List[str]]) -> None:
        length = _content_length(fields.get("content-length"))
        encoding = fields.get("transfer-encoding")
        if self._head_request or status in (204, 304):
            if status == 204 and length:
                self._message.reusable = False  # its body would corrupt the next response
            self._state = _LENGTH
            self._length = 0
            return
        if encoding is not None:
            if length is not None:
                raise MalformedResponseError(
                    "Response has both Transfer-Encoding and Content-Length")
            codings = [c.strip(_OWS).lower() for v in encoding for c in v.split(",")]
            if codings != ["chunked"]:
                raise MalformedResponseError(
                    f"Unsupported Transfer-Encoding {', '.join(encoding)!r}")
            self._state = _CHUNK_SIZE
            return
        if length is not None:
            if length > self._max_body_size:
                raise ResponseTooLargeError(
                    f"Content-Length {length} over the {self._max_body_size}-byte cap")
            self._state = _LENGTH
            self._length = length
            return
        self._state = _UNTIL_CLOSE
        self._message.reusable = False

    # -- bodies -------------------------------------------------------------

    def _add_body(self, data: bytes) -> Optional[Message]:
        """Keep a piece of a length- or close-framed body; the message once a
        length-framed body is whole."""
        if data:
            self._count(len(data))
            self._pieces.append(data)
        if self._state == _UNTIL_CLOSE or self._body_size < self._length:
            return None
        pieces = self._pieces
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if len(body) > self._length:  # bytes beyond the response: not ours to read
            return self._finish(body[:self._length], reusable=False)
        return self._finish(body, reusable=True)

    def _read_chunked(self) -> Optional[Message]:
        """Take what `_buf` holds of a chunked body; the message once the last
        chunk and the trailers are in.

        Chunk data goes straight into one bytearray as it arrives, so memory
        follows the body, not the number of chunks or how recv split them.
        """
        buf = self._buf
        pos = 0
        try:
            while True:
                state = self._state
                if state == _CHUNK_DATA:
                    take = min(self._length, len(buf) - pos)
                    self._chunked += buf[pos:pos + take]
                    pos += take
                    self._length -= take
                    if self._length:
                        return None
                    self._state = _CHUNK_END
                elif state == _CHUNK_END:
                    ending = buf[pos:pos + 2]
                    if ending != b"\r\n":
                        if ending in (b"", b"\r"):
                            return None
                        raise MalformedResponseError("Missing CRLF after chunk data")
                    pos += 2
                    self._state = _CHUNK_SIZE
                elif state == _CHUNK_SIZE:
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        self._check_chunk_line(bytes(buf[pos:]))
                        return None
                    self._start_chunk(bytes(buf[pos:end]))
                    pos = end + 2
                else:  # _TRAILERS: header lines up to an empty line, then done
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        if self._trailer_size + len(buf) - pos > self._max_header_size:
                            raise ResponseTooLargeError("Response trailers too large")
                        return None
                    line = bytes(buf[pos:end])
                    pos = end + 2
                    if not line:
                        del buf[:pos]
                        pos = 0
                        body = bytes(self._chunked)
                        self._chunked = bytearray()
                        return self._finish(body, reusable=not buf)
                    self._trailer_size += len(line) + 2
                    if self._trailer_size > self._max_header_size:
                        raise ResponseTooLargeError("Response trailers too large")
                    name, colon, value = line.partition(b":")
                    if not colon or not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
                        raise MalformedResponseError(f"Invalid trailer line {line[:40]!r}")
        finally:
            if pos:
                del buf[:pos]

    def _start_chunk(self, line: bytes) -> None:
        """Parse a whole chunk-size line (without its CRLF) and set the next state."""
        if len(line) > _MAX_CHUNK_LINE:
            raise MalformedResponseError("Chunk size line too long")
        match = _CHUNK_SIZE_LINE.fullmatch(line)
        if match is None:
            raise MalformedResponseError(f"Invalid chunk size line {line[:40]!r}")
        size = int(match.group(1), 16)
        self._framing += len(line) + 2
        if size == 0:
            self._state = _TRAILERS
            return
        self._framing += 2  # the CRLF after the data
        self._count(size)
        if self._framing > CHUNK_FRAMING_ALLOWANCE + self._body_size // CHUNK_FRAMING_RATIO:
            raise ResponseTooLargeError(
                f"Chunk framing over its cap: {self._framing} bytes of it "
                f"for {self._body_size} body bytes")
        self._length = size
        self._state = _CHUNK_DATA

    @staticmethod
    def _check_chunk_line(partial: bytes) -> None:
        """Fail early on a chunk-size line that cannot become valid."""
        if partial.endswith(b"\r"):
            partial = partial[:-1]
        if len(partial) > _MAX_CHUNK_LINE:
            raise MalformedResponseError("Chunk size line too long")
        if partial and not (_CHUNK_SIZE_LINE.fullmatch(partial)
                            or _CHUNK_SIZE_LINE.fullmatch(partial + b"x")
                            or _CHUNK_SIZE_LINE.fullmatch(partial + b'"')
                            or _CHUNK_SIZE_LINE.fullmatch(partial + b'x"')):
            raise MalformedResponseError(f"Invalid chunk size line {partial[:40]!r}")
        if b"\n" in partial or b"\r" in partial:
            raise MalformedResponseError("Bare CR or LF in a chunk size line")

    def _count(self, size: int) -> None:
        self._body_size += size
        if self._body_size > self._max_body_size:
            raise ResponseTooLargeError(f"Response body over the {self._max_body_size}-byte cap")

    def _finish(self, body: bytes, reusable: bool) -> Message:
        message = self._message
        message.body = body
        message.reusable = message.reusable and reusable
        self._state = _DONE
        self._buf.clear()
        self._pieces = []
        return message


def _parse_status_line(line: bytes) -> Tuple[int, int, str]:
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise MalformedResponseError(f"Invalid status line {line[:40]!r}")
    version = 10 if match.group(1) == b"0" else 11
    status = int(match.group(2))
    # RFC 9110 §15: the first digit is the class, 1 to 5. A 6xx-9xx is invalid
    # but "SHOULD be processed as if it had a 5xx", and h11 takes 200-999 as
    # final too, so it is delivered (and, not being 1xx, ends the exchange).
    # A 0xx has no class at all (h11 refuses it): an error, never a response.
    if status < 100:
        raise MalformedResponseError(f"Invalid status code {match.group(2).decode()} "
                                     f"(the first digit must be 1 to 9)")
    reason = (match.group(3) or b"").decode("latin-1")
    return version, status, reason


def _content_length(values: Optional[List[str]]) -> Optional[int]:
    """The one length all Content-Length fields agree on, or None without any."""
    if values is None:
        return None
    lengths = {piece.strip(_OWS) for value in values for piece in value.split(",")}
    if len(lengths) != 1:
        raise MalformedResponseError(f"Conflicting Content-Length values {values!r}")
    (length,) = lengths
    # Digits only: "+3", "-1", "0x5" and "1_0" are refused, which int() would take.
    if not (length.isdigit() and length.isascii()) or len(length) > 18:
        raise MalformedResponseError(f"Invalid Content-Length {length!r}")
    return int(length)


def _keep_alive(version: int, fields: Dict[str, List[str]]) -> bool:
    """May the connection carry another request (RFC 9112 §9.3)?

    A Connection field that is not a list of tokens ("close\xa0") says
    something we cannot read, so the connection is not reused.
    """
    tokens = {t.strip(_OWS).lower() for v in fields.get("connection", ()) for t in v.split(",")}
    tokens.discard("")
    if "close" in tokens or not all(_TOKEN_TEXT.fullmatch(t) for t in tokens):
        return False
    return version == 11 or "keep-alive" in tokens


def decode_body(body: bytes, coding: str, limit: int = MAX_BODY_SIZE) -> bytes:
    """Undo a gzip or deflate Content-Encoding, never producing more than `limit` bytes.

    gzip may hold several members; deflate may be zlib-wrapped (as RFC 9110
    says) or raw (as some servers send). Raises `MalformedResponseError` for a
    corrupt or truncated stream, `ResponseTooLargeError` past the limit.
    Other codings (and identity) come back unchanged.
    """
    coding = coding.strip(_OWS).lower()
    if not body or coding not in ("gzip", "x-gzip", "deflate"):
        return body
    if coding == "deflate":
        # A zlib header: compression method 8 and a check sum over two bytes.
        wrapped = len(body) > 1 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        return _inflate(body, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, limit, coding)
    return _inflate(body, 16 + zlib.MAX_WBITS, limit, coding)


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out: List[bytes] = []
    size = 0
    try:
        while data:
            decoder = zlib.decompressobj(wbits)
            piece = decoder.decompress(data, limit - size + 1)
            while True:
                size += len(piece)
                out.append(piece)
                if size > limit:
                    raise ResponseTooLargeError(f"Decoded body over the {limit}-byte cap")
                if not decoder.unconsumed_tail:
                    break
                piece = decoder.decompress(decoder.unconsumed_tail, limit - size + 1)
            if not decoder.eof:
                raise MalformedResponseError(f"Truncated {coding} body")
            data = decoder.unused_data
            # Only gzip has members; anything after a deflate stream is ignored,
            # and so is trailing padding after the last gzip member.
            if wbits != 16 + zlib.MAX_WBITS or not data.lstrip(b"\x00"):
                break
    except zlib.error as exc:
        raise MalformedResponseError(f"Invalid {coding} body: {exc}") from None
    return b"".join(out)


def decode_text(body: bytes, charset: Optional[str]) -> str:
    """`body` as text in `charset`, bad bytes replaced; never raises.

    UTF-8 stands in for a charset that is missing or that Python does not
    know, and for the codecs in Python's registry that are no charsets:
    bytes-to-bytes and str-to-str ones (base64, hex, zlib, rot13), which
    CPython marks with `CodecInfo._is_text_encoding = False`, and the text
    codecs of other trades that refuse errors="replace" or any input (idna
    and punycode spell host names; undefined refuses everything).
    """
    codec = "utf-8"
    if charset:
        try:
            info = codecs.lookup(charset)
        except (LookupError, ValueError):  # unknown, or a NUL in the name
            info = None
        if info is not None and getattr(info, "_is_text_encoding", True) \
                and info.name not in _NO_CHARSETS:
            codec = info.name
    try:
        return body.decode(codec, errors="replace")
    except UnicodeError:  # a codec that refuses what it was given
        return body.decode("utf-8", errors="replace")


# Text codecs of other trades, never a body's charset: idna and punycode spell host
# names (and Python 3.13's punycode decodes some bodies to nothing instead of raising);
# undefined refuses everything.
_NO_CHARSETS = frozenset({"idna", "punycode", "undefined"})
