"""The content of a WebQQ message: its pieces, faces and font, read, written and split.

content: values only. Nothing here does I/O or knows an endpoint; the parsers read a
poll item's content with ``decode_content``, the send builders write it with
``encode_content``, and a text too long for one message is cut with ``split_content``
before it is sent. Must never lose a character: splitting joins back to the original.

Content (§4.14, §6.1) is a JSON array of pieces: text strings and lists such as
``["face", 14]`` or ``["font", {...}]``. Received content has the font *first*, sent
content has it *last*. ``decode_content`` reads either order into a ``Content`` that keeps
the raw array and offers ``.text`` (faces marked ``[face:14]``, pictures ``[image]``);
``encode_content`` writes the sent form from ``Outgoing`` content: a text, or texts and
``Face`` pieces in order.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

__all__ = [
    "MAX_TEXT_CHARS", "MalformedContent",
    "Font", "DEFAULT_FONT", "Text", "Face", "Image", "UnknownPiece", "Piece", "Content",
    "Outgoing", "decode_content", "decode_sent_content", "encode_content", "content_text",
    "split_text", "split_content",
]

# No 2013 source states the server's length limit (§6.3): MC only distinguishes "too
# long" failures, PB pastes replies longer than 150 characters elsewhere and treats
# received texts over 300 as long. 300 code points per message is our choice: well inside
# what the official clients sent, and few enough parts for a long reply.
MAX_TEXT_CHARS = 300

# The advert the browser client appended to every message (§4.14); PB strips it.
_ADVERT = re.compile(r"\n?【提示：此用户正在使用Q\+ Web：http://web\d?\.qq\.com/】")


class MalformedContent(ValueError):
    """Raised when a content array or one of its pieces does not have the §4.14 shape.

    The reply parsers report it as a ``MalformedReply`` of the endpoint concerned.
    """


def _excerpt(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except RecursionError:
        return "(nested too deeply to quote)"
    return text if len(text) <= 60 else text[:57] + "..."


# --- pieces ----------------------------------------------------------------------------

_COLOR = re.compile(r"[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class Font:
    """The ``["font", {...}]`` piece: how the sender's text looks (§4.14, §6.1).

    ``size`` is a point size; ``color`` six hex digits (``"000000"``); the three flags are
    the wire's ``style`` list ``[bold, italic, underline]``.
    """
    name: str = "宋体"
    size: int = 10
    color: str = "000000"
    bold: bool = False
    italic: bool = False
    underline: bool = False

    def to_wire(self) -> list:
        """The piece as sent: ``["font", {"name", "size", "style", "color"}]``."""
        style = [int(self.bold), int(self.italic), int(self.underline)]
        return ["font", {"name": self.name, "size": self.size, "style": style,
                         "color": self.color}]

    @classmethod
    def from_wire(cls, attrs: Any) -> "Font":
        """Read the mapping of a ``font`` piece; ``size`` may be a number or a string.

        Raises:
            MalformedContent: a key is missing or has the wrong type.
        """
        if not isinstance(attrs, dict):
            raise MalformedContent("font attributes are not an object: %s" % _excerpt(attrs))
        name, size, color = attrs.get("name"), attrs.get("size"), attrs.get("color")
        style = attrs.get("style", [0, 0, 0])
        if isinstance(size, str) and size.isdigit():
            size = int(size)
        if (not isinstance(name, str) or type(size) is not int
                or not isinstance(color, str) or not _COLOR.fullmatch(color)
                or not isinstance(style, list) or len(style) != 3
                or any(flag not in (0, 1) for flag in style)):
            raise MalformedContent("malformed font: %s" % _excerpt(attrs))
        return cls(name, size, color, *(bool(flag) for flag in style))


# The font of the §6.1 example: what the Chinese clients of 2013 defaulted to.
DEFAULT_FONT = Font()


@dataclass(frozen=True)
class Text:
    """A text piece, exactly as received (line breaks not normalised)."""
    text: str


@dataclass(frozen=True)
class Face:
    """A built-in emoticon, ``["face", code]``; the code is the wire code (§4.14)."""
    code: int

    def to_wire(self) -> list:
        """The piece as sent: ``["face", code]``."""
        return ["face", self.code]


@dataclass(frozen=True)
class Image:
    """A picture reference (§4.14), shown as ``[image]`` in ``Content.text``.

    ``kind`` is the wire name: ``"offpic"`` (a friend's offline picture; ``name`` is its
    ``file_path``), ``"cface"`` (a custom face; ``name`` is the file name), ``"pic_id"``
    (``name`` is the picture id) or ``"image"`` (``name`` is the format, e.g. ``"jpg"``;
    it follows a ``pic_id`` and then marks the same picture).
    """
    kind: str
    name: str


@dataclass(frozen=True)
class UnknownPiece:
    """A list piece of a kind this module does not know; rendered as nothing."""
    raw: list = field(hash=False)


#: A piece of received content (the font is kept apart, in ``Content.font``).
Piece = Union[Text, Face, Image, UnknownPiece]

#: Content to send: a text, or texts and ``Face`` pieces in order. What every send
#: builder, ``encode_content`` and ``split_content`` take.
Outgoing = Union[str, Sequence[Union[str, Face]]]


@dataclass(frozen=True)
class Content:
    """Decoded message content.

    Attributes:
        pieces: the text and picture pieces in order, the font excluded.
        font: the sender's font, or None when the array carried none.
        raw: the JSON array as received, for anything the pieces do not keep.
    """
    pieces: Tuple[Piece, ...]
    font: Optional[Font]
    raw: list = field(hash=False, repr=False)

    @property
    def text(self) -> str:
        """The message as plain text, the way a text-only bot wants it.

        Faces become ``[face:N]``, pictures ``[image]``; ``\\r\\n`` and ``\\r`` become
        ``\\n``; the Q+ Web advert is removed, and so is the one trailing space the PC
        client adds to every message.
        """
        parts = []
        previous = None
        for piece in self.pieces:
            if isinstance(piece, Text):
                parts.append(piece.text)
            elif isinstance(piece, Face):
                parts.append("[face:%d]" % piece.code)
            elif isinstance(piece, Image):
                follows_its_id = (piece.kind == "image" and isinstance(previous, Image)
                                  and previous.kind == "pic_id")
                if not follows_its_id:
                    parts.append("[image]")
            previous = piece
        text = "".join(parts).replace("\r\n", "\n").replace("\r", "\n")
        text = _ADVERT.sub("", text)
        return text[:-1] if text.endswith(" ") else text


def _decode_piece(item: Any) -> Union[Piece, Font]:
    if isinstance(item, str):
        return Text(item)
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise MalformedContent("content piece is neither text nor a [name, ...] list: %s"
                           % _excerpt(item))
    kind, args = item[0], item[1:]
    if kind == "font" and len(args) == 1:
        return Font.from_wire(args[0])
    if kind == "face" and len(args) == 1 and type(args[0]) is int and args[0] >= 0:
        return Face(args[0])
    if kind in ("offpic", "cface") and args:
        # Received form: a mapping; sent form (and cface in friend messages): strings;
        # sent group pictures read ["cface", "group", "<NAME>"].
        key = "file_path" if kind == "offpic" else "name"
        if isinstance(args[0], dict):
            name = args[0].get(key)
        elif kind == "cface" and args[0] == "group" and len(args) > 1:
            name = args[1]
        else:
            name = args[0]
        if not isinstance(name, str):
            raise MalformedContent("malformed %s piece: %s" % (kind, _excerpt(item)))
        return Image(kind, name)
    if kind in ("pic_id", "image") and args and isinstance(args[0], str):
        return Image(kind, args[0])
    if kind in ("font", "face", "offpic", "cface", "pic_id", "image"):
        raise MalformedContent("malformed %s piece: %s" % (kind, _excerpt(item)))
    return UnknownPiece(item)


def decode_content(content: Any) -> Content:
    """Decode a content array, received (font first) or sent (font last).

    Args:
        content: the parsed JSON array (a poll item's ``value.content``).

    Returns:
        The ``Content``; its ``font`` is the first font piece found, or None.

    Raises:
        MalformedContent: ``content`` is not a list, or a known piece is malformed.
    """
    if not isinstance(content, list):
        raise MalformedContent("content is not an array: %s" % _excerpt(content))
    pieces = []
    font = None
    for item in content:
        piece = _decode_piece(item)
        if isinstance(piece, Font):
            font = font or piece
        else:
            pieces.append(piece)
    return Content(tuple(pieces), font, content)


def decode_sent_content(content: str) -> Content:
    """Decode the ``content`` string of a send request (§6.1), as a server does.

    Args:
        content: the JSON text found in ``r.content`` of a ``send_*_msg2`` request.

    Returns:
        The ``Content``.

    Raises:
        MalformedContent: not JSON, or not a valid content array.
    """
    try:
        parsed = json.loads(content)
    except ValueError as exc:
        raise MalformedContent("content is not JSON (%s): %r" % (exc, content[:60])) from None
    return decode_content(parsed)


def encode_content(pieces: Outgoing, font: Font = DEFAULT_FONT) -> str:
    """Encode pieces into the ``content`` string of a send request (§6.1).

    Args:
        pieces: a text, or a sequence of texts and ``Face`` pieces, in order.
        font: the font appended as the last piece.

    Returns:
        The JSON text of the array (non-ASCII escaped as ``\\uXXXX``, as PB sent it),
        ready to be placed as a string into ``r``.

    Raises:
        TypeError: a piece is neither ``str`` nor ``Face``.
    """
    if isinstance(pieces, str):
        pieces = [pieces]
    wire = []
    for piece in pieces:
        if isinstance(piece, str):
            wire.append(piece)
        elif isinstance(piece, Face):
            wire.append(piece.to_wire())
        else:
            raise TypeError("a content piece is a str or a Face, not %r" % (piece,))
    wire.append(font.to_wire())
    return json.dumps(wire, separators=(",", ":"))


def content_text(content: Outgoing) -> str:
    """The plain text of outgoing content, faces as ``[face:N]`` (``Content.text``'s form)."""
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else "[face:%d]" % p.code for p in content)


# --- splitting long texts --------------------------------------------------------------

_ZWJ = "\u200d"


def _is_extender(char: str) -> bool:
    """True for a code point that belongs to the character before it."""
    point = ord(char)
    return (unicodedata.category(char) in ("Mn", "Me", "Mc")
            or char == _ZWJ
            or 0xFE00 <= point <= 0xFE0F          # variation selectors
            or 0xE0100 <= point <= 0xE01EF        # variation selectors supplement
            or 0x1F3FB <= point <= 0x1F3FF        # emoji skin-tone modifiers
            or 0xE0020 <= point <= 0xE007F        # emoji tag sequences
            or 0xDC00 <= point <= 0xDFFF)         # a low surrogate (text from UTF-16)


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _can_break_before(text: str, index: int) -> bool:
    """Whether ``text[:index]`` and ``text[index:]`` are whole characters.

    An approximation of Unicode extended grapheme clusters (UAX #29) that covers what chat
    text contains: CR LF, combining marks, ZWJ emoji sequences, variation selectors,
    skin tones, flags (pairs of regional indicators) and stray surrogate pairs.
    """
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if before == _ZWJ or _is_extender(after):
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while index - 1 - run >= 0 and _is_regional_indicator(text[index - 1 - run]):
            run += 1
        return run % 2 == 0
    return True


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> List[str]:
    """Split a text into messages of at most ``limit`` code points each.

    Parts end after the last line break, else after the last whitespace, of their window
    when that keeps them at least half full; otherwise at the last character boundary
    (a character with its combining marks, an emoji sequence or a flag is never cut).
    Only a single character longer than ``limit`` is cut between code points.
    Joining the parts gives back ``text`` exactly.

    Args:
        text: the text to send.
        limit: the most code points in one part; the default is ``MAX_TEXT_CHARS``.

    Returns:
        The parts in order; an empty list for an empty text.

    Raises:
        ValueError: ``limit`` is less than 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1, got %d" % limit)
    parts = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        cut = None
        for separator in ("\n", None):
            window = text[start + limit // 2:end]
            if separator is None:
                spaces = [i for i, char in enumerate(window) if char.isspace()]
                found = spaces[-1] if spaces else -1
            else:
                found = window.rfind(separator)
            if found >= 0:
                candidate = start + limit // 2 + found + 1
                if candidate < len(text) and _can_break_before(text, candidate):
                    cut = candidate
                    break
        if cut is None:
            cut = end
            while cut > start + 1 and not _can_break_before(text, cut):
                cut -= 1
            if not _can_break_before(text, cut):
                cut = end
        parts.append(text[start:cut])
        start = cut
    if start < len(text):
        parts.append(text[start:])
    return parts


def split_content(content: Outgoing, limit: int = MAX_TEXT_CHARS) -> List[Outgoing]:
    """Split outgoing content into messages of at most ``limit`` units each.

    A text is split as ``split_text`` splits it. In a sequence of pieces a code point
    of text counts one unit and so does a face; a text piece is cut where
    ``split_text`` would cut it, a face never.

    Returns:
        For a text, its parts (texts); for pieces, lists of pieces. Empty content
        gives an empty list.

    Raises:
        ValueError: ``limit`` is less than 1, or a piece is neither text nor a ``Face``.
    """
    if isinstance(content, str):
        return list(split_text(content, limit))
    if limit < 1:
        raise ValueError("limit must be at least 1, got %d" % limit)
    parts: List[Outgoing] = []
    current: List[Union[str, Face]] = []
    size = 0
    for piece in content:
        if not isinstance(piece, (str, Face)):
            raise ValueError("a piece to send is a str or a Face, not %r" % (piece,))
        if size == limit:
            parts.append(current)
            current, size = [], 0
        if isinstance(piece, Face):
            current.append(piece)
            size += 1
            continue
        text = piece
        while text:
            if size == limit:
                parts.append(current)
                current, size = [], 0
            head = text if len(text) <= limit - size else split_text(text, limit - size)[0]
            current.append(head)
            size += len(head)
            text = text[len(head):]
    if current:
        parts.append(current)
    return parts
