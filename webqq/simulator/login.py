"""The simulated login server: check, captcha, /login, and Era B's login page and check_sig.

login: the decisions of §3.1 - §3.5 without HTTP. ``/check`` issues a
challenge bound to a cookie (``ptvfsession`` with a ``!XYZ`` code, or, for a captcha,
``/getimage`` binds the drawn code to ``verifysession``); ``/login`` consumes it, checks
``p`` and grants the cookies ``login2`` will ask for (``skey``, ``ptwebqq``; Era B also
``p_skey`` at ``check_sig``). It never touches a socket or a session and never logs a
password, p, code, skey or ptwebqq.
"""
import logging
from dataclasses import dataclass
from urllib.parse import quote

from . import wire
from .captcha import ALPHABET, render_jpeg
from .digests import login_p
from .tokens import ALNUM, UPPER, hex_token, letters

__all__ = ["CheckReply", "Grant", "LoginOutcome", "LoginServer", "LOGIN_OK_MESSAGE",
           "bad_login_parameter"]

log = logging.getLogger("webqq.simulator")

#: /login parameters every 2013 client sent with these values (§3.4; pual_bot's list).
#: ``u1``, ``webqq_type``, ``js_ver`` and ``t`` are checked by form, not by value.
FIXED_LOGIN_PARAMETERS = {"aid": "1003903", "h": "1", "from_ui": "1", "ptredirect": "0",
                          "ptlang": "2052", "login2qq": "1"}
#: Era B's additions that the server required (§3.4): daid, and the login page's sig.
ERA_B_DAID = "164"

# Challenges remembered (each /check or /getimage adds one; oldest forgotten first).
_MAX_CHALLENGES = 1000
# Login sigs of Era B's login page remembered.
_MAX_LOGIN_SIGS = 1000

# The ptuiCB texts of §3.4.
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
class Grant:
    """What a successful /login gave an account (the cookies login2 checks)."""

    qq: int
    skey: str
    ptwebqq: str
    ptsig: str = ""             # Era B: the check_sig URL's ptsig
    p_skey: str = ""            # Era B: set by check_sig


