"""OneBot v11 on WebQQ: message formats, ids and event JSON, as plain functions.

onebot: the mapping only. Values in, values out: no I/O, no IOLoop, no clock (times are
arguments). ``webqq.onebot.server`` serves what this module builds.

Messages. OneBot sends a message either as a string with CQ codes
(``"hi [CQ:face,id=14]"``, ``&amp; &#91; &#93; &#44;`` escaped) or as an array of segments
(``[{"type": "text", "data": {"text": "hi "}}, {"type": "face", "data": {"id": "14"}}]``);
``parse_message`` reads both into segments and ``to_pieces`` into WebQQ content: ``text``
and ``face`` map to text and ``Face`` pieces, ``image`` to the ``UploadPicture`` that
``webqq.onebot.media`` made of its ``file`` (reading it is I/O, not this module's);
``at`` becomes the text ``@name `` (WebQQ has no mention) and ``reply`` is dropped (no
quoting either); any other type is refused with ``UnsupportedSegment``. Received pieces
go the other way in ``from_pieces``: a picture becomes an ``image`` segment whose
``file`` is ``picture_name`` (40 hex digits and ``.image``) and whose ``url`` is the
API's ``/images/NAME``. In the store a queued picture is a ``StoredPicture``: the
digest of its bytes, which wait in a file of their own.

Ids. WebQQ's uins change with every login; OneBot bots keep ids in their databases. So:

* ``user_id`` is the QQ number. The client looks it up once per uin and session through
  the ``get_friend_uin2`` endpoint (``ContactLoader``, cached in ``Contacts``); only when
  the server gave none does ``user_id`` fall back to the uin (volatile, documented).
* ``group_id`` is the group's public number (the same lookup, type 4), else its ``code``.
* ``discuss_id`` is an id of our own that outlives the did (which may change at every
  login): ``webqq.onebot.discussions``.
* ``self_id`` is ``[account] qq``; ``message_id`` is the store's row id (stable).
* A stranger met in a group or discussion writes a private message with ``sub_type``
  ``group``; a private message to that ``user_id`` goes back through the same temporary
  session (``webqq.onebot.outbound.Outbound`` remembers the route while it lasts).

What it must never do: talk to the client or the network.
"""
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from webqq.client.contacts import Contacts, Discussion, Friend, Group
from webqq.client.pictures import MessagePiece, ReceivedPicture
from webqq.qq import Face, UploadPicture

__all__ = ["OneBotError", "UnsupportedSegment", "BadParams", "Segment", "parse_message",
           "check_sendable", "to_pieces", "StoredPicture", "pieces_to_data", "pieces_from_data",
           "from_pieces", "picture_name", "is_picture_name", "to_cq_string", "escape",
           "user_id_of", "group_id_of", "find_friend", "find_group", "int64", "Retcode"]

Segment = Dict[str, Any]


class Retcode:
    """OneBot v11 retcodes (names from the reference implementation, go-cqhttp)."""
    OK = 0
    ASYNC = 1
    BAD_PARAMS = 100            # a parameter is missing or invalid
    UNSUPPORTED = 102           # valid OneBot, but WebQQ cannot do it (set_group_kick)
    FAILED = 103                # the server refused, or the client is not online
    # The WebSocket equivalents of the HTTP statuses (OneBot v11 communication/ws.md).
    BAD_REQUEST = 1400
    UNAUTHORIZED = 1401
    FORBIDDEN = 1403
    NOT_FOUND = 1404


class OneBotError(Exception):
    """Raised when an action cannot be done; ``retcode`` is what the caller sees."""
    retcode = Retcode.FAILED

    def __init__(self, message: str, retcode: Optional[int] = None) -> None:
        super().__init__(message)
        if retcode is not None:
            self.retcode = retcode


class BadParams(OneBotError):
    """Raised when a parameter is missing or has the wrong type (retcode 100)."""
    retcode = Retcode.BAD_PARAMS


class UnsupportedSegment(OneBotError):
    """Raised when a message holds a segment WebQQ cannot send (retcode 102)."""
    retcode = Retcode.UNSUPPORTED

    def __init__(self, kind: str) -> None:
        super().__init__("WebQQ cannot send a %r segment (only text, face, image, at "
                         "and reply)" % kind)
        self.kind = kind


# --- messages ---------------------------------------------------------------------------

_CQ = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[^\[\],=]+=[^\[\],]*)*)\]")


def escape(text: str, *, in_param: bool = False) -> str:
    """CQ-escape ``text``: ``& [ ]`` always, ``,`` inside a parameter."""
    text = text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")
    return text.replace(",", "&#44;") if in_param else text


def _unescape(text: str) -> str:
    return (text.replace("&#44;", ",").replace("&#91;", "[").replace("&#93;", "]")
            .replace("&amp;", "&"))


