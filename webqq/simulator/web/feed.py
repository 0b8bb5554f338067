"""The chat page's live feed: what was said to the bots and what they sent, as events.

feed: listens to the back end (``Backend.listeners``) and turns each message said through
/_sim/ and each message a client sent into one plain, JSON-ready event with a sequence
number; keeps the last ``HISTORY`` of them for pages (and test kits) that connect later;
and hands each new one to its subscribers. It performs no I/O, never blocks, and never
carries a token: events name people by QQ number and chats by their world number.

An event, as the page and ``webqq.testing`` read it::

    {"type": "message", "seq": 7, "time": 1700000000,
     "direction": "in",              # "in": said to a bot; "out": sent by a bot
     "account": 10001,               # the bot that heard it, or sent it
     "sender": 20001,                # QQ number of who wrote it
     "chat": {"kind": "buddy", "peer": 20001}   # or {"kind": "group", "number": 30001}
                                                # or {"kind": "discussion", "number": 40001}
     "session": false,               # a temporary session, shown as the buddy chat
     "pieces": [["text", "hi "], ["face", 14], ["picture", "a.jpg"]],
     "text": "hi ", "dropped": null} # why the server dropped a send (§7.3), or null

    {"type": "accounts", "accounts": {...}}   # /_sim/state's "accounts", after a change
"""
import collections
import logging
import secrets

__all__ = ["ChatFeed", "HISTORY", "page_pieces", "world_summary"]

log = logging.getLogger("webqq.simulator")

#: Message events kept for late subscribers (a page opened later, a test's replies()).
HISTORY = 2000

# poll_type -> the chat kind it belongs to; other poll types are not chat messages.
_SAID_KINDS = {"message": "buddy", "group_message": "group", "discu_message": "discussion",
               "sess_message": "buddy"}
# A client's send kind -> chat kind.
_SENT_KINDS = {"buddy": "buddy", "session": "buddy", "group": "group",
               "discussion": "discussion"}


class ChatFeed:
    """Message events of one simulator, numbered, remembered and fanned out.

    Args:
        backend: the simulator's Backend; the feed adds itself to its ``listeners``.
        world: the loaded World (names for ``world_summary``).
    """

    def __init__(self, backend, world):
        self.backend = backend
        self.world = world
        #: Changes when a simulator starts: a page that reconnects to a new simulator
        #: knows its sequence numbers start again.
        self.run_id = secrets.token_hex(8)
        self.seq = 0
        self.history = collections.deque(maxlen=HISTORY)
        self._subscribers = []
        backend.listeners.append(self._on_backend)

    def subscribe(self, callback):
        """Call ``callback(event)`` for every new event; returns the function that stops it."""
        self._subscribers.append(callback)

        def unsubscribe():
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe

    def hello(self) -> dict:
        """What a new subscriber gets first: the world, the accounts, the history."""
        return {"type": "hello", "run": self.run_id, "seq": self.seq,
                "world": world_summary(self.world), "accounts": self.backend.report(),
                "history": list(self.history)}

    def _on_backend(self, kind: str, **fields) -> None:
        if kind == "said":
            event = self._said(fields["to"], fields["spec"], fields["item"])
        elif kind == "sent":
            event = self._sent(fields["account"], fields["record"])
        elif kind == "state":
            self._publish_accounts()
            return
        else:
            return
        if event is not None:
            self.seq += 1
            event["seq"] = self.seq
            self.history.append(event)
            self._publish(event)
            # The counters of /_sim/state moved (queued, sent): the panel shows them.
            self._publish_accounts()

    def _publish_accounts(self) -> None:
        # The report walks every account: with a thousand of them it cost more than
        # the rest of a message's handling, so it is built only when someone listens.
        if self._subscribers:
            self._publish({"type": "accounts", "accounts": self.backend.report()})

    def _publish(self, event: dict) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("chat feed subscriber failed")

    @staticmethod
    def _said(to: int, spec, item: dict) -> "dict | None":
        chat_kind = _SAID_KINDS.get(spec.poll_type)
        if chat_kind is None or spec.sender is None:
            return None
        if spec.poll_type == "group_message":
            chat = {"kind": "group", "number": spec.group.number}
        elif spec.poll_type == "discu_message":
            chat = {"kind": "discussion", "number": spec.discussion.number}
        else:
            chat = {"kind": "buddy", "peer": spec.sender}
        raw = list(spec.content) if spec.content is not None else [spec.text or ""]
        return _message("in", to, spec.sender, chat, spec.poll_type == "sess_message",
                        raw, item["value"].get("time", 0), None)

    @staticmethod
    def _sent(account: int, record) -> dict:
        kind = _SENT_KINDS[record.kind]
        chat = {"kind": kind, "peer" if kind == "buddy" else "number": record.to}
        return _message("out", account, account, chat, record.kind == "session",
                        record.content, record.time, record.dropped)


