"""The replies of the actions: sends, the signature a session send needs, status
change, logout, heartbeat and the answers to friend requests (§3.16 - §3.24).

acks: no I/O; literal bytes in, a frozen value or a ``ProtocolError`` out. Most of these
replies only say "done"; an ``Ack`` keeps whatever ``result`` they carried.
"""
from dataclasses import dataclass, field
from typing import Any, FrozenSet

from webqq.qq.reply import result_fields, result_of

__all__ = ["Ack", "SendResult", "C2CSig", "parse_send", "parse_c2c_sig", "parse_heartbeat",
           "parse_change_status", "parse_logout", "parse_friend_request_reply"]


@dataclass(frozen=True)
class Ack:
    """A reply that only says "done": ``{"retcode":0,"result":"ok"}``.

    Attributes:
        result: the ``result`` as sent (usually ``"ok"``; an object for some calls).
    """
    result: Any = field(hash=False)


@dataclass(frozen=True)
class SendResult(Ack):
    """The reply of a ``send_*_msg2``. ``"ok"`` does not mean delivered: the server
    drops messages sent too fast or repeated, silently (§7.3)."""


def parse_send(body: bytes) -> SendResult:
    """Parse the reply of any send (buddy, group, discussion, session).

    Args:
        body: the reply of a ``build_send_*`` request.

    Returns:
        The ``SendResult``.

    Raises:
        RetcodeError: e.g. ``SESSION_GONE`` (108) or ``LOGIN_EXPIRED`` (103): relogin.
        MalformedReply: not a JSON envelope.
    """
    return SendResult(result_of(body, "send"))


@dataclass(frozen=True)
class C2CSig:
    """The reply of ``get_c2cmsg_sig2``.

    Attributes:
        group_sig: the signature for ``build_send_session``.
        media: what the session allows, among ``text``, ``pic``, ``file``, ``audio``,
            ``video``.
    """
    group_sig: str
    media: FrozenSet[str]


def parse_c2c_sig(body: bytes) -> C2CSig:
    """Parse a temporary-session signature.

    Args:
        body: the reply of ``build_c2c_sig``.

    Returns:
        The ``C2CSig``.

    Raises:
        RetcodeError: e.g. ``BAD_GROUP_CODE`` (100001): the peer is not in that group.
        MalformedReply: no non-empty ``value``.
    """
    result = result_fields(body, "get_c2cmsg_sig2")
    flags = result.value.get("flags")
    media = frozenset(name for name, allowed in flags.items() if allowed) \
        if isinstance(flags, dict) else frozenset()
    return C2CSig(group_sig=result.token("value"), media=media)


def parse_heartbeat(body: bytes) -> Ack:
    """Parse the reply of ``get_msg_tip``. Its real format is unknown (§8.11): callers
    should log a failure here and carry on.

    Args:
        body: the reply of ``build_heartbeat``.

    Returns:
        The ``Ack``.

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "get_msg_tip"))


def parse_change_status(body: bytes) -> Ack:
    """Parse the reply of ``change_status2``.

    Args:
        body: the reply of ``build_change_status``.

    Returns:
        The ``Ack``.

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "change_status2"))


def parse_logout(body: bytes) -> Ack:
    """Parse the reply of ``logout2``.

    Args:
        body: the reply of ``build_logout``.

    Returns:
        The ``Ack``.

    Raises:
        RetcodeError: retcode other than 0 (e.g. 103: the session was already gone).
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "logout2"))


def parse_friend_request_reply(body: bytes) -> Ack:
    """Parse the reply of ``allow_and_add2``, ``allow_added_request2`` or
    ``deny_added_request2``; only the retcode is known reliably (§3.24).

    Args:
        body: the reply of one of the three builders.

    Returns:
        The ``Ack``; ``result`` is the reply's object (``allow_and_add2``: ``account``,
        ``tuin``, ``stat``...).

    Raises:
        RetcodeError: retcode other than 0 (LUA treated 100000 as success; we do not).
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(result_of(body, "friend_request"))
