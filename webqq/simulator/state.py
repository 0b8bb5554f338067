"""The simulated Tencent back end: login challenges, grants, sessions, event queues.

state: decisions without HTTP. The handlers of ``app.py`` and ``control.py`` parse a
request into plain values and call a ``Backend`` method; it answers with the reply body
(a dict, or ``LoginOutcome``/``CheckReply`` for the login server) or raises ``Refusal``
carrying the retcode body of PROTOCOL.md §5. It never touches a socket, a request or the
IOLoop's timers: time comes from an injected clock, randomness from the simulator's seeded
``random.Random``, and the only asynchronous objects are the Futures of held polls. It
must never log a secret: no password, p, skey, ptwebqq, vfwebqq or psessionid value.

Life of an account (PROTOCOL.md §1.2, §1.5):

* ``/check`` issues a challenge bound to a cookie: ``ptvfsession`` with a ``!XYZ`` code,
  or (captcha) ``/getimage`` binds the drawn code to ``verifysession``.
* ``/login`` consumes the challenge, checks ``p`` with ``webqq.qq.encrypt_password``
  and grants cookies (``skey``, ``ptwebqq``; Era B also ``p_skey`` at ``check_sig``).
* ``login2`` turns a grant into a ``Session`` (clientid, psessionid, vfwebqq). The same
  clientid relinks the session (new tokens, same queue); another clientid kicks it.
* A session's events wait in its queue until a poll takes them. An answer that cannot be
  written goes back to the queue (``PollAnswer.restore``), so nothing is lost.
"""
import collections
import itertools
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import quote

from tornado.concurrent import Future, future_set_result_unless_cancelled

from webqq.qq import encrypt_password, friends_hash

from . import wire
from .captcha import ALPHABET, render_jpeg
from .events import (SESS_FLAGS, SIMULATED_FONT, ContentError, EventSpec, Stamp, build_item,
                     content_text, parse_sent_content)
from .world import as_int

__all__ = ["Backend", "CheckReply", "ControlError", "LoginOutcome", "PollAnswer", "Refusal",
           "Session", "MAX_POLL_ITEMS"]

log = logging.getLogger("webqq.simulator")

#: Sends remembered per session to recognise an exact repeat (§6.2).
RECENT_SENDS = 64

#: Items in one poll answer; the rest wait for the next poll (§2.16 [sim] "a cap").
MAX_POLL_ITEMS = 100
# Challenges remembered (each /check or /getimage adds one; oldest forgotten first).
_MAX_CHALLENGES = 1000
# Login sigs of Era B's login page remembered.
_MAX_LOGIN_SIGS = 1000

# Alphabets of the tokens: skey and RK are letters and digits; sigs add "-", "_", "*".
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Session states (§1.5).
ONLINE, KICKED, EXPIRED, LOGGED_OUT = "online", "kicked", "expired", "logged_out"

# Statuses a client may ask for at login2 / change_status2 (§2.7, §2.23).
REQUESTABLE_STATUSES = ("online", "away", "busy", "silent", "hidden", "callme", "offline")
# client_type of a WebQQ session (§2.10).
WEBQQ_CLIENT_TYPE = 41
# §2.10 stat codes.
_STAT = {"online": 10, "offline": 20, "away": 30, "hidden": 40, "busy": 50, "callme": 60,
         "silent": 70}

# The ptuiCB texts of §2.5.
LOGIN_OK_MESSAGE = "登录成功！"
_LOGIN_FAILURES = {
    ("1", "0"): "系统繁忙，请稍后重试。",
    ("2", "0"): "您的帐号已过期。",
    ("3", "0"): "您输入的帐号或密码不正确，请重新输入。",
    ("4", "0"): "您输入的验证码不正确，请重新输入。",
    ("4", "2"): "页面过期，请重试。*",
    ("7", "0"): "很遗憾，网络连接出现异常，请您稍后再试。(2220884626)",
    ("8", "0"): "您的IP登录过于频繁，请稍后再试。",
    ("19", "0"): "您的帐号暂时无法登录。",
    ("24", "0"): "很遗憾，网络连接出现异常，请您检查是否禁用cookies。(3972006392)",
}


class Refusal(Exception):
    """A request the back end refuses; ``body`` is the JSON reply (§5)."""

    def __init__(self, retcode: int, **extra):
        super().__init__(retcode)
        self.body = {"retcode": retcode, **extra}


def _channel_refusal(retcode: int) -> Refusal:
    """A d.web2 error: retcode plus the empty errmsg of the poll and send samples."""
    return Refusal(retcode, errmsg="")


class ControlError(Exception):
    """A /_sim/ request that does not fit the current state (HTTP 409 on the surface)."""


@dataclass(frozen=True)
class CheckReply:
    """The answer to /check: ``ptui_checkVC(flag, code_or_token, uin_bytes)``."""

    flag: str                   # "0": no captcha, "1": captcha needed
    code: str                   # "!XYZ", or an opaque captcha token
    uin_bytes: str              # 32 characters of \xNN escapes
    cookies: tuple = ()         # Set-Cookie values


@dataclass(frozen=True)
class LoginOutcome:
    """The answer to /login: ``ptuiCB(code, subcode, url, '0', message, nick)``."""

    code: str
    subcode: str
    url: str
    message: str
    nick: str
    cookies: tuple = ()

    @property
    def ok(self) -> bool:
        return self.code == "0"


@dataclass
class _Challenge:
    qq: int
    code: str
    captcha: bool


