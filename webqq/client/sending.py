"""Sending: from ``send_buddy(qq, text)`` to the server's answer for each part.

sending: ``Transmitter``, the client's sending half. It owns the ``SendQueue`` (order,
pacing, time to live, results), the message counter (``msg_id``) and the temporary
session signatures, and carries each part through its life: resolve the target in the
contacts, fetch a session signature if needed, build the request with
``webqq.qq``, send it through the client's ``HTTPStream``, classify the answer.
It never changes the client's state and never opens a socket. It sends a part again
only when the server certainly did not process it (it never left whole, it could not
connect, the server answered 429 or 503, or refused it for a dead session); a part whose
fate is unknown (a reset or a timeout after it left, a 502, an unreadable answer) may
have been delivered: its message ends AMBIGUOUS, said in the log and the
``SendFinished`` event, and is not repeated, unless ``resend_ambiguous`` asks for at
least once. No 2013 source shows the server dropping a repeated msg_id (twqq's README
lists the opposite as a known bug), so a resend is not assumed to be harmless.

The life of a message::

    send_buddy(20001, "hi")   key ("qq", 20001); the text split into parts
      -> SendQueue.put        queued; paced; waits while the client is not online
      -> _transmit            resolve the key to a uin; [get_c2c_msg_sig2 for a session]
                              [a part with pictures: Uploader.prepare uploads them]
      -> _send_part           msg_id + 1; Transmitting (first part); POST send_buddy_msg2
      -> _on_sent             SENT, FAILED (retcode), AMBIGUOUS (fate unknown), or
                              NOT_SENT (certainly not processed: sent again)
      -> SendQueue            the next part, or the message's end: SendFinished

How it meets the client: a few callables, and the client's ``Link`` read at each send::

    Transmitter(stream, link, contacts=lambda: client.contacts,
                epoch=lambda: client._epoch, can_send=lambda: client is ONLINE,
                emit=client._emit,           # Transmitting, SendFinished
                save=client._save_session,   # the msg_id block is spent: save a new one
                renew=client._renew_link)    # renew(epoch, "refused"|"unreachable", reason)

The client opens the queue at ``start()`` (``open``), closes it at ``stop()``
(``close``: queued messages fail), wakes it when it comes online (``wake``), and forgets
the signatures at each new login (``forget``). ``renew`` asks for a new session when a
send found the old one dead; the client ignores it when ``epoch`` is stale.
"""
import logging
from typing import Any, Callable, Dict, Optional, Tuple

from tornado import gen
from tornado.concurrent import Future
from tornado.ioloop import IOLoop

from webqq.client.calls import NotOnline
from webqq.client.contacts import Contacts, Discussion, Friend, Group
from webqq.client.events import ClientEvent, MessageReceived, SendFinished, Transmitting
from webqq.client.login import Link
from webqq.client.numbers import NumberBook
from webqq.client.send_queue import Outcome, OutgoingMessage, SendQueue
from webqq.client.uploads import Uploader
from webqq.http.errors import HTTPStreamError
from webqq.http.stream import HTTPStream, Response, RetryPolicy
from webqq.qq import (CFace, ChatKind, OffPic, Outgoing, ProtocolError, QQRetcode,
                      RetcodeError, UploadPicture, build_c2c_sig, build_send_buddy,
                      build_send_discussion, build_send_group, build_send_session,
                      content_text, has_pictures, parse_c2c_sig, parse_send, split_content)

__all__ = ["Transmitter", "MSG_ID_BLOCK", "C2C_SIGS_MAX"]

log = logging.getLogger("webqq.client")

