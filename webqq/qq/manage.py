"""Managing groups on the wire: answering a request to join, leaving a group, setting
one's own group card. (Friend requests are answered with ``builders``'
``build_allow_and_add``, ``build_allow_added_request`` and ``build_deny_added_request``.)

manage: no I/O; values in, a ``Request`` out; literal bytes in, an ``Ack`` or a
``ProtocolError`` out. Must never read the clock (timestamps are arguments).

Only what a 2013 client shows an endpoint for is here (LQ, liblwqq ``info.c`` of July
2013): ``op_group_join_req``, ``quit_group2`` and ``update_group_business_card2``. No
2013 source removes a member, silences one or sets another member's card; the web
client of the time had no such buttons (docs/media.rst).
"""
from urllib.request import Request

from webqq.qq.acks import Ack
from webqq.qq.builders import D_REFERER, S_REFERER3
from webqq.qq.reply import result_of
from webqq.qq.request import D_CHANNEL, http_get, s_post

__all__ = ["JOIN_ALLOW", "JOIN_DENY", "build_answer_group_request",
           "parse_answer_group_request", "build_quit_group", "parse_quit_group",
           "build_set_group_card", "parse_set_group_card"]

#: ``op_type`` of ``op_group_join_req``: 2 lets the requester in, 3 refuses (LQ).
JOIN_ALLOW = 2
JOIN_DENY = 3


def build_answer_group_request(gid: int, request_uin: int, *, accept: bool, reason: str,
                               clientid: int, psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/op_group_join_req``: let someone into a group we
    administer, or refuse them (a ``sys_g_msg`` ``group_request_join``; LQ).

    Args:
        gid: the group's gid (the item's ``from_uin``; ``group_uin``).
        request_uin: the requester's uin (the item's ``request_uin``; ``req_uin``).
        accept: True to let them in (``op_type`` 2), False to refuse (3).
        reason: the note they see (``msg``), "" for none.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp (LQ: unix seconds).

    Returns:
        The request; read its reply with ``parse_answer_group_request``.
    """
    return http_get(D_CHANNEL + "op_group_join_req",
                    [("group_uin", gid), ("req_uin", request_uin), ("msg", reason),
                     ("op_type", JOIN_ALLOW if accept else JOIN_DENY),
                     ("clientid", clientid), ("psessionid", psessionid), ("t", t)],
                    {"Referer": D_REFERER})


def parse_answer_group_request(body: bytes) -> Ack:
    """Read the reply of ``op_group_join_req``; only its retcode is known (LQ).

    Raises:
        RetcodeError: retcode other than 0 (e.g. we are not an administrator).
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "op_group_join_req"))


def build_quit_group(code: int, *, vfwebqq: str) -> Request:
    """``POST s.web2 /api/quit_group2``: leave a group (LQ: ``{"gcode":"CODE",
    "vfwebqq":...}``, the code as a string).

    Args:
        code: the group's code (not its gid).
        vfwebqq: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_quit_group``.
    """
    return s_post("quit_group2", {"gcode": str(code), "vfwebqq": vfwebqq}, S_REFERER3)


def parse_quit_group(body: bytes) -> Ack:
    """Read the reply of ``quit_group2``; only its retcode is known (LQ).

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "quit_group2"))


def build_set_group_card(code: int, card: str, *, vfwebqq: str) -> Request:
    """``POST s.web2 /api/update_group_business_card2``: set our own card (the name
    members see) in a group. LQ sends only the fields it changes, ``name`` being the
    card: ``{"gcode":"CODE","name":CARD,"vfwebqq":...}``.

    Args:
        code: the group's code (not its gid).
        card: the new card; "" clears it.
        vfwebqq: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_set_group_card``.
    """
    return s_post("update_group_business_card2",
                  {"gcode": str(code), "name": card, "vfwebqq": vfwebqq}, S_REFERER3)


def parse_set_group_card(body: bytes) -> Ack:
    """Read the reply of ``update_group_business_card2``; only its retcode is known.

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "update_group_business_card2"))
