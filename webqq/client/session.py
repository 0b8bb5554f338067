"""Session persistence: the cookies and tokens of a WebQQ login, saved between runs.

session: one JSON file per account in the state directory, written atomically with
mode 0600 (``statedir.atomic_write``), because it holds what lets anyone resume the
session (skey, ptwebqq, psessionid, vfwebqq). It never holds
the password, never uses pickle, and never logs a token: ``SavedSession.__repr__`` masks
them, and no error message quotes the file's content.

Besides the tokens it keeps what the session learnt that a restart should not ask the
server again: the QQ numbers behind uins (valid as long as the session) and the
friend-list hash variant the server takes.

A file that is there but unusable (not UTF-8 JSON, a value of the wrong type or out of
range, a cookie entry http.cookiejar would choke on, another version or account) never
stops a start: ``load_session`` moves it aside as ``session-QQ.json.bad-YYYYMMDDTHHMMSS``
(UTC), logs one line naming both files, and returns None, so the client logs in again.
"""
import http.cookiejar
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from webqq import statedir
from webqq.qq import HASH_VARIANTS

__all__ = ["SavedSession", "session_path", "save_session", "load_session",
           "delete_session", "cookies_to_data", "cookies_from_data", "cookie_value",
           "set_cookie"]

log = logging.getLogger("webqq.session")

#: Bumped when the file's shape changes; a file of another version is set aside.
FORMAT_VERSION = 1
#: The largest session file read: a real one holds a few kilobytes of cookies.
MAX_FILE_BYTES = 1 << 20
#: The largest psessionid or vfwebqq accepted (the real ones are a few hundred hex digits).
MAX_TOKEN_CHARS = 4096
#: The largest msg_id accepted: 2**53, the integers a JavaScript server reads exactly.
MAX_MSG_ID = 1 << 53
#: The most numbers kept: a few thousand contacts at most, well under MAX_FILE_BYTES.
MAX_NUMBERS = 20000
#: The friend-list hash variants a file may name ("none": no hash; docs/protocol.rst §4.4).
_HASH_VARIANTS = ("none",) + HASH_VARIANTS

# The attributes of http.cookiejar.Cookie we keep, in its constructor's order.
_COOKIE_FIELDS = ("version", "name", "value", "port", "port_specified", "domain",
                  "domain_specified", "domain_initial_dot", "path", "path_specified",
                  "secure", "expires", "discard", "comment", "comment_url")


@dataclass
class SavedSession:
    """What a restart needs to resume a login without the password.

    Attributes:
        qq: the account's QQ number.
        clientid: the login's client id (login2 and poll2 must repeat it).
        psessionid: the d.web2 session token.
        vfwebqq: the s.web2 token.
        msg_id: the next message counter value, so that a resumed session never repeats one.
        cookies: the cookie jar's content, as plain data (see ``cookies_to_data``).
        numbers: ``[key, number]`` pairs of the ``NumberBook`` (uin -> QQ number,
            -code -> group number).
        hash_variant: the friend-list hash the server took (``"none"``, ``"N"``...), or
            None when not known yet.
    """
    qq: int
    clientid: int
    psessionid: str
    vfwebqq: str
    msg_id: int
    cookies: List[Dict[str, Any]] = field(default_factory=list)
    numbers: List[List[int]] = field(default_factory=list)
    hash_variant: Optional[str] = None

    def __repr__(self) -> str:
        return ("SavedSession(qq=%d, clientid=%d, psessionid=***, vfwebqq=***, msg_id=%d, "
                "%d cookies, %d numbers)" % (self.qq, self.clientid, self.msg_id,
                                              len(self.cookies), len(self.numbers)))


def session_path(state_dir: str, qq: int) -> str:
    """The session file of account ``qq`` in ``state_dir``."""
    return os.path.join(state_dir, statedir.session_file(qq))


def cookies_to_data(jar: http.cookiejar.CookieJar) -> List[Dict[str, Any]]:
    """Every cookie of ``jar`` as a JSON-ready dict (session cookies included)."""
    return [{name: getattr(cookie, name) for name in _COOKIE_FIELDS} for cookie in jar]


