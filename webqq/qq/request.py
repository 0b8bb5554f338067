"""(internal) The making every builder shares: a GET with its query, a form POST with
its ``r`` field, a ``multipart/form-data`` upload.

request: no I/O; values in, a ``urllib.request.Request`` out. Must never read the clock
or draw a random number: a multipart boundary is an argument like every nonce. The
builders themselves live in ``builders`` (the session), ``media`` (pictures), ``files``
and ``manage`` (friend and group management).
"""
import json
import urllib.parse
from typing import Any, Dict, Optional, Sequence, Tuple, Union
from urllib.request import Request

__all__ = ["D_CHANNEL", "S_API", "D_ORIGIN", "S_ORIGIN", "http_get", "form_post",
           "r_field", "channel_post", "s_post", "FilePart", "multipart_post"]

D_CHANNEL = "http://d.web2.qq.com/channel/"
S_API = "http://s.web2.qq.com/api/"
D_ORIGIN = "http://d.web2.qq.com"
S_ORIGIN = "http://s.web2.qq.com"

# Values that vary per call (random floats, timestamps, counters, session tokens) are
# arguments; the ones that come from the session are keyword-only, so a clientid is never
# passed as a msg_id.


def http_get(url: str, params: Sequence[Tuple[str, Any]],
             headers: Optional[Dict[str, str]] = None) -> Request:
    """``GET url?params`` (in the given order) with ``headers``."""
    return Request(url + "?" + urllib.parse.urlencode(params),
                   headers=headers or {}, method="GET")


def form_post(url: str, fields: Sequence[Tuple[str, Any]],
              headers: Dict[str, str]) -> Request:
    """``POST url`` with an ``application/x-www-form-urlencoded`` body of ``fields``."""
    body = urllib.parse.urlencode(fields).encode("ascii")
    headers = dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"})
    return Request(url, data=body, headers=headers, method="POST")


def r_field(value: Dict[str, Any]) -> str:
    """The JSON text of an ``r`` field: compact, non-ASCII escaped (§1.3)."""
    return json.dumps(value, separators=(",", ":"))


def channel_post(path: str, r: Dict[str, Any], *, clientid: int, psessionid: str,
                 referer: str, psessionid_first: bool = False) -> Request:
    """A ``d.web2`` POST: ``r`` plus the ``clientid``/``psessionid`` form fields, in that
    order or, with ``psessionid_first``, reversed as in the ``send_qun_msg2`` capture."""
    session = [("clientid", clientid), ("psessionid", psessionid)]
    if psessionid_first:
        session.reverse()
    return form_post(D_CHANNEL + path, [("r", r_field(r))] + session,
                     {"Referer": referer, "Origin": D_ORIGIN})


def s_post(path: str, r: Dict[str, Any], referer: str) -> Request:
    """An ``s.web2`` POST: the form field ``r`` alone."""
    return form_post(S_API + path, [("r", r_field(r))],
                     {"Referer": referer, "Origin": S_ORIGIN})


class FilePart:
    """A file field of a multipart body: its name as sent, its type and its bytes."""

    __slots__ = ("filename", "content_type", "data")

    def __init__(self, filename: str, content_type: str, data: bytes) -> None:
        self.filename = filename
        self.content_type = content_type
        self.data = data


def _quoted(value: str) -> str:
    """A header parameter value as browsers write it: quotes and line breaks escaped."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D") \
        .replace("\n", "%0A")


def multipart_post(url: str, fields: Sequence[Tuple[str, Union[str, int, FilePart]]],
                   headers: Dict[str, str], boundary: str) -> Request:
    """``POST url`` with a ``multipart/form-data`` body, the fields in the given order,
    as the browser's upload form sent them (the IQ capture of ``upload_offline_pic``).

    Args:
        url: where to post.
        fields: ``(name, value)``; a ``FilePart`` value is a file, anything else text.
        headers: extra headers (Referer, Origin); Content-Type is set here.
        boundary: the delimiter, 1 to 70 characters of ``[0-9A-Za-z'()+_,./:=?-]``;
            the caller draws it (browsers: ``----WebKitFormBoundary`` + 16 random).

    Returns:
        The request.

    Raises:
        ValueError: the boundary is not allowed by RFC 2046, or occurs in a field.
    """
    if not 1 <= len(boundary) <= 70 or not all(
            c.isascii() and (c.isalnum() or c in "'()+_,-./:=?") for c in boundary):
        raise ValueError("multipart boundary %r is not allowed (RFC 2046)" % boundary)
    delimiter = b"--" + boundary.encode("ascii")
    chunks = []
    for name, value in fields:
        if isinstance(value, FilePart):
            head = 'Content-Disposition: form-data; name="%s"; filename="%s"\r\n' \
                   'Content-Type: %s\r\n' % (_quoted(name), _quoted(value.filename),
                                             value.content_type)
            data = value.data
        else:
            head = 'Content-Disposition: form-data; name="%s"\r\n' % _quoted(name)
            data = str(value).encode("utf-8")
        if delimiter in data:
            raise ValueError("multipart boundary %r occurs in field %r" % (boundary, name))
        chunks += [delimiter, b"\r\n", head.encode("utf-8"), b"\r\n", data, b"\r\n"]
    chunks += [delimiter, b"--\r\n"]
    headers = dict(headers, **{
        "Content-Type": "multipart/form-data; boundary=" + boundary})
    return Request(url, data=b"".join(chunks), headers=headers, method="POST")
