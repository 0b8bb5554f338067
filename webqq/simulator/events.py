"""poll2 result items (docs/protocol.rst §5) and message content (§5.14, §7.1).

events: builds every ``poll_type`` with the field set, field order and value styles of
the 2013 captures, for one receiving account, from people named by QQ number; and turns
a client's sent ``content`` string into the received form. It holds no state: counters
and the clock arrive in a ``Stamp``, randomness through the ``rng`` argument. It never
queues anything (``session.py`` does) and never performs I/O.
"""
import json
from dataclasses import dataclass, field

__all__ = [
    "EventError", "EventSpec", "POLL_TYPES", "SIMULATED_FONT", "SentContentError", "Stamp",
    "build_item", "content_text", "parse_sent_content",
]

#: The font simulated people write with (§5.1's sample font).
SIMULATED_FONT = {"size": 10, "color": "000000", "style": [0, 0, 0], "name": "宋体"}

#: The sender of discussion messages and system notices (§5.3, §5.5).
SYSTEM_UIN = 10000

#: §5.5 reason text: "your account logged in elsewhere; you have been forced offline…".
KICK_REASON = "您的帐号在另一地点登录，您已被迫下线。如有疑问，请登录 safe.qq.com 了解更多。"

#: §5.4 media a temporary session allows.
SESS_FLAGS = {"text": 1, "pic": 1, "file": 1, "audio": 1, "video": 1}

# §5.9 sys_g_msg type -> msg_type.
_SYS_G_TYPES = {"group_join": 33, "group_leave": 34, "group_request_join": 35,
                "group_request_join_agree": 36, "group_request_join_deny": 37,
                "group_create": 38}
_SYSTEM_TYPES = ("verify_required", "added_buddy_sig", "verify_pass", "verify_pass_add")
_FILE_MODES = ("recv", "refuse", "send_ack")
# §3.9 stat codes by status.
_STAT = {"online": 10, "offline": 20, "away": 30, "hidden": 40, "busy": 50, "callme": 60,
         "silent": 70}


class EventError(ValueError):
    """Raised when an event cannot be built: a required person, group or type is missing."""


class SentContentError(ValueError):
    """Raised when a sent ``content`` is not the JSON-array-in-a-string of §7.1."""


@dataclass(frozen=True)
class Stamp:
    """The per-receiver header values of one item (§5 "most values share a header")."""

    msg_id: int          # per-receiver counter
    msg_id2: int         # random-looking, 6 digits
    reply_ip: int        # unsigned 32-bit
    time: int            # unix seconds
    seq: int = 0         # per-group / per-discussion sequence (group and discu messages)


@dataclass(frozen=True)
class EventSpec:
    """What to build, in world terms. Which fields a poll_type needs is in POLL_TYPES.

    ``content`` is the received-side pieces without the font (strings, ``["face", N]``…);
    ``font`` the font to put first; ``value`` overrides or adds keys of the built value.
    """

    poll_type: str
    sender: "int | None" = None          # QQ number of the person the event comes from
    group: object = None                 # world.WorldGroup
    discussion: object = None            # world.WorldDiscussion
    subtype: "str | None" = None         # system_message / sys_g_msg "type", file "mode"
    text: "str | None" = None            # message text, request note, kick reason, file name
    content: "list | None" = None
    font: dict = field(default_factory=lambda: dict(SIMULATED_FONT))
    status: "str | None" = None          # buddies_status_change
    value: dict = field(default_factory=dict)


