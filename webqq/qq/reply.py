"""The reading every parser shares: a reply's JSON envelope, its typed fields, JS callbacks.

reply: no I/O, and never ``eval``: JSON is read with :mod:`json`, the ``ptui_checkVC`` and
``ptuiCB`` callbacks are tokenized strictly. What it guarantees to the parsers above it:

* every failure is a ``MalformedReply`` naming the endpoint and the path of the key
  (``result.ginfo.code``), or a ``RetcodeError``;
* every string is storable: a lone UTF-16 surrogate, which a JSON ``\\ud800`` escape or a
  JS ``\\ud800`` can carry but UTF-8 (and so SQLite, a log file or a webhook body) cannot,
  becomes U+FFFD; a proper surrogate pair stays the character it encodes;
* every integer fits a signed 64-bit field, and every id is in ``0..MAX_ID``.

The parsers themselves live in ``login_replies``, ``list_replies``, ``poll`` and ``acks``.
"""
import json
import re
from typing import Any, Dict, List

from webqq.qq import content as qq_content
from webqq.qq.errors import MalformedReply, RetcodeError

__all__ = ["MAX_ID", "storable", "text_of", "load_reply", "result_of", "result_fields",
           "errmsg_of", "json_excerpt", "ReplyFields", "js_call", "js_unescape"]

#: The largest id (uin, gid, code, did, msg_id, QQ number) a reply may carry. The 2013
#: server's ids fit in 32 bits unsigned (uins like 2440652742, msg_id2 up to ten digits),
#: and the protocol's own advice is to hold them in 64-bit integers; what reads them after
#: us (the message store's SQLite INTEGER, OneBot's int64 ids) holds nothing larger than
#: a signed 64-bit value. A negative id never occurred. An id outside 0..MAX_ID is a
#: broken reply, refused here rather than failing later where it is stored.
MAX_ID = 2 ** 63 - 1
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1

# A lone surrogate can only come from an escape (the body is decoded strictly as UTF-8,
# which has no surrogates): this finds the escapes that might make one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD and every surrogate pair
    joined into the character it encodes; other text is returned unchanged."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _make_storable(value: Any) -> Any:
    """The parsed JSON ``value`` with ``storable`` applied to every string, keys too.

    Lists and objects are changed in place, walked with an explicit stack: a reply as
    deeply nested as ``json`` accepts does not exhaust the recursion limit here.
    """
    if isinstance(value, str):
        return storable(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = storable(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        elif isinstance(node, dict):
            for key in list(node):
                item = node[key]
                if isinstance(item, str):
                    item = node[key] = storable(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
                fixed = storable(key)
                if fixed != key:
                    del node[key]
                    node[fixed] = item
    return value


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
    """The JSON envelope ``{"retcode": N, ...}`` of a reply, whatever its retcode, with
    every string made ``storable``."""
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
    if _SURROGATE_ESCAPE.search(text):
        reply = _make_storable(reply)
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
        """A signed 64-bit integer; digit strings count (§8.16); an optional "" counts
        as absent; a bool is not a number."""
        value = self.value.get(key)
        if value is None or (value == "" and default is not _REQUIRED):
            return self._absent(key, default)
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            value = int(value) if len(value) <= 20 else _INT64_MAX + 1
        if type(value) is not int:
            return self._wrong(key, "an integer")
        if not _INT64_MIN <= value <= _INT64_MAX:
            return self._wrong(key, "a 64-bit integer")
        return value

    def id(self, key: str, default: Any = _REQUIRED) -> Any:
        """An id: a ``number`` in ``0..MAX_ID`` (``default``: None or an id)."""
        value = self.number(key, default)
        if type(value) is int and not 0 <= value <= MAX_ID:
            return self._wrong(key, "an id (an integer in 0..2**63-1)")
        return value

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


# JS callbacks: name('arg', 'arg', ...) with single-quoted arguments (§3.2, §3.4).
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
    """A JS string literal's content with its escapes resolved, made ``storable``."""
    def replace(match):
        escape = match.group(1)
        if escape[0] in "xu" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _JS_SIMPLE_ESCAPES.get(escape, escape)
    return storable(_JS_ESCAPE.sub(replace, text))
