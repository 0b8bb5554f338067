"""What a reply can mean besides "done": the errors of the qq layer and the codes they carry.

errors: values only; no I/O. Every parser of :mod:`webqq.qq` raises one of these and
nothing else (the builders raise ``ValueError`` for arguments outside the protocol)::

    ProtocolError              a reply we cannot use (.endpoint names the request)
     +-- MalformedReply        not the documented shape (.problem, .excerpt of the text)
     +-- RetcodeError          a JSON reply with a retcode other than 0 (.retcode, .errmsg)
     +-- LoginError            ptuiCB refused the login (.code, .subcode, .message)
     |    +-- UnblockRequired  "success", but the account must be unblocked first
     +-- UploadRefused         a picture server said no (.code, .message, .too_large)

Retcodes the caller acts on are ``QQRetcode`` members (the server's codes, not OneBot's),
the ``ptuiCB`` codes ``LoginCode`` members; a code neither names stays a bare ``int``.
"""
import enum
from typing import Union

__all__ = ["ProtocolError", "MalformedReply", "RetcodeError", "LoginError",
           "UnblockRequired", "UploadRefused", "QQRetcode", "LoginCode"]


class QQRetcode(enum.IntEnum):
    """The ``retcode`` values of the WebQQ server's JSON replies that have a known
    meaning (§6)."""

    # The number, as Python 3.11 prints an IntEnum, on 3.9 and 3.10 as well: log lines and
    # messages read the same on every Python README promises.
    __str__ = int.__repr__
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


class LoginCode(enum.IntEnum):
    """The first ``ptuiCB`` argument (§3.4)."""

    # The number, as Python 3.11 prints an IntEnum, on 3.9 and 3.10 as well: log lines and
    # messages read the same on every Python README promises.
    __str__ = int.__repr__
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


def _named_retcode(retcode: int) -> Union[QQRetcode, int]:
    """``retcode`` as its ``QQRetcode`` member, or unchanged when it has none."""
    try:
        return QQRetcode(retcode)
    except ValueError:
        return retcode


class ProtocolError(Exception):
    """Base of every error a parser raises: the reply cannot be used.

    Attributes:
        endpoint: the request whose reply failed (``"check"``, ``"poll2"``, ...).
    """

    def __init__(self, endpoint: str, message: str):
        super().__init__("%s: %s" % (endpoint, message))
        self.endpoint = endpoint


class MalformedReply(ProtocolError):
    """Raised when a reply does not have the documented shape.

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
    """Raised when a JSON reply carries a retcode other than 0 (§6).

    Attributes:
        retcode: a ``QQRetcode`` member, or the bare ``int`` for a code §6 does not name.
        errmsg: the reply's ``errmsg`` ("" when absent).
    """

    def __init__(self, endpoint: str, retcode: int, errmsg: str = ""):
        self.retcode = _named_retcode(retcode)
        self.errmsg = errmsg
        name = self.retcode.name if isinstance(self.retcode, QQRetcode) else "unnamed"
        super().__init__(endpoint, "retcode %d (%s)%s" % (
            retcode, name, ": " + errmsg if errmsg else ""))


class LoginError(ProtocolError):
    """Raised when ``ptuiCB`` refuses the login (§3.4).

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


class UploadRefused(ProtocolError):
    """Raised when a picture upload answers with an error code of its own: the
    custom-face server's ``ret`` (2: over its size limit, LQ; 0 and 4 are successes)
    or the offline-picture server's ``retcode``.

    Attributes:
        code: the server's number.
        message: its text ("" when none).
    """

    def __init__(self, endpoint: str, code: int, message: str = "",
                 too_large: bool = False):
        self.code = code
        self.message = message
        self._too_large = too_large
        super().__init__(endpoint, "upload refused with code %d%s%s" % (
            code, " (the picture is too large for the server)" if too_large else "",
            ": " + message if message else ""))

    @property
    def too_large(self) -> bool:
        """True when the server refused the picture for its size."""
        return self._too_large
