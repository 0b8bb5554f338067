"""URLs as they may be shown: credentials in a URL (userinfo, query values) masked.

Used wherever a configured URL reaches a log line, a repr or an error message; the
daemon's log mask learns the same parts from ``url_secrets``.
"""
import urllib.parse
from typing import Optional, Tuple

__all__ = ["MASK", "redact_url", "url_secrets"]

#: What a secret looks like in reprs, logs and ``webqq check``.
MASK = "********"


def redact_url(url: str) -> str:
    """``url`` as it may be shown or logged: the userinfo and every query value replaced
    by ``MASK`` (``http://********@host/hook?key=********``); the rest unchanged."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = "&".join(
        (item.partition("=")[0] + "=" + MASK) if "=" in item else MASK
        for item in parts.query.split("&")) if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query,
                                    parts.fragment))


def url_secrets(url: Optional[str]) -> Tuple[str, ...]:
    """The parts of ``url`` that ``redact_url`` hides, as written and decoded, for
    ``logs.SecretMask``: the userinfo's password (the user when there is none: then it
    is the credential, ``https://TOKEN@host``) and the query values."""
    if not url:
        return ()
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return (url,)
    found = []
    if "@" in parts.netloc:
        user, _, password = parts.netloc.rpartition("@")[0].partition(":")
        found.append(password or user)
    for item in parts.query.split("&"):
        found.append(item.partition("=")[2] if "=" in item else item)
    found += [urllib.parse.unquote_plus(part) for part in found]
    return tuple(dict.fromkeys(part for part in found if part))
