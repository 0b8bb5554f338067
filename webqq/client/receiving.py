"""Receiving: from one poll event to the client event a listener gets.

receiving: ``Receiver`` drops the events the server delivered twice, names who wrote
each message from the contacts and reads its pieces (texts, faces, pictures), and reads
the friend, group and file notices into the client's events (``read``); what an event
means for the session (a kick, a contact list change, a friend request to accept) is
the client's business, not this module's. No I/O, no clock.

Where it sits on a message's way::

    poll2 answer -> parse_poll -> [BuddyMessage, ...]
      -> WebQQClient._dispatch -> Receiver.receive -> MessageReceived | Notice | None
      -> listeners (plugins, the OneBot API) -> client.reply -> sending.Transmitter
"""
import logging
from collections import OrderedDict
from typing import Any, Callable, List, Optional

from webqq.client.contacts import Contacts, Member
from webqq.client.events import (ClientEvent, FileNotice, FriendChanged,
                                 FriendRequestReceived, GroupJoinAnswered, GroupJoinRequest,
                                 GroupMemberChanged, MessageReceived, Notice, Sender)
from webqq.client.pictures import message_pieces
from webqq.qq import (BuddyListChange, BuddyMessage, DiscussionMessage, FileEvent,
                      FriendAdded, FriendRequest, FriendRequestAccepted, GroupMessage,
                      GroupSystemEvent, MalformedEvent, PollEvent, SessionMessage)

__all__ = ["Receiver", "SEEN_MAX"]

log = logging.getLogger("webqq.client")

#: Remembered (kind, msg_id, msg_id2) of received events, for de-duplication.
SEEN_MAX = 2000

_CHATS = {BuddyMessage: "buddy", GroupMessage: "group",
          DiscussionMessage: "discussion", SessionMessage: "session"}


