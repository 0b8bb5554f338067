"""The control API: OneBot v11 over HTTP and WebSocket, on the daemon's IOLoop.

api: the Tornado web app and the event deliveries of one daemon. It goes through the
client, never around it: sends are ``client.send_*``, lists are ``client.contacts``,
events are the client's. The OneBot shapes come from ``webqq.onebot``, the memory from
``webqq.store``. In order:

* ``OneBotApi``: owns everything below; ``await api.start()`` listens, ``await
  api.close()`` stops (a queued message stays queued in the store).
* ``Actions``: one coroutine per OneBot action (``send_msg``, ``get_friend_list``, ...),
  shared by HTTP ``/:action``, the forward WebSockets and the reverse one; the ``_async``
  and ``_rate_limited`` suffixes; the envelope ``{"status", "retcode", "data"}``.
* ``Outbound``: the store's queue of accepted messages, handed to the client one at a
  time while it is online (the exactly-once rules are in ``webqq.store``).
* ``EventPoster``: HTTP POST of each event to ``post_url`` (``X-Self-ID``, HMAC-SHA1
  ``X-Signature``), retried with backoff from a bounded queue; quick operations in the
  answer are honoured; what is still undelivered is kept in the store.
* ``ReverseConnection``: a universal reverse WebSocket to ``ws_reverse_url``, reconnected
  with backoff.
* Handlers: ``ActionHandler`` (``/:action``), ``EventSocket`` (``/ws``, ``/api``,
  ``/event``). Every call needs the access token (``Authorization: Bearer`` or
  ``?access_token=``), compared with ``hmac.compare_digest``: none is 401, a wrong one
  403, an unknown action 404, a bad body 400 (too large, or not a JSON object), a body
  neither JSON nor a form 406.

What it must never do: log the token, the secret or a message body at info level; block
the IOLoop (SQLite calls are short and synchronous, by design); start a thread.
"""
import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Set, Tuple, Union
from urllib.request import Request

from tornado import netutil, web, websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback

import webqq
from webqq.client.client import State
from webqq.client.send_queue import SendStatus
from webqq.http.redact import redact_url
from webqq.http.retry import backoff_delay
from webqq.http.stream import HTTPStream, HTTPStreamError, RetryPolicy
from webqq.onebot import mapping as onebot
from webqq.onebot.mapping import BadParams, OneBotError, Retcode
from webqq.onebot.store import Store
from webqq.qq import Face, content_text
from webqq.tasks import TaskSet

__all__ = ["OneBotApi", "ApiError", "Actions", "Outbound", "EventPoster",
           "ReverseConnection", "check_listen"]

log = logging.getLogger("webqq.api")

#: Bytes a request body may have: a message is at most a few KB; 1 MiB leaves room for
#: long segment arrays and stops a runaway client.
MAX_BODY = 1024 * 1024
#: Seconds a send action waits for the client's answer before returning the message_id
#: of a still-queued message (it stays queued in the store and goes later). While the
#: client is not online a send returns at once.
SEND_WAIT = 5.0
#: Seconds between two actions called with the ``_rate_limited`` suffix.
RATE_LIMIT_INTERVAL = 0.5
#: Seconds between two heartbeat meta events (a future ``[api]`` key).
HEARTBEAT_INTERVAL = 15.0
#: Seconds a POST to ``post_url`` may take (a future ``[api]`` key).
POST_TIMEOUT = 10.0
#: Tries of one POST before it is kept in the store; the delay before try n+1 is
#: ``min(POST_BACKOFF_MAX, POST_BACKOFF * 2**(n-1))``: 1, 2, 4, 8 s.
POST_ATTEMPTS = 5
POST_BACKOFF = 1.0
POST_BACKOFF_MAX = 60.0
#: Events waiting for ``post_url``; beyond it the oldest goes to the store at once.
POST_QUEUE = 1000
#: Reverse WebSocket reconnect delays: 1, 2, 4 ... capped, reset once connected.
REVERSE_BACKOFF = 1.0
REVERSE_BACKOFF_MAX = 60.0
#: Seconds between two prunes of the store (retention).
PRUNE_INTERVAL = 3600.0
#: ``message`` of events: "string" (CQ codes, OneBot's default) or "array".
MESSAGE_FORMAT = "string"

_LOOPBACK = {"localhost", "ip6-localhost"}


class ApiError(Exception):
    """Raised when the API cannot start (a non-loopback address without a token, a port
    in use)."""


