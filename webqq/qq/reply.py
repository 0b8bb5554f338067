"""The reading every parser shares: a reply's JSON envelope, its typed fields, JS callbacks.

reply: no I/O, and never ``eval``: JSON is read with :mod:`json`, the ``ptui_checkVC`` and
``ptuiCB`` callbacks are tokenized strictly. Every failure is a ``MalformedReply`` naming
the endpoint and the path of the key (``result.ginfo.code``), or a ``RetcodeError``.

The parsers themselves live in ``login_replies``, ``list_replies``, ``poll`` and ``acks``.
"""
import json
import re
from typing import Any, Dict, List

from webqq.qq import content as qq_content
from webqq.qq.errors import MalformedReply, RetcodeError

__all__ = ["text_of", "load_reply", "result_of", "result_fields",
           "errmsg_of", "json_excerpt", "ReplyFields", "js_call", "js_unescape"]


def json_excerpt(value: Any) -> str:
    """At most 80 characters of ``value`` as JSON, for an error message."""
    try:
        return json.dumps(value, ensure_ascii=False)[:80]
    except RecursionError:
        return "(nested too deeply to quote)"


def text_of(body: bytes, endpoint: str) -> str:
    """``body`` decoded as UTF-8; a ``MalformedReply`` quoting the spot when it is not."""
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        around = body[max(0, exc.start - 30):exc.start + 30]
        raise MalformedReply(endpoint, "not UTF-8 at byte %d" % exc.start,
                             around.decode("utf-8", "replace")) from None


def load_reply(body: bytes, endpoint: str) -> Dict[str, Any]:
    """The JSON envelope ``{"retcode": N, ...}`` of a reply, whatever its retcode."""
    text = text_of(body, endpoint)
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


def errmsg_of(reply: Dict[str, Any]) -> str:
    """The reply's ``errmsg`` as text ("" when absent)."""
    errmsg = reply.get("errmsg", "")
    return errmsg if isinstance(errmsg, str) else json_excerpt(errmsg)


def result_of(body: bytes, endpoint: str) -> Any:
    """The ``result`` of a reply with retcode 0; any other retcode raises."""
    reply = load_reply(body, endpoint)
    if reply["retcode"] != 0:
        raise RetcodeError(endpoint, reply["retcode"], errmsg_of(reply))
    if "result" not in reply:
        raise MalformedReply(endpoint, "retcode 0 without a result", json_excerpt(reply))
    return reply["result"]


def result_fields(body: bytes, endpoint: str) -> "ReplyFields":
    """``result_of`` as ``ReplyFields``: the result must be an object."""
    return ReplyFields(endpoint, result_of(body, endpoint), "result")


_REQUIRED = object()
_INTEGER = re.compile(r"-?[0-9]+")


class ReplyFields:
    """Typed access to one JSON object of a reply; every failure is a MalformedReply
    naming the endpoint and the path of the key (``result.ginfo.code``).

    Attributes:
        value: the object itself (a ``dict``), for what the typed readers leave out.
    """

    def __init__(self, endpoint: str, value: Any, where: str):
        if not isinstance(value, dict):
            raise MalformedReply(endpoint, "%s is not an object" % where, json_excerpt(value))
        self.endpoint = endpoint
        self.value = value
        self.where = where

    def _absent(self, key: str, default: Any) -> Any:
        if default is _REQUIRED:
            raise MalformedReply(self.endpoint, "missing key %r in %s" % (key, self.where),
                                 json_excerpt(self.value))
        return default

    def _wrong(self, key: str, expected: str):
        raise MalformedReply(self.endpoint, "%s.%s is not %s" % (self.where, key, expected),
                             json_excerpt(self.value[key]))

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

    def objects(self, key: str, default: Any = _REQUIRED) -> List["ReplyFields"]:
        """The objects of an array."""
        items = self.array(key, default)
        return [ReplyFields(self.endpoint, item, "%s.%s[%d]" % (self.where, key, i))
                for i, item in enumerate(items)]

    def object(self, key: str) -> "ReplyFields":
        return ReplyFields(self.endpoint, self.value.get(key), "%s.%s" % (self.where, key))

    def content(self) -> qq_content.Content:
        """The ``content`` array, decoded."""
        try:
            return qq_content.decode_content(self.value.get("content"))
        except qq_content.MalformedContent as exc:
            raise MalformedReply(self.endpoint, "%s.content: %s" % (self.where, exc),
                                 json_excerpt(self.value.get("content"))) from None


# JS callbacks: name('arg', 'arg', ...) with single-quoted arguments (§2.3, §2.5).
_JS_CALL = re.compile(r"([A-Za-z_$][\w$]*)\s*\((.*)\)", re.S)
_JS_ARG = re.compile(r"\s*'((?:[^'\\\r\n]|\\.)*)'\s*")
_JS_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|.)", re.S)
_JS_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v",
                      "0": "\0"}


def js_call(body: bytes, endpoint: str, name: str, arity: int) -> List[str]:
    """The arguments of a ``name('a','b',...);`` reply, still JS-escaped.

    Whitespace around the call, around arguments and the final ``;`` are tolerated;
    arguments beyond ``arity`` (later page versions add some) are returned but unused.
    Anything that is not a call of ``name`` with single-quoted strings is refused.
    """
    text = text_of(body, endpoint).strip()
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


def js_unescape(text: str) -> str:
    """A JS string literal's content with its escapes resolved."""
    def replace(match):
        escape = match.group(1)
        if escape[0] in "xu" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _JS_SIMPLE_ESCAPES.get(escape, escape)
    return _JS_ESCAPE.sub(replace, text)