def parse_sent_content(text) -> tuple:
    """Decode a send's ``content`` (§7.1): a JSON array serialised into a string.

    Args:
        text: the ``content`` value of ``r``.

    Returns:
        ``(pieces, font)``: the pieces in order without the font element, and the font
        with ``size`` as a number (the browser sent it as a string), or None when the
        client sent no font element (tolerated, as §7.1 asks).

    Raises:
        SentContentError: not a string, not a JSON array, or an element that is neither a
            string nor a well-formed ``face``/``font``/picture element.
    """
    if not isinstance(text, str):
        raise SentContentError("content must be a JSON array serialised to a string")
    try:
        elements = json.loads(text)
    except (ValueError, RecursionError):         # RecursionError: nested too deeply
        raise SentContentError("content is not JSON: %r" % text[:40]) from None
    if not isinstance(elements, list):
        raise SentContentError("content is not a JSON array")
    pieces, font = [], None
    for element in elements:
        if isinstance(element, str):
            pieces.append(element)
        elif isinstance(element, list) and element and element[0] == "font":
            if font is not None or len(element) != 2:
                raise SentContentError("content has a second or malformed font element")
            font = _checked_font(element[1])
        elif isinstance(element, list) and element and element[0] == "face":
            if len(element) != 2 or not _is_int(element[1]):
                raise SentContentError("face element must be [\"face\", N]")
            pieces.append(["face", element[1]])
        elif (isinstance(element, list) and element
              and element[0] in ("offpic", "cface", "pic_id", "image")):
            pieces.append(element)
        else:
            raise SentContentError("content element %r is neither text nor a known element"
                               % (element,))
    return pieces, font


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_font(font) -> dict:
    if not isinstance(font, dict):
        raise SentContentError("font element must carry an object")
    size = font.get("size", 10)
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not _is_int(size):
        raise SentContentError("font size must be a number")
    style = font.get("style", [0, 0, 0])
    if not (isinstance(style, list) and len(style) == 3 and all(s in (0, 1) for s in style)):
        raise SentContentError("font style must be three 0/1 values")
    color = font.get("color", "000000")
    if not (isinstance(color, str) and len(color) == 6
            and all(c in "0123456789abcdefABCDEF" for c in color)):
        raise SentContentError("font color must be 6 hex digits")
    name = font.get("name", "")
    if not isinstance(name, str):
        raise SentContentError("font name must be a string")
    return {"size": size, "color": color, "style": style, "name": name}


def content_text(pieces) -> str:
    """The text of a message: its string pieces joined (faces and pictures dropped)."""
    return "".join(p for p in pieces if isinstance(p, str))


# --- item builders -----------------------------------------------------------------------

class _Build:
    """One item under construction for ``viewer``: uins are as the viewer sees people."""

    def __init__(self, world, viewer: int, spec: EventSpec, stamp: Stamp, rng):
        self.world = world
        self.viewer = viewer
        self.spec = spec
        self.stamp = stamp
        self.rng = rng

    def uin(self, qq: int) -> int:
        return self.world.uin(self.viewer, qq)

    def sender_uin(self) -> int:
        if self.spec.sender is None:
            raise EventError("%s needs \"from\" (a QQ number)" % self.spec.poll_type)
        return self.uin(self.spec.sender)

    def group(self):
        if self.spec.group is None:
            raise EventError("%s needs \"group\" (a group number)" % self.spec.poll_type)
        return self.spec.group

    def discussion(self):
        if self.spec.discussion is None:
            raise EventError("%s needs \"discussion\" (a discussion number)"
                             % self.spec.poll_type)
        return self.spec.discussion

    def header(self, from_uin: int, msg_type: int, reply_ip=None) -> dict:
        """The common header, in the captures' order."""
        return {"msg_id": self.stamp.msg_id, "from_uin": from_uin, "to_uin": self.viewer,
                "msg_id2": self.stamp.msg_id2, "msg_type": msg_type,
                "reply_ip": self.stamp.reply_ip if reply_ip is None else reply_ip}

    def content(self) -> list:
        if self.spec.content is not None:
            pieces = list(self.spec.content)
        elif self.spec.text is not None:
            pieces = [self.spec.text]
        else:
            raise EventError("%s needs \"text\" or \"content\"" % self.spec.poll_type)
        return [["font", dict(self.spec.font)]] + pieces

    def subtype(self, allowed, default) -> str:
        subtype = self.spec.subtype or default
        if subtype not in allowed:
            raise EventError("%s type must be one of %s" % (self.spec.poll_type,
                                                             ", ".join(allowed)))
        return subtype


def _message(b: _Build) -> dict:
    value = b.header(b.sender_uin(), 9)
    value["time"] = b.stamp.time
    value["content"] = b.content()
    return value


def _group_message(b: _Build) -> dict:
    group = b.group()
    value = b.header(group.gid, 43)
    value.update(group_code=group.code, send_uin=b.sender_uin(), seq=b.stamp.seq,
                 time=b.stamp.time, info_seq=group.number, content=b.content())
    return value


def _discu_message(b: _Build) -> dict:
    discussion = b.discussion()
    value = b.header(SYSTEM_UIN, 42)
    value.update(did=discussion.did, send_uin=b.sender_uin(), seq=b.stamp.seq,
                 time=b.stamp.time, info_seq=discussion.info_seq, content=b.content())
    return value


