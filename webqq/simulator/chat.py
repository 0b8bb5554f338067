"""Messages through the simulator: a client's sends in, the receivers' poll items out.

chat: §3.17 - §3.21 and §7 without HTTP. A send is checked (target, content,
msg_id, group_sig), recorded for /_sim/sent, and delivered as a poll item to every other
receiver that has a session; the control surface's say and event verbs push items the
same way. It never touches a socket and never logs message text or a token.
"""
import collections
import logging
from dataclasses import dataclass, field, replace

from . import wire
from .errors import ControlError, Refusal, channel_refusal
from .events import (SESS_FLAGS, SIMULATED_FONT, EventSpec, SentContentError, build_item,
                     content_text, parse_sent_content)
from .tokens import hex_token

__all__ = ["ChatRouter", "RECENT_SENDS", "SENT_MAX", "SESSION_SIGS_MAX", "SentRecord"]

log = logging.getLogger("webqq.simulator")

#: Sends remembered per session to recognise an exact repeat (§7.2).
RECENT_SENDS = 64
#: Sends kept per account for /_sim/sent (the oldest go first): an hour at 25 a second,
#: so a long bench or soak against one simulator cannot take all its memory.
SENT_MAX = 100_000
#: Temporary-session signatures a session keeps (the oldest void first): a client that
#: asks again for every message cannot grow the session without end.
SESSION_SIGS_MAX = 1000


@dataclass(frozen=True)
class _SessSig:
    peer: int                   # QQ number the sig allows messages to
    service_type: int           # 0 group, 1 discussion
    through: object             # the WorldGroup or WorldDiscussion


@dataclass
class SentRecord:
    """One message a client sent, for /_sim/sent."""

    kind: str                   # buddy, group, discussion, session
    to: int                     # QQ number, group number or discussion number
    text: str
    msg_id: int
    time: int
    content: list
    dropped: "str | None" = None
    #: The pictures it carried: piece index, kind, name and the bytes' SHA-1 (pictures.py).
    pictures: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"kind": self.kind, "to": self.to, "text": self.text, "msg_id": self.msg_id,
                "time": self.time, "content": self.content, "dropped": self.dropped,
                "pictures": self.pictures}


@dataclass(frozen=True)
class _Route:
    """Where a send goes: the item to build, who receives it, what /_sim/sent names."""

    spec: EventSpec
    receivers: list             # QQ numbers
    record_to: int              # QQ number, group number or discussion number


