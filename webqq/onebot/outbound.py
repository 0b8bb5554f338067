"""The durable outbound queue: accepted messages kept in the store, handed to the client
one at a time.

outbound: the pump between ``webqq.onebot.store`` and the client's ``send_*``. It decides
when a stored row goes to the client and writes what became of it; the exactly-once rules
are in ``webqq.onebot.store``. What it must never do: send around the client, or hand a
row over twice.
"""
import asyncio
import logging
from typing import Any, Dict, List, Optional, Tuple, Union

from tornado.ioloop import IOLoop

from webqq.client.client import State
from webqq.client.outbox import SendStatus
from webqq.onebot import mapping as onebot
from webqq.onebot.store import Store
from webqq.qq.messages import Face, content_text

__all__ = ["Outbound"]

log = logging.getLogger("webqq.api")


class Outbound:
    """Accepted messages, kept in the store and handed to the client one at a time.

    A row goes to the client only while it is ONLINE, and the next one only when the
    client has finished the last (its ``"sent"`` event): so at most one message is ever
    between the store and the server. The row stays ``queued`` while the client paces
    it or waits to be online, and becomes ``sending`` when its first part is handed to
    the network (the client's ``"transmitting"`` event): a crash before that leaves it
    queued (sent at the next start); after it, ``sending`` (``Store.recover`` marks it
    ambiguous; it is not sent again).

    Args:
        client: the ``WebQQClient``.
        store: the ``Store``.
        self_id: our QQ number (``user_id`` of what we send).
    """

    def __init__(self, client: Any, store: Store, self_id: int) -> None:
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
        self._closed = False
        # Kept: the client forgets a listener by identity, and each attribute access
        # makes a new bound method.
        self._listeners = (("transmitting", self._on_transmitting), ("sent", self._on_sent),
                           ("state", self._on_state))
        for kind, listener in self._listeners:
            client.on(kind, listener)

    def accept(self, chat: str, target: int, pieces: List[Union[str, Face]],
               segments: List[Dict], idempotency_key: Optional[str] = None
               ) -> Tuple[int, bool]:
        """Queue a message (in the store first). Returns ``(message_id, created)``."""
        message_id, created = self.store.add_outgoing(
            chat=chat, target=target, user_id=self.self_id, text=content_text(pieces),
            data={"segments": segments, "pieces": onebot.pieces_to_data(pieces)},
            idempotency_key=idempotency_key)
        if created:
            log.debug("accepted message %d (%s %d)", message_id, chat, target)
            self.pump()
        return message_id, created

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

    def pump(self) -> None:
        """Hand the oldest queued row to the client if it is free and online."""
        if self._closed or self._in_hand is not None or self.client.state is not State.ONLINE:
            return
        rows = self.store.queued()
        if not rows:
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

    def release(self) -> None:
        """Stop handing rows over; the row in hand goes back to ``queued`` if no part
        of it left (it is sent at the next start), else it waits for its outcome."""
        self._closed = True
        if self._in_hand is not None:
            message_id, outgoing = self._in_hand
            if not outgoing.sent_at:
                self.store.set_status(message_id, "queued")
                self._in_hand = None
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.cancel()
        self._waiters.clear()

    def resume(self) -> None:
        """Hand rows over again after ``release()`` (a restarted client)."""
        self._closed = False
        self.pump()

    def close(self) -> None:
        self.release()
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)
