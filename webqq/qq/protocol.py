"""WebQQ (2013) requests and response parsers as plain functions.

protocol: no I/O. Nothing here opens a socket, touches the IOLoop, reads the clock or
calls ``random``: timestamps, random floats, ``clientid`` and ``msg_id`` are arguments,
so every function is literal values in, literal values out. PROTOCOL.md is the reference
for every URL, parameter, header and reply shape; section numbers below point into it.

Contents, in the order of a session (§1.2):

* §3 ``encrypt_password``, ``friends_hash``.
* Builders, ``build_<endpoint>(...) -> urllib.request.Request``: method, URL with the query
  in the documented order, ``application/x-www-form-urlencoded`` body (a JSON ``r`` field,
  plus ``clientid``/``psessionid`` on ``channel`` POSTs) and the Referer/Origin headers of
  §0.5. Era A (spring 2013) is the default; ``era=Era.B`` adds ``login_sig`` and friends.
* Parsers, ``parse_<endpoint>(body: bytes)``: a frozen dataclass, or an exception below.
  JS callbacks (``ptui_checkVC``, ``ptuiCB``) are tokenized strictly, never evaluated.
  Poll items become the event classes of ``webqq.messages``.

Errors::

    ProtocolError              a reply we cannot use (.endpoint names the request)
     +-- MalformedReply        not the documented shape (.problem, .excerpt of the text)
     +-- RetcodeError          a JSON reply with a retcode other than 0 (.retcode, .errmsg)
     +-- LoginError            ptuiCB refused the login (.code, .subcode, .message)
          +-- UnblockRequired  "success", but the account must be unblocked first

Retcodes the caller acts on are ``Retcode`` members; ``parse_poll`` folds the poll's
into a ``PollOutcome``. Builders raise ``ValueError`` for arguments outside the protocol
(an unknown status, an Era B login without ``login_sig``).
"""
from __future__ import annotations

import enum
import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union
from urllib.request import Request

from webqq.qq import messages
from webqq.qq.messages import DEFAULT_FONT, Event, Face, Font

__all__ = [
    # constants
    "APPID", "D_REFERER", "D_REFERER3", "D_REFERER_SSL", "S_REFERER", "S_REFERER3",
    "D_ORIGIN", "S_ORIGIN", "LOGIN_UI_REFERER_A", "LOGIN_UI_REFERER_B", "STATUSES",
    "WEBQQ_TYPE_ONLINE", "WEBQQ_TYPE_HIDDEN", "DEFAULT_FACE", "HASH_VARIANTS",
    # errors and enums
    "ProtocolError", "MalformedReply", "RetcodeError", "LoginError", "UnblockRequired",
    "Era", "Retcode", "LoginCode", "PollOutcome",
    # §3
    "encrypt_password", "friends_hash",
    # builders
    "build_login_page", "build_check", "build_captcha", "build_login", "build_check_sig",
    "build_login2", "build_friends", "build_groups", "build_group_info",
    "build_discussions", "build_discussion_info", "build_friend_uin",
    "build_online_buddies", "build_poll", "build_heartbeat", "build_send_buddy",
    "build_send_group", "build_send_discussion", "build_c2c_sig", "build_send_session",
    "build_change_status", "build_logout", "build_allow_and_add",
    "build_allow_added_request", "build_deny_added_request",
    # results and parsers
    "CheckResult", "LoginResult", "Login2Result", "Friend", "Category", "FriendList",
    "Group", "GroupList", "GroupMember", "GroupInfo", "Discussion", "DiscussionList",
    "DiscussionMember", "DiscussionInfo", "QQLookup", "OnlineBuddy", "C2CSig",
    "PollResult", "Ack", "SendResult",
    "parse_login_sig", "parse_check", "parse_login", "parse_login2", "parse_friends",
    "parse_groups", "parse_group_info", "parse_discussions", "parse_discussion_info",
    "parse_friend_uin", "parse_online_buddies", "parse_poll", "parse_heartbeat",
    "parse_send", "parse_c2c_sig", "parse_change_status", "parse_logout",
    "parse_friend_request_reply",
]


# --- constants (§0.5, §1.1) --------------------------------------------------------------

APPID = 1003903  # WebQQ's application id at ptlogin2

D_REFERER = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"
D_REFERER3 = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=3"
D_REFERER_SSL = "https://d.web2.qq.com/cfproxy.html?v=20110331002&callback=1"
S_REFERER = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1"
S_REFERER3 = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=3"
D_ORIGIN = "http://d.web2.qq.com"
S_ORIGIN = "http://s.web2.qq.com"
LOGIN_UI_REFERER_B = (
    "https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=5"
    "&mibao_css=m_webqq&appid=1003903&enable_qlogin=0&no_verifyimg=1"
    "&s_url=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&f_url=loginerroralert"
    "&strong_login=1&login_state=10&t=20130723001")
LOGIN_UI_REFERER_A = (
    "https://ui.ptlogin2.qq.com/cgi-bin/login?target=self&style=5&mibao_css=m_webqq"
    "&appid=1003903&enable_qlogin=0&no_verifyimg=1"
    "&s_url=http%3A%2F%2Fweb.qq.com%2Floginproxy.html&f_url=loginerroralert"
    "&strong_login=1&login_state=10&t=20130221001")

_LOGIN_PAGE_URL = "https://ui.ptlogin2.qq.com/cgi-bin/login"
_CHECK_URL = "http://check.ptlogin2.qq.com/check"
_CAPTCHA_URL = "https://ssl.captcha.qq.com/getimage"
_LOGIN_URL = "https://ssl.ptlogin2.qq.com/login"
_D = "http://d.web2.qq.com/channel/"
_S = "http://s.web2.qq.com/api/"
_HEARTBEAT_URL = "http://web.qq.com/web2/get_msg_tip"

# Statuses of login2, change_status2 and the poll's status changes (§2.7, §2.23).
STATUSES = ("online", "away", "busy", "silent", "hidden", "callme")
# login's webqq_type: the status to start in (§2.5).
WEBQQ_TYPE_ONLINE = 10
WEBQQ_TYPE_HIDDEN = 40
# The avatar id sends carry; the server ignores it (§7.12). 564 is PB's.
DEFAULT_FACE = 564
# The JS versions the login pages of each era declared (§2.3, §2.5).
_JS_VER_A = 10021
_JS_VER_B = 10040


class Era(enum.Enum):
    """Protocol shape (§0.1): A spring 2013 (the default), B late 2013."""
    A = "A"
    B = "B"


# --- errors ------------------------------------------------------------------------------

class ProtocolError(Exception):
    """Base of every error a parser raises: the reply cannot be used.

    Attributes:
        endpoint: the request whose reply failed (``"check"``, ``"poll2"``, ...).
    """

    def __init__(self, endpoint: str, message: str):
        super().__init__("%s: %s" % (endpoint, message))
        self.endpoint = endpoint


class MalformedReply(ProtocolError):
    """Raised when a reply does not have the shape PROTOCOL.md documents.

    Attributes:
        problem: what is wrong, e.g. ``"missing key 'vfwebqq' in result"``.
        excerpt: a short slice of the offending text (at most 80 characters).
    """

    def __init__(self, endpoint: str, problem: str, text: str):
        excerpt = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(endpoint, "%s: %r" % (problem, excerpt))
        self.problem = problem
        self.excerpt = excerpt


class RetcodeError(ProtocolError):
    """Raised when a JSON reply carries a retcode other than 0 (§5).

    Attributes:
        retcode: a ``Retcode`` member, or the bare ``int`` for a code §5 does not name.
        errmsg: the reply's ``errmsg`` ("" when absent).
    """

    def __init__(self, endpoint: str, retcode: int, errmsg: str = ""):
        self.retcode = _named_retcode(retcode)
        self.errmsg = errmsg
        name = self.retcode.name if isinstance(self.retcode, Retcode) else "unnamed"
        super().__init__(endpoint, "retcode %d (%s)%s" % (
            retcode, name, ": " + errmsg if errmsg else ""))


class LoginError(ProtocolError):
    """Raised when ``ptuiCB`` refuses the login (§2.5).

    Attributes:
        code: a ``LoginCode`` member, or the bare ``int`` for an unknown code.
        subcode: the second argument (``4``/``2`` means the page expired: redo ``check``).
        message: the server's text, e.g. "您输入的验证码不正确，请重新输入。".
    """

    def __init__(self, code: int, subcode: int, message: str, detail: str = ""):
        try:
            self.code = LoginCode(code)
        except ValueError:
            self.code = code
        self.subcode = subcode
        self.message = message
        name = self.code.name if isinstance(self.code, LoginCode) else "unknown"
        super().__init__("login", "refused with code %d/%d (%s): %s%s" % (
            code, subcode, name, message, detail))

    @property
    def page_expired(self) -> bool:
        """True for ``ptuiCB('4','2',...)``: the verify code expired; run ``check`` again."""
        return self.code is LoginCode.WRONG_VERIFYCODE and self.subcode == 2