class LoginServer:
    """check.ptlogin2, ssl.ptlogin2, the captcha host and Era B's extra hops.

    Args:
        world: the loaded World (accounts, passwords, captcha policies, options).
        rng: the seeded ``random.Random`` (codes, cookies, tokens).
    """

    def __init__(self, world, rng):
        self.world = world
        self.options = world.options
        self.rng = rng
        self.challenges = {}            # ptvfsession / verifysession value -> _Challenge
        self.captcha_codes = {}         # qq -> code the captcha image shows now
        self.demanded_captchas = {}     # qq -> code required by /_sim/captcha
        self.captcha_passed = set()     # accounts that solved their "once" captcha
        self.login_sigs = {}            # Era B login page sigs (insertion-ordered set)
        self.grants = {}                # qq -> Grant of the latest /login

    # --- Era B's login page (§3.1) -----------------------------------------------------

    def issue_login_sig(self) -> str:
        """Era B login page: a 64-character g_login_sig, remembered for /login."""
        sig = letters(self.rng, 64, ALNUM + "*-")
        _remember(self.login_sigs, sig, True, _MAX_LOGIN_SIGS)
        return sig

    # --- check and captcha (§3.2, §3.3) ------------------------------------------------

    def check(self, uin_text) -> CheckReply:
        """/check (§3.2): a ``!XYZ`` code bound to a ``ptvfsession``, or a captcha demand.

        A new check forgets the account's earlier challenges. Unknown accounts are
        answered like known ones (the server did not reveal which numbers exist);
        their /login fails with '3'.
        """
        qq = wire.qq_number(uin_text)
        for key in [k for k, c in self.challenges.items() if c.qq == qq]:
            del self.challenges[key]
        uin_bytes = wire.uin_bytes_literal(qq)
        code = self._captcha_needed(qq)
        if code is None:
            verify = "!" + letters(self.rng, 3, UPPER)
            cookie = hex_token(self.rng, 64)
            _remember(self.challenges, cookie, _Challenge(qq, verify, False), _MAX_CHALLENGES)
            return CheckReply("0", verify, uin_bytes,
                              (wire.set_cookie("ptvfsession", cookie, "ptlogin2.qq.com"),))
        self.captcha_codes[qq] = code
        log.info("check for %d: captcha required", qq)
        return CheckReply("1", hex_token(self.rng, 48), uin_bytes)

    def _captcha_needed(self, qq: int) -> "str | None":
        """The code a captcha must show for ``qq`` now, or None when none is needed."""
        if qq in self.demanded_captchas:
            return self.demanded_captchas[qq]
        account = self.world.accounts.get(qq)
        if account is not None and (account.captcha == "always" or (
                account.captcha == "once" and qq not in self.captcha_passed)):
            return letters(self.rng, 4, ALPHABET)
        return None

    def captcha_image(self, uin_text) -> tuple:
        """/getimage (§3.3): ``(jpeg, set_cookie)``; the code is bound to verifysession.

        Each image shows a new code unless /_sim/captcha fixed one.
        """
        qq = wire.qq_number(uin_text)
        code = self.demanded_captchas.get(qq) or letters(self.rng, 4, ALPHABET)
        self.captcha_codes[qq] = code
        cookie = "h00" + hex_token(self.rng, 64)
        _remember(self.challenges, cookie, _Challenge(qq, code, True), _MAX_CHALLENGES)
        return render_jpeg(code, self.rng), wire.set_cookie("verifysession", cookie, "qq.com")

    def demand_captcha(self, qq: int, code: str) -> None:
        """/_sim/captcha: the next /check of ``qq`` requires a captcha showing ``code``."""
        self.demanded_captchas[qq] = code

    def captcha_shown(self, qq: int) -> "str | None":
        """The code the account's captcha image shows now (/_sim/state), or None."""
        return self.captcha_codes.get(qq)

    # --- /login (§3.4) -----------------------------------------------------------------

    def failure(self, code: str, subcode: str, who: str) -> LoginOutcome:
        """A failed ptuiCB with §3.4's message for the code (a network error otherwise)."""
        message = _LOGIN_FAILURES.get((code, subcode), _LOGIN_FAILURES[("7", "0")])
        return LoginOutcome(code, subcode, "", message, who)

    def login(self, query: dict, cookies: dict) -> LoginOutcome:
        """/login (§3.4), checked in the [sim] order: account, challenge, code, password.

        Args:
            query: the query parameters (``u``, ``p``, ``verifycode``, ``u1``, Era B
                ``login_sig``…), each a str.
            cookies: the request's cookies by name.

        Returns:
            The LoginOutcome; a success carries the §2.3 cookies. Every outcome consumes
            the challenge it used: after a failure the client runs /check again.
        """
        who = query.get("u", "")
        qq = wire.qq_number(who)
        if self.options.login_checks == "strict":
            bad = bad_login_parameter(query, self.options.era)
            if bad is not None:
                log.info("login for %s refused: parameter %s missing or wrong", who[:12], bad)
                return self.failure("7", "0", who)
        account = self.world.accounts.get(qq)
        if account is None:
            log.info("login for %s refused: no such account", who[:12])
            return self.failure("3", "0", who)
        login_sig = query.get("login_sig")
        if login_sig and login_sig not in self.login_sigs:
            return self.failure("4", "2", who)
        challenge = self._take_challenge(cookies)
        if challenge is None:
            log.info("login for %d refused: no challenge cookie", qq)
            return self.failure("24", "0", who)
        if challenge.qq != qq:
            return self.failure("4", "2", who)
        if query.get("verifycode", "").upper() != challenge.code.upper():
            log.info("login for %d refused: wrong verify code", qq)
            return self.failure("4", "0", who)
        expected = login_p(account.password, qq.to_bytes(8, "big"), challenge.code)
        if query.get("p", "").upper() != expected:
            log.info("login for %d refused: wrong password", qq)
            return self.failure("3", "0", who)
        if challenge.captcha:
            self.captcha_passed.add(qq)
            self.demanded_captchas.pop(qq, None)
            self.captcha_codes.pop(qq, None)
        log.info("login for %d accepted", qq)
        return self._grant(account, query.get("u1", ""))

    def _take_challenge(self, cookies: dict) -> "_Challenge | None":
        """The challenge the request's verifysession or ptvfsession names, consumed."""
        for name in ("verifysession", "ptvfsession"):
            value = cookies.get(name)
            if value in self.challenges:
                return self.challenges.pop(value)
        return None

    def _grant(self, account, u1: str) -> LoginOutcome:
        """A successful ptuiCB: new skey and ptwebqq, the §2.3 cookies, the URL to go on
        with (Era A echoes ``u1``; Era B names the check_sig hop)."""
        qq = account.qq
        grant = Grant(qq=qq, skey="@" + letters(self.rng, 9, ALNUM),
                      ptwebqq=hex_token(self.rng, 48))
        self.grants[qq] = grant
        if self.options.era == "B":
            grant.ptsig = letters(self.rng, 44, ALNUM + "-_")
            url = _check_sig_url(qq, grant.ptsig, u1)
        else:
            url = u1
        uin = wire.uin_cookie(qq)
        # §2.3 / §8.3: pual_bot reads ptwebqq and skey under .qq.com, which fixes their
        # domain; the other cookies' domains are MC/LQ's reading, all qq.com here.
        cookies = (
            wire.set_cookie("uin", uin, "qq.com"),
            wire.set_cookie("skey", grant.skey, "qq.com"),
            wire.set_cookie("ptwebqq", grant.ptwebqq, "qq.com"),
            wire.set_cookie("ptisp", "ctc", "qq.com"),
            wire.set_cookie("RK", letters(self.rng, 10, ALNUM), "qq.com"),
            wire.set_cookie("ptcz", hex_token(self.rng, 64), "qq.com", long_lived=True),
            wire.set_cookie("pt2gguin", uin, "qq.com", long_lived=True),
        )
        return LoginOutcome("0", "0", url, LOGIN_OK_MESSAGE, account.nick, cookies)

    # --- Era B's check_sig hop (§3.5) --------------------------------------------------

    def check_sig(self, query: dict) -> "tuple | None":
        """Era B check_sig (§3.5): ``(location, set_cookies)``, or None for a bad ptsig."""
        qq = wire.qq_number(query.get("uin", ""))
        grant = self.grants.get(qq)
        ptsig = query.get("ptsig", "")
        if grant is None or not grant.ptsig or ptsig != grant.ptsig:
            return None
        grant.p_skey = letters(self.rng, 44, ALNUM + "-_*")
        cookies = (wire.set_cookie("p_uin", wire.uin_cookie(qq), "web2.qq.com"),
                   wire.set_cookie("p_skey", grant.p_skey, "web2.qq.com"),
                   wire.set_cookie("pt4_token", hex_token(self.rng, 32), "web2.qq.com"))
        return query.get("s_url", "http://web2.qq.com/loginproxy.html"), cookies

    # --- what login2 and a 116 need ------------------------------------------------------

    def grant_of(self, qq: int) -> "Grant | None":
        """The cookies the latest /login of ``qq`` granted, or None."""
        return self.grants.get(qq)

    def revoke(self, qq: int) -> bool:
        """Forget the latest grant of ``qq`` (/_sim/expire): a login2 with its cookies
        is then refused and only a new /login helps. Returns whether there was one."""
        return self.grants.pop(qq, None) is not None

    def rotate_ptwebqq(self, qq: int, value: str, replacing: "str | None" = None) -> None:
        """A 116 gave ``qq`` a new ptwebqq (or one never written is undone): login2 now
        expects ``value``. ``replacing``: only if the grant's ptwebqq is still that one."""
        grant = self.grants.get(qq)
        if grant is not None and (replacing is None or grant.ptwebqq == replacing):
            grant.ptwebqq = value


