"""Load llhttp's response test vectors (tests/data/llhttp, MIT, see LICENSE there).

Each vector is a raw response plus what llhttp, Node.js's strict parser, made of
it. `cases()` yields the strict ones ("type": "response") as `Vector` values; the
README beside the data explains the format.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

DATA = Path(__file__).parent / "data" / "llhttp"

_SECTION = re.compile(
    r"^#{2,4} (?P<title>.+?)\n(?P<text>.*?)(?=^#{2,4} |\Z)", re.M | re.S)
_META = re.compile(r"<!-- meta=(\{.*?\}) -->")
_HTTP = re.compile(r"```http\n(.*?)\n```", re.S)
_LOG = re.compile(r"```log\n(.*?)\n```", re.S)
_ESCAPE = re.compile(r"\\(r|n|t|f|x[0-9a-fA-F]{2}|[0-7]{1,3})")
_HEAD = re.compile(r"headers complete status=(\d+) v=\S+ flags=([0-9a-f]+)")
_ERROR = re.compile(r'error code=\d+ reason="(.*)"')
# llhttp's header flags (llhttp.h): chunked, and a Content-Length was given.
_F_CHUNKED = 0x08
_F_CONTENT_LENGTH = 0x20
_BODY = re.compile(r'span\[body\]=(?:"(.*)"|(lf|cr))$', re.M)


@dataclass(frozen=True)
class Vector:
    """One strict llhttp case.

    `raw` is the response as bytes. When llhttp completed the message,
    `status` and `body` say what it saw; `error` holds llhttp's reason when it
    refused the input; when neither, llhttp was still waiting for bytes.
    """

    name: str
    raw: bytes
    status: Optional[int]
    body: Optional[bytes]
    error: Optional[str]
    complete: bool
    read_to_close: bool


def _unescape(text: str) -> bytes:
    def one(match: "re.Match[str]") -> str:
        code = match.group(1)
        simple = {"r": "\r", "n": "\n", "t": "\t", "f": "\f"}
        if code in simple:
            return simple[code]
        if code.startswith("x"):
            return chr(int(code[1:], 16))
        return chr(int(code, 8))
    return _ESCAPE.sub(one, text).encode("latin-1")


def _raw(block: str) -> bytes:
    # llhttp's runner: a trailing backslash joins lines, line breaks become CRLF,
    # then escapes become bytes.
    block = re.sub(r"\\\n", "", block)
    return _unescape(block.replace("\n", "\r\n"))


def _body(log: str) -> bytes:
    pieces = []
    for match in _BODY.finditer(log):
        quoted, lone = match.groups()
        pieces.append(quoted if lone is None else {"lf": "\n", "cr": "\r"}[lone])
    return "".join(pieces).encode("latin-1")


def _expected(log: str) -> Tuple[Optional[int], Optional[bytes], Optional[str], bool, bool]:
    """What llhttp made of the first final (non-1xx) response in `log`."""
    for message in log.split("message begin")[1:]:
        head = _HEAD.search(message)
        error = _ERROR.search(message)
        if head is None:
            return None, None, error.group(1) if error else None, False, False
        status, flags = int(head.group(1)), int(head.group(2), 16)
        if 100 <= status < 200 and status != 101 and "message complete" in message:
            continue
        complete = "message complete" in message
        framed = flags & (_F_CHUNKED | _F_CONTENT_LENGTH) or status in (204, 304)
        read_to_close = not complete and not error and not framed
        return (status, _body(message.split("message complete")[0]),
                error.group(1) if error else None, complete, read_to_close)
    return None, None, None, False, False


def cases() -> Iterator[Vector]:
    """Every strict response vector (not the HEAD-only ones), in file order."""
    for path in sorted(DATA.glob("*.md")):
        if path.name == "README.md":
            continue
        text = path.read_text(encoding="utf-8")
        for section in _SECTION.finditer(text):
            meta = _META.search(section.group("text"))
            http = _HTTP.search(section.group("text"))
            log = _LOG.search(section.group("text"))
            if not (meta and http and log):
                continue
            options = json.loads(meta.group(1))
            if options.get("type") != "response" or options.get("skipBody"):
                continue
            status, body, error, complete, read_to_close = _expected(log.group(1))
            yield Vector(
                name=f"{path.stem}: {section.group('title').strip()}",
                raw=_raw(http.group(1)), status=status, body=body, error=error,
                complete=complete, read_to_close=read_to_close)
