"""The one durable outbound queue: every message to send, whoever asked for it, kept in
the store and handed to the client one at a time.

outbound: the pump between ``webqq.onebot.store`` and the client's ``send_*``. The API's
send actions and the plugins' ``send`` and ``reply`` all put a row in the store first
(``origin`` says who asked), so a message survives a SIGKILL the same way whoever asked
for it; this module decides when a row goes to the client and writes what became of it.
The exactly-once rules are in ``webqq.onebot.store``. It lives outside the web server: a
daemon without ``[api] listen`` still has it.

It also carries over the queue of older versions, ``outbox-QQ.json`` (plugin replies a
clean stop could not send): ``import_saved_outbox`` puts its entries in the store, then
removes the file.

What it must never do: send around the client, hand a row over twice, or remove a queue
before its entries are safe in the store.
"""
import asyncio
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from tornado.ioloop import IOLoop, PeriodicCallback

from webqq.client.client import SendStatus, State
from webqq.onebot import mapping as onebot
from webqq.onebot.store import Store
from webqq.qq.messages import Face, content_text

__all__ = ["Outbound", "import_saved_outbox", "PLUGIN_CHATS", "PRUNE_INTERVAL"]

log = logging.getLogger("webqq.api")

#: The chats a plugin's ``send`` may name (a temporary session can only be replied to).
PLUGIN_CHATS = ("buddy", "group", "discussion")
#: Seconds between two prunes of the store (retention).
PRUNE_INTERVAL = 3600.0


