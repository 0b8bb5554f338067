"""`Response`, the value a readback receives: its text never raises, whatever
charset the server names."""
from urllib.request import Request

import pytest

from webqq.http.reader import ResponseReader
from webqq.http.stream import Response


def response(content_type: bytes, body: bytes) -> Response:
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type
           + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    message = ResponseReader().feed(raw)
    return Response(message, message.body, Request("http://127.0.0.1/"))


BODY = "héllo, 世界".encode("utf-8") + b"\xff"
AS_UTF8 = "héllo, 世界\ufffd"

#: Codecs Python knows that are no charsets: bytes-to-bytes, str-to-str, and
#: text codecs that refuse errors="replace" or all input.
NOT_CHARSETS = ["idna", "punycode", "undefined", "rot13", "rot_13", "base64", "hex", "zlib",
                "bz2", "uu", "quopri"]


@pytest.mark.parametrize("charset", NOT_CHARSETS + ["no-such-charset"])
def test_a_charset_that_is_no_text_encoding_falls_back_to_utf8(charset):
    assert response(b"text/plain; charset=" + charset.encode(), BODY).text == AS_UTF8


def test_an_rfc2231_encoded_charset_is_checked_the_same_way():
    # charset*=<charset>''<value>: the value, read as idna, names the "undefined" codec.
    assert response(b"text/plain; charset*=idna''undefined", BODY).text == AS_UTF8


def test_real_charsets_are_used():
    assert response(b"text/plain; charset=GBK", "世界".encode("gbk")).text == "世界"
    assert response(b"text/plain; charset=latin-1", b"caf\xe9").text == "café"
    assert response(b"text/plain", BODY).text == AS_UTF8
