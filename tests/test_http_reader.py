"""The strict response reader, without sockets: bytes in, message or error out.

Every case is fed whole and one byte at a time, so framing never depends on
how the kernel happens to split a response.
"""
import gzip
import tracemalloc
import zlib

import pytest

import llhttp_vectors
from webqq.http.errors import ConnectionClosedError, MalformedResponseError, \
    ResponseTooLargeError
from webqq.http.reader import ResponseReader, decode_body


def run(raw: bytes, split: bool, head_request: bool = False, close: bool = True, **limits):
    """Feed `raw` (whole or byte by byte), then EOF if `close`; the message or the error."""
    reader = ResponseReader(head_request, **limits)
    pieces = [raw[i:i + 1] for i in range(len(raw))] if split else [raw]
    try:
        for piece in pieces:
            message = reader.feed(piece)
            if message is not None:
                return message
        return reader.feed_eof() if close else None
    except (MalformedResponseError, ConnectionClosedError) as exc:
        return exc


BOTH = pytest.mark.parametrize("split", [False, True], ids=["whole", "bytewise"])

#: Responses a client must read, by what they show; tests below name them, and
#: test_http_reader_splits.py feeds each in every split.
WELL_FORMED = {
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
    "chunked with extensions and trailers":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\n5;q=\"a\\\"b\";x\r\nworld\r\n0\r\nTrailer: x\r\n\r\n",
    "until close": b"HTTP/1.1 200 OK\r\n\r\nall of it",
    "204": b"HTTP/1.1 204 X\r\nContent-Length: 42\r\n\r\n",
    "304": b"HTTP/1.1 304 X\r\nContent-Length: 42\r\n\r\n",
    "256 bytes, or none to HEAD": b"HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n",
    "interim responses":
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n",
    "http/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http/1.0 keep-alive": b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
    "connection close": b"HTTP/1.1 200 OK\r\nConnection: x, cloSE\r\nContent-Length: 0\r\n\r\n",
    "agreeing content-lengths":
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
    "bytes after the response": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
    "sp and htab around content-length": b"HTTP/1.1 200 OK\r\nContent-Length: \t5 \t\r\n\r\nhello",
    "sp and htab around chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\t chunked\t \r\n\r\n"
                                  b"5\r\nhello\r\n0\r\n\r\n",
}


@BOTH
def test_content_length_body(split):
    message = run(WELL_FORMED["content-length"], split, close=False)
    assert (message.status, message.reason, message.body) == (200, "OK", b"hello")
    assert message.fields["x-a"] == ["b"] and message.reusable


@BOTH
def test_chunked_with_extensions_and_trailers(split):
    message = run(WELL_FORMED["chunked with extensions and trailers"], split, close=False)
    assert message.body == b"hello world" and message.reusable


@BOTH
def test_read_until_close_is_not_reusable(split):
    message = run(WELL_FORMED["until close"], split)
    assert message.body == b"all of it" and not message.reusable


@BOTH
@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(split, status):
    message = run(WELL_FORMED[str(status)], split, close=False)
    assert message.status == status and message.body == b""


@BOTH
def test_head_response_has_no_body(split):
    message = run(WELL_FORMED["256 bytes, or none to HEAD"], split, head_request=True,
                  close=False)
    assert message.body == b"" and message.reusable


@BOTH
def test_interim_responses_are_skipped(split):
    message = run(WELL_FORMED["interim responses"], split, close=False)
    assert (message.status, message.body) == (200, b"ok")


@BOTH
def test_obs_fold_is_joined(split):
    message = run(WELL_FORMED["obs-fold"], split, close=False)
    assert message.fields["x-long"] == ["one two"]
    assert b"X-Long" not in message.header_block and b"x-long: one two\r\n" in message.header_block


@BOTH
def test_http10_keep_alive_rules(split):
    plain = run(WELL_FORMED["http/1.0"], split, close=False)
    kept = run(WELL_FORMED["http/1.0 keep-alive"], split, close=False)
    closed = run(WELL_FORMED["connection close"], split, close=False)
    assert (plain.reusable, kept.reusable, closed.reusable) == (False, True, False)


@BOTH
def test_agreeing_content_lengths_are_accepted(split):
    message = run(WELL_FORMED["agreeing content-lengths"], split, close=False)
    assert message.body == b"ok"


def test_extra_bytes_after_the_response_forbid_reuse():
    together = run(WELL_FORMED["bytes after the response"], False, close=False)
    assert together.body == b"ok" and not together.reusable
    reader = ResponseReader()
    later = reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert later.reusable
    reader.feed(b"EXTRA")
    assert not later.reusable