@dataclass
class _Grant:
    """What a successful /login gave an account (the cookies login2 checks)."""

    qq: int
    skey: str
    ptwebqq: str
    ptsig: str = ""             # Era B: the check_sig URL's ptsig
    p_skey: str = ""            # Era B: set by check_sig


@dataclass(frozen=True)
class _Queued:
    seq: int                    # arrival order within the session
    item: dict


@dataclass
class PollAnswer:
    """What a poll2 answers, and how to undo taking it if it never reaches the client.

    ``restore`` is None for answers that carry nothing (102, 121…); otherwise the
    handler calls it when the response could not be written, which puts the taken items
    (or the 116 rotation, or the kick notice) back to be answered again.
    """

    body: dict
    restore: object = None

    @property
    def items(self) -> list:
        result = self.body.get("result")
        return result if isinstance(result, list) else []


@dataclass(frozen=True)
class _SessSig:
    peer: int                   # QQ number the sig allows messages to
    service_type: int           # 0 group, 1 discussion
    through: object             # the Group or Discussion


@dataclass
class SentRecord:
    """One message a client sent, for /_sim/sent."""

    kind: str                   # buddy, group, discussion, session
    to: int                     # QQ number, group number or discussion number
    text: str
    msg_id: int
    time: int
    content: list
    dropped: "str | None" = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "to": self.to, "text": self.text, "msg_id": self.msg_id,
                "time": self.time, "content": self.content, "dropped": self.dropped}


class Session:
    """One login2 session of an account: tokens, presence, queue and the held poll."""

    def __init__(self, backend, account, clientid: str, status: str, grant: _Grant):
        rng = backend.rng
        self.backend = backend
        self.account = account
        self.qq = account.qq
        self.clientid = clientid
        self.status = status
        self.skey = grant.skey
        self.p_skey = grant.p_skey
        # The current ptwebqq: the friend-list hash uses it; a 116 replaces it.
        self.ptwebqq = grant.ptwebqq
        self.psessionid = ""
        self.vfwebqq = ""
        self.state = ONLINE
        self.queue = []                 # _Queued, in arrival order
        self.pending = None             # Future[PollAnswer] of the held poll, if any
        self.kick_notice = None         # kick_message item owed to the next poll
        self.rotation = None            # new ptwebqq owed to the next poll (116)
        self.polls = 0
        self.last_activity = backend.clock()
        self.last_send = None           # (time, pieces) of the previous send
        self.recent_sends = collections.OrderedDict()  # msg_id -> pieces, the last few
        self.sigs = {}                  # group_sig -> _SessSig
        self.lookups = deque()          # times of get_friend_uin2 calls
        self.reply_ip = rng.randrange(176_000_000, 180_000_000)
        self._msg_ids = itertools.count(rng.randrange(1000, 60000))
        self._seq = itertools.count()

    def stamp(self, seq: int = 0) -> Stamp:
        """Header values for the next item this session receives."""
        return Stamp(msg_id=next(self._msg_ids), msg_id2=self.backend.rng.randrange(100000, 1000000),
                     reply_ip=self.reply_ip, time=int(self.backend.clock()), seq=seq)

    # --- the queue and the held poll ---------------------------------------------------

    def push(self, item: dict) -> None:
        """Queue an event; a held poll of a live session gets it at once."""
        self.queue.append(_Queued(next(self._seq), item))
        if self.pending is not None and self.state == ONLINE:
            self._answer(self._take())

    def begin_poll(self) -> Future:
        """Start a poll2. Returns a Future of its PollAnswer, resolved now or later.

        A poll already held for this session is answered 102 first (§2.16 [sim]: the
        most recent poller receives the events).
        """
        self.backend.expire_if_idle(self)
        if self.pending is not None:
            self._answer(PollAnswer(_channel_refusal(102).body))
        self.polls += 1
        self.last_activity = self.backend.clock()
        every = self.backend.options.rotate_every
        if self.state == ONLINE and every and self.polls % every == 0 and self.rotation is None:
            self.rotation = self.backend.new_ptwebqq(self)
        future = Future()
        self.pending = future
        if self.state in (KICKED, EXPIRED):
            self._answer(self._dead_answer())
        elif self.rotation is not None:
            self._answer(self._rotation_answer())
        elif self.queue:
            self._answer(self._take())
        return future

    def end_hold(self, future: Future) -> None:
        """The hold time of ``future``'s poll passed: answer 102 if still held."""
        if self.pending is future:
            self._answer(PollAnswer(_channel_refusal(102).body))

    def abandon(self, future: Future) -> None:
        """The held poll's connection closed: forget it; nothing was taken."""
        if self.pending is future:
            self.pending = None
            self.last_activity = self.backend.clock()
            future_set_result_unless_cancelled(future, None)

    def end(self, body: dict) -> None:
        """Answer a held poll with ``body`` (109 at logout)."""
        if self.pending is not None:
            self._answer(PollAnswer(body))

    def kick(self, notice: "dict | None") -> None:
        """Mark the session kicked; polls get ``notice`` (a kick_message) first, then 121."""
        self.state, self.kick_notice = KICKED, notice
        if self.pending is not None:
            self._answer(self._dead_answer())

    def offer_rotation(self, p: str) -> None:
        """Owe the next poll a 116 with ``p``; a held poll gets it now."""
        self.rotation = p
        if self.pending is not None and self.state == ONLINE:
            self._answer(self._rotation_answer())

    def close(self) -> None:
        """The simulator stops: a held poll's Future resolves with None."""
        if self.pending is not None:
            future, self.pending = self.pending, None
            future_set_result_unless_cancelled(future, None)

    def _answer(self, answer: PollAnswer) -> None:
        future, self.pending = self.pending, None
        self.last_activity = self.backend.clock()
        future_set_result_unless_cancelled(future, answer)

    def _take(self) -> PollAnswer:
        taken, self.queue = self.queue[:MAX_POLL_ITEMS], self.queue[MAX_POLL_ITEMS:]
        items = [q.item for q in taken]
        if self.backend.options.poll_order == "newest_first":
            items.reverse()
        return PollAnswer({"retcode": 0, "result": items}, lambda: self._requeue(taken))

    def _requeue(self, taken: list) -> None:
        self.queue = sorted(taken + self.queue, key=lambda q: q.seq)
        log.info("poll answer for %d not written: %d item(s) queued again", self.qq, len(taken))
        if self.pending is not None and self.state == ONLINE:
            self._answer(self._take())

    def _rotation_answer(self) -> PollAnswer:
        p, self.rotation = self.rotation, None

        def offer_again():
            self.rotation = p
        return PollAnswer({"retcode": 116, "p": p}, offer_again)

    def _dead_answer(self) -> PollAnswer:
        notice, self.kick_notice = self.kick_notice, None
        if notice is None:
            return PollAnswer({"retcode": 121, "t": "0"})

        def owe_again():
            self.kick_notice = notice
        return PollAnswer({"retcode": 0, "result": [notice]}, owe_again)


