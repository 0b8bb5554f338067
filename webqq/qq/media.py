"""Pictures on the wire: uploading one to send, fetching one received (§3.18, §3.25).

media: no I/O; values in, a ``Request`` out; literal bytes in, a frozen value or a
``ProtocolError`` out. Must never read the clock or draw a random number (timestamps
and multipart boundaries are arguments), and never take bytes for a picture because a
server said so: a fetched body is sniffed, and what is not an image is an error.

Sending, by chat (docs/media.rst names the source of each fact)::

    friend         upload_offline_pic (multipart, weboffline.ftn)  -> OffPic piece
    group, discu   get_gface_sig2 once per login -> GFaceSig;
                   cface_upload (multipart, up.web2)               -> CFace piece,
                   sent with the GFaceSig's key and sig beside it

Receiving, by piece::

    offpic (friend)           get_offpic2 on d.web2, answered by a redirect to the image
    cface (friend, short)     get_cface2 on d.web2
    cface (group, discu)      get_group_pic on web2.qq.com, with the rip/rport/fid the
                              piece names, answered by a redirect to the image

The upload servers answer with an HTML page that calls a function of the browser's
``EQQ`` code: ``callbackSendPic({...JSON...})`` and ``callbackSendPicGroup({'ret':N,
'msg':'NAME'})`` (single quotes: not JSON). Both are read strictly, never evaluated.
"""
import json
import re
from dataclasses import dataclass, field
from urllib.request import Request

from webqq.qq.builders import D_REFERER
from webqq.qq.content import CFace, OffPic
from webqq.qq.errors import MalformedReply, RetcodeError, UploadRefused
from webqq.qq.pictures import RECEIVED_PICTURE_MAX, UploadPicture, sniff_picture
from webqq.qq.reply import errmsg_of, load_reply, result_fields, storable, text_of
from webqq.qq.request import D_CHANNEL, FilePart, http_get, multipart_post

__all__ = ["OFFLINE_PIC_APPID", "WEB2_REFERER", "GFaceSig", "FetchedPicture",
           "build_upload_offline_pic", "parse_upload_offline_pic", "build_gface_sig",
           "parse_gface_sig", "build_upload_cface", "parse_upload_cface",
           "build_get_offpic", "build_get_cface", "build_get_group_pic", "parse_picture"]

#: The application id of the offline-picture server (IQ capture, LQ, LUA).
OFFLINE_PIC_APPID = 1002101
#: The page the upload forms and picture requests came from (LQ, TW).
WEB2_REFERER = "http://web2.qq.com/webqq.html"
_WEB2_ORIGIN = "http://web2.qq.com"

_UPLOAD_OFFLINE_PIC_URL = "http://weboffline.ftn.qq.com/ftn_access/upload_offline_pic"
_CFACE_UPLOAD_URL = "http://up.web2.qq.com/cgi-bin/cface_upload"
_GROUP_PIC_URL = "http://web2.qq.com/cgi-bin/get_group_pic"
# The browser functions the upload pages call, as the clients named them in the form.
_SEND_PIC_CALLBACK = "parent.EQQ.Model.ChatMsg.callbackSendPic"
_SEND_PIC_GROUP_CALLBACK = "EQQ.Model.ChatMsg.callbackSendPicGroup"

# callbackSendPic({...}) and callbackSendPicGroup({'ret':N,'msg':'...'}).
_OFFPIC_CALL = re.compile(r"callbackSendPic\s*\(\s*(\{.*?\})\s*\)", re.S)
_CFACE_CALL = re.compile(
    r"callbackSendPicGroup\s*\(\s*\{\s*'ret'\s*:\s*(-?[0-9]{1,9})\s*,"
    r"\s*'msg'\s*:\s*'((?:[^'\\]|\\.)*)'\s*\}\s*\)", re.S)
# The name a cface answer starts with; the rest is a code and words ("-6102 upload
# cface failed"), and one sample repeats the name without a space.
_CFACE_NAME = re.compile(r"[^\s/\\]+?\.(?:jpe?g|png|gif|bmp)", re.I)
# cface_upload's "ret": 0 uploaded, 4 already on the server (both give the name), 2 too
# large (LQ: "Send Pic over 1MB").
_CFACE_OK = (0, 4)
_CFACE_TOO_LARGE = 2
_SERVER = re.compile(r"([0-9A-Za-z.\-]{1,253}):([0-9]{1,5})")


