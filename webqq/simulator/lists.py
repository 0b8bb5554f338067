"""Contact lists and lookups: what the info server (s.web2) and a few d.web2 calls answer.

lists: §3.7 - §3.13 without HTTP, as a viewing account sees the world (uins
drawn for that account, presence from the sessions). It changes nothing, never touches a
socket and never logs a token.
"""
import logging

from . import wire
from .digests import friend_list_hash
from .errors import Refusal, channel_refusal
from .sessions import STAT

__all__ = ["Lists", "LOOKUP_WINDOW"]

log = logging.getLogger("webqq.simulator")

#: Seconds over which get_friend_uin2 lookups are counted against ``lookup_limit``.
LOOKUP_WINDOW = 60.0


class Lists:
    """The friend, group and discussion lists, their details, and number lookups.

    Args:
        world: the loaded World.
        clock: unix time in seconds (the lookup rate limit).
        sessions: the ``Sessions`` presence comes from.
    """

    def __init__(self, world, clock, sessions):
        self.world = world
        self.options = world.options
        self.clock = clock
        self.sessions = sessions

    def friends(self, session, r: dict) -> dict:
        """api/get_user_friends2, with the world's hash policy (§3.7 [sim]).

        Raises:
            Refusal: 50 when the policy checks hashes and the hash is wrong (or absent
                and required).
        """
        variant = self.options.friends_hash
        if variant != "none":
            sent = r.get("hash")
            if sent is None:
                if self.options.friends_hash_required:
                    raise channel_refusal(50)
            elif not isinstance(sent, str) or sent.upper() != friend_list_hash(
                    session.qq, session.ptwebqq, variant):
                log.info("friend list for %d refused: wrong hash", session.qq)
                raise channel_refusal(50)
        # The World's current entry: friend requests answered change the list (manage.py).
        account, world = self.world.accounts[session.qq], self.world
        entries = [(f, world.person(f.qq), world.uin(session.qq, f.qq)) for f in account.friends]
        return {"retcode": 0, "result": {
            "friends": [{"flag": 0, "uin": uin, "categories": f.category}
                        for f, _, uin in entries],
            "marknames": [{"uin": uin, "markname": f.remark, "type": 0}
                          for f, _, uin in entries if f.remark],
            "categories": [{"index": c.index, "sort": c.sort, "name": c.name}
                           for c in account.categories],
            "vipinfo": [{"vip_level": p.vip_level, "u": uin, "is_vip": int(p.vip_level > 0)}
                        for _, p, uin in entries],
            "info": [{"face": p.face, "flag": 0, "nick": p.nick, "uin": uin}
                     for _, p, uin in entries],
        }}

    def group_list(self, session) -> dict:
        """api/get_group_name_list_mask2 (§3.8)."""
        groups = self.world.groups_of(session.qq)
        return {"retcode": 0, "result": {
            "gmasklist": [{"gid": 1000, "mask": 0}] + [{"gid": g.gid, "mask": 0} for g in groups],
            "gnamelist": [{"flag": 1090519041, "name": g.name, "gid": g.gid, "code": g.code}
                          for g in groups],
            "gmarklist": [],
        }}

    def group_info(self, session, gcode) -> dict:
        """api/get_group_info_ext2 (§3.9). Raises Refusal(100001) for an unknown code."""
        group = self.world.group_by_code(gcode)
        if group is None or group.member(session.qq) is None:
            raise Refusal(100001)
        viewer, world, sessions = session.qq, self.world, self.sessions
        members = [(m, world.person(m.qq), world.uin(viewer, m.qq)) for m in group.members]
        result = {
            "stats": [{"client_type": sessions.client_type(m.qq), "uin": uin,
                       "stat": STAT[sessions.presence(m.qq)]}
                      for m, _, uin in members if sessions.presence(m.qq) != "offline"],
            "minfo": [{"nick": p.nick, "province": p.province, "gender": p.gender, "uin": uin,
                       "country": p.country, "city": p.city} for _, p, uin in members],
            "ginfo": {"face": 0, "memo": group.memo, "class": 10048,
                      "fingermemo": group.fingermemo, "code": group.code,
                      "createtime": group.createtime, "flag": 1090519041, "level": 0,
                      "name": group.name, "gid": group.gid, "owner": world.uin(viewer, group.owner),
                      "members": [{"muin": uin, "mflag": int(m.admin)} for m, _, uin in members],
                      "option": 1},
        }
        cards = [{"muin": uin, "card": m.card} for m, _, uin in members if m.card]
        if cards:
            result["cards"] = cards
        result["vipinfo"] = [{"vip_level": p.vip_level, "u": uin, "is_vip": int(p.vip_level > 0)}
                             for _, p, uin in members]
        return {"retcode": 0, "result": result}

    def discussion_list(self, session) -> dict:
        """get_discus_list / get_discu_list_new2 (§3.10)."""
        return {"retcode": 0, "result": {
            "dnamelist": [{"did": d.did, "name": d.name}
                          for d in self.world.discussions_of(session.qq)],
            "dmasklist": [{"did": 1000, "mask": 0}],
        }}

    def discussion_info(self, session, did) -> dict:
        """channel/get_discu_info (§3.11). Raises Refusal(100001) for an unknown did."""
        discussion = self.world.discussion_by_did(did)
        if discussion is None or session.qq not in discussion.members:
            raise Refusal(100001)
        viewer, world, sessions = session.qq, self.world, self.sessions
        members = [(qq, world.uin(viewer, qq)) for qq in discussion.members]
        return {"retcode": 0, "result": {
            "info": {"did": discussion.did, "discu_owner": world.uin(viewer, discussion.owner),
                     "discu_name": discussion.name, "info_seq": discussion.info_seq,
                     "mem_list": [{"mem_uin": uin, "ruin": qq} for qq, uin in members]},
            "mem_status": [{"uin": uin, "status": sessions.presence(qq),
                            "client_type": sessions.client_type(qq)}
                           for qq, uin in members if sessions.presence(qq) != "offline"],
            "mem_info": [{"uin": uin, "nick": world.person(qq).nick} for qq, uin in members],
        }}

    def online_buddies(self, session) -> dict:
        """channel/get_online_buddies2 (§3.13): online friends only."""
        result = []
        for friend in self.world.accounts[session.qq].friends:
            status = self.sessions.presence(friend.qq)
            if status != "offline":
                result.append({"uin": self.world.uin(session.qq, friend.qq), "status": status,
                               "client_type": self.sessions.client_type(friend.qq)})
        return {"retcode": 0, "result": result}

    def friend_uin(self, session, tuin, kind) -> dict:
        """api/get_friend_uin2 (§3.12): a uin (or group code) to its real number.

        Raises:
            Refusal: 99999 past the world's lookup_limit per minute; 100001 (our choice)
                for a tuin the account cannot see.
        """
        now = self.clock()
        limit = self.options.lookup_limit
        if limit:
            while session.lookups and now - session.lookups[0] > LOOKUP_WINDOW:
                session.lookups.popleft()
            if len(session.lookups) >= limit:
                raise Refusal(99999)
            session.lookups.append(now)
        number = None
        group = self.world.group_by_code(tuin) or self.world.group_by_gid(tuin)
        if group is not None and group.member(session.qq) is not None:
            number = group.number
        elif wire.as_int(kind) != 4:
            number = self.world.qq_of_uin(session.qq, tuin)
        if number is None:
            raise Refusal(100001)
        return {"retcode": 0, "result": {"uiuin": "", "account": number,
                                         "uin": wire.as_int(tuin)}}

    def long_nick(self, session, tuin) -> dict:
        """api/get_single_long_nick2 (§3.14)."""
        qq = self.world.qq_of_uin(session.qq, tuin)
        result = [] if qq is None else [{"uin": wire.as_int(tuin),
                                         "lnick": self.world.person(qq).long_nick}]
        return {"retcode": 0, "result": result}