class UnblockRequired(LoginError):
    """Raised for a ``ptuiCB`` success whose URL points at ``aq.qq.com`` (LQ): the
    account must be unblocked in a browser before it can log in.

    Attributes:
        url: the unblocking page.
    """

    def __init__(self, message: str, url: str):
        super().__init__(0, 0, message, "; but the account must be unblocked at " + url)
        self.url = url


class Retcode(enum.IntEnum):
    """The retcodes of §5 that have a known meaning."""
    OK = 0
    HASH_WRONG = 50                 # get_user_friends2: recompute the hash (LQ)
    NOT_RELOGIN = 100               # poll2: relogin
    NO_EVENTS = 102                 # poll2: nothing within the hold time; poll again
    LOGIN_EXPIRED = 103             # login expired or cookies missing: relogin
    NOT_WHITELISTED = 106           # login2: overload; back off
    SESSION_GONE = 108              # sends, poll2: relogin
    LOGGED_OUT = 109                # poll2 after logout2
    CLIENT_QUIT = 110               # poll2 after logout2
    BLACKLISTED = 111               # login2: overload; back off
    OVERLOADED = 112                # login2: back off
    NEW_PTWEBQQ = 116               # poll2: store the new ptwebqq cookie, poll again
    RELINK_FAILURE = 120            # poll2: relink with login2
    CONNECTION_LOST = 121           # poll2: relink with login2 (kicked, idle)
    WRONG_WEB_CLIENT = 122          # relogin with a fresh clientid
    LOOKUP_REFUSED = 99999          # get_friend_uin2: stop lookups
    VFWEBQQ_EXPIRED = 100000        # "验证信息过期": relogin
    BAD_GROUP_CODE = 100001         # group calls: unknown code; login2: relogin
    CREDENTIALS_EXPIRED = 100002    # relogin
    MALFORMED_REQUEST = 100003      # s.web2: the request was unparseable
    REFRESH_NEEDED = 100006         # poll2: relogin
    NO_COOKIE = 100101              # s.web2: cookies missing or client unknown: relogin


def _named_retcode(retcode: int) -> Union[Retcode, int]:
    try:
        return Retcode(retcode)
    except ValueError:
        return retcode


class LoginCode(enum.IntEnum):
    """The first ``ptuiCB`` argument (§2.5)."""
    OK = 0
    SERVER_BUSY = 1
    ACCOUNT_EXPIRED = 2
    WRONG_PASSWORD = 3              # stop: retrying risks locking the account
    WRONG_VERIFYCODE = 4            # also subcode 2: page expired; check again
    VERIFY_FAILED = 5
    TRY_AGAIN = 6
    NETWORK_ERROR = 7               # bad parameters / network error
    TOO_MANY_LOGINS = 8             # from this IP
    INVALID_ACCOUNT = 10
    ACCOUNT_FROZEN = 19
    COOKIES_MISSING = 24            # no ptvfsession/verifysession: check first


class PollOutcome(enum.Enum):
    """What a ``poll2`` reply asks the client to do next (§2.16, §5)."""
    MESSAGES = "messages"           # retcode 0 with a list: handle events, poll again
    RETRY = "retry"                 # 102, or 0 without a list: poll again
    NEW_PTWEBQQ = "new_ptwebqq"     # 116: set cookie ptwebqq := .ptwebqq, poll again
    RELINK = "relink"               # 120, 121: login2 again with the same cookies
    RELOGIN = "relogin"             # 100, 103, 108, 122, 100000, 100002, 100006, 100101
    LOGGED_OUT = "logged_out"       # 109, 110: the session was logged out; stop


_POLL_OUTCOMES = {
    Retcode.NO_EVENTS: PollOutcome.RETRY,
    Retcode.NEW_PTWEBQQ: PollOutcome.NEW_PTWEBQQ,
    Retcode.RELINK_FAILURE: PollOutcome.RELINK,
    Retcode.CONNECTION_LOST: PollOutcome.RELINK,
    Retcode.NOT_RELOGIN: PollOutcome.RELOGIN,
    Retcode.LOGIN_EXPIRED: PollOutcome.RELOGIN,
    Retcode.SESSION_GONE: PollOutcome.RELOGIN,
    Retcode.WRONG_WEB_CLIENT: PollOutcome.RELOGIN,
    Retcode.VFWEBQQ_EXPIRED: PollOutcome.RELOGIN,
    Retcode.CREDENTIALS_EXPIRED: PollOutcome.RELOGIN,
    Retcode.REFRESH_NEEDED: PollOutcome.RELOGIN,
    Retcode.NO_COOKIE: PollOutcome.RELOGIN,
    Retcode.LOGGED_OUT: PollOutcome.LOGGED_OUT,
    Retcode.CLIENT_QUIT: PollOutcome.LOGGED_OUT,
}


# --- §3 password encryption and the friend-list hash ------------------------------------

def encrypt_password(password: str, uin_bytes: bytes, verifycode: str) -> str:
    """Encrypt a password for ``/login`` with the spring-2013 scheme (PROTOCOL.md §3.1).

    Args:
        password: the account password as typed.
        uin_bytes: the 8 raw bytes of ``ptui_checkVC`` argument 3 (``CheckResult.uin_bytes``).
        verifycode: the code of ``ptui_checkVC`` (``!PTH``) or the captcha answer; it is
            upper-cased before hashing, as the browser does.

    Returns:
        The ``p`` parameter: 32 upper-case hex digits.

    Raises:
        ValueError: ``uin_bytes`` is not exactly 8 bytes.
    """
    if len(uin_bytes) != 8:
        raise ValueError("uin_bytes must be 8 bytes, got %d" % len(uin_bytes))
    inner = hashlib.md5(password.encode("utf-8")).digest()
    h1 = hashlib.md5(inner + uin_bytes).hexdigest().upper()
    return hashlib.md5((h1 + verifycode.upper()).encode("ascii")).hexdigest().upper()


def _hex(values) -> str:
    """Two upper-case hex digits per byte value."""
    return "".join("%02X" % (v & 0xFF) for v in values)


def _hash_n(qq: int, ptwebqq: str) -> str:
    # The "digit walk": for each decimal digit of the QQ number step through ptwebqq and
    # XOR four of its character codes into a 32-bit word. Past the end reads as 0 (JS).
    codes = [ord(c) for c in ptwebqq]
    size = len(codes)

    def code_at(i):
        return codes[i] if i < size else 0

    pos = 0
    k = 0xFFFFFFFF
    for digit in str(qq):
        pos = (pos + int(digit)) % size
        word = 0
        if pos + 4 > size:
            wrap = pos + 4 - size
            for h in range(4):
                word |= code_at(pos + h if h < wrap else h - wrap) << (24 - 8 * h)
        else:
            for h in range(4):
                word |= code_at(pos + h) << (24 - 8 * h)
        k ^= word
    return _hex([k >> 24, k >> 16, k >> 8, k])