def _sess_message(b: _Build) -> dict:
    # §8.12: the simulator's "id" is the group's gid (service_type 0) or the did (1).
    if b.spec.group is not None:
        through, service_type = b.spec.group.gid, 0
    elif b.spec.discussion is not None:
        through, service_type = b.spec.discussion.did, 1
    else:
        raise EventError("sess_message needs \"group\" or \"discussion\" (the session's way)")
    value = b.header(b.sender_uin(), 140)
    value.update(time=b.stamp.time, id=through, ruin=b.spec.sender, service_type=service_type,
                 flags=dict(SESS_FLAGS), content=b.content())
    return value


def _kick_message(b: _Build) -> dict:
    value = b.header(SYSTEM_UIN, 48, reply_ip=0)
    value.update(show_reason=1, reason=b.spec.text if b.spec.text is not None else KICK_REASON)
    return value


def _buddies_status_change(b: _Build) -> dict:
    person = b.world.person(b.spec.sender) if b.spec.sender is not None else None
    status = b.spec.status or (person.status if person else None)
    return {"uin": b.sender_uin(), "status": status,
            "client_type": person.client_type if person else 1}


def _input_notify(b: _Build) -> dict:
    # §5.7: input_notify carries reply_ip 4294967295 in every capture.
    return b.header(b.sender_uin(), 121, reply_ip=4294967295)


def _shake_message(b: _Build) -> dict:
    return b.header(b.sender_uin(), 9)


def _system_message(b: _Build) -> dict:
    subtype = b.subtype(_SYSTEM_TYPES, "verify_required")
    person = b.world.person(b.spec.sender) if b.spec.sender is not None else None
    seq = b.rng.randrange(10000, 60000)
    from_uin = b.sender_uin()
    stat = _STAT.get(person.status, 20) if person else 20
    if subtype == "verify_required":
        return {"seq": seq, "type": subtype, "uiuin": "", "from_uin": from_uin,
                "account": b.spec.sender, "msg": b.spec.text or "", "allow": 1, "stat": stat,
                "client_type": person.client_type}
    if subtype == "added_buddy_sig":
        return {"seq": seq, "type": subtype, "uiuin": "", "from_uin": from_uin,
                "account": b.spec.sender, "sig": "%064x" % b.rng.getrandbits(256),
                "stat": stat}
    if subtype == "verify_pass":
        return {"seq": seq, "type": subtype, "from_uin": from_uin, "stat": stat}
    return {"seq": seq, "type": subtype, "from_uin": from_uin, "group_id": 0, "stat": stat}


def _sys_g_msg(b: _Build) -> dict:
    group = b.group()
    subtype = b.subtype(tuple(_SYS_G_TYPES), "group_join")
    value = b.header(group.gid, _SYS_G_TYPES[subtype])
    value.update(type=subtype, gcode=group.code, t_gcode=group.number)
    admin = next((m.qq for m in group.members if m.admin), group.owner)
    if subtype == "group_join":
        value.update(op_type=3, new_member=b.sender_uin(), t_new_member="",
                     admin_uin=b.uin(admin), admin_nick=b.world.person(admin).nick)
    elif subtype == "group_leave":
        value.update(op_type=2, old_member=b.sender_uin(), t_old_member="")
    elif subtype == "group_request_join":
        value.update(request_uin=b.sender_uin(), t_request_uin="", msg=b.spec.text or "")
    elif subtype in ("group_request_join_agree", "group_request_join_deny"):
        value.update(admin_uin=b.uin(admin), msg=b.spec.text or "")
    else:
        value.update(owner_uin=b.uin(group.owner))
    return value


def _buddylist_change(b: _Build) -> dict:
    subtype = b.subtype(("added", "removed"), "added")
    entry = {"uin": b.sender_uin()}
    if subtype == "added":
        return {"added_friends": [{"groupid": 0, **entry}], "removed_friends": []}
    return {"added_friends": [], "removed_friends": [entry]}


