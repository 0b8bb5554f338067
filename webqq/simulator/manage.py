"""Friend requests and group membership through the simulator, and the account's answers.

manage: docs/protocol.rst §3.24, §5.8 - §5.10 and docs/media.rst §5 - §6 without HTTP.
Simulated people ask to be the account's friend, add it, accept its request; join,
leave or are removed from a group, ask to join one the account administers, answer the
account's own request to join. The account answers friend requests
(``allow_and_add2``, ``allow_added_request2``, ``deny_added_request2``) and join requests
(``op_group_join_req``), leaves a group (``quit_group2``) and sets its card
(``update_group_business_card2``). The friend lists and members change in the World
(``set_friends``, ``set_members``), so the lists (§3.7 - §3.9) show every change, and
every answer is recorded for /_sim/answers. It never touches a socket and never logs a
token.

The rules where no 2013 source shows the server (our design, kept strict):

* An answer needs a request: ``allow_*``/``deny_added_request2`` one from ``account``
  not answered yet, ``op_group_join_req`` one from ``req_uin`` to that group; and
  ``op_group_join_req`` an account that is the group's owner or an administrator
  (``mflag`` bit 0). A missing request, group or right answers 100001; a missing or
  mistyped key of ``r`` 100003 (as an unreadable ``r``), a bad ``op_type`` 100006.
* Accepting and adding back puts the requester in the account's list (category
  ``gid``, remark ``mname``) and tells the account's sessions a ``buddylist_change``;
  accepting only leaves the account's list as it is. A requester who is an account
  gets ``verify_pass`` and the account in its own list either way.
* A group's owner cannot leave it, nor be removed (QQ made the owner dissolve the
  group). A join or leave is told to every account in the group that is logged in
  (the 2013 samples show members and the newcomer receiving them), a request to join
  to its logged-in administrators.
* Replies: ``allow_and_add2`` the second-hand ``{"result1":0,"account","tuin","stat"}``;
  the other s.web2 calls ``{"retcode":0,"result":0}`` (eqq.lua read a number as the
  result); ``op_group_join_req`` ``{"retcode":0,"result":"ok"}`` as other d.web2 calls.
"""
import logging

from . import wire
from .errors import ControlError, Refusal, channel_refusal
from .events import EventSpec
from .sessions import STAT
from .world import WorldFriend, WorldMember

__all__ = ["JOIN_ALLOW", "JOIN_DENY", "Manage", "administers"]

log = logging.getLogger("webqq.simulator")

#: ``op_type`` of ``op_group_join_req``: 2 lets the requester in, 3 refuses (pidgin-lwqq).
JOIN_ALLOW, JOIN_DENY = 2, 3
# s.web2 management answers other than allow_and_add2's (see the module doc).
_DONE = {"retcode": 0, "result": 0}


def administers(group, qq: int) -> bool:
    """Whether ``qq`` is ``group``'s owner or one of its administrators."""
    member = group.member(qq)
    return qq == group.owner or (member is not None and member.admin)