def _hash_o(qq: int, ptwebqq: str) -> str:
    # XOR of "ptwebqq + 'password error'" with the QQ number's digits repeated.
    text = ptwebqq + "password error"
    digits = str(qq)
    repeated = (digits * (len(text) // len(digits) + 1))[: len(text)]
    return _hex(ord(a) ^ ord(b) for a, b in zip(repeated, text))


def _hash_p(qq: int, ptwebqq: str) -> str:
    # Four XOR accumulators over ptwebqq interleaved with the QQ number XOR "ECOK".
    acc = [0, 0, 0, 0]
    for i, c in enumerate(ptwebqq):
        acc[i % 4] ^= ord(c)
    mixed = [(qq >> 24) ^ ord("E"), (qq >> 16) ^ ord("C"), (qq >> 8) ^ ord("O"), qq ^ ord("K")]
    return _hex([acc[0], mixed[0], acc[1], mixed[1], acc[2], mixed[2], acc[3], mixed[3]])


def _hash_q(qq: int, ptwebqq: str) -> str:
    # Sort ptwebqq's character codes with the page's iterative quicksort and count its
    # moves into four bytes seeded with the QQ number. Only the counters matter.
    n = [(qq >> 24) & 0xFF, (qq >> 16) & 0xFF, (qq >> 8) & 0xFF, qq & 0xFF]
    codes = [ord(c) for c in ptwebqq]
    ranges = [(0, len(codes) - 1)]
    while ranges:
        left, right = ranges.pop()
        if left >= right or left < 0 or right >= len(codes):
            continue
        if left + 1 == right:
            if codes[left] > codes[right]:
                codes[left], codes[right] = codes[right], codes[left]
            continue
        start, end, pivot = left, right, codes[left]
        while left < right:
            while left < right and codes[right] >= pivot:
                right -= 1
                n[0] = (n[0] + 3) & 0xFF
            if left < right:
                codes[left] = codes[right]
                left += 1
                n[1] = (n[1] * 13 + 43) & 0xFF
            while left < right and codes[left] <= pivot:
                left += 1
                n[2] = (n[2] - 3) & 0xFF
            if left < right:
                codes[right] = codes[left]
                right -= 1
                n[3] = (n[0] ^ n[1] ^ n[2] ^ (n[3] + 1)) & 0xFF
        codes[left] = pivot
        ranges.append((start, left - 1))
        ranges.append((left + 1, end))
    return _hex(n)


# Name -> function of the friend-list hash algorithms of §3.3, in the order they appeared.
_HASHES = {"N": _hash_n, "O": _hash_o, "P": _hash_p, "Q": _hash_q}
HASH_VARIANTS = tuple(_HASHES)


def friends_hash(qq: int, ptwebqq: str, variant: str = "O") -> str:
    """Compute the ``hash`` field of ``get_user_friends2`` (PROTOCOL.md §3.3).

    Args:
        qq: the logged-in account's QQ number.
        ptwebqq: the current ``ptwebqq`` cookie (after any poll 116 rotation).
        variant: which algorithm of 2013 to use: ``"N"`` (from 2013-04-16 and again
            2013-07-25), ``"O"`` (2013-04-19, the spring-2013 server: the default),
            ``"P"`` (2013-07-17 and 2013-12), ``"Q"`` (2013-09-13).

    Returns:
        The hash as upper-case hex.

    Raises:
        ValueError: unknown ``variant``, or an empty ``ptwebqq``.
    """
    try:
        algorithm = _HASHES[variant]
    except KeyError:
        raise ValueError("unknown hash variant %r; expected one of %s"
                         % (variant, ", ".join(HASH_VARIANTS))) from None
    if not ptwebqq:
        raise ValueError("ptwebqq must not be empty")
    return algorithm(int(qq), ptwebqq)


# --- builders ----------------------------------------------------------------------------
#
# Every builder returns a new urllib.request.Request; none keeps state. Values that vary
# per call (random floats, timestamps, counters, session tokens) are arguments; the ones
# that come from the session are keyword-only, so a clientid is never passed as a msg_id.

def _get(url: str, params: Sequence[Tuple[str, Any]],
         headers: Optional[Dict[str, str]] = None) -> Request:
    return Request(url + "?" + urllib.parse.urlencode(params),
                   headers=headers or {}, method="GET")


def _post(url: str, fields: Sequence[Tuple[str, Any]], headers: Dict[str, str]) -> Request:
    body = urllib.parse.urlencode(fields).encode("ascii")
    headers = dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"})
    return Request(url, data=body, headers=headers, method="POST")


def _r(value: Dict[str, Any]) -> str:
    """The JSON text of an ``r`` field: compact, non-ASCII escaped (§0.4)."""
    return json.dumps(value, separators=(",", ":"))


def _channel_post(path: str, r: Dict[str, Any], *, clientid: int, psessionid: str,
                  referer: str, psessionid_first: bool = False) -> Request:
    """A ``d.web2`` POST: ``r`` plus the ``clientid``/``psessionid`` form fields, in that
    order or, with ``psessionid_first``, reversed as in the ``send_qun_msg2`` capture."""
    session = [("clientid", clientid), ("psessionid", psessionid)]
    if psessionid_first:
        session.reverse()
    return _post(_D + path, [("r", _r(r))] + session,
                 {"Referer": referer, "Origin": D_ORIGIN})


def _s_post(path: str, r: Dict[str, Any], referer: str) -> Request:
    return _post(_S + path, [("r", _r(r))], {"Referer": referer, "Origin": S_ORIGIN})


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError("unknown status %r; expected one of %s"
                         % (status, ", ".join(STATUSES)))
    return status


def build_login_page() -> Request:
    """``GET ui.ptlogin2 /cgi-bin/login``: the page carrying ``g_login_sig`` (§2.2, Era B).

    Returns:
        The request; read its reply with ``parse_login_sig``.
    """
    return _get(_LOGIN_PAGE_URL, [
        ("daid", 164), ("target", "self"), ("style", 5), ("mibao_css", "m_webqq"),
        ("appid", APPID), ("enable_qlogin", 0), ("no_verifyimg", 1),
        ("s_url", "http://web2.qq.com/loginproxy.html"), ("f_url", "loginerroralert"),
        ("strong_login", 1), ("login_state", 10), ("t", 20130723001)])


def build_check(qq: int, r: float, *, era: Era = Era.A,
                login_sig: Optional[str] = None) -> Request:
    """``GET check.ptlogin2 /check``: does this login need a captcha? (§2.3)

    Args:
        qq: the account's QQ number.
        r: a random float in [0, 1).
        era: ``Era.B`` adds ``u1``, ``login_sig``, ``js_ver``, ``js_type`` and the
            login-page Referer.
        login_sig: Era B: the value of ``parse_login_sig``.

    Returns:
        The request; read its reply with ``parse_check``.

    Raises:
        ValueError: ``era`` is B and ``login_sig`` is missing.
    """
    params = [("uin", qq), ("appid", APPID), ("r", r)]
    if era is Era.A:
        return _get(_CHECK_URL, params)
    if not login_sig:
        raise ValueError("an Era B check needs the login_sig of the login page")
    params += [("u1", "http://web2.qq.com/loginproxy.html"), ("login_sig", login_sig),
               ("js_ver", _JS_VER_B), ("js_type", 0)]
    return _get(_CHECK_URL, params, {"Referer": LOGIN_UI_REFERER_B})


def build_captcha(qq: int, r: float, *, vc_type: Optional[str] = None) -> Request:
    """``GET ssl.captcha /getimage``: the captcha picture (§2.4).

    Args:
        qq: the account's QQ number.
        r: a random float in [0, 1).
        vc_type: the token of ``CheckResult.code``, sent by some clients; optional.

    Returns:
        The request; its reply body is the image itself (JPEG) and it sets the
        ``verifysession`` cookie that ``login`` needs.
    """
    params = [("aid", APPID), ("r", r), ("uin", qq)]
    if vc_type is not None:
        params.append(("vc_type", vc_type))
    return _get(_CAPTCHA_URL, params)


def build_login(qq: int, encrypted_password: str, verifycode: str, *, era: Era = Era.A,
                login_sig: Optional[str] = None, after_captcha: bool = False,
                webqq_type: int = WEBQQ_TYPE_ONLINE) -> Request:
    """``GET ssl.ptlogin2 /login``: check the password (§2.5).

    Era A sends PB@54b74d7's parameters in its order; Era B inserts ``daid=164`` after
    ``ptlang`` and ``action=4-5-8246`` after ``fp``, uses ``js_ver=10040`` and the
    ``loginproxy`` ``u1``, appends ``login_sig`` and sends the login page as Referer.

    Args:
        qq: the account's QQ number.
        encrypted_password: ``encrypt_password(password, uin_bytes, verifycode)``.
        verifycode: the code of ``parse_check`` or the captcha answer, as typed.
        era: ``Era.A`` (default) or ``Era.B``.
        login_sig: Era B: the value of ``parse_login_sig``.
        after_captcha: Era A: send ``LOGIN_UI_REFERER_A`` as PB did after a captcha.
        webqq_type: the initial status, ``WEBQQ_TYPE_ONLINE`` or ``WEBQQ_TYPE_HIDDEN``.

    Returns:
        The request; read its reply with ``parse_login``.

    Raises:
        ValueError: ``era`` is B and ``login_sig`` is missing.
    """
    if era is Era.B and not login_sig:
        raise ValueError("an Era B login needs the login_sig of the login page")
    era_b = era is Era.B
    u1 = ("http://www.qq.com/loginproxy.html?login2qq=1&webqq_type=10" if era_b
          else "http://www.qq.com")
    params = [("u", qq), ("p", encrypted_password), ("verifycode", verifycode),
              ("webqq_type", webqq_type), ("remember_uin", 1), ("login2qq", 1),
              ("aid", APPID), ("u1", u1), ("h", 1), ("ptredirect", 0), ("ptlang", 2052)]
    params += [("daid", 164)] if era_b else []
    params += [("from_ui", 1), ("pttype", 1), ("dumy", ""), ("fp", "loginerroralert")]
    params += [("action", "4-5-8246")] if era_b else []
    params += [("mibao_css", "m_webqq"), ("t", 1), ("g", 1), ("js_type", 0),
               ("js_ver", _JS_VER_B if era_b else _JS_VER_A)]
    params += [("login_sig", login_sig)] if era_b else []
    if era_b:
        headers = {"Referer": LOGIN_UI_REFERER_B}
    elif after_captcha:
        headers = {"Referer": LOGIN_UI_REFERER_A}
    else:
        headers = {}
    return _get(_LOGIN_URL, params, headers)


def build_check_sig(url: str) -> Request:
    """``GET ptlogin4.web2 /check_sig``: the Era B hop that sets ``p_skey`` (§2.6).

    Args:
        url: ``LoginResult.check_sig_url``, fetched as is.

    Returns:
        The request; the reply is a 302 whose cookies matter, its body does not.

    Raises:
        ValueError: ``url`` is not an http(s) URL.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("check_sig URL must be http(s): %r" % url[:80])
    return Request(url, headers={"Referer": LOGIN_UI_REFERER_B}, method="GET")


def build_login2(ptwebqq: str, *, clientid: int, status: str = "online",
                 psessionid: Optional[str] = None) -> Request:
    """``POST d.web2 /channel/login2``: open the chat session, or relink it (§2.7).

    Args:
        ptwebqq: the current value of the ``ptwebqq`` cookie.
        clientid: this login's 8-digit client id.
        status: one of ``STATUSES``.
        psessionid: None at first login (sent as ``null``); the current one to relink.

    Returns:
        The request; read its reply with ``parse_login2``.

    Raises:
        ValueError: unknown ``status``.
    """
    r = {"status": _check_status(status), "ptwebqq": ptwebqq, "passwd_sig": "",
         "clientid": str(clientid), "psessionid": psessionid}
    return _channel_post("login2", r, clientid=clientid,
                         psessionid="null" if psessionid is None else psessionid,
                         referer=D_REFERER3)


def build_friends(*, vfwebqq: str, hash_value: Optional[str] = None) -> Request:
    """``POST s.web2 /api/get_user_friends2``: the friend list (§2.8).

    Args:
        vfwebqq: from ``Login2Result``.
        hash_value: ``friends_hash(qq, ptwebqq, variant)``; None sends PB's Era A
            request, which has no ``hash``.

    Returns:
        The request; read its reply with ``parse_friends``.
    """
    r = {"h": "hello"}
    if hash_value is not None:
        r["hash"] = hash_value
    r["vfwebqq"] = vfwebqq
    return _s_post("get_user_friends2", r, S_REFERER)


def build_groups(*, vfwebqq: str) -> Request:
    """``POST s.web2 /api/get_group_name_list_mask2``: the group list (§2.9).

    Args:
        vfwebqq: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_groups``.
    """
    return _s_post("get_group_name_list_mask2", {"vfwebqq": vfwebqq}, S_REFERER)


def build_group_info(code: int, *, vfwebqq: str, t: int) -> Request:
    """``GET s.web2 /api/get_group_info_ext2``: a group's members and cards (§2.10).

    Args:
        code: the group's code (``Group.code``, poll ``group_code``), not its gid.
        vfwebqq: from ``Login2Result``.
        t: a timestamp (PB: unix seconds; not checked).

    Returns:
        The request; read its reply with ``parse_group_info``.
    """
    return _get(_S + "get_group_info_ext2",
                [("gcode", code), ("vfwebqq", vfwebqq), ("t", t)], {"Referer": D_REFERER3})


def build_discussions(*, clientid: int, psessionid: str, vfwebqq: str, t: int) -> Request:
    """``GET s.web2 /api/get_discus_list``: the discussion groups (§2.11; the May 2013
    URL, not ``get_discu_list_new2``).

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        vfwebqq: from ``Login2Result``.
        t: a timestamp in unix milliseconds (not checked).

    Returns:
        The request; read its reply with ``parse_discussions``.
    """
    return _get(_S + "get_discus_list",
                [("clientid", clientid), ("psessionid", psessionid), ("vfwebqq", vfwebqq),
                 ("t", t)], {"Referer": S_REFERER})


def build_discussion_info(did: int, *, clientid: int, psessionid: str, vfwebqq: str,
                          t: int) -> Request:
    """``GET d.web2 /channel/get_discu_info``: a discussion's members (§2.12).

    Args:
        did: the discussion id.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        vfwebqq: from ``Login2Result``.
        t: a timestamp in unix milliseconds (not checked).

    Returns:
        The request; read its reply with ``parse_discussion_info``.
    """
    return _get(_D + "get_discu_info",
                [("did", did), ("clientid", clientid), ("psessionid", psessionid),
                 ("vfwebqq", vfwebqq), ("t", t)], {"Referer": D_REFERER})


def build_friend_uin(uin: int, *, vfwebqq: str, t: int, lookup_type: int = 1) -> Request:
    """``GET s.web2 /api/get_friend_uin2``: the QQ number behind a uin (§2.13).

    Ask one at a time: MC warns that parallel lookups get an account black-listed.

    Args:
        uin: a friend's or member's uin, or a group code.
        vfwebqq: from ``Login2Result``.
        t: a timestamp in unix milliseconds (not checked).
        lookup_type: ``1`` for a user (TW), ``4`` for a group code.

    Returns:
        The request; read its reply with ``parse_friend_uin``.
    """
    return _get(_S + "get_friend_uin2",
                [("tuin", uin), ("verifysession", ""), ("type", lookup_type), ("code", ""),
                 ("vfwebqq", vfwebqq), ("t", t)], {"Referer": S_REFERER3})


def build_online_buddies(*, clientid: int, psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/get_online_buddies2``: which friends are online (§2.15).

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp in unix milliseconds (not checked).

    Returns:
        The request; read its reply with ``parse_online_buddies``.
    """
    return _get(_D + "get_online_buddies2",
                [("clientid", clientid), ("psessionid", psessionid), ("t", t)],
                {"Referer": D_REFERER})


def build_poll(*, clientid: int, psessionid: str) -> Request:
    """``POST d.web2 /channel/poll2``: the long poll (§2.16); issue it again after
    every reply.

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_poll``.
    """
    r = {"clientid": clientid, "psessionid": psessionid, "key": 0, "ids": []}
    return _channel_post("poll2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER)


def build_heartbeat(*, rc: int, t: int, lv: int = 2) -> Request:
    """``GET web.qq.com /web2/get_msg_tip``: the 60-second heartbeat (§2.17).

    No source sends a Referer with it, and none reads the reply.

    Args:
        rc: a counter, increased by one per beat.
        t: a timestamp in unix milliseconds.
        lv: ``2`` (PB, spring 2013) or ``3``.

    Returns:
        The request; ``parse_heartbeat`` reads its reply, failures are harmless.
    """
    return _get(_HEARTBEAT_URL, [("uin", ""), ("tp", 1), ("id", 0), ("retype", 1),
                                 ("rc", rc), ("lv", lv), ("t", t)])


# What the send builders accept as content: a text, or texts and faces in order.
_Pieces = Union[str, Sequence[Union[str, Face]]]


def build_send_buddy(to_uin: int, content: _Pieces, *, msg_id: int, clientid: int,
                     psessionid: str, font: Font = DEFAULT_FONT,
                     face: int = DEFAULT_FACE) -> Request:
    """``POST d.web2 /channel/send_buddy_msg2``: message a friend (§2.18, §6).

    Args:
        to_uin: the friend's uin (``BuddyMessage.from_uin``).
        content: a text, or texts and ``Face`` pieces; split long texts first with
            ``messages.split_text``.
        msg_id: the next value of this login's message counter (§6.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        font: the font the recipient sees.
        face: our avatar id (ignored by the server).

    Returns:
        The request; read its reply with ``parse_send``.
    """
    r = {"to": to_uin, "face": face, "content": messages.encode_content(content, font),
         "msg_id": msg_id, "clientid": clientid, "psessionid": psessionid}
    return _channel_post("send_buddy_msg2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER3)


def build_send_group(gid: int, content: _Pieces, *, msg_id: int, clientid: int,
                     psessionid: str, font: Font = DEFAULT_FONT) -> Request:
    """``POST d.web2 /channel/send_qun_msg2``: message a group (§2.19, §6).

    Args:
        gid: the group's gid (``GroupMessage.gid``, ``Group.gid``), not its code.
        content: a text, or texts and ``Face`` pieces.
        msg_id: the next value of this login's message counter (§6.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        font: the font the members see.

    Returns:
        The request; read its reply with ``parse_send``.
    """
    r = {"group_uin": gid, "content": messages.encode_content(content, font),
         "msg_id": msg_id, "clientid": clientid, "psessionid": psessionid}
    return _channel_post("send_qun_msg2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER3, psessionid_first=True)


def build_send_discussion(did: int, content: _Pieces, *, msg_id: int, clientid: int,
                          psessionid: str, font: Font = DEFAULT_FONT) -> Request:
    """``POST d.web2 /channel/send_discu_msg2``: message a discussion (§2.22, §6).

    Args:
        did: the discussion id (sent as a JSON string, as in the 2013 samples).
        content: a text, or texts and ``Face`` pieces.
        msg_id: the next value of this login's message counter (§6.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        font: the font the members see.

    Returns:
        The request; read its reply with ``parse_send``.
    """
    r = {"did": str(did), "content": messages.encode_content(content, font),
         "msg_id": msg_id, "clientid": clientid, "psessionid": psessionid}
    return _channel_post("send_discu_msg2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER)


def build_c2c_sig(via_id: int, to_uin: int, *, service_type: int, clientid: int,
                  psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/get_c2cmsg_sig2``: the signature for a temporary session
    (§2.20). Cache the answer per peer.

    Args:
        via_id: ``SessionMessage.via_id``, unchanged (a group gid or a did).
        to_uin: the peer's uin.
        service_type: ``0`` through a group, ``1`` through a discussion.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp in unix milliseconds.

    Returns:
        The request; read its reply with ``parse_c2c_sig``.
    """
    return _get(_D + "get_c2cmsg_sig2",
                [("id", via_id), ("to_uin", to_uin), ("service_type", service_type),
                 ("clientid", clientid), ("psessionid", psessionid), ("t", t)],
                {"Referer": D_REFERER3})


def build_send_session(to_uin: int, content: _Pieces, *, group_sig: str, msg_id: int,
                       clientid: int, psessionid: str, service_type: int = 0,
                       font: Font = DEFAULT_FONT, face: int = DEFAULT_FACE) -> Request:
    """``POST d.web2 /channel/send_sess_msg2``: answer a temporary session (§2.21).

    Args:
        to_uin: the peer's uin (``SessionMessage.from_uin``).
        content: a text, or texts and ``Face`` pieces.
        group_sig: ``C2CSig.group_sig`` for this peer.
        msg_id: the next value of this login's message counter (§6.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        service_type: ``SessionMessage.service_type``: 0 group, 1 discussion.
        font: the font the peer sees.
        face: our avatar id (ignored by the server).

    Returns:
        The request; read its reply with ``parse_send``.
    """
    r = {"to": to_uin, "group_sig": group_sig, "face": face,
         "content": messages.encode_content(content, font), "msg_id": msg_id,
         "service_type": service_type, "clientid": clientid, "psessionid": psessionid}
    return _channel_post("send_sess_msg2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER3)


def build_change_status(status: str, *, clientid: int, psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/change_status2`` (§2.23).

    Args:
        status: one of ``STATUSES``.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp in unix milliseconds.

    Returns:
        The request; read its reply with ``parse_change_status``.

    Raises:
        ValueError: unknown ``status``.
    """
    return _get(_D + "change_status2",
                [("newstatus", _check_status(status)), ("clientid", clientid),
                 ("psessionid", psessionid), ("t", t)], {"Referer": D_REFERER})


def build_logout(*, clientid: int, psessionid: str, t: int) -> Request:
    """``GET d.web2 /channel/logout2``: end the session (§2.24).

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: a timestamp in unix milliseconds.

    Returns:
        The request; read its reply with ``parse_logout``.
    """
    return _get(_D + "logout2",
                [("ids", ""), ("clientid", clientid), ("psessionid", psessionid), ("t", t)],
                {"Referer": D_REFERER})


def build_allow_and_add(qq: int, *, vfwebqq: str, category: int = 0,
                        markname: str = "") -> Request:
    """``POST s.web2 /api/allow_and_add2``: accept a friend request and add back (§2.25).

    Args:
        qq: the requester's QQ number (``FriendRequest.qq``).
        vfwebqq: from ``Login2Result``.
        category: the friend category to put them in (0: the default).
        markname: a remark name ("" for none; PB used the QQ number).

    Returns:
        The request; read its reply with ``parse_friend_request_reply``.
    """
    r = {"account": qq, "gid": category, "mname": markname, "vfwebqq": vfwebqq}
    return _s_post("allow_and_add2", r, S_REFERER3)


def build_allow_added_request(qq: int, *, vfwebqq: str) -> Request:
    """``POST s.web2 /api/allow_added_request2``: accept a friend request only (§2.25).

    Args:
        qq: the requester's QQ number (``FriendRequest.qq``).
        vfwebqq: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_friend_request_reply``.
    """
    return _s_post("allow_added_request2", {"account": qq, "vfwebqq": vfwebqq}, S_REFERER3)


def build_deny_added_request(qq: int, *, vfwebqq: str, reason: str = "") -> Request:
    """``POST s.web2 /api/deny_added_request2``: refuse a friend request (§2.25).

    Args:
        qq: the requester's QQ number (``FriendRequest.qq``).
        vfwebqq: from ``Login2Result``.
        reason: the note the requester sees.

    Returns:
        The request; read its reply with ``parse_friend_request_reply``.
    """
    r = {"account": qq, "msg": reason, "vfwebqq": vfwebqq}
    return _s_post("deny_added_request2", r, S_REFERER3)


# --- parsing helpers ---------------------------------------------------------------------

def _json_excerpt(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)[:80]
    except RecursionError:
        return "(nested too deeply to quote)"


def _text(body: bytes, endpoint: str) -> str:
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        around = body[max(0, exc.start - 30):exc.start + 30]
        raise MalformedReply(endpoint, "not UTF-8 at byte %d" % exc.start,
                             around.decode("utf-8", "replace")) from None


def _load_reply(body: bytes, endpoint: str) -> Dict[str, Any]:
    """The JSON envelope ``{"retcode": N, ...}`` of a reply, whatever its retcode."""
    text = _text(body, endpoint)
    try:
        reply = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedReply(endpoint, "not JSON (%s at character %d)" % (exc.msg, exc.pos),
                             text[max(0, exc.pos - 30):exc.pos + 30]) from None
    except RecursionError:
        raise MalformedReply(endpoint, "JSON nested too deeply", text) from None
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
        raise MalformedReply(endpoint, "unreadable JSON (%s)" % exc, text) from None
    if not isinstance(reply, dict) or type(reply.get("retcode")) is not int:
        raise MalformedReply(endpoint, "no integer retcode", text)
    return reply


def _errmsg(reply: Dict[str, Any]) -> str:
    errmsg = reply.get("errmsg", "")
    return errmsg if isinstance(errmsg, str) else _json_excerpt(errmsg)


def _result(body: bytes, endpoint: str) -> Any:
    """The ``result`` of a reply with retcode 0; any other retcode raises."""
    reply = _load_reply(body, endpoint)
    if reply["retcode"] != 0:
        raise RetcodeError(endpoint, reply["retcode"], _errmsg(reply))
    if "result" not in reply:
        raise MalformedReply(endpoint, "retcode 0 without a result", _json_excerpt(reply))
    return reply["result"]


_REQUIRED = object()
_INTEGER = re.compile(r"-?[0-9]+")


class _Fields:
    """Typed access to one JSON object of a reply; every failure is a MalformedReply
    naming the endpoint and the path of the key (``result.ginfo.code``)."""

    def __init__(self, endpoint: str, value: Any, where: str):
        if not isinstance(value, dict):
            raise MalformedReply(endpoint, "%s is not an object" % where, _json_excerpt(value))
        self.endpoint = endpoint
        self.value = value
        self.where = where

    def _absent(self, key: str, default: Any) -> Any:
        if default is _REQUIRED:
            raise MalformedReply(self.endpoint, "missing key %r in %s" % (key, self.where),
                                 _json_excerpt(self.value))
        return default

    def _wrong(self, key: str, expected: str):
        raise MalformedReply(self.endpoint, "%s.%s is not %s" % (self.where, key, expected),
                             _json_excerpt(self.value[key]))

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        """An integer; digit strings count (§7.20); an optional "" counts as absent."""
        value = self.value.get(key)
        if value is None or (value == "" and default is not _REQUIRED):
            return self._absent(key, default)
        if type(value) is int:
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
        return self._wrong(key, "an integer")

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.value.get(key)
        if value is None:
            return self._absent(key, default)
        if not isinstance(value, str):
            return self._wrong(key, "a string")
        return value

    def token(self, key: str) -> str:
        """A required, non-empty string (a session token)."""
        value = self.string(key)
        if not value:
            self._wrong(key, "a non-empty string")
        return value

    def array(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.value.get(key)
        if value is None:
            return self._absent(key, default)
        if not isinstance(value, list):
            return self._wrong(key, "an array")
        return value

    def objects(self, key: str, default: Any = _REQUIRED) -> List["_Fields"]:
        """The objects of an array."""
        items = self.array(key, default)
        return [_Fields(self.endpoint, item, "%s.%s[%d]" % (self.where, key, i))
                for i, item in enumerate(items)]

    def object(self, key: str) -> "_Fields":
        return _Fields(self.endpoint, self.value.get(key), "%s.%s" % (self.where, key))

    def content(self) -> messages.Content:
        try:
            return messages.decode_content(self.value.get("content"))
        except messages.ContentError as exc:
            raise MalformedReply(self.endpoint, "%s.content: %s" % (self.where, exc),
                                 _json_excerpt(self.value.get("content"))) from None


def _result_fields(body: bytes, endpoint: str) -> _Fields:
    return _Fields(endpoint, _result(body, endpoint), "result")


# JS callbacks: name('arg', 'arg', ...) with single-quoted arguments (§2.3, §2.5).
_JS_CALL = re.compile(r"([A-Za-z_$][\w$]*)\s*\((.*)\)", re.S)
_JS_ARG = re.compile(r"\s*'((?:[^'\\\r\n]|\\.)*)'\s*")
_JS_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|.)", re.S)
_JS_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v",
                      "0": "\0"}


def _js_call(body: bytes, endpoint: str, name: str, arity: int) -> List[str]:
    """The arguments of a ``name('a','b',...);`` reply, still JS-escaped.

    Whitespace around the call, around arguments and the final ``;`` are tolerated;
    arguments beyond ``arity`` (later page versions add some) are returned but unused.
    Anything that is not a call of ``name`` with single-quoted strings is refused.
    """
    text = _text(body, endpoint).strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    call = _JS_CALL.fullmatch(text)
    if call is None or call.group(1) != name:
        raise MalformedReply(endpoint, "expected %s(...)" % name, text)
    inner = call.group(2)
    args = []
    pos = 0
    while True:
        arg = _JS_ARG.match(inner, pos)
        if arg is None:
            raise MalformedReply(endpoint, "argument %d of %s is not a single-quoted string"
                                 % (len(args) + 1, name), inner[pos:])
        args.append(arg.group(1))
        pos = arg.end()
        if pos == len(inner):
            break
        if inner[pos] != ",":
            raise MalformedReply(endpoint, "expected ',' after argument %d of %s"
                                 % (len(args), name), inner[pos:])
        pos += 1
    if len(args) < arity:
        raise MalformedReply(endpoint, "%s has %d arguments, expected %d"
                             % (name, len(args), arity), text)
    return args


def _js_unescape(text: str) -> str:
    def replace(match):
        escape = match.group(1)
        if escape[0] in "xu" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _JS_SIMPLE_ESCAPES.get(escape, escape)
    return _JS_ESCAPE.sub(replace, text)


# --- login (§2.2 - §2.7) -----------------------------------------------------------------

_LOGIN_SIG = re.compile(r'g_login_sig\s*=\s*encodeURIComponent\(\s*"([^"]*)"\s*\)')
_LOGIN_SIG_VALUE = re.compile(r"[A-Za-z0-9*_-]+")


def parse_login_sig(body: bytes) -> str:
    """Read ``g_login_sig`` from the login page of ``build_login_page`` (§2.2, Era B).

    Args:
        body: the HTML page.

    Returns:
        The signature, e.g. ``"PpbBnX213jzzSH8*xXyySm9q..."``.

    Raises:
        MalformedReply: no ``var g_login_sig=encodeURIComponent("...")`` line, or a
            value outside ``[A-Za-z0-9*_-]``.
    """
    text = _text(body, "login_page")
    found = _LOGIN_SIG.search(text)
    if found is None:
        raise MalformedReply("login_page", "no g_login_sig in the page", text)
    if not _LOGIN_SIG_VALUE.fullmatch(found.group(1)):
        raise MalformedReply("login_page", "g_login_sig has unexpected characters",
                             found.group(0))
    return found.group(1)


@dataclass(frozen=True)
class CheckResult:
    """The reply of ``check``: ``ptui_checkVC(flag, code, uin_bytes)`` (§2.3).

    Attributes:
        captcha_required: flag ``'1'``: fetch ``build_captcha`` and let a human read it.
        code: without captcha, the verify code to log in with (``"!PTH"``); with one,
            the captcha session token (``vc_type``).
        uin_bytes: the 8 raw bytes for ``encrypt_password``.
    """
    captcha_required: bool
    code: str
    uin_bytes: bytes

    @property
    def qq(self) -> int:
        """The QQ number ``uin_bytes`` encode (big-endian)."""
        return int.from_bytes(self.uin_bytes, "big")


_UIN_BYTES = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){8}")


def parse_check(body: bytes) -> CheckResult:
    """Parse ``ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');``.

    Args:
        body: the reply of ``build_check``.

    Returns:
        The ``CheckResult``.

    Raises:
        MalformedReply: not a ``ptui_checkVC`` call with at least three single-quoted
            arguments, a flag other than ``'0'``/``'1'``, an empty code, or a third
            argument that is not exactly eight ``\\xNN`` escapes.
    """
    flag, code, uin_text = _js_call(body, "check", "ptui_checkVC", 3)[:3]
    if flag not in ("0", "1"):
        raise MalformedReply("check", "first argument must be '0' or '1'", flag)
    if not _UIN_BYTES.fullmatch(uin_text):
        raise MalformedReply("check", "third argument is not eight \\xNN escapes", uin_text)
    code = _js_unescape(code)
    if not code:
        raise MalformedReply("check", "empty verify code", _text(body, "check"))
    uin_bytes = bytes(int(uin_text[i + 2:i + 4], 16) for i in range(0, 32, 4))
    return CheckResult(captcha_required=flag == "1", code=code, uin_bytes=uin_bytes)


@dataclass(frozen=True)
class LoginResult:
    """A successful ``ptuiCB('0','0',url,'0',message,nick)`` (§2.5).

    Attributes:
        url: Era A: the ``u1`` we sent, echoed; Era B: the ``check_sig`` URL to fetch.
        message: the server's text (``"登录成功！"``).
        nick: the account's nickname.
    """
    url: str
    message: str
    nick: str

    @property
    def check_sig_url(self) -> Optional[str]:
        """``url`` when it is a ``check_sig`` URL (Era B: fetch it with
        ``build_check_sig``), else None."""
        return self.url if urllib.parse.urlsplit(self.url).path.endswith("/check_sig") else None


_NUMBER = re.compile(r"[0-9]+")


def parse_login(body: bytes) -> LoginResult:
    """Parse the ``ptuiCB(code, subcode, url, redirect, message, nick);`` of ``login``.

    On success the reply has set the session cookies (§1.3); the caller's cookie jar
    holds them.

    Args:
        body: the reply of ``build_login``.

    Returns:
        The ``LoginResult`` of code 0.

    Raises:
        LoginError: any other code; ``.code`` says which (``LoginCode.WRONG_PASSWORD``:
            stop, do not retry), ``.page_expired`` when ``check`` must run again.
        UnblockRequired: code 0 with an ``aq.qq.com`` URL.
        MalformedReply: not a ``ptuiCB`` call with six single-quoted arguments, or
            non-numeric codes.
    """
    args = [_js_unescape(arg) for arg in _js_call(body, "login", "ptuiCB", 6)[:6]]
    code, subcode, url, _redirect, message, nick = args
    if not (_NUMBER.fullmatch(code) and _NUMBER.fullmatch(subcode)):
        raise MalformedReply("login", "code and subcode must be numbers",
                             "%s, %s" % (code, subcode))
    if int(code) != 0:
        raise LoginError(int(code), int(subcode), message)
    if urllib.parse.urlsplit(url).hostname == "aq.qq.com":
        raise UnblockRequired(message, url)
    return LoginResult(url=url, message=message, nick=nick)


@dataclass(frozen=True)
class Login2Result:
    """The ``result`` of ``login2`` (§2.7).

    Attributes:
        qq: the account's QQ number (in 2013 also its own uin: poll ``to_uin``).
        vfwebqq: the token every ``s.web2`` call and the discussion calls need.
        psessionid: the token every ``d.web2`` call needs.
        status: the status granted (``"online"``).
        cip: our IP address as the server saw it (unsigned 32-bit), or None.
        index: the connection-server slot, or None (informational).
        port: the connection-server port, or None (informational).
    """
    qq: int
    vfwebqq: str
    psessionid: str
    status: str
    cip: Optional[int]
    index: Optional[int]
    port: Optional[int]


def parse_login2(body: bytes) -> Login2Result:
    """Parse the reply of ``login2`` (also a relink).

    Args:
        body: the reply of ``build_login2``.

    Returns:
        The ``Login2Result``.

    Raises:
        RetcodeError: retcode other than 0: ``LOGIN_EXPIRED`` (103) and
            ``VFWEBQQ_EXPIRED``..``CREDENTIALS_EXPIRED`` (100000-100002): log in again
            from ``check``; ``NOT_WHITELISTED``, ``BLACKLISTED``, ``OVERLOADED``
            (106, 111, 112): back off.
        MalformedReply: ``uin``, ``vfwebqq`` or ``psessionid`` missing or mistyped.
    """
    result = _result_fields(body, "login2")
    return Login2Result(qq=result.number("uin"), vfwebqq=result.token("vfwebqq"),
                        psessionid=result.token("psessionid"),
                        status=result.string("status", ""), cip=result.number("cip", None),
                        index=result.number("index", None), port=result.number("port", None))


# --- friends, groups, discussions (§2.8 - §2.15) -----------------------------------------

@dataclass(frozen=True)
class Category:
    """A friend category. Index 0, the default "我的好友", is never listed."""
    index: int
    sort: int
    name: str


@dataclass(frozen=True)
class Friend:
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
    friends: Tuple[Friend, ...]
    categories: Tuple[Category, ...]


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
    result = _result_fields(body, "get_user_friends2")
    info = {item.number("uin"): item for item in result.objects("info", [])}
    marknames = {item.number("uin"): item.string("markname")
                 for item in result.objects("marknames", [])}
    vip_levels = {item.number("u"): item.number("vip_level", 0)
                  for item in result.objects("vipinfo", [])}
    friends = []
    for member in result.objects("friends"):
        uin = member.number("uin")
        details = info.get(uin)
        friends.append(Friend(
            uin=uin, nick=details.string("nick", "") if details else "",
            markname=marknames.get(uin), category=member.number("categories", 0),
            face=details.number("face", 0) if details else 0,
            vip_level=vip_levels.get(uin, 0)))
    categories = tuple(Category(item.number("index"), item.number("sort", 0),
                                item.string("name"))
                       for item in result.objects("categories", []))
    return FriendList(tuple(friends), categories)


@dataclass(frozen=True)
class Group:
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
    groups: Tuple[Group, ...]

    def by_code(self, code: int) -> Optional[Group]:
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
    result = _result_fields(body, "get_group_name_list_mask2")
    masks = {item.number("gid"): item.number("mask", 0)
             for item in result.objects("gmasklist", [])}
    marknames = {item.number("uin"): item.string("markname")
                 for item in result.objects("gmarklist", [])}
    groups = []
    for item in result.objects("gnamelist", []):
        gid = item.number("gid")
        groups.append(Group(gid=gid, code=item.number("code"), name=item.string("name"),
                            markname=marknames.get(gid), mask=masks.get(gid, 0)))
    return GroupList(tuple(groups))


# stat numbers of get_group_info_ext2 as the status names used everywhere else (§2.10)
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
        gid, code, name: as in ``Group``.
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
    result = _result_fields(body, "get_group_info_ext2")
    ginfo = result.object("ginfo")
    minfo = {item.number("uin"): item for item in result.objects("minfo", [])}
    cards = {item.number("muin"): item.string("card") for item in result.objects("cards", [])}
    stats = {item.number("uin"): item for item in result.objects("stats", [])}
    members = []
    for item in ginfo.objects("members", []):
        uin = item.number("muin")
        details, stat = minfo.get(uin), stats.get(uin)
        members.append(GroupMember(
            uin=uin, nick=details.string("nick", "") if details else "",
            card=cards.get(uin), is_admin=bool(item.number("mflag", 0) & 1),
            status=_STATS.get(stat.number("stat", 10), "online") if stat else "offline",
            client_type=stat.number("client_type", None) if stat else None,
            gender=details.string("gender", "unknown") if details else "unknown"))
    return GroupInfo(gid=ginfo.number("gid"), code=ginfo.number("code"),
                     name=ginfo.string("name"), owner_uin=ginfo.number("owner"),
                     memo=ginfo.string("memo", ""), fingermemo=ginfo.string("fingermemo", ""),
                     createtime=ginfo.number("createtime", None), members=tuple(members))


@dataclass(frozen=True)
class Discussion:
    """One discussion group: ``did``, ``name`` and the notification ``mask``."""
    did: int
    name: str
    mask: int


@dataclass(frozen=True)
class DiscussionList:
    """The reply of ``get_discus_list``."""
    discussions: Tuple[Discussion, ...]


def parse_discussions(body: bytes) -> DiscussionList:
    """Parse the discussion list (either URL of §2.11).

    Args:
        body: the reply of ``build_discussions``.

    Returns:
        The ``DiscussionList`` (possibly empty).

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: an entry without an integer ``did`` or a string ``name``.
    """
    result = _result_fields(body, "get_discus_list")
    masks = {item.number("did"): item.number("mask", 0)
             for item in result.objects("dmasklist", [])}
    return DiscussionList(tuple(
        Discussion(did=item.number("did"), name=item.string("name"),
                   mask=masks.get(item.number("did"), 0))
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
    result = _result_fields(body, "get_discu_info")
    info = result.object("info")
    nicks = {item.number("uin"): item.string("nick", "")
             for item in result.objects("mem_info", [])}
    statuses = {item.number("uin"): item for item in result.objects("mem_status", [])}
    members = []
    for item in info.objects("mem_list", []):
        uin = item.number("mem_uin")
        status = statuses.get(uin)
        members.append(DiscussionMember(
            uin=uin, qq=item.number("ruin", None), nick=nicks.get(uin, ""),
            status=status.string("status", "online") if status else "offline",
            client_type=status.number("client_type", None) if status else None))
    return DiscussionInfo(did=info.number("did"), name=info.string("discu_name"),
                          owner_uin=info.number("discu_owner"), members=tuple(members))


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
    result = _result_fields(body, "get_friend_uin2")
    return QQLookup(uin=result.number("uin"), qq=result.number("account"))


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
    result = _result(body, endpoint)
    if not isinstance(result, list):
        raise MalformedReply(endpoint, "result is not an array", _json_excerpt(result))
    buddies = []
    for i, item in enumerate(result):
        fields = _Fields(endpoint, item, "result[%d]" % i)
        buddies.append(OnlineBuddy(fields.number("uin"), fields.string("status"),
                                   fields.number("client_type", None)))
    return tuple(buddies)


# --- poll (§2.16, §4) --------------------------------------------------------------------

@dataclass(frozen=True)
class PollResult:
    """The reply of ``poll2``.

    Attributes:
        outcome: what to do next (see ``PollOutcome``).
        retcode: the reply's retcode, as a ``Retcode`` member.
        events: ``MESSAGES`` only: the items in arrival order (the server sends newest
            first; this is reversed). Items may repeat across polls: de-duplicate by
            ``(msg_id, msg_id2)`` where the event has them.
        ptwebqq: ``NEW_PTWEBQQ`` only: the new value of the ``ptwebqq`` cookie.
    """
    outcome: PollOutcome
    retcode: Retcode
    events: Tuple[Event, ...] = ()
    ptwebqq: Optional[str] = None


def _buddy_message(v: _Fields) -> Event:
    return messages.BuddyMessage(
        msg_id=v.number("msg_id"), msg_id2=v.number("msg_id2"), from_uin=v.number("from_uin"),
        time=v.number("time", None), content=v.content())


def _group_message(v: _Fields) -> Event:
    return messages.GroupMessage(
        msg_id=v.number("msg_id"), msg_id2=v.number("msg_id2"), gid=v.number("from_uin"),
        code=v.number("group_code"), send_uin=v.number("send_uin"),
        seq=v.number("seq", None), group_number=v.number("info_seq", None),
        time=v.number("time", None), content=v.content())


def _discussion_message(v: _Fields) -> Event:
    return messages.DiscussionMessage(
        msg_id=v.number("msg_id"), msg_id2=v.number("msg_id2"), did=v.number("did"),
        send_uin=v.number("send_uin"), seq=v.number("seq", None), time=v.number("time", None),
        content=v.content())


def _session_message(v: _Fields) -> Event:
    return messages.SessionMessage(
        msg_id=v.number("msg_id"), msg_id2=v.number("msg_id2"), from_uin=v.number("from_uin"),
        via_id=v.number("id"), service_type=v.number("service_type", 0),
        qq=v.number("ruin", None), time=v.number("time", None), content=v.content())


def _kick(v: _Fields) -> Event:
    shown = v.number("show_reason", 1)
    return messages.Kick(msg_id=v.number("msg_id", 0),
                         reason=v.string("reason", "") if shown else "")


def _status_change(v: _Fields) -> Event:
    return messages.StatusChange(uin=v.number("uin"), status=v.string("status"),
                                 client_type=v.number("client_type", None))


def _input_notify(v: _Fields) -> Event:
    return messages.InputNotify(msg_id=v.number("msg_id"), msg_id2=v.number("msg_id2"),
                                from_uin=v.number("from_uin"))


def _shake(v: _Fields) -> Event:
    return messages.Shake(msg_id=v.number("msg_id"), msg_id2=v.number("msg_id2"),
                          from_uin=v.number("from_uin"))


def _system_message(v: _Fields) -> Event:
    kind = v.string("type")
    if kind == "verify_required":
        return messages.FriendRequest(seq=v.number("seq"), from_uin=v.number("from_uin"),
                                      qq=v.number("account"), message=v.string("msg", ""))
    if kind == "added_buddy_sig":
        return messages.FriendAdded(seq=v.number("seq"), from_uin=v.number("from_uin"),
                                    qq=v.number("account", None))
    if kind in ("verify_pass", "verify_pass_add"):
        return messages.FriendRequestAccepted(seq=v.number("seq"),
                                              from_uin=v.number("from_uin"),
                                              category=v.number("group_id", None))
    return messages.UnknownEvent("system_message", v.value)


# Which key names the member a sys_g_msg is about, by its type (§4.9).
_GROUP_EVENT_MEMBER_KEYS = ("new_member", "old_member", "request_uin", "owner_uin")


def _group_system_event(v: _Fields) -> Event:
    member = None
    for key in _GROUP_EVENT_MEMBER_KEYS:
        member = v.number(key, None)
        if member is not None:
            break
    return messages.GroupSystemEvent(
        msg_id=v.number("msg_id"), kind=v.string("type"), gid=v.number("from_uin"),
        code=v.number("gcode"), group_number=v.number("t_gcode", None), member_uin=member,
        admin_uin=v.number("admin_uin", None), op_type=v.number("op_type", None),
        message=v.string("msg", ""))


def _buddylist_change(v: _Fields) -> Event:
    added = tuple((item.number("uin"), item.number("groupid", 0))
                  for item in v.objects("added_friends", []))
    removed = tuple(item.number("uin") for item in v.objects("removed_friends", []))
    return messages.BuddyListChange(added=added, removed=removed)


def _file_event(kind: str) -> Callable[[_Fields], Event]:
    def parse(v: _Fields) -> Event:
        name = v.string("name", None)
        session_id = v.number("session_id", None)
        return messages.FileEvent(
            kind=kind, from_uin=v.number("from_uin", None),
            name=name if name is not None else v.string("filename", None),
            mode=v.string("mode", None),
            session_id=session_id if session_id is not None else v.number("lc_id", None),
            value=v.value)
    return parse


def _group_web_message(v: _Fields) -> Event:
    return messages.GroupWebMessage(
        msg_id=v.number("msg_id"), gid=v.number("from_uin"), code=v.number("group_code"),
        send_uin=v.number("send_uin"), xml=v.string("xml"))


def _tips(v: _Fields) -> Event:
    content = v.value.get("content")
    return messages.Tips(from_uin=v.number("from_uin", None),
                         text=content if isinstance(content, str) else "", value=v.value)


def _av_request(v: _Fields) -> Event:
    return messages.AvRequest(from_uin=v.number("from_uin", None), value=v.value)


_POLL_ITEMS: Dict[str, Callable[[_Fields], Event]] = {
    "message": _buddy_message,
    "group_message": _group_message,
    "discu_message": _discussion_message,
    "sess_message": _session_message,
    "kick_message": _kick,
    "buddies_status_change": _status_change,
    "input_notify": _input_notify,
    "shake_message": _shake,
    "system_message": _system_message,
    "sys_g_msg": _group_system_event,
    "buddylist_change": _buddylist_change,
    "file_message": _file_event("file_message"),
    "push_offfile": _file_event("push_offfile"),
    "notify_offfile": _file_event("notify_offfile"),
    "filesrv_transfer": _file_event("filesrv_transfer"),
    "group_web_message": _group_web_message,
    "tips": _tips,
    "av_request": _av_request,
}


def _poll_item(item: Any, index: int) -> Event:
    """One item of a poll reply as its event; a broken item becomes a
    ``MalformedEvent``, so that one bad item never costs the others."""
    where = "result[%d]" % index
    try:
        fields = _Fields("poll2", item, where)
        poll_type = fields.string("poll_type")
        parse = _POLL_ITEMS.get(poll_type)
        if parse is None:
            return messages.UnknownEvent(poll_type, item.get("value"))
        return parse(fields.object("value"))
    except MalformedReply as exc:
        poll_type = item.get("poll_type") if isinstance(item, dict) else None
        return messages.MalformedEvent(poll_type if isinstance(poll_type, str) else "",
                                       item, exc.problem)


def parse_poll(body: bytes) -> PollResult:
    """Parse a ``poll2`` reply into an outcome and, for retcode 0, its events.

    Every ``poll_type`` of §4 becomes its ``webqq.messages`` event; an unknown one
    becomes ``messages.UnknownEvent`` (kept whole, never an error).

    Args:
        body: the reply of ``build_poll``.

    Returns:
        The ``PollResult``: ``MESSAGES`` (0 with a list), ``RETRY`` (102, or 0 with
        ``"ok"``), ``NEW_PTWEBQQ`` (116), ``RELINK`` (120, 121), ``RELOGIN`` (100, 103,
        108, 122, 100000, 100002, 100006, 100101) or ``LOGGED_OUT`` (109, 110).

    Raises:
        RetcodeError: any other retcode (e.g. 114); count these and relogin after a few.
        MalformedReply: not a JSON envelope, or a 116 without ``p``. An item of a
            known type whose keys are missing or mistyped becomes a
            ``messages.MalformedEvent`` in its place; the other items are kept.
    """
    reply = _load_reply(body, "poll2")
    retcode = reply["retcode"]
    if retcode == Retcode.OK:
        result = reply.get("result")
        if not isinstance(result, list):
            return PollResult(PollOutcome.RETRY, Retcode.OK)
        events = [_poll_item(item, i) for i, item in enumerate(result)]
        return PollResult(PollOutcome.MESSAGES, Retcode.OK, tuple(reversed(events)))
    outcome = _POLL_OUTCOMES.get(retcode)
    if outcome is None:
        raise RetcodeError("poll2", retcode, _errmsg(reply))
    if outcome is PollOutcome.NEW_PTWEBQQ:
        ptwebqq = _Fields("poll2", reply, "reply").token("p")
        return PollResult(outcome, Retcode.NEW_PTWEBQQ, ptwebqq=ptwebqq)
    return PollResult(outcome, Retcode(retcode))


# --- sends and other acknowledgements (§2.17 - §2.25) ------------------------------------

@dataclass(frozen=True)
class Ack:
    """A reply that only says "done": ``{"retcode":0,"result":"ok"}``.

    Attributes:
        result: the ``result`` as sent (usually ``"ok"``; an object for some calls).
    """
    result: Any = field(hash=False)


@dataclass(frozen=True)
class SendResult(Ack):
    """The reply of a ``send_*_msg2``. ``"ok"`` does not mean delivered: the server
    drops messages sent too fast or repeated, silently (§6.3)."""


def parse_send(body: bytes) -> SendResult:
    """Parse the reply of any send (buddy, group, discussion, session).

    Args:
        body: the reply of a ``build_send_*`` request.

    Returns:
        The ``SendResult``.

    Raises:
        RetcodeError: e.g. ``SESSION_GONE`` (108) or ``LOGIN_EXPIRED`` (103): relogin.
        MalformedReply: not a JSON envelope.
    """
    return SendResult(_result(body, "send"))


@dataclass(frozen=True)
class C2CSig:
    """The reply of ``get_c2cmsg_sig2``.

    Attributes:
        group_sig: the signature for ``build_send_session``.
        media: what the session allows, among ``text``, ``pic``, ``file``, ``audio``,
            ``video``.
    """
    group_sig: str
    media: FrozenSet[str]


def parse_c2c_sig(body: bytes) -> C2CSig:
    """Parse a temporary-session signature.

    Args:
        body: the reply of ``build_c2c_sig``.

    Returns:
        The ``C2CSig``.

    Raises:
        RetcodeError: e.g. ``BAD_GROUP_CODE`` (100001): the peer is not in that group.
        MalformedReply: no non-empty ``value``.
    """
    result = _result_fields(body, "get_c2cmsg_sig2")
    flags = result.value.get("flags")
    media = frozenset(name for name, allowed in flags.items() if allowed) \
        if isinstance(flags, dict) else frozenset()
    return C2CSig(group_sig=result.token("value"), media=media)


def parse_heartbeat(body: bytes) -> Ack:
    """Parse the reply of ``get_msg_tip``. Its real format is unknown (§7.6): callers
    should log a failure here and carry on.

    Args:
        body: the reply of ``build_heartbeat``.

    Returns:
        The ``Ack``.

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(_result(body, "get_msg_tip"))


def parse_change_status(body: bytes) -> Ack:
    """Parse the reply of ``change_status2``.

    Args:
        body: the reply of ``build_change_status``.

    Returns:
        The ``Ack``.

    Raises:
        RetcodeError: retcode other than 0.
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(_result(body, "change_status2"))


def parse_logout(body: bytes) -> Ack:
    """Parse the reply of ``logout2``.

    Args:
        body: the reply of ``build_logout``.

    Returns:
        The ``Ack``.

    Raises:
        RetcodeError: retcode other than 0 (e.g. 103: the session was already gone).
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(_result(body, "logout2"))


def parse_friend_request_reply(body: bytes) -> Ack:
    """Parse the reply of ``allow_and_add2``, ``allow_added_request2`` or
    ``deny_added_request2``; only the retcode is known reliably (§2.25).

    Args:
        body: the reply of one of the three builders.

    Returns:
        The ``Ack``; ``result`` is the reply's object (``allow_and_add2``: ``account``,
        ``tuin``, ``stat``...).

    Raises:
        RetcodeError: retcode other than 0 (LUA treated 100000 as success; we do not).
        MalformedReply: not a JSON envelope with a ``result``.
    """
    return Ack(_result(body, "friend_request"))
