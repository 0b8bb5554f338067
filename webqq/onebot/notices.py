"""OneBot v11 notice and request events for the client's friend, group and file events.

notices: values in, an event dict (or None) out; no I/O, no clock (times are
arguments). ``webqq.onebot.server`` publishes what these build, and keeps what answering
a request or taking a file needs (``flag``, ``file.id``).

Which client event becomes which OneBot event::

    friend_request        request  friend            comment, flag "friend:QQ:SEQ"
    friend_change         notice   friend_add        (added, accepted; a removal has
                                                      no OneBot notice)
    group_member join     notice   group_increase    sub_type approve | invite
    group_member leave    notice   group_decrease    sub_type leave | kick | kick_me
    group_request         request  group, sub_type add   comment, flag
    group_request_answer  notice   group_request_answer  sub_type approve | reject
                                                      (webqq's own: OneBot has none)
    file offer, offline   notice   offline_file      file {id, name, size, url}
                                                      (go-cqhttp's; webqq adds sub_type
                                                      offer | offline)
    a Notice of a Shake   notice   notify, poke

What it must never do: talk to the client or the network.
"""
from typing import Any, Dict, Optional

from webqq.client.contacts import Contacts
from webqq.onebot.mapping import group_id_of, user_id_of
from webqq.qq import Shake

__all__ = ["friend_request", "friend_flag", "qq_of_friend_flag", "friend_added",
           "group_member", "group_request", "group_flag", "group_request_answer",
           "offline_file", "poke"]


def _user(sender: Any, contacts: Contacts) -> int:
    """The ``user_id`` of a client ``Sender`` (0 for nobody)."""
    if not sender.uin and not sender.qq:
        return 0
    return user_id_of(sender.uin, sender.qq, contacts)


def _group_id(event: Any) -> int:
    """The ``group_id`` of a group event: the group's number, else its code."""
    inner = event.event
    return group_id_of(event.group, inner.group_number or inner.code)


def friend_flag(qq: int, seq: int) -> str:
    """The ``flag`` of a friend request: the requester's QQ number and the item's seq."""
    return "friend:%d:%d" % (qq, seq)


def qq_of_friend_flag(flag: str) -> Optional[int]:
    """The QQ number a ``friend_flag`` names, or None for anything else."""
    kind, _, rest = flag.partition(":")
    number, _, seq = rest.partition(":")
    if kind != "friend" or not number.isdigit() or not seq.isdigit():
        return None
    return int(number)


def friend_request(event: Any, *, self_id: int, time: int) -> Dict[str, Any]:
    """A ``FriendRequestReceived`` as a ``request`` event (``request_type`` friend)."""
    return {"time": time, "self_id": self_id, "post_type": "request",
            "request_type": "friend", "user_id": event.qq, "comment": event.message,
            "flag": friend_flag(event.qq, event.event.seq)}


def friend_added(event: Any, *, self_id: int, time: int, contacts: Contacts
                 ) -> Optional[Dict[str, Any]]:
    """A ``FriendChanged`` as a ``friend_add`` notice; None for a removal."""
    if event.change == "removed":
        return None
    return {"time": time, "self_id": self_id, "post_type": "notice",
            "notice_type": "friend_add",
            "user_id": event.qq or user_id_of(event.uin, None, contacts)}


def group_member(event: Any, *, self_id: int, time: int, contacts: Contacts
                 ) -> Dict[str, Any]:
    """A ``GroupMemberChanged`` as ``group_increase`` or ``group_decrease``, its
    ``sub_type`` and ``operator_id`` as the client read them."""
    return {"time": time, "self_id": self_id, "post_type": "notice",
            "notice_type": "group_increase" if event.change == "join" else "group_decrease",
            "sub_type": event.sub_type, "group_id": _group_id(event),
            "user_id": _user(event.member, contacts),
            "operator_id": _user(event.operator, contacts)}


def group_flag(group_id: int, msg_id: int) -> str:
    """The ``flag`` of a request to join a group: the group and the item's msg_id."""
    return "group:%d:%d" % (group_id, msg_id)


def group_request(event: Any, *, self_id: int, time: int, contacts: Contacts
                  ) -> Dict[str, Any]:
    """A ``GroupJoinRequest`` as a ``request`` event (``request_type`` group,
    ``sub_type`` add)."""
    group_id = _group_id(event)
    return {"time": time, "self_id": self_id, "post_type": "request",
            "request_type": "group", "sub_type": "add", "group_id": group_id,
            "user_id": _user(event.requester, contacts), "comment": event.message,
            "flag": group_flag(group_id, event.event.msg_id)}


def group_request_answer(event: Any, *, self_id: int, time: int, contacts: Contacts
                         ) -> Dict[str, Any]:
    """A ``GroupJoinAnswered`` (our own request to join was answered) as webqq's
    ``group_request_answer`` notice: ``sub_type`` approve or reject, the
    administrator as ``operator_id``, their note as ``comment``."""
    return {"time": time, "self_id": self_id, "post_type": "notice",
            "notice_type": "group_request_answer",
            "sub_type": "approve" if event.accepted else "reject",
            "group_id": _group_id(event), "user_id": self_id,
            "operator_id": _user(event.admin, contacts), "comment": event.message}


def offline_file(event: Any, *, self_id: int, time: int, contacts: Contacts,
                 file_id: str, url: Optional[str]) -> Optional[Dict[str, Any]]:
    """A ``FileNotice`` offering a file (``offer``) or announcing one left while we were
    away (``offline``) as an ``offline_file`` notice; None for the others (cancel, ack,
    transfer progress).

    Args:
        file_id: the id ``accept_file`` and ``refuse_file`` take.
        url: where the API serves the file (once taken); None when it does not listen.
    """
    if event.change not in ("offer", "offline"):
        return None
    file = {"id": file_id, "name": event.name, "size": event.size or 0}
    if url:
        file["url"] = url
    return {"time": time, "self_id": self_id, "post_type": "notice",
            "notice_type": "offline_file", "sub_type": event.change,
            "user_id": _user(event.sender, contacts), "file": file}


def poke(event: Any, *, self_id: int, time: int, contacts: Contacts
         ) -> Optional[Dict[str, Any]]:
    """A ``Notice`` carrying a ``Shake`` as a ``notify`` ``poke`` notice; None for any
    other notice (the typed events above cover friends, groups and files)."""
    inner = event.event
    if not isinstance(inner, Shake):
        return None
    return {"time": time, "self_id": self_id, "post_type": "notice",
            "notice_type": "notify", "sub_type": "poke",
            "user_id": user_id_of(inner.from_uin, None, contacts), "target_id": self_id}
