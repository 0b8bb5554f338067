"""The reader's verdict must not depend on how the bytes arrive.

Every response of the reader's corpus (llhttp's vectors and the cases of
test_http_reader.py) is fed whole, in two pieces at every split point, and
one byte at a time, each as the answer to a GET and to a HEAD. Every way must
end alike: the same message (status, reason, version, header block, fields,
body, reusability) or the same error class.
"""
from typing import Iterable, List

import pytest

from test_http_reader import FRAMING_SPACES, MALFORMED, TRUNCATED, VECTORS, WELL_FORMED
from webqq.http.errors import ConnectionClosedError, HTTPStreamError
from webqq.http.reader import ResponseReader

CORPUS = {
    **{f"well-formed: {name}": raw for name, raw in WELL_FORMED.items()},
    **{f"malformed: {name}": raw for name, raw in MALFORMED.items()},
    **{f"truncated: {name}": raw for name, raw in TRUNCATED.items()},
    **{f"framing spaces: {name}": raw for name, raw in FRAMING_SPACES.items()},
    **{f"llhttp: {vector.name}": vector.raw for vector in VECTORS},
}


def outcome(pieces: Iterable[bytes], head_request: bool):
    """Feed every piece, then EOF if no message came: what the reader made of it."""
    reader = ResponseReader(head_request)
    message = None
    try:
        for piece in pieces:
            got = reader.feed(piece)
            message = message or got
        if message is None:
            message = reader.feed_eof()
    except ConnectionClosedError as exc:
        return type(exc), exc.response_started
    except HTTPStreamError as exc:
        return type(exc)
    return (message.status, message.reason, message.version, message.header_block,
            message.fields, message.body, message.reusable)


def two_pieces(raw: bytes) -> List[List[bytes]]:
    return [[raw[:i], raw[i:]] for i in range(1, len(raw))]


@pytest.mark.parametrize("head_request", [False, True], ids=["GET", "HEAD"])
@pytest.mark.parametrize("raw", CORPUS.values(), ids=CORPUS.keys())
def test_every_split_ends_like_the_whole(raw, head_request):
    whole = outcome([raw], head_request)
    for pieces in two_pieces(raw):
        assert outcome(pieces, head_request) == whole, f"split at {len(pieces[0])}"
    assert outcome([raw[i:i + 1] for i in range(len(raw))], head_request) == whole, "bytewise"


def test_the_corpus_is_all_there():
    assert len(CORPUS) == (len(WELL_FORMED) + len(MALFORMED) + len(TRUNCATED)
                           + len(FRAMING_SPACES) + len(VECTORS))
