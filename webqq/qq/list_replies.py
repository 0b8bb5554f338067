"""The replies that list the account's world: friends and their categories, groups and
their members, discussions and theirs, QQ number lookups and who is online (§3.7 -
§3.13). Each item of a list is an ``...Entry`` (``FriendEntry``, ``GroupEntry``,
``DiscussionEntry``, ``CategoryEntry``): a line of the server's reply, not the client's
contact model.

list_replies: no I/O; literal bytes in, a frozen value or a ``ProtocolError`` out.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from webqq.qq.errors import MalformedReply
from webqq.qq.reply import ReplyFields, json_excerpt, result_fields, result_of

__all__ = [
    "CategoryEntry", "FriendEntry", "FriendList", "GroupEntry", "GroupList", "GroupMember",
    "GroupInfo", "DiscussionEntry", "DiscussionList", "DiscussionMember", "DiscussionInfo",
    "QQLookup", "OnlineBuddy",
    "parse_friends", "parse_groups", "parse_group_info", "parse_discussions",
    "parse_discussion_info", "parse_friend_uin", "parse_online_buddies",
]


@dataclass(frozen=True)
class CategoryEntry:
    """A friend category. Index 0, the default "我的好友", is never listed."""
    index: int
    sort: int
    name: str


@dataclass(frozen=True)
class FriendEntry:
    """One friend of ``get_user_friends2``.

    Attributes:
        uin: the friend's uin for this session (send target).
        nick: the nickname ("" when ``info`` lacks the friend).
        markname: our remark name for them, or None.
        category: the category index (0: the default category).
        face: the avatar id.
        vip_level: 0 for none.
    """
    uin: int
    nick: str
    markname: Optional[str]
    category: int
    face: int
    vip_level: int

    @property
    def display_name(self) -> str:
        """The remark name if we gave one, else the nickname."""
        return self.markname or self.nick


@dataclass(frozen=True)
class FriendList:
    """The reply of ``get_user_friends2``: friends in the server's order."""
    friends: Tuple[FriendEntry, ...]
    categories: Tuple[CategoryEntry, ...]


def parse_friends(body: bytes) -> FriendList:
    """Parse the friend list; ``friends[]``, ``info[]``, ``marknames[]`` and
    ``vipinfo[]`` are joined by uin.

    Args:
        body: the reply of ``build_friends``.

    Returns:
        The ``FriendList``.

    Raises:
        RetcodeError: e.g. ``HASH_WRONG`` (50; recompute with the current ptwebqq or
            another variant), ``NO_COOKIE`` (100101).
        MalformedReply: no ``friends`` array, or an entry without an integer ``uin``.
    """
    result = result_fields(body, "get_user_friends2")
    info = {item.id("uin"): item for item in result.objects("info", [])}
    marknames = {item.id("uin"): item.string("markname")
                 for item in result.objects("marknames", [])}
    vip_levels = {item.id("u"): item.number("vip_level", 0)
                  for item in result.objects("vipinfo", [])}
    friends = []
    for member in result.objects("friends"):
        uin = member.id("uin")
        details = info.get(uin)
        friends.append(FriendEntry(
            uin=uin, nick=details.string("nick", "") if details else "",
            markname=marknames.get(uin), category=member.number("categories", 0),
            face=details.number("face", 0) if details else 0,
            vip_level=vip_levels.get(uin, 0)))
    categories = tuple(CategoryEntry(item.number("index"), item.number("sort", 0),
                                item.string("name"))
                       for item in result.objects("categories", []))
    return FriendList(tuple(friends), categories)


@dataclass(frozen=True)
class GroupEntry:
    """One group of ``get_group_name_list_mask2``.

    Attributes:
        gid: the send target (``send_qun_msg2``) and poll ``from_uin``.
        code: the key of ``get_group_info_ext2`` and poll ``group_code``.
        name: the group's name.
        markname: our remark name for it, or None.
        mask: notifications: 0 normal, 1 without prompt, 2 blocked.
    """
    gid: int
    code: int
    name: str
    markname: Optional[str]
    mask: int


@dataclass(frozen=True)
class GroupList:
    """The reply of ``get_group_name_list_mask2``."""
    groups: Tuple[GroupEntry, ...]

    def by_code(self, code: int) -> Optional[GroupEntry]:
        """The group whose code is ``code`` (a poll's ``group_code``), or None."""
        return next((group for group in self.groups if group.code == code), None)


