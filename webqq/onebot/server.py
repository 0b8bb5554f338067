"""The OneBot v11 API of one daemon: its server, and the events it publishes.

server: ``OneBotApi`` owns the parts (``webqq.onebot.actions``, ``.handlers``,
``.delivery``, ``.listener``, ``.outbound``): ``await api.start()`` listens (with the
timeouts and the connection cap of ``webqq.onebot.listener``), ``await api.close()`` stops
(a queued message stays queued in the store; the queue itself, ``Outbound``, belongs to
the daemon, which has one with or without the API). It turns the client's messages and
its friend, group and file events into OneBot events (``mapping``, ``notices``) and
publishes each to the webhook and every WebSocket that wants events; it remembers what
answering them needs: the received pictures by name, the files offered by id, the
group requests by flag (``webqq.onebot.media``). It goes through the client, never
around it: sends are ``client.send_*`` (through the outbound queue), lists are
``client.contacts``, events are the client's.

What it must never do: log the token, the secret or a message body at info level; block
the IOLoop (SQLite calls are short and synchronous, by design); start a thread.
"""
import logging
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from tornado import netutil, web
from tornado.ioloop import PeriodicCallback

from webqq.client.client import State
from webqq.http.stream import HTTPStream, RetryPolicy
from webqq.onebot import captcha
from webqq.onebot import mapping as onebot
from webqq.onebot import notices
from webqq.onebot.actions import MESSAGE_FORMAT, Actions, to_json
from webqq.onebot.delivery import EventPoster, ReverseConnection
from webqq.onebot.handlers import (MAX_BODY, ActionHandler, EventSocket, MediaHandler,
                                   log_request)
from webqq.onebot.health import AccountNotice, Health, HealthHandler, notice_event, \
    receipt_event
from webqq.onebot.listener import ApiServer
from webqq.onebot.media import PICTURE_MAX, REMEMBERED, FileOffers, ReceivedPictures
from webqq.onebot.metrics import Metrics, MetricsHandler
from webqq.onebot.outbound import Outbound
from webqq.onebot.store import StoreUnavailable
from webqq.qq import GroupSystemEvent

__all__ = ["OneBotApi", "ApiError"]

log = logging.getLogger("webqq.api")

#: Seconds between two heartbeat meta events (a future ``[api]`` key).
HEARTBEAT_INTERVAL = 15.0
#: Seconds during which a second ``friend_add`` for the same friend is not posted: a
#: request of ours accepted comes as ``verify_pass`` and then ``buddylist_change``.
FRIEND_ADD_WINDOW = 60.0
#: Seconds a picture given by URL may take to fetch (connect included).
FETCH_TIMEOUT = 30.0

class ApiError(Exception):
    """Raised when the API cannot start: its address cannot be bound."""