@dataclass(frozen=True)
class GFaceSig:
    """The reply of ``get_gface_sig2``: what a send carrying a group picture repeats
    beside it as ``key`` and ``sig``; one per login (LQ and LUA ask once)."""
    key: str
    sig: str = field(repr=False)


@dataclass(frozen=True)
class FetchedPicture:
    """A received picture's bytes, and their format as sniffed."""
    data: bytes = field(repr=False)
    format: str


# --- sending a friend's picture -----------------------------------------------------------

def build_upload_offline_pic(picture: UploadPicture, *, qq: int, skey: str, peer_uin: int,
                             vfwebqq: str, t: int, boundary: str,
                             fileid: int = 1) -> Request:
    """``POST weboffline.ftn /ftn_access/upload_offline_pic``: upload a friend's picture
    (§3.25), the fields in the order of the IQ capture.

    Args:
        picture: what to upload.
        qq: our QQ number (the form's ``uin``).
        skey: the value of the ``skey`` cookie.
        peer_uin: the friend's uin (``peeruin``).
        vfwebqq: from ``Login2Result``.
        t: a timestamp in unix milliseconds (the ``time`` query).
        boundary: the multipart boundary (see ``request.multipart_post``).
        fileid: the picture's number in the sender's session (1 in the capture).

    Returns:
        The request; read its reply with ``parse_upload_offline_pic``.

    Raises:
        ValueError: the boundary is not allowed or occurs in the data.
    """
    fields = [("callback", _SEND_PIC_CALLBACK), ("locallangid", 2052),
              ("clientversion", 1409), ("uin", qq), ("skey", skey),
              ("appid", OFFLINE_PIC_APPID), ("peeruin", peer_uin),
              ("file", FilePart(picture.name, picture.content_type, picture.data)),
              ("fileid", fileid), ("vfwebqq", vfwebqq), ("senderviplevel", 0),
              ("reciverviplevel", 0)]
    return multipart_post("%s?time=%d" % (_UPLOAD_OFFLINE_PIC_URL, t), fields,
                          {"Origin": _WEB2_ORIGIN, "Referer": WEB2_REFERER}, boundary)


def parse_upload_offline_pic(body: bytes) -> OffPic:
    """Read the page ``upload_offline_pic`` answers: ``...callbackSendPic({"retcode":0,
    "result":"OK", "progress":100, "filesize":N, "fileid":"1", "filename":"NAME",
    "filepath":"/UUID"})...`` (LUA and IQ samples).

    Args:
        body: the reply of ``build_upload_offline_pic``.

    Returns:
        The ``OffPic`` to send: the server's ``filepath``, ``filename`` and ``filesize``.

    Raises:
        UploadRefused: a ``retcode`` other than 0.
        MalformedReply: no callback with a JSON object, or no ``filepath``.
    """
    endpoint = "upload_offline_pic"
    text = text_of(body, endpoint)
    call = _OFFPIC_CALL.search(text)
    if call is None:
        raise MalformedReply(endpoint, "no callbackSendPic({...}) in the page", text)
    try:
        reply = json.loads(call.group(1))
    except ValueError as exc:
        raise MalformedReply(endpoint, "callbackSendPic argument is not JSON (%s)" % exc,
                             call.group(1)) from None
    if not isinstance(reply, dict) or type(reply.get("retcode")) is not int:
        raise MalformedReply(endpoint, "no integer retcode", call.group(1))
    if reply["retcode"] != 0:
        raise UploadRefused(endpoint, reply["retcode"], storable(str(reply.get("result", ""))))
    path, name, size = reply.get("filepath"), reply.get("filename"), reply.get("filesize")
    if not isinstance(path, str) or not path.startswith("/"):
        raise MalformedReply(endpoint, "no filepath: the picture was not stored",
                             call.group(1))
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(name, str) or type(size) is not int or size < 0:
        raise MalformedReply(endpoint, "filename or filesize missing or mistyped",
                             call.group(1))
    return OffPic(storable(path), storable(name), size)


