"""The long poll's reply (§3.15) and the events it delivers (§5).

poll: no I/O; literal bytes in, a ``PollResult`` out. ``parse_poll`` folds the retcode
into a ``PollOutcome`` (what the client does next) and turns each item into a frozen
``PollEvent``: a chat message (``BuddyMessage``, ``GroupMessage``, ``DiscussionMessage``,
``SessionMessage``, each with its ``ChatKind``) or a notice (``Kick``,
``StatusChange``, ...). Must never let one broken item cost the others: it becomes a
``MalformedEvent`` in its place, an unknown one an ``UnknownEvent``; neither is an
exception.

Ids: a ``uin`` is a per-session number for a user (``from_uin``, ``send_uin``); ``gid``,
``code``, ``did`` identify groups and discussions; a ``qq`` is a real account number.
Every id is an integer in ``0..reply.MAX_ID`` and every text storable (see ``reply``).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple

from webqq.qq.content import Content
from webqq.qq.errors import MalformedReply, QQRetcode, RetcodeError
from webqq.qq.kinds import ChatKind
from webqq.qq.reply import ReplyFields, errmsg_of, json_excerpt, load_reply

__all__ = [
    "PollOutcome", "PollResult", "parse_poll", "batch_order",
    "PollEvent", "ChatMessage", "BuddyMessage", "GroupMessage", "DiscussionMessage",
    "SessionMessage", "Kick", "StatusChange", "InputNotify", "Shake", "FriendRequest",
    "FriendAdded", "FriendRequestAccepted", "GroupSystemEvent", "BuddyListChange",
    "FileEvent", "GroupWebMessage", "Tips", "AvRequest", "UnknownEvent", "MalformedEvent",
]


class PollOutcome(enum.Enum):
    """What a ``poll2`` reply asks the client to do next (§3.15, §6)."""
    MESSAGES = "messages"           # retcode 0 with a list: handle events, poll again
    RETRY = "retry"                 # 102, or 0 without a list: poll again
    NEW_PTWEBQQ = "new_ptwebqq"     # 116: set cookie ptwebqq := .ptwebqq, poll again
    RELINK = "relink"               # 120, 121: login2 again with the same cookies
    RELOGIN = "relogin"             # 100, 103, 108, 122, 100000, 100002, 100006, 100101
    LOGGED_OUT = "logged_out"       # 109, 110: the session was logged out; stop


_POLL_OUTCOMES = {
    QQRetcode.NO_EVENTS: PollOutcome.RETRY,
    QQRetcode.NEW_PTWEBQQ: PollOutcome.NEW_PTWEBQQ,
    QQRetcode.RELINK_FAILURE: PollOutcome.RELINK,
    QQRetcode.CONNECTION_LOST: PollOutcome.RELINK,
    QQRetcode.NOT_RELOGIN: PollOutcome.RELOGIN,
    QQRetcode.LOGIN_EXPIRED: PollOutcome.RELOGIN,
    QQRetcode.SESSION_GONE: PollOutcome.RELOGIN,
    QQRetcode.WRONG_WEB_CLIENT: PollOutcome.RELOGIN,
    QQRetcode.VFWEBQQ_EXPIRED: PollOutcome.RELOGIN,
    QQRetcode.CREDENTIALS_EXPIRED: PollOutcome.RELOGIN,
    QQRetcode.REFRESH_NEEDED: PollOutcome.RELOGIN,
    QQRetcode.NO_COOKIE: PollOutcome.RELOGIN,
    QQRetcode.LOGGED_OUT: PollOutcome.LOGGED_OUT,
    QQRetcode.CLIENT_QUIT: PollOutcome.LOGGED_OUT,
}


# --- events of a poll (§5) -------------------------------------------------------------

class PollEvent:
    """Base of everything ``parse_poll`` returns in ``PollResult.events``."""


class ChatMessage(PollEvent):
    """Base of the four chat messages (buddy, group, discussion, session): each has
    ``content``, and ``text`` is its text; the class attribute ``chat`` says which
    ``ChatKind`` it is."""

    chat: ClassVar[ChatKind]

    @property
    def text(self) -> str:
        """``content.text``."""
        return self.content.text


@dataclass(frozen=True)
class BuddyMessage(ChatMessage):
    """``message`` (§5.1): a friend wrote to us; reply with ``send_buddy_msg2`` to
    ``from_uin``."""
    chat: ClassVar[ChatKind] = ChatKind.BUDDY
    msg_id: int
    msg_id2: int
    from_uin: int
    time: Optional[int]
    content: Content


@dataclass(frozen=True)
class GroupMessage(ChatMessage):
    """``group_message`` (§5.2).

    Attributes:
        gid: the group's gid (the poll's ``from_uin``), the target of ``send_qun_msg2``.
        code: the group's code (``group_code``), the key of ``get_group_info_ext2``.
        send_uin: the member who wrote.
        seq: per-group sequence number.
        group_number: the group's public number (``info_seq``), or None if absent.
    """
    chat: ClassVar[ChatKind] = ChatKind.GROUP
    msg_id: int
    msg_id2: int
    gid: int
    code: int
    send_uin: int
    seq: Optional[int]
    group_number: Optional[int]
    time: Optional[int]
    content: Content


@dataclass(frozen=True)
class DiscussionMessage(ChatMessage):
    """``discu_message`` (§5.3): ``did`` is the discussion, ``send_uin`` the author."""
    chat: ClassVar[ChatKind] = ChatKind.DISCUSSION
    msg_id: int
    msg_id2: int
    did: int
    send_uin: int
    seq: Optional[int]
    time: Optional[int]
    content: Content


@dataclass(frozen=True)
class SessionMessage(ChatMessage):
    """``sess_message`` (§5.4): a stranger wrote through a group or discussion.

    Attributes:
        from_uin: the sender; reply to it with ``send_sess_msg2``.
        via_id: the poll's ``id``: the group gid (``service_type`` 0) or the did (1);
            pass it unchanged to ``get_c2cmsg_sig2``.
        service_type: 0 group, 1 discussion.
        qq: the sender's QQ number (``ruin``), or None if absent.
    """
    chat: ClassVar[ChatKind] = ChatKind.SESSION
    msg_id: int
    msg_id2: int
    from_uin: int
    via_id: int
    service_type: int
    qq: Optional[int]
    time: Optional[int]
    content: Content


@dataclass(frozen=True)
class Kick(PollEvent):
    """``kick_message`` (§5.5): the account logged in elsewhere; this session is dead."""
    msg_id: int
    reason: str


@dataclass(frozen=True)
class StatusChange(PollEvent):
    """``buddies_status_change`` (§5.6): ``status`` is ``online``, ``offline``, ``away``,
    ``hidden``, ``busy``, ``callme`` or ``silent``; ``client_type`` as §3.9."""
    uin: int
    status: str
    client_type: Optional[int]


@dataclass(frozen=True)
class InputNotify(PollEvent):
    """``input_notify`` (§5.7): ``from_uin`` is typing."""
    msg_id: int
    msg_id2: int
    from_uin: int


@dataclass(frozen=True)
class Shake(PollEvent):
    """``shake_message`` (§5.7): ``from_uin`` shook our window."""
    msg_id: int
    msg_id2: int
    from_uin: int


@dataclass(frozen=True)
class FriendRequest(PollEvent):
    """``system_message`` ``verify_required`` (§5.8): someone asks to be our friend.

    Answer with ``build_allow_and_add`` (or allow/deny) using ``qq``.
    """
    seq: int
    from_uin: int
    qq: int
    message: str


@dataclass(frozen=True)
class FriendAdded(PollEvent):
    """``system_message`` ``added_buddy_sig`` (§5.8): someone added us, no question asked."""
    seq: int
    from_uin: int
    qq: Optional[int]


@dataclass(frozen=True)
class FriendRequestAccepted(PollEvent):
    """``system_message`` ``verify_pass`` / ``verify_pass_add`` (§5.8): our request was
    accepted; ``category`` is the friend category (``group_id``) when given."""
    seq: int
    from_uin: int
    category: Optional[int]


@dataclass(frozen=True)
class GroupSystemEvent(PollEvent):
    """``sys_g_msg`` (§5.9): a member joined or left, a join request, its answer, a new
    group.

    Attributes:
        kind: the wire ``type``: ``group_join``, ``group_leave``, ``group_request_join``,
            ``group_request_join_agree``, ``group_request_join_deny``, ``group_create``
            (other values are passed through).
        gid: the group's gid (``from_uin``); ``code``: its code (``gcode``);
            ``group_number``: its public number (``t_gcode``) or None.
        member_uin: whom it concerns: ``new_member``, ``old_member``, ``request_uin`` or
            ``owner_uin``; None if absent.
        admin_uin: the administrator who acted, or None.
        op_type: for joins and leaves: 2 by oneself, 3 by an administrator; or None.
        message: the request or answer note (``msg``), "" if none.
        member_qq: the member's QQ number when the item gives it (``t_new_member``,
            ``t_old_member``, ``t_request_uin``: strings, often empty), else None.
        admin_qq: the administrator's QQ number (``t_admin_uin``), else None.
        admin_nick: the administrator's nickname (``admin_nick``), "" if none.
    """
    msg_id: int
    kind: str
    gid: int
    code: int
    group_number: Optional[int]
    member_uin: Optional[int]
    admin_uin: Optional[int]
    op_type: Optional[int]
    message: str
    member_qq: Optional[int] = None
    admin_qq: Optional[int] = None
    admin_nick: str = ""


@dataclass(frozen=True)
class BuddyListChange(PollEvent):
    """``buddylist_change`` (§5.10): ``added`` holds ``(uin, category)`` pairs,
    ``removed`` uins."""
    added: Tuple[Tuple[int, int], ...]
    removed: Tuple[int, ...]


@dataclass(frozen=True)
class FileEvent(PollEvent):
    """A file transfer event (§5.11): ``file_message``, ``push_offfile``,
    ``notify_offfile`` or ``filesrv_transfer`` (``kind``).

    Attributes:
        from_uin: the peer, or None (``filesrv_transfer`` has none).
        name: the file name (``name`` or ``filename``), or None.
        mode: ``file_message`` only: ``recv`` (a friend offers a file: take it with
            ``get_file2``, decline with ``refuse_file2``), ``refuse`` (the friend
            cancelled) or ``send_ack``; else None.
        session_id: ``session_id`` or ``lc_id``, the transfer's id, or None.
        value: the whole poll item value, for what the fields below leave out.
        msg_id, msg_id2: the item's ids when it has them (for de-duplication).
        size: the file's size in bytes (``size``, ``filesize``), or None.
        ip, port, rkey: ``push_offfile`` only: where the offline file is kept and the
            key to fetch it with.
        expire_time: ``push_offfile``: until when (unix seconds) it is kept, or None.
    """
    kind: str
    from_uin: Optional[int]
    name: Optional[str]
    mode: Optional[str]
    session_id: Optional[int]
    value: dict = field(hash=False, repr=False)
    msg_id: Optional[int] = None
    msg_id2: Optional[int] = None
    size: Optional[int] = None
    ip: Optional[str] = None
    port: Optional[int] = None
    rkey: Optional[str] = field(default=None, repr=False)
    expire_time: Optional[int] = None


@dataclass(frozen=True)
class GroupWebMessage(PollEvent):
    """``group_web_message`` (§5.12): a group feed (shared file or photo) as XML."""
    msg_id: int
    gid: int
    code: int
    send_uin: int
    xml: str


@dataclass(frozen=True)
class Tips(PollEvent):
    """``tips`` (§5.13, no 2013 sample): a notice; ``text`` is its ``content`` or ""."""
    from_uin: Optional[int]
    text: str
    value: dict = field(hash=False, repr=False)


@dataclass(frozen=True)
class AvRequest(PollEvent):
    """``av_request`` (§5.13, no 2013 sample): a voice/video call offer we cannot take."""
    from_uin: Optional[int]
    value: dict = field(hash=False, repr=False)


@dataclass(frozen=True)
class UnknownEvent(PollEvent):
    """A ``poll_type`` (or ``system_message`` type) this module does not know, kept
    whole."""
    poll_type: str
    value: Any = field(hash=False)


@dataclass(frozen=True)
class MalformedEvent(PollEvent):
    """A poll item that could not be read (a known ``poll_type`` with keys missing
    or mistyped, or not an item at all), kept whole so that nothing vanishes
    silently; the other items of the same reply are delivered as usual.

    Attributes:
        poll_type: the item's ``poll_type`` when it had one, else ``""``.
        value: the raw item.
        problem: what was wrong, as ``MalformedReply`` words it.
    """
    poll_type: str
    value: Any = field(hash=False)
    problem: str = ""



@dataclass(frozen=True)
class PollResult:
    """The reply of ``poll2``.

    Attributes:
        outcome: what to do next (see ``PollOutcome``).
        retcode: the reply's retcode, as a ``QQRetcode`` member.
        events: ``MESSAGES`` only: the items in arrival order (see ``batch_order``).
            Items may repeat across polls: de-duplicate by ``(msg_id, msg_id2)`` where
            the event has them.
        ptwebqq: ``NEW_PTWEBQQ`` only: the new value of the ``ptwebqq`` cookie.
    """
    outcome: PollOutcome
    retcode: QQRetcode
    events: Tuple[PollEvent, ...] = ()
    ptwebqq: Optional[str] = None


def _buddy_message(v: ReplyFields) -> PollEvent:
    return BuddyMessage(
        msg_id=v.id("msg_id"), msg_id2=v.id("msg_id2"), from_uin=v.id("from_uin"),
        time=v.number("time", None), content=v.content())


def _group_message(v: ReplyFields) -> PollEvent:
    return GroupMessage(
        msg_id=v.id("msg_id"), msg_id2=v.id("msg_id2"), gid=v.id("from_uin"),
        code=v.id("group_code"), send_uin=v.id("send_uin"),
        seq=v.number("seq", None), group_number=v.id("info_seq", None),
        time=v.number("time", None), content=v.content())


def _discussion_message(v: ReplyFields) -> PollEvent:
    return DiscussionMessage(
        msg_id=v.id("msg_id"), msg_id2=v.id("msg_id2"), did=v.id("did"),
        send_uin=v.id("send_uin"), seq=v.number("seq", None), time=v.number("time", None),
        content=v.content())


def _session_message(v: ReplyFields) -> PollEvent:
    return SessionMessage(
        msg_id=v.id("msg_id"), msg_id2=v.id("msg_id2"), from_uin=v.id("from_uin"),
        via_id=v.id("id"), service_type=v.number("service_type", 0),
        qq=v.id("ruin", None), time=v.number("time", None), content=v.content())


def _kick(v: ReplyFields) -> PollEvent:
    shown = v.number("show_reason", 1)
    return Kick(msg_id=v.id("msg_id", 0),
                         reason=v.string("reason", "") if shown else "")


def _status_change(v: ReplyFields) -> PollEvent:
    return StatusChange(uin=v.id("uin"), status=v.string("status"),
                        client_type=v.number("client_type", None))


def _input_notify(v: ReplyFields) -> PollEvent:
    return InputNotify(msg_id=v.id("msg_id"), msg_id2=v.id("msg_id2"),
                       from_uin=v.id("from_uin"))


def _shake(v: ReplyFields) -> PollEvent:
    return Shake(msg_id=v.id("msg_id"), msg_id2=v.id("msg_id2"),
                 from_uin=v.id("from_uin"))


def _system_message(v: ReplyFields) -> PollEvent:
    kind = v.string("type")
    if kind == "verify_required":
        return FriendRequest(seq=v.number("seq"), from_uin=v.id("from_uin"),
                             qq=v.id("account"), message=v.string("msg", ""))
    if kind == "added_buddy_sig":
        return FriendAdded(seq=v.number("seq"), from_uin=v.id("from_uin"),
                           qq=v.id("account", None))
    if kind in ("verify_pass", "verify_pass_add"):
        return FriendRequestAccepted(seq=v.number("seq"), from_uin=v.id("from_uin"),
                                     category=v.number("group_id", None))
    return UnknownEvent("system_message", v.value)


# Which key names the member a sys_g_msg is about, by its type (§5.9).
_GROUP_EVENT_MEMBER_KEYS = ("new_member", "old_member", "request_uin", "owner_uin")


def _group_system_event(v: ReplyFields) -> PollEvent:
    member = member_qq = None
    for key in _GROUP_EVENT_MEMBER_KEYS:
        member = v.id(key, None)
        if member is not None:
            member_qq = v.id("t_" + key, None)
            break
    return GroupSystemEvent(
        msg_id=v.id("msg_id"), kind=v.string("type"), gid=v.id("from_uin"),
        code=v.id("gcode"), group_number=v.id("t_gcode", None), member_uin=member,
        admin_uin=v.id("admin_uin", None), op_type=v.number("op_type", None),
        message=v.string("msg", ""), member_qq=member_qq,
        admin_qq=v.id("t_admin_uin", None), admin_nick=v.string("admin_nick", ""))


def _buddylist_change(v: ReplyFields) -> PollEvent:
    added = tuple((item.id("uin"), item.number("groupid", 0))
                  for item in v.objects("added_friends", []))
    removed = tuple(item.id("uin") for item in v.objects("removed_friends", []))
    return BuddyListChange(added=added, removed=removed)


def _file_message(v: ReplyFields) -> PollEvent:
    mode = v.string("mode")
    return FileEvent(
        kind="file_message", from_uin=v.id("from_uin"),
        name=v.string("name") if mode == "recv" else v.string("name", None), mode=mode,
        session_id=v.id("session_id"), value=v.value, msg_id=v.id("msg_id"),
        msg_id2=v.id("msg_id2", None))


def _push_offfile(v: ReplyFields) -> PollEvent:
    size = v.number("size")
    port = v.number("port")
    if size < 0 or not 0 < port < 65536:
        raise MalformedReply("poll2", "%s: size or port out of range" % v.where,
                             json_excerpt(v.value))
    return FileEvent(
        kind="push_offfile", from_uin=v.id("from_uin"), name=v.string("name"), mode=None,
        session_id=None, value=v.value, msg_id=v.id("msg_id"), size=size,
        ip=v.string("ip"), port=port, rkey=v.token("rkey"),
        expire_time=v.number("expire_time", None))


def _notify_offfile(v: ReplyFields) -> PollEvent:
    return FileEvent(
        kind="notify_offfile", from_uin=v.id("from_uin"), name=v.string("filename"),
        mode=None, session_id=None, value=v.value, msg_id=v.id("msg_id", None),
        msg_id2=v.id("msg_id2", None), size=v.number("filesize", None))


def _filesrv_transfer(v: ReplyFields) -> PollEvent:
    files = v.objects("file_infos", [])
    return FileEvent(
        kind="filesrv_transfer", from_uin=v.id("from_uin", None),
        name=files[0].string("file_name", None) if files else None, mode=None,
        session_id=v.id("lc_id"), value=v.value)


def _group_web_message(v: ReplyFields) -> PollEvent:
    return GroupWebMessage(
        msg_id=v.id("msg_id"), gid=v.id("from_uin"), code=v.id("group_code"),
        send_uin=v.id("send_uin"), xml=v.string("xml"))


def _tips(v: ReplyFields) -> PollEvent:
    content = v.value.get("content")
    return Tips(from_uin=v.id("from_uin", None),
                text=content if isinstance(content, str) else "", value=v.value)


def _av_request(v: ReplyFields) -> PollEvent:
    return AvRequest(from_uin=v.id("from_uin", None), value=v.value)


_POLL_ITEMS: Dict[str, Callable[[ReplyFields], PollEvent]] = {
    "message": _buddy_message,
    "group_message": _group_message,
    "discu_message": _discussion_message,
    "sess_message": _session_message,
    "kick_message": _kick,
    "buddies_status_change": _status_change,
    "input_notify": _input_notify,
    "shake_message": _shake,
    "system_message": _system_message,
    "sys_g_msg": _group_system_event,
    "buddylist_change": _buddylist_change,
    "file_message": _file_message,
    "push_offfile": _push_offfile,
    "notify_offfile": _notify_offfile,
    "filesrv_transfer": _filesrv_transfer,
    "group_web_message": _group_web_message,
    "tips": _tips,
    "av_request": _av_request,
}


def _poll_item(item: Any, index: int) -> PollEvent:
    """One item of a poll reply as its event; a broken item becomes a
    ``MalformedEvent``, so that one bad item never costs the others."""
    where = "result[%d]" % index
    try:
        fields = ReplyFields("poll2", item, where)
        poll_type = fields.string("poll_type")
        parse = _POLL_ITEMS.get(poll_type)
        if parse is None:
            return UnknownEvent(poll_type, item.get("value"))
        return parse(fields.object("value"))
    except MalformedReply as exc:
        poll_type = item.get("poll_type") if isinstance(item, dict) else None
        return MalformedEvent(poll_type if isinstance(poll_type, str) else "",
                              item, exc.problem)


def _order_key(item: Any) -> Optional[Tuple[int, int]]:
    """``(time, msg_id)`` of a raw item that has both as integers, else None."""
    value = item.get("value") if isinstance(item, dict) else None
    if not isinstance(value, dict):
        return None
    keys = (value.get("time"), value.get("msg_id"))
    if all(isinstance(key, int) and not isinstance(key, bool) for key in keys):
        return keys
    return None


def batch_order(items: list) -> str:
    """Which way a poll batch runs: ``"newest_first"`` or ``"oldest_first"``.

    The 2013 server listed the newest item first (docs/protocol.rst §5.0: webqq-core and
    pidgin-lwqq walk the array backwards); pual_bot, twqq and libwebqq walked it forward
    without saying. The items themselves tell: ``time`` (unix seconds) and ``msg_id``
    (the receiver's counter) grow as items arrive. When every item that has both goes
    the same way, that is the order; when they say nothing (fewer than two such items,
    all equal) or disagree, the batch is taken as newest first, as the sources read it.

    Args:
        items: the reply's ``result`` list, as decoded JSON.

    Returns:
        ``"oldest_first"`` when the keyed items only grow, else ``"newest_first"``.
    """
    keys = [key for key in map(_order_key, items) if key is not None]
    pairs = list(zip(keys, keys[1:]))
    if any(a < b for a, b in pairs) and not any(a > b for a, b in pairs):
        return "oldest_first"
    return "newest_first"


def parse_poll(body: bytes) -> PollResult:
    """Parse a ``poll2`` reply into an outcome and, for retcode 0, its events.

    Every ``poll_type`` of §5 becomes its ``PollEvent``; an unknown one becomes
    an ``UnknownEvent`` (kept whole, never an error). The events come in the order
    they arrived, whichever way the server listed them (``batch_order``).

    Args:
        body: the reply of ``build_poll``.

    Returns:
        The ``PollResult``: ``MESSAGES`` (0 with a list), ``RETRY`` (102, or 0 with
        ``"ok"``), ``NEW_PTWEBQQ`` (116), ``RELINK`` (120, 121), ``RELOGIN`` (100, 103,
        108, 122, 100000, 100002, 100006, 100101) or ``LOGGED_OUT`` (109, 110).

    Raises:
        RetcodeError: any other retcode (e.g. 114); count these and relogin after a few.
        MalformedReply: not a JSON envelope, or a 116 without ``p``. An item of a
            known type whose keys are missing or mistyped becomes a
            ``MalformedEvent`` in its place; the other items are kept.
    """
    reply = load_reply(body, "poll2")
    retcode = reply["retcode"]
    if retcode == QQRetcode.OK:
        result = reply.get("result")
        if not isinstance(result, list):
            return PollResult(PollOutcome.RETRY, QQRetcode.OK)
        events = [_poll_item(item, i) for i, item in enumerate(result)]
        if batch_order(result) == "newest_first":
            events.reverse()
        return PollResult(PollOutcome.MESSAGES, QQRetcode.OK, tuple(events))
    outcome = _POLL_OUTCOMES.get(retcode)
    if outcome is None:
        raise RetcodeError("poll2", retcode, errmsg_of(reply))
    if outcome is PollOutcome.NEW_PTWEBQQ:
        ptwebqq = ReplyFields("poll2", reply, "reply").token("p")
        return PollResult(outcome, QQRetcode.NEW_PTWEBQQ, ptwebqq=ptwebqq)
    return PollResult(outcome, QQRetcode(retcode))