MALFORMED = {
    "garbage status line": b"HTTP/1.1 Omg What Is This?\r\n\r\n",
    "unknown protocol": b"HTTP/1000 200 OK\r\n\r\n",
    "tls bytes on http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "header without colon": b"HTTP/1.1 200 OK\r\nBroken Header\r\nContent-Length: 0\r\n\r\n",
    "empty header name": b"HTTP/1.1 200 OK\r\n: value\r\nContent-Length: 0\r\n\r\n",
    "space before colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "nul in value": b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "bare lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "conflicting content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 42\r\n\r\nhello",
    "content-length list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 42\r\n\r\nhello",
    "signed content-length": b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
    "underscore content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n0123456789",
    "cl and chunked": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "gzip, chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "hex prefix chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    "underscore chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5_0\r\n",
    "missing crlf after chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "upgrade never asked for": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    "bare cr escaped in a quoted chunk extension":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n",
    "bare cr in a quoted chunk extension":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n",
    "control character in a quoted chunk extension":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",
    "status 000": b"HTTP/1.1 000 Nothing\r\nContent-Length: 0\r\n\r\n",
    "status 099": b"HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n",
}


@BOTH
@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_responses_are_refused(raw, split):
    assert isinstance(run(raw, split), MalformedResponseError)


#: Characters str.strip() removes that are not optional whitespace (SP, HTAB)
#: and may appear in a header value: VT, FF, the separators, NEL, NBSP.
NOT_OWS = [chr(c) for c in range(256) if chr(c).isspace() and chr(c) not in " \t\r\n"]


def framing_cases():
    """Framing headers with a non-OWS space before or after the value."""
    for char in NOT_OWS:
        for where, pad in (("before", lambda v: char + v), ("after", lambda v: v + char)):
            name = f"{char!r} {where}"
            cl = pad("5").encode("latin-1")
            yield f"Content-Length, {name}", \
                b"HTTP/1.1 200 OK\r\nContent-Length: " + cl + b"\r\n\r\nhello"
            yield f"Content-Length list, {name}", \
                b"HTTP/1.1 200 OK\r\nContent-Length: 5, " + cl + b"\r\n\r\nhello"
            te = pad("chunked").encode("latin-1")
            yield f"Transfer-Encoding, {name}", \
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + te + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"


FRAMING_SPACES = dict(framing_cases())


@BOTH
@pytest.mark.parametrize("raw", FRAMING_SPACES.values(), ids=FRAMING_SPACES.keys())
def test_only_sp_and_htab_are_optional_whitespace_in_framing(raw, split):
    assert isinstance(run(raw, split), MalformedResponseError)


@BOTH
def test_sp_and_htab_around_framing_values_are_fine(split):
    for name in ("sp and htab around content-length", "sp and htab around chunked"):
        assert run(WELL_FORMED[name], split, close=False).body == b"hello"


@BOTH
@pytest.mark.parametrize("char", NOT_OWS, ids=[repr(c) for c in NOT_OWS])
def test_a_connection_token_with_other_spaces_is_not_keep_alive(char, split):
    raw = b"HTTP/1.0 200 OK\r\nConnection: keep-alive" + char.encode("latin-1") + \
        b"\r\nContent-Length: 0\r\n\r\n"
    assert not run(raw, split, close=False).reusable
    raw = b"HTTP/1.1 200 OK\r\nConnection: " + char.encode("latin-1") + \
        b"close\r\nContent-Length: 0\r\n\r\n"
    assert not run(raw, split, close=False).reusable


@BOTH
@pytest.mark.parametrize("status", [600, 999])
def test_a_status_past_599_is_a_response(split, status):
    # RFC 9110 §15: invalid, but to be processed like a 5xx; h11 takes it too.
    message = run(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % status, split, close=False)
    assert (message.status, message.body) == (status, b"ok")


TRUNCATED = {
    "nothing": b"",
    "mid status line": b"HTTP/1.1 20",
    "mid headers": b"HTTP/1.1 200 OK\r\nContent-Le",
    "after headers, no body": b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\n",
    "mid body": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    "mid chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    "before last chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    "after 100 continue": b"HTTP/1.1 100 Continue\r\n\r\n",
}


@BOTH
@pytest.mark.parametrize("raw", TRUNCATED.values(), ids=TRUNCATED.keys())
def test_a_close_before_the_end_is_an_error_not_a_response(raw, split):
    error = run(raw, split)
    assert isinstance(error, ConnectionClosedError)
    assert error.response_started == bool(raw)


