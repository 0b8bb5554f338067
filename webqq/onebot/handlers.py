"""The OneBot API's Tornado handlers: HTTP ``/:action``, the forward WebSockets, and the
media route.

handlers: ``ActionHandler`` (``GET|POST /:action``), ``EventSocket`` (``/ws`` events
and actions, ``/api`` actions, ``/event`` events) and ``MediaHandler`` (``GET
/images/NAME``, the ``url`` of a received picture; ``GET /files/ID``, the ``url`` of
an ``offline_file`` notice's file). Every call needs the access token
(``Authorization: Bearer`` or ``?access_token=``), compared with
``hmac.compare_digest``: none is 401, a wrong one 403, an unknown action 404, a bad body
400 (too large, or not a JSON object), a body neither JSON nor a form 406. What it must
never do: log the token (the access log leaves the query string out) or a body.
"""
import hmac
import json
import logging
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from tornado import web, websocket
from tornado.ioloop import IOLoop

from webqq.client.calls import NotOnline, Unavailable
from webqq.http.errors import HTTPStreamError
from webqq.onebot.actions import answer_frame, envelope
from webqq.onebot.mapping import BadParams, OneBotError, Retcode
from webqq.qq import ProtocolError, sniff_picture
from webqq.qq.pictures import PICTURE_TYPES

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.onebot.server import OneBotApi

__all__ = ["ActionHandler", "EventSocket", "MediaHandler", "check_token", "log_request",
           "MAX_BODY"]

log = logging.getLogger("webqq.api")

#: Bytes a request body may have: a picture at the 2013 limit (1 MiB) is 1.4 MiB in
#: base64; 4 MiB leaves room to answer a larger one with a clear error, and stops a
#: runaway client.
MAX_BODY = 4 * 1024 * 1024


def check_token(expected: str, header: Optional[str], query: Optional[str]) -> int:
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


def _refusal(status: int) -> Dict[str, Any]:
    return envelope("failed", 1000 + status, None,
                    "access token missing" if status == 401 else "access token wrong")


class _UnsupportedType(ValueError):
    """A body in neither JSON nor a form (OneBot answers 406)."""


