"""Receiving: from one poll event to the client event a listener gets.

receiving: ``Receiver`` drops the events the server delivered twice and names who wrote
each message from the contacts; what the event means for the session (a kick, a contact
list change) is the client's business, not this module's. No I/O, no clock.

Where it sits on a message's way::

    poll2 answer -> parse_poll -> [BuddyMessage, ...]
      -> WebQQClient._dispatch -> Receiver.receive -> MessageReceived | Notice | None
      -> listeners (plugins, the OneBot API) -> client.reply -> sending.Transmitter
"""
import logging
from collections import OrderedDict
from typing import Any, Callable, Optional

from webqq.client.contacts import Contacts, Member
from webqq.client.events import ClientEvent, MessageReceived, Notice, Sender
from webqq.qq import (BuddyMessage, DiscussionMessage, GroupMessage, PollEvent,
                      SessionMessage)

__all__ = ["Receiver", "SEEN_MAX"]

log = logging.getLogger("webqq.client")

#: Remembered (kind, msg_id, msg_id2) of received events, for de-duplication.
SEEN_MAX = 2000

_CHATS = {BuddyMessage: "buddy", GroupMessage: "group",
          DiscussionMessage: "discussion", SessionMessage: "session"}


class Receiver:
    """Turns poll events into client events.

    Args:
        contacts: the client's current ``Contacts``.
        qq_of: a QQ number the contact loader looked up for a uin, or None.
    """

    def __init__(self, contacts: Callable[[], Contacts],
                 qq_of: Callable[[int], Optional[int]]) -> None:
        self._contacts = contacts
        self._qq_of = qq_of
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
        return MessageReceived(chat, event, event.content.text, sender, group, discussion)

    def _sender(self, uin: int, chat: Any = None, qq: Optional[int] = None) -> Sender:
        """Who wrote: the group card, else our remark or the friend's nick, else the
        member's nick, else the QQ number as text."""
        contacts = self._contacts()
        friend = contacts.friend(uin=uin)
        member: Optional[Member] = chat.members.get(uin) if chat is not None else None
        name = (member.card if member is not None and member.card else None) or \
            (friend.display_name if friend is not None else None) or \
            (member.nick if member is not None else "") or ""
        qq = qq or contacts.qq_of(uin) or self._qq_of(uin)
        return Sender(uin, qq, name or (str(qq) if qq else ""))


def _dedup_key(event: PollEvent) -> Optional[tuple]:
    msg_id = getattr(event, "msg_id", None)
    if msg_id is None:
        return None
    return type(event).__name__, msg_id, getattr(event, "msg_id2", None)
