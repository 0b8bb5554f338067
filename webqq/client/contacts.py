"""The contact cache: friends, groups with their members, discussions with theirs.

contacts: the values and lookups of ``Contacts``, and ``ContactLoader``, which fills a new
``Contacts`` through the client's ``HTTPStream`` with ``webqq.qq`` requests and
parsers (it never opens a socket, never parses bytes). ``WebQQClient`` replaces its
contacts whole on every refresh.
Naming follows the project: ``uin`` is a per-session id, ``qq`` a real account number,
``gid``/``code`` a group's two opaque ids and ``number`` its public number, ``did`` a
discussion's id. Any of them may be unknown (None) when the server did not say.
"""
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from webqq.http.errors import HTTPStreamError
from webqq.qq import (
    HASH_VARIANTS, ProtocolError, QQRetcode, RetcodeError, build_discussion_info,
    build_discussions, build_friend_uin, build_friends, build_group_info, build_groups,
    friends_hash, parse_discussion_info, parse_discussions, parse_friend_uin, parse_friends,
    parse_group_info, parse_groups)

__all__ = ["Friend", "Member", "Group", "Discussion", "Contacts", "ContactLoader"]

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


class _Load:
    """One run of ``ContactLoader.load``: whether its session is still the current one,
    and whether the server refused QQ-number lookups during it. Kept per run, so that a
    stale load and a new one never share it."""

    __slots__ = ("current", "refused")

    def __init__(self, current: Callable[[], bool]) -> None:
        self.current = current
        self.refused = False


class ContactLoader:
    """Loads the lists of §2.8-§2.13 one request at a time.

    Args:
        stream: the client's ``HTTPStream`` (its cookie jar carries the session).
        clock: wall-clock seconds, for the requests' ``t`` stamps.
        lookup_qq: also ask ``get_friend_uin2`` for the QQ number of every friend and
            member and the public number of every group, one at a time (MC: parallel
            lookups got accounts black-listed); answers are cached until ``forget()``.
    """

    def __init__(self, stream: Any, clock: Callable[[], float], lookup_qq: bool = True):
        self.stream = stream
        self.clock = clock
        self.lookup_qq = lookup_qq
        self._numbers: Dict[int, int] = {}     # uin -> QQ number; -code -> group number
        # The friend-list hash the server accepted last (None: no hash, as PB sent in
        # spring 2013); the server's algorithm rotated during 2013 (§3.3, §7.1).
        self._hash_variant: Optional[str] = None

    def forget(self) -> None:
        """Drop the cached numbers: a new login may hand out new uins (LQ)."""
        self._numbers.clear()

    def qq_of(self, uin: int) -> Optional[int]:
        """A QQ number learnt by an earlier lookup, or None."""
        return self._numbers.get(uin)

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
        run = _Load(current)
        t = lambda: int(self.clock() * 1000)  # noqa: E731
        friend_list = await self._friends(run, qq, ptwebqq, vfwebqq)
        group_list = await self._get(run, build_groups(vfwebqq=vfwebqq),
                                     parse_groups)
        discussion_list = await self._get(run, build_discussions(
            clientid=clientid, psessionid=psessionid, vfwebqq=vfwebqq, t=t()),
            parse_discussions)
        if not current():
            return None
        contacts = Contacts(loaded_at=now)
        if friend_list is None:
            contacts.friends = dict(old.friends)
        for f in friend_list.friends if friend_list else ():
            contacts.friends[f.uin] = Friend(f.uin, await self._lookup(run, f.uin, vfwebqq),
                                             f.nick, f.markname)
        if group_list is None:
            contacts.groups = dict(old.groups)
        for g in group_list.groups if group_list else ():
            info = await self._get(run, build_group_info(g.code, vfwebqq=vfwebqq, t=t()),
                                   parse_group_info)
            members = {} if info is None else {
                m.uin: Member(m.uin, await self._lookup(run, m.uin, vfwebqq), m.nick, m.card,
                              "owner" if m.uin == info.owner_uin else
                              "admin" if m.is_admin else "member")
                for m in info.members}
            number = await self._lookup(run, g.code, vfwebqq, lookup_type=4)
            contacts.groups[g.gid] = Group(g.gid, g.code, number, g.name, g.markname, members)
        if discussion_list is None:
            contacts.discussions = dict(old.discussions)
        for d in discussion_list.discussions if discussion_list else ():
            info = await self._get(run, build_discussion_info(
                d.did, clientid=clientid, psessionid=psessionid, vfwebqq=vfwebqq, t=t()),
                parse_discussion_info)
            members = {} if info is None else {
                m.uin: Member(m.uin, m.qq, m.nick,
                              role="owner" if m.uin == info.owner_uin else "member")
                for m in info.members}
            contacts.discussions[d.did] = Discussion(d.did, d.name, members)
        return contacts if current() else None

    async def _friends(self, run: "_Load", qq: int, ptwebqq: str, vfwebqq: str):
        """The friend list, with the hash the server wants: the one that worked last,
        then no hash, then every variant of §3.3 while the server answers 50."""
        variants = [self._hash_variant] + [v for v in (None,) + HASH_VARIANTS
                                           if v != self._hash_variant]
        for variant in variants:
            if variant is not None and not ptwebqq:
                continue
            hash_value = None if variant is None else friends_hash(qq, ptwebqq,
                                                                   variant)
            try:
                found = await self._get(run, build_friends(
                    vfwebqq=vfwebqq, hash_value=hash_value), parse_friends,
                    raise_hash_wrong=True)
            except RetcodeError:
                continue
            if found is not None and variant != self._hash_variant:
                log.info("Friend list: the server takes hash variant %s", variant or "none")
                self._hash_variant = variant
            return found
        log.warning("Loading contacts: no friend-list hash variant was accepted")
        return None

    async def _get(self, run: "_Load", request, parse, raise_hash_wrong: bool = False):
        """One request; None when it fails or the session changed meanwhile."""
        if not run.current():
            return None
        try:
            response = await self.stream.fetch(request)
            if not run.current():
                return None
            if response.status != 200:
                raise HTTPStreamError("HTTP %d" % response.status)
            return parse(response.read())
        except RetcodeError as exc:
            if raise_hash_wrong and exc.retcode is QQRetcode.HASH_WRONG:
                raise
            if exc.retcode is QQRetcode.LOOKUP_REFUSED:
                run.refused = True          # stop asking for the rest of this load
            log.warning("Loading contacts: %s", exc)
        except (HTTPStreamError, ProtocolError) as exc:
            log.warning("Loading contacts: %s: %s", exc.__class__.__name__, exc)
        return None

    async def _lookup(self, run: "_Load", uin: int, vfwebqq: str,
                      lookup_type: int = 1) -> Optional[int]:
        """The QQ number (``lookup_type`` 4: a group's public number) behind ``uin``."""
        key = uin if lookup_type == 1 else -uin
        if key in self._numbers or not self.lookup_qq or run.refused:
            return self._numbers.get(key)
        found = await self._get(run, build_friend_uin(
            uin, vfwebqq=vfwebqq, t=int(self.clock() * 1000), lookup_type=lookup_type),
            parse_friend_uin)
        if found is not None:
            self._numbers[key] = found.qq
            return found.qq
        return None
