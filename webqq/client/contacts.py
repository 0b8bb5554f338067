"""The contact cache: friends, groups with their members, discussions with theirs.

contacts: the values and lookups of ``Contacts``, and ``ContactLoader``, which fills a new
``Contacts`` through the client's ``HTTPStream`` with ``webqq.qq`` requests and
parsers (it never opens a socket, never parses bytes, and never looks up a member's QQ
number: the ``NumberBook`` of ``numbers.py`` does that when a message needs one; of
the people and groups a user names by number, friends and groups, it asks the book for
``PREFETCH`` at most per load). ``WebQQClient`` replaces its contacts whole on every
refresh and fills in each number learnt later (``learn``).
Naming follows the project: ``uin`` is a per-session id, ``qq`` a real account number,
``gid``/``code`` a group's two opaque ids and ``number`` its public number, ``did`` a
discussion's id. Any of them may be unknown (None) when the server did not say.
"""
import logging
from dataclasses import dataclass, field
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional

from webqq.client.numbers import NumberBook, group_key
from webqq.http.errors import HTTPStreamError
from webqq.qq import (
    DISCUSSION_LIST_HOSTS, HASH_VARIANTS, ProtocolError,
    build_discussion_info, build_discussions, build_friends, build_group_info,
    build_groups, friends_hash, parse_discussion_info, parse_discussions, parse_friends,
    parse_group_info, parse_groups)

__all__ = ["Friend", "Member", "Group", "Discussion", "Contacts", "ContactLoader",
           "NO_HASH", "PREFETCH"]

log = logging.getLogger("webqq.contacts")


@dataclass(frozen=True)
class Friend:
    """A friend: ``uin`` (send target), ``qq`` (None until looked up), ``nick``,
    ``markname`` (our remark, or None)."""
    uin: int
    qq: Optional[int]
    nick: str
    markname: Optional[str] = None

    @property
    def display_name(self) -> str:
        """The remark name if we gave one, else the nickname."""
        return self.markname or self.nick


@dataclass(frozen=True)
class Member:
    """A member of a group or discussion: ``card`` is the group card (groups only);
    ``role`` is ``owner`` (a group's or discussion's owner), ``admin`` (a group's
    administrators: bit 0 of ``mflag``) or ``member``."""
    uin: int
    qq: Optional[int]
    nick: str
    card: Optional[str] = None
    role: str = "member"

    @property
    def display_name(self) -> str:
        """The group card if set, else the nickname."""
        return self.card or self.nick


@dataclass(frozen=True)
class Group:
    """A group: ``gid`` (send target, poll ``from_uin``), ``code`` (info key, poll
    ``group_code``), ``number`` (public number or None), ``name``, ``members`` by uin."""
    gid: int
    code: int
    number: Optional[int]
    name: str
    markname: Optional[str] = None
    members: Dict[int, Member] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Discussion:
    """A discussion group: ``did`` (send target), ``name``, ``members`` by uin."""
    did: int
    name: str
    members: Dict[int, Member] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Contacts:
    """Everything the client knows about the people and chats of one session.

    Attributes:
        friends: by uin.
        groups: by gid.
        discussions: by did.
        loaded_at: ``IOLoop.time()`` of the refresh that built it (None: never loaded).
    """
    friends: Dict[int, Friend] = field(default_factory=dict)
    groups: Dict[int, Group] = field(default_factory=dict)
    discussions: Dict[int, Discussion] = field(default_factory=dict)
    loaded_at: Optional[float] = None

    def friend(self, *, uin: Optional[int] = None, qq: Optional[int] = None,
               name: Optional[str] = None) -> Optional[Friend]:
        """The friend with this uin, QQ number, or nick/remark name (give one), or None."""
        if uin is not None:
            return self.friends.get(uin)
        for friend in self.friends.values():
            if qq is not None and friend.qq == qq:
                return friend
            if name is not None and name in (friend.nick, friend.markname):
                return friend
        return None

    def group(self, *, gid: Optional[int] = None, code: Optional[int] = None,
              number: Optional[int] = None, name: Optional[str] = None) -> Optional[Group]:
        """The group with this gid, code, public number or name/remark (give one), or None."""
        if gid is not None:
            return self.groups.get(gid)
        for group in self.groups.values():
            if code is not None and group.code == code:
                return group
            if number is not None and group.number == number:
                return group
            if name is not None and name in (group.name, group.markname):
                return group
        return None

    def discussion(self, *, did: Optional[int] = None,
                   name: Optional[str] = None) -> Optional[Discussion]:
        """The discussion with this did or name (give one), or None."""
        if did is not None:
            return self.discussions.get(did)
        return next((d for d in self.discussions.values() if d.name == name), None)

    def qq_of(self, uin: int) -> Optional[int]:
        """The QQ number behind a uin, from any list that knows it, or None."""
        friend = self.friends.get(uin)
        if friend is not None and friend.qq is not None:
            return friend.qq
        for chat in list(self.groups.values()) + list(self.discussions.values()):
            member = chat.members.get(uin)
            if member is not None and member.qq is not None:
                return member.qq
        return None

    def learn(self, key: int, number: int) -> None:
        """Write a number learnt after the load in: a QQ number (``key`` a uin) into
        the friend and the members with that uin, a group's public number (``key`` a
        ``group_key(code)``) into that group."""
        if key < 0:
            for gid, group in self.groups.items():
                if group.code == -key:
                    self.groups[gid] = replace(group, number=number)
            return
        friend = self.friends.get(key)
        if friend is not None:
            self.friends[key] = replace(friend, qq=number)
        for chat in list(self.groups.values()) + list(self.discussions.values()):
            member = chat.members.get(key)
            if member is not None:
                chat.members[key] = replace(member, qq=number)