def test_truncation_message_counts_the_bytes():
    error = run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", split=False)
    assert str(error) == "Connection closed after 5 of 10 body bytes"


def test_header_section_cap():
    raw = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 70000 + b"\r\n\r\n"
    assert isinstance(run(raw, split=False), ResponseTooLargeError)
    many = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"Content-Length: 0\r\n\r\n"
    assert isinstance(run(many, split=False), ResponseTooLargeError)


def test_body_cap_on_content_length_and_chunks():
    assert isinstance(run(b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", split=False,
                          max_body_size=100), ResponseTooLargeError)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n"
    assert isinstance(run(chunked * 1 + b"40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n", split=False,
                          max_body_size=100), ResponseTooLargeError)
    until_close = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101
    assert isinstance(run(until_close, split=False, max_body_size=100), ResponseTooLargeError)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_tiny_chunks_cost_memory_like_the_body_not_an_object_each():
    body_size = 8000  # 40,000 bytes of framing: within the allowance
    wire = CHUNKED_HEAD + b"1\r\nx\r\n" * body_size + b"0\r\n\r\n"
    pieces = [wire[i:i + 4096] for i in range(0, len(wire), 4096)]
    reader = ResponseReader()
    tracemalloc.start()
    try:
        for piece in pieces:
            message = reader.feed(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.body == b"x" * body_size
    assert peak < 4 * body_size


def test_chunk_framing_is_capped_against_the_body():
    one_byte_chunks = b"1\r\nx\r\n" * 100_000
    error = run(CHUNKED_HEAD + one_byte_chunks, split=False)
    assert isinstance(error, ResponseTooLargeError) and "Chunk framing" in str(error)
    # Long extensions are framing too.
    extension = b"1;e=" + b"a" * 4000 + b"\r\nx\r\n"
    error = run(CHUNKED_HEAD + extension * 100, split=False)
    assert isinstance(error, ResponseTooLargeError) and "Chunk framing" in str(error)
    # Chunks the size of a server's write buffer are far from the cap.
    big = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    message = run(CHUNKED_HEAD + big * 64 + b"0\r\n\r\n", split=False, close=False)
    assert len(message.body) == 64 * 4096


# -- llhttp's strict vectors ------------------------------------------------

# Cases where either outcome is acceptable for a client (README of the vectors):
# an unrequested 101, RTSP/ICE/HTTP 0.9 status lines, and transfer-codings other
# than a single "chunked", which we refuse where llhttp reads to the close.
EITHER = ("101 response", "RTSP response", "ICE response", "HTTP version 0.9",
          "before other transfer-encoding", "chunked is not the last one", "chunkedchunked")

VECTORS = [v for v in llhttp_vectors.cases() if not any(word in v.name for word in EITHER)]


def expected_outcome(vector):
    """(status, body) when a client must deliver a response, None for an error."""
    if vector.status is not None and (vector.complete or vector.read_to_close):
        return vector.status, vector.body or b""
    return None


def test_the_vectors_are_all_there():
    assert len(VECTORS) == 55


@BOTH
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_agrees_with_llhttp(vector, split):
    outcome = run(vector.raw, split)
    expected = expected_outcome(vector)
    if expected is None:
        assert isinstance(outcome, (MalformedResponseError, ConnectionClosedError)), outcome
    else:
        assert (outcome.status, outcome.body) == expected


# -- content codings ----------------------------------------------------------

def test_gzip_members_and_deflate_forms():
    text = b"hello " * 1000
    assert decode_body(gzip.compress(text) + gzip.compress(b"!"), "gzip") == text + b"!"
    assert decode_body(zlib.compress(text), "deflate") == text
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw.compress(text) + raw.flush(), "deflate") == text
    assert decode_body(b"plain", "identity") == b"plain"
    assert decode_body(gzip.compress(text), " gzip\t") == text


def test_a_content_coding_with_other_spaces_is_not_decoded():
    body = gzip.compress(b"text")
    assert decode_body(body, "gzip\xa0") == body and decode_body(body, "\x0bgzip") == body


def test_corrupt_or_truncated_gzip_is_an_error():
    with pytest.raises(MalformedResponseError, match="gzip"):
        decode_body(b"not gzip at all", "gzip")
    with pytest.raises(MalformedResponseError, match="Truncated gzip"):
        decode_body(gzip.compress(b"x" * 1000)[:-12], "gzip")


def test_decompression_bomb_is_capped():
    bomb = gzip.compress(b"\0" * (2 * 1024 * 1024))
    assert len(bomb) < 10000
    with pytest.raises(ResponseTooLargeError):
        decode_body(bomb, "gzip", limit=1024 * 1024)
