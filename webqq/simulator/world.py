"""The simulated world: accounts, people, friendships, groups and discussions.

world: data, loaded once. It reads a world description (a JSON file, a dict, or the
built-in ``world.json`` beside this module), checks every key, and draws the opaque
protocol ids the 2013 servers handed out (friend ``uin``, group ``gid``/``code``,
discussion ``did``) from the simulator's seeded ``random.Random``, once per load, so they
are stable across relinks and reproducible with a seed. It never opens a socket and knows
nothing of sessions: runtime state lives in ``state.py``'s parts. What it loaded changes
only through ``set_friends`` and ``set_members``: the friend lists and group members
that the 2013 servers changed at runtime (a friend request answered, a member joining
or leaving, a card set), which the management part (``manage.py``) applies; and
``add_account`` only adds: an account the embedding daemon's configuration names and
the file does not list.

Everyone is named by QQ number here; a ``uin`` is always "as seen by" a viewing account
(docs/protocol.rst §1.2: opaque per-session numbers for other users; the account's own uin is its
QQ number). A group is named by its public number, a discussion by a number the world
gives it (discussions have no public number in WebQQ; the control surface needs a name).

World file shape (every key but the marked ones optional)::

    {"options": {"era": "A", ...see WorldOptions...},
     "accounts": [{"qq": 10001*, "password": "...", "nick": "...", "captcha": "never",
                   "categories": [{"index": 1, "name": "Colleagues"}],
                   "friends": [{"qq": 20001*, "category": 1, "remark": "Bob (work)"}],
                   ...profile keys of a person...}],
     "people":   [{"qq": 20001*, "nick": "Alice", "status": "online", "gender": "female",
                   "country": "", "province": "", "city": "", "face": 0,
                   "long_nick": "", "client_type": 1, "vip_level": 0}],
     "groups":   [{"number": 30001*, "name": "...", "owner": 20001*, "memo": "",
                   "fingermemo": "", "createtime": 1366948800,
                   "members": [{"qq": 20001*, "card": "Alice@work", "admin": false}]}],
     "discussions": [{"number": 40001*, "name": "...", "owner": 20001*,
                      "members": [20001, 10001]}]}

An account is a person who can log in (it has a password); people are simulated users.
"""
import json
import os
import random
from dataclasses import dataclass, field, replace

from .digests import FRIEND_HASH_VARIANTS
from .wire import as_int

__all__ = [
    "WorldAccount", "WorldCategory", "WorldDiscussion", "WorldFriend", "WorldGroup",
    "WorldMember", "WorldOptions", "WorldPerson",
    "World", "WorldError", "DEFAULT_WORLD_FILE", "GENERATED_PASSWORD", "STATUSES",
    "load_world",
]

#: The built-in world: account 10001 (password "webqq-demo"), 10002, three people, one
#: group and one discussion.
DEFAULT_WORLD_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "world.json")
#: The password of an account ``World.add_account`` makes: the built-in world's.
GENERATED_PASSWORD = "webqq-demo"

#: Presence values of docs/protocol.rst §3.6 / §5.6 ("offline" only as a presence, not a request).
STATUSES = ("online", "away", "busy", "silent", "hidden", "callme", "offline")

# Opaque ids are drawn from this range: 10 digits, below 2**32, like every 2013 sample.
_ID_RANGE = (1_000_000_000, 4_294_967_295)
# QQ numbers of 2013 were 5 to 10 digits.
_QQ_RANGE = (10_000, 4_294_967_295)


class WorldError(ValueError):
    """Raised when a world description is not valid; the message names the key path."""


