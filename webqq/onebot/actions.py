"""The OneBot actions: one coroutine per action, whatever carried the call.

actions: ``send_msg``, ``get_friend_list``, ... shared by HTTP ``/:action``, the forward
WebSockets and the reverse one; the ``_async`` and ``_rate_limited`` suffixes; the
envelope ``{"status", "retcode", "data"}``; a WebSocket frame's request and answer
(``answer_frame``). It reads the client's contacts and state and sends through the
outbound queue; an ``image`` segment's picture is read by ``webqq.onebot.media``. The
actions on pictures, files, requests and groups, and the OneBot actions WebQQ cannot do
(retcode 102), are in ``webqq.onebot.account``. What it must never do: call
``client.send_*`` itself (every send is a stored row first), or let an exception escape
as anything but a failed envelope.
"""
import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple

import webqq
from webqq.client.client import State
from webqq.onebot import mapping as onebot
from webqq.onebot.account import AccountActions
from webqq.onebot.discussions import discussion_info
from webqq.onebot.mapping import BadParams, OneBotError, Retcode
from webqq.onebot.media import read_image
from webqq.onebot.store import StoreUnavailable
from webqq.qq import ChatKind, PictureError, UploadPicture
from webqq.tasks import TaskSet

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.onebot.server import OneBotApi

__all__ = ["Actions", "envelope", "answer_frame", "to_json", "lone_surrogate", "SEND_WAIT",
           "RATE_LIMIT_INTERVAL", "MESSAGE_FORMAT"]

log = logging.getLogger("webqq.api")

#: Seconds a send action waits for the client's answer before returning the message_id
#: of a still-queued message (it stays queued in the store and goes later). While the
#: client is not online a send returns at once.
SEND_WAIT = 5.0
#: Seconds between two actions called with the ``_rate_limited`` suffix.
RATE_LIMIT_INTERVAL = 0.5
#: ``message`` of events: "string" (CQ codes, OneBot's default) or "array".
MESSAGE_FORMAT = "string"


def envelope(status: str, retcode: int, data: Any = None, message: str = "") -> Dict:
    """An action's answer: ``{"status", "retcode", "data"}`` and, on failure, ``msg`` and
    ``wording``."""
    answer = {"status": status, "retcode": retcode, "data": data}
    if message:
        answer.update(msg=message, wording=message)
    return answer


async def answer_frame(actions: "Actions", frame: Any) -> str:
    """A WebSocket text frame ``{"action", "params", "echo"}`` in, the answer's JSON out
    (keeping ``echo``); a frame that is not a JSON object gets a failed answer."""
    try:
        request = json.loads(frame)
        if not isinstance(request, dict):
            raise ValueError("not an object")
    except (ValueError, RecursionError):            # too deeply nested
        return json.dumps(envelope("failed", Retcode.BAD_REQUEST, None,
                                   "the frame is not a JSON object"))
    params = request.get("params") or {}
    if not isinstance(params, dict):
        answer = envelope("failed", Retcode.BAD_REQUEST, None, "params must be an object")
    else:
        answer = await actions.call(str(request.get("action", "")), params)
    if "echo" in request:
        answer["echo"] = request["echo"]
    return to_json(answer)


_SURROGATE = re.compile("[\ud800-\udfff]")


def to_json(value: Any) -> str:
    """``value`` as JSON text that encodes to UTF-8 whatever its strings hold: non-ASCII
    as itself, but a lone surrogate (a bot's ``echo`` may carry one) as its ``\\ud800``
    escape, which gives the bot back exactly what it sent."""
    text = json.dumps(value, ensure_ascii=False)
    return json.dumps(value) if _SURROGATE.search(text) else text


def lone_surrogate(value: Any, where: str = "params") -> Optional[str]:
    """Where a string in ``value`` (decoded JSON: dicts, lists, strings, numbers) holds
    a lone surrogate, which JSON's ``\\ud800`` escapes can carry but no UTF-8 text
    can: ``"message[0].data.text holds ..."``; None when every string is text."""
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                return "%s holds a lone surrogate (U+%04X), which is not text" % (
                    path, ord(found.group()))
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append((path + ".<key>", key))
                stack.append(("%s.%s" % (path, key) if not _SURROGATE.search(str(key))
                              else path + ".<key>", inner))
        elif isinstance(item, list):
            stack.extend(("%s[%d]" % (path, n), inner) for n, inner in enumerate(item))
    return None


