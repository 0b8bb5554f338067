"""Friend and group management: answering requests, leaving a group, one's group card.

manage: ``Manager`` (``client.manage``). Friend requests are answered with
``allow_and_add2`` or ``deny_added_request2``, a request to join a group we administer
with ``op_group_join_req``; ``quit_group2`` leaves a group and
``update_group_business_card2`` sets our own card in it. Those are the management calls
a 2013 client shows (LQ); removing or silencing a member has no 2013 endpoint
(docs/media.rst). It never opens a socket and never parses bytes.

Groups are named as people name them: a public number (int), a name (str) or a
``Group``; each call finds the group's code in the contacts.

The friend policy of an unattended bot (``[bot] accept_friends``) lives here too:
``accept_friends`` is False (answer nothing by itself: plugins or the API decide),
True (accept everyone) or a set of QQ numbers to accept; ``on_request`` applies it.
"""
import logging
from typing import Any, Callable, Collection, Union

from tornado import gen
from tornado.ioloop import IOLoop

from webqq.client.calls import Calls, NotOnline, Unavailable
from webqq.client.contacts import Contacts, Group
from webqq.http.errors import HTTPStreamError
from webqq.qq import (Ack, FriendRequest, GroupSystemEvent, ProtocolError, build_allow_and_add,
                      build_answer_group_request, build_deny_added_request, build_quit_group,
                      build_set_group_card, parse_answer_group_request,
                      parse_friend_request_reply, parse_quit_group, parse_set_group_card)

__all__ = ["Manager"]

log = logging.getLogger("webqq.client")


class Manager:
    """``client.manage`` (see the module doc).

    Args:
        calls: the client's ``Calls``.
        contacts: the client's current ``Contacts``.
        accept_friends: the friend policy: False, True or QQ numbers (see the module
            doc); the attribute of that name may be changed at any time (a reload).
    """

    def __init__(self, calls: Calls, contacts: Callable[[], Contacts], *,
                 accept_friends: Union[bool, Collection[int]] = False) -> None:
        self._calls = calls
        self._contacts = contacts
        self.accept_friends = accept_friends

    def accepts(self, qq: int) -> bool:
        """Whether the friend policy accepts a request from ``qq``."""
        if isinstance(self.accept_friends, bool):
            return self.accept_friends
        return qq in self.accept_friends

    def on_request(self, request: FriendRequest) -> bool:
        """Apply the friend policy to a request: when it accepts, the answer is sent in
        the background (a failure is logged). Returns whether it accepts."""
        if not self.accepts(request.qq):
            return False
        log.info("Accepting the friend request of %d ([bot] accept_friends)", request.qq)
        IOLoop.current().add_future(gen.convert_yielded(self._accept(request.qq)),
                                    lambda _: None)
        return True

    async def _accept(self, qq: int) -> None:
        try:
            await self.answer_friend(qq, True)
        except (NotOnline, ProtocolError, HTTPStreamError) as exc:
            log.warning("Could not accept the friend request of %d: %s: %s", qq,
                        exc.__class__.__name__, exc)

    async def answer_friend(self, qq: int, accept: bool, *, markname: str = "",
                            category: int = 0, reason: str = "") -> Ack:
        """Answer a friend request (``FriendRequest.qq``): accept and add them back
        (``allow_and_add2``, as PB did), or refuse (``deny_added_request2``).

        Args:
            qq: the requester's QQ number.
            accept: True to accept, False to refuse.
            markname: accepting: our remark name for them ("" for none).
            category: accepting: the friend category to put them in (0: the default).
            reason: refusing: the note they see.

        Returns:
            The server's ``Ack``.

        Raises:
            NotOnline, ProtocolError, HTTPStreamError: see ``webqq.client.calls``.
        """
        link = self._calls.session()
        if accept:
            request = build_allow_and_add(qq, vfwebqq=link.vfwebqq, category=category,
                                          markname=markname)
        else:
            request = build_deny_added_request(qq, vfwebqq=link.vfwebqq, reason=reason)
        ack = await self._calls.call(request, parse_friend_request_reply)
        log.info("Friend request of %d %s", qq, "accepted" if accept else "refused")
        return ack

    async def answer_group_request(self, request: GroupSystemEvent, accept: bool, *,
                                   reason: str = "") -> Ack:
        """Let a requester into a group we administer, or refuse them
        (``op_group_join_req``).

        Args:
            request: the ``group_request_join`` ``GroupSystemEvent``.
            accept: True to let them in.
            reason: the note they see.

        Raises:
            Unavailable: not a ``group_request_join``.
            NotOnline, ProtocolError (e.g. we are not an administrator),
            HTTPStreamError: see ``webqq.client.calls``.
        """
        if request.kind != "group_request_join" or request.member_uin is None:
            raise Unavailable("only a group_request_join can be answered, not a %s"
                              % request.kind)
        link = self._calls.session()
        ack = await self._calls.call(build_answer_group_request(
            request.gid, request.member_uin, accept=accept, reason=reason,
            clientid=link.clientid, psessionid=link.psessionid, t=self._calls.seconds()),
            parse_answer_group_request)
        log.info("Request of uin %d to join group %d %s", request.member_uin, request.gid,
                 "accepted" if accept else "refused")
        return ack

    async def leave_group(self, group: Any) -> Ack:
        """Leave a group (``quit_group2``); the contacts drop it at their next refresh.

        Args:
            group: its public number (int), name (str) or ``Group``.

        Raises:
            Unavailable: no such group in the contacts.
            NotOnline, ProtocolError, HTTPStreamError: see ``webqq.client.calls``.
        """
        found = self._group(group)
        link = self._calls.session()
        ack = await self._calls.call(build_quit_group(found.code, vfwebqq=link.vfwebqq),
                                     parse_quit_group)
        log.info("Left group %s", found.name)
        return ack

    async def set_group_card(self, group: Any, card: str) -> Ack:
        """Set our own card in a group (``update_group_business_card2``); the 2013
        protocol sets no one else's.

        Args:
            group: its public number (int), name (str) or ``Group``.
            card: the new card; "" clears it.

        Raises:
            Unavailable: no such group in the contacts.
            NotOnline, ProtocolError, HTTPStreamError: see ``webqq.client.calls``.
        """
        found = self._group(group)
        link = self._calls.session()
        return await self._calls.call(
            build_set_group_card(found.code, card, vfwebqq=link.vfwebqq),
            parse_set_group_card)

    def _group(self, group: Any) -> Group:
        if isinstance(group, Group):
            return group
        contacts = self._contacts()
        found = contacts.group(name=group) if isinstance(group, str) else \
            contacts.group(number=int(group))
        if found is None:
            raise Unavailable("no group %r in the contacts" % (group,))
        return found