def parse_groups(body: bytes) -> GroupList:
    """Parse the group list.

    Args:
        body: the reply of ``build_groups``.

    Returns:
        The ``GroupList`` (possibly empty).

    Raises:
        RetcodeError: e.g. ``MALFORMED_REQUEST`` (100003).
        MalformedReply: an entry without integer ``gid``/``code`` or a string ``name``.
    """
    result = result_fields(body, "get_group_name_list_mask2")
    masks = {item.id("gid"): item.number("mask", 0)
             for item in result.objects("gmasklist", [])}
    marknames = {item.id("uin"): item.string("markname")
                 for item in result.objects("gmarklist", [])}
    groups = []
    for item in result.objects("gnamelist", []):
        gid = item.id("gid")
        groups.append(GroupEntry(gid=gid, code=item.id("code"), name=item.string("name"),
                            markname=marknames.get(gid), mask=masks.get(gid, 0)))
    return GroupList(tuple(groups))


# stat numbers of get_group_info_ext2 as the status names used everywhere else (§3.9)
_STATS = {10: "online", 20: "offline", 30: "away", 40: "hidden", 50: "busy", 60: "callme",
          70: "silent"}


@dataclass(frozen=True)
class GroupMember:
    """One member of ``get_group_info_ext2``.

    Attributes:
        uin: the member's uin for this session (poll ``send_uin``).
        nick: the nickname ("" when ``minfo`` lacks the member).
        card: the group card, or None.
        is_admin: bit 0 of ``mflag``.
        status: one of ``STATUSES`` or ``"offline"`` (absent from ``stats``).
        client_type: 1-10 PC, 21-24 mobile, 41 WebQQ, 42 pad; None when offline.
        gender: ``male``, ``female`` or ``unknown``.
    """
    uin: int
    nick: str
    card: Optional[str]
    is_admin: bool
    status: str
    client_type: Optional[int]
    gender: str

    @property
    def display_name(self) -> str:
        """The group card if the member set one, else the nickname (PB, TW)."""
        return self.card or self.nick


@dataclass(frozen=True)
class GroupInfo:
    """The reply of ``get_group_info_ext2``.

    Attributes:
        gid, code, name: as in ``GroupEntry``.
        owner_uin: the owner's uin.
        memo: the announcement; ``fingermemo``: the short introduction.
        createtime: unix seconds, or None.
        members: in ``ginfo.members`` order.
    """
    gid: int
    code: int
    name: str
    owner_uin: int
    memo: str
    fingermemo: str
    createtime: Optional[int]
    members: Tuple[GroupMember, ...]

    def member(self, uin: int) -> Optional[GroupMember]:
        """The member whose uin is ``uin`` (a poll's ``send_uin``), or None."""
        return next((member for member in self.members if member.uin == uin), None)


def parse_group_info(body: bytes) -> GroupInfo:
    """Parse a group's details and members; ``ginfo.members``, ``minfo``, ``cards``
    and ``stats`` are joined by uin.

    Args:
        body: the reply of ``build_group_info``.

    Returns:
        The ``GroupInfo``.

    Raises:
        RetcodeError: e.g. ``BAD_GROUP_CODE`` (100001) for an unknown code.
        MalformedReply: no ``ginfo`` object or mistyped keys.
    """
    result = result_fields(body, "get_group_info_ext2")
    ginfo = result.object("ginfo")
    minfo = {item.id("uin"): item for item in result.objects("minfo", [])}
    cards = {item.id("muin"): item.string("card") for item in result.objects("cards", [])}
    stats = {item.id("uin"): item for item in result.objects("stats", [])}
    members = []
    for item in ginfo.objects("members", []):
        uin = item.id("muin")
        details, stat = minfo.get(uin), stats.get(uin)
        members.append(GroupMember(
            uin=uin, nick=details.string("nick", "") if details else "",
            card=cards.get(uin), is_admin=bool(item.number("mflag", 0) & 1),
            status=_STATS.get(stat.number("stat", 10), "online") if stat else "offline",
            client_type=stat.number("client_type", None) if stat else None,
            gender=details.string("gender", "unknown") if details else "unknown"))
    return GroupInfo(gid=ginfo.id("gid"), code=ginfo.id("code"),
                     name=ginfo.string("name"), owner_uin=ginfo.id("owner"),
                     memo=ginfo.string("memo", ""), fingermemo=ginfo.string("fingermemo", ""),
                     createtime=ginfo.number("createtime", None), members=tuple(members))


@dataclass(frozen=True)
class DiscussionEntry:
    """One discussion group: ``did``, ``name`` and the notification ``mask``."""
    did: int
    name: str
    mask: int


