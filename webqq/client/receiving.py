"""Receiving: from one poll event to the client event a listener gets.

receiving: ``Receiver`` drops the events the server delivered twice, names who wrote each
message from the contacts and reads its pieces (texts, faces, pictures), reads the
friend, group and file notices into the client's events (``read``), and hands the events
on in the order they arrived. A number the protocol carries (a group message's public
number, a stranger's QQ number) goes into the ``NumberBook`` on the way. A message whose
sender's QQ number, or whose group's public number, is still unknown waits for the book
to look it up, ``LOOKUP_WAIT`` seconds at most, and the events behind it wait with it,
so that listeners see every event in arrival order. What an event means for the session
(a kick, a contact list change, a friend request to accept) is the client's business,
not this module's. It never talks to the network itself.

Where it sits on a message's way::

    poll2 answer -> parse_poll -> [BuddyMessage, ...]
      -> WebQQClient._dispatch -> Receiver.receive -> MessageReceived | Notice | None
      -> Receiver.deliver -> [NumberBook lookups] -> emit: listeners (plugins, the
         OneBot API) -> client.reply -> sending.Transmitter
"""
import logging
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, List, Optional

from tornado import gen
from tornado.concurrent import Future
from tornado.ioloop import IOLoop

from webqq.client.contacts import Contacts, Member
from webqq.client.events import (ClientEvent, FileNotice, FriendChanged,
                                 FriendRequestReceived, GroupJoinAnswered, GroupJoinRequest,
                                 GroupMemberChanged, MessageReceived, Notice, Sender)
from webqq.client.numbers import NumberBook, group_key
from webqq.client.pictures import message_pieces
from webqq.qq import (BuddyListChange, BuddyMessage, DiscussionMessage, FileEvent,
                      FriendAdded, FriendRequest, FriendRequestAccepted, GroupMessage,
                      GroupSystemEvent, MalformedEvent, PollEvent, SessionMessage)

__all__ = ["Receiver", "SEEN_MAX", "LOOKUP_WAIT"]

log = logging.getLogger("webqq.client")

#: Remembered (kind, msg_id, msg_id2) of received events, for de-duplication.
SEEN_MAX = 2000
#: Seconds a message may wait for the QQ numbers it lacks before it goes on without.
LOOKUP_WAIT = 5.0

_CHATS = {BuddyMessage: "buddy", GroupMessage: "group",
          DiscussionMessage: "discussion", SessionMessage: "session"}


class Receiver:
    """Turns poll events into client events, and emits them in order.

    Bound: the duplicate filter remembers the last ``SEEN_MAX`` events' keys (the oldest
    forgotten first); an event repeated after that many others would pass again.

    Args:
        io_loop: the client's loop (the wait for a lookup is bounded on it).
        contacts: the client's current ``Contacts``.
        numbers: the client's ``NumberBook``.
        emit: how an event reaches the listeners.
        self_qq: our own QQ number (in 2013 also our uin, §1.2).
    """

    def __init__(self, io_loop: IOLoop, contacts: Callable[[], Contacts],
                 numbers: NumberBook, emit: Callable[[ClientEvent], None],
                 self_qq: int = 0) -> None:
        self.io_loop = io_loop
        self._contacts = contacts
        self._numbers = numbers
        self._emit = emit
        self._self_qq = self_qq
        self._seen: "OrderedDict[tuple, None]" = OrderedDict()
        self._waiting: Deque[List[Any]] = deque()    # [event, Future or None], in order

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
        if isinstance(event, MalformedEvent):
            log.warning("poll2: an unreadable %s item was skipped: %s",
                        event.poll_type or "untyped", event.problem)
        self._learn(event)
        return self._describe(event)

    def deliver(self, received: ClientEvent) -> None:
        """Emit ``received`` now, or once the numbers it lacks are looked up (and the
        events before it are out)."""
        wait = self._lookups(received)
        if wait is None and not self._waiting:
            self._emit(received)
            return
        self._waiting.append([received, wait])
        if wait is not None:
            self.io_loop.add_future(wait, lambda _future: self._drain())

    def flush(self) -> None:
        """Emit every waiting event now, with the numbers known so far (the client
        stops: nothing received is thrown away)."""
        while self._waiting:
            self._emit(self._refreshed(self._waiting.popleft()))

    def _drain(self) -> None:
        while self._waiting and (self._waiting[0][1] is None or self._waiting[0][1].done()):
            self._emit(self._refreshed(self._waiting.popleft()))

    def _refreshed(self, entry: List[Any]) -> ClientEvent:
        """A waiting event named again with what the lookups taught."""
        received, wait = entry
        if wait is not None and isinstance(received, MessageReceived):
            return self._describe(received.message)
        return received

    def _lookups(self, received: ClientEvent) -> Optional[Future]:
        """A Future done when the numbers ``received`` lacks are looked up or
        ``LOOKUP_WAIT`` passed; None when it lacks none (or none can be had now)."""
        if not isinstance(received, MessageReceived):
            return None
        asked = []
        if received.sender.qq is None:
            asked.append(self._numbers.qq_of(received.sender.uin))
        group = received.group
        if group is not None and group.number is None:
            asked.append(self._numbers.group_number(group.code))
        asked = [future for future in asked if not future.done()]
        if not asked:
            return None
        ready: Future = Future()

        def settle(_future: Any = None) -> None:
            self.io_loop.remove_timeout(timer)
            if not ready.done():
                ready.set_result(None)
        timer = self.io_loop.call_later(LOOKUP_WAIT, settle)
        self.io_loop.add_future(gen.multi(asked), settle)
        return ready

    def _learn(self, event: PollEvent) -> None:
        """Put the numbers an event carries into the book (no lookup needed for them)."""
        if isinstance(event, (GroupMessage, GroupSystemEvent)):
            self._numbers.learn(group_key(event.code), event.group_number)
        elif isinstance(event, SessionMessage):
            self._numbers.learn(event.from_uin, event.qq)
        elif isinstance(event, (FriendRequest, FriendAdded)):
            self._numbers.learn(event.from_uin, event.qq)

    def _describe(self, event: PollEvent) -> ClientEvent:
        chat = _CHATS.get(type(event))
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
        qq = qq or contacts.qq_of(uin) or self._numbers.known(uin)
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