@dataclass(frozen=True)
class WorldOptions:
    """Per-world switches for behaviour docs/protocol.rst leaves to the simulator ([sim])."""

    #: "A": spring 2013 (check -> login -> login2), the primary target. "B": late 2013:
    #: /login answers a check_sig URL that sets p_skey, which d.web2/s.web2 then require.
    era: str = "A"
    #: /login's parameters: "strict" refuses, with ptuiCB('7',…) as the server did for
    #: bad parameters, a login whose aid, u1, h, from_ui, ptredirect, ptlang,
    #: webqq_type, login2qq, js_ver or t is missing or wrong, and in Era B one without
    #: login_sig or daid=164; "lenient" checks only account, code and password.
    login_checks: str = "strict"
    #: Order of poll2 result[]: "newest_first", as the 2013 server sent it (webqq-core
    #: loops from the end, lwqq walks from the tail, §3.15), or "oldest_first" (what
    #: pual_bot, iterating forward, assumed; §8.9).
    poll_order: str = "newest_first"
    #: Which discussion-list URL is served (§3.10): "d.web2" (channel/get_discu_list_new2,
    #: what webqq-core and lwqq used), "s.web2" (api/get_discus_list, the May 2013 eqq.js
    #: port's and twqq's), or "both" (both existed in 2013). The other one answers 404.
    discussion_list: str = "both"
    #: get_user_friends2 hash: "none" accepts anything (pual_bot Era A sends none), or
    #: one of "N", "O", "P", "Q" (§4.3): a hash that is present must then match. Not
    #: given: the era's (ERA_FRIENDS_HASH): none in Era A, N required in Era B.
    friends_hash: str = "none"
    #: With a hash variant: refuse (retcode 50) a request that carries no hash at all.
    #: Not given: true in Era B.
    friends_hash_required: bool = False
    #: Referer policy on d.web2/s.web2: "qq.com" (a Referer whose host ends in .qq.com),
    #: "strict" (one of docs/protocol.rst §1.4's constants) or "none".
    referer: str = "qq.com"
    #: Answer every Nth poll2 of a session with 116 and a new ptwebqq (0: only when
    #: /_sim/rotate asks).
    rotate_every: int = 0
    #: Seconds without a poll2 after which a session expires (next poll: 121); 0: never.
    idle_expiry: float = 300.0
    #: §7.3 silent drops: a send less than this many seconds after the previous one of
    #: the session is answered "ok" and dropped, as the 2013 server did at 0.5 s
    #: (pual_bot's README, 2013-04-28, and its MESSAGE_INTERVAL). 0: never.
    #: /_sim/dropped lists the drops.
    min_interval: float = 0.5
    #: §7.3: a send equal to the previous one of the session within this many seconds
    #: is answered "ok" and dropped, as the 2013 server did (pual_bot's README,
    #: 2013-05-10; its fix waits one more interval: 1.0 s in all). 0: never.
    dup_window: float = 1.0
    #: A send with the msg_id and content of one of the session's recent sends (the
    #: same message sent again after a lost answer) is answered "ok" and not delivered
    #: again. No source shows the 2013 server doing this (§7.2 [sim] only suggests it;
    #: twqq's README lists repeats arriving as a known bug): false, the faithful value,
    #: delivers a repeat again unless the two rules above drop it.
    drop_exact_repeats: bool = False
    #: get_friend_uin2 lookups allowed per session per minute; the rest are answered
    #: 99999 (§3.12: MC looked numbers up one at a time, warning that a burst got the
    #: account black-listed; no source gives the number, 20 is ours). 0: unlimited.
    lookup_limit: int = 20


@dataclass(frozen=True)
class WorldPerson:
    """A user's profile, as the info calls show it."""

    qq: int
    nick: str
    #: Presence of a simulated person; an account's presence follows its session.
    status: str = "online"
    #: §3.9 client_type of a simulated person: 1 is a PC client.
    client_type: int = 1
    face: int = 0
    gender: str = "unknown"
    country: str = ""
    province: str = ""
    city: str = ""
    long_nick: str = ""
    vip_level: int = 0


@dataclass(frozen=True)
class WorldCategory:
    """A friend-list category. Index 0 is the implicit "我的好友" and is never listed."""

    index: int
    name: str
    sort: int


@dataclass(frozen=True)
class WorldFriend:
    """One entry of an account's friend list."""

    qq: int
    category: int = 0
    remark: str = ""