class Manage:
    """Pending requests, membership changes and the answers given (see the module doc).

    Args:
        world: the loaded World (its friend lists and members change here).
        clock: unix time in seconds (the answers' ``time``).
        sessions: the ``Sessions`` (presence, reachability).
        chat: the ``ChatRouter`` items are pushed through.
    """

    def __init__(self, world, clock, sessions, chat):
        self.world = world
        self.clock = clock
        self.sessions = sessions
        self.chat = chat
        self._friend_requests = {}      # (account, requester) -> note
        self._join_requests = {}        # (group number, requester) -> note
        self._answers = {}              # account -> [answer records]

    def answers(self, qq: int) -> list:
        """/_sim/answers: what the account answered and changed, in order."""
        return list(self._answers.get(qq, []))

    def _record(self, account: int, call: str, **what) -> None:
        self._answers.setdefault(account, []).append(dict(call=call, time=int(self.clock()),
                                                          **what))

    def _tell(self, qq: int, spec: EventSpec) -> "dict | None":
        """Push ``spec`` to account ``qq`` if it is logged in; the item, or None."""
        try:
            return self.chat.push_event(qq, spec)
        except ControlError:
            return None

    def _befriend(self, qq: int, other: int, category: int = 0, remark: str = "") -> None:
        friends = [f for f in self.world.accounts[qq].friends if f.qq != other]
        self.world.set_friends(qq, friends + [WorldFriend(other, category, remark)])

    # --- friends: the control surface ----------------------------------------------------

    def _stranger(self, to: int, other: int) -> None:
        if other == to or self.world.accounts[to].friend(other) is not None:
            raise ValueError("from: %d is already a friend of %d" % (other, to))

    def _categories(self, qq: int) -> set:
        """The friend categories of account ``qq``, 0 (the default one) included."""
        return {0} | {c.index for c in self.world.accounts[qq].categories}

    def ask_friend(self, to: int, requester: int, note: str) -> dict:
        """``requester`` asks account ``to`` to be its friend: ``verify_required``.

        Raises:
            ValueError: already a friend. ControlError: ``to`` is not logged in.
        """
        self._stranger(to, requester)
        item = self.chat.push_event(to, EventSpec("system_message", sender=requester,
                                                  subtype="verify_required", text=note))
        self._friend_requests[(to, requester)] = note
        return item

    def added_by(self, to: int, other: int) -> dict:
        """``other`` added account ``to`` without asking: ``added_buddy_sig`` (the
        account's own list does not change)."""
        return self.chat.push_event(to, EventSpec("system_message", sender=other,
                                                  subtype="added_buddy_sig"))

    def accepted_by(self, to: int, other: int, category=None) -> dict:
        """``other`` accepted account ``to``'s request: they are in its list from now on,
        in ``category``; ``verify_pass``, or ``verify_pass_add`` naming the category.

        Raises:
            ValueError: already a friend, or no such category. ControlError: not logged in.
        """
        self._stranger(to, other)
        if category is not None and category not in self._categories(to):
            raise ValueError("category: %d has no category %r" % (to, category))
        spec = EventSpec("system_message", sender=other, subtype="verify_pass") \
            if category is None else EventSpec("system_message", sender=other,
                                                subtype="verify_pass_add",
                                                value={"group_id": category})
        item = self.chat.push_event(to, spec)
        self._befriend(to, other, category or 0)
        return item

    # --- friends: the account's answers (s.web2) -----------------------------------------

    def answer_friend(self, session, call: str, r: dict) -> dict:
        """allow_and_add2, allow_added_request2 or deny_added_request2 (``call``).

        Raises:
            Refusal: 100003 for a missing or mistyped key, 100001 for no such request or
                category (see the module doc).
        """
        qq, requester = session.qq, wire.as_int(r.get("account"))
        category, remark, note = r.get("gid", 0), r.get("mname", ""), r.get("msg", "")
        if requester is None or wire.as_int(category) is None or not isinstance(remark, str) \
                or not isinstance(note, str) or (call == "allow_and_add2" and "gid" not in r):
            raise Refusal(100003)
        category = wire.as_int(category)
        if (qq, requester) not in self._friend_requests or category not in self._categories(qq):
            log.info("%s of %d refused: no such request or category", call, qq)
            raise Refusal(100001)
        del self._friend_requests[(qq, requester)]
        accept = call != "deny_added_request2"
        if accept and requester in self.world.accounts:
            self._befriend(requester, qq)
            self._tell(requester, EventSpec("system_message", sender=qq,
                                            subtype="verify_pass"))
        self._record(qq, call, qq=requester, accept=accept, add=call == "allow_and_add2",
                     category=category, remark=remark, reason=note)
        log.info("%s: %d answered a friend request", call, qq)
        if call != "allow_and_add2":
            return dict(_DONE)
        self._befriend(qq, requester, category, remark)
        uin = self.world.uin(qq, requester)
        self._tell(qq, EventSpec("buddylist_change", sender=requester, value={
            "added_friends": [{"groupid": category, "uin": uin}], "removed_friends": []}))
        return {"retcode": 0, "result": {"result1": 0, "account": requester, "tuin": uin,
                                         "stat": STAT[self.sessions.presence(requester)]}}

    # --- groups: the control surface -------------------------------------------------------

    def _accounts_in(self, group) -> list:
        return [m.qq for m in group.members if m.qq in self.world.accounts]

    def _tell_group(self, receivers, group, subtype: str, person=None, note=None,
                    value=lambda viewer: {}) -> list:
        """A ``sys_g_msg`` to each of ``receivers`` that is logged in; the items.
        ``value(viewer)`` gives the keys that depend on who receives it."""
        items = []
        for qq in receivers:
            item = self._tell(qq, EventSpec("sys_g_msg", sender=person, group=group,
                                            subtype=subtype, text=note, value=value(qq)))
            if item is not None:
                items.append(item)
        return items

    def _admin_value(self, admin: int, removed: bool = False):
        """The administrator's keys of a join (or, ``removed``, a removal), in the order
        of pidgin-lwqq's samples."""
        world = self.world

        def value(viewer: int) -> dict:
            keys = {"op_type": 3} if removed else {}
            keys["admin_uin"] = world.uin(viewer, admin)
            if removed:
                keys["t_admin_uin"] = ""
            keys["admin_nick"] = world.person(admin).nick
            return keys
        return value

    def _admin(self, group, admin, member: int) -> int:
        admin = group.owner if admin is None else admin
        if not administers(group, admin) or admin == member:
            raise ValueError("admin: %d is not an administrator of group %d who can do that"
                             % (admin, group.number))
        return admin

    def _join(self, group, member: int, admin: int, receivers=None) -> list:
        self.world.set_members(group.number, list(group.members) + [WorldMember(member)])
        group = self.world.groups[group.number]
        log.info("%d joined group %d", member, group.number)
        if receivers is None:
            receivers = self._accounts_in(group)
        return self._tell_group(receivers, group, "group_join", person=member,
                                value=self._admin_value(admin))

    def _leave(self, group, member: int, admin=None) -> list:
        receivers = self._accounts_in(group)
        self.world.set_members(group.number, [m for m in group.members if m.qq != member])
        log.info("%d left group %d", member, group.number)
        value = (lambda viewer: {}) if admin is None else self._admin_value(admin, True)
        return self._tell_group(receivers, group, "group_leave", person=member, value=value)

    def change_member(self, group, member: int, change: str, admin=None) -> list:
        """``member`` joins (``change`` "join", let in by ``admin``: the owner unless
        named), leaves ("leave") or is removed by ``admin`` ("remove") from ``group``;
        the ``sys_g_msg`` items told.

        Raises:
            ValueError: a member joining, a non-member leaving, the owner leaving or
                removed, an ``admin`` who is not one.
        """
        inside = group.member(member) is not None
        if change == "join":
            if inside:
                raise ValueError("member: %d is in group %d already" % (member, group.number))
            return self._join(group, member, self._admin(group, admin, member))
        if not inside or member == group.owner:
            raise ValueError("member: %d is not a member of group %d who can leave it"
                             % (member, group.number))
        if change == "leave":
            return self._leave(group, member)
        return self._leave(group, member, self._admin(group, admin, member))

    def ask_to_join(self, group, requester: int, note: str) -> list:
        """``requester`` asks to join ``group``: ``group_request_join`` to each logged-in
        account that administers it.

        Raises:
            ValueError: already a member. ControlError: no administrator is logged in.
        """
        if group.member(requester) is not None:
            raise ValueError("member: %d is in group %d already" % (requester, group.number))
        admins = [qq for qq in self._accounts_in(group) if administers(group, qq)]
        items = self._tell_group(admins, group, "group_request_join", person=requester,
                                 note=note)
        if not items:
            raise ControlError("no administrator of group %d is logged in" % group.number)
        self._join_requests[(group.number, requester)] = note
        return items

    def answer_account(self, group, member: int, accept: bool, note: str, admin=None) -> list:
        """The account ``member``'s own request to join ``group`` is agreed or denied by
        ``admin`` (the owner unless named); on agreement it is a member.

        Raises:
            ValueError: not an account, a member already, or ``admin`` not one.
            ControlError: the account is not logged in.
        """
        if member not in self.world.accounts or group.member(member) is not None:
            raise ValueError("member: %d is not an account outside group %d"
                             % (member, group.number))
        admin = self._admin(group, admin, member)
        subtype = "group_request_join_agree" if accept else "group_request_join_deny"
        world = self.world
        item = self.chat.push_event(member, EventSpec(
            "sys_g_msg", group=group, subtype=subtype, text=note,
            value={"admin_uin": world.uin(member, admin)}))
        if not accept:
            return [item]
        others = self._accounts_in(group)
        return [item] + self._join(group, member, admin, receivers=others)

    # --- groups: the account's calls -------------------------------------------------------

    def answer_join(self, session, query: dict) -> dict:
        """op_group_join_req: let a requester in (``op_type`` 2) or refuse them (3).

        Raises:
            Refusal: 100006 for a bad op_type, 100001 for an unknown group, an account
                that does not administer it, or no request from ``req_uin``.
        """
        qq = session.qq
        op_type, note = wire.as_int(query.get("op_type")), query.get("msg") or ""
        if op_type not in (JOIN_ALLOW, JOIN_DENY):
            raise channel_refusal(100006)
        group = self.world.group_by_gid(query.get("group_uin"))
        requester = self.world.qq_of_uin(qq, query.get("req_uin"))
        if group is None or not administers(group, qq) \
                or (group.number, requester) not in self._join_requests:
            log.info("op_group_join_req of %d refused: no such group, right or request", qq)
            raise Refusal(100001)
        del self._join_requests[(group.number, requester)]
        accept = op_type == JOIN_ALLOW
        self._record(qq, "op_group_join_req", group=group.number, qq=requester, accept=accept,
                     reason=note)
        if accept:
            others = [a for a in self._accounts_in(group) if a != requester]
            self._join(group, requester, qq, receivers=others)
        if requester in self.world.accounts:
            subtype = "group_request_join_agree" if accept else "group_request_join_deny"
            self._tell(requester, EventSpec("sys_g_msg", group=self.world.groups[group.number],
                                            subtype=subtype, text=note,
                                            value={"admin_uin": self.world.uin(requester, qq)}))
        return {"retcode": 0, "result": "ok"}

    def _own_group(self, session, r: dict):
        """The group ``r.gcode`` names that the account is in, or Refusal(100001)."""
        group = self.world.group_by_code(r.get("gcode"))
        if group is None or group.member(session.qq) is None:
            raise Refusal(100001)
        return group

    def quit_group(self, session, r: dict) -> dict:
        """quit_group2: the account leaves the group (not its owner: 100001)."""
        group = self._own_group(session, r)
        if group.owner == session.qq:
            log.info("quit_group2 of %d refused: the owner cannot leave", session.qq)
            raise Refusal(100001)
        self._record(session.qq, "quit_group2", group=group.number)
        receivers = [qq for qq in self._accounts_in(group) if qq != session.qq]
        self.world.set_members(group.number, [m for m in group.members if m.qq != session.qq])
        self._tell_group(receivers, self.world.groups[group.number], "group_leave",
                         person=session.qq)
        return dict(_DONE)

    def set_card(self, session, r: dict) -> dict:
        """update_group_business_card2: the account's own card in the group (``name``;
        the other fields pidgin-lwqq may send are accepted and not kept)."""
        group = self._own_group(session, r)
        card = r.get("name")
        if card is not None and not isinstance(card, str):
            raise Refusal(100003)
        if card is not None:
            self.world.set_members(group.number, [
                WorldMember(m.qq, card, m.admin) if m.qq == session.qq else m
                for m in group.members])
        self._record(session.qq, "update_group_business_card2", group=group.number, card=card)
        return dict(_DONE)
