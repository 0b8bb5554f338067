"""The content of a WebQQ message: its pieces, faces and font, read, written and split.

content: values only. Nothing here does I/O or knows an endpoint; the parsers read a
poll item's content with ``decode_content``, the send builders write it with
``encode_content``, and a text too long for one message is cut with ``split_content``
before it is sent. Must never lose a character: splitting joins back to the original.

Content (§5.14, §7.1) is a JSON array of pieces: text strings and lists such as
``["face", 14]`` or ``["font", {...}]``. Received content has the font *first*, sent
content has it *last*. ``decode_content`` reads either order into a ``Content`` that keeps
the raw array and offers ``.text`` (faces marked ``[face:14]``, pictures ``[image]``);
a received picture is an ``Image`` that keeps what fetching it needs (§5.14).
``encode_content`` writes the sent form from ``Outgoing`` content: a text, or texts,
``Face`` pieces and uploaded pictures (``OffPic`` to a friend, ``CFace`` to a group or
discussion) in order (§7.1). An ``UploadPicture`` (bytes still to upload) may be part of
the content that is split and queued, never of what is encoded: the client uploads it
first.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

from webqq.qq.pictures import UploadPicture

__all__ = [
    "MAX_TEXT_CHARS", "MAX_PARTS", "MalformedContent", "MessageTooLong",
    "Font", "DEFAULT_FONT", "Text", "Face", "Image", "UnknownPiece", "Piece", "Content",
    "OffPic", "CFace", "OutgoingPiece", "Outgoing", "decode_content",
    "decode_sent_content", "encode_content", "content_text", "has_pictures", "split_text",
    "split_content",
]

# No 2013 source states the server's length limit (§7.3): MC only distinguishes "too
# long" failures, PB pastes replies longer than 150 characters elsewhere and treats
# received texts over 300 as long. 300 code points per message is our choice: well inside
# what the official clients sent, and few enough parts for a long reply.
MAX_TEXT_CHARS = 300

# The most messages one text to send may be split into. The outbox sends a part at most
# every 0.5 s (PB's safe pace: the server silently drops sends that come faster, §7.3), so
# 100 parts already hold the queue for most of a minute and fill the chat with about
# 30,000 characters at the default part size: a longer text is a file to share, not a
# message. Refused before any splitting work beyond the first 100 parts is done, so no
# text, however long, can hold the IOLoop.
MAX_PARTS = 100

# The advert the browser client appended to every message (§5.14); PB strips it.
_ADVERT = re.compile(r"\n?【提示：此用户正在使用Q\+ Web：http://web\d?\.qq\.com/】")


class MalformedContent(ValueError):
    """Raised when a content array or one of its pieces does not have the §5.14 shape.

    The reply parsers report it as a ``MalformedReply`` of the endpoint concerned.
    """


class MessageTooLong(ValueError):
    """Raised when content to send would take more than ``max_parts`` messages.

    Attributes:
        length: the content's length in units (a code point of text or a face: one).
        limit: the most units in one message.
        max_parts: the most messages allowed.
    """

    def __init__(self, length: int, limit: int, max_parts: int):
        super().__init__(
            "the message is too long: %d characters would take more than %d messages of "
            "at most %d characters each" % (length, max_parts, limit))
        self.length = length
        self.limit = limit
        self.max_parts = max_parts


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
    """The ``["font", {...}]`` piece: how the sender's text looks (§5.14, §7.1).

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


# The font of the §7.1 example: what the Chinese clients of 2013 defaulted to.
DEFAULT_FONT = Font()


@dataclass(frozen=True)
class Text:
    """A text piece, exactly as received (line breaks not normalised)."""
    text: str


@dataclass(frozen=True)
class Face:
    """A built-in emoticon, ``["face", code]``; the code is the wire code (§5.14)."""
    code: int

    def to_wire(self) -> list:
        """The piece as sent: ``["face", code]``."""
        return ["face", self.code]