def _message(direction, account, sender, chat, session, raw, when, dropped) -> dict:
    pieces = page_pieces(raw)
    return {"type": "message", "seq": 0, "time": when, "direction": direction,
            "account": account, "sender": sender, "chat": chat, "session": session,
            "pieces": pieces, "text": "".join(p[1] for p in pieces if p[0] == "text"),
            "dropped": dropped}


def page_pieces(raw: list) -> list:
    """Message pieces in the page's three forms: ``["text", s]``, ``["face", n]`` and
    ``["picture", name]``.

    ``raw`` holds strings, ``["face", N]`` and picture elements in any form a client or
    /_sim/say may use (received ``["offpic", {"file_path": …}]`` and ``["cface",
    {"name": …}]``, sent ``["cface", NAME]``, ``["cface", "group", NAME]``, ``["offpic",
    PATH, …]``, ``["pic_id", …]``); anything else becomes a text piece naming it.
    """
    pieces = []
    for piece in raw:
        if isinstance(piece, str):
            pieces.append(["text", piece])
        elif isinstance(piece, list) and len(piece) == 2 and piece[0] == "face" \
                and isinstance(piece[1], int) and not isinstance(piece[1], bool):
            pieces.append(["face", piece[1]])
        elif isinstance(piece, list) and piece and piece[0] in ("offpic", "cface", "pic_id",
                                                                "image"):
            pieces.append(["picture", _picture_name(piece)])
        else:
            pieces.append(["text", "[%s]" % (piece[0] if isinstance(piece, list) and piece
                                             and isinstance(piece[0], str) else "?")])
    return pieces


def _picture_name(piece: list) -> str:
    args = piece[1:]
    if args and isinstance(args[0], dict):
        name = args[0].get("file_path" if piece[0] == "offpic" else "name")
    elif piece[0] == "cface" and len(args) > 1 and args[0] == "group":
        name = args[1]
    else:
        name = args[0] if args else None
    return name if isinstance(name, str) and name else "picture"


def world_summary(world) -> dict:
    """The people, accounts, groups and discussions a page lists (no password)."""
    accounts = set(world.accounts)
    return {
        "people": [{"qq": p.qq, "nick": p.nick, "status": p.status, "face": p.face,
                    "long_nick": p.long_nick, "account": p.qq in accounts}
                   for p in world.people.values()],
        "accounts": [{"qq": a.qq, "nick": a.nick,
                      "friends": [{"qq": f.qq, "remark": f.remark} for f in a.friends]}
                     for a in world.accounts.values()],
        "groups": [{"number": g.number, "name": g.name, "owner": g.owner,
                    "members": [{"qq": m.qq, "card": m.card, "admin": m.admin}
                                for m in g.members]}
                   for g in world.groups.values()],
        "discussions": [{"number": d.number, "name": d.name, "members": list(d.members)}
                        for d in world.discussions.values()],
    }