def _first_by_qq(entries) -> dict:
    """qq -> the first of ``entries`` (friends or members) with that ``qq``."""
    found = {}
    for entry in entries:
        found.setdefault(entry.qq, entry)
    return found


@dataclass(frozen=True)
class WorldAccount:
    """A person who can log in."""

    person: WorldPerson
    password: str
    #: "never", "always" or "once" (the first check of this simulator run asks for one).
    captcha: str = "never"
    categories: tuple = ()
    friends: tuple = ()
    # qq -> the first WorldFriend entry for it: friend() in O(1) (a thousand friends
    # were scanned per lookup). Drawn from ``friends``; ``replace`` draws it again.
    _by_qq: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_qq", _first_by_qq(self.friends))

    @property
    def qq(self) -> int:
        return self.person.qq

    @property
    def nick(self) -> str:
        return self.person.nick

    def friend(self, qq: int):
        """The WorldFriend entry for ``qq``, or None."""
        return self._by_qq.get(qq)


@dataclass(frozen=True)
class WorldMember:
    """A group member: a card (group nickname) and the administrator flag."""

    qq: int
    card: str = ""
    admin: bool = False


@dataclass(frozen=True)
class WorldGroup:
    """A QQ group. ``number`` is the public number (§1.2 info_seq); gid/code are opaque."""

    number: int
    name: str
    owner: int
    members: tuple
    gid: int
    code: int
    memo: str = ""
    fingermemo: str = ""
    createtime: int = 1366948800
    # qq -> the first WorldMember entry for it, as WorldAccount's friends.
    _by_qq: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_qq", _first_by_qq(self.members))

    def member(self, qq: int):
        """The WorldMember entry for ``qq``, or None."""
        return self._by_qq.get(qq)


@dataclass(frozen=True)
class WorldDiscussion:
    """A discussion group; ``number`` only names it for the world and /_sim/."""

    number: int
    name: str
    owner: int
    members: tuple
    did: int
    #: The small per-discussion counter that get_discu_info and discu_message carry.
    info_seq: int