def bad_login_parameter(query: dict, era: str) -> "str | None":
    """The first /login parameter the 2013 server would refuse (ptuiCB '7', "bad
    parameters"), or None. ``vc_type`` and ``action`` are never looked at."""
    for name, value in FIXED_LOGIN_PARAMETERS.items():
        if query.get(name) != value:
            return name
    u1 = query.get("u1", "")
    if not (u1.startswith("http://") or u1.startswith("https://")):
        return "u1"
    for name in ("webqq_type", "js_ver", "t"):     # numbers: a status, a version, 1
        if not query.get(name, "").isdigit():
            return name
    if era == "B":
        if query.get("daid") != ERA_B_DAID:
            return "daid"
        if not query.get("login_sig"):
            return "login_sig"
    return None


def _remember(table: dict, key, value, limit: int) -> None:
    """Insert into a bounded insertion-ordered table, forgetting the oldest entry."""
    table[key] = value
    if len(table) > limit:
        del table[next(iter(table))]


def _check_sig_url(qq: int, ptsig: str, u1: str) -> str:
    return ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=%d&service=login&nodirect=0"
            "&ptsig=%s&s_url=%s&f_url=&ptlang=2052&ptredirect=100&aid=1003903&daid=164"
            "&j_later=0&low_login_hour=0&regmaster=0"
            % (qq, ptsig, quote(u1 or "http://web2.qq.com/loginproxy.html", safe="")))