def parse_message(message: Any, *, auto_escape: bool = False) -> List[Segment]:
    """Read a OneBot message (string, one segment or a segment array) into segments.

    Args:
        message: what the caller sent as ``message``.
        auto_escape: a string is plain text, CQ codes included (OneBot's parameter).

    Raises:
        BadParams: not a string, segment or array of segments.
    """
    if isinstance(message, str):
        if auto_escape:
            return [{"type": "text", "data": {"text": message}}] if message else []
        return _parse_cq(message)
    if isinstance(message, dict):
        message = [message]
    if not isinstance(message, list):
        raise BadParams("message must be a string or an array of segments")
    segments = []
    for item in message:
        if (not isinstance(item, dict) or not isinstance(item.get("type"), str)
                or not isinstance(item.get("data") or {}, dict)):
            raise BadParams("a message segment must be {\"type\": ..., \"data\": {...}}")
        segments.append({"type": item["type"], "data": dict(item.get("data") or {})})
    return segments


def _parse_cq(text: str) -> List[Segment]:
    segments: List[Segment] = []
    position = 0
    for match in _CQ.finditer(text):
        if match.start() > position:
            segments.append({"type": "text",
                             "data": {"text": _unescape(text[position:match.start()])}})
        data = {}
        for pair in filter(None, match.group(2).split(",")):
            key, _, value = pair.partition("=")
            data[key] = _unescape(value)
        segments.append({"type": match.group(1), "data": data})
        position = match.end()
    if position < len(text):
        segments.append({"type": "text", "data": {"text": _unescape(text[position:])}})
    return segments


#: The segment types WebQQ can send.
SENDABLE = ("text", "face", "image", "at", "reply")


def check_sendable(segments: Sequence[Segment]) -> None:
    """Raise ``UnsupportedSegment`` for the first segment WebQQ cannot send (before any
    picture is read)."""
    for segment in segments:
        if segment["type"] not in SENDABLE:
            raise UnsupportedSegment(segment["type"])


def to_pieces(segments: Sequence[Segment], *, names: Optional[Dict[int, str]] = None,
              pictures: Sequence[UploadPicture] = ()
              ) -> List[Union[str, Face, UploadPicture]]:
    """WebQQ content pieces (``encode_content`` takes them) for ``segments``.

    Args:
        names: QQ number -> display name, for ``at`` segments (else the number).
        pictures: the picture of each ``image`` segment, in order
            (``webqq.onebot.media.read_images`` makes them).

    Raises:
        UnsupportedSegment: a segment type WebQQ cannot send.
        BadParams: a face without a numeric id, or nothing to send.
        ValueError: fewer ``pictures`` than ``image`` segments.
    """
    pieces: List[Union[str, Face, UploadPicture]] = []
    images = iter(pictures)
    for segment in segments:
        kind, data = segment["type"], segment["data"]
        if kind == "text":
            text = str(data.get("text", ""))
            if pieces and isinstance(pieces[-1], str):
                pieces[-1] += text
            elif text:
                pieces.append(text)
        elif kind == "face":
            code = int64(data.get("id"))
            if code is None or code < 0:
                raise BadParams("a face segment needs a numeric id")
            pieces.append(Face(code))
        elif kind == "at":
            who = str(data.get("qq", ""))
            name = "all" if who == "all" else (names or {}).get(int64(who)) or who
            mention = "@%s " % name
            if pieces and isinstance(pieces[-1], str):
                pieces[-1] += mention
            else:
                pieces.append(mention)
        elif kind == "image":
            picture = next(images, None)
            if picture is None:
                raise ValueError("no picture given for image segment %d"
                                 % (segments.index(segment) + 1))
            pieces.append(picture)
        elif kind == "reply":
            continue
        else:
            raise UnsupportedSegment(kind)
    if not pieces or all(isinstance(p, str) and not p.strip() for p in pieces):
        raise BadParams("the message is empty")
    return pieces


@dataclass(frozen=True)
class StoredPicture:
    """A picture of a queued message as its row keeps it: the bytes are the file named
    ``digest`` (the SHA-256 of the bytes, in hex) that ``webqq.onebot.media`` keeps;
    ``format`` and ``name`` as the ``UploadPicture`` had them."""
    digest: str
    format: str
    name: str


StoredPiece = Union[str, Face, StoredPicture]


def pieces_to_data(pieces: Sequence[StoredPiece]) -> List[Any]:
    """Pieces as JSON for the store: texts as strings, a face as ``{"face": N}``, a
    picture as ``{"picture": DIGEST, "format": "jpg", "name": NAME}``."""
    data: List[Any] = []
    for piece in pieces:
        if isinstance(piece, str):
            data.append(piece)
        elif isinstance(piece, Face):
            data.append({"face": piece.code})
        else:
            data.append({"picture": piece.digest, "format": piece.format,
                         "name": piece.name})
    return data