# msg_ids reserved per save of the session (see Transmitter.reserve): one small file
# write per thousand messages.
MSG_ID_BLOCK = 1000
# A send is never repeated by the stream once it may have reached the server: only a
# failure that certainly left nothing processed (could not connect) is retried there.
_SEND_RETRY = RetryPolicy(idempotent=False, attempts=4, backoff=0.5, backoff_max=4.0)
# Statuses that refuse a request before processing it (RFC 6585 §4, RFC 9110 §15.6.4).
_REFUSED_STATUSES = (429, 503)
# Seconds before a part refused that way goes again: doubled per refusal, up to a cap.
_REFUSED_BACKOFF, _REFUSED_BACKOFF_MAX = 1.0, 30.0
# With resend_ambiguous, how often one part is sent again after an unknown fate.
_AMBIGUOUS_RESENDS = 3
#: Temporary-session signatures kept at most (one per stranger written to through a group
#: or discussion); past it the oldest is dropped, and fetched again if needed.
C2C_SIGS_MAX = 500
# Send retcodes that mean the session is gone: renew it, then send again once (§6).
_SESSION_GONE = {QQRetcode.LOGIN_EXPIRED, QQRetcode.SESSION_GONE, QQRetcode.VFWEBQQ_EXPIRED,
                 QQRetcode.CREDENTIALS_EXPIRED, QQRetcode.NO_COOKIE}

Done = Callable[..., None]