@dataclass(frozen=True)
class DiscussionList:
    """The reply of ``get_discus_list``."""
    discussions: Tuple[DiscussionEntry, ...]


def parse_discussions(body: bytes) -> DiscussionList:
    """Parse the discussion list (either URL of §3.10).

    Args:
        body: the reply of ``build_discussions``.

    Returns:
        The ``DiscussionList`` (possibly empty).

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: an entry without an integer ``did`` or a string ``name``.
    """
    result = result_fields(body, "get_discus_list")
    masks = {item.id("did"): item.number("mask", 0)
             for item in result.objects("dmasklist", [])}
    return DiscussionList(tuple(
        DiscussionEntry(did=item.id("did"), name=item.string("name"),
                        mask=masks.get(item.id("did"), 0))
        for item in result.objects("dnamelist", [])))


@dataclass(frozen=True)
class DiscussionMember:
    """One member of ``get_discu_info``: ``qq`` is the real number (``ruin``) or None;
    ``status`` one of ``STATUSES`` or ``"offline"``."""
    uin: int
    qq: Optional[int]
    nick: str
    status: str
    client_type: Optional[int]


@dataclass(frozen=True)
class DiscussionInfo:
    """The reply of ``get_discu_info``."""
    did: int
    name: str
    owner_uin: int
    members: Tuple[DiscussionMember, ...]

    def member(self, uin: int) -> Optional[DiscussionMember]:
        """The member whose uin is ``uin`` (a poll's ``send_uin``), or None."""
        return next((member for member in self.members if member.uin == uin), None)


def parse_discussion_info(body: bytes) -> DiscussionInfo:
    """Parse a discussion's details; ``mem_list``, ``mem_info`` and ``mem_status``
    are joined by uin.

    Args:
        body: the reply of ``build_discussion_info``.

    Returns:
        The ``DiscussionInfo``.

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: no ``info`` object or mistyped keys.
    """
    result = result_fields(body, "get_discu_info")
    info = result.object("info")
    nicks = {item.id("uin"): item.string("nick", "")
             for item in result.objects("mem_info", [])}
    statuses = {item.id("uin"): item for item in result.objects("mem_status", [])}
    members = []
    for item in info.objects("mem_list", []):
        uin = item.id("mem_uin")
        status = statuses.get(uin)
        members.append(DiscussionMember(
            uin=uin, qq=item.id("ruin", None), nick=nicks.get(uin, ""),
            status=status.string("status", "online") if status else "offline",
            client_type=status.number("client_type", None) if status else None))
    return DiscussionInfo(did=info.id("did"), name=info.string("discu_name"),
                          owner_uin=info.id("discu_owner"), members=tuple(members))


@dataclass(frozen=True)
class QQLookup:
    """The reply of ``get_friend_uin2``: ``uin`` (as asked) belongs to ``qq`` (for a
    group code: the group's public number)."""
    uin: int
    qq: int


def parse_friend_uin(body: bytes) -> QQLookup:
    """Parse a uin -> QQ number lookup.

    Args:
        body: the reply of ``build_friend_uin``.

    Returns:
        The ``QQLookup``.

    Raises:
        RetcodeError: ``LOOKUP_REFUSED`` (99999) or ``VFWEBQQ_EXPIRED`` (100000): the
            server refuses lookups; stop asking for a while.
        MalformedReply: ``uin`` or ``account`` missing or not integers.
    """
    result = result_fields(body, "get_friend_uin2")
    return QQLookup(uin=result.id("uin"), qq=result.id("account"))


@dataclass(frozen=True)
class OnlineBuddy:
    """One entry of ``get_online_buddies2``."""
    uin: int
    status: str
    client_type: Optional[int]


def parse_online_buddies(body: bytes) -> Tuple[OnlineBuddy, ...]:
    """Parse the online friends.

    Args:
        body: the reply of ``build_online_buddies``.

    Returns:
        The online friends (offline ones are not listed).

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: ``result`` is not an array of ``{uin, status}`` objects.
    """
    endpoint = "get_online_buddies2"
    result = result_of(body, endpoint)
    if not isinstance(result, list):
        raise MalformedReply(endpoint, "result is not an array", json_excerpt(result))
    buddies = []
    for i, item in enumerate(result):
        fields = ReplyFields(endpoint, item, "result[%d]" % i)
        buddies.append(OnlineBuddy(fields.id("uin"), fields.string("status"),
                                   fields.number("client_type", None)))
    return tuple(buddies)