def pieces_from_data(data: Sequence[Any]) -> List[StoredPiece]:
    """The inverse of ``pieces_to_data``."""
    pieces: List[StoredPiece] = []
    for item in data:
        if isinstance(item, str):
            pieces.append(item)
        elif "face" in item:
            pieces.append(Face(int(item["face"])))
        else:
            pieces.append(StoredPicture(item["picture"], item["format"], item["name"]))
    return pieces


_PICTURE_NAME = re.compile(r"[0-9a-f]{40}\.image")


def picture_name(picture: ReceivedPicture) -> str:
    """The ``file`` of a received picture's ``image`` segment: its cache key and
    ``.image`` (go-cqhttp's suffix for a picture not fetched yet)."""
    return picture.key + ".image"


def is_picture_name(name: str) -> bool:
    """Whether ``name`` has the form ``picture_name`` gives."""
    return _PICTURE_NAME.fullmatch(name) is not None


def from_pieces(pieces: Sequence[MessagePiece], *, base_url: Optional[str] = None,
                suffix: str = "") -> List[Segment]:
    """Segments for a received message's pieces (``MessageReceived.pieces``): text,
    face, and image with its ``file`` (``picture_name``) and, when the API listens at
    ``base_url``, its ``url`` there (ending with ``suffix``: the account's
    ``?self_id=`` when the API serves several)."""
    segments: List[Segment] = []
    for piece in pieces:
        if isinstance(piece, str):
            if segments and segments[-1]["type"] == "text":
                segments[-1]["data"]["text"] += piece
            else:
                segments.append({"type": "text", "data": {"text": piece}})
        elif isinstance(piece, Face):
            segments.append({"type": "face", "data": {"id": str(piece.code)}})
        else:
            name = picture_name(piece)
            data = {"file": name}
            if base_url:
                data["url"] = "%s/images/%s%s" % (base_url, name, suffix)
            segments.append({"type": "image", "data": data})
    return segments


def to_cq_string(segments: Sequence[Segment]) -> str:
    """The string form of ``segments`` (text escaped, others as CQ codes)."""
    out = []
    for segment in segments:
        if segment["type"] == "text":
            out.append(escape(segment["data"].get("text", "")))
        else:
            params = "".join(",%s=%s" % (key, escape(str(value), in_param=True))
                             for key, value in segment["data"].items())
            out.append("[CQ:%s%s]" % (segment["type"], params))
    return "".join(out)


# --- ids --------------------------------------------------------------------------------

#: OneBot ids are signed 64-bit integers (so is SQLite's INTEGER, where they are kept).
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


_DIGITS = re.compile(r"\s*[+-]?[0-9]+\s*\Z")
#: Floats above this lose integers (2**53): a JSON number past it is no id we gave.
_EXACT_FLOAT = 2 ** 53


def int64(value: Any) -> Optional[int]:
    """``value`` as an int within 64 bits, or None when it is no integer: an int, a
    float with no fraction (``20001.0``; not past 2**53, where floats skip integers),
    or decimal digits in a string (a query or a form sends ``"20001"``). Refused:
    ``true``/``false`` (Python's bools are ints), ``20001.9``, ``"20001.9"``, ``"0x10"``,
    ``Infinity``, ``NaN``, anything else, and numbers out of range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer() or abs(value) > _EXACT_FLOAT:
            return None
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.match(value):
        number = int(value)
    else:
        return None
    return number if INT64_MIN <= number <= INT64_MAX else None


def user_id_of(uin: int, qq: Optional[int], contacts: Contacts) -> int:
    """The OneBot ``user_id`` of a uin: its QQ number, else the uin itself."""
    return qq or contacts.qq_of(uin) or uin


def group_id_of(group: Optional[Group], fallback: int = 0) -> int:
    """The OneBot ``group_id``: the public number, else the group's code."""
    if group is None:
        return fallback
    return group.number or group.code


def find_friend(contacts: Contacts, user_id: int) -> Optional[Friend]:
    """The friend whose QQ number (or, failing that, uin) is ``user_id``."""
    return contacts.friend(qq=user_id) or contacts.friend(uin=user_id)


def find_group(contacts: Contacts, group_id: int) -> Optional[Group]:
    """The group whose public number (or code, or gid) is ``group_id``."""
    return (contacts.group(number=group_id) or contacts.group(code=group_id)
            or contacts.group(gid=group_id))


def member_names(chat: Union[Group, Discussion, None], contacts: Contacts
                 ) -> Dict[int, str]:
    """QQ number -> display name of a chat's members (for ``at`` segments)."""
    if chat is None:
        return {}
    return {user_id_of(uin, m.qq, contacts): m.display_name or m.nick
            for uin, m in chat.members.items()}