class Outbound:
    """Stored messages, handed to the client one at a time.

    A row goes to the client only while it is ONLINE, and the next one only when the
    client has finished the last (its ``"sent"`` event): so at most one message is ever
    between the store and the server. The row stays ``queued`` while the client paces
    it or waits to be online, and becomes ``sending`` when its first part is handed to
    the network (the client's ``"transmitting"`` event): a crash before that leaves it
    queued (sent at the next start); after it, ``sending`` (``Store.recover`` marks it
    ambiguous; it is not sent again).

    Args:
        client: the ``WebQQClient``.
        store: the ``Store`` (its owner closes it, after ``close()``).
        self_id: our QQ number (``user_id`` of what we send).
    """

    def __init__(self, client: Any, store: Store, *, self_id: int) -> None:
        self.client = client
        self.store = store
        self.self_id = self_id
        # user_id -> (uin, via_id, service_type) of the last temporary-session message
        # from a stranger: a private message to them goes back the same way.
        self.sessions: Dict[int, Tuple[int, int, int]] = {}
        self._in_hand: Optional[Tuple[int, Any]] = None     # (message_id, OutgoingMessage)
        # (message_id, the OutgoingMessage's id to come) while send_* runs: the client
        # may transmit the message before send_* returns it.
        self._handing: Optional[Tuple[int, int]] = None
        self._waiters: Dict[int, List[asyncio.Future]] = {}
        self._idle = asyncio.Event()        # set while nothing is queued or in hand
        self._closed = False
        self._prune_timer: Optional[PeriodicCallback] = None
        # Kept: the client forgets a listener by identity, and each attribute access
        # makes a new bound method.
        self._listeners = (("transmitting", self._on_transmitting), ("sent", self._on_sent),
                           ("state", self._on_state), ("message", self._on_message))
        for kind, listener in self._listeners:
            client.on(kind, listener)

    def start(self) -> None:
        """After a restart: rows a dead process left ``sending`` become ambiguous, old
        rows go, and the queue starts moving (once the client is online)."""
        recovered = self.store.recover()
        if recovered:
            log.warning("%d message(s) were being sent when the daemon died: marked "
                        "ambiguous, not sent again", recovered)
        self.store.prune()
        self._prune_timer = PeriodicCallback(self.store.prune, PRUNE_INTERVAL * 1000)
        self._prune_timer.start()
        waiting = self.store.queued()
        if waiting:
            plugins = sum(1 for row in waiting if row.origin == "plugin")
            log.info("%d message(s) are waiting to be sent (%d from the API, %d from "
                     "plugins)", len(waiting), len(waiting) - plugins, plugins)
        self.pump()

    # -- putting messages in -----------------------------------------------------------

    def accept(self, chat: str, target: int, pieces: List[Union[str, Face]],
               segments: List[Dict], *, origin: str = "api",
               idempotency_key: Optional[str] = None) -> Tuple[int, bool]:
        """Queue a message (in the store first). Returns ``(message_id, created)``.

        Args:
            chat: ``buddy`` (a friend, or a stranger met in a temporary session),
                ``group`` or ``discussion``.
            target: the OneBot id: a QQ number, a group number, a discussion's did.
            pieces: the WebQQ content (texts and faces).
            segments: the OneBot segments, for ``get_msg``.
            origin: who asked: ``api`` or ``plugin``.
            idempotency_key: a key already used returns the earlier message's id.
        """
        message_id, created = self.store.add_outgoing(
            chat=chat, target=target, user_id=self.self_id, text=content_text(pieces),
            data={"segments": segments, "pieces": onebot.pieces_to_data(pieces)},
            origin=origin, idempotency_key=idempotency_key)
        if created:
            log.debug("accepted message %d (%s %d, %s)", message_id, chat, target, origin)
            self._idle.clear()
            self.pump()
        return message_id, created

    def send_text(self, chat: str, target: int, text: str, *, origin: str = "plugin",
                  idempotency_key: Optional[str] = None) -> int:
        """A plugin's ``send``: queue ``text`` to ``target`` in ``chat`` (one of
        ``PLUGIN_CHATS``). Returns the message_id.

        Raises:
            ValueError: another chat, or an empty text.
        """
        if chat not in PLUGIN_CHATS:
            raise ValueError("%s messages can only be replied to" % chat)
        if not isinstance(text, str) or not text:
            raise ValueError("cannot send an empty message")
        segments = [{"type": "text", "data": {"text": text}}]
        return self.accept(chat, int(target), [text], segments, origin=origin,
                           idempotency_key=idempotency_key)[0]

    def reply(self, event: Any, text: str, *, origin: str = "plugin") -> int:
        """A plugin's ``reply``: queue ``text`` to the chat the client's
        ``MessageReceived`` came from (a temporary session goes back the same way, while
        it lasts). Returns the message_id.

        Raises:
            ValueError: an empty text.
        """
        contacts = self.client.contacts
        sender = event.sender
        if event.chat == "group":
            chat, target = "group", onebot.group_id_of(event.group, event.message.code)
        elif event.chat == "discussion":
            chat, target = "discussion", event.message.did
        else:
            chat, target = "buddy", onebot.user_id_of(sender.uin, sender.qq, contacts)
        return self.send_text(chat, target, text, origin=origin)

    # -- waiting for messages ----------------------------------------------------------

    async def outcome(self, message_id: int, timeout: float) -> str:
        """The message's status once it is final, or its status after ``timeout``."""
        row = self.store.get(message_id)
        if row is None or row.status not in ("queued", "sending"):
            return row.status if row else "unknown"
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(message_id, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiters.pop(message_id, None)
        return self.store.get(message_id).status

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is queued or in hand. Returns
        whether the queue is empty."""
        self.pump()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def waiting(self) -> int:
        """Rows still to send (``queued``) or on their way (``sending``)."""
        counts = self.store.counts()
        return counts.get("queued", 0) + counts.get("sending", 0)

    # -- the pump ----------------------------------------------------------------------

    def pump(self) -> None:
        """Hand the oldest queued row to the client if it is free and online."""
        if self._closed or self._in_hand is not None or self.client.state is not State.ONLINE:
            return
        rows = self.store.queued()
        if not rows:
            self._idle.set()
            return
        row = rows[0]
        self._handing = (row.id, self.client.outbox.next_id)
        try:
            outgoing = self._hand_over(row)
        except (ValueError, RuntimeError) as error:
            self._finish(row.id, "failed", None, str(error))
            IOLoop.current().add_callback(self.pump)
            return
        finally:
            self._handing = None
        if outgoing.status is not SendStatus.QUEUED:
            # Finished inside send_* (an unknown target fails at once): its "sent"
            # event came before we held it.
            self._finish(row.id, outgoing.status.value, outgoing.retcode,
                         outgoing.error or None)
            IOLoop.current().add_callback(self.pump)
            return
        self._in_hand = (row.id, outgoing)

    def _hand_over(self, row: Any) -> Any:
        contacts = self.client.contacts
        content = onebot.pieces_from_data(row.data["pieces"])
        if row.chat == "buddy":
            friend = onebot.find_friend(contacts, row.target)
            route = self.sessions.get(row.target)
            if friend is None and route is not None:
                uin, via_id, service_type = route
                return self.client.send_session(uin, content, via_id=via_id,
                                                service_type=service_type)
            return self.client.send_buddy(friend or row.target, content)
        if row.chat == "group":
            group = onebot.find_group(contacts, row.target)
            return self.client.send_group(group or row.target, content)
        return self.client.send_discussion(row.target, content)

    def _on_transmitting(self, event: Any) -> None:
        """Our message's first part is about to go out: ``sending`` is written first, so
        after a crash it means "maybe sent"."""
        if self._in_hand is not None and event.message is self._in_hand[1]:
            message_id = self._in_hand[0]
        elif self._handing is not None and event.message.id == self._handing[1]:
            message_id = self._handing[0]               # transmitted inside send_*
        else:
            return
        self.store.set_status(message_id, "sending")

    def _on_sent(self, event: Any) -> None:
        if self._in_hand is None or event.message is not self._in_hand[1]:
            return
        message_id, outgoing = self._in_hand
        self._in_hand = None
        if outgoing.status is SendStatus.FAILED and not outgoing.sent_at and self._closed:
            self.store.set_status(message_id, "queued")     # it never left: next start
            return
        self._finish(message_id, outgoing.status.value, outgoing.retcode,
                     outgoing.error or None)
        self.pump()

    def _finish(self, message_id: int, status: str, retcode: Optional[int],
                error: Optional[str]) -> None:
        self.store.set_status(message_id, status, retcode=retcode, error=error)
        log.debug("message %d %s", message_id, status)
        for future in self._waiters.pop(message_id, []):
            if not future.done():
                future.set_result(status)

    def _on_state(self, event: Any) -> None:
        if event.new is State.ONLINE:
            self.pump()

    def _on_message(self, event: Any) -> None:
        """Remember how to answer a stranger: the route of their temporary session."""
        if event.chat != "session":
            return
        sender = event.sender
        user_id = onebot.user_id_of(sender.uin, sender.qq, self.client.contacts)
        self.sessions[user_id] = (sender.uin, event.message.via_id,
                                  event.message.service_type)

    # -- stopping ----------------------------------------------------------------------

    def release(self) -> str:
        """Stop handing rows over; the row in hand goes back to ``queued`` if no part
        of it left (it is sent at the next start), else it waits for its outcome.
        Returns what is left, for the daemon's shutdown report: ``drained``, or how
        many rows stay queued in the store (and whether one was on the wire)."""
        self._closed = True
        in_flight = 0
        if self._in_hand is not None:
            message_id, outgoing = self._in_hand
            if not outgoing.sent_at:
                self.store.set_status(message_id, "queued")
                self._in_hand = None
            else:
                in_flight = 1
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.cancel()
        self._waiters.clear()
        queued = self.store.counts().get("queued", 0)
        if not queued and not in_flight:
            return "drained"
        return "%d queued in the store" % queued + (", 1 in flight" if in_flight else "")

    def resume(self) -> None:
        """Hand rows over again after ``release()`` (a restarted client)."""
        self._closed = False
        self.pump()

    def close(self) -> None:
        """Stop for good: after the client has stopped, so that the outcome of a message
        on the wire is written."""
        self._closed = True
        if self._prune_timer is not None:
            self._prune_timer.stop()
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)


# --- the queue of older versions -------------------------------------------------------

def import_saved_outbox(path: Path, outbound: Outbound) -> int:
    """Move the entries of an older version's ``outbox-QQ.json`` (a JSON list of
    ``[chat, target, text]``) into the store, then remove the file.

    Each entry is queued with an idempotency key made of the file's digest and the
    entry's place, so a crash before the file is removed cannot queue it twice. A bad
    entry is logged and skipped; a file that is not a JSON list is moved aside
    (``.bad-TIMESTAMP``) and logged, never deleted. Returns how many were queued.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as error:
        log.error("cannot read the saved outbox %s: %s; left in place", path,
                  error.strerror or error)
        return 0
    try:
        entries = json.loads(data.decode("utf-8"))
        if not isinstance(entries, list):
            raise ValueError("not a list")
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        aside = path.with_name(path.name + ".bad-" + _stamp())
        os.replace(path, aside)
        log.error("the saved outbox %s is not a list of messages (%s): moved to %s",
                  path, error, aside.name)
        return 0
    digest = hashlib.sha256(data).hexdigest()[:16]
    queued = 0
    for place, entry in enumerate(entries):
        try:
            if not isinstance(entry, list) or len(entry) != 3:
                raise ValueError("not [chat, target, text]")
            chat, target, text = entry
            if isinstance(target, bool) or not isinstance(target, int):
                raise ValueError("the target is not a number")
            outbound.send_text(chat, target, text, idempotency_key="%s:%s:%d" % (
                path.name, digest, place))
        except (TypeError, ValueError) as error:
            log.warning("saved outbox %s: entry %d skipped (%s)", path.name, place + 1,
                        error)
            continue
        queued += 1
    os.unlink(path)
    log.info("moved %d message(s) from the saved outbox %s into the store", queued,
             path.name)
    return queued


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S")
