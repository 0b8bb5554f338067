"""The replies of the login steps: the login page, ``check``, ``login`` and ``login2``
(§3.1 - §3.6), each read into a frozen value.

login_replies: no I/O; literal bytes in, a value or a ``ProtocolError`` out. The JS
callbacks of ptlogin2 are tokenized strictly (``reply.js_call``), never evaluated.
"""
import re
import urllib.parse
from dataclasses import dataclass
from typing import Optional

from webqq.qq.errors import LoginError, MalformedReply, UnblockRequired
from webqq.qq.reply import js_call, js_unescape, result_fields, text_of

__all__ = ["CheckResult", "LoginResult", "Login2Result",
           "parse_login_sig", "parse_check", "parse_login", "parse_login2"]


_LOGIN_SIG = re.compile(r'g_login_sig\s*=\s*encodeURIComponent\(\s*"([^"]*)"\s*\)')
_LOGIN_SIG_VALUE = re.compile(r"[A-Za-z0-9*_-]+")


def parse_login_sig(body: bytes) -> str:
    """Read ``g_login_sig`` from the login page of ``build_login_page`` (§3.1, Era B).

    Args:
        body: the HTML page.

    Returns:
        The signature, e.g. ``"PpbBnX213jzzSH8*xXyySm9q..."``.

    Raises:
        MalformedReply: no ``var g_login_sig=encodeURIComponent("...")`` line, or a
            value outside ``[A-Za-z0-9*_-]``.
    """
    text = text_of(body, "login_page")
    found = _LOGIN_SIG.search(text)
    if found is None:
        raise MalformedReply("login_page", "no g_login_sig in the page", text)
    if not _LOGIN_SIG_VALUE.fullmatch(found.group(1)):
        raise MalformedReply("login_page", "g_login_sig has unexpected characters",
                             found.group(0))
    return found.group(1)


@dataclass(frozen=True)
class CheckResult:
    """The reply of ``check``: ``ptui_checkVC(flag, code, uin_bytes)`` (§3.2).

    Attributes:
        captcha_required: flag ``'1'``: fetch ``build_captcha`` and let a human read it.
        code: without captcha, the verify code to log in with (``"!PTH"``); with one,
            an opaque captcha token (no 2013 client sent it back).
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
    flag, code, uin_text = js_call(body, "check", "ptui_checkVC", 3)[:3]
    if flag not in ("0", "1"):
        raise MalformedReply("check", "first argument must be '0' or '1'", flag)
    if not _UIN_BYTES.fullmatch(uin_text):
        raise MalformedReply("check", "third argument is not eight \\xNN escapes", uin_text)
    code = js_unescape(code)
    if not code:
        raise MalformedReply("check", "empty verify code", text_of(body, "check"))
    uin_bytes = bytes(int(uin_text[i + 2:i + 4], 16) for i in range(0, 32, 4))
    return CheckResult(captcha_required=flag == "1", code=code, uin_bytes=uin_bytes)


@dataclass(frozen=True)
class LoginResult:
    """A successful ``ptuiCB('0','0',url,'0',message,nick)`` (§3.4).

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

    On success the reply has set the session cookies (§2.3); the caller's cookie jar
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
    args = [js_unescape(arg) for arg in js_call(body, "login", "ptuiCB", 6)[:6]]
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
    """The ``result`` of ``login2`` (§3.6).

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
    result = result_fields(body, "login2")
    return Login2Result(qq=result.id("uin"), vfwebqq=result.token("vfwebqq"),
                        psessionid=result.token("psessionid"),
                        status=result.string("status", ""), cip=result.number("cip", None),
                        index=result.number("index", None), port=result.number("port", None))
