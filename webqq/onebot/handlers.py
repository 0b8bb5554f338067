"""The OneBot API's Tornado handlers: HTTP ``/:action``, the forward WebSockets, and the
media route.

handlers: ``ActionHandler`` (``GET|POST /:action``), ``EventSocket`` (``/ws`` events
and actions, ``/api`` actions, ``/event`` events) and ``MediaHandler`` (``GET
/images/NAME``, the ``url`` of a received picture; ``GET /files/ID``, the ``url`` of
an ``offline_file`` notice's file). Every call needs the access token
(``Authorization: Bearer`` or ``?access_token=``), compared with
``hmac.compare_digest``: none is 401, a wrong one 403, an unknown action 404, a bad body
400 (too large, or not a JSON object), a query or form that is not UTF-8 400, a body
neither JSON nor a form 406, and so is a JSON body sent as a form (``curl -d``), with a
message that says to send ``Content-Type: application/json``. Each request is for one
account, which ``OneBotApi.account_for`` picks (``self_id``, ``X-Self-ID``): none while
several are served is 400, one not served 404. What it must never do: log the token or a
body: the access log and the log of what Tornado refuses leave the query string out, and
what is not UTF-8 is refused here before Tornado would log it.
"""
import hmac
import json
import logging
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from tornado import web, websocket
from tornado.ioloop import IOLoop

from webqq.client.calls import NotOnline, Unavailable
from webqq.http.errors import HTTPStreamError
from webqq.onebot.actions import answer_frame, envelope, to_json
from webqq.onebot.delivery import Backlog
from webqq.onebot.mapping import BadParams, OneBotError, Retcode
from webqq.qq import ProtocolError, sniff_picture
from webqq.qq.pictures import PICTURE_TYPES

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.onebot.bot import AccountApi
    from webqq.onebot.server import OneBotApi

