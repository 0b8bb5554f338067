"""Value converters of the ini file: one named function per kind of value.

What it is for: each converter takes the stripped text of one value and returns its
typed value (``port("18080") -> 18080``, ``seconds("0.5") -> 0.5``), or raises
ValueError whose message quotes the bad text; ``webqq.daemon.config`` calls one per key
and turns the ValueError into a ``ConfigError`` naming file, section and key. ``optional``
wraps a converter so that an empty value means "not set".

What it must never do: know about sections, files or defaults, touch the file system
beyond ``existing_file``'s and ``existing_directory``'s look, or quote a secret (``access_token``).
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import urllib.parse
from pathlib import Path
from typing import Callable, Optional, Tuple, TypeVar, Union

from webqq.client.send_queue import MIN_SEND_INTERVAL
from webqq.http.redact import redact_url

T = TypeVar("T")

_TRUE = frozenset({"yes", "true", "on", "1"})
_FALSE = frozenset({"no", "false", "off", "0"})
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "error": logging.ERROR, "critical": logging.CRITICAL}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
               "g": 1024 ** 3, "gb": 1024 ** 3}
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# QQ numbers start at 10000 and fit the protocol's 32-bit unsigned integers.
_QQ_RANGE = (10000, 2 ** 32 - 1)


def boolean(value: str) -> bool:
    """``yes``/``no``, ``true``/``false``, ``on``/``off``, ``1``/``0``, any case."""
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (yes/no, true/false, on/off, 1/0)")


def count(value: str) -> int:
    """A whole number, 0 or more (``retries``, ``log_backups``)."""
    if not re.fullmatch(r"\d+", value):
        raise ValueError(f"{value!r} is not a whole number (0 or more)")
    return int(value)


def port(value: str) -> int:
    """A TCP port to connect to, 1 to 65535."""
    if not re.fullmatch(r"\d+", value) or not 1 <= int(value) <= 65535:
        raise ValueError(f"{value!r} is not a port (1 to 65535)")
    return int(value)


def bind_port(value: str) -> int:
    """A TCP port to listen on, 0 to 65535; 0 lets the system pick a free one."""
    if not re.fullmatch(r"\d+", value) or not 0 <= int(value) <= 65535:
        raise ValueError(f"{value!r} is not a port (0 to 65535, 0: any free port)")
    return int(value)


def seconds(value: str) -> float:
    """A duration in seconds, 0 or more, as ``2`` or ``0.5``."""
    if not re.fullmatch(r"\d+(\.\d+)?", value):
        raise ValueError(f"{value!r} is not a number of seconds")
    return float(value)


def send_interval(value: str) -> float:
    """Seconds between two sends, at least ``MIN_SEND_INTERVAL`` (0.5): the 2013 server
    silently dropped messages sent closer together (docs/protocol.rst §7.3)."""
    duration = seconds(value)
    if duration < MIN_SEND_INTERVAL:
        raise ValueError(f"{value!r} is less than {MIN_SEND_INTERVAL:g} s: the server "
                         f"silently dropped messages sent closer together")
    return duration


#: ``[account] era``: how to log in (docs/protocol.rst §1.1).
ERAS = ("auto", "A", "B")


def era(value: str) -> str:
    """``auto``, ``A`` or ``B`` (any case): the login of spring 2013 (A), of late 2013
    (B), or whichever the login page shows (auto)."""
    for name in ERAS:
        if value.lower() == name.lower():
            return name
    raise ValueError(f"{value!r} is not an era (auto, A or B)")


def positive_seconds(value: str) -> float:
    """A duration in seconds greater than 0 (timeouts)."""
    duration = seconds(value)
    if duration == 0:
        raise ValueError(f"{value!r} is not more than 0 seconds")
    return duration


def byte_size(value: str) -> int:
    """A size in bytes: ``1048576``, ``512KB``, ``10MB``, ``1GB`` (units of 1024)."""
    match = re.fullmatch(r"(\d+)\s*([a-z]*)", value.lower())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size in bytes (e.g. 0, 512KB, 10MB, 1GB)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def loglevel(value: str) -> int:
    """A level name, any case, returned as the ``logging`` number (``info`` -> 20)."""
    try:
        return _LOG_LEVELS[value.lower()]
    except KeyError:
        names = ", ".join(_LOG_LEVELS)
        raise ValueError(f"{value!r} is not a log level ({names})") from None


def qq_number(value: str) -> int:
    """A QQ number: digits, 10000 to 4294967295."""
    low, high = _QQ_RANGE
    if not re.fullmatch(r"[1-9]\d*", value) or not low <= int(value) <= high:
        raise ValueError(f"{value!r} is not a QQ number (digits, {low} to {high})")
    return int(value)


def host_name(value: str) -> str:
    """A DNS host name (``d.web2.qq.com``), returned in lower case."""
    lowered = value.lower()
    labels = lowered.split(".")
    if (len(lowered) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels)
            or labels[-1].isdigit()):
        raise ValueError(f"{value!r} is not a host name")
    return lowered


def _host_port(value: str, lowest_port: int) -> Tuple[str, int]:
    match = re.fullmatch(r"\[([^\]]*)\]:(\d+)|([^:\[\]]+):(\d+)", value)
    if not match:
        raise ValueError(f"{value!r} is not HOST:PORT (an IPv6 address in brackets: "
                         f"[::1]:18080)")
    if match.group(1) is not None:
        host, number = match.group(1), int(match.group(2))
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} is not an IPv6 address") from None
    else:
        host, number = match.group(3), int(match.group(4))
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            try:
                host = host_name(host)
            except ValueError:
                raise ValueError(f"{value!r}: {host!r} is neither an IP address nor a "
                                 f"host name") from None
    if not lowest_port <= number <= 65535:
        raise ValueError(f"{value!r}: {number} is not a port ({lowest_port} to 65535)")
    return host, number


def host_port(value: str) -> Tuple[str, int]:
    """Where to connect: ``127.0.0.1:18080``, ``localhost:18080``, ``[::1]:18080``.

    Returns ``(host, port)`` with IPv6 brackets removed, as ``HTTPStream(hosts=)`` takes.
    """
    return _host_port(value, lowest_port=1)


def listen_address(value: str) -> Tuple[str, int]:
    """Where to listen: like ``host_port``, but port 0 lets the system pick one."""
    return _host_port(value, lowest_port=0)


def _url(value: str, schemes: Tuple[str, str]) -> str:
    parts = urllib.parse.urlsplit(value)
    try:
        parts.port  # raises ValueError on a port out of range or not a number
    except ValueError:
        raise ValueError(f"{redact_url(value)!r} has a bad port") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{redact_url(value)!r} is not a URL starting with "
                         f"{schemes[0]}:// or {schemes[1]}://")
    return value


# URLs may carry credentials: ``http://user:pass@host/?key=...``, ``?access_token=...``.

def http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (``[api] post_url``)."""
    return _url(value, ("http", "https"))