@dataclass(frozen=True)
class Image:
    """A picture reference (§5.14), shown as ``[image]`` in ``Content.text``.

    ``kind`` is the wire name: ``"offpic"`` (a friend's offline picture; ``name`` is its
    ``file_path``), ``"cface"`` (a custom face; ``name`` is the file name), ``"pic_id"``
    (``name`` is the picture id) or ``"image"`` (``name`` is the format, e.g. ``"jpg"``;
    it follows a ``pic_id`` and then marks the same picture).

    A group's ``cface`` also names where the picture is kept: ``file_id`` (the ``fid``
    of ``get_group_pic``), ``server`` (``"ip:port"``, its ``rip`` and ``rport``) and
    ``key``; a friend's short ``cface`` and the other kinds leave them None.
    """
    kind: str
    name: str
    file_id: Optional[int] = None
    server: Optional[str] = None
    key: Optional[str] = None


@dataclass(frozen=True)
class OffPic:
    """A friend's picture as sent, after ``upload_offline_pic``: ``["offpic", file_path,
    name, size]`` (§7.1; the IQ capture)."""
    file_path: str
    name: str
    size: int

    def to_wire(self) -> list:
        """The piece as sent."""
        return ["offpic", self.file_path, self.name, self.size]


@dataclass(frozen=True)
class CFace:
    """A group or discussion picture as sent, after ``cface_upload``: ``["cface",
    "group", name]`` (§7.1; LQ sends the same piece to discussions). The send carries
    the ``get_gface_sig2`` key and sig beside it."""
    name: str

    def to_wire(self) -> list:
        """The piece as sent."""
        return ["cface", "group", self.name]


@dataclass(frozen=True)
class UnknownPiece:
    """A list piece of a kind this module does not know; rendered as nothing."""
    raw: list = field(hash=False)


#: A piece of received content (the font is kept apart, in ``Content.font``).
Piece = Union[Text, Face, Image, UnknownPiece]

#: A piece of content to send: text, a face, a picture still to upload, or an uploaded
#: one.
OutgoingPiece = Union[str, Face, UploadPicture, OffPic, CFace]

#: Content to send: a text, or pieces in order. What ``split_content`` and the client's
#: sends take; the send builders and ``encode_content`` take it without
#: ``UploadPicture`` pieces.
Outgoing = Union[str, Sequence[OutgoingPiece]]

# The pieces that count one unit each when content is split: everything but text.
_UNIT_PIECES = (Face, UploadPicture, OffPic, CFace)
_PICTURE_PIECES = (UploadPicture, OffPic, CFace)


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
        if isinstance(args[0], dict):
            return _picture_of_mapping(kind, args[0], item)
        name = args[1] if kind == "cface" and args[0] == "group" and len(args) > 1 \
            else args[0]
        if not isinstance(name, str) or not name:
            raise MalformedContent("malformed %s piece: %s" % (kind, _excerpt(item)))
        return Image(kind, name)
    if kind in ("pic_id", "image") and args and isinstance(args[0], str):
        return Image(kind, args[0])
    if kind in ("font", "face", "offpic", "cface", "pic_id", "image"):
        raise MalformedContent("malformed %s piece: %s" % (kind, _excerpt(item)))
    return UnknownPiece(item)


# "ip:port" of a cface's server; the port is checked for range below.
_SERVER = re.compile(r"[0-9A-Za-z.\-]{1,253}:([0-9]{1,5})")