@dataclass
class World:
    """Everything loaded, plus the id maps drawn for it.

    ``uin(viewer, qq)`` and ``qq_of_uin(viewer, uin)`` translate between QQ numbers and
    the uins a viewing account sees; everything else is looked up by QQ number, group
    number or discussion number, or by the protocol's gid/code/did.
    """

    options: WorldOptions
    accounts: dict            # qq -> WorldAccount
    people: dict              # qq -> WorldPerson (accounts' profiles included)
    groups: dict              # number -> WorldGroup
    discussions: dict         # number -> WorldDiscussion
    rng: object = field(repr=False)
    #: The directory of the world file (pictures said by file name are read under it);
    #: None for a world given as a dict.
    folder: "str | None" = None
    _uins: dict = field(default_factory=dict, repr=False)      # (viewer, qq) -> uin
    _by_uin: dict = field(default_factory=dict, repr=False)    # (viewer, uin) -> qq
    # gid, code and did -> the group's or discussion's number. The ids are drawn once
    # and never change (set_members and add_account replace a group, keeping them),
    # and no group or discussion is added after load.
    _gids: dict = field(init=False, repr=False)
    _codes: dict = field(init=False, repr=False)
    _dids: dict = field(init=False, repr=False)
    # qq -> the accounts whose friend lists name it, in world order; None until asked
    # for again after set_friends or add_account changed a list.
    _listed_by: "dict | None" = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self._gids, self._codes, self._dids = {}, {}, {}
        for number, group in self.groups.items():
            self._gids.setdefault(group.gid, number)
            self._codes.setdefault(group.code, number)
        for number, discussion in self.discussions.items():
            self._dids.setdefault(discussion.did, number)

    def uin(self, viewer: int, qq: int) -> int:
        """The uin under which account ``viewer`` sees user ``qq``.

        An account sees itself under its QQ number. Everyone in the world got a uin at
        load; a stranger (a QQ number the world does not list, e.g. the sender of a
        friend request pushed through /_sim/event) gets one on first use.
        """
        if viewer == qq:
            return qq
        key = (viewer, qq)
        if key not in self._uins:
            self._assign_uin(viewer, qq)
        return self._uins[key]

    def qq_of_uin(self, viewer: int, uin) -> "int | None":
        """The QQ number behind ``uin`` as account ``viewer`` sees it, or None."""
        uin = as_int(uin)
        if uin is None:
            return None
        if uin == viewer:
            return viewer
        return self._by_uin.get((viewer, uin))

    def group_by_gid(self, gid):
        return self.groups.get(self._gids.get(as_int(gid)))

    def group_by_code(self, code):
        return self.groups.get(self._codes.get(as_int(code)))

    def discussion_by_did(self, did):
        return self.discussions.get(self._dids.get(as_int(did)))

    def listed_by(self, qq: int) -> tuple:
        """The QQ numbers of the accounts whose friend lists name ``qq``, in world order."""
        if self._listed_by is None:
            listed = {}
            for account in self.accounts.values():
                for friend in account.friends:
                    names = listed.setdefault(friend.qq, [])
                    if not names or names[-1] != account.qq:
                        names.append(account.qq)
            self._listed_by = {friend: tuple(names) for friend, names in listed.items()}
        return self._listed_by.get(qq, ())

    def groups_of(self, qq: int) -> list:
        """The groups ``qq`` is a member of, in world order."""
        return [g for g in self.groups.values() if g.member(qq) is not None]

    def discussions_of(self, qq: int) -> list:
        """The discussions ``qq`` is a member of, in world order."""
        return [d for d in self.discussions.values() if qq in d.members]

    def person(self, qq: int) -> WorldPerson:
        """The profile of ``qq``; a stranger gets a bare profile with the number as nick."""
        found = self.people.get(qq)
        if found is None:
            found = WorldPerson(qq=qq, nick=str(qq), status="offline")
        return found

    def add_account(self, qq: int, *, nick: str = "", password: str = GENERATED_PASSWORD
                    ) -> WorldAccount:
        """Add an account the world did not list (a daemon's configuration names more
        accounts than the world file): a friend of every person, a member of every
        group and discussion, so that anyone can talk to it at once.

        Args:
            qq: its QQ number; nobody in the world may have it yet.
            nick: its nick (default ``webqq-QQ``).
            password: what its login must give.

        Returns the new WorldAccount. Raises WorldError for a number that is no QQ
        number or is someone's already.
        """
        if not _QQ_RANGE[0] <= qq <= _QQ_RANGE[1]:
            raise WorldError("%d is not a QQ number (%d..%d)" % (qq, *_QQ_RANGE))
        if qq in self.people:
            raise WorldError("%d is %s" % (qq, "an account of the world already"
                                           if qq in self.accounts else
                                           "a person of the world, who cannot log in"))
        persons = sorted(p for p in self.people if p not in self.accounts)
        person = WorldPerson(qq=qq, nick=nick or "webqq-%d" % qq,
                             long_nick="an account the configuration added")
        account = WorldAccount(person=person, password=password,
                               friends=tuple(WorldFriend(qq=p) for p in persons))
        self.people[qq] = person
        self.accounts[qq] = account
        for number, group in list(self.groups.items()):
            self.groups[number] = replace(
                group, members=group.members + (WorldMember(qq=qq),))
        for number, discussion in list(self.discussions.items()):
            self.discussions[number] = replace(
                discussion, members=discussion.members + (qq,))
        for other in persons:
            self.uin(qq, other)
        self._listed_by = None
        return account

    def set_friends(self, qq: int, friends) -> None:
        """Replace account ``qq``'s friend list with ``friends`` (WorldFriend entries)."""
        self.accounts[qq] = replace(self.accounts[qq], friends=tuple(friends))
        self._listed_by = None

    def set_members(self, number: int, members) -> None:
        """Replace group ``number``'s members with ``members`` (WorldMember entries)."""
        self.groups[number] = replace(self.groups[number], members=tuple(members))

    def _assign_uin(self, viewer: int, qq: int) -> None:
        while True:
            uin = self.rng.randrange(*_ID_RANGE)
            if (viewer, uin) not in self._by_uin and uin not in self.people:
                break
        self._uins[(viewer, qq)] = uin
        self._by_uin[(viewer, uin)] = qq