def cookies_from_data(jar: http.cookiejar.CookieJar, data: List[Dict[str, Any]]) -> None:
    """Put the cookies of ``cookies_to_data`` back into ``jar``.

    Raises:
        ValueError: an entry is not what ``cookies_to_data`` writes (a field missing or
            of the wrong type, a string a Cookie header cannot carry); then no cookie
            of ``data`` was set.
    """
    if not isinstance(data, list):
        raise ValueError("the cookies are not a list")
    for number, item in enumerate(data, 1):
        _check_cookie(number, item)
    for item in data:
        values = {name: item[name] for name in _COOKIE_FIELDS}
        jar.set_cookie(http.cookiejar.Cookie(rest={}, rfc2109=False, **values))


def save_session(state_dir: str, session: SavedSession) -> str:
    """Write ``session`` atomically to its file, mode 0600.

    Args:
        state_dir: the directory; created (mode 0700) when missing.
        session: what to save.

    Returns:
        The file's path.

    Raises:
        OSError: the directory or the file cannot be written.
    """
    statedir.ensure_dir(state_dir)
    path = session_path(state_dir, session.qq)
    data = {"version": FORMAT_VERSION, "qq": session.qq, "clientid": session.clientid,
            "psessionid": session.psessionid, "vfwebqq": session.vfwebqq,
            "msg_id": session.msg_id, "cookies": session.cookies,
            "numbers": session.numbers, "hash_variant": session.hash_variant}
    statedir.atomic_write_json(path, data)
    return path


def load_session(state_dir: str, qq: int, *,
                 clock: Callable[[], float] = time.time) -> Optional[SavedSession]:
    """Read the saved session of ``qq``.

    Args:
        state_dir: the directory of ``session-QQ.json``.
        qq: the account.
        clock: wall-clock seconds, for the set-aside file's stamp.

    Returns:
        The ``SavedSession``, its cookies ready for ``cookies_from_data``; or None when
        there is no file, when it cannot be read (logged; left in place), or when it is
        unusable: then it is moved aside to ``session-QQ.json.bad-STAMP`` with one
        warning naming it. Nothing in the file's content makes it raise.
    """
    path = session_path(state_dir, qq)
    try:
        with open(path, "rb") as source:
            raw = source.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("Cannot read session file %s (%s); logging in again", path,
                    exc.strerror or exc.__class__.__name__)
        return None
    try:
        return _parse(raw, qq)
    except _Unusable as exc:
        _set_aside(path, str(exc), clock())
        return None


class _Unusable(ValueError):
    """A session file we cannot use; the message names what is wrong, never a value."""


def _parse(raw: bytes, qq: int) -> SavedSession:
    if len(raw) > MAX_FILE_BYTES:
        raise _Unusable("larger than %d bytes" % MAX_FILE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unusable("not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _Unusable("not JSON: %s at line %d column %d" % (
            exc.msg, exc.lineno, exc.colno)) from None
    except (ValueError, RecursionError) as exc:     # NaN, 5000 digits, [[[[...
        raise _Unusable("not usable JSON: %s" % (
            exc if isinstance(exc, _Unusable) else exc.__class__.__name__)) from None
    if not isinstance(data, dict):
        raise _Unusable("not a JSON object")
    if data.get("version") != FORMAT_VERSION or isinstance(data.get("version"), bool):
        raise _Unusable("not format version %d" % FORMAT_VERSION)
    if data.get("qq") != qq or isinstance(data.get("qq"), bool):
        raise _Unusable("not the session of %d" % qq)
    cookies = data.get("cookies")
    if not isinstance(cookies, list):
        raise _Unusable("cookies is not a list")
    for number, cookie in enumerate(cookies, 1):
        _check_cookie(number, cookie)
    hash_variant = data.get("hash_variant")
    if hash_variant is not None and hash_variant not in _HASH_VARIANTS:
        raise _Unusable("hash_variant is not one of %s" % ", ".join(_HASH_VARIANTS))
    return SavedSession(qq=qq, clientid=_integer(data, "clientid", 1, 10 ** 8),
                        psessionid=_token(data, "psessionid"),
                        vfwebqq=_token(data, "vfwebqq"),
                        msg_id=_integer(data, "msg_id", 0, MAX_MSG_ID), cookies=cookies,
                        numbers=_numbers(data.get("numbers", [])),
                        hash_variant=hash_variant)


def _numbers(value: Any) -> List[List[int]]:
    """The ``numbers`` of a file (absent in files of older versions: ``[]``)."""
    if not isinstance(value, list) or len(value) > MAX_NUMBERS:
        raise _Unusable("numbers is not a list of at most %d pairs" % MAX_NUMBERS)
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(n, int) and not isinstance(n, bool) and -MAX_MSG_ID < n < MAX_MSG_ID
                for n in pair)):
            raise _Unusable("numbers holds something else than [key, number] pairs")
    return value