class Transmitter:
    """The sending half of a ``WebQQClient`` (see the module doc for the wiring).

    Args:
        stream: the client's ``HTTPStream``.
        link: the client's ``Link`` (clientid, psessionid), read at each send.
        contacts: the client's current ``Contacts`` (replaced whole on each refresh).
        epoch: the client's current epoch; a send remembers the one it went out in.
        can_send: true while the client is online; the queue waits otherwise.
        emit: how ``Transmitting`` and ``SendFinished`` events reach the listeners.
        save: save the session now; called when ``msg_id`` reaches the saved block's
            end, and expected to call ``reserve()``.
        renew: ``renew(epoch, why, reason)``: the session a send used was refused by the
            server (``why`` ``"refused"``) or could not be reached (``"unreachable"``).
        interval: seconds between two sends at least.
        ttl: seconds a queued message may wait for the client to be online.
        max_text: characters per message part; longer texts are split.
        clock: wall-clock seconds, for the protocol's ``t`` stamps.
        numbers: the client's ``NumberBook``, to find a friend or group named by a
            number no contact has yet.
        msg_id: the counter's first value (random, so two logins rarely collide).
        resend_ambiguous: read at each unknown fate; true: send the part again (at least
            once) rather than end its message AMBIGUOUS (at most once).
        uploader: uploads the pictures of a part when its turn comes.

    Bounds: the temporary-session signatures are forgotten at each login and kept for
    ``C2C_SIGS_MAX`` peers at most (the oldest dropped); the queue's messages expire
    after ``ttl``.

    Attributes:
        queue: the ``SendQueue``; a new one at each ``open()`` after a ``close()``.
        msg_id: the last message counter value used.
    """

    def __init__(self, stream: HTTPStream, link: Link, *, contacts: Callable[[], Contacts],
                 epoch: Callable[[], int], can_send: Callable[[], bool],
                 emit: Callable[[ClientEvent], None], save: Callable[[], None],
                 renew: Callable[[int, str, str], None], interval: float, ttl: float,
                 max_text: int, clock: Callable[[], float], numbers: NumberBook,
                 msg_id: int, uploader: Uploader,
                 resend_ambiguous: Callable[[], bool] = lambda: False) -> None:
        self.stream = stream
        self.io_loop: IOLoop = stream.io_loop
        self.link = link
        self.interval, self.ttl, self.max_text = interval, ttl, max_text
        self.clock = clock
        self._resend_ambiguous = resend_ambiguous
        self._numbers = numbers
        self.msg_id = msg_id
        self._reserved = msg_id              # the saved session resumes at this id
        self._contacts = contacts
        self._epoch = epoch
        self._can_send = can_send
        self._emit = emit
        self._save = save
        self._renew = renew
        self._c2c_sigs: Dict[Tuple[int, int], str] = {}   # (via_id, uin) -> group_sig
        self._uploader = uploader
        self.queue = self._new_queue()
        self.queue.close()                   # until the client starts

    def _new_queue(self) -> SendQueue:
        return SendQueue(self.io_loop, self._transmit, self._can_send,
                         lambda message: self._emit(SendFinished(message)),
                         interval=self.interval, ttl=self.ttl)

    # -- the client's controls -----------------------------------------------------------

    def open(self) -> None:
        """Accept messages again (``start()``): a new queue if the old one was closed."""
        if self.queue.closed:
            self.queue = self._new_queue()

    def close(self, reason: str) -> None:
        """Fail every queued message with ``reason`` (the one on the wire: ambiguous)."""
        self.queue.close(reason)

    def wake(self) -> None:
        """The client came online: look at the queue again."""
        self.queue.wake()

    def forget(self) -> None:
        """A new login: the temporary session signatures and the group-picture
        signature of the old one are void."""
        self._c2c_sigs.clear()
        self._uploader.forget()

    def reserve(self) -> int:
        """The end of a new block of msg_ids, for the session file to hold instead of
        the last id used: a session resumed after a crash then starts past every id this
        one may have sent, since the server drops a known id with the same text as a
        repeat."""
        self._reserved = self.msg_id + MSG_ID_BLOCK
        return self._reserved

    def resume_at(self, msg_id: int) -> None:
        """Continue the counter of a restored session from its saved block's end; the
        first send waits as if the process before had sent a moment ago (the server
        counts its intervals per session, across our restarts)."""
        self.msg_id = self._reserved = msg_id
        self.queue.after_restart()

    # -- asking for a send ---------------------------------------------------------------

    def send_buddy(self, friend: Any, text: Outgoing) -> OutgoingMessage:
        """Queue a message to a friend.

        Args:
            friend: a QQ number (int), a nick or remark name (str), or a ``Friend``.
            text: the text, or a sequence of texts, ``Face`` pieces and pictures
                (``UploadPicture``: uploaded when the message's turn comes); split
                into parts of ``max_text`` characters (a face or picture counts one)
                if longer.

        Returns:
            The ``OutgoingMessage``; await ``.done`` or listen for ``"sent"`` events.
            An unknown friend fails when its turn comes (``error`` says so), and so
            does a picture the server refuses; while the client is not online the
            message waits, ``ttl`` seconds at most.

        Raises:
            ValueError: an empty text; a picture the chat cannot carry
                (``PictureError``: too large; a session message: none at all).
            RuntimeError: the client is stopped.
        """
        key = ("uin", friend.uin) if isinstance(friend, Friend) else \
            ("name", friend) if isinstance(friend, str) else ("qq", int(friend))
        return self._put("buddy", key, text)

    def send_group(self, group: Any, text: Outgoing) -> OutgoingMessage:
        """Queue a message to a group: its public number (int), name (str) or ``Group``."""
        key = ("gid", group.gid) if isinstance(group, Group) else \
            ("name", group) if isinstance(group, str) else ("number", int(group))
        return self._put("group", key, text)

    def send_discussion(self, discussion: Any, text: Outgoing) -> OutgoingMessage:
        """Queue a message to a discussion: its did (int), name (str) or ``Discussion``."""
        key = ("did", discussion.did) if isinstance(discussion, Discussion) else \
            ("name", discussion) if isinstance(discussion, str) else ("did", int(discussion))
        return self._put("discussion", key, text)

    def send_session(self, uin: int, text: Outgoing, *, via_id: int,
                     service_type: int = 0) -> OutgoingMessage:
        """Queue a temporary-session message to ``uin`` met in group or discussion
        ``via_id`` (``SessionMessage.via_id``; ``service_type`` 0 group, 1 discussion)."""
        return self._put("session", ("uin", (uin, via_id, service_type)), text)

    def reply(self, event: MessageReceived, text: Outgoing) -> OutgoingMessage:
        """Answer a ``MessageReceived`` in its own chat (to the sender for buddy and
        session messages, to the group or discussion otherwise)."""
        message = event.message
        if event.chat == "buddy":
            return self._put("buddy", ("uin", message.from_uin), text)
        if event.chat == "group":
            return self._put("group", ("gid", message.gid), text)
        if event.chat == "discussion":
            return self._put("discussion", ("did", message.did), text)
        return self.send_session(message.from_uin, text, via_id=message.via_id,
                                 service_type=message.service_type)

    def _put(self, chat: str, key: Tuple[str, Any],
             content: Outgoing) -> OutgoingMessage:
        _check_pictures(ChatKind(chat), content)
        parts = split_content(content, self.max_text)
        if not parts:
            raise ValueError("cannot send an empty message")
        if self.queue.closed:
            raise RuntimeError("the client is stopped")
        return self.queue.put(chat, key, content_text(content), parts)

    # -- one part's life: resolve, [signature], send, classify ---------------------------

    def _resolve(self, chat: str, key: Tuple[str, Any]) -> Optional[int]:
        """The wire id (uin, gid or did) of a queued message's target, now."""
        by, value = key
        contacts = self._contacts()
        if chat == "buddy":
            found = contacts.friend(**{by: value})
            return found.uin if found else value if by == "uin" else None
        if chat == "group":
            found = contacts.group(**{by: value})
            return found.gid if found else value if by == "gid" else None
        if chat == "discussion":
            found = contacts.discussion(**{by: value})
            return found.did if found else value if by == "did" else None
        return value[0]

    def _transmit(self, message: OutgoingMessage, part: Any, done: Done) -> None:
        """Send one part (the queue's ``transmit``); ``done(outcome, ...)`` follows once."""
        to = self._resolve(message.chat, message.target)
        if to is not None:
            self._transmit_to(message, part, to, done)
            return
        search = self._search(message.chat, message.target)
        if search is None:
            self._unknown(message, done)
            return
        self.io_loop.add_future(search, lambda found: self._found(message, part, done, found))

    def _search(self, chat: str, key: Tuple[str, Any]) -> Optional[Future]:
        """A friend named by QQ number, or a group by public number, that no contact
        has yet: a Future of its uin (gid) or None, from looking up the unknown numbers
        one by one (the NumberBook paces them); None when there is nothing to look up."""
        by, value = key
        contacts = self._contacts()
        if chat == "buddy" and by == "qq":
            asks = [(friend.uin, friend.uin, self._numbers.qq_of)
                    for friend in contacts.friends.values() if friend.qq is None]
        elif chat == "group" and by == "number":
            asks = [(group.gid, group.code, self._numbers.group_number)
                    for group in contacts.groups.values() if group.number is None]
        else:
            return None
        if not asks:
            return None

        async def search() -> Optional[int]:
            for target, key, ask in asks:
                if await ask(key) == value:
                    return target
            return None
        return gen.convert_yielded(search())

    def _found(self, message: OutgoingMessage, part: Any, done: Done,
               search: Future) -> None:
        if search.exception() is not None:     # a bug: logged, the message fails
            log.error("looking up %r crashed", message.target, exc_info=search.exception())
        to = None if search.exception() is not None else search.result()
        if to is None:
            self._unknown(message, done)
        else:
            self._transmit_to(message, part, to, done)

    def _unknown(self, message: OutgoingMessage, done: Done) -> None:
        done(Outcome.FAILED, error="unknown %s %r" % (message.chat, message.target[1]))

    def _transmit_to(self, message: OutgoingMessage, part: Any, to: int, done: Done) -> None:
        """Send one part to the wire id ``to`` [after the session signature]."""
        epoch = self._epoch()
        if message.chat == "session":
            _uin, via_id, service_type = message.target[1]
            sig = self._c2c_sigs.get((via_id, to))
            if sig is None:
                request = build_c2c_sig(
                    via_id, to, service_type=service_type, clientid=self.link.clientid,
                    psessionid=self.link.psessionid, t=self.clock())
                self.stream.add_request(
                    request, lambda r: self._on_c2c_sig(r, message, part, to, done),
                    errback=lambda _r, e: self._send_failed(epoch, e, done, sent=False))
                return
        if has_pictures(part) and message.next_part not in message.prepared:
            self._prepare(message, part, to, done, epoch)
            return
        self._send_part(message, part, to, done)

    def _prepare(self, message: OutgoingMessage, part: Any, to: int, done: Done,
                 epoch: int) -> None:
        """Upload the pictures of ``part``, then send it. A failed upload fails the
        message (the server refused the picture, or its answer was unusable); one cut
        short by a new login, or by the client going offline, leaves it queued."""
        index = message.next_part
        upload = gen.convert_yielded(
            self._uploader.prepare(ChatKind(message.chat), to, list(part)))

        def uploaded(future) -> None:
            if self._epoch() != epoch:
                if not future.cancelled():
                    future.exception()          # seen: the message waits for the new one
                done(Outcome.NOT_SENT)
                return
            try:
                prepared = future.result()
            except NotOnline:
                done(Outcome.NOT_SENT)
                return
            except (ProtocolError, HTTPStreamError, ValueError) as exc:
                done(Outcome.FAILED, retcode=getattr(exc, "retcode", None),
                     error="picture upload failed: %s" % describe(exc))
                return
            except Exception as exc:            # a bug: fail the message, keep the queue
                log.exception("Uploading the pictures of message %d failed", message.id)
                done(Outcome.FAILED, error="picture upload failed: %s" % describe(exc))
                return
            message.prepared[index] = prepared
            self._send_part(message, part, to, done)
        self.io_loop.add_future(upload, uploaded)

    def _on_c2c_sig(self, response: Response, message: OutgoingMessage, part: Any,
                    to: int, done: Done) -> None:
        try:
            sig = parse_c2c_sig(response.read())
        except ProtocolError as exc:
            done(Outcome.FAILED, retcode=getattr(exc, "retcode", None), error=str(exc))
            return
        self._c2c_sigs[(message.target[1][1], to)] = sig.group_sig
        while len(self._c2c_sigs) > C2C_SIGS_MAX:
            del self._c2c_sigs[next(iter(self._c2c_sigs))]
        self._send_part(message, part, to, done)

    def _send_part(self, message: OutgoingMessage, part: Any, to: int, done: Done) -> None:
        prepared = message.prepared.get(message.next_part)
        content = prepared.content if prepared is not None else part
        pictures: Dict[str, Any] = {}
        if prepared is not None and prepared.gface is not None:
            pictures = dict(key=prepared.gface.key, sig=prepared.gface.sig)
            if message.chat == "group":
                group = self._contacts().group(gid=to)
                if group is None:
                    done(Outcome.FAILED, error="cannot send a picture to group %d: its "
                                               "code is unknown" % to)
                    return
                pictures["group_code"] = group.code
        if message.part_msg_id is None:      # a part sent again keeps its msg_id
            self.msg_id += 1
            if self.msg_id >= self._reserved:
                self._save()                 # reserve the next block first
            message.part_msg_id = self.msg_id
        ids = dict(msg_id=message.part_msg_id, clientid=self.link.clientid,
                   psessionid=self.link.psessionid)
        if message.chat == "buddy":
            request = build_send_buddy(to, content, **ids)
        elif message.chat == "group":
            request = build_send_group(to, content, **ids, **pictures)
        elif message.chat == "discussion":
            request = build_send_discussion(to, content, **ids, **pictures)
        else:
            _uin, via_id, service_type = message.target[1]
            request = build_send_session(
                to, part, group_sig=self._c2c_sigs[(via_id, to)],
                service_type=service_type, **ids)
        if message.next_part == 0:
            self._emit(Transmitting(message))
        epoch = self._epoch()
        self.stream.add_request(
            request, lambda r: self._on_sent(epoch, r, message, done),
            errback=lambda _r, e: self._send_failed(epoch, e, done, sent=True,
                                                    message=message),
            retry=_SEND_RETRY)

    def _on_sent(self, epoch: int, response: Response, message: OutgoingMessage,
                 done: Done) -> None:
        if response.status in _REFUSED_STATUSES:
            # Refused before processing: certainly not delivered, so it goes again.
            message.refused += 1
            delay = min(_REFUSED_BACKOFF * 2 ** (message.refused - 1), _REFUSED_BACKOFF_MAX)
            log.info("Message %d: HTTP %d, not processed; sending it again in %.0f s",
                     message.id, response.status, delay)
            done(Outcome.NOT_SENT, retry_in=delay)
            return
        if response.status != 200:
            self._fate_unknown(message, done, "HTTP %d %s" % (response.status,
                                                              response.reason))
            return
        try:
            parse_send(response.read())
        except RetcodeError as exc:
            if exc.retcode in _SESSION_GONE and not message.retried:
                # Refused, so not delivered: renew the session and send it again once.
                message.retried = True
                self._renew(epoch, "refused", "send answered %d" % exc.retcode)
                done(Outcome.NOT_SENT)
                return
            done(Outcome.FAILED, retcode=int(exc.retcode), error=exc.errmsg)
            return
        except ProtocolError as exc:
            self._fate_unknown(message, done, str(exc))
            return
        done(Outcome.SENT)

    def _send_failed(self, epoch: int, error: HTTPStreamError, done: Done, sent: bool,
                     message: Optional[OutgoingMessage] = None) -> None:
        """A request that failed for good: if the server certainly did not process it
        (``certainly_unprocessed``: it never left whole, or never connected), the part
        goes out again after recovery; otherwise its fate is unknown."""
        if error.certainly_unprocessed or not sent:
            self._renew(epoch, "unreachable",
                        "send could not connect: %s" % describe(error))
            done(Outcome.NOT_SENT)
        else:
            self._fate_unknown(message, done, describe(error))

    def _fate_unknown(self, message: OutgoingMessage, done: Done, error: str) -> None:
        """The part may or may not have been delivered: AMBIGUOUS (at most once), or,
        with ``resend_ambiguous``, sent again with the same msg_id (at least once)."""
        if self._resend_ambiguous() and message.resent < _AMBIGUOUS_RESENDS:
            message.resent += 1
            log.warning("Message %d: its fate is unknown (%s); sending it again "
                        "(resend_ambiguous: it may arrive twice)", message.id, error)
            done(Outcome.NOT_SENT, retry_in=self.interval)
            return
        done(Outcome.AMBIGUOUS, error="its fate is unknown, so it was not sent again "
                                      "(it may have arrived): " + error)


def _check_pictures(chat: ChatKind, content: Outgoing) -> None:
    """Refuse, before anything is queued, pictures the chat cannot carry: too large
    (``PictureError``), any in a temporary session, a group piece to a friend or a
    friend's piece to a group (``ValueError``)."""
    if isinstance(content, str):
        return
    for piece in content:
        if isinstance(piece, UploadPicture):
            piece.check_for(chat)
        elif isinstance(piece, OffPic) and chat is not ChatKind.BUDDY:
            raise ValueError("an OffPic is a friend's picture; a %s message takes an "
                             "UploadPicture or a CFace" % chat)
        elif isinstance(piece, CFace) and chat not in (ChatKind.GROUP, ChatKind.DISCUSSION):
            raise ValueError("a CFace is a group picture; a %s message cannot take it"
                             % chat)


def describe(error: Exception) -> str:
    """``"ConnectError: ..."``: an error's class and message, for logs and results."""
    return "%s: %s" % (error.__class__.__name__, error)