# --- the listen address ----------------------------------------------------

def is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(config: Any) -> None:
    """Refuse a non-loopback ``[api] listen`` without a configured token: a generated
    one would protect a public port with a secret only this machine knows how to find.

    Raises:
        ApiError: naming the address.
    """
    listen = config.api.listen
    if listen is not None and not is_loopback(listen[0]) and not config.api.token:
        raise ApiError("listen = %s:%d is not a loopback address: set [api] token"
                       % listen)


def _envelope(status: str, retcode: int, data: Any = None, message: str = "") -> Dict:
    envelope = {"status": status, "retcode": retcode, "data": data}
    if message:
        envelope.update(msg=message, wording=message)
    return envelope


def _check_token(expected: str, header: Optional[str], query: Optional[str]) -> int:
    """0 when the request carries ``expected``; else the HTTP status: 401 none, 403
    wrong. The comparison takes the same time whatever the value."""
    given = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "token"):
            given = value.strip()
    if given is None and query is not None:
        given = query
    if not given:
        return 401
    return 0 if hmac.compare_digest(given.encode(), expected.encode()) else 403


# --- the outbound queue ----------------------------------------------------------------

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
        self._handing = (row.id, self.client.send_queue.next_id)
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


# --- actions ---------------------------------------------------------------------------

class UnknownAction(OneBotError):
    """Raised for an action name we do not know (HTTP 404, retcode 1404)."""
    retcode = Retcode.NOT_FOUND