def _file_message(b: _Build) -> dict:
    mode = b.subtype(_FILE_MODES, "recv")
    value = {"msg_id": b.stamp.msg_id, "mode": mode, "from_uin": b.sender_uin(),
             "to_uin": b.viewer, "msg_id2": b.stamp.msg_id2}
    session_id = b.rng.randrange(10000, 30000)
    if mode == "refuse":
        value.update(reply_ip=b.stamp.reply_ip, type=101, session_id=session_id,
                     cancel_type=1, time=b.stamp.time)
    else:
        value.update(msg_type=9, reply_ip=b.stamp.reply_ip, type=101,
                     name=b.spec.text or "test.txt", time=b.stamp.time,
                     session_id=session_id, inet_ip=b.rng.getrandbits(32))
    return value


def _push_offfile(b: _Build) -> dict:
    return {"msg_id": b.stamp.msg_id, "rkey": "%064x" % b.rng.getrandbits(256),
            "ip": "127.0.0.1", "port": 80, "from_uin": b.sender_uin(), "size": 235,
            "name": b.spec.text or "test2.py", "expire_time": b.stamp.time + 7 * 86400,
            "time": b.stamp.time}


def _notify_offfile(b: _Build) -> dict:
    value = b.header(b.sender_uin(), 9)
    value.update(action=2, filename=b.spec.text or "12.jpg", filesize=137972)
    return value


def _filesrv_transfer(b: _Build) -> dict:
    # Shape from LQ's parser only (§5.11); no capture.
    return {"file_count": 1, "lc_id": b.rng.randrange(10000, 30000), "now": b.stamp.time,
            "operation": 1, "type": 1,
            "file_infos": [{"file_name": b.spec.text or "test.txt", "file_status": 0,
                            "pro_id": 0}]}


def _group_web_message(b: _Build) -> dict:
    group = b.group()
    value = b.header(group.gid, 45)
    sender = b.spec.sender if b.spec.sender is not None else group.owner
    xml = ('<?xml version="1.0" encoding="utf-8"?><d><n t="h" u="%d" i="6" s="%s"/>'
           '<n t="t" s="%s"/></d>' % (sender, b.world.person(sender).nick,
                                       b.spec.text or "shared a file"))
    value.update(group_code=group.code, group_type=1, ver=1, send_uin=b.uin(sender), xml=xml)
    return value


def _tips(b: _Build) -> dict:
    # §5.13 [sim] shape (no capture exists); msg_type is our choice.
    value = b.header(SYSTEM_UIN, 0, reply_ip=0)
    value["content"] = b.spec.text or ""
    return value


def _av_request(b: _Build) -> dict:
    # §5.13: no 2013 sample; the common header and time, msg_type our choice.
    value = b.header(b.sender_uin(), 0)
    value["time"] = b.stamp.time
    return value


#: poll_type -> builder. Each builder documents its needs through the EventError it
#: raises: "from" for anything a person does, "group"/"discussion" where one is involved.
POLL_TYPES = {
    "message": _message,
    "group_message": _group_message,
    "discu_message": _discu_message,
    "sess_message": _sess_message,
    "kick_message": _kick_message,
    "buddies_status_change": _buddies_status_change,
    "input_notify": _input_notify,
    "shake_message": _shake_message,
    "system_message": _system_message,
    "sys_g_msg": _sys_g_msg,
    "buddylist_change": _buddylist_change,
    "file_message": _file_message,
    "push_offfile": _push_offfile,
    "notify_offfile": _notify_offfile,
    "filesrv_transfer": _filesrv_transfer,
    "group_web_message": _group_web_message,
    "tips": _tips,
    "av_request": _av_request,
}


def build_item(world, viewer: int, spec: EventSpec, stamp: Stamp, rng) -> dict:
    """Build one poll2 result item for account ``viewer``.

    Args:
        world: the World (uins are drawn as ``viewer`` sees people).
        viewer: the receiving account's QQ number (``to_uin``).
        spec: what happened, in world terms.
        stamp: the receiver's header values.
        rng: randomness for opaque extras (file session ids, sigs).

    Returns:
        ``{"poll_type": ..., "value": {...}}`` with ``spec.value`` applied last.

    Raises:
        EventError: unknown poll_type, or a person/group/type it needs is missing.
    """
    builder = POLL_TYPES.get(spec.poll_type)
    if builder is None:
        raise EventError("unknown poll_type %r; known: %s"
                         % (spec.poll_type, ", ".join(POLL_TYPES)))
    value = builder(_Build(world, viewer, spec, stamp, rng))
    value.update(spec.value)
    return {"poll_type": spec.poll_type, "value": value}