# --- sending a group picture --------------------------------------------------------------

def build_gface_sig(*, clientid: int, psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/get_gface_sig2``: the key and sig a send with group
    pictures carries (§3.18). Ask once per login.

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp (IQ: unix seconds; not checked).

    Returns:
        The request; read its reply with ``parse_gface_sig``.
    """
    return http_get(D_CHANNEL + "get_gface_sig2",
                    [("clientid", clientid), ("psessionid", psessionid), ("t", t)],
                    {"Referer": D_REFERER})


def parse_gface_sig(body: bytes) -> GFaceSig:
    """Read ``{"retcode":0,"result":{"reply":0,"gface_key":"...","gface_sig":"..."}}``.

    Raises:
        RetcodeError: retcode other than 0 (e.g. 103: relogin).
        MalformedReply: no non-empty ``gface_key`` and ``gface_sig``.
    """
    result = result_fields(body, "get_gface_sig2")
    return GFaceSig(result.token("gface_key"), result.token("gface_sig"))


def build_upload_cface(picture: UploadPicture, *, vfwebqq: str, t: int, boundary: str,
                       fileid: int = 1) -> Request:
    """``POST up.web2 /cgi-bin/cface_upload``: upload a group or discussion picture, the
    fields as IQ sent them. ``from=control`` is what raises the server's limit from
    250 KB to 1 MB (LQ).

    Args:
        picture: what to upload.
        vfwebqq: from ``Login2Result``.
        t: a timestamp (the ``time`` query; IQ: unix seconds).
        boundary: the multipart boundary (see ``request.multipart_post``).
        fileid: which of the account's custom-face slots it takes (LQ); 1 by default.

    Returns:
        The request; read its reply with ``parse_upload_cface``.

    Raises:
        ValueError: the boundary is not allowed or occurs in the data.
    """
    fields = [("from", "control"), ("f", _SEND_PIC_GROUP_CALLBACK), ("vfwebqq", vfwebqq),
              ("fileid", fileid),
              ("custom_face", FilePart(picture.name, picture.content_type, picture.data))]
    return multipart_post("%s?time=%d" % (_CFACE_UPLOAD_URL, t), fields,
                          {"Origin": _WEB2_ORIGIN, "Referer": WEB2_REFERER}, boundary)


def parse_upload_cface(body: bytes) -> CFace:
    """Read the page ``cface_upload`` answers: ``...callbackSendPicGroup({'ret':0,
    'msg':'NAME.jPg'})...``; ``ret`` 4 means the server has the picture already and
    names it the same way (``'NAME.jPg -6102 upload cface failed'``).

    Args:
        body: the reply of ``build_upload_cface``.

    Returns:
        The ``CFace`` to send, named as the server named it.

    Raises:
        UploadRefused: another ``ret`` (2: over the server's limit).
        MalformedReply: no callback of that shape, or no picture name in it.
    """
    endpoint = "cface_upload"
    text = text_of(body, endpoint)
    call = _CFACE_CALL.search(text)
    if call is None:
        raise MalformedReply(endpoint, "no callbackSendPicGroup({'ret':N,'msg':'...'})",
                             text)
    ret, message = int(call.group(1)), storable(call.group(2))
    if ret not in _CFACE_OK:
        raise UploadRefused(endpoint, ret, message, too_large=ret == _CFACE_TOO_LARGE)
    name = _CFACE_NAME.match(message)
    if name is None:
        raise MalformedReply(endpoint, "no picture name in the answer", message)
    return CFace(name.group(0))


# --- fetching a received picture ----------------------------------------------------------

def build_get_offpic(file_path: str, from_uin: int, *, clientid: int,
                     psessionid: str) -> Request:
    """``GET d.web2 /channel/get_offpic2``: a friend's offline picture (§3.25); the
    server answers with a redirect to the image, which the stream follows.

    Args:
        file_path: the piece's ``file_path`` (``Image.name`` of an ``offpic``).
        from_uin: the friend's uin (``f_uin``).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.

    Returns:
        The request; read the final reply with ``parse_picture``.
    """
    return http_get(D_CHANNEL + "get_offpic2",
                    [("file_path", file_path), ("f_uin", from_uin), ("clientid", clientid),
                     ("psessionid", psessionid)], {"Referer": WEB2_REFERER})


def build_get_cface(name: str, from_uin: int, msg_id: int, *, clientid: int,
                    psessionid: str) -> Request:
    """``GET d.web2 /channel/get_cface2``: a custom face in a friend's message (§3.25;
    LQ and LUA samples).

    Args:
        name: the piece's file name (``Image.name`` of a short ``cface``).
        from_uin: the friend's uin (``to``).
        msg_id: the message's ``msg_id`` (``lcid``).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.

    Returns:
        The request; read the reply with ``parse_picture``.
    """
    return http_get(D_CHANNEL + "get_cface2",
                    [("lcid", msg_id), ("guid", name), ("to", from_uin), ("count", 5),
                     ("time", 1), ("clientid", clientid), ("psessionid", psessionid)],
                    {"Referer": WEB2_REFERER})


def build_get_group_pic(name: str, *, code: int, send_uin: int, server: str, file_id: int,
                        vfwebqq: str, t: int, discussion: bool = False) -> Request:
    """``GET web2.qq.com /cgi-bin/get_group_pic``: a picture in a group or discussion
    message, kept on the server its piece names (§3.25; LQ, IQ, TW, MC); the answer is
    a redirect to the image, which the stream follows.

    Args:
        name: the piece's file name (``pic``).
        code: the group's code, or the discussion's did (``gid``).
        send_uin: the member who sent it (``uin``).
        server: the piece's ``"ip:port"`` (``rip``, ``rport``).
        file_id: the piece's ``file_id`` (``fid``).
        vfwebqq: from ``Login2Result``.
        t: a timestamp in unix seconds (LQ).
        discussion: True for a discussion's picture (``type=1``, IQ and LQ).

    Returns:
        The request; read the final reply with ``parse_picture``.

    Raises:
        ValueError: ``server`` is not ``ip:port``.
    """
    where = _SERVER.fullmatch(server)
    if where is None or not 0 < int(where.group(2)) < 65536:
        raise ValueError("a group picture's server is ip:port, not %r" % server[:60])
    return http_get(_GROUP_PIC_URL,
                    [("type", 1 if discussion else 0), ("gid", code), ("uin", send_uin),
                     ("rip", where.group(1)), ("rport", where.group(2)), ("fid", file_id),
                     ("pic", name), ("vfwebqq", vfwebqq), ("t", t)],
                    {"Referer": WEB2_REFERER})


def parse_picture(body: bytes, endpoint: str,
                  limit: int = RECEIVED_PICTURE_MAX) -> FetchedPicture:
    """Read a fetched picture: its bytes if they are a JPEG, PNG, GIF or BMP image.

    Args:
        body: the final reply of ``build_get_offpic``, ``build_get_cface`` or
            ``build_get_group_pic``.
        endpoint: which of them, for the error.
        limit: the most bytes accepted (``RECEIVED_PICTURE_MAX``).

    Returns:
        The ``FetchedPicture``.

    Raises:
        RetcodeError: the server answered with a JSON error instead (``get_offpic2``:
            ``{"retcode":103,...}``).
        MalformedReply: larger than ``limit``, or neither an image nor a JSON error.
    """
    body = bytes(body)
    if len(body) > limit:
        raise MalformedReply(endpoint, "the picture is %d bytes, over the %d-byte limit"
                             % (len(body), limit), "")
    kind = sniff_picture(body)
    if kind is not None:
        return FetchedPicture(body, kind)
    excerpt = body[:80].decode("utf-8", "replace")
    if body.lstrip()[:1] == b"{":
        try:
            reply = load_reply(body, endpoint)
        except MalformedReply:
            pass
        else:
            if reply["retcode"] != 0:
                raise RetcodeError(endpoint, reply["retcode"], errmsg_of(reply))
    raise MalformedReply(endpoint, "not a picture (JPEG, PNG, GIF or BMP)", excerpt)