class ChatRouter:
    """Sends, temporary-session sigs, and events pushed by the control surface.

    Args:
        world: the loaded World.
        rng: the seeded ``random.Random``.
        clock: unix time in seconds.
        sessions: the ``Sessions`` receivers are reached through.
        pictures: the ``Pictures`` that check and convert a send's pictures.
        tell: called with what happened, ``tell("said", to=, spec=, item=)`` and
            ``tell("sent", account=, record=)`` (``Backend.tell``); None: nobody.
    """

    def __init__(self, world, rng, clock, sessions, pictures, tell=None):
        self.tell = tell if tell is not None else (lambda kind, **fields: None)
        self.world = world
        self.options = world.options
        self.rng = rng
        self.clock = clock
        self.sessions = sessions
        self.pictures = pictures
        self.sent = {}                  # qq -> deque of its last SENT_MAX SentRecords
        self._chat_seq = {}             # group or discussion number -> last seq

    # --- sends (§3.17 - §3.21, §7) -----------------------------------------------------

    def send(self, session, kind: str, r: dict) -> dict:
        """Check, record and deliver one sent message.

        Args:
            kind: "buddy", "group", "discussion" or "session".
            r: the decoded ``r`` object.

        Returns:
            ``{"retcode":0,"result":"ok"}``, also for a message dropped by the §7.3
            world flags (recorded with ``dropped`` set, delivered to nobody).

        Raises:
            Refusal: 100006 for a missing or non-integer msg_id or a content that is
                not §7.1's form, or a picture the send may not carry (pictures.py); 108
                for an unknown target, a group or discussion the account is not in, or a
                missing/wrong group_sig.
        """
        msg_id = wire.as_int(r.get("msg_id"))
        if msg_id is None:
            raise channel_refusal(100006)
        try:
            pieces, font = parse_sent_content(r.get("content"))
        except SentContentError as exc:
            log.info("send from %d refused: %s", session.qq, exc)
            raise channel_refusal(100006) from None
        if font is None:
            log.warning("send from %d carries no font element; using the default", session.qq)
            font = dict(SIMULATED_FONT)
        route = self._route(session, kind, r, pieces, font)
        received, pictures = self.pictures.check_send(
            session, kind, r, pieces, peer=route.record_to,
            chat={"group": route.spec.group, "discussion": route.spec.discussion}.get(kind))
        now = self.clock()
        dropped = self._drop_reason(session, pieces, now, msg_id)
        session.last_send = (now, pieces)
        session.recent_sends[msg_id] = pieces
        while len(session.recent_sends) > RECENT_SENDS:
            session.recent_sends.popitem(last=False)
        record = SentRecord(kind=kind, to=route.record_to, text=content_text(pieces),
                            msg_id=msg_id, time=int(now), content=pieces, dropped=dropped,
                            pictures=pictures)
        kept = self.sent.get(session.qq)
        if kept is None:
            kept = self.sent[session.qq] = collections.deque(maxlen=SENT_MAX)
        kept.append(record)
        self.tell("sent", account=session.qq, record=record)
        log.info("%s message from %d to %d%s", kind, session.qq, route.record_to,
                 " dropped (%s)" % dropped if dropped else "")
        if dropped is None:
            # §8.14 (uncertain): no 2013 source shows a send echoed to the sender's own
            # poll, and pual_bot expects none; only the other receivers get it.
            self._deliver(replace(route.spec, content=received),
                          [qq for qq in route.receivers if qq != session.qq])
        return {"retcode": 0, "result": "ok"}

    def _route(self, session, kind: str, r: dict, pieces: list, font: dict) -> _Route:
        """The receivers of a send of ``kind``; Refusal(108) when there is none."""
        viewer, world = session.qq, self.world
        if kind == "buddy":
            to = world.qq_of_uin(viewer, r.get("to"))
            if to is None:
                raise channel_refusal(108)
            return _Route(EventSpec("message", sender=viewer, content=pieces, font=font),
                          [to], to)
        if kind == "group":
            group = world.group_by_gid(r.get("group_uin"))
            if group is None or group.member(viewer) is None:
                raise channel_refusal(108)
            spec = EventSpec("group_message", sender=viewer, group=group, content=pieces,
                             font=font)
            return _Route(spec, [m.qq for m in group.members], group.number)
        if kind == "discussion":
            discussion = world.discussion_by_did(r.get("did"))
            if discussion is None or viewer not in discussion.members:
                raise channel_refusal(108)
            spec = EventSpec("discu_message", sender=viewer, discussion=discussion,
                             content=pieces, font=font)
            return _Route(spec, list(discussion.members), discussion.number)
        to = world.qq_of_uin(viewer, r.get("to"))
        sig = session.sigs.get(r.get("group_sig"))
        if to is None or sig is None or sig.peer != to:
            raise channel_refusal(108)
        through = sig.through
        spec = EventSpec("sess_message", sender=viewer, content=pieces, font=font,
                         group=through if sig.service_type == 0 else None,
                         discussion=through if sig.service_type == 1 else None)
        return _Route(spec, [to], to)

    def _drop_reason(self, session, pieces: list, now: float, msg_id: int) -> "str | None":
        """Why the world's §7.2/§7.3 rules drop this send ("repeat", "too_fast",
        "duplicate"), or None to deliver it."""
        if self.options.drop_exact_repeats and session.recent_sends.get(msg_id) == pieces:
            return "repeat"
        if session.last_send is None:
            return None
        then, previous = session.last_send
        if self.options.min_interval and now - then < self.options.min_interval:
            return "too_fast"
        if self.options.dup_window and previous == pieces and now - then < self.options.dup_window:
            return "duplicate"
        return None

    def _next_seq(self, spec: EventSpec) -> int:
        """§5.2/§5.3 ``seq``: one per message of a group or discussion, shared by receivers."""
        chat = spec.group if spec.poll_type == "group_message" else (
            spec.discussion if spec.poll_type == "discu_message" else None)
        if chat is None:
            return 0
        self._chat_seq[chat.number] = self._chat_seq.get(chat.number, 0) + 1
        return self._chat_seq[chat.number]

    def _deliver(self, spec: EventSpec, receivers: list) -> None:
        seq = self._next_seq(spec)
        for qq in receivers:
            target = self.sessions.reachable(qq)
            if target is not None:
                target.push(build_item(self.world, qq, spec, target.stamp(seq), self.rng))

    def c2c_sig(self, session, through_id, to_uin, service_type) -> dict:
        """channel/get_c2cmsg_sig2 (§3.19): a group_sig for a temporary session.

        Raises:
            Refusal: 100006 for a service_type other than 0/1; 100001 when the peer or
                the group/discussion is unknown or the peer is not a member of it.
        """
        service_type = wire.as_int(service_type)
        if service_type not in (0, 1):
            raise channel_refusal(100006)
        peer = self.world.qq_of_uin(session.qq, to_uin)
        if service_type == 0:
            through = self.world.group_by_gid(through_id)
            member = through is not None and through.member(peer) is not None
        else:
            through = self.world.discussion_by_did(through_id)
            member = through is not None and peer in through.members
        if peer is None or not member:
            raise Refusal(100001)
        sig = hex_token(self.rng, 96)
        session.sigs[sig] = _SessSig(peer, service_type, through)
        while len(session.sigs) > SESSION_SIGS_MAX:
            del session.sigs[next(iter(session.sigs))]
        return {"retcode": 0, "result": {"type": 0, "value": sig, "flags": dict(SESS_FLAGS)}}

    # --- the control surface's verbs -----------------------------------------------------

    def push_event(self, to: int, spec: EventSpec) -> dict:
        """Queue an event for account ``to`` (/_sim/say, /_sim/event); returns the item.

        Raises:
            ControlError: the account has no session to queue to.
            EventError: the spec misses what its poll_type needs.
        """
        session = self.sessions.reachable(to)
        if session is None:
            raise ControlError("account %d is not logged in" % to)
        item = build_item(self.world, to, spec, session.stamp(self._next_seq(spec)), self.rng)
        session.push(item)
        self.tell("said", to=to, spec=spec, item=item)
        return item

    def sent_by(self, qq: int) -> list:
        """/_sim/sent: what the account's clients sent, in order, drops included."""
        return [record.to_json() for record in self.sent.get(qq, [])]

    def dropped_by(self, qq: int) -> list:
        """/_sim/dropped: the account's sends that were answered "ok" and dropped."""
        return [record.to_json() for record in self.sent.get(qq, []) if record.dropped]
