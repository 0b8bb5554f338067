"""The simulator's per-request plumbing made cheap for many accounts: the cookies a
request carries (parsed once per distinct header) and the JSON replies, each the same
as the plain way gives (app.py, wire.py)."""
import json
import re

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from webqq.simulator import wire
from webqq.simulator.app import CookieValues


def request(cookie=None) -> HTTPServerRequest:
    headers = HTTPHeaders({"Host": "d.web2.qq.com"})
    if cookie is not None:
        headers.add("Cookie", cookie)
    return HTTPServerRequest(start_line=RequestStartLine("POST", "/channel/poll2", "HTTP/1.1"),
                             headers=headers)


HEADERS = [
    "uin=o0000010001; skey=@FgMFRXQ6I; ptwebqq=abc",
    'quoted="a\\"b"; plain=x',              # Morsel unquotes what parse_cookie left
    "path=/x; expires=1; ok=1",             # reserved names: Morsel refuses them
    "bad key=1; ok=2; =empty; novalue",     # a space in a name; no name; no "="
    "skey=one; skey=two",                   # the last one counts
    "",
]


def test_cookie_values_are_what_request_cookies_gives():
    values = CookieValues()
    for header in HEADERS + [None]:
        expected = {n: m.value for n, m in request(header).cookies.items()}
        assert values.of(request(header)) == expected, header
        assert values.of(request(header)) == expected, header      # and again, remembered


def test_each_caller_gets_its_own_cookie_dict():
    values = CookieValues()
    first = values.of(request(HEADERS[0]))
    first["skey"] = "changed"
    assert values.of(request(HEADERS[0]))["skey"] == "@FgMFRXQ6I"


def test_a_changed_cookie_is_read_anew():
    values = CookieValues()
    assert values.of(request("uin=o0000010001; skey=old"))["skey"] == "old"
    assert values.of(request("uin=o0000010001; skey=new"))["skey"] == "new"


def test_only_the_latest_cookie_headers_are_kept():
    values = CookieValues(kept=2)
    for header in ("a=1", "b=2", "a=1", "c=3"):      # "a" was used again: "b" goes
        values.of(request(header))
    assert list(values._values) == ["a=1", "c=3"]


_SLOW_ESCAPE = re.compile(r"(\\\\)|\\u([0-9a-f]{4})")


def test_json_replies_upper_case_escapes_only_where_there_are_some():
    for value in [{"retcode": 0, "result": "ok"}, {"name": "宋体", "text": "é"},
                  {"text": "a\\b"}, {"text": "\\u00e9 literally"}, {"text": "\\\\u12ab"},
                  [1, 2.5, None, True, "x\n\"y\""]]:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
        slow = _SLOW_ESCAPE.sub(lambda m: m.group(1) or "\\u" + m.group(2).upper(), text)
        assert wire.dumps(value) == slow.encode("ascii")
        assert json.loads(wire.dumps(value)) == value
