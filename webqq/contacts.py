"""The contact cache: friends, groups with their members, discussions with theirs.

contacts: values and lookups only. ``WebQQClient`` fills a ``Contacts`` from the
protocol's list replies and replaces it whole on every refresh; nothing here does I/O.
Naming follows the project: ``uin`` is a per-session id, ``qq`` a real account number,
``gid``/``code`` a group's two opaque ids and ``number`` its public number, ``did`` a
discussion's id. Any of them may be unknown (None) when the server did not say.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional

__all__ = ["Friend", "Member", "Group", "Discussion", "Contacts"]


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
    """A member of a group or discussion: ``card`` is the group card (groups only)."""
    uin: int
    qq: Optional[int]
    nick: str
    card: Optional[str] = None

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