# --- loading and validation --------------------------------------------------------------

_REQUIRED = object()


class _Fields:
    """Reads one JSON object of the world file: typed keys, unknown keys refused.

    Every error names the key path, e.g. ``accounts[0].friends[2].qq``.
    """

    def __init__(self, data, where: str):
        if not isinstance(data, dict):
            raise WorldError("%s: expected an object, got %s" % (where, _kind(data)))
        self._data = data
        self._where = where
        self._seen = set()

    def take(self, key, kind, default=_REQUIRED, choices=None):
        self._seen.add(key)
        path = "%s.%s" % (self._where, key) if self._where else key
        if key not in self._data:
            if default is _REQUIRED:
                raise WorldError("%s: missing" % path)
            return default
        value = self._data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise WorldError("%s: expected %s, got %s" % (path, _kind_name(kind), _kind(value)))
        if choices is not None and value not in choices:
            raise WorldError("%s: %r is not one of %s" % (path, value, ", ".join(map(str, choices))))
        return value

    def qq(self, key="qq"):
        value = self.take(key, int)
        if not _QQ_RANGE[0] <= value <= _QQ_RANGE[1]:
            raise WorldError("%s.%s: %d is not a QQ number (%d..%d)"
                             % (self._where, key, value, *_QQ_RANGE))
        return value

    def items(self, key, where_prefix=None):
        """(path, element) for each element of a list-valued key (missing: empty)."""
        values = self.take(key, list, [])
        prefix = where_prefix or ("%s.%s" % (self._where, key) if self._where else key)
        return [("%s[%d]" % (prefix, i), value) for i, value in enumerate(values)]

    def done(self):
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise WorldError("%s: unknown key %s" % (self._where or "world", ", ".join(
                repr(k) for k in unknown)))


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "?")


def _kind_name(kind) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}[kind]


def _read_person(fields: _Fields, qq: int) -> WorldPerson:
    return WorldPerson(
        qq=qq,
        nick=fields.take("nick", str, str(qq)),
        status=fields.take("status", str, "online", choices=STATUSES),
        client_type=fields.take("client_type", int, 1),
        face=fields.take("face", int, 0),
        gender=fields.take("gender", str, "unknown", choices=("male", "female", "unknown")),
        country=fields.take("country", str, ""),
        province=fields.take("province", str, ""),
        city=fields.take("city", str, ""),
        long_nick=fields.take("long_nick", str, ""),
        vip_level=fields.take("vip_level", int, 0),
    )


# Option -> (JSON type, allowed values or None); defaults are WorldOptions' own.
_OPTIONS = {
    "era": (str, ("A", "B")),
    "login_checks": (str, ("strict", "lenient")),
    "poll_order": (str, ("oldest_first", "newest_first")),
    "discussion_list": (str, ("both", "d.web2", "s.web2")),
    "friends_hash": (str, ("none",) + FRIEND_HASH_VARIANTS),
    "friends_hash_required": (bool, None),
    "referer": (str, ("qq.com", "strict", "none")),
    "rotate_every": (int, None),
    "idle_expiry": (float, None),
    "min_interval": (float, None),
    "dup_window": (float, None),
    "drop_exact_repeats": (bool, None),
    "lookup_limit": (int, None),
}


#: The friend-list hash each era's server required unless the world says otherwise
#: (§4.3): none was enforced on the spring 2013 clients (pual_bot sent none); late 2013
#: wanted one, N when pual_bot@ce65a04 (2013-08-15) adapted to the new protocol.
ERA_FRIENDS_HASH = {"A": ("none", False), "B": ("N", True)}


