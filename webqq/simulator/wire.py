"""Wire forms, both ways: the simulator's replies and the plain values of requests.

wire: pure functions shared by the protocol handlers, the back end and the event
builders. Out: JSON, ptui callbacks and Set-Cookie lines as Tencent's servers spelled
them (docs/protocol.rst §1.3, §2.3, §3.2, §3.4). In: QQ numbers, clientids, the ``uin``
cookie and the ``r`` field, read as leniently as the real servers read them (§8.16).
It knows nothing about sessions and never performs I/O.
"""
import json
import re

__all__ = [
    "JSON_TYPE", "JS_TYPE", "JPEG_TYPE", "HTML_TYPE",
    "as_int", "clientid", "cookie_qq", "dumps", "ip_number", "json_object", "ptui_callback",
    "qq_number", "set_cookie", "uin_bytes_literal", "uin_cookie",
]

# §1.3 [sim]: Content-Type of each kind of reply (no 2013 client relied on them).
JSON_TYPE = "text/plain; charset=utf-8"
JS_TYPE = "application/x-javascript; charset=utf-8"
JPEG_TYPE = "image/jpeg"
HTML_TYPE = "text/html; charset=utf-8"

# A JSON escape of a backslash, or a \uXXXX escape: scanning both alternatives left to
# right means an escaped backslash followed by "u" is never mistaken for an escape.
_ESCAPE = re.compile(r"(\\\\)|\\u([0-9a-f]{4})")

# "Expires" of the long-lived login cookies (ptcz, pt2gguin): the 32-bit time_t limit.
_FAR_FUTURE = "Tue, 19-Jan-2038 03:14:07 GMT"


def dumps(value) -> bytes:
    """JSON as d.web2 wrote it: compact, non-ASCII as upper-case ``\\uXXXX`` (§1.3)."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    if "\\u" not in text:             # nothing to upper-case (most replies)
        return text.encode("ascii")
    return _ESCAPE.sub(lambda m: m.group(1) or "\\u" + m.group(2).upper(), text).encode("ascii")


def _quote_arg(value, escape: bool) -> str:
    text = str(value)
    if escape:
        text = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'%s'" % text


def ptui_callback(name: str, *args, escape: bool = True, last_spaced: bool = False) -> bytes:
    """A login-server callback, e.g. ``ptui_checkVC('0','!PTH','\\x00…');``.

    Every argument is single-quoted. With ``escape`` a quote or backslash inside is
    backslash-escaped (our choice: no sample shows one); ``ptui_checkVC`` passes
    ``escape=False`` because its third argument *is* ``\\xNN`` escapes. ``last_spaced``
    puts the one space ``ptuiCB`` has before its sixth argument (§3.4).
    """
    quoted = [_quote_arg(a, escape) for a in args]
    if last_spaced and len(quoted) > 1:
        text = ",".join(quoted[:-1]) + ", " + quoted[-1]
    else:
        text = ",".join(quoted)
    return ("%s(%s);" % (name, text)).encode("utf-8")


def uin_bytes_literal(qq: int) -> str:
    """§3.2 argument 3: the QQ number as 8 big-endian bytes in ``\\xNN`` escapes."""
    return "".join("\\x%02x" % b for b in qq.to_bytes(8, "big"))


def uin_cookie(qq: int) -> str:
    """The ``uin`` / ``pt2gguin`` cookie value: ``o`` + the QQ number in 10 digits."""
    return "o%010d" % qq


def set_cookie(name: str, value: str, domain: str, long_lived: bool = False) -> str:
    """A Set-Cookie value with Tencent's attributes (§2.3): raw value, Domain, Path=/.

    Written by hand because Tornado's ``set_cookie`` would quote values such as
    ``@FgMFRXQ6I`` (an ``@`` is not a cookie token character), and a client's jar would
    then hold the quotes as part of ``skey``.
    """
    line = "%s=%s; Domain=%s; Path=/" % (name, value, domain)
    if long_lived:
        line += "; Expires=" + _FAR_FUTURE
    return line


# --- values read from requests -------------------------------------------------------------

def as_int(value):
    """A JSON number or a decimal string as int (clients send both, §8.16), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        return int(value)
    return None


def qq_number(text) -> int:
    """A QQ number from request text; 0 for anything that is not one."""
    value = as_int(text)
    return value if value is not None and 0 < value < 1 << 32 else 0


def cookie_qq(cookies: dict) -> int:
    """The account of the ``uin`` cookie (``o0000010001``), 0 when absent or malformed."""
    value = cookies.get("uin", "")
    return qq_number(value[1:]) if value.startswith("o") else 0


def clientid(value) -> "str | None":
    """clientid as a canonical decimal string (sent as number or string, §8.16)."""
    number = as_int(value)
    return None if number is None else str(number)


def json_object(text) -> "dict | None":
    """``text`` (the ``r`` field) as a JSON object; None when absent, malformed, too
    deeply nested or not an object."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):     # RecursionError: nested too deeply
        return None
    return value if isinstance(value, dict) else None


def ip_number(address: str) -> int:
    """``cip`` of login2: an IPv4 address as an unsigned 32-bit integer (0 for IPv6)."""
    parts = address.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return 0
    return int.from_bytes(bytes(int(p) & 0xFF for p in parts), "big")