def _picture_of_mapping(kind: str, attrs: dict, item: list) -> Image:
    """The ``Image`` of a received ``offpic`` (``file_path``) or group ``cface``
    (``name``, ``file_id``, ``key``, ``server``) mapping."""
    def bad(what: str) -> MalformedContent:
        return MalformedContent("malformed %s piece (%s): %s" % (kind, what, _excerpt(item)))

    name = attrs.get("file_path" if kind == "offpic" else "name")
    if not isinstance(name, str) or not name:
        raise bad("no %s" % ("file_path" if kind == "offpic" else "name"))
    if kind == "offpic":
        return Image(kind, name)
    file_id, server, key = attrs.get("file_id"), attrs.get("server"), attrs.get("key")
    if isinstance(file_id, str) and file_id.isdigit() and len(file_id) <= 19:
        file_id = int(file_id)
    if file_id is not None and (type(file_id) is not int or not 0 <= file_id < 2 ** 63):
        raise bad("file_id is not an id")
    if server is not None:
        port = _SERVER.fullmatch(server) if isinstance(server, str) else None
        if port is None or not 0 < int(port.group(1)) < 65536:
            raise bad("server is not ip:port")
    if key is not None and not isinstance(key, str):
        raise bad("key is not a string")
    return Image(kind, name, file_id, server, key)


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
    """Decode the ``content`` string of a send request (§7.1), as a server does.

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
    """Encode pieces into the ``content`` string of a send request (§7.1).

    Args:
        pieces: a text, or a sequence of texts, ``Face``, ``OffPic`` and ``CFace``
            pieces, in order.
        font: the font appended as the last piece.

    Returns:
        The JSON text of the array (non-ASCII escaped as ``\\uXXXX``, as PB sent it),
        ready to be placed as a string into ``r``.

    Raises:
        TypeError: a piece of another type; an ``UploadPicture`` must be uploaded (and
            replaced by its ``OffPic`` or ``CFace``) first.
    """
    if isinstance(pieces, str):
        pieces = [pieces]
    wire = []
    for piece in pieces:
        if isinstance(piece, str):
            wire.append(piece)
        elif isinstance(piece, (Face, OffPic, CFace)):
            wire.append(piece.to_wire())
        elif isinstance(piece, UploadPicture):
            raise TypeError("upload %s first: a picture is sent as its OffPic or CFace"
                            % piece.name)
        else:
            raise TypeError("a content piece is a str, Face, OffPic or CFace, not %r"
                            % (piece,))
    wire.append(font.to_wire())
    return json.dumps(wire, separators=(",", ":"))


def content_text(content: Outgoing) -> str:
    """The plain text of outgoing content, faces as ``[face:N]`` and pictures as
    ``[image]`` (``Content.text``'s form)."""
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else "[face:%d]" % p.code
                   if isinstance(p, Face) else "[image]" for p in content)


def has_pictures(content: Outgoing) -> bool:
    """Whether outgoing content holds a picture (uploaded or not)."""
    return not isinstance(content, str) and any(
        isinstance(piece, _PICTURE_PIECES) for piece in content)


# --- splitting long texts --------------------------------------------------------------
#
# Linear in the length of the content: each part is found by looking at most at its own
# window of ``limit`` code points (never at the rest of the text), and the text is never
# copied but for the parts themselves.

_ZWJ = "\u200d"
# Everything up to the last whitespace character of a window: .end() is where to cut.
_UP_TO_LAST_SPACE = re.compile(r"(?s).*\s")


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


def _can_break_before(text: str, index: int, start: int) -> bool:
    """Whether ``text[start:index]`` and ``text[index:]`` are whole characters, given
    that ``start`` (where the current part begins) is a character boundary.

    An approximation of Unicode extended grapheme clusters (UAX #29) that covers what chat
    text contains: CR LF, combining marks, ZWJ emoji sequences, variation selectors,
    skin tones, flags (pairs of regional indicators) and stray surrogate pairs. A run of
    regional indicators is paired from ``start``, so the cost is bounded by the part.
    """
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if before == _ZWJ or _is_extender(after):
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while index - 1 - run >= start and _is_regional_indicator(text[index - 1 - run]):
            run += 1
        return run % 2 == 0
    return True