def _read_options(data) -> WorldOptions:
    fields = _Fields(data, "options")
    defaults = WorldOptions()
    values = {key: fields.take(key, kind, getattr(defaults, key), choices=choices)
              for key, (kind, choices) in _OPTIONS.items()}
    fields.done()
    variant, required = ERA_FRIENDS_HASH[values["era"]]
    if "friends_hash" not in data:
        values["friends_hash"] = variant
    if "friends_hash_required" not in data:
        values["friends_hash_required"] = required
    return WorldOptions(**values)


def _read_account(where: str, data, people: dict) -> WorldAccount:
    fields = _Fields(data, where)
    qq = fields.qq()
    password = fields.take("password", str)
    captcha = fields.take("captcha", str, "never", choices=("never", "always", "once"))
    categories = []
    for path, item in fields.items("categories"):
        cat = _Fields(item, path)
        index = cat.take("index", int)
        if index < 1:
            raise WorldError("%s.index: category 0 is the implicit default; use 1 or more" % path)
        categories.append(WorldCategory(index=index, name=cat.take("name", str),
                                        sort=cat.take("sort", int, index)))
        cat.done()
    friend_items = fields.items("friends")
    person = _read_person(fields, qq)
    fields.done()
    friends = []
    indexes = {c.index for c in categories}
    for path, item in friend_items:
        entry = _Fields(item, path)
        friend = WorldFriend(qq=entry.qq(), category=entry.take("category", int, 0),
                             remark=entry.take("remark", str, ""))
        entry.done()
        if friend.category and friend.category not in indexes:
            raise WorldError("%s.category: no category %d in %s.categories"
                             % (path, friend.category, where))
        friends.append(friend)
    people[qq] = person
    return WorldAccount(person=person, password=password, captcha=captcha,
                        categories=tuple(categories), friends=tuple(friends))


def load_world(source=None, rng=None) -> World:
    """Load and validate a world, drawing its opaque ids.

    Args:
        source: None for the built-in world; a path to a JSON file; a dict of the file's
            shape; or a World (returned as is).
        rng: the ``random.Random`` that draws uins, gids, codes and dids (and later the
            uins of strangers). Seed it for reproducible ids.

    Returns:
        The World.

    Raises:
        WorldError: the file is not JSON, or a key is missing, unknown, mistyped or
            refers to someone the world does not list. The message names the key path.
        OSError: the file cannot be read.
    """
    if isinstance(source, World):
        return source
    rng = rng if rng is not None else random.Random()
    top = _Fields(_read_source(DEFAULT_WORLD_FILE if source is None else source), "")
    options = _read_options(top.take("options", dict, {}))
    people = _read_people(top)
    accounts = _read_accounts(top, people)
    numbers = set()                     # group and discussion numbers share one space
    group_specs = _read_groups(top, people, numbers)
    discussion_specs = _read_discussions(top, people, numbers)
    top.done()
    world = _draw_world(options, accounts, people, group_specs, discussion_specs, rng)
    if source is None or isinstance(source, (str, os.PathLike)):
        world.folder = os.path.dirname(os.path.abspath(DEFAULT_WORLD_FILE if source is None
                                                        else source))
    return world