__all__ = ["ActionHandler", "EventSocket", "MediaHandler", "UnknownAccount", "check_token",
           "log_request",
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


class UnknownAccount(Exception):
    """Raised by ``OneBotApi.account_for`` when a request names no account the daemon
    serves, or none while it serves several; ``status`` is the HTTP status to answer
    (400, 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _no_account(error: UnknownAccount) -> Dict[str, Any]:
    return envelope("failed", 1000 + error.status, None, str(error))


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
        self.finish(to_json(answer))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps(envelope("failed", 1000 + status_code if status_code < 500
                                        else Retcode.FAILED, None, self._reason)))

    async def get(self, action: str) -> None:
        await self._handle(action)

    async def post(self, action: str) -> None:
        await self._handle(action)

    async def _handle(self, action: str) -> None:
        try:
            _check_utf8(self.request.query_arguments, "the query")
        except ValueError as error:
            self._answer(400, envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        refused = check_token(self.api.token, self.request.headers.get("Authorization"),
                              self.get_query_argument("access_token", None))
        if refused:
            self._answer(refused, _refusal(refused))
            return
        try:
            params = self._params()
        except _UnsupportedType as error:
            self._answer(406, envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        except ValueError as error:
            self._answer(400, envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        try:
            account = self.api.account_for(self.request, params)
        except UnknownAccount as error:
            self._answer(error.status, _no_account(error))
            return
        if not account.actions.known(action):
            self._answer(404, envelope("failed", Retcode.NOT_FOUND, None,
                                       "unknown action %r" % action))
            return
        self._answer(200, await account.actions.call(action, params))

    def _params(self) -> Dict[str, Any]:
        params: Dict[str, Any] = {key: self.get_query_argument(key)
                                  for key in self.request.query_arguments
                                  if key != "access_token"}
        body = self.request.body
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if self.request.method == "POST" and body.strip():
            if content_type == "application/json" or content_type == "":
                params.update(_json_object(body))
            elif content_type == "application/x-www-form-urlencoded":
                if _looks_like_json(body):
                    # curl -d sends this type: the bot meant JSON and would otherwise
                    # hear "user_id is required".
                    raise _UnsupportedType(
                        "the body is JSON but its Content-Type says %s: send "
                        "Content-Type: application/json" % content_type)
                _check_utf8(self.request.body_arguments, "the form")
                params.update({key: self.get_body_argument(key)
                               for key in self.request.body_arguments})
            else:
                raise _UnsupportedType("unsupported Content-Type %r" % content_type)
        return params

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        _log_exception(self, typ, value, tb)


def _json_object(body: bytes) -> Dict[str, Any]:
    """The JSON object of a body.

    Raises:
        ValueError: not JSON, nested too deeply, or not an object.
    """
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise ValueError("the body is not valid JSON: %s" % error) from None
    except RecursionError:
        raise ValueError("the body is not valid JSON: nested too deeply") from None
    if not isinstance(parsed, dict):
        raise ValueError("the JSON body must be an object")
    return parsed


def _looks_like_json(body: bytes) -> bool:
    """Whether a body sent as a form is a JSON object or array instead."""
    if body.lstrip()[:1] not in (b"{", b"["):
        return False
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def _check_utf8(arguments: Dict[str, List[bytes]], where: str) -> None:
    """Refuse arguments that are not UTF-8 ourselves: Tornado's own refusal (an
    ``HTTPError``) is logged at WARNING with the whole URL, the token and the message
    text in it.

    Raises:
        ValueError: names the parameter when its name is readable.
    """
    for key, values in arguments.items():
        try:
            # Tornado reads names as latin-1 and values as bytes.
            name = key.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise ValueError("%s is not valid UTF-8 (a parameter name)" % where) from None
        for value in values:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("%s is not valid UTF-8 (parameter %s)" % (where, name)) \
                    from None


def _log_exception(handler: web.RequestHandler, typ: Any, value: Any, tb: Any) -> None:
    """Tornado's ``log_exception`` without the query string (which may hold the token
    and message text) and without an ``HTTPError``'s message (which may quote a
    parameter): the method, the path, the peer and the status or the traceback."""
    request = handler.request
    if isinstance(value, web.HTTPError):
        log.info("%d %s %s (%s): refused by Tornado", value.status_code, request.method,
                 request.path, request.remote_ip)
    else:
        log.error("uncaught exception in %s %s (%s)", request.method, request.path,
                  request.remote_ip, exc_info=(typ, value, tb))


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
        self.account: Optional["AccountApi"] = None     # account_for, when asked

    def compute_etag(self) -> None:
        return None

    async def get(self, kind: str, name: str) -> None:
        try:
            _check_utf8(self.request.query_arguments, "the query")
        except ValueError as error:
            self._fail(400, envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        refused = check_token(self.api.token, self.request.headers.get("Authorization"),
                              self.get_query_argument("access_token", None))
        if refused:
            self._fail(refused, _refusal(refused))
            return
        try:
            self.account = self.api.account_for(self.request)
        except UnknownAccount as error:
            self._fail(error.status, _no_account(error))
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
        self.finish(to_json(answer))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        _log_exception(self, typ, value, tb)

    async def _picture(self, name: str) -> Tuple[bytes, str, str]:
        picture = self.account.pictures.find(name)
        if picture is None:
            raise _Refused(404, "no picture received has the name %s" % name)
        try:
            data = await self.account.client.pictures.fetch(picture)
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
            offer = self.account.files.get(file_id)
        except BadParams as error:
            raise _Refused(404, str(error)) from None
        if offer.path is None:
            if offer.notice.change == "offer":
                raise _Refused(409, "file %s is offered, not taken: take it with the "
                                    "accept_file action first" % file_id)
            try:
                await self.account.actions.do_accept_file({"file_id": file_id})
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
        self.account: Optional["AccountApi"] = None     # account_for, at the handshake
        self.role = role
        self.wants_events = role in ("universal", "event")
        self.takes_actions = role in ("universal", "api")
        self.backlog = Backlog()

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            _check_utf8(self.request.query_arguments, "the query")
        except ValueError as error:
            self.set_status(400)
            self.finish(envelope("failed", Retcode.BAD_REQUEST, None, str(error)))
            return
        refused = check_token(self.api.token, self.request.headers.get("Authorization"),
                              self.get_query_argument("access_token", None))
        if refused:
            self.set_status(refused)
            self.finish(_refusal(refused))
            return
        try:
            self.account = self.api.account_for(self.request)
        except UnknownAccount as error:
            self.set_status(error.status)
            self.finish(_no_account(error))
            return
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        log.info("forward WebSocket %s connected from %s for %d", self.request.path,
                 self.request.remote_ip, self.account.self_id)
        self.account.sockets.add(self)
        if self.wants_events:
            self.send_text(json.dumps(self.account.lifecycle("connect")))

    async def on_message(self, message: Any) -> None:
        if not self.takes_actions:
            return
        self.send_text(await answer_frame(self.account.actions, message))

    def on_close(self) -> None:
        self.account.sockets.discard(self)

    def send_text(self, text: str) -> None:
        try:
            if self.backlog.send(self.write_message, text):
                return
        except websocket.WebSocketClosedError:
            self.account.sockets.discard(self)
            return
        log.warning("forward WebSocket %s from %s is closed: %s (the bot does not read)",
                    self.request.path, self.request.remote_ip, self.backlog.why())
        self.account.sockets.discard(self)
        self.close(1008, "too far behind")

    def check_origin(self, origin: str) -> bool:
        return True     # bots are not browsers; the token is the guard

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        _log_exception(self, typ, value, tb)

