"""Session persistence: the cookies and tokens of a WebQQ login, saved between runs.

session: one JSON file per account in the state directory, written atomically with
mode 0600 (``statedir.atomic_write``), because it holds
what lets anyone resume the session (skey, ptwebqq, psessionid, vfwebqq). It never holds
the password, never uses pickle, and never logs a token: ``SavedSession.__repr__`` masks
them. A file that cannot be read is reported as None and the client logs in again.
"""
import http.cookiejar
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from webqq import statedir

__all__ = ["SavedSession", "session_path", "save_session", "load_session",
           "delete_session", "cookies_to_data", "cookies_from_data", "cookie_value",
           "set_cookie"]

log = logging.getLogger("webqq.session")

#: Bumped when the file's shape changes; a file of another version is ignored.
FORMAT_VERSION = 1

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
    """
    qq: int
    clientid: int
    psessionid: str
    vfwebqq: str
    msg_id: int
    cookies: List[Dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        return ("SavedSession(qq=%d, clientid=%d, psessionid=***, vfwebqq=***, msg_id=%d, "
                "%d cookies)" % (self.qq, self.clientid, self.msg_id, len(self.cookies)))


def session_path(state_dir: str, qq: int) -> str:
    """The session file of account ``qq`` in ``state_dir``."""
    return os.path.join(state_dir, statedir.session_file(qq))


def cookies_to_data(jar: http.cookiejar.CookieJar) -> List[Dict[str, Any]]:
    """Every cookie of ``jar`` as a JSON-ready dict (session cookies included)."""
    return [{name: getattr(cookie, name) for name in _COOKIE_FIELDS} for cookie in jar]


def cookies_from_data(jar: http.cookiejar.CookieJar, data: List[Dict[str, Any]]) -> None:
    """Put the cookies of ``cookies_to_data`` back into ``jar``.

    Raises:
        ValueError: an entry lacks a field or has one of the wrong type.
    """
    for item in data:
        try:
            values = {name: item[name] for name in _COOKIE_FIELDS}
        except (KeyError, TypeError) as exc:
            raise ValueError("cookie entry without %s" % exc) from None
        if not isinstance(values["name"], str) or not isinstance(values["value"], str):
            raise ValueError("cookie name and value must be strings")
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
            "msg_id": session.msg_id, "cookies": session.cookies}
    statedir.atomic_write_json(path, data)
    return path


def load_session(state_dir: str, qq: int) -> Optional[SavedSession]:
    """Read the saved session of ``qq``, or None when there is none or it is unusable
    (the reason is logged, without any token)."""
    path = session_path(state_dir, qq)
    try:
        with open(path, encoding="utf-8") as source:
            data = json.load(source)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("Ignoring session file %s: %s", path, exc.__class__.__name__)
        return None
    try:
        if data.get("version") != FORMAT_VERSION or data.get("qq") != qq:
            raise ValueError("another version or account")
        session = SavedSession(qq=qq, clientid=int(data["clientid"]),
                               psessionid=str(data["psessionid"]),
                               vfwebqq=str(data["vfwebqq"]), msg_id=int(data["msg_id"]),
                               cookies=list(data["cookies"]))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("Ignoring session file %s: %s", path, exc)
        return None
    return session


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
    ``ptwebqq`` and ``skey``, PROTOCOL.md §1.3), as a poll's 116 requires."""
    old = next((cookie for cookie in jar if cookie.name == name), None)
    domain = old.domain if old is not None else ".qq.com"
    path = old.path if old is not None else "/"
    jar.set_cookie(http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False, domain=domain,
        domain_specified=True, domain_initial_dot=domain.startswith("."), path=path,
        path_specified=True, secure=False, expires=None, discard=True, comment=None,
        comment_url=None, rest={}))