class Actions:
    """The OneBot actions: ``await actions.call(name, params)`` returns the envelope.

    Each ``do_NAME(params)`` returns the ``data`` or raises ``OneBotError``.
    """

    def __init__(self, api: "OneBotApi") -> None:
        self.api = api
        self.client = api.client
        self._limited: "asyncio.Queue[Tuple[str, Callable, Dict]]" = asyncio.Queue()
        self._limiter: Optional[asyncio.Future] = None
        self._tasks = TaskSet()

    def known(self, name: str) -> bool:
        """Whether ``name`` (with or without a suffix) is an action."""
        return self._lookup(name)[2] is not None

    def _lookup(self, name: str) -> Tuple[str, str, Optional[Callable[[Dict], Awaitable]]]:
        """``(base name, suffix, do_ method or None)``. OneBot's one hidden action is
        ``.handle_quick_operation``; a leading dot names nothing else."""
        base, suffix = name, ""
        for candidate in ("_async", "_rate_limited"):
            if name.endswith(candidate):
                base, suffix = name[:-len(candidate)], candidate
                break
        method = base[1:] if base == ".handle_quick_operation" else base
        if not method.replace("_", "").isalnum() or method.startswith("_"):
            return base, suffix, None
        return base, suffix, getattr(self, "do_" + method, None)

    async def call(self, name: str, params: Dict[str, Any]) -> Dict[str, Any]:
        """Run action ``name`` (with its suffix) and return the OneBot envelope."""
        base, suffix, handler = self._lookup(name)
        if handler is None:
            return _envelope("failed", Retcode.NOT_FOUND, None, "unknown action %r" % name)
        if suffix == "_async":
            self._tasks.spawn(self._run(base, handler, params))
            return _envelope("async", Retcode.ASYNC)
        if suffix == "_rate_limited":
            self._limited.put_nowait((base, handler, params))
            if self._limiter is None:
                self._limiter = self._tasks.spawn(self._drain_limited())
            return _envelope("async", Retcode.ASYNC)
        return await self._run(base, handler, params)

    async def _run(self, name: str, handler: Callable[[Dict], Awaitable[Any]],
                   params: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return _envelope("ok", Retcode.OK, await handler(params))
        except OneBotError as error:
            log.debug("action %s failed: %s", name, error)
            return _envelope("failed", error.retcode, getattr(error, "data", None),
                             str(error))
        except Exception as error:
            log.exception("action %s crashed", name)
            return _envelope("failed", Retcode.FAILED, None, "internal error: %s"
                             % type(error).__name__)

    async def _drain_limited(self) -> None:
        while True:
            name, handler, params = await self._limited.get()
            await self._run(name, handler, params)
            await asyncio.sleep(RATE_LIMIT_INTERVAL)

    async def close(self) -> None:
        await self._tasks.cancel_all()

    # -- parameters --------------------------------------------------------------------

    @staticmethod
    def _int(params: Dict[str, Any], key: str) -> int:
        if key not in params:
            raise BadParams("%s is required" % key)
        value = onebot.int64(params[key])
        if value is None:
            raise BadParams("%s must be a 64-bit integer" % key)
        return value

    @staticmethod
    def _flag(params: Dict[str, Any], key: str, default: bool = False) -> bool:
        value = params.get(key, default)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def _contacts(self) -> Any:
        return self.client.contacts

    def _group(self, params: Dict[str, Any]) -> Any:
        group_id = self._int(params, "group_id")
        group = onebot.find_group(self._contacts(), group_id)
        if group is None:
            raise BadParams("unknown group %d" % group_id)
        return group

    # -- sending -----------------------------------------------------------------------

    async def do_send_private_msg(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return await self._send("private", params)

    async def do_send_group_msg(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return await self._send("group", params)

    async def do_send_discuss_msg(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return await self._send("discuss", params)

    async def do_send_msg(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return await self._send(params.get("message_type") or None, params)

    async def _send(self, kind: Optional[str], params: Dict[str, Any],
                    wait: float = SEND_WAIT) -> Dict[str, Any]:
        chat, target = onebot.split_target(kind, params)
        if "message" not in params:
            raise BadParams("message is required")
        segments = onebot.parse_message(params["message"],
                                        auto_escape=self._flag(params, "auto_escape"))
        names: Dict[int, str] = {}
        if chat == "group":
            group = onebot.find_group(self._contacts(), target)
            names = onebot.member_names(group, self._contacts())
        pieces = onebot.to_pieces(segments, names=names)
        key = params.get("idempotency_key")
        message_id, _created = self.api.outbound.accept(
            chat, target, pieces, segments, str(key) if key is not None else None)
        if self.client.state is not State.ONLINE:
            wait = 0            # it waits in the store for the client to be online
        status = await self.api.outbound.outcome(message_id, wait) if wait else "queued"
        if status in ("failed", "ambiguous"):
            row = self.api.store.get(message_id)
            why = row.error or ("retcode %s" % row.retcode if row.retcode is not None
                                else "no reason given")
            error = OneBotError("message %d %s: %s" % (message_id, status, why))
            error.data = {"message_id": message_id}
            raise error
        return {"message_id": message_id}

    async def do_handle_quick_operation(self, params: Dict[str, Any]) -> None:
        """``.handle_quick_operation``: ``context`` (the event) and ``operation``."""
        context, operation = params.get("context"), params.get("operation")
        if not isinstance(context, dict) or not isinstance(operation, dict):
            raise BadParams("context and operation must be objects")
        self.quick_operation(context, operation)

    def quick_operation(self, event: Dict[str, Any], operation: Dict[str, Any]) -> None:
        """Honour a quick operation on a message event: ``reply`` (with ``auto_escape``
        and, in groups, ``at_sender``, default true). Others are ignored: WebQQ cannot
        delete, kick, ban or approve."""
        if event.get("post_type") != "message" or operation.get("reply") in (None, ""):
            return
        kind = event.get("message_type")
        segments = onebot.parse_message(operation["reply"],
                                        auto_escape=self._flag(operation, "auto_escape"))
        if kind in ("group", "discuss") and self._flag(operation, "at_sender", True):
            segments.insert(0, {"type": "at", "data": {"qq": str(event.get("user_id"))}})
        params = {"message": segments, "user_id": event.get("user_id"),
                  "group_id": event.get("group_id"), "discuss_id": event.get("discuss_id")}
        self._tasks.spawn(self._run("reply", lambda p: self._send(kind, p, wait=0), params))

    async def do_enter_verify_code(self, params: Dict[str, Any]) -> None:
        """webqq's own action (``webqq captcha CODE``): answer the captcha."""
        code = str(params.get("code") or "").strip()
        if not code:
            raise BadParams("code is required")
        if self.client.state is not State.WAITING_CAPTCHA:
            raise OneBotError("no verify code is awaited (the client is %s)"
                              % self.client.state.value)
        self.client.enter_verify_code(code)

    # -- information -------------------------------------------------------------------

    async def do_get_login_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return {"user_id": self.api.self_id, "nickname": self.client.nick or ""}

    async def do_get_friend_list(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        contacts = self._contacts()
        return [onebot.friend_info(friend, contacts) for friend in contacts.friends.values()]

    async def do_get_group_list(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [onebot.group_info(group) for group in self._contacts().groups.values()]

    async def do_get_discuss_list(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        """webqq's own action (``webqq groups``): the discussions, by did."""
        return [{"discuss_id": d.did, "discuss_name": d.name, "member_count": len(d.members)}
                for d in self._contacts().discussions.values()]

    async def do_get_group_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return onebot.group_info(self._group(params))

    async def do_get_group_member_list(self, params: Dict[str, Any]) -> List[Dict]:
        group = self._group(params)
        return [onebot.member_info(group, uin, self._contacts(), self.api.self_id)
                for uin in group.members]

    async def do_get_group_member_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        group = self._group(params)
        user_id = self._int(params, "user_id")
        uin = onebot.find_member(group, user_id, self._contacts())
        if uin is None:
            raise BadParams("%d is not a member of group %d" % (user_id,
                                                                onebot.group_id_of(group)))
        return onebot.member_info(group, uin, self._contacts(), self.api.self_id)

    async def do_get_stranger_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        user_id = self._int(params, "user_id")
        contacts = self._contacts()
        friend = onebot.find_friend(contacts, user_id)
        nickname = friend.nick if friend is not None else None
        if nickname is None:
            for chat in list(contacts.groups.values()) + list(contacts.discussions.values()):
                for uin, member in chat.members.items():
                    if onebot.user_id_of(uin, member.qq, contacts) == user_id:
                        nickname = member.nick
        if nickname is None:
            raise BadParams("unknown user %d" % user_id)
        return {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0}

    async def do_get_msg(self, params: Dict[str, Any]) -> Dict[str, Any]:
        message_id = self._int(params, "message_id")
        row = self.api.store.get(message_id)
        if row is None:
            raise BadParams("unknown message_id %d" % message_id)
        message_type = {"buddy": "private", "session": "private", "group": "group",
                        "discussion": "discuss"}[row.chat]
        sender = row.data.get("sender") or {"user_id": row.user_id, "nickname": ""}
        segments = row.data.get("segments") or [{"type": "text",
                                                 "data": {"text": row.text}}]
        data = {"time": int(row.time), "message_type": message_type,
                "message_id": row.id, "real_id": row.id, "sender": sender,
                "message": onebot.to_cq_string(segments) if MESSAGE_FORMAT == "string"
                else segments, "raw_message": onebot.to_cq_string(segments),
                "direction": row.direction, "send_status": row.status}
        if row.chat == "group":
            data["group_id"] = row.target
        elif row.chat == "discussion":
            data["discuss_id"] = row.target
        if row.direction == "out":
            data.update(retcode=row.retcode, error=row.error)
        return data

    async def do_get_status(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self.api.status()

    async def do_get_version_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return {"app_name": "webqq", "app_version": webqq.__version__,
                "protocol_version": "v11", "runtime": "tornado"}

    async def do_can_send_image(self, params: Dict[str, Any]) -> Dict[str, bool]:
        return {"yes": False}

    async def do_can_send_record(self, params: Dict[str, Any]) -> Dict[str, bool]:
        return {"yes": False}

    async def do_set_restart(self, params: Dict[str, Any]) -> None:
        """Restart the WebQQ session after ``delay`` ms: the client stops (saving its
        session) and starts again (resuming it). The queue waits in the store."""
        try:
            delay = max(0, int(params.get("delay") or 0)) / 1000.0
        except (TypeError, ValueError):
            raise BadParams("delay must be an integer (milliseconds)") from None
        self._tasks.spawn(self._restart_later(delay))

    async def _restart_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.api.restart_client()


# --- events: HTTP POST -------------------------------------------------------------------

def _is_heartbeat(event: Dict[str, Any]) -> bool:
    return event.get("meta_event_type") == "heartbeat"


class EventPoster:
    """POSTs each event to ``url`` in order, from a bounded queue, with retries.

    Args:
        api: the ``OneBotApi`` (its store, actions for quick operations, self_id).
        url: ``[api] post_url``.
        secret: ``[api] secret``; None: no ``X-Signature``.
    """

    def __init__(self, api: "OneBotApi", url: str, secret: Optional[str]) -> None:
        self.api = api
        self.url = url
        self.shown = redact_url(url)        # for the log: no credentials
        self.secret = secret
        self.stream = HTTPStream(retry=RetryPolicy(attempts=1), connect_timeout=POST_TIMEOUT,
                                 request_timeout=POST_TIMEOUT)
        self._queue: Deque[Tuple[bytes, Dict[str, Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self.delivered = 0

    def start(self) -> None:
        for body in self.api.store.take_events(self.url, POST_QUEUE):
            self._queue.append((body, json.loads(body)))
        if self._queue:
            log.info("%d undelivered event(s) from the store will be posted again",
                     len(self._queue))
        self._task = asyncio.ensure_future(self._run())
        self._wakeup.set()

    def put(self, body: bytes, event: Dict[str, Any]) -> None:
        if len(self._queue) >= POST_QUEUE:
            old, old_event = self._queue.popleft()
            if not _is_heartbeat(old_event):
                self.api.store.keep_event(self.url, old, "the post queue was full")
        self._queue.append((body, event))
        self._wakeup.set()

    def signature(self, body: bytes) -> str:
        """The ``X-Signature`` value: ``sha1=`` and the hex HMAC-SHA1 of the body."""
        return "sha1=" + hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                body, event = self._queue[0]
                await self._deliver(body, event)
                if self._queue and self._queue[0][0] is body:
                    self._queue.popleft()

    async def _deliver(self, body: bytes, event: Dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json", "X-Self-ID": str(self.api.self_id),
                   "User-Agent": "webqq/%s" % webqq.__version__}
        if self.secret:
            headers["X-Signature"] = self.signature(body)
        error = ""
        for attempt in range(1, POST_ATTEMPTS + 1):
            try:
                response = await self.stream.fetch(Request(self.url, data=body,
                                                           headers=headers, method="POST"))
            except HTTPStreamError as failure:
                error = "%s: %s" % (type(failure).__name__, failure)
            else:
                if 200 <= response.status < 300:
                    self.delivered += 1
                    self._quick(event, response)
                    return
                error = "HTTP %d" % response.status
            if attempt < POST_ATTEMPTS:
                delay = backoff_delay(attempt, POST_BACKOFF, POST_BACKOFF_MAX)
                log.warning("event POST to %s failed (%s); try %d in %g s", self.shown,
                            error, attempt + 1, delay)
                await asyncio.sleep(delay)
        if _is_heartbeat(event):
            return          # a stale heartbeat says nothing: not kept
        log.error("event POST to %s failed %d times (%s); kept in the store", self.shown,
                  POST_ATTEMPTS, error)
        self.api.store.keep_event(self.url, body, error)

    def _quick(self, event: Dict[str, Any], response: Any) -> None:
        data = response.read()
        if not data.strip():
            return
        try:
            operation = json.loads(data)
        except (ValueError, RecursionError):            # too deeply nested
            log.warning("the answer of %s to an event is not JSON; ignored", self.shown)
            return
        if isinstance(operation, dict):
            self.api.actions.quick_operation(event, operation)

    async def close(self) -> None:
        """Stop; events not yet delivered are kept in the store."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            body, event = self._queue.popleft()
            if not _is_heartbeat(event):
                self.api.store.keep_event(self.url, body, "daemon stopped")
        self.stream.close()


# --- events and actions over WebSocket ---------------------------------------------------

class _Peer:
    """What a WebSocket peer (forward or reverse) shares: actions in, events out."""

    api: "OneBotApi"
    wants_events = True
    takes_actions = True

    def send_text(self, text: str) -> None:            # pragma: no cover - abstract
        raise NotImplementedError

    async def handle_frame(self, frame: Any) -> None:
        """One text frame: ``{"action", "params", "echo"}``; the answer keeps ``echo``."""
        try:
            request = json.loads(frame)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):            # too deeply nested
            self.send_text(json.dumps(_envelope("failed", Retcode.BAD_REQUEST, None,
                                                "the frame is not a JSON object")))
            return
        params = request.get("params") or {}
        if not isinstance(params, dict):
            answer = _envelope("failed", Retcode.BAD_REQUEST, None, "params must be an object")
        else:
            answer = await self.api.actions.call(str(request.get("action", "")), params)
        if "echo" in request:
            answer["echo"] = request["echo"]
        self.send_text(json.dumps(answer, ensure_ascii=False))


class EventSocket(_Peer, websocket.WebSocketHandler):
    """Forward WebSocket: ``/ws`` (events and actions), ``/api`` (actions), ``/event``
    (events)."""

    def initialize(self, api: "OneBotApi", role: str) -> None:
        self.api = api
        self.role = role
        self.wants_events = role in ("universal", "event")
        self.takes_actions = role in ("universal", "api")

    async def get(self, *args: Any, **kwargs: Any) -> None:
        refused = _check_token(self.api.token, self.request.headers.get("Authorization"),
                               self.get_query_argument("access_token", None))
        if refused:
            self.set_status(refused)
            self.finish(_envelope("failed", 1000 + refused, None,
                                  "access token missing" if refused == 401 else
                                  "access token wrong"))
            return
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        log.info("forward WebSocket %s connected from %s", self.request.path,
                 self.request.remote_ip)
        self.api.sockets.add(self)
        if self.wants_events:
            self.send_text(json.dumps(self.api.lifecycle("connect")))

    async def on_message(self, message: Any) -> None:
        if not self.takes_actions:
            return
        await self.handle_frame(message)

    def on_close(self) -> None:
        self.api.sockets.discard(self)

    def send_text(self, text: str) -> None:
        try:
            self.write_message(text)
        except websocket.WebSocketClosedError:
            self.api.sockets.discard(self)

    def check_origin(self, origin: str) -> bool:
        return True     # bots are not browsers; the token is the guard


class ReverseConnection(_Peer):
    """A universal reverse WebSocket: connect to ``url``, announce ourselves
    (``X-Self-ID``, ``X-Client-Role: Universal``, the token as Bearer), send events,
    answer actions; reconnect after ``REVERSE_BACKOFF * 2**n`` seconds (capped)."""

    def __init__(self, api: "OneBotApi", url: str) -> None:
        self.api = api
        self.url = url
        self.shown = redact_url(url)        # for the log: no credentials
        self.connection: Optional[websocket.WebSocketClientConnection] = None
        self.connects = 0
        self._task: Optional[asyncio.Task] = None
        self._frames: Set[asyncio.Future] = set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        failures = 0
        while True:
            delay = backoff_delay(failures + 1, REVERSE_BACKOFF, REVERSE_BACKOFF_MAX)
            headers = {"X-Self-ID": str(self.api.self_id), "X-Client-Role": "Universal",
                       "Authorization": "Bearer %s" % self.api.token,
                       "User-Agent": "webqq/%s" % webqq.__version__}
            try:
                self.connection = await websocket.websocket_connect(
                    HTTPRequest(self.url, headers=headers, connect_timeout=POST_TIMEOUT,
                                request_timeout=POST_TIMEOUT))
            except (OSError, HTTPClientError, websocket.WebSocketError) as error:
                log.warning("reverse WebSocket %s: %s; again in %g s", self.shown, error,
                            delay)
            else:
                self.connects += 1
                failures = 0
                delay = REVERSE_BACKOFF
                log.info("reverse WebSocket connected to %s", self.shown)
                self.send_text(json.dumps(self.api.lifecycle("connect")))
                self.api.sockets.add(self)
                try:
                    await self._serve(self.connection)
                finally:
                    self.api.sockets.discard(self)
                    self.connection.close()     # the peer's close: ours completes it
                    self.connection = None
                log.warning("reverse WebSocket %s closed; again in %g s", self.shown, delay)
            await asyncio.sleep(delay)
            failures += 1

    async def _serve(self, connection: websocket.WebSocketClientConnection) -> None:
        while True:
            frame = await connection.read_message()
            if frame is None:
                return
            task = asyncio.ensure_future(self.handle_frame(frame))
            self._frames.add(task)
            task.add_done_callback(self._frames.discard)

    def send_text(self, text: str) -> None:
        if self.connection is None:
            return
        try:
            self.connection.write_message(text)
        except websocket.WebSocketClosedError:
            pass

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        pending = list(self._frames) + ([self._task] if self._task else [])
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


# --- HTTP actions ------------------------------------------------------------------------

class _UnsupportedType(ValueError):
    """A body in neither JSON nor a form (OneBot answers 406)."""


class ActionHandler(web.RequestHandler):
    """``GET|POST /:action``: parameters from the query, a form or a JSON object."""

    def initialize(self, api: "OneBotApi") -> None:
        self.api = api

    def compute_etag(self) -> None:
        return None

    def _answer(self, status: int, envelope: Dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(envelope, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps(_envelope("failed", 1000 + status_code if status_code < 500
                                         else Retcode.FAILED, None, self._reason)))

    async def get(self, action: str) -> None:
        await self._handle(action)

    async def post(self, action: str) -> None:
        await self._handle(action)

    async def _handle(self, action: str) -> None:
        refused = _check_token(self.api.token, self.request.headers.get("Authorization"),
                               self.get_query_argument("access_token", None))
        if refused:
            self._answer(refused, _envelope("failed", 1000 + refused, None,
                                            "access token missing" if refused == 401
                                            else "access token wrong"))
            return
        if not self.api.actions.known(action):
            self._answer(404, _envelope("failed", Retcode.NOT_FOUND, None,
                                        "unknown action %r" % action))
            return
        try:
            params = self._params()
        except _UnsupportedType as error:
            self._answer(406, _envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        except ValueError as error:
            self._answer(400, _envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        self._answer(200, await self.api.actions.call(action, params))

    def _params(self) -> Dict[str, Any]:
        params: Dict[str, Any] = {key: self.get_query_argument(key)
                                  for key in self.request.query_arguments
                                  if key != "access_token"}
        body = self.request.body
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if self.request.method == "POST" and body.strip():
            if content_type == "application/json" or content_type == "":
                try:
                    parsed = json.loads(body)
                except ValueError as error:
                    raise ValueError("the body is not valid JSON: %s" % error) from None
                except RecursionError:
                    raise ValueError("the body is not valid JSON: nested too deeply") \
                        from None
                if not isinstance(parsed, dict):
                    raise ValueError("the JSON body must be an object")
                params.update(parsed)
            elif content_type == "application/x-www-form-urlencoded":
                params.update({key: self.get_body_argument(key)
                               for key in self.request.body_arguments})
            else:
                raise _UnsupportedType("unsupported Content-Type %r" % content_type)
        return params


def _log_request(handler: web.RequestHandler) -> None:
    """The access log, without the query string: it may hold the access token."""
    status = handler.get_status()
    request = handler.request
    log.log(logging.DEBUG if status < 400 else logging.INFO, "%d %s %s (%s) %.1f ms",
            status, request.method, request.path, request.remote_ip,
            1000.0 * request.request_time())


# --- the whole ---------------------------------------------------------------------------

class OneBotApi:
    """The OneBot v11 API of one daemon.

    Args:
        client: the ``WebQQClient``.
        config: ``Config.api`` (``ApiConfig``).
        self_id: ``[account] qq``.
        store: the ``Store`` (the API closes it).
        token: the access token (configured or generated: ``api_token``).
        heartbeat_interval: seconds between heartbeat meta events (0: none).
    """

    def __init__(self, client: Any, config: Any, *, self_id: int, store: Store, token: str,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL) -> None:
        if not token or not token.strip():
            raise ValueError("the API needs a token (api_token(create=True) makes one)")
        self.client = client
        self.config = config
        self.self_id = self_id
        self.store = store
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.started_at = time.time()
        self.sockets: Set[_Peer] = set()
        self.outbound = Outbound(client, store, self_id)
        self.actions = Actions(self)
        self.poster = EventPoster(self, config.post_url, config.secret) \
            if config.post_url else None
        self.reverse = ReverseConnection(self, config.ws_reverse_url) \
            if config.ws_reverse_url else None
        self.server: Optional[HTTPServer] = None
        self.port: Optional[int] = None
        self.counts = {"received": 0, "events": 0}
        self._timers: List[PeriodicCallback] = []
        self._listeners = (("message", self._on_message), ("notice", self._on_notice))

    @property
    def url(self) -> Optional[str]:
        """``http://HOST:PORT`` of the listening server (loopback for a wildcard)."""
        if self.port is None:
            return None
        host = self.config.listen[0]
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, self.port)

    def application(self) -> web.Application:
        sockets = [(r"/%s/?" % path, EventSocket, {"api": self, "role": role})
                   for path, role in (("ws", "universal"), ("api", "api"),
                                      ("event", "event"))]
        return web.Application(sockets + [(r"/([A-Za-z0-9_.]+)/?", ActionHandler,
                                           {"api": self})],
                               log_function=_log_request,
                               websocket_max_message_size=MAX_BODY)

    async def start(self) -> None:
        """Listen (when ``listen`` is set), start the deliveries, announce ``enable``.

        Raises:
            ApiError: the address cannot be bound.
        """
        recovered = self.store.recover()
        if recovered:
            log.warning("%d message(s) were being sent when the daemon died: marked "
                        "ambiguous, not sent again", recovered)
        self.store.prune()
        for kind, listener in self._listeners:
            self.client.on(kind, listener)
        if self.config.listen is not None:
            host, port = self.config.listen
            try:
                sockets = netutil.bind_sockets(port, host)
            except OSError as error:
                raise ApiError("cannot listen on %s:%d: %s" % (host, port,
                                                                error.strerror or error))
            self.server = HTTPServer(self.application(), max_body_size=MAX_BODY,
                                     xheaders=False)
            self.server.add_sockets(sockets)
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
        self._every(PRUNE_INTERVAL, self.store.prune)
        queued = len(self.store.queued())
        if queued:
            log.info("%d message(s) accepted by the API are waiting to be sent", queued)
        self.outbound.pump()

    def _every(self, seconds: float, callback: Callable[[], Any]) -> None:
        timer = PeriodicCallback(callback, seconds * 1000)
        timer.start()
        self._timers.append(timer)

    async def close(self) -> None:
        """Stop everything; queued messages and undelivered events stay in the store."""
        for timer in self._timers:
            timer.stop()
        for _kind, listener in self._listeners:
            self.client.remove_listener(listener)
        self.outbound.close()
        if self.server is not None:
            self.server.stop()
        for peer in list(self.sockets):
            if isinstance(peer, EventSocket):
                peer.close()
        if self.reverse is not None:
            await self.reverse.close()
        await self.actions.close()
        if self.poster is not None:
            await self.poster.close()
        if self.server is not None:
            await self.server.close_all_connections()
        self.store.close()

    def restart_client(self) -> None:
        """``set_restart``: stop the client (session saved), start it again."""
        log.info("set_restart: restarting the WebQQ client")
        self.outbound.release()
        self.client.stop("set_restart")
        self.outbound.resume()
        self.client.start()

    # -- status ------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """``get_status``'s data (and the heartbeat's ``status``)."""
        online = self.client.state is State.ONLINE
        counts = self.store.counts()
        return {"online": online, "good": online, "app_initialized": True,
                "app_enabled": True, "app_good": True,
                "stat": {"message_received": counts.get("received", 0),
                         "message_sent": counts.get("sent", 0),
                         "message_queued": counts.get("queued", 0) + counts.get("sending", 0),
                         "message_failed": counts.get("failed", 0),
                         "events_undelivered": self.store.undelivered()}}

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
        return json.dumps(event, ensure_ascii=False).encode("utf-8"), event

    def publish(self, event: Dict[str, Any]) -> None:
        """Deliver one event to the webhook and every WebSocket that wants events."""
        body, _ = self._encode(event)
        self.counts["events"] += 1
        if self.poster is not None:
            self.poster.put(body, event)
        text = body.decode("utf-8")
        for peer in list(self.sockets):
            if peer.wants_events:
                peer.send_text(text)

    def _on_message(self, event: Any) -> None:
        contacts = self.client.contacts
        sender = event.sender
        user_id = onebot.user_id_of(sender.uin, sender.qq, contacts)
        segments = onebot.from_content(event.message.content)
        group_id = discuss_id = None
        card = ""
        if event.chat == "group":
            group_id = onebot.group_id_of(event.group, getattr(event.message, "group_number",
                                                               None) or event.message.code)
            member = event.group.members.get(sender.uin) if event.group else None
            card = (member.card or "") if member else ""
        elif event.chat == "discussion":
            discuss_id = event.message.did
        elif event.chat == "session":
            self.outbound.sessions[user_id] = (sender.uin, event.message.via_id,
                                               event.message.service_type)
        target = {"buddy": user_id, "session": user_id, "group": group_id,
                  "discussion": discuss_id}[event.chat]
        stamp = getattr(event.message, "time", None) or int(time.time())
        nickname = sender.name or str(user_id)
        message_id = self.store.add_received(
            chat=event.chat, target=target, user_id=user_id, text=event.text,
            data={"segments": segments, "sender": {"user_id": user_id,
                                                   "nickname": nickname}},
            time=stamp)
        self.counts["received"] += 1
        log.debug("message %d received (%s from %d)", message_id, event.chat, user_id)
        self.publish(onebot.message_event(
            self_id=self.self_id, time=int(stamp), message_id=message_id, chat=event.chat,
            user_id=user_id, nickname=nickname, card=card, segments=segments,
            group_id=group_id, discuss_id=discuss_id, message_format=MESSAGE_FORMAT))

    def _on_notice(self, event: Any) -> None:
        inner = event.event
        gid = getattr(inner, "gid", None)
        group = self.client.contacts.group(gid=gid) if gid is not None else None
        mapped = onebot.notice_or_request(inner, self_id=self.self_id,
                                          time=int(time.time()),
                                          contacts=self.client.contacts, group=group)
        if mapped is not None:
            self.publish(mapped)