def _read_source(source):
    """The world's JSON data: a file's content, or ``source`` itself (a dict)."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    with open(source, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError as exc:
            raise WorldError("%s: not JSON: %s" % (source, exc)) from None


def _read_people(top: _Fields) -> dict:
    """``people``: QQ number -> WorldPerson (accounts are added by ``_read_accounts``)."""
    people = {}
    for path, item in top.items("people"):
        fields = _Fields(item, path)
        qq = fields.qq()
        if qq in people:
            raise WorldError("%s.qq: %d is listed twice" % (path, qq))
        people[qq] = _read_person(fields, qq)
        fields.done()
    return people


def _read_accounts(top: _Fields, people: dict) -> dict:
    """``accounts``: QQ number -> WorldAccount; each friend must be someone the world lists."""
    accounts = {}
    account_paths = []
    for path, item in top.items("accounts"):
        if isinstance(item, dict) and item.get("qq") in people:
            raise WorldError("%s.qq: %r is listed twice" % (path, item["qq"]))
        account = _read_account(path, item, people)
        accounts[account.qq] = account
        account_paths.append((path, account))
    if not accounts:
        raise WorldError("accounts: the world needs at least one account")
    for path, account in account_paths:
        for i, friend in enumerate(account.friends):
            if friend.qq not in people:
                raise WorldError("%s.friends[%d].qq: nobody with QQ number %d in the world"
                                 % (path, i, friend.qq))
    return accounts


def _known(people: dict, path: str, qq: int) -> int:
    if qq not in people:
        raise WorldError("%s: nobody with QQ number %d in the world" % (path, qq))
    return qq


def _chat_number(fields: _Fields, path: str, numbers: set) -> int:
    """A group's or discussion's ``number``, unique among both."""
    number = fields.qq("number")
    if number in numbers:
        raise WorldError("%s.number: %d is already a group or discussion" % (path, number))
    numbers.add(number)
    return number


def _read_groups(top: _Fields, people: dict, numbers: set) -> list:
    """``groups``: the keyword arguments of each WorldGroup but its drawn gid and code."""
    specs = []
    for path, item in top.items("groups"):
        fields = _Fields(item, path)
        number = _chat_number(fields, path, numbers)
        members = []
        for mpath, mitem in fields.items("members"):
            mfields = _Fields(mitem, mpath)
            members.append(WorldMember(qq=_known(people, mpath + ".qq", mfields.qq()),
                                       card=mfields.take("card", str, ""),
                                       admin=mfields.take("admin", bool, False)))
            mfields.done()
        owner = _known(people, path + ".owner", fields.qq("owner"))
        if owner not in {m.qq for m in members}:
            members.insert(0, WorldMember(qq=owner))
        specs.append(dict(
            number=number, name=fields.take("name", str), owner=owner,
            members=tuple(members), memo=fields.take("memo", str, ""),
            fingermemo=fields.take("fingermemo", str, ""),
            createtime=fields.take("createtime", int, 1366948800)))
        fields.done()
    return specs


def _read_discussions(top: _Fields, people: dict, numbers: set) -> list:
    """``discussions``: the keyword arguments of each WorldDiscussion but its drawn ids."""
    specs = []
    for path, item in top.items("discussions"):
        fields = _Fields(item, path)
        number = _chat_number(fields, path, numbers)
        members = []
        for mpath, qq in fields.items("members"):
            if not isinstance(qq, int) or isinstance(qq, bool):
                raise WorldError("%s: expected a QQ number, got %s" % (mpath, _kind(qq)))
            members.append(_known(people, mpath, qq))
        owner = _known(people, path + ".owner", fields.qq("owner"))
        if owner not in members:
            members.insert(0, owner)
        specs.append(dict(number=number, name=fields.take("name", str),
                          owner=owner, members=tuple(members)))
        fields.done()
    return specs


def _draw_world(options, accounts, people, group_specs, discussion_specs, rng) -> World:
    """The World, every opaque id drawn now in a fixed order, so one seed gives one world."""
    drawn = set()

    def fresh_id():
        while True:
            value = rng.randrange(*_ID_RANGE)
            if value not in drawn and value not in people:
                drawn.add(value)
                return value

    groups = {}
    for spec in group_specs:
        groups[spec["number"]] = WorldGroup(gid=fresh_id(), code=fresh_id(), **spec)
    discussions = {}
    for spec in discussion_specs:
        discussions[spec["number"]] = WorldDiscussion(
            did=fresh_id(), info_seq=rng.randrange(2, 100), **spec)
    world = World(options=options, accounts=accounts, people=people, groups=groups,
                  discussions=discussions, rng=rng)
    for viewer in sorted(accounts):
        for qq in sorted(people):
            world.uin(viewer, qq)
    return world