class Actions(AccountActions):
    """The OneBot actions: ``await actions.call(name, params)`` returns the envelope.

    Each ``do_NAME(params)`` returns the ``data`` or raises ``OneBotError``; those of
    ``AccountActions`` are mixed in. An action of ``account.UNSUPPORTED`` answers retcode
    102 naming it.
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
        why = self.unsupported(method)
        if why is not None:
            return base, suffix, lambda params: self._refuse(method, why)
        return base, suffix, getattr(self, "do_" + method, None)

    @staticmethod
    async def _refuse(name: str, why: str) -> None:
        raise OneBotError("%s is not supported by WebQQ: %s" % (name, why),
                          Retcode.UNSUPPORTED)

    async def call(self, name: str, params: Dict[str, Any]) -> Dict[str, Any]:
        """Run action ``name`` (with its suffix) and return the OneBot envelope."""
        base, suffix, handler = self._lookup(name)
        if handler is None:
            return envelope("failed", Retcode.NOT_FOUND, None, "unknown action %r" % name)
        broken = lone_surrogate(params)
        if broken is not None:
            return envelope("failed", Retcode.BAD_PARAMS, None, broken)
        if suffix == "_async":
            self._tasks.spawn(self._run(base, handler, params))
            return envelope("async", Retcode.ASYNC)
        if suffix == "_rate_limited":
            self._limited.put_nowait((base, handler, params))
            if self._limiter is None:
                self._limiter = self._tasks.spawn(self._drain_limited())
            return envelope("async", Retcode.ASYNC)
        return await self._run(base, handler, params)

    async def _run(self, name: str, handler: Callable[[Dict], Awaitable[Any]],
                   params: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return envelope("ok", Retcode.OK, await handler(params))
        except OneBotError as error:
            log.debug("action %s failed: %s", name, error)
            return envelope("failed", error.retcode, getattr(error, "data", None),
                            str(error))
        except StoreUnavailable as error:
            log.debug("action %s failed: %s", name, error)
            return envelope("failed", Retcode.FAILED, None, str(error))
        except Exception as error:
            log.exception("action %s crashed", name)
            return envelope("failed", Retcode.FAILED, None, "internal error: %s"
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
        onebot.check_sendable(segments)
        pictures = await self._pictures(chat, target, segments)
        pieces = onebot.to_pieces(segments, names=names, pictures=pictures)
        key = params.get("idempotency_key")
        try:
            message_id, _created = await self.api.outbound.put(
                chat, target, pieces, segments,
                idempotency_key=str(key) if key is not None else None)
        except OSError as error:
            raise OneBotError("the message's pictures cannot be kept for sending: %s"
                              % (error.strerror or error)) from None
        if self.client.state is not State.ONLINE:
            wait = 0            # it waits in the store for the client to be online
        status, why = await self.api.outbound.outcome(message_id, wait) if wait \
            else ("queued", None)
        if status in ("failed", "ambiguous"):
            error = OneBotError("message %d %s: %s" % (message_id, status,
                                                       why or "no reason given"))
            error.data = {"message_id": message_id}
            raise error
        return {"message_id": message_id}

    async def _pictures(self, chat: str, target: int, segments: List[onebot.Segment]
                        ) -> List[UploadPicture]:
        """The picture of each ``image`` segment, in order, checked for ``chat``; each
        segment's ``data`` becomes the picture's name (what ``get_msg`` shows: no
        base64 kept in the store).

        Raises:
            BadParams: a picture that cannot be read or sent (``read_image``), or
                pictures to a stranger (a temporary session cannot carry them).
            OneBotError: a URL or received picture that cannot be fetched.
        """
        images = [segment for segment in segments if segment["type"] == "image"]
        if not images:
            return []
        kind = ChatKind(chat)
        if chat == "buddy" and onebot.find_friend(self._contacts(), target) is None \
                and target in self.api.outbound.sessions:
            kind = ChatKind.SESSION
        pictures = []
        for segment in images:
            picture = await read_image(
                segment["data"].get("file"), media_dir=self.api.config.media_dir,
                fetch_urls=self.api.config.fetch_urls, stream=self.api.fetcher,
                received=self.api.pictures, client=self.client)
            try:
                picture.check_for(kind)
            except PictureError as error:
                raise BadParams(str(error)) from None
            pictures.append(picture)
            segment["data"] = {"file": picture.name}
        return pictures

    async def do_handle_quick_operation(self, params: Dict[str, Any]) -> None:
        """``.handle_quick_operation``: ``context`` (the event) and ``operation``."""
        context, operation = params.get("context"), params.get("operation")
        if not isinstance(context, dict) or not isinstance(operation, dict):
            raise BadParams("context and operation must be objects")
        self.quick_operation(context, operation)

    def quick_operation(self, event: Dict[str, Any], operation: Dict[str, Any]) -> None:
        """Honour a quick operation: on a message event ``reply`` (with ``auto_escape``
        and, in groups, ``at_sender``, default true); on a request event ``approve``
        (with ``remark`` for a friend, ``reason`` for a group). Others are ignored:
        WebQQ cannot delete, kick or ban."""
        broken = lone_surrogate(operation, "operation")
        if broken is not None:
            log.warning("a quick operation is ignored: %s", broken)
            return
        if event.get("post_type") == "request" and "approve" in operation:
            name = "set_%s_add_request" % ("friend" if event.get("request_type") == "friend"
                                           else "group")
            params = dict(operation, flag=event.get("flag"), sub_type=event.get("sub_type",
                                                                                "add"))
            self._tasks.spawn(self._run(name, getattr(self, "do_" + name), params))
            return
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

    async def do_get_captcha(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        """webqq's own action (``webqq captcha``): the account (a list of it, empty
        while it is not watched), whether it waits for a verify code, and where its
        image is (``image_path`` in state_dir, ``image_url`` and ``page_url`` on this
        API; the token is needed for both)."""
        server = self.api.server
        watch = server.health.watches.get(self.api.self_id)
        if watch is None:
            return []
        waiting = watch.captcha
        urls = server.captcha_urls(watch.account) if waiting else {}
        return [{"user_id": watch.account, "state": watch.state.value,
                 "waiting": waiting is not None,
                 "attempt": waiting[1] if waiting else 0,
                 "since": waiting[2] if waiting else None,
                 "image_path": waiting[0] if waiting else None,
                 "image_url": urls.get("image"), "page_url": urls.get("page"),
                 "last_error": watch.last_error}]

    # -- information -------------------------------------------------------------------

    async def do_get_login_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return {"user_id": self.api.self_id, "nickname": self.client.nick or ""}

    async def do_get_friend_list(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        contacts = self._contacts()
        return [onebot.friend_info(friend, contacts) for friend in contacts.friends.values()]

    async def do_get_group_list(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [onebot.group_info(group) for group in self._contacts().groups.values()]

    async def do_get_discuss_list(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        """webqq's own action (``webqq groups``): the discussions, by discuss_id (stable
        across restarts: ``webqq.onebot.discussions``)."""
        listed = self.api.outbound.discussions.listed(self._contacts())
        return [discussion_info(d, discuss_id) for discuss_id, d in sorted(listed.items())]

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
        """A stored message; webqq adds ``direction``, ``send_status`` and, for what we
        sent, ``retcode``, ``error`` and ``origin`` (``api`` or ``plugin``)."""
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
            data.update(retcode=row.retcode, error=row.error, origin=row.origin)
        return data

    async def do_get_status(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self.api.status()

    async def do_get_version_info(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return {"app_name": "webqq", "app_version": webqq.__version__,
                "protocol_version": "v11", "runtime": "tornado"}

    async def do_can_send_record(self, params: Dict[str, Any]) -> Dict[str, bool]:
        return {"yes": False}

    async def do_set_restart(self, params: Dict[str, Any]) -> None:
        """Restart the WebQQ session after ``delay`` ms: the client stops (saving its
        session) and starts again (resuming it). The queue waits in the store."""
        given = params.get("delay")
        delay = 0 if given in (None, "") else onebot.int64(given)
        if delay is None:
            raise BadParams("delay must be an integer (milliseconds)")
        delay = max(0, delay) / 1000.0
        self._tasks.spawn(self._restart_later(delay))

    async def _restart_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.api.restart_client()