def _cut(text: str, start: int, limit: int) -> Tuple[int, bool]:
    """Where the part of ``text`` that begins at ``start`` ends, when more than ``limit``
    code points remain.

    After the window's last line break, else after its last whitespace, when that keeps
    the part at least half full; otherwise at its last character boundary.

    Returns:
        ``(cut, whole)``; ``whole`` is False when a single character longer than
        ``limit`` had to be cut between its code points (``cut`` is then the window's end).
    """
    end = start + limit
    half = start + limit // 2
    line_break = text.rfind("\n", half, end)
    if line_break >= 0 and _can_break_before(text, line_break + 1, start):
        return line_break + 1, True
    space = _UP_TO_LAST_SPACE.match(text, half, end)
    if space is not None and _can_break_before(text, space.end(), start):
        return space.end(), True
    cut = end
    while cut > start + 1 and not _can_break_before(text, cut, start):
        cut -= 1
    if _can_break_before(text, cut, start):
        return cut, True
    return end, False


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> List[str]:
    """Split a text into messages of at most ``limit`` code points each.

    Parts end after the last line break, else after the last whitespace, of their window
    when that keeps them at least half full; otherwise at the last character boundary
    (a character with its combining marks, an emoji sequence or a flag is never cut).
    Only a single character longer than ``limit`` is cut between code points.
    Joining the parts gives back ``text`` exactly. Takes time linear in ``len(text)``;
    there is no cap on the number of parts (``split_content`` has one).

    Args:
        text: the text to send.
        limit: the most code points in one part; the default is ``MAX_TEXT_CHARS``.

    Returns:
        The parts in order; an empty list for an empty text.

    Raises:
        ValueError: ``limit`` is less than 1.
    """
    return split_content(text, limit, max_parts=None)


def split_content(content: Outgoing, limit: int = MAX_TEXT_CHARS, *,
                  max_parts: Optional[int] = MAX_PARTS) -> List[Outgoing]:
    """Split outgoing content into messages of at most ``limit`` units each.

    A code point of text counts one unit and so does a face or a picture. A text is
    cut as ``split_text`` cuts it (where it is cut, its part ends), a face or picture
    never; a character that does not fit in what is left of a part starts the next one.
    Takes time linear in the length of the content, and stops as soon as ``max_parts``
    is exceeded.

    Args:
        content: a text, or texts, faces and pictures in order.
        limit: the most units in one message; the default is ``MAX_TEXT_CHARS``.
        max_parts: the most messages allowed (default ``MAX_PARTS``); None: no cap.

    Returns:
        For a text, its parts (texts); for pieces, lists of pieces. Empty content
        gives an empty list. Joining the parts gives back the content.

    Raises:
        MessageTooLong: the content needs more than ``max_parts`` messages.
        ValueError: ``limit`` is less than 1, or a piece is not an ``OutgoingPiece``.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1, got %d" % limit)
    pieces = [content] if isinstance(content, str) else content
    parts: List[List[OutgoingPiece]] = []
    current: List[OutgoingPiece] = []
    size = 0

    def end_part() -> None:
        nonlocal current, size
        parts.append(current)
        current, size = [], 0
        if max_parts is not None and len(parts) > max_parts:
            raise MessageTooLong(_units(pieces), limit, max_parts)

    for piece in pieces:
        if isinstance(piece, _UNIT_PIECES):
            if size == limit:
                end_part()
            current.append(piece)
            size += 1
            continue
        if not isinstance(piece, str):
            raise ValueError("a piece to send is a str, Face or picture, not %r" % (piece,))
        start = 0
        while len(piece) - start > limit - size:
            if size == limit:
                end_part()
                continue
            cut, whole = _cut(piece, start, limit - size)
            if not whole and current:       # the character fits a part of its own
                end_part()
                continue
            current.append(piece[start:cut])
            start = cut
            end_part()
        if start < len(piece):
            current.append(piece[start:])
            size += len(piece) - start
    if current:
        end_part()
    if isinstance(content, str):
        return ["".join(part) for part in parts]
    return parts


def _units(pieces: Sequence[OutgoingPiece]) -> int:
    return sum(len(piece) if isinstance(piece, str) else 1 for piece in pieces)