def friend_info(friend: Friend, contacts: Contacts) -> Dict[str, Any]:
    """A ``get_friend_list`` entry."""
    return {"user_id": user_id_of(friend.uin, friend.qq, contacts),
            "nickname": friend.nick, "remark": friend.markname or ""}


def group_info(group: Group) -> Dict[str, Any]:
    """A ``get_group_list`` / ``get_group_info`` entry."""
    return {"group_id": group_id_of(group), "group_name": group.name,
            "member_count": len(group.members), "max_member_count": 0}


def member_info(group: Group, uin: int, contacts: Contacts, self_id: int
                ) -> Dict[str, Any]:
    """A ``get_group_member_list`` / ``get_group_member_info`` entry."""
    member = group.members[uin]
    return {"group_id": group_id_of(group), "user_id": user_id_of(uin, member.qq, contacts),
            "nickname": member.nick, "card": member.card or "", "sex": "unknown",
            "age": 0, "area": "", "join_time": 0, "last_sent_time": 0, "level": "",
            "role": member.role, "unfriendly": False, "title": "", "title_expire_time": 0,
            "card_changeable": False}


def nick_of(uin: int, contacts: Contacts,
            chat: Union[Group, Discussion, None] = None) -> Optional[str]:
    """The nickname behind a uin (OneBot's ``nickname``: neither our remark nor a group
    card): from the chat's members, the friends, or any chat; None when unknown."""
    chats = list(contacts.groups.values()) + list(contacts.discussions.values())
    people = [chat.members.get(uin) if chat is not None else None,
              contacts.friends.get(uin)] + [other.members.get(uin) for other in chats]
    return next((person.nick for person in people if person is not None and person.nick),
                None)


def find_member(group: Group, user_id: int, contacts: Contacts) -> Optional[int]:
    """The uin of the member whose ``user_id`` this is, or None."""
    for uin, member in group.members.items():
        if user_id_of(uin, member.qq, contacts) == user_id:
            return uin
    return None


# --- events -----------------------------------------------------------------------------

def message_event(*, self_id: int, time: int, message_id: int, chat: str, user_id: int,
                  nickname: str, card: str, segments: List[Segment],
                  group_id: Optional[int] = None, discuss_id: Optional[int] = None,
                  message_format: str = "string", role: str = "member") -> Dict[str, Any]:
    """A ``post_type: message`` event: private (``buddy``: sub_type friend;
    ``session``: sub_type group, a stranger met in a group), group, or discuss (CQHTTP's
    discussion type, which OneBot SDKs still accept). ``nickname`` is the sender's own
    nick; in a group ``card`` is their group card and ``role`` owner, admin or member."""
    string = to_cq_string(segments)
    event: Dict[str, Any] = {
        "time": time, "self_id": self_id, "post_type": "message",
        "message_id": message_id, "user_id": user_id, "font": 0,
        "message": string if message_format == "string" else segments,
        "raw_message": string,
        "sender": {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0},
    }
    if chat in ("buddy", "session"):
        event.update(message_type="private",
                     sub_type="friend" if chat == "buddy" else "group")
    elif chat == "group":
        event.update(message_type="group", sub_type="normal", group_id=group_id,
                     anonymous=None)
        event["sender"].update(card=card, role=role, area="", level="", title="")
    else:
        event.update(message_type="discuss", discuss_id=discuss_id)
    return event


def meta_event(*, self_id: int, time: int, kind: str, sub_type: str = "",
               status: Optional[Dict[str, Any]] = None, interval_ms: int = 0
               ) -> Dict[str, Any]:
    """A ``meta_event``: ``lifecycle`` (sub_type enable, disable, connect) or
    ``heartbeat`` (with the ``get_status`` data and the interval in ms)."""
    event: Dict[str, Any] = {"time": time, "self_id": self_id, "post_type": "meta_event",
                             "meta_event_type": kind}
    if kind == "lifecycle":
        event["sub_type"] = sub_type
    else:
        event.update(status=status or {}, interval=interval_ms)
    return event


def split_target(kind: str, params: Dict[str, Any]) -> Tuple[str, int]:
    """``(chat, id)`` of a send: ``send_msg``'s message_type or the ids it carries.

    Raises:
        BadParams: no usable id.
    """
    if kind is None:
        kind = ("group" if "group_id" in params else "discuss" if "discuss_id" in params
                else "private")
    if not isinstance(kind, str):
        raise BadParams("message_type must be a string: private, group or discuss")
    key = {"private": "user_id", "group": "group_id", "discuss": "discuss_id"}.get(kind)
    if key is None:
        raise BadParams("message_type must be private, group or discuss, not %r" % kind)
    value = int64(params.get(key))
    if value is None:
        raise BadParams("%s is required (a 64-bit integer)" % key)
    return {"private": "buddy", "group": "group", "discuss": "discussion"}[kind], value
