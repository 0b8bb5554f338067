"""Every account's session: login2, the checks of each later call, presence, kicks.

sessions: the connection server's bookkeeping of §2.5 and §3.6 without HTTP.
``login2`` turns the login server's grant into a ``Session`` (clientid, psessionid,
vfwebqq); the same clientid relinks it (new tokens, same queue), another clientid kicks
it. Each d.web2 or s.web2 call names its session by psessionid or by cookies, and is
refused with §6's retcode when the names do not fit. It never touches a socket and never
logs a token.
"""
import logging

from . import wire
from .errors import ControlError, Refusal, channel_refusal
from .events import EventSpec, build_item
from .session import EXPIRED, LOGGED_OUT, ONLINE, Session
from .tokens import hex_token, psessionid

__all__ = ["REQUESTABLE_STATUSES", "STAT", "Sessions", "WEBQQ_CLIENT_TYPE"]

log = logging.getLogger("webqq.simulator")

# Statuses a client may ask for at login2 / change_status2 (§3.6, §3.22).
REQUESTABLE_STATUSES = ("online", "away", "busy", "silent", "hidden", "callme", "offline")
#: client_type of a WebQQ session (§3.9).
WEBQQ_CLIENT_TYPE = 41
#: §3.9 stat codes.
STAT = {"online": 10, "offline": 20, "away": 30, "hidden": 40, "busy": 50, "callme": 60,
        "silent": 70}