#: How a friend-list request without a hash is named among the variants (pual_bot's
#: spring 2013 request).
NO_HASH = "none"
#: Numbers of friends and groups asked for per load at most (the NumberBook's budget
#: bounds them too): what a user names by number in a send, and what the OneBot API
#: lists, while its calls cannot ask for a number themselves. Group members, the bulk
#: (hundreds a group), are never asked for here; a resumed session has its numbers.
PREFETCH = 8


class ContactLoader:
    """Loads the lists of docs/protocol.rst §3.7-§3.11 one request at a time.

    Args:
        stream: the client's ``HTTPStream`` (its cookie jar carries the session).
        clock: wall-clock seconds, for the requests' ``t`` stamps.
        numbers: the client's ``NumberBook``: the numbers it knows go into the lists,
            and the QQ numbers of discussion members (``ruin``) go into it.

    Attributes:
        hash_variant: the friend-list hash the server took last (``NO_HASH``: none, as
            pual_bot sent in spring 2013), or None when unknown; kept in the session
            file. The server's algorithm rotated during 2013 (docs/protocol.rst §4.3).
    """

    def __init__(self, stream: Any, clock: Callable[[], float], numbers: NumberBook):
        self.stream = stream
        self.clock = clock
        self.numbers = numbers
        self.hash_variant: Optional[str] = None
        self._discussion_host = DISCUSSION_LIST_HOSTS[0]   # the one that answered last

    async def load(self, old: "Contacts", *, qq: int, ptwebqq: str, clientid: int,
                   psessionid: str, vfwebqq: str, current: Callable[[], bool],
                   now: float) -> Optional["Contacts"]:
        """Friends, groups and their members, discussions and theirs.

        A list that fails is logged and its part of ``old`` kept: contacts are a
        convenience, messaging works without them.

        Args:
            old: the contacts so far.
            qq, ptwebqq: the account and its current ptwebqq, for the friend-list hash.
            clientid, psessionid, vfwebqq: the session's values.
            current: false once the session changed; the load then stops.
            now: ``IOLoop.time()``, for ``loaded_at``.

        Returns:
            The new ``Contacts``, or None when ``current()`` turned false.
        """
        known = self.numbers.known
        friend_list = await self._friends(current, qq, ptwebqq, vfwebqq)
        group_list = await self._get(current, build_groups(vfwebqq=vfwebqq), parse_groups)
        discussion_list = await self._discussions(current, clientid, psessionid, vfwebqq)
        if not current():
            return None
        contacts = Contacts(loaded_at=now)
        # Discussions first: their member lists carry QQ numbers the others can use.
        if discussion_list is None:
            contacts.discussions = dict(old.discussions)
        for d in discussion_list.discussions if discussion_list else ():
            info = await self._get(current, build_discussion_info(
                d.did, clientid=clientid, psessionid=psessionid, vfwebqq=vfwebqq,
                t=self.clock()), parse_discussion_info)
            members = {} if info is None else {
                m.uin: Member(m.uin, m.qq, m.nick,
                              role="owner" if m.uin == info.owner_uin else "member")
                for m in info.members}
            for member in members.values():
                self.numbers.learn(member.uin, member.qq)
            contacts.discussions[d.did] = Discussion(d.did, d.name, members)
        await self._prefetch(current, friend_list, group_list)
        if friend_list is None:
            contacts.friends = dict(old.friends)
        for f in friend_list.friends if friend_list else ():
            contacts.friends[f.uin] = Friend(f.uin, known(f.uin), f.nick, f.markname)
        if group_list is None:
            contacts.groups = dict(old.groups)
        for g in group_list.groups if group_list else ():
            info = await self._get(current, build_group_info(
                g.code, vfwebqq=vfwebqq, t=self.clock()), parse_group_info)
            members = {} if info is None else {
                m.uin: Member(m.uin, known(m.uin), m.nick, m.card,
                              "owner" if m.uin == info.owner_uin else
                              "admin" if m.is_admin else "member")
                for m in info.members}
            contacts.groups[g.gid] = Group(g.gid, g.code, known(group_key(g.code)), g.name,
                                           g.markname, members)
        return contacts if current() else None

    async def _prefetch(self, current: Callable[[], bool], friend_list, group_list) -> None:
        """Ask the book for the unknown numbers of friends, then groups, ``PREFETCH`` at
        most, one after another."""
        known = self.numbers.known
        asks = [(self.numbers.qq_of, f.uin) for f in
                (friend_list.friends if friend_list else ()) if known(f.uin) is None]
        asks += [(self.numbers.group_number, g.code) for g in
                 (group_list.groups if group_list else ()) if known(group_key(g.code)) is None]
        for ask, key in asks[:PREFETCH]:
            if not current():
                return
            await ask(key)

    async def _friends(self, current: Callable[[], bool], qq: int, ptwebqq: str,
                       vfwebqq: str):
        """The friend list, with the hash the server wants: the variant that worked
        last, then no hash, then every variant of §5.4, while the server refuses (any
        retcode or an unreadable answer: in 2013 a wrong hash was not always 50)."""
        variants = [self.hash_variant] if self.hash_variant else []
        variants += [v for v in (NO_HASH,) + HASH_VARIANTS if v not in variants]
        refusals: List[str] = []
        for variant in variants:
            if variant != NO_HASH and not ptwebqq:
                continue
            hash_value = None if variant == NO_HASH else friends_hash(qq, ptwebqq, variant)
            try:
                found = await self._fetch(current, build_friends(
                    vfwebqq=vfwebqq, hash_value=hash_value), parse_friends)
            except ProtocolError as exc:
                refusals.append("%s: %s" % (variant, exc))
                continue
            except HTTPStreamError as exc:
                log.warning("Loading contacts: the friend list: %s: %s",
                            exc.__class__.__name__, exc)
                return None
            if found is not None and variant != self.hash_variant:
                log.info("Friend list: the server takes hash variant %s", variant)
                self.hash_variant = variant
            return found
        log.warning("Loading contacts: no friend-list hash variant was accepted (%s)",
                    "; ".join(refusals))
        return None

    async def _discussions(self, current: Callable[[], bool], clientid: int,
                           psessionid: str, vfwebqq: str):
        """The discussion list from the address that answered last, else the other
        (docs/protocol.rst §3.10); None, said in the log, when neither answers."""
        hosts = [self._discussion_host] + [h for h in DISCUSSION_LIST_HOSTS
                                           if h != self._discussion_host]
        failures: List[str] = []
        for host in hosts:
            request = build_discussions(clientid=clientid, psessionid=psessionid,
                                        vfwebqq=vfwebqq, t=self.clock(), host=host)
            try:
                found = await self._fetch(current, request, parse_discussions)
            except (HTTPStreamError, ProtocolError) as exc:
                failures.append("%s: %s: %s" % (host, exc.__class__.__name__, exc))
                continue
            if found is not None and host != self._discussion_host:
                log.info("Discussion list: %s answers", host)
                self._discussion_host = host
            return found
        log.warning("Loading contacts: neither discussion list answered (%s); going on "
                    "without discussions", "; ".join(failures))
        return None

    async def _get(self, current: Callable[[], bool], request, parse):
        """One request; None when it fails (logged) or the session changed meanwhile."""
        try:
            return await self._fetch(current, request, parse)
        except (HTTPStreamError, ProtocolError) as exc:
            log.warning("Loading contacts: %s: %s", exc.__class__.__name__, exc)
        return None

    async def _fetch(self, current: Callable[[], bool], request, parse):
        """One request, parsed; None when the session changed meanwhile.

        Raises:
            HTTPStreamError: it failed, or answered another status than 200.
            ProtocolError: the server refused (a ``RetcodeError``) or answered nonsense.
        """
        if not current():
            return None
        response = await self.stream.fetch(request)
        if not current():
            return None
        if response.status != 200:
            raise HTTPStreamError("HTTP %d from %s" % (
                response.status, request.selector.split("?")[0]))
        return parse(response.read())
