"""The OneBot side of one account: its actions, its events and where they go.

bot: ``AccountApi`` (one account is one bot to OneBot: what ``self_id`` names) turns one
client's messages, its friend, group and file events, its health notices (given by the
server) and the receipts of the messages sent for the API into OneBot events (``mapping``,
``notices``) carrying the account's ``self_id`` and publishes each to the account's webhook
(``post_url``, with ``X-Self-ID``), its reverse WebSocket (one connection per account,
announcing ``X-Self-ID``, as go-cqhttp's multi-instance deployments do) and the forward
WebSockets opened for it; its ``actions`` answer the calls the server routes to it
(``webqq.onebot.server.OneBotApi.account_for``). It remembers what answering its events
needs: the received pictures by name, the files offered by id, the group requests by flag
(``webqq.onebot.media``). It goes through the client, never around it: sends are the
outbound queue's, lists are ``client.contacts``.

What it must never do: log the token, the secret or a message body at info level; block
the IOLoop; start a thread or a timer of its own (the server's one heartbeat timer
serves every account).
"""
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Optional, Set, Tuple

from webqq.client.client import State
from webqq.onebot import mapping as onebot
from webqq.onebot import notices
from webqq.onebot.actions import MESSAGE_FORMAT, Actions, to_json
from webqq.onebot.delivery import EventPoster, ReverseConnection
from webqq.onebot.health import receipt_event
from webqq.onebot.media import REMEMBERED, FileOffers, ReceivedPictures
from webqq.onebot.outbound import Outbound
from webqq.onebot.store import StoreUnavailable
from webqq.qq import GroupSystemEvent

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.onebot.server import OneBotApi

__all__ = ["AccountApi"]

log = logging.getLogger("webqq.api")

#: Seconds during which a second ``friend_add`` for the same friend is not posted: a
#: request of ours accepted comes as ``verify_pass`` and then ``buddylist_change``.
FRIEND_ADD_WINDOW = 60.0