class Sessions:
    """The sessions of every account, by QQ number and by psessionid.

    Args:
        world: the loaded World.
        rng: the seeded ``random.Random`` (tokens, msg ids).
        clock: unix time in seconds.
        login: the ``LoginServer`` whose grants login2 checks.
        tell: called as ``tell("state", qq=)`` when an account's session changes state
            (``Backend.tell``); None: nobody.
    """

    def __init__(self, world, rng, clock, login, tell=None):
        self.tell = tell if tell is not None else (lambda kind, **fields: None)
        self.world = world
        self.options = world.options
        self.rng = rng
        self.clock = clock
        self.login = login
        self.by_qq = {}                 # qq -> the account's current Session
        self.by_psessionid = {}         # psessionid -> Session

    def get(self, qq: int) -> "Session | None":
        """The account's current session (whatever its state), or None."""
        return self.by_qq.get(qq)

    # --- login2 (§3.6) ---------------------------------------------------------------

    def login2(self, cookies: dict, r_text, form_clientid, remote_ip: str) -> dict:
        """channel/login2: create or relink the account's session.

        Raises:
            Refusal: 103 for missing or stale cookies (uin, skey, ptwebqq; Era B p_skey)
                or an ``r.ptwebqq`` unequal to the cookie; 100006 for an ``r`` that is
                not a JSON object, a missing clientid or an unknown status.
        """
        qq = wire.cookie_qq(cookies)
        grant = self._grant_for(qq, cookies)
        r = wire.json_object(r_text)
        if r is None:
            raise channel_refusal(100006)
        if r.get("ptwebqq") != grant.ptwebqq:
            log.info("login2 for %d refused: r.ptwebqq is not the current ptwebqq", qq)
            raise channel_refusal(103)
        clientid = wire.clientid(r.get("clientid", form_clientid))
        status = r.get("status", "online")
        if clientid is None or status not in REQUESTABLE_STATUSES:
            raise channel_refusal(100006)
        session = self._open(qq, clientid, status, grant)
        session.status = status
        session.last_activity = self.clock()
        self.by_psessionid.pop(session.psessionid, None)
        session.vfwebqq = hex_token(self.rng, 80)
        session.psessionid = psessionid(self.rng, qq, session.skey, session.vfwebqq)
        self.by_psessionid[session.psessionid] = session
        self.announce(session)
        return {"retcode": 0, "result": {
            "uin": qq, "cip": wire.ip_number(remote_ip), "index": 1075, "port": 43332,
            "status": status, "vfwebqq": session.vfwebqq, "psessionid": session.psessionid,
            "user_state": 0, "f": 0}}

    def _grant_for(self, qq: int, cookies: dict):
        """The login grant the cookies present, or Refusal(103) when any is stale."""
        grant = self.login.grant_of(qq)
        if (grant is None or cookies.get("skey") != grant.skey
                or cookies.get("ptwebqq") != grant.ptwebqq
                or (self.options.era == "B" and (not grant.p_skey
                                                 or cookies.get("p_skey") != grant.p_skey))):
            log.info("login2 refused: cookies missing or stale")
            raise channel_refusal(103)
        return grant

    def _open(self, qq: int, clientid: str, status: str, grant) -> Session:
        """The same client's session relinked, or a new one (kicking another client's)."""
        session = self.by_qq.get(qq)
        if session is not None and session.clientid == clientid and session.state != LOGGED_OUT:
            log.info("login2 for %d: relink of the same client", qq)
            session.state, session.kick_notice = ONLINE, None
            session.skey, session.p_skey, session.ptwebqq = grant.skey, grant.p_skey, grant.ptwebqq
            return session
        waiting = []
        if session is not None:
            session.expire_if_idle()
            if session.state == ONLINE:
                log.info("login2 for %d from another client: the old session is kicked", qq)
                self.kick_session(session, notice=True)
            elif session.state == EXPIRED:
                # [sim] what arrived while the login was expired waits for the next one.
                waiting = session.hand_over()
        session = Session(self, self.world.accounts[qq], clientid, status, grant)
        for item in waiting:
            session.push(item)
        self.by_qq[qq] = session
        log.info("login2 for %d: new session", qq)
        return session

    # --- naming the session of a later call ---------------------------------------------

    def channel_session(self, cookies: dict, psessionid, clientid, purpose: str) -> Session:
        """The live session a d.web2 call names.

        Args:
            purpose: "poll" (a kicked or expired session is returned: the poll answers
                121), "send" (dead sessions are 108) or "call" (dead sessions are 103).

        Raises:
            Refusal: 100006 when psessionid or clientid is missing; 108 (sends) or 103
                for an unknown psessionid, another client's clientid or a session that
                is not online; 103 when the uin/skey cookies do not match the session.
        """
        clientid = wire.clientid(clientid)
        if not isinstance(psessionid, str) or not psessionid or clientid is None:
            raise channel_refusal(100006)
        dead = 108 if purpose == "send" else 103
        session = self.by_psessionid.get(psessionid)
        if session is None or session.clientid != clientid:
            raise channel_refusal(dead)
        if not self._cookies_match(cookies, session):
            raise channel_refusal(103)
        session.expire_if_idle()
        if session.state != ONLINE and purpose != "poll":
            raise channel_refusal(dead)
        return session

    def discussion_session(self, cookies: dict, psessionid, clientid, vfwebqq) -> Session:
        """A d.web2 discussion call: the channel checks, plus its vfwebqq (§2.4).

        Raises:
            Refusal: as ``channel_session``; 100000 for a vfwebqq that is not the live one.
        """
        session = self.channel_session(cookies, psessionid, clientid, "call")
        if vfwebqq != session.vfwebqq:
            raise Refusal(100000)
        return session

    def info_session(self, cookies: dict, vfwebqq) -> Session:
        """The session an s.web2 call acts for.

        Raises:
            Refusal: 100101 when the uin/skey/ptwebqq cookies are missing or do not match
                the account's session; 100000 for a vfwebqq that is not the live one.
        """
        if not all(cookies.get(name) for name in ("uin", "skey", "ptwebqq")):
            raise Refusal(100101)
        session = self.by_qq.get(wire.cookie_qq(cookies))
        if session is None or not self._cookies_match(cookies, session):
            raise Refusal(100101)
        session.expire_if_idle()
        if session.state != ONLINE or vfwebqq != session.vfwebqq:
            raise Refusal(100000)
        return session

    def _cookies_match(self, cookies: dict, session: Session) -> bool:
        if wire.cookie_qq(cookies) != session.qq or cookies.get("skey") != session.skey:
            return False
        return self.options.era != "B" or cookies.get("p_skey") == session.p_skey

    def reachable(self, qq: int) -> "Session | None":
        """The session events for ``qq`` are queued to: its current one unless logged out.

        A kicked or expired session keeps its queue for a relink by the same client.
        """
        session = self.by_qq.get(qq)
        if session is None or session.state == LOGGED_OUT:
            return None
        return session

    # --- ending and changing sessions -----------------------------------------------

    def kick_session(self, session: Session, notice: bool) -> None:
        """Kick ``session``: its polls get a kick_message (when ``notice``), then 121."""
        item = None
        if notice:
            item = build_item(self.world, session.qq, EventSpec("kick_message"),
                              session.stamp(), self.rng)
        session.kick(item)
        self.tell("state", qq=session.qq)

    def logout(self, session: Session) -> dict:
        """channel/logout2 (§3.23): a held poll answers 109; the psessionid dies (103)."""
        session.state = LOGGED_OUT
        self.by_psessionid.pop(session.psessionid, None)
        session.end(channel_refusal(109).body)
        self.announce(session)
        log.info("logout of %d", session.qq)
        return {"retcode": 0, "result": "ok"}

    def change_status(self, session: Session, status) -> dict:
        """channel/change_status2 (§3.22): friends' sessions see buddies_status_change."""
        if status not in REQUESTABLE_STATUSES or status == "offline":
            raise channel_refusal(100006)
        session.status = status
        self.announce(session)
        return {"retcode": 0, "result": "ok"}

    def draw_ptwebqq(self) -> str:
        """A new ptwebqq for a 116 to carry (§3.15); nothing changes until it is answered."""
        return hex_token(self.rng, 48)

    def set_ptwebqq(self, session: Session, value: str, replacing: "str | None" = None) -> None:
        """Make ``value`` the account's ptwebqq: login2 and the friend-list hash expect it.

        A 116 does this when a poll answers with it, not when it is owed: until the
        client can have read ``p`` the old value stands, so a relink after a poll that
        never reached us is accepted. ``replacing``: change nothing unless the current
        value is this one (undoing a 116 never written must not undo a newer login).
        """
        if replacing is not None and session.ptwebqq != replacing:
            return
        session.ptwebqq = value
        self.login.rotate_ptwebqq(session.qq, value, replacing)

    # --- presence (§3.9, §5.6) -------------------------------------------------------

    def presence(self, qq: int) -> str:
        """What others see of ``qq``: an account's session status, a person's status.

        Hidden shows as offline.
        """
        if qq in self.world.accounts:
            session = self.by_qq.get(qq)
            if session is not None:
                session.expire_if_idle()
            status = session.status if session is not None and session.state == ONLINE else "offline"
        else:
            status = self.world.person(qq).status
        return "offline" if status == "hidden" else status

    def client_type(self, qq: int) -> int:
        if qq in self.world.accounts:
            return WEBQQ_CLIENT_TYPE
        return self.world.person(qq).client_type

    def announce(self, session: Session) -> None:
        """Tell every account that lists this one as a friend its new presence (§5.6)."""
        self.tell("state", qq=session.qq)
        status = self.presence(session.qq)
        for other in self.world.listed_by(session.qq):
            if other != session.qq:
                target = self.reachable(other)
                if target is not None:
                    spec = EventSpec("buddies_status_change", sender=session.qq, status=status,
                                     value={"client_type": WEBQQ_CLIENT_TYPE})
                    target.push(build_item(self.world, other, spec, target.stamp(), self.rng))

    # --- the control surface's verbs ---------------------------------------------------

    def live(self, qq: int) -> Session:
        """The account's online session, or ControlError."""
        session = self.reachable(qq)
        if session is None or session.state != ONLINE:
            raise ControlError("account %d has no live session" % qq)
        return session

    def kick(self, qq: int, notice: bool) -> None:
        """/_sim/kick: the next poll answers 121 (after a kick_message if ``notice``)."""
        session = self.live(qq)
        log.info("session of %d kicked by the control surface", qq)
        self.kick_session(session, notice)

    def rotate(self, qq: int) -> None:
        """/_sim/rotate: the next (or the held) poll answers 116 with a new ptwebqq,
        which login2 expects from that answer on."""
        session = self.live(qq)
        session.offer_rotation(self.draw_ptwebqq())

    def expire(self, qq: int) -> None:
        """/_sim/expire: the account's login expires, as the 2013 server's did.

        The login grant is forgotten, so a relink or a resumed session (login2 with the
        saved cookies) is refused with 103; the session's psessionid dies, so a held or
        later poll answers 103 and a send 108. Only a login from /check helps, where a
        captcha demanded by /_sim/captcha applies. Queued events wait for that login.

        Raises:
            ControlError: the account has neither a session nor a login grant.
        """
        revoked = self.login.revoke(qq)
        session = self.reachable(qq)
        if session is None:
            if not revoked:
                raise ControlError("account %d is not logged in" % qq)
            log.info("login of %d expired by the control surface", qq)
            return
        session.state = EXPIRED
        self.by_psessionid.pop(session.psessionid, None)
        session.end(channel_refusal(103).body)
        self.announce(session)
        log.info("session of %d expired by the control surface: login again", qq)

    def close(self) -> None:
        """The simulator stops: every held poll's Future resolves with None."""
        for session in list(self.by_qq.values()) + list(self.by_psessionid.values()):
            session.close()