def _no_constant(name: str) -> Any:
    raise _Unusable("%s is not a JSON number" % name)


def _integer(data: Dict[str, Any], key: str, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < high:
        raise _Unusable("%s is not an integer in [%d, %d)" % (key, low, high))
    return value


def _token(data: Dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TOKEN_CHARS \
            or not value.isascii() or not value.isprintable() or " " in value:
        raise _Unusable("%s is not a token (printable ASCII, no spaces, 1 to %d "
                        "characters)" % (key, MAX_TOKEN_CHARS))
    return value


# What each saved cookie field may hold, beyond which http.cookiejar or the Cookie
# header it builds would break: (types allowed, None allowed).
_COOKIE_TYPES = {
    "version": ((int,), True), "name": ((str,), False), "value": ((str,), True),
    "port": ((str,), True), "port_specified": ((bool,), False),
    "domain": ((str,), False), "domain_specified": ((bool,), False),
    "domain_initial_dot": ((bool,), False), "path": ((str,), False),
    "path_specified": ((bool,), False), "secure": ((bool,), False),
    "expires": ((int, float), True), "discard": ((bool,), False),
    "comment": ((str,), True), "comment_url": ((str,), True),
}


def _check_cookie(number: int, cookie: Any) -> None:
    """Refuse a cookie entry that is not what ``cookies_to_data`` writes: a field
    missing or of another type, a number that is a bool or not finite, or a string a
    Cookie header cannot carry (a control character; ``;`` in its name or value; not
    Latin-1)."""
    if not isinstance(cookie, dict):
        raise _Unusable("cookie %d is not an object" % number)
    for name in _COOKIE_FIELDS:
        if name not in cookie:
            raise _Unusable("cookie %d has no %s" % (number, name))
        value = cookie[name]
        types, nullable = _COOKIE_TYPES[name]
        if value is None and nullable:
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)) \
                or (isinstance(value, float) and not math.isfinite(value)) \
                or (isinstance(value, str) and not _header_safe(value, name)):
            raise _Unusable("cookie %d has an unusable %s" % (number, name))


def _header_safe(text: str, field: str) -> bool:
    """True if ``text`` can sit in a Cookie header as the cookie's ``field``."""
    if field == "name" and (not text or "=" in text):
        return False
    if field in ("name", "value") and ";" in text:
        return False
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(ord(char) < 32 or ord(char) == 127 for char in text)


def _set_aside(path: str, reason: str, now: float) -> None:
    """Rename an unusable session file to ``PATH.bad-STAMP`` (never over another file),
    so the next start does not trip on it and its content stays for a look."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    target, number = "%s.bad-%s" % (path, stamp), 1
    while os.path.lexists(target):
        number += 1
        target = "%s.bad-%s-%d" % (path, stamp, number)
    try:
        os.rename(path, target)
    except OSError as exc:
        log.warning("Unusable session file %s (%s), and it cannot be moved aside (%s); "
                    "logging in again", path, reason, exc.strerror or exc)
        return
    log.warning("Unusable session file %s (%s): moved to %s; logging in again",
                path, reason, target)


def delete_session(state_dir: str, qq: int) -> None:
    """Remove the saved session of ``qq`` (after a refused resume or a logout)."""
    try:
        os.unlink(session_path(state_dir, qq))
    except FileNotFoundError:
        pass


def cookie_value(jar: http.cookiejar.CookieJar, name: str) -> Optional[str]:
    """The value of cookie ``name`` in ``jar`` (any domain), or None."""
    return next((cookie.value for cookie in jar if cookie.name == name), None)


def set_cookie(jar: http.cookiejar.CookieJar, name: str, value: str) -> None:
    """Replace cookie ``name`` where it is, or set it for ``qq.com`` (the domain of
    ``ptwebqq`` and ``skey``, docs/protocol.rst §2.3), as a poll's 116 requires."""
    old = next((cookie for cookie in jar if cookie.name == name), None)
    domain = old.domain if old is not None else ".qq.com"
    path = old.path if old is not None else "/"
    jar.set_cookie(http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False, domain=domain,
        domain_specified=True, domain_initial_dot=domain.startswith("."), path=path,
        path_specified=True, secure=False, expires=None, discard=True, comment=None,
        comment_url=None, rest={}))