def ws_url(value: str) -> str:
    """A ``ws://`` or ``wss://`` URL with a host (``[api] ws_reverse_url``)."""
    return _url(value, ("ws", "wss"))


def module_names(value: str) -> Tuple[str, ...]:
    """Python module names separated by commas, blanks or newlines; empty: none."""
    names = tuple(name for name in re.split(r"[,\s]+", value) if name)
    for index, name in enumerate(names):
        if not _MODULE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a Python module name")
        if name in names[:index]:
            raise ValueError(f"{name!r} is listed twice")
    return names


def friend_policy(value: str) -> Union[bool, Tuple[int, ...]]:
    """``[bot] accept_friends``: ``no`` (accept no friend request by itself), ``all``
    (accept every one; ``yes`` too), or QQ numbers separated by commas or blanks
    (accept theirs)."""
    lowered = value.lower()
    if lowered == "all" or lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    numbers = tuple(qq_number(number) for number in re.split(r"[,\s]+", value) if number)
    if not numbers:
        raise ValueError(f"{value!r} is not no, all or QQ numbers")
    return numbers


def email_addresses(value: str) -> Tuple[str, ...]:
    """E-mail addresses (``name@host``) separated by commas or blanks; at least one."""
    found = tuple(address for address in re.split(r"[,\s]+", value) if address)
    for address in found:
        if not re.fullmatch(r"[^@\s<>\"]+@[A-Za-z0-9.-]+", address):
            raise ValueError(f"{address!r} is not an e-mail address (name@host)")
    if not found:
        raise ValueError(f"{value!r} holds no e-mail address")
    return found


def smtp_security(value: str) -> str:
    """How the SMTP connection is protected: ``starttls`` (port 587), ``tls`` (port
    465) or ``none`` (a relay on this machine)."""
    lowered = value.lower()
    if lowered not in ("starttls", "tls", "none"):
        raise ValueError(f"{value!r} is not starttls, tls or none")
    return lowered


def command_prefix(value: str) -> str:
    """What starts a bot command (``!ping``): one or more characters, no blanks."""
    if not value:
        raise ValueError("'' is empty (a ';' after a space starts a comment: "
                         "write command_prefix =;)")
    if re.search(r"\s", value):
        raise ValueError(f"{value!r} contains blanks")
    return value


def text(value: str) -> str:
    """Any single-line text, unchanged (passwords, tokens)."""
    return value


def access_token(value: str) -> str:
    """``[api] token``: printable ASCII without blanks, since it travels in an HTTP
    header (``Authorization: Bearer``, latin-1 on the wire) and a query string. The
    message never quotes it: it is a secret."""
    if not all("!" <= char <= "~" for char in value):
        raise ValueError("must be printable ASCII without spaces (the value is not "
                         "shown: a secret)")
    return value


def path(value: str, base: Path) -> Path:
    """A file system path; ``~`` expanded, a relative one taken from ``base``.

    Returns an absolute, normalized path (``conf/../run`` becomes ``run``).
    """
    if not value:
        raise ValueError("'' is not a path")
    return Path(os.path.normpath(base / os.path.expanduser(value)))


def existing_file(value: str, base: Path) -> Path:
    """Like ``path``, and the file must exist (``ca_file``, ``world``)."""
    resolved = path(value, base)
    if not resolved.is_file():
        raise ValueError(f"{value!r} is not a file: {resolved} does not exist")
    return resolved


def existing_directory(value: str, base: Path) -> Path:
    """Like ``path``, and the directory must exist (``media_dir``)."""
    resolved = path(value, base)
    if not resolved.is_dir():
        raise ValueError(f"{value!r} is not a directory: {resolved} does not exist")
    return resolved


def optional(convert: Callable[[str], T]) -> Callable[[str], Optional[T]]:
    """Wraps a converter so that an empty value means None ("not set")."""
    def convert_unless_empty(value: str) -> Optional[T]:
        return None if value == "" else convert(value)
    return convert_unless_empty