class OneBotApi:
    """The OneBot v11 API of one daemon.

    Args:
        client: the ``WebQQClient``.
        config: ``Config.api`` (``ApiConfig``).
        self_id: ``[account] qq``.
        outbound: the daemon's ``Outbound`` (started; its store is the API's memory).
        token: the access token (configured or generated: ``api_token``).
        heartbeat_interval: seconds between heartbeat meta events (0: none).
        health: the daemon's ``Health`` (its accounts' notices become OneBot notices;
            /healthz, /readyz, /captcha read it); None: one of the API's own, watching
            ``client`` as ``self_id``.
        metrics: the daemon's ``Metrics`` (/metrics); None: one of the API's own.
    """

    def __init__(self, client: Any, config: Any, *, self_id: int, outbound: Outbound,
                 token: str, heartbeat_interval: float = HEARTBEAT_INTERVAL,
                 health: Optional[Health] = None, metrics: Optional[Metrics] = None
                 ) -> None:
        if not token or not token.strip():
            raise ValueError("the API needs a token (api_token(create=True) makes one)")
        self.client = client
        self.config = config
        self.self_id = self_id
        self.outbound = outbound
        self.store = outbound.store
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.started_at = time.time()
        # The peers events go to: EventSocket and ReverseConnection (``wants_events``,
        # ``send_text``).
        self.sockets: Set[Any] = set()
        self.actions = Actions(self)
        self.poster = EventPoster(self, config.post_url, config.secret) \
            if config.post_url else None
        self.reverse = ReverseConnection(self, config.ws_reverse_url) \
            if config.ws_reverse_url else None
        self.server: Optional[ApiServer] = None
        self.port: Optional[int] = None
        self.counts = {"received": 0, "events": 0}
        self._not_stored: Optional[str] = None   # why the last message was not stored
        #: Received pictures by ``picture_name``; files of ``offline_file`` notices by
        #: id; requests to join a group by ``flag`` (the most recent ``REMEMBERED``).
        self.pictures = ReceivedPictures(self.store)
        self.files = FileOffers()
        self.group_requests: "OrderedDict[str, GroupSystemEvent]" = OrderedDict()
        #: Fetches pictures given by URL (``[api] fetch_urls``), capped at the 2013 limit.
        self.fetcher = HTTPStream(retry=RetryPolicy(attempts=1), max_body_size=PICTURE_MAX,
                                  connect_timeout=FETCH_TIMEOUT,
                                  request_timeout=FETCH_TIMEOUT) \
            if config.fetch_urls else None
        self._friends_added: Dict[int, float] = {}
        self._timers: List[PeriodicCallback] = []
        self._listeners = (("message", self._on_message), ("notice", self._on_notice),
                           ("friend_request", self._on_friend_request),
                           ("friend_change", self._on_friend_change),
                           ("group_member", self._on_group_member),
                           ("group_request", self._on_group_request),
                           ("group_request_answer", self._on_group_answer),
                           ("file", self._on_file))
        self._own_health = health is None
        if health is None:
            health = Health()
            health.watch(self_id, client, outbound)
        self.health = health
        self.metrics = metrics or Metrics(health)

    @property
    def url(self) -> Optional[str]:
        """``http://HOST:PORT`` of the listening server (loopback for a wildcard)."""
        if self.port is None:
            return None
        host = self.config.listen[0]
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, self.port)

    def media_url(self, kind: str, name: str) -> Optional[str]:
        """Where the API serves a received picture (``kind`` images) or a file (files),
        or None when it does not listen."""
        return "%s/%s/%s" % (self.url, kind, name) if self.url else None

    def application(self) -> web.Application:
        sockets = [(r"/%s/?" % path, EventSocket, {"api": self, "role": role})
                   for path, role in (("ws", "universal"), ("api", "api"),
                                      ("event", "event"))]
        media = [(r"/(images|files)/([A-Za-z0-9_.]+)", MediaHandler, {"api": self})]
        guarded = {"health": self.health, "token": self.token}
        watching = [(r"/healthz/?", HealthHandler, dict(guarded, readiness=False)),
                    (r"/readyz(?:/([0-9]+))?/?", HealthHandler, dict(guarded, readiness=True)),
                    (r"/metrics/?", MetricsHandler, {
                        "metrics": self.metrics, "token": self.token,
                        "public": self.config.metrics_public})]
        watching += captcha.routes(self.health, self.token)
        return web.Application(sockets + media + watching + [
                                   (r"/([A-Za-z0-9_.]+)/?", ActionHandler, {"api": self})],
                               log_function=self._log_request,
                               websocket_max_message_size=MAX_BODY)

    async def start(self) -> None:
        """Listen (when ``listen`` is set), start the deliveries, announce ``enable``.

        Raises:
            ApiError: the address cannot be bound.
        """
        for kind, listener in self._listeners:
            self.client.on(kind, listener)
        self.health.add_listener(self._on_account)
        self.outbound.finished.append(self._on_finished)
        if self.config.listen is not None:
            host, port = self.config.listen
            try:
                sockets = netutil.bind_sockets(port, host)
            except OSError as error:
                raise ApiError("cannot listen on %s:%d: %s" % (host, port,
                                                                error.strerror or error))
            self.server = ApiServer(self.application(), max_body_size=MAX_BODY,
                                    xheaders=False)
            self.server.listen_on(sockets)
            self.port = sockets[0].getsockname()[1]
            log.info("OneBot v11 API listening on %s (HTTP /:action, WebSocket /ws /api "
                     "/event)", self.url)
        if self.poster is not None:
            self.poster.start()
            self.poster.put(*self._encode(self.lifecycle("enable")))
        if self.reverse is not None:
            self.reverse.start()
        if self.heartbeat_interval:
            self._every(self.heartbeat_interval, self._heartbeat)

    def _every(self, seconds: float, callback: Callable[[], Any]) -> None:
        timer = PeriodicCallback(callback, seconds * 1000)
        timer.start()
        self._timers.append(timer)

    async def close(self) -> None:
        """Stop everything; queued messages and undelivered events stay in the store
        (which the daemon closes, after the queue)."""
        for timer in self._timers:
            timer.stop()
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)
        self.health.remove_listener(self._on_account)
        if self._on_finished in self.outbound.finished:
            self.outbound.finished.remove(self._on_finished)
        if self._own_health:
            self.health.close()
        if self.server is not None:
            self.server.stop()
        for peer in list(self.sockets):
            if isinstance(peer, EventSocket):
                peer.close()
        if self.reverse is not None:
            await self.reverse.close()
        await self.actions.close()
        if self.fetcher is not None:
            self.fetcher.close()
        if self.poster is not None:
            await self.poster.close()
        if self.server is not None:
            await self.server.close_all_connections()

    def restart_client(self) -> None:
        """``set_restart``: stop the client (session saved), start it again."""
        log.info("set_restart: restarting the WebQQ client")
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

    def _heartbeat(self) -> None:
        self.publish(onebot.meta_event(self_id=self.self_id, time=int(time.time()),
                                       kind="heartbeat", status=self.status(),
                                       interval_ms=int(self.heartbeat_interval * 1000)))

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
        segments = onebot.from_pieces(event.pieces, base_url=self.url)
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

    def _log_request(self, handler: web.RequestHandler) -> None:
        log_request(handler)
        self.metrics.observe_api(handler, self.actions.known)

    def captcha_urls(self, account: int) -> Dict[str, str]:
        """The captcha image and page of ``account`` on this API (none without a
        listening server); the access token is needed for both."""
        if self.url is None:
            return {}
        return {"image": "%s/captcha/image?account=%d" % (self.url, account),
                "page": "%s/captcha?account=%d" % (self.url, account)}

    def _on_account(self, notice: AccountNotice) -> None:
        """An account went offline, came back, needs a captcha, was kicked."""
        self.publish(notice_event(notice, self_id=notice.account,
                                  urls=self.captcha_urls(notice.account)))

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