class ActionHandler(web.RequestHandler):
    """``GET|POST /:action``: parameters from the query, a form or a JSON object."""

    def initialize(self, api: "OneBotApi") -> None:
        self.api = api

    def compute_etag(self) -> None:
        return None

    def _answer(self, status: int, answer: Dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(answer, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps(envelope("failed", 1000 + status_code if status_code < 500
                                        else Retcode.FAILED, None, self._reason)))

    async def get(self, action: str) -> None:
        await self._handle(action)

    async def post(self, action: str) -> None:
        await self._handle(action)

    async def _handle(self, action: str) -> None:
        refused = check_token(self.api.token, self.request.headers.get("Authorization"),
                              self.get_query_argument("access_token", None))
        if refused:
            self._answer(refused, _refusal(refused))
            return
        if not self.api.actions.known(action):
            self._answer(404, envelope("failed", Retcode.NOT_FOUND, None,
                                       "unknown action %r" % action))
            return
        try:
            params = self._params()
        except _UnsupportedType as error:
            self._answer(406, envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        except ValueError as error:
            self._answer(400, envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
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


class _Refused(Exception):
    """The media route's answer to a request it cannot serve: ``status`` and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MediaHandler(web.RequestHandler):
    """``GET /images/NAME``: a received picture (``NAME`` its segment's ``file``), from
    the client's cache or else fetched from the server then. ``GET /files/ID``: the file
    of an ``offline_file`` notice: one left offline is fetched on first use, an offer
    is served once ``accept_file`` took it. The access token as for actions; a failure
    is the JSON envelope with its status (404 unknown, 409 not taken yet, 502 the
    server failed, 503 the client offline)."""

    def initialize(self, api: "OneBotApi") -> None:
        self.api = api

    def compute_etag(self) -> None:
        return None

    async def get(self, kind: str, name: str) -> None:
        refused = check_token(self.api.token, self.request.headers.get("Authorization"),
                              self.get_query_argument("access_token", None))
        if refused:
            self._fail(refused, _refusal(refused))
            return
        try:
            if kind == "images":
                data, content_type, filename = await self._picture(name)
            else:
                data, content_type, filename = await self._file(name)
        except _Refused as error:
            self._fail(error.status, envelope("failed", 1000 + error.status if
                                              error.status < 500 else Retcode.FAILED,
                                              None, str(error)))
            return
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", "inline; filename*=UTF-8''%s"
                        % urllib.parse.quote(filename, safe=""))
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(data)

    def _fail(self, status: int, answer: Dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(answer, ensure_ascii=False))

    async def _picture(self, name: str) -> Tuple[bytes, str, str]:
        picture = self.api.pictures.find(name)
        if picture is None:
            raise _Refused(404, "no picture received has the name %s" % name)
        try:
            data = await self.api.client.pictures.fetch(picture)
        except NotOnline:
            raise _Refused(503, "picture %s is not cached and the client is not online"
                           % name) from None
        except Unavailable as error:
            raise _Refused(404, str(error)) from None
        except (ProtocolError, HTTPStreamError) as error:
            raise _Refused(502, "picture %s cannot be fetched: %s" % (name, error)
                           ) from None
        kind = sniff_picture(data)
        return data, PICTURE_TYPES.get(kind, "application/octet-stream"), \
            "%s.%s" % (name.rsplit(".", 1)[0], kind)

    async def _file(self, file_id: str) -> Tuple[bytes, str, str]:
        try:
            offer = self.api.files.get(file_id)
        except BadParams as error:
            raise _Refused(404, str(error)) from None
        if offer.path is None:
            if offer.notice.change == "offer":
                raise _Refused(409, "file %s is offered, not taken: take it with the "
                                    "accept_file action first" % file_id)
            try:
                await self.api.actions.do_accept_file({"file_id": file_id})
            except BadParams as error:
                raise _Refused(404, str(error)) from None
            except OneBotError as error:
                raise _Refused(502, str(error)) from None
        try:
            data = await IOLoop.current().run_in_executor(None, Path.read_bytes,
                                                          offer.path)
        except OSError as error:
            raise _Refused(404, "file %s is gone from %s: %s" % (
                file_id, offer.path.parent, error.strerror or error)) from None
        return data, "application/octet-stream", offer.path.name


def log_request(handler: web.RequestHandler) -> None:
    """The access log, without the query string: it may hold the access token."""
    status = handler.get_status()
    request = handler.request
    log.log(logging.DEBUG if status < 400 else logging.INFO, "%d %s %s (%s) %.1f ms",
            status, request.method, request.path, request.remote_ip,
            1000.0 * request.request_time())


class EventSocket(websocket.WebSocketHandler):
    """Forward WebSocket: ``/ws`` (events and actions), ``/api`` (actions), ``/event``
    (events)."""

    def initialize(self, api: "OneBotApi", role: str) -> None:
        self.api = api
        self.role = role
        self.wants_events = role in ("universal", "event")
        self.takes_actions = role in ("universal", "api")

    async def get(self, *args: Any, **kwargs: Any) -> None:
        refused = check_token(self.api.token, self.request.headers.get("Authorization"),
                              self.get_query_argument("access_token", None))
        if refused:
            self.set_status(refused)
            self.finish(_refusal(refused))
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
        self.send_text(await answer_frame(self.api.actions, message))

    def on_close(self) -> None:
        self.api.sockets.discard(self)

    def send_text(self, text: str) -> None:
        try:
            self.write_message(text)
        except websocket.WebSocketClosedError:
            self.api.sockets.discard(self)

    def check_origin(self, origin: str) -> bool:
        return True     # bots are not browsers; the token is the guard

