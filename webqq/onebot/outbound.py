"""The one durable outbound queue: every message to send, whoever asked for it, kept in
the store and handed to the client one at a time.

outbound: the pump between ``webqq.onebot.store`` and the client's ``send_*``. The API's
send actions and the plugins' ``send`` and ``reply`` all put a row in the store first
(``origin`` says who asked), so a message survives a SIGKILL the same way whoever asked
for it; this module decides when a row goes to the client and writes what became of it.
The exactly-once rules are in ``webqq.onebot.store``. It lives outside the web server: a
daemon without ``[api] listen`` still has it.

A message may carry pictures: ``put`` writes each to ``state_dir/media-out`` (named by
the SHA-256 of its bytes, ``webqq.onebot.media.OutgoingPictures``) before the row, which
keeps that name, so a queued picture survives a restart as its text does; the file goes
once no queued or sending row names it (``_sweep``: at start, after each final outcome,
and with each prune).

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
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from tornado.ioloop import IOLoop, PeriodicCallback

from webqq.client.client import SendStatus, State
from webqq.http.retry import backoff_delay
from webqq.onebot import mapping as onebot
from webqq.onebot.discussions import DiscussionIds
from webqq.onebot.mapping import StoredPicture
from webqq.onebot.media import OutgoingPictures, digests
from webqq.onebot.store import PENDING, Store, StoreUnavailable, move_aside
from webqq.qq import Face, UploadPicture, content_text
from webqq.statedir import MEDIA_OUT

__all__ = ["Outbound", "import_saved_outbox", "PLUGIN_CHATS", "PRUNE_INTERVAL", "SESSIONS_MAX"]

log = logging.getLogger("webqq.api")

#: The chats a plugin's ``send`` may name (a temporary session can only be replied to).
PLUGIN_CHATS = ("buddy", "group", "discussion")
#: Strangers whose temporary-session route is remembered, at most (the oldest heard
#: from is forgotten first; a private message to a forgotten one fails as unknown).
SESSIONS_MAX = 1000
#: Seconds between two prunes of the store (retention).
PRUNE_INTERVAL = 3600.0
#: Seconds before the first new try of a store that cannot be written, doubled at each
#: failure up to ``RETRY_MAX``.
RETRY = 0.5
RETRY_MAX = 10.0


class Outbound:
    """Stored messages, handed to the client one at a time.

    The rules, each for the exactly-once promise of ``webqq.onebot.store``:

    * A row goes to the client only after ``sending`` is written and synced
      (``Store.mark_sending``): nothing reaches the network that the store does not
      know may be there. A row found ``sending`` after a crash is never sent again.
      The rows every account's queue asks for in one loop turn share one sync
      (``Store.ask_sending``): a sync takes milliseconds of the loop, and one per
      message would cap a daemon of many accounts at a few hundred a second.
    * One row at a time, and only when the client will transmit it at once: it is
      ONLINE, has finished the last row (its ``"sent"`` event), and ``send_interval``
      (twice that for the same text again, as the client paces) has passed since, and
      the client's queue says it would send the text now (``SendQueue.wait_for``: its
      interval runs from the previous part's answer, and a resumed session, or a part
      the server refused, makes it wait longer). So a row waits for its turn in the
      store as ``queued``, not in the client as ``sending``: a crash while it waits
      leaves it to be sent at the next start. (The client paces too, and is the
      authority; should it still hold a row, a crash then makes that row ambiguous,
      never sent twice.)
    * When the store cannot be written, sending stops (``paused`` says why, in a log
      line and the API's status) and nothing is sent until it can: no row is handed
      over, an outcome that could not be written is kept here and written first, and
      a plugin's message waits here in order (lost only if the process dies before
      the store is back). The API refuses a message it cannot store. A timer tries the
      store again (``RETRY`` doubling to ``RETRY_MAX`` seconds); each try blocks the
      IOLoop at most ``store.BUSY_TIMEOUT``.

    Args:
        client: the ``WebQQClient``.
        store: the ``Store`` (its owner closes it, after ``close()``).
        self_id: our QQ number (``user_id`` of what we send).
        send_interval: the client's ``send_interval`` (``[bot] send_interval``).
    """

    def __init__(self, client: Any, store: Store, *, self_id: int,
                 send_interval: float = 0.5) -> None:
        self.client = client
        self.store = store
        self.self_id = self_id
        self.send_interval = send_interval
        #: The ids of the discussions, which rows and events use.
        self.discussions = DiscussionIds(store)
        #: Why sending is paused (the store cannot be written), or None.
        self.paused: Optional[str] = None
        # user_id -> (uin, via_id, service_type) of the last temporary-session message
        # from a stranger: a private message to them goes back the same way. The
        # SESSIONS_MAX strangers heard from last.
        self.sessions: Dict[int, Tuple[int, int, int]] = {}
        self._in_hand: Optional[Tuple[int, Any]] = None     # (message_id, OutgoingMessage)
        self._marking: Optional[Any] = None     # the row asked to be written 'sending'
        # When the client finished the last row (loop time) and its text: the pacing.
        self._last: Optional[Tuple[float, str]] = None
        # Outcomes known but not yet written, and plugin messages not yet stored: in
        # order, written first when the store can be written again. Not capped: they
        # grow only while the store is unwritable (then sending is paused and the
        # API refuses new messages; a plugin's stay here rather than be lost).
        self._unrecorded: List[Tuple[int, str, Optional[int], Optional[str]]] = []
        self._unsaved: List[Tuple[str, int, str, str]] = []
        self._recovered = False             # Store.recover() has run since the start
        self._waiters: Dict[int, List[asyncio.Future]] = {}
        self._idle = asyncio.Event()        # set while nothing is queued or in hand
        self._closed = False
        self._pace_timer: Optional[object] = None
        self._pace_due = 0.0                 # loop time the pace timer fires at
        self._retry_timer: Optional[object] = None
        self._retries = 0
        self._prune_timer: Optional[PeriodicCallback] = None
        self._last_waiting = 0
        #: The pictures of queued messages (``state_dir/media-out``).
        self.pictures = OutgoingPictures(Path(client.state_dir) / MEDIA_OUT)
        self._putting: "Counter[str]" = Counter()     # digests of messages being put
        #: ``listener(message_id, status, why)`` of each, as a row becomes final (sent,
        #: failed, ambiguous): the API's delivery receipts.
        self.finished: List[Callable[[int, str, Optional[str]], Any]] = []
        store.on_unwritable = self._pause
        # Kept: the client forgets a listener by identity, and each attribute access
        # makes a new bound method.
        self._listeners = (("sent", self._on_sent), ("state", self._on_state),
                           ("message", self._on_message))
        for kind, listener in self._listeners:
            client.on(kind, listener)

    def start(self) -> None:
        """After a restart: rows a dead process left ``sending`` become ambiguous, old
        rows go, and the queue starts moving (once the client is online)."""
        try:
            self._recover()
            self.store.prune()
            waiting = self.store.queued()
            self._sweep()
        except StoreUnavailable as error:
            self._pause(error.reason)
            waiting = []
        self._prune_timer = PeriodicCallback(self._prune, PRUNE_INTERVAL * 1000)
        self._prune_timer.start()
        if waiting:
            plugins = sum(1 for row in waiting if row.origin == "plugin")
            log.info("%d message(s) are waiting to be sent (%d from the API, %d from "
                     "plugins)", len(waiting), len(waiting) - plugins, plugins)
        self.pump()

    def _recover(self) -> None:
        if self._recovered:
            return
        recovered = self.store.recover()
        self._recovered = True
        if recovered:
            log.warning("%d message(s) were being sent when the daemon died: marked "
                        "ambiguous, not sent again", recovered)

    def _prune(self) -> None:
        try:
            self.store.prune()
            self._sweep()
        except StoreUnavailable as error:
            log.debug("prune skipped: %s", error)

    def _names_pictures(self, message_id: int) -> bool:
        """Whether the row names a picture file: only then may its end free one. (A
        sweep reads every pending row; after every message, a backlog of 17,000 rows
        took 170 ms a message. The periodic prune sweeps whatever else is left.)"""
        try:
            row = self.store.get(message_id)
        except StoreUnavailable:
            return False
        return row is not None and bool(digests(row.data.get("pieces", ())))

    def _sweep(self) -> None:
        """Remove the pictures no queued or sending row, nor a message being put,
        names (nothing while the rows cannot be read)."""
        keep = set(self._putting)
        try:
            for row in self.store.pending():
                keep |= digests(row.data.get("pieces", ()))
        except StoreUnavailable as error:
            log.debug("pictures not swept: %s", error)
            return
        gone = self.pictures.sweep(keep)
        if gone:
            log.debug("%d picture(s) of finished messages removed", gone)

    # -- putting messages in -----------------------------------------------------------

    async def put(self, chat: str, target: int,
                  pieces: Sequence[Union[str, Face, UploadPicture]], segments: List[Dict],
                  *, origin: str = "api", idempotency_key: Optional[str] = None
                  ) -> Tuple[int, bool]:
        """``accept`` for content that may hold pictures: each ``UploadPicture`` is
        written to ``state_dir/media-out`` first (durably, in a worker thread), and the
        row names its file.

        Raises:
            StoreUnavailable: as ``accept``.
            OSError: a picture cannot be written (nothing is queued).
        """
        pending = [hashlib.sha256(p.data).hexdigest() for p in pieces
                   if isinstance(p, UploadPicture)]
        self._putting.update(pending)
        try:
            stored = [await self.pictures.keep(p) if isinstance(p, UploadPicture) else p
                      for p in pieces]
            return self.accept(chat, target, stored, segments, origin=origin,
                               idempotency_key=idempotency_key)
        finally:
            for digest in pending:
                self._putting[digest] -= 1
                if self._putting[digest] <= 0:
                    del self._putting[digest]

    def accept(self, chat: str, target: int,
               pieces: Sequence[Union[str, Face, StoredPicture]], segments: List[Dict], *,
               origin: str = "api", idempotency_key: Optional[str] = None
               ) -> Tuple[int, bool]:
        """Queue a message (in the store first). Returns ``(message_id, created)``.

        Args:
            chat: ``buddy`` (a friend, or a stranger met in a temporary session),
                ``group`` or ``discussion``.
            target: the OneBot id: a QQ number, a group number, a discussion's did.
            pieces: the WebQQ content: texts, faces, and pictures already kept
                (``put`` keeps them).
            segments: the OneBot segments, for ``get_msg``.
            origin: who asked: ``api`` or ``plugin``.
            idempotency_key: a key already used returns the earlier message's id.

        Raises:
            StoreUnavailable: not stored, so not queued (also while sending is paused:
                what waits here goes first).
        """
        if self.paused is not None:
            raise StoreUnavailable(self.paused)
        message_id, created = self._store_row(chat, target, pieces, segments, origin,
                                              idempotency_key)
        if created:
            log.debug("accepted message %d (%s %d, %s)", message_id, chat, target, origin)
            self._idle.clear()
            self.pump()
        return message_id, created

    def send_text(self, chat: str, target: int, text: str, *,
                  origin: str = "plugin") -> Optional[int]:
        """A plugin's ``send``: queue ``text`` to ``target`` in ``chat`` (one of
        ``PLUGIN_CHATS``). Returns the message_id; None while the store cannot be
        written (the message waits here, in order, and is stored when it can be).

        Raises:
            ValueError: another chat, or an empty text.
        """
        chat, target = _check_text(chat, target, text)
        if not self._unsaved:
            try:
                return self._accept_text(chat, target, text, origin)
            except StoreUnavailable:
                pass
        self._unsaved.append((chat, target, text, origin))
        self._idle.clear()
        log.warning("the message store cannot be written: a %s message to %s %d waits in "
                    "memory (%d) until it can", origin, chat, target, len(self._unsaved))
        return None

    def reply(self, event: Any, text: str, *, origin: str = "plugin") -> Optional[int]:
        """A plugin's ``reply``: queue ``text`` to the chat the client's
        ``MessageReceived`` came from (a temporary session goes back the same way, while
        it lasts). Returns what ``send_text`` returns.

        Raises:
            ValueError: an empty text.
        """
        contacts = self.client.contacts
        sender = event.sender
        if event.chat == "group":
            chat, target = "group", onebot.group_id_of(event.group, event.message.code)
        elif event.chat == "discussion":
            chat, target = "discussion", self.discussions.id_of(event.message.did,
                                                                contacts)
        else:
            chat, target = "buddy", onebot.user_id_of(sender.uin, sender.qq, contacts)
        return self.send_text(chat, target, text, origin=origin)

    def _accept_text(self, chat: str, target: int, text: str, origin: str,
                     idempotency_key: Optional[str] = None) -> int:
        return self.accept(chat, target, [text], _text_segments(text), origin=origin,
                           idempotency_key=idempotency_key)[0]

    def _store_row(self, chat: str, target: int,
                   pieces: Sequence[Union[str, Face, StoredPicture]],
                   segments: List[Dict], origin: str,
                   idempotency_key: Optional[str] = None) -> Tuple[int, bool]:
        return self.store.add_outgoing(
            chat=chat, target=target, user_id=self.self_id, text=content_text(pieces),
            data={"segments": segments, "pieces": onebot.pieces_to_data(pieces)},
            origin=origin, idempotency_key=idempotency_key)

    # -- waiting for messages ----------------------------------------------------------

    async def outcome(self, message_id: int, timeout: float) -> Tuple[str, Optional[str]]:
        """``(status, why)`` of a message once it is final, or after ``timeout``
        (``queued`` or ``sending``); ``why`` is the error or retcode of a failure."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(future)
        try:
            known = self._stored_outcome(message_id)
            if known is not None and known[0] not in PENDING:
                return known
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(message_id, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiters.pop(message_id, None)
        if future.done() and not future.cancelled():
            return future.result()
        return self._stored_outcome(message_id) or ("queued", None)

    def _stored_outcome(self, message_id: int) -> Optional[Tuple[str, Optional[str]]]:
        try:
            row = self.store.get(message_id)
        except StoreUnavailable:
            return None
        if row is None:
            return "unknown", None
        return row.status, _why(row.error, row.retcode)

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
        """Rows still to send (``queued``) or on their way (``sending``), and plugin
        messages not yet stored (the last count read while the store cannot be)."""
        try:
            counts = self.store.counts()
        except StoreUnavailable:
            return self._last_waiting
        self._last_waiting = (counts.get("queued", 0) + counts.get("sending", 0)
                              + len(self._unsaved))
        return self._last_waiting

    # -- the pump ----------------------------------------------------------------------

    def pump(self) -> None:
        """Ask for the oldest queued row to be written ``sending`` if the client is free,
        online and would send it at once; ``_marked`` hands it over once it is (the
        store syncs the rows asked in one loop turn together: ``Store.ask_sending``)."""
        if self._closed or self.paused is not None or not self._recovered \
                or self._in_hand is not None or self._marking is not None \
                or self.client.state is not State.ONLINE:
            return
        try:
            row = self.store.next_queued()
        except StoreUnavailable as error:
            self._pause(error.reason)
            return
        if row is None:
            if not self._unsaved:
                self._idle.set()
            return
        wait = self._pacing(row.text)
        if wait > 0:
            self._pace(wait)
            return
        self._marking = row
        if self.store.ask_sending(row.id, self._marked):
            IOLoop.current().add_callback(self.store.flush_sending)

    def _marked(self, marked: bool, reason: Optional[str]) -> None:
        """The store's answer for the row ``pump`` asked to mark: hand it to the client,
        or put it back when the client cannot take it at once any more."""
        row, self._marking = self._marking, None
        if reason is not None:
            self._pause(reason)             # still queued: nothing was handed over
            return
        if not marked:
            IOLoop.current().add_callback(self.pump)
            return
        if self._closed or self.client.state is not State.ONLINE:
            self._record(row.id, "queued", None, None)      # it never left
            return
        try:
            outgoing = self._hand_over(row)
        except (ValueError, RuntimeError) as error:
            self._record(row.id, "failed", None, str(error))
            IOLoop.current().add_callback(self.pump)
            return
        if outgoing.status is not SendStatus.QUEUED:
            # Finished inside send_* (an unknown target fails at once): its "sent"
            # event came before we held it.
            self._finished(row.id, outgoing)
            return
        self._in_hand = (row.id, outgoing)

    def _pacing(self, text: str) -> float:
        """Seconds until the client would send ``text`` at once (0: now): the longer of
        this queue's own rule and the client queue's."""
        client_wait = self.client.send_queue.wait_for(text)
        if self._last is None:
            return client_wait
        finished, last_text = self._last
        gap = self.send_interval * (2 if text == last_text else 1)
        return max(finished + gap - IOLoop.current().time(), client_wait)

    def _pace(self, wait: float) -> None:
        """Pump again in ``wait`` seconds, or sooner if a timer is already set for then
        (the interval may have been shortened by a reload)."""
        loop = IOLoop.current()
        due = loop.time() + wait
        if self._pace_timer is not None:
            if self._pace_due <= due:
                return
            loop.remove_timeout(self._pace_timer)
        self._pace_timer, self._pace_due = loop.call_later(wait, self._paced), due

    def _paced(self) -> None:
        self._pace_timer = None
        self.pump()

    def _hand_over(self, row: Any) -> Any:
        """``client.send_*`` of a row: by QQ or group number when the OneBot id is one
        (the client's log lines name it so), else by the contact the id falls back to
        (a uin, a group code), or a stranger's temporary session; a discussion by its
        discuss_id (``webqq.onebot.discussions``).

        Raises:
            ValueError: an unknown discussion (never passed to the server as a did).
        """
        contacts = self.client.contacts
        content = [self.pictures.load(p) if isinstance(p, StoredPicture) else p
                   for p in onebot.pieces_from_data(row.data["pieces"])]
        if row.chat == "buddy":
            friend = onebot.find_friend(contacts, row.target)
            route = self.sessions.get(row.target)
            if friend is None and route is not None:
                uin, via_id, service_type = route
                return self.client.send_session(uin, content, via_id=via_id,
                                                service_type=service_type)
            by_number = friend is None or friend.qq == row.target
            return self.client.send_buddy(row.target if by_number else friend, content)
        if row.chat == "group":
            group = onebot.find_group(contacts, row.target)
            by_number = group is None or group.number == row.target
            return self.client.send_group(row.target if by_number else group, content)
        discussion = self.discussions.find(row.target, contacts)
        if discussion is None:
            raise ValueError("unknown discussion %d" % row.target)
        return self.client.send_discussion(discussion, content)

    def _on_sent(self, event: Any) -> None:
        if self._in_hand is None or event.message is not self._in_hand[1]:
            return
        message_id, outgoing = self._in_hand
        self._in_hand = None
        self._finished(message_id, outgoing)

    def _finished(self, message_id: int, outgoing: Any) -> None:
        if outgoing.sent_at:
            self._last = (IOLoop.current().time(), outgoing.text)
        status = outgoing.status.value
        if status == "failed" and not outgoing.sent_at and self._closed:
            status = "queued"               # it never left: the next start sends it
        self._record(message_id, status, outgoing.retcode, outgoing.error or None)
        IOLoop.current().add_callback(self.pump)

    def _record(self, message_id: int, status: str, retcode: Optional[int],
                error: Optional[str]) -> None:
        """Write a row's new status; when the store cannot, keep it to write first
        (the row stays ``sending`` meanwhile, so it is not sent again)."""
        outcome = (message_id, status, retcode, error)
        if self._unrecorded:
            self._unrecorded.append(outcome)
        else:
            try:
                self.store.set_status(message_id, status, retcode=retcode, error=error)
            except StoreUnavailable as failure:
                self._unrecorded.append(outcome)
                self._pause(failure.reason)
            else:
                if status not in PENDING and self._names_pictures(message_id):
                    self._sweep()
        log.debug("message %d %s", message_id, status)
        for future in self._waiters.pop(message_id, []):
            if not future.done():
                future.set_result((status, _why(error, retcode)))
        if status not in PENDING:
            for listener in list(self.finished):
                listener(message_id, status, _why(error, retcode))

    def _on_state(self, event: Any) -> None:
        if event.new is State.ONLINE:
            self.pump()

    def _on_message(self, event: Any) -> None:
        """Remember how to answer a stranger: the route of their temporary session."""
        if event.chat != "session":
            return
        sender = event.sender
        user_id = onebot.user_id_of(sender.uin, sender.qq, self.client.contacts)
        self.sessions.pop(user_id, None)            # to the young end
        self.sessions[user_id] = (sender.uin, event.message.via_id,
                                  event.message.service_type)
        while len(self.sessions) > SESSIONS_MAX:
            del self.sessions[next(iter(self.sessions))]

    # -- when the store cannot be written ----------------------------------------------

    def _pause(self, reason: str) -> None:
        """The store failed a write (``Store.on_unwritable``): stop sending, say so,
        and try again later."""
        if self.paused is None:
            log.warning("the message store %s cannot be written (%s): sending paused "
                        "until it can be; trying again in %g s", self.store.path.name,
                        reason, RETRY)
            self._retries = 0
        self.paused = reason
        self._idle.clear()
        if self._retry_timer is None and not self._closed:
            delay = backoff_delay(self._retries + 1, RETRY, RETRY_MAX)
            self._retry_timer = IOLoop.current().call_later(delay, self._retry)

    def _retry(self) -> None:
        """Try the store again: what waits here is written first, in order; then
        sending resumes."""
        self._retry_timer = None
        self._retries += 1
        reason = self.store.probe()
        if reason is None:
            try:
                self._flush()
            except StoreUnavailable as error:
                reason = error.reason
        if reason is not None:
            log.debug("the message store still cannot be written (%s) at try %d",
                      reason, self._retries)
            self._pause(reason)
            return
        log.info("the message store can be written again: sending resumed")
        self.paused = None
        self.pump()

    def _flush(self) -> None:
        """Recovery, outcomes and plugin messages that waited, in order.

        Raises:
            StoreUnavailable: stopped at the first that could not be written.
        """
        self._recover()
        while self._unrecorded:
            message_id, status, retcode, error = self._unrecorded[0]
            self.store.set_status(message_id, status, retcode=retcode, error=error)
            self._unrecorded.pop(0)
        while self._unsaved:
            chat, target, text, origin = self._unsaved[0]
            self._store_row(chat, target, [text], _text_segments(text), origin)
            self._unsaved.pop(0)

    # -- stopping ----------------------------------------------------------------------

    def release(self) -> str:
        """Stop handing rows over; the row in hand goes back to ``queued`` if no part
        of it left (it is sent at the next start), else it waits for its outcome.
        Returns what is left, for the daemon's shutdown report: ``drained``, or how
        many rows stay queued in the store (and whether one was on the wire)."""
        self._closed = True
        if self._pace_timer is not None:
            IOLoop.current().remove_timeout(self._pace_timer)
            self._pace_timer = None
        in_flight = 0
        if self._in_hand is not None:
            message_id, outgoing = self._in_hand
            if not outgoing.sent_at:
                self._in_hand = None
                self._record(message_id, "queued", None, None)
            else:
                in_flight = 1
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.cancel()
        self._waiters.clear()
        queued = self.waiting() - in_flight
        if not queued and not in_flight:
            return "drained"
        return "%d queued in the store" % queued + (", 1 in flight" if in_flight else "")

    def resume(self) -> None:
        """Hand rows over again after ``release()`` (a restarted client)."""
        self._closed = False
        if self.paused is not None:
            self._pause(self.paused)        # its retries stopped with release()
        self.pump()

    def close(self) -> None:
        """Stop for good: after the client has stopped, so that the outcome of a message
        on the wire is written. What still waits here gets one last try."""
        self._closed = True
        if self._marking is not None:       # not written yet: it stays queued
            self.store.withdraw_sending(self._marking.id)
            self._marking = None
        for timer in (self._pace_timer, self._retry_timer):
            if timer is not None:
                IOLoop.current().remove_timeout(timer)
        self._pace_timer = self._retry_timer = None
        if self._prune_timer is not None:
            self._prune_timer.stop()
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)
        self.store.on_unwritable = None
        if (self._unrecorded or self._unsaved) and self.store.probe() is None:
            try:
                self._flush()
            except StoreUnavailable:
                pass
        if self._unrecorded:
            log.error("%d message outcome(s) could not be written to %s: those messages "
                      "will read as ambiguous", len(self._unrecorded), self.store.path.name)
        if self._unsaved:
            log.error("%d plugin message(s) could not be stored in %s and are lost",
                      len(self._unsaved), self.store.path.name)


