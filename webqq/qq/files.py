"""Files on the wire: taking or refusing a file a friend sends, fetching an offline
file (§3.25, §5.11).

files: no I/O; values in, a ``Request`` out; literal bytes in, a value or a
``ProtocolError`` out. Must never read the clock (timestamps are arguments).

A friend's file arrives as a ``file_message`` poll item (``mode`` ``recv``) naming a
transfer ``session_id``: ``get_file2`` takes it, answered by a redirect to the file's
bytes (or, when the server refuses, by a JSON error from ``d.web2`` itself);
``refuse_file2`` declines it (LQ, TW). A file left while we were away arrives as
``push_offfile``, naming a server (``ip``, ``port``) and a key (``rkey``): the file is a
GET on that server (LQ ``lwqq_msg_offfile_get_url``).
"""
import re
import urllib.parse
from urllib.request import Request

from webqq.qq.acks import Ack
from webqq.qq.errors import MalformedReply, RetcodeError
from webqq.qq.media import WEB2_REFERER
from webqq.qq.reply import errmsg_of, load_reply, result_of
from webqq.qq.request import D_CHANNEL, http_get

__all__ = ["build_get_file", "parse_get_file", "build_refuse_file", "parse_refuse_file",
           "build_get_offline_file"]

# The client version the offline-file server was asked with (LQ).
_OFFLINE_FILE_VER = 2173
_HOST = re.compile(r"[0-9A-Za-z.\-]{1,253}")


def build_get_file(session_id: int, name: str, from_uin: int, *, clientid: int,
                   psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/get_file2``: accept a file a friend is sending (§3.25),
    the query in LQ's order.

    Args:
        session_id: the ``file_message``'s ``session_id`` (``lcid``).
        name: the file's name as offered (``guid``).
        from_uin: the friend's uin (``to``).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp (``time``; LQ: unix seconds, TW: milliseconds).

    Returns:
        The request; the stream follows its redirect; read the final reply with
        ``parse_get_file``.
    """
    return http_get(D_CHANNEL + "get_file2",
                    [("lcid", session_id), ("guid", name), ("to", from_uin),
                     ("psessionid", psessionid), ("count", 1), ("time", t),
                     ("clientid", clientid)], {"Referer": WEB2_REFERER})


def parse_get_file(body: bytes, *, redirected: bool) -> bytes:
    """The file's bytes, from the final reply of ``build_get_file``.

    Args:
        body: the reply's body.
        redirected: whether the answer came from where ``get_file2`` redirected to. A
            reply of ``d.web2`` itself is never the file: it is the server's refusal.

    Returns:
        The bytes of the file.

    Raises:
        RetcodeError: the server refused (e.g. 102: the transfer is gone, LQ).
        MalformedReply: an answer of ``d.web2`` that is not a JSON refusal.
    """
    if redirected:
        return bytes(body)
    reply = load_reply(body, "get_file2")
    if reply["retcode"] != 0:
        raise RetcodeError("get_file2", reply["retcode"], errmsg_of(reply))
    raise MalformedReply("get_file2", "answered without redirecting to the file",
                         bytes(body[:80]).decode("utf-8", "replace"))


def build_refuse_file(session_id: int, from_uin: int, *, clientid: int, psessionid: str,
                      t: int) -> Request:
    """``GET d.web2 /channel/refuse_file2``: decline a file a friend is sending (§3.25),
    the query in LQ's order.

    Args:
        session_id: the ``file_message``'s ``session_id`` (``lcid``).
        from_uin: the friend's uin (``to``).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp (``time``).

    Returns:
        The request; read its reply with ``parse_refuse_file``.
    """
    return http_get(D_CHANNEL + "refuse_file2",
                    [("lcid", session_id), ("to", from_uin), ("psessionid", psessionid),
                     ("count", 1), ("time", t), ("clientid", clientid)],
                    {"Referer": WEB2_REFERER})


def parse_refuse_file(body: bytes) -> Ack:
    """Read the reply of ``refuse_file2``: only its retcode is known (LQ).

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "refuse_file2"))


def build_get_offline_file(name: str, *, ip: str, port: int, rkey: str) -> Request:
    """``GET http://IP:PORT/NAME?ver=2173&rkey=RKEY&range=0``: an offline file, where a
    ``push_offfile`` item says it is kept (LQ). The reply's body is the file.

    Args:
        name: the item's ``name``; sent URL-encoded as the path.
        ip, port: the item's server.
        rkey: the item's key.

    Returns:
        The request.

    Raises:
        ValueError: ``ip`` is not a host name or address, or ``port`` not in 1..65535.
    """
    if not _HOST.fullmatch(ip) or type(port) is not int or not 0 < port < 65536:
        raise ValueError("an offline file's server must be a host and a port, not %r:%r"
                         % (ip[:60], port))
    path = "/" + urllib.parse.quote(name, safe="")
    query = urllib.parse.urlencode([("ver", _OFFLINE_FILE_VER), ("rkey", rkey),
                                    ("range", 0)])
    return Request("http://%s:%d%s?%s" % (ip, port, path, query), method="GET",
                   headers={"Referer": WEB2_REFERER})