class AccountApi:
    """One account as the OneBot API serves it.

    Args:
        server: the ``OneBotApi`` serving it: its ``[api]`` settings (where events go),
            its token (which the reverse WebSocket presents), its URL and its fetcher.
        client: the account's ``WebQQClient``.
        self_id: the account's QQ number.
        outbound: its ``Outbound`` (started; its store is the account's memory).
    """

    def __init__(self, server: "OneBotApi", client: Any, *, self_id: int,
                 outbound: Outbound) -> None:
        self.server = server
        self.client = client
        self.config = config = server.config
        self.self_id = self_id
        self.outbound = outbound
        self.store = outbound.store
        self.token = server.token
        self.started_at = time.time()
        # The peers its events go to: EventSocket and ReverseConnection (``wants_events``,
        # ``send_text``).
        self.sockets: Set[Any] = set()
        self.actions = Actions(self)
        self.poster = EventPoster(self, config.post_url, config.secret) \
            if config.post_url else None
        self.reverse = ReverseConnection(self, config.ws_reverse_url) \
            if config.ws_reverse_url else None
        self.counts = {"received": 0, "events": 0}
        self._not_stored: Optional[str] = None   # why the last message was not stored
        #: Received pictures by ``picture_name``; files of ``offline_file`` notices by
        #: id; requests to join a group by ``flag`` (the most recent ``REMEMBERED``).
        self.pictures = ReceivedPictures(self.store)
        self.files = FileOffers()
        self.group_requests: "OrderedDict[str, GroupSystemEvent]" = OrderedDict()
        self._friends_added: Dict[int, float] = {}
        self._listeners = (("message", self._on_message), ("notice", self._on_notice),
                           ("friend_request", self._on_friend_request),
                           ("friend_change", self._on_friend_change),
                           ("group_member", self._on_group_member),
                           ("group_request", self._on_group_request),
                           ("group_request_answer", self._on_group_answer),
                           ("file", self._on_file))

    @property
    def fetcher(self) -> Any:
        """The server's ``HTTPStream`` for pictures given by URL (``[api] fetch_urls``),
        or None."""
        return self.server.fetcher

    def media_suffix(self) -> str:
        """What a media URL of this account ends with: its ``self_id`` when the server
        serves several accounts (``account_for`` needs it then), else nothing."""
        return "?self_id=%d" % self.self_id if len(self.server.accounts) > 1 else ""

    def media_url(self, kind: str, name: str) -> Optional[str]:
        """Where the API serves a received picture (``kind`` images) or a file (files),
        or None when it does not listen."""
        url = self.server.url
        return "%s/%s/%s%s" % (url, kind, name, self.media_suffix()) if url else None

    def start(self) -> None:
        """Listen to the client, start the deliveries, announce ``enable``."""
        for kind, listener in self._listeners:
            self.client.on(kind, listener)
        self.outbound.finished.append(self._on_finished)
        if self.poster is not None:
            self.poster.start()
            self.poster.put(*self._encode(self.lifecycle("enable")))
        if self.reverse is not None:
            self.reverse.start()

    async def close(self) -> None:
        """Stop its deliveries and close its WebSockets; undelivered events stay in the
        store."""
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)
        if self._on_finished in self.outbound.finished:
            self.outbound.finished.remove(self._on_finished)
        for peer in list(self.sockets):
            if peer is not self.reverse:
                peer.close()
        if self.reverse is not None:
            await self.reverse.close()
        await self.actions.close()
        if self.poster is not None:
            await self.poster.close()

    def restart_client(self) -> None:
        """``set_restart``: stop the client (session saved), start it again."""
        log.info("set_restart: restarting the WebQQ client of %d", self.self_id)
        self.outbound.release()
        self.client.stop("set_restart")
        self.outbound.resume()
        self.client.start()

    # -- status ------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """``get_status``'s data (and the heartbeat's ``status``). webqq adds
        ``sending_paused``: why nothing is sent (the store cannot be written), or null;
        ``stat`` is empty while the store cannot be read."""
        online = self.client.state is State.ONLINE
        paused = self.outbound.paused
        try:
            counts = self.store.counts()
            stat = {"message_received": counts.get("received", 0),
                    "message_sent": counts.get("sent", 0),
                    "message_queued": self.outbound.waiting(),
                    "message_failed": counts.get("failed", 0),
                    "events_undelivered": self.store.undelivered()}
        except StoreUnavailable as error:
            paused = paused or error.reason
            stat = {}
        return {"online": online, "good": online and paused is None,
                "app_initialized": True, "app_enabled": True, "app_good": paused is None,
                "sending_paused": paused, "stat": stat}

    # -- events ------------------------------------------------------------------------

    def lifecycle(self, sub_type: str) -> Dict[str, Any]:
        return onebot.meta_event(self_id=self.self_id, time=int(time.time()),
                                 kind="lifecycle", sub_type=sub_type)

    def heartbeat(self, interval: float) -> None:
        """Publish a heartbeat meta event (the server's timer calls this every
        ``interval`` seconds)."""
        self.publish(onebot.meta_event(self_id=self.self_id, time=int(time.time()),
                                       kind="heartbeat", status=self.status(),
                                       interval_ms=int(interval * 1000)))

    @staticmethod
    def _encode(event: Dict[str, Any]) -> Tuple[bytes, Dict[str, Any]]:
        return to_json(event).encode("utf-8"), event

    def publish(self, event: Dict[str, Any]) -> None:
        """Deliver one event to the webhook and every WebSocket that wants events: each
        on its own, so that one that fails does not keep the event from the others."""
        body, _ = self._encode(event)
        self.counts["events"] += 1
        if self.poster is not None:
            try:
                self.poster.put(body, event)
            except Exception:
                log.exception("an event could not be queued for %s", self.poster.shown)
        text = body.decode("utf-8")
        for peer in list(self.sockets):
            if peer.wants_events:
                try:
                    peer.send_text(text)
                except Exception:
                    log.exception("an event could not be sent on a WebSocket")

    def _on_message(self, event: Any) -> None:
        contacts = self.client.contacts
        sender = event.sender
        user_id = onebot.user_id_of(sender.uin, sender.qq, contacts)
        segments = onebot.from_pieces(event.pieces, base_url=self.server.url,
                                     suffix=self.media_suffix())
        for picture in event.pictures:
            try:
                self.pictures.remember(picture, onebot.picture_name(picture))
            except Exception as error:          # as for the message: it still goes out
                log.warning("a received picture is not remembered (%s: %s)",
                            type(error).__name__, error)
        group_id = discuss_id = None
        card, role = "", "member"
        if event.chat == "group":
            group_id = onebot.group_id_of(event.group, getattr(event.message, "group_number",
                                                               None) or event.message.code)
            member = event.group.members.get(sender.uin) if event.group else None
            if member is not None:
                card, role = member.card or "", member.role
        elif event.chat == "discussion":
            discuss_id = self.outbound.discussions.id_of(event.message.did, contacts)
        target = {"buddy": user_id, "session": user_id, "group": group_id,
                  "discussion": discuss_id}[event.chat]
        stamp = getattr(event.message, "time", None) or int(time.time())
        nickname = (onebot.nick_of(sender.uin, contacts, event.group or event.discussion)
                    or sender.name or str(user_id))
        stored_sender = {"user_id": user_id, "nickname": nickname}
        if event.chat == "group":
            stored_sender.update(card=card, role=role)
        message_id = self._store_received(
            chat=event.chat, target=target, user_id=user_id, text=event.text,
            data={"segments": segments, "sender": stored_sender}, time=stamp)
        self.counts["received"] += 1
        log.debug("message %d received (%s from %d)", message_id, event.chat, user_id)
        self.publish(onebot.message_event(
            self_id=self.self_id, time=int(stamp), message_id=message_id, chat=event.chat,
            user_id=user_id, nickname=nickname, card=card, segments=segments,
            group_id=group_id, discuss_id=discuss_id, message_format=MESSAGE_FORMAT,
            role=role))

    def _store_received(self, **row: Any) -> int:
        """The message_id of a received message, or 0 when it could not be stored:
        whatever goes wrong in the store (locked, full, a value SQLite refuses), the
        bot still hears the message; only ``get_msg`` will not know it."""
        try:
            message_id = self.store.add_received(**row)
        except StoreUnavailable as error:
            reason = error.reason
        except Exception as error:              # a value the store cannot hold
            reason = "%s: %s" % (type(error).__name__, error)
        else:
            self._not_stored = None
            return message_id
        # Once per cause: a store locked for a minute is not a warning per message.
        log.log(logging.DEBUG if reason == self._not_stored else logging.WARNING,
                "a received message is not stored (%s); delivered with message_id 0",
                reason)
        self._not_stored = reason
        return 0

    def _on_finished(self, message_id: int, status: str, why: Optional[str]) -> None:
        """A message became final: the receipt of one the API was asked to send."""
        try:
            row = self.store.get(message_id)
        except StoreUnavailable as error:
            log.warning("no receipt for message %d (%s): %s", message_id, status,
                        error.reason)
            return
        if row is None or row.origin != "api":
            return
        self.publish(receipt_event(row, status=status, reason=why, self_id=self.self_id,
                                   time=time.time()))

    def _now(self) -> Dict[str, int]:
        return {"self_id": self.self_id, "time": int(time.time())}

    def _on_notice(self, event: Any) -> None:
        """A poke; the client's typed events below carry the other notices."""
        mapped = notices.poke(event, contacts=self.client.contacts, **self._now())
        if mapped is not None:
            self.publish(mapped)

    def _on_friend_request(self, event: Any) -> None:
        """A request the ``[bot] accept_friends`` policy is answering is not posted:
        the bot hears of the new friend by ``friend_add``."""
        if not event.accepting:
            self.publish(notices.friend_request(event, **self._now()))

    def _on_friend_change(self, event: Any) -> None:
        mapped = notices.friend_added(event, contacts=self.client.contacts, **self._now())
        if mapped is None:
            return
        now = time.monotonic()
        last = self._friends_added.get(mapped["user_id"])
        self._friends_added = {user: at for user, at in self._friends_added.items()
                               if now - at < FRIEND_ADD_WINDOW}
        self._friends_added[mapped["user_id"]] = now
        if last is None or now - last >= FRIEND_ADD_WINDOW:
            self.publish(mapped)

    def _on_group_member(self, event: Any) -> None:
        self.publish(notices.group_member(event, contacts=self.client.contacts,
                                          **self._now()))

    def _on_group_request(self, event: Any) -> None:
        mapped = notices.group_request(event, contacts=self.client.contacts, **self._now())
        self.group_requests[mapped["flag"]] = event.event
        while len(self.group_requests) > REMEMBERED:
            self.group_requests.popitem(last=False)
        self.publish(mapped)

    def _on_group_answer(self, event: Any) -> None:
        self.publish(notices.group_request_answer(event, contacts=self.client.contacts,
                                                  **self._now()))

    def _on_file(self, event: Any) -> None:
        if event.change == "cancel":
            self.files.cancelled(event)
            return
        if event.change not in ("offer", "offline"):
            return
        file_id = self.files.add(event)
        self.publish(notices.offline_file(event, contacts=self.client.contacts,
                                          file_id=file_id,
                                          url=self.media_url("files", file_id),
                                          **self._now()))