def _check_text(chat: str, target: Any, text: Any) -> Tuple[str, int]:
    if chat not in PLUGIN_CHATS:
        raise ValueError("%s messages can only be replied to" % chat)
    if not isinstance(text, str) or not text:
        raise ValueError("cannot send an empty message")
    return chat, int(target)


def _text_segments(text: str) -> List[Dict]:
    return [{"type": "text", "data": {"text": text}}]


def _why(error: Optional[str], retcode: Optional[int]) -> Optional[str]:
    return error or ("retcode %s" % retcode if retcode is not None else None)


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
        try:
            aside = move_aside(path).name
        except OSError as failure:
            aside = "nowhere (%s); left in place" % (failure.strerror or failure)
        log.error("the saved outbox %s is not a list of messages (%s): moved to %s",
                  path, error, aside)
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
            chat, target = _check_text(chat, target, text)
            outbound._accept_text(chat, target, text, "plugin", "%s:%s:%d" % (
                path.name, digest, place))
        except StoreUnavailable as error:
            log.error("cannot move the saved outbox %s into the store (%s): left in "
                      "place for the next start", path.name, error.reason)
            return queued
        except (TypeError, ValueError) as error:
            log.warning("saved outbox %s: entry %d skipped (%s)", path.name, place + 1,
                        error)
            continue
        queued += 1
    os.unlink(path)
    log.info("moved %d message(s) from the saved outbox %s into the store", queued,
             path.name)
    return queued