class Backend:
    """Everything the simulated servers remember, and the rules they answer by.

    Args:
        world: the loaded World.
        rng: the seeded ``random.Random`` (tokens, codes, msg ids).
        clock: returns unix time in seconds (``time.time`` by default).
    """

    def __init__(self, world, rng, clock=time.time):
        self.world = world
        self.options = world.options
        self.rng = rng
        self.clock = clock
        self.challenges = {}            # ptvfsession / verifysession value -> _Challenge
        self.captcha_codes = {}         # qq -> code the captcha image shows now
        self.demanded_captchas = {}     # qq -> code required by /_sim/captcha
        self.captcha_passed = set()     # accounts that solved their "once" captcha
        self.login_sigs = {}            # Era B login page sigs (insertion-ordered set)
        self.grants = {}                # qq -> _Grant of the latest /login
        self.sessions = {}              # qq -> the account's current Session
        self.by_psessionid = {}         # psessionid -> Session
        self.sent = {}                  # qq -> [SentRecord]
        self._chat_seq = {}             # group or discussion number -> last seq

    # --- tokens ------------------------------------------------------------------------

    def _hex(self, chars: int) -> str:
        return "%0*x" % (chars, self.rng.getrandbits(chars * 4))

    def _letters(self, count: int, alphabet=ALPHABET) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(count))

    def new_ptwebqq(self, session: Session) -> str:
        """Rotate an account's ptwebqq (§2.16 116): login2 and the hash expect the new one."""
        value = self._hex(48)
        session.ptwebqq = value
        grant = self.grants.get(session.qq)
        if grant is not None:
            grant.ptwebqq = value
        log.info("ptwebqq of %d rotated", session.qq)
        return value

    def _psessionid(self, qq: int, skey: str, vfwebqq: str) -> str:
        # §2.7: hex of the Erlang term {Pid, Uin, Skey, Vfwebqq} the real server issued.
        node = b"connserver_webqq@10.133.41.202"
        pid = (b"\x67\x64" + len(node).to_bytes(2, "big") + node
               + self.rng.randrange(1 << 16).to_bytes(4, "big")
               + self.rng.randrange(1 << 13).to_bytes(4, "big") + b"\x01")
        term = (b"\x83\x68\x04" + pid + b"\x6e\x04\x00" + (qq & 0xFFFFFFFF).to_bytes(4, "little")
                + b"\x6d" + len(skey).to_bytes(4, "big") + skey.encode("ascii")
                + b"\x6d" + (len(vfwebqq) // 2).to_bytes(4, "big") + bytes.fromhex(vfwebqq))
        return term.hex()

    def _remember(self, table: dict, key, value, limit: int) -> None:
        table[key] = value
        if len(table) > limit:
            del table[next(iter(table))]

    # --- login server (§2.2 - §2.6) ----------------------------------------------------

    def issue_login_sig(self) -> str:
        """Era B login page: a 64-character g_login_sig, remembered for /login."""
        sig = self._letters(64, _ALNUM + "*-")
        self._remember(self.login_sigs, sig, True, _MAX_LOGIN_SIGS)
        return sig

    def _captcha_needed(self, qq: int) -> "str | None":
        """The code a captcha must show for ``qq`` now, or None when none is needed."""
        if qq in self.demanded_captchas:
            return self.demanded_captchas[qq]
        account = self.world.accounts.get(qq)
        if account is not None and (account.captcha == "always" or (
                account.captcha == "once" and qq not in self.captcha_passed)):
            return self._letters(4)
        return None

    def check(self, uin_text) -> CheckReply:
        """/check (§2.3): a ``!XYZ`` code bound to a ``ptvfsession``, or a captcha demand.

        A new check forgets the account's earlier challenges. Unknown accounts are
        answered like known ones (the server did not reveal which numbers exist);
        their /login fails with '3'.
        """
        qq = _qq(uin_text)
        for key in [k for k, c in self.challenges.items() if c.qq == qq]:
            del self.challenges[key]
        uin_bytes = wire.uin_bytes_literal(qq)
        code = self._captcha_needed(qq)
        if code is None:
            verify = "!" + self._letters(3, _UPPER)
            cookie = self._hex(64)
            self._remember(self.challenges, cookie, _Challenge(qq, verify, False), _MAX_CHALLENGES)
            return CheckReply("0", verify, uin_bytes,
                              (wire.set_cookie("ptvfsession", cookie, "ptlogin2.qq.com"),))
        self.captcha_codes[qq] = code
        log.info("check for %d: captcha required", qq)
        return CheckReply("1", self._hex(48), uin_bytes)

    def captcha_image(self, uin_text) -> tuple:
        """/getimage (§2.4): ``(jpeg, set_cookie)``; the code is bound to verifysession.

        Each image shows a new code unless /_sim/captcha fixed one.
        """
        qq = _qq(uin_text)
        code = self.demanded_captchas.get(qq) or self._letters(4)
        self.captcha_codes[qq] = code
        cookie = "h00" + self._hex(64)
        self._remember(self.challenges, cookie, _Challenge(qq, code, True), _MAX_CHALLENGES)
        return render_jpeg(code, self.rng), wire.set_cookie("verifysession", cookie, "qq.com")

    def login_failure(self, code: str, subcode: str, who: str) -> LoginOutcome:
        """A failed ptuiCB with §2.5's message for the code (a network error otherwise)."""
        message = _LOGIN_FAILURES.get((code, subcode), _LOGIN_FAILURES[("7", "0")])
        return LoginOutcome(code, subcode, "", message, who)

    def login(self, query: dict, cookies: dict) -> LoginOutcome:
        """/login (§2.5), checked in the [sim] order: account, challenge, code, password.

        Args:
            query: the query parameters (``u``, ``p``, ``verifycode``, ``u1``, Era B
                ``login_sig``…), each a str.
            cookies: the request's cookies by name.

        Returns:
            The LoginOutcome; a success carries the §1.3 cookies. Every outcome consumes
            the challenge it used: after a failure the client runs /check again.
        """
        who = query.get("u", "")
        qq = _qq(who)
        account = self.world.accounts.get(qq)
        if account is None:
            log.info("login for %s refused: no such account", who[:12])
            return self.login_failure("3", "0", who)
        login_sig = query.get("login_sig")
        if login_sig and login_sig not in self.login_sigs:
            return self.login_failure("4", "2", who)
        challenge = None
        for name in ("verifysession", "ptvfsession"):
            value = cookies.get(name)
            if value in self.challenges:
                challenge = self.challenges.pop(value)
                break
        if challenge is None:
            log.info("login for %d refused: no challenge cookie", qq)
            return self.login_failure("24", "0", who)
        if challenge.qq != qq:
            return self.login_failure("4", "2", who)
        if query.get("verifycode", "").upper() != challenge.code.upper():
            log.info("login for %d refused: wrong verify code", qq)
            return self.login_failure("4", "0", who)
        expected = encrypt_password(account.password, qq.to_bytes(8, "big"), challenge.code)
        if query.get("p", "").upper() != expected:
            log.info("login for %d refused: wrong password", qq)
            return self.login_failure("3", "0", who)
        if challenge.captcha:
            self.captcha_passed.add(qq)
            self.demanded_captchas.pop(qq, None)
            self.captcha_codes.pop(qq, None)
        grant = _Grant(qq=qq, skey="@" + self._letters(9, _ALNUM), ptwebqq=self._hex(48))
        self.grants[qq] = grant
        u1 = query.get("u1", "")
        if self.options.era == "B":
            grant.ptsig = self._letters(44, _ALNUM + "-_")
            url = _check_sig_url(qq, grant.ptsig, u1)
        else:
            url = u1
        uin = wire.uin_cookie(qq)
        # §1.3 / §7.2: pual_bot reads ptwebqq and skey under .qq.com, which fixes their
        # domain; the other cookies' domains are MC/LQ's reading, all qq.com here.
        cookies_out = (
            wire.set_cookie("uin", uin, "qq.com"),
            wire.set_cookie("skey", grant.skey, "qq.com"),
            wire.set_cookie("ptwebqq", grant.ptwebqq, "qq.com"),
            wire.set_cookie("ptisp", "ctc", "qq.com"),
            wire.set_cookie("RK", self._letters(10, _ALNUM), "qq.com"),
            wire.set_cookie("ptcz", self._hex(64), "qq.com", long_lived=True),
            wire.set_cookie("pt2gguin", uin, "qq.com", long_lived=True),
        )
        log.info("login for %d accepted", qq)
        return LoginOutcome("0", "0", url, LOGIN_OK_MESSAGE, account.nick, cookies_out)

    def check_sig(self, query: dict) -> "tuple | None":
        """Era B check_sig (§2.6): ``(location, set_cookies)``, or None for a bad ptsig."""
        qq = _qq(query.get("uin", ""))
        grant = self.grants.get(qq)
        ptsig = query.get("ptsig", "")
        if grant is None or not grant.ptsig or ptsig != grant.ptsig:
            return None
        grant.p_skey = self._letters(44, _ALNUM + "-_*")
        cookies = (wire.set_cookie("p_uin", wire.uin_cookie(qq), "web2.qq.com"),
                   wire.set_cookie("p_skey", grant.p_skey, "web2.qq.com"),
                   wire.set_cookie("pt4_token", self._hex(32), "web2.qq.com"))
        return query.get("s_url", "http://web2.qq.com/loginproxy.html"), cookies

    # --- sessions (§2.7, §1.5) ---------------------------------------------------------

    def login2(self, cookies: dict, r_text, form_clientid, remote_ip: str) -> dict:
        """channel/login2: create or relink the account's session.

        Raises:
            Refusal: 103 for missing or stale cookies (uin, skey, ptwebqq; Era B p_skey)
                or an ``r.ptwebqq`` unequal to the cookie; 100006 for an ``r`` that is
                not a JSON object, a missing clientid or an unknown status.
        """
        qq = _cookie_qq(cookies)
        grant = self.grants.get(qq)
        if (grant is None or cookies.get("skey") != grant.skey
                or cookies.get("ptwebqq") != grant.ptwebqq
                or (self.options.era == "B" and (not grant.p_skey
                                                 or cookies.get("p_skey") != grant.p_skey))):
            log.info("login2 refused: cookies missing or stale")
            raise _channel_refusal(103)
        r = _json_object(r_text)
        if r is None:
            raise _channel_refusal(100006)
        if r.get("ptwebqq") != grant.ptwebqq:
            log.info("login2 for %d refused: r.ptwebqq is not the current ptwebqq", qq)
            raise _channel_refusal(103)
        clientid = _clientid(r.get("clientid", form_clientid))
        status = r.get("status", "online")
        if clientid is None or status not in REQUESTABLE_STATUSES:
            raise _channel_refusal(100006)
        account = self.world.accounts[qq]
        session = self.sessions.get(qq)
        if session is not None and session.clientid == clientid and session.state != LOGGED_OUT:
            log.info("login2 for %d: relink of the same client", qq)
            session.state, session.kick_notice = ONLINE, None
            session.skey, session.p_skey, session.ptwebqq = grant.skey, grant.p_skey, grant.ptwebqq
        else:
            if session is not None:
                self.expire_if_idle(session)
                if session.state == ONLINE:
                    log.info("login2 for %d from another client: the old session is kicked", qq)
                    self._kick(session, notice=True)
            session = Session(self, account, clientid, status, grant)
            self.sessions[qq] = session
            log.info("login2 for %d: new session", qq)
        session.status = status
        session.last_activity = self.clock()
        self.by_psessionid.pop(session.psessionid, None)
        session.vfwebqq = self._hex(80)
        session.psessionid = self._psessionid(qq, session.skey, session.vfwebqq)
        self.by_psessionid[session.psessionid] = session
        self._announce(session)
        return {"retcode": 0, "result": {
            "uin": qq, "cip": _ip_number(remote_ip), "index": 1075, "port": 43332,
            "status": status, "vfwebqq": session.vfwebqq, "psessionid": session.psessionid,
            "user_state": 0, "f": 0}}

    def expire_if_idle(self, session: Session) -> None:
        """§1.5 idle expiry: no poll for ``idle_expiry`` seconds makes a session expired."""
        limit = self.options.idle_expiry
        if (session.state == ONLINE and session.pending is None and limit > 0
                and self.clock() - session.last_activity > limit):
            session.state = EXPIRED
            log.info("session of %d expired (no poll for %.0f s)", session.qq, limit)

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
        clientid = _clientid(clientid)
        if not isinstance(psessionid, str) or not psessionid or clientid is None:
            raise _channel_refusal(100006)
        dead = 108 if purpose == "send" else 103
        session = self.by_psessionid.get(psessionid)
        if session is None or session.clientid != clientid:
            raise _channel_refusal(dead)
        if not self._cookies_match(cookies, session):
            raise _channel_refusal(103)
        self.expire_if_idle(session)
        if session.state != ONLINE and purpose != "poll":
            raise _channel_refusal(dead)
        return session

    def discussion_session(self, cookies: dict, psessionid, clientid, vfwebqq) -> Session:
        """A d.web2 discussion call: the channel checks, plus its vfwebqq (§1.4).

        Raises:
            Refusal: as ``channel_session``; 100000 for a vfwebqq that is not the live one.
        """
        session = self.channel_session(cookies, psessionid, clientid, "call")
        if vfwebqq != session.vfwebqq:
            raise Refusal(100000)
        return session

    def info_session(self, cookies: dict, vfwebqq) -> Session:
        """The session an s.web2 call (or a d.web2 discussion call) acts for.

        Raises:
            Refusal: 100101 when the uin/skey/ptwebqq cookies are missing or do not match
                the account's session; 100000 for a vfwebqq that is not the live one.
        """
        if not all(cookies.get(name) for name in ("uin", "skey", "ptwebqq")):
            raise Refusal(100101)
        session = self.sessions.get(_cookie_qq(cookies))
        if session is None or not self._cookies_match(cookies, session):
            raise Refusal(100101)
        self.expire_if_idle(session)
        if session.state != ONLINE or vfwebqq != session.vfwebqq:
            raise Refusal(100000)
        return session

    def _cookies_match(self, cookies: dict, session: Session) -> bool:
        if _cookie_qq(cookies) != session.qq or cookies.get("skey") != session.skey:
            return False
        return self.options.era != "B" or cookies.get("p_skey") == session.p_skey

    def _kick(self, session: Session, notice: bool) -> None:
        item = None
        if notice:
            item = build_item(self.world, session.qq, EventSpec("kick_message"),
                              session.stamp(), self.rng)
        session.kick(item)

    def logout(self, session: Session) -> dict:
        """channel/logout2 (§2.24): a held poll answers 109; the psessionid dies (103)."""
        session.state = LOGGED_OUT
        self.by_psessionid.pop(session.psessionid, None)
        session.end(_channel_refusal(109).body)
        self._announce(session)
        log.info("logout of %d", session.qq)
        return {"retcode": 0, "result": "ok"}

    def change_status(self, session: Session, status) -> dict:
        """channel/change_status2 (§2.23): friends' sessions see buddies_status_change."""
        if status not in REQUESTABLE_STATUSES or status == "offline":
            raise _channel_refusal(100006)
        session.status = status
        self._announce(session)
        return {"retcode": 0, "result": "ok"}

    def presence(self, qq: int) -> str:
        """What others see of ``qq``: an account's session status, a person's status.

        Hidden shows as offline.
        """
        if qq in self.world.accounts:
            session = self.sessions.get(qq)
            if session is not None:
                self.expire_if_idle(session)
            status = session.status if session is not None and session.state == ONLINE else "offline"
        else:
            status = self.world.person(qq).status
        return "offline" if status == "hidden" else status

    def client_type(self, qq: int) -> int:
        if qq in self.world.accounts:
            return WEBQQ_CLIENT_TYPE
        return self.world.person(qq).client_type

    def _announce(self, session: Session) -> None:
        """Tell every account that lists this one as a friend its new presence (§4.6)."""
        status = self.presence(session.qq)
        for other in self.world.accounts.values():
            if other.qq != session.qq and other.friend(session.qq) is not None:
                target = self.reachable(other.qq)
                if target is not None:
                    spec = EventSpec("buddies_status_change", sender=session.qq, status=status,
                                     value={"client_type": WEBQQ_CLIENT_TYPE})
                    target.push(build_item(self.world, other.qq, spec, target.stamp(), self.rng))

    def reachable(self, qq: int) -> "Session | None":
        """The session events for ``qq`` are queued to: its current one unless logged out.

        A kicked or expired session keeps its queue for a relink by the same client.
        """
        session = self.sessions.get(qq)
        if session is None or session.state == LOGGED_OUT:
            return None
        return session

    # --- sends (§2.18 - §2.22, §6) -----------------------------------------------------

    def send(self, session: Session, kind: str, r: dict) -> dict:
        """Check, record and deliver one sent message.

        Args:
            kind: "buddy", "group", "discussion" or "session".
            r: the decoded ``r`` object.

        Returns:
            ``{"retcode":0,"result":"ok"}``, also for a message dropped by the §6.3
            world flags (recorded with ``dropped`` set, delivered to nobody).

        Raises:
            Refusal: 100006 for a missing or non-integer msg_id or a content that is
                not §6.1's form; 108 for an unknown target, a group or discussion the
                account is not in, or a missing/wrong group_sig.
        """
        msg_id = as_int(r.get("msg_id"))
        if msg_id is None:
            raise _channel_refusal(100006)
        try:
            pieces, font = parse_sent_content(r.get("content"))
        except ContentError as exc:
            log.info("send from %d refused: %s", session.qq, exc)
            raise _channel_refusal(100006) from None
        if font is None:
            log.warning("send from %d carries no font element; using the default", session.qq)
            font = dict(SIMULATED_FONT)
        viewer = session.qq
        if kind == "buddy":
            to = self.world.qq_of_uin(viewer, r.get("to"))
            if to is None:
                raise _channel_refusal(108)
            spec = EventSpec("message", sender=viewer, content=pieces, font=font)
            receivers, record_to = [to], to
        elif kind == "group":
            group = self.world.group_by_gid(r.get("group_uin"))
            if group is None or group.member(viewer) is None:
                raise _channel_refusal(108)
            spec = EventSpec("group_message", sender=viewer, group=group, content=pieces,
                             font=font)
            receivers, record_to = [m.qq for m in group.members], group.number
        elif kind == "discussion":
            discussion = self.world.discussion_by_did(r.get("did"))
            if discussion is None or viewer not in discussion.members:
                raise _channel_refusal(108)
            spec = EventSpec("discu_message", sender=viewer, discussion=discussion,
                             content=pieces, font=font)
            receivers, record_to = list(discussion.members), discussion.number
        else:
            to = self.world.qq_of_uin(viewer, r.get("to"))
            sig = session.sigs.get(r.get("group_sig"))
            if to is None or sig is None or sig.peer != to:
                raise _channel_refusal(108)
            through = sig.through
            spec = EventSpec("sess_message", sender=viewer, content=pieces, font=font,
                             group=through if sig.service_type == 0 else None,
                             discussion=through if sig.service_type == 1 else None)
            receivers, record_to = [to], to
        now = self.clock()
        dropped = self._drop_reason(session, pieces, now, msg_id)
        session.last_send = (now, pieces)
        session.recent_sends[msg_id] = pieces
        while len(session.recent_sends) > RECENT_SENDS:
            session.recent_sends.popitem(last=False)
        record = SentRecord(kind=kind, to=record_to, text=content_text(pieces), msg_id=msg_id,
                            time=int(now), content=pieces, dropped=dropped)
        self.sent.setdefault(viewer, []).append(record)
        log.info("%s message from %d to %d%s", kind, viewer, record_to,
                 " dropped (%s)" % dropped if dropped else "")
        if dropped is None:
            # §7.13 (uncertain): no 2013 source shows a send echoed to the sender's own
            # poll, and pual_bot expects none; only the other receivers get it.
            self._deliver(spec, [qq for qq in receivers if qq != viewer])
        return {"retcode": 0, "result": "ok"}

    def _drop_reason(self, session: Session, pieces: list, now: float,
                     msg_id: int) -> "str | None":
        # §6.2 [sim]: an exact repeat (same session, msg_id and content) is the same
        # message sent again after its answer was lost; it is answered "ok" and not
        # delivered twice. Always on: a client may rely on it to resend safely.
        if session.recent_sends.get(msg_id) == pieces:
            return "repeat"
        if session.last_send is None:
            return None
        then, previous = session.last_send
        if self.options.min_interval and now - then < self.options.min_interval:
            return "too_fast"
        if self.options.dup_window and previous == pieces and now - then < self.options.dup_window:
            return "duplicate"
        return None

    def _next_seq(self, spec: EventSpec) -> int:
        """§4.2/§4.3 ``seq``: one per message of a group or discussion, shared by receivers."""
        chat = spec.group if spec.poll_type == "group_message" else (
            spec.discussion if spec.poll_type == "discu_message" else None)
        if chat is None:
            return 0
        self._chat_seq[chat.number] = self._chat_seq.get(chat.number, 0) + 1
        return self._chat_seq[chat.number]

    def _deliver(self, spec: EventSpec, receivers: list) -> None:
        seq = self._next_seq(spec)
        for qq in receivers:
            target = self.reachable(qq)
            if target is not None:
                target.push(build_item(self.world, qq, spec, target.stamp(seq), self.rng))

    def c2c_sig(self, session: Session, through_id, to_uin, service_type) -> dict:
        """channel/get_c2cmsg_sig2 (§2.20): a group_sig for a temporary session.

        Raises:
            Refusal: 100006 for a service_type other than 0/1; 100001 when the peer or
                the group/discussion is unknown or the peer is not a member of it.
        """
        service_type = as_int(service_type)
        if service_type not in (0, 1):
            raise _channel_refusal(100006)
        peer = self.world.qq_of_uin(session.qq, to_uin)
        if service_type == 0:
            through = self.world.group_by_gid(through_id)
            member = through is not None and through.member(peer) is not None
        else:
            through = self.world.discussion_by_did(through_id)
            member = through is not None and peer in through.members
        if peer is None or not member:
            raise Refusal(100001)
        sig = self._hex(96)
        session.sigs[sig] = _SessSig(peer, service_type, through)
        return {"retcode": 0, "result": {"type": 0, "value": sig, "flags": dict(SESS_FLAGS)}}

    # --- info calls (§2.8 - §2.15) -----------------------------------------------------

    def friends(self, session: Session, r: dict) -> dict:
        """api/get_user_friends2, with the world's hash policy (§2.8 [sim]).

        Raises:
            Refusal: 50 when the policy checks hashes and the hash is wrong (or absent
                and required).
        """
        variant = self.options.friends_hash
        if variant != "none":
            sent = r.get("hash")
            if sent is None:
                if self.options.friends_hash_required:
                    raise _channel_refusal(50)
            elif not isinstance(sent, str) or sent.upper() != friends_hash(
                    session.qq, session.ptwebqq, variant):
                log.info("friend list for %d refused: wrong hash", session.qq)
                raise _channel_refusal(50)
        account, world = session.account, self.world
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

    def group_list(self, session: Session) -> dict:
        """api/get_group_name_list_mask2 (§2.9)."""
        groups = self.world.groups_of(session.qq)
        return {"retcode": 0, "result": {
            "gmasklist": [{"gid": 1000, "mask": 0}] + [{"gid": g.gid, "mask": 0} for g in groups],
            "gnamelist": [{"flag": 1090519041, "name": g.name, "gid": g.gid, "code": g.code}
                          for g in groups],
            "gmarklist": [],
        }}

    def group_info(self, session: Session, gcode) -> dict:
        """api/get_group_info_ext2 (§2.10). Raises Refusal(100001) for an unknown code."""
        group = self.world.group_by_code(gcode)
        if group is None or group.member(session.qq) is None:
            raise Refusal(100001)
        viewer, world = session.qq, self.world
        members = [(m, world.person(m.qq), world.uin(viewer, m.qq)) for m in group.members]
        result = {
            "stats": [{"client_type": self.client_type(m.qq), "uin": uin,
                       "stat": _STAT[self.presence(m.qq)]}
                      for m, _, uin in members if self.presence(m.qq) != "offline"],
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

    def discussion_list(self, session: Session) -> dict:
        """get_discus_list / get_discu_list_new2 (§2.11)."""
        return {"retcode": 0, "result": {
            "dnamelist": [{"did": d.did, "name": d.name}
                          for d in self.world.discussions_of(session.qq)],
            "dmasklist": [{"did": 1000, "mask": 0}],
        }}

    def discussion_info(self, session: Session, did) -> dict:
        """channel/get_discu_info (§2.12). Raises Refusal(100001) for an unknown did."""
        discussion = self.world.discussion_by_did(did)
        if discussion is None or session.qq not in discussion.members:
            raise Refusal(100001)
        viewer, world = session.qq, self.world
        members = [(qq, world.uin(viewer, qq)) for qq in discussion.members]
        return {"retcode": 0, "result": {
            "info": {"did": discussion.did, "discu_owner": world.uin(viewer, discussion.owner),
                     "discu_name": discussion.name, "info_seq": discussion.info_seq,
                     "mem_list": [{"mem_uin": uin, "ruin": qq} for qq, uin in members]},
            "mem_status": [{"uin": uin, "status": self.presence(qq),
                            "client_type": self.client_type(qq)}
                           for qq, uin in members if self.presence(qq) != "offline"],
            "mem_info": [{"uin": uin, "nick": world.person(qq).nick} for qq, uin in members],
        }}

    def online_buddies(self, session: Session) -> dict:
        """channel/get_online_buddies2 (§2.15): online friends only."""
        result = []
        for friend in session.account.friends:
            status = self.presence(friend.qq)
            if status != "offline":
                result.append({"uin": self.world.uin(session.qq, friend.qq), "status": status,
                               "client_type": self.client_type(friend.qq)})
        return {"retcode": 0, "result": result}

    def friend_uin(self, session: Session, tuin, kind) -> dict:
        """api/get_friend_uin2 (§2.13): a uin (or group code) to its real number.

        Raises:
            Refusal: 99999 past the world's lookup_limit per minute; 100001 (our choice)
                for a tuin the account cannot see.
        """
        now = self.clock()
        limit = self.options.lookup_limit
        if limit:
            while session.lookups and now - session.lookups[0] > 60:
                session.lookups.popleft()
            if len(session.lookups) >= limit:
                raise Refusal(99999)
            session.lookups.append(now)
        number = None
        group = self.world.group_by_code(tuin) or self.world.group_by_gid(tuin)
        if group is not None and group.member(session.qq) is not None:
            number = group.number
        elif as_int(kind) != 4:
            number = self.world.qq_of_uin(session.qq, tuin)
        if number is None:
            raise Refusal(100001)
        return {"retcode": 0, "result": {"uiuin": "", "account": number, "uin": as_int(tuin)}}

    def long_nick(self, session: Session, tuin) -> dict:
        """api/get_single_long_nick2 (§2.14)."""
        qq = self.world.qq_of_uin(session.qq, tuin)
        result = [] if qq is None else [{"uin": as_int(tuin),
                                         "lnick": self.world.person(qq).long_nick}]
        return {"retcode": 0, "result": result}

    # --- the control surface's verbs -----------------------------------------------------

    def push_event(self, to: int, spec: EventSpec) -> dict:
        """Queue an event for account ``to`` (/_sim/say, /_sim/event); returns the item.

        Raises:
            ControlError: the account has no session to queue to.
            EventError: the spec misses what its poll_type needs.
        """
        session = self.reachable(to)
        if session is None:
            raise ControlError("account %d is not logged in" % to)
        item = build_item(self.world, to, spec, session.stamp(self._next_seq(spec)), self.rng)
        session.push(item)
        return item

    def kick(self, qq: int, notice: bool) -> None:
        """/_sim/kick: the next poll answers 121 (after a kick_message if ``notice``)."""
        session = self.reachable(qq)
        if session is None or session.state != ONLINE:
            raise ControlError("account %d has no live session" % qq)
        log.info("session of %d kicked by the control surface", qq)
        self._kick(session, notice)

    def rotate(self, qq: int) -> None:
        """/_sim/rotate: the next (or the held) poll answers 116 with a new ptwebqq."""
        session = self.reachable(qq)
        if session is None or session.state != ONLINE:
            raise ControlError("account %d has no live session" % qq)
        session.offer_rotation(self.new_ptwebqq(session))

    def demand_captcha(self, qq: int, code: str) -> None:
        """/_sim/captcha: the next /check of ``qq`` requires a captcha showing ``code``."""
        if qq not in self.world.accounts:
            raise ControlError("no account %d in the world" % qq)
        self.demanded_captchas[qq] = code

    def sent_by(self, qq: int) -> list:
        """/_sim/sent: what the account's clients sent, in order."""
        return [record.to_json() for record in self.sent.get(qq, [])]

    def report(self) -> dict:
        """/_sim/state's "accounts": state and counters, never a token."""
        accounts = {}
        for qq in self.world.accounts:
            session = self.sessions.get(qq)
            entry = {"state": "offline", "status": "offline", "nick": self.world.accounts[qq].nick,
                     "captcha": self.captcha_codes.get(qq)}
            if session is not None:
                self.expire_if_idle(session)
                entry.update(state=session.state, status=session.status, clientid=session.clientid,
                             polling=session.pending is not None, polls=session.polls,
                             queued=len(session.queue), sent=len(self.sent.get(qq, [])))
            accounts[str(qq)] = entry
        return accounts

    def close(self) -> None:
        """The simulator stops: every held poll's Future resolves with None."""
        for session in list(self.sessions.values()) + list(self.by_psessionid.values()):
            session.close()


def _check_sig_url(qq: int, ptsig: str, u1: str) -> str:
    return ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=%d&service=login&nodirect=0"
            "&ptsig=%s&s_url=%s&f_url=&ptlang=2052&ptredirect=100&aid=1003903&daid=164"
            "&j_later=0&low_login_hour=0&regmaster=0"
            % (qq, ptsig, quote(u1 or "http://web2.qq.com/loginproxy.html", safe="")))


def _qq(text) -> int:
    """A QQ number from request text; 0 for anything that is not one."""
    value = as_int(text)
    return value if value is not None and 0 < value < 1 << 32 else 0


def _cookie_qq(cookies: dict) -> int:
    """The account of the ``uin`` cookie (``o0000010001``), 0 when absent or malformed."""
    value = cookies.get("uin", "")
    return _qq(value[1:]) if value.startswith("o") else 0


def _clientid(value) -> "str | None":
    """clientid as a canonical decimal string (sent as number or string, §7.20)."""
    number = as_int(value)
    return None if number is None else str(number)


def _json_object(text) -> "dict | None":
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):     # RecursionError: nested too deeply
        return None
    return value if isinstance(value, dict) else None


def _ip_number(address: str) -> int:
    """``cip`` of login2: an IPv4 address as an unsigned 32-bit integer (0 for IPv6)."""
    parts = address.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return 0
    return int.from_bytes(bytes(int(p) & 0xFF for p in parts), "big")