class Receiver:
    """Turns poll events into client events.

    Bound: the duplicate filter remembers the last ``SEEN_MAX`` events' keys (the oldest
    forgotten first); an event repeated after that many others would pass again.

    Args:
        contacts: the client's current ``Contacts``.
        qq_of: a QQ number the contact loader looked up for a uin, or None.
        self_qq: our own QQ number (in 2013 also our uin, §0.2).
    """

    def __init__(self, contacts: Callable[[], Contacts],
                 qq_of: Callable[[int], Optional[int]], self_qq: int = 0) -> None:
        self._contacts = contacts
        self._qq_of = qq_of
        self._self_qq = self_qq
        self._seen: "OrderedDict[tuple, None]" = OrderedDict()

    def receive(self, event: PollEvent) -> Optional[ClientEvent]:
        """The ``MessageReceived`` (a chat message, its sender named) or ``Notice`` (any
        other event) for ``event``; None when the same event came before (items can be
        delivered twice: the same kind, msg_id and msg_id2)."""
        key = _dedup_key(event)
        if key is not None:
            if key in self._seen:
                log.debug("Dropped a repeated %s (msg_id %s)", type(event).__name__, key[1])
                return None
            self._seen[key] = None
            if len(self._seen) > SEEN_MAX:
                self._seen.popitem(last=False)
        chat = _CHATS.get(type(event))
        if isinstance(event, MalformedEvent):
            log.warning("poll2: an unreadable %s item was skipped: %s",
                        event.poll_type or "untyped", event.problem)
        if chat is None:
            return Notice(event)
        contacts = self._contacts()
        group = discussion = None
        if chat == "buddy":
            sender = self._sender(event.from_uin)
        elif chat == "group":
            group = contacts.group(gid=event.gid) or contacts.group(code=event.code)
            sender = self._sender(event.send_uin, group)
        elif chat == "discussion":
            discussion = contacts.discussion(did=event.did)
            sender = self._sender(event.send_uin, discussion)
        else:
            sender = self._sender(event.from_uin, qq=event.qq)
        return MessageReceived(chat, event, event.content.text, sender, group, discussion,
                               message_pieces(event))

    def read(self, event: PollEvent, accepting: Callable[[int], bool]) -> List[ClientEvent]:
        """The client's events for a friend, group or file notice (none for any other
        event); ``accepting(qq)`` says whether the friend policy accepts a request.

        A ``buddylist_change`` gives one ``FriendChanged`` per friend added or removed.
        """
        if isinstance(event, FriendRequest):
            return [FriendRequestReceived(event.qq, event.from_uin, event.message,
                                          accepting(event.qq), event)]
        if isinstance(event, FriendAdded):
            return [self._friend_change("added", event.from_uin, event, qq=event.qq)]
        if isinstance(event, FriendRequestAccepted):
            return [self._friend_change("accepted", event.from_uin, event,
                                        category=event.category)]
        if isinstance(event, BuddyListChange):
            return [self._friend_change("added", uin, event, category=category)
                    for uin, category in event.added] + \
                [self._friend_change("removed", uin, event) for uin in event.removed]
        if isinstance(event, GroupSystemEvent):
            found = self._group_event(event)
            return [found] if found is not None else []
        if isinstance(event, FileEvent):
            return [self._file_notice(event)]
        return []

    def _friend_change(self, change: str, uin: int, event: PollEvent,
                       qq: Optional[int] = None, category: Optional[int] = None
                       ) -> FriendChanged:
        sender = self._sender(uin, qq=qq)
        return FriendChanged(change, uin, sender.qq, sender.name, category, event)

    def _group_event(self, event: GroupSystemEvent) -> Optional[ClientEvent]:
        """A ``sys_g_msg`` as a member change, a join request or its answer (OneBot's
        sub_types: an administrator's join is an invitation, a member put out by one a
        kick, and when that member is us, a kick_me)."""
        contacts = self._contacts()
        group = contacts.group(gid=event.gid) or contacts.group(code=event.code)
        member = self._sender(event.member_uin, group, event.member_qq) \
            if event.member_uin is not None else Sender(0, None, "")
        admin = self._sender(event.admin_uin, group, event.admin_qq, event.admin_nick) \
            if event.admin_uin is not None else None
        by_admin = event.op_type == 3
        if event.kind == "group_join":
            return GroupMemberChanged("join", "invite" if by_admin else "approve",
                                      event.gid, group, member, admin or member, event)
        if event.kind == "group_leave":
            itself = member.uin == self._self_qq or member.qq == self._self_qq
            sub_type = ("kick_me" if itself else "kick") if by_admin else "leave"
            return GroupMemberChanged("leave", sub_type, event.gid, group, member,
                                      admin or member, event)
        if event.kind == "group_request_join":
            return GroupJoinRequest(event.gid, group, member, event.message, event)
        if event.kind in ("group_request_join_agree", "group_request_join_deny"):
            return GroupJoinAnswered(event.gid, group,
                                     event.kind == "group_request_join_agree",
                                     admin or Sender(0, None, ""), event.message, event)
        return None

    def _file_notice(self, event: FileEvent) -> FileNotice:
        if event.kind == "file_message":
            change = {"recv": "offer", "refuse": "cancel"}.get(event.mode, "ack")
        else:
            change = {"push_offfile": "offline", "notify_offfile": "offline_notice"}.get(
                event.kind, "transfer")
        sender = self._sender(event.from_uin) if event.from_uin is not None else \
            Sender(0, None, "")
        return FileNotice(change, sender, event.name or "", event.size, event)

    def _sender(self, uin: int, chat: Any = None, qq: Optional[int] = None,
                nick: str = "") -> Sender:
        """Who wrote: the group card, else our remark or the friend's nick, else the
        member's nick, else ``nick``, else the QQ number as text."""
        contacts = self._contacts()
        friend = contacts.friend(uin=uin)
        member: Optional[Member] = chat.members.get(uin) if chat is not None else None
        name = (member.card if member is not None and member.card else None) or \
            (friend.display_name if friend is not None else None) or \
            (member.nick if member is not None else "") or nick or ""
        qq = qq or contacts.qq_of(uin) or self._qq_of(uin)
        return Sender(uin, qq, name or (str(qq) if qq else ""))


def _dedup_key(event: PollEvent) -> Optional[tuple]:
    """What tells a repeat: (msg_id, msg_id2) where the item has them, else the ``seq``
    of a system message (a friend request delivered twice is answered once)."""
    msg_id = getattr(event, "msg_id", None)
    if msg_id is not None:
        return type(event).__name__, msg_id, getattr(event, "msg_id2", None)
    seq = getattr(event, "seq", None)
    if seq is not None:
        return type(event).__name__, "seq", seq
    return None
