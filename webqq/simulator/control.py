"""The /_sim/ control surface: JSON in, JSON out, people named by QQ number.

control: how tests, README examples and people drive the simulator (shapes in the
package docstring, ``webqq/simulator/__init__.py``). It validates the JSON, translates QQ
numbers and group/discussion numbers into world objects and calls the ``Backend`` or the
Simulator. It never reaches around the back end to edit a session, and never returns a
token (skey, ptwebqq, vfwebqq, psessionid).

Only the simulator's own user may drive it: the surface can kick the account or make
anyone say anything, and any web page the user visits can send requests to loopback.
So every request must carry the simulator's control token (``X-Sim-Token: TOKEN`` or
``Authorization: Bearer TOKEN``; ``Simulator.control_token``, printed at start), a
request with an ``Origin`` header must come from the surface's own origin
(``http://127.0.0.1:PORT``, ``http://localhost:PORT``, ``http://[::1]:PORT``), and a POST
body must be ``Content-Type: application/json``. A browser cannot send such a request
cross-site without a CORS preflight, which this surface never grants.

Errors: 400 ``{"error": "..."}`` for a malformed body or an unknown name, 403 for a
missing or wrong token or a foreign Origin, 404 for an unknown verb, 405 for a wrong
method, 409 when the state does not allow it (e.g. the account is not logged in), 415
for a POST body that is not declared JSON.
"""
import base64
import binascii
import hmac
import http.client
import json
import logging
import re
from dataclasses import replace

from tornado import web

from .errors import ControlError
from .events import POLL_TYPES, SIMULATED_FONT, EventError, EventSpec
from .faults import FAULT_KINDS, FAULT_WHEN, Fault, default_when
from .pictures import picture_from
from .world import STATUSES

__all__ = ["BODIES", "ControlHandler", "TOKEN_HEADER", "control_origins", "refusal_of"]

log = logging.getLogger("webqq.simulator")

_CODE = re.compile(r"[A-Za-z0-9]{1,8}\Z")

#: The request header carrying the control token (``Authorization: Bearer`` works too).
TOKEN_HEADER = "X-Sim-Token"

# The JSON types a body key may have. A number may also come as a decimal string (the
# range is checked by the verb); null always means "not given".
NUMBER, SECONDS, TEXT, FLAG, PIECES, OBJECT = (
    "a number", "a number of seconds", "a string", "true or false", "a list", "an object")
_ACCEPTS = {NUMBER: (int, str), SECONDS: (int, float), TEXT: (str,), FLAG: (bool,),
            PIECES: (list,), OBJECT: (dict,)}

_CHAT_KEYS = {"to": NUMBER, "from": NUMBER, "group": NUMBER, "discussion": NUMBER,
              "text": TEXT, "content": PIECES, "font": OBJECT}
#: Each POST verb's body: key -> the type it must have. Any other key is refused (a
#: typo such as ``kick_mesage`` must not pass as the default).
BODIES = {
    "say": dict(_CHAT_KEYS, picture=OBJECT),
    "event": dict(_CHAT_KEYS, poll_type=TEXT, type=TEXT, status=TEXT, value=OBJECT),
    "kick": {"account": NUMBER, "kick_message": FLAG},
    "rotate": {"account": NUMBER},
    "expire": {"account": NUMBER},
    "captcha": {"account": NUMBER, "code": TEXT},
    "fault": {"path": TEXT, "kind": TEXT, "status": NUMBER, "count": NUMBER,
              "seconds": SECONDS, "retcode": NUMBER, "host": TEXT, "when": TEXT},
    "offline": {"seconds": SECONDS},
    "file": {"to": NUMBER, "from": NUMBER, "action": TEXT, "name": TEXT, "base64": TEXT,
             "session_id": NUMBER},
    "friend": {"to": NUMBER, "from": NUMBER, "action": TEXT, "text": TEXT, "category": NUMBER},
    "group": {"group": NUMBER, "action": TEXT, "member": NUMBER, "admin": NUMBER,
              "text": TEXT},
}


def control_origins(port: int, host: str = "127.0.0.1") -> frozenset:
    """The Origins a browser sends for pages of the control surface itself."""
    literal = "[%s]" % host if ":" in host else host
    return frozenset("http://%s:%d" % (name, port)
                     for name in ("127.0.0.1", "localhost", "[::1]", literal))


def _presented_token(headers) -> str:
    token = headers.get(TOKEN_HEADER)
    if token is not None:
        return token
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def refusal_of(method: str, headers, token: str, origins) -> "tuple | None":
    """Why a control request is refused, as ``(HTTP status, message)``, or None.

    Checked in this order: a foreign ``Origin`` (403), a missing or wrong token (403),
    a POST whose body is not declared ``application/json`` (415). The token is compared
    in constant time and never quoted.
    """
    origin = headers.get("Origin")
    if origin is not None and origin not in origins:
        return 403, "cross-site request refused: Origin %s is not the simulator's" % origin[:80]
    presented = _presented_token(headers)
    if not presented or not hmac.compare_digest(presented.encode("utf-8", "replace"),
                                                token.encode("utf-8")):
        return 403, ("send the simulator's control token as %s (or Authorization: Bearer)"
                     % TOKEN_HEADER)
    media_type = headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if method == "POST" and media_type != "application/json":
        return 415, "POST bodies must be Content-Type: application/json"
    return None


class _BadRequest(Exception):
    """A control request whose body does not say what it must (HTTP 400)."""


class ControlHandler(web.RequestHandler):
    """/_sim/<verb> on the plain port, for any Host."""

    GET_VERBS = {"state": "state", "sent": "sent", "dropped": "dropped", "fault": "faults",
                 "files": "files", "answers": "answers", "picture": "picture"}
    POST_VERBS = {"say": "say", "event": "event", "kick": "kick", "rotate": "rotate",
                  "expire": "expire", "captcha": "captcha", "fault": "fault",
                  "offline": "offline", "file": "file", "friend": "friend", "group": "group"}
    DELETE_VERBS = {"fault": "clear_faults"}

    def initialize(self, sim):
        self.sim = sim
        self.backend = sim.backend
        self.world = sim.world

    def compute_etag(self):
        return None

    def prepare(self):
        refusal = refusal_of(self.request.method, self.request.headers, self.sim.control_token,
                             control_origins(self.sim.port, self.sim.host))
        if refusal is not None:
            log.info("/_sim/ %s %s refused: HTTP %d", self.request.method, self.request.path,
                     refusal[0])
            self._fail(*refusal)

    def log_exception(self, typ, value, tb):
        if isinstance(value, web.HTTPError):
            return
        log.error("/_sim/ %s: unexpected error", self.request.path, exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        self._json({"error": http.client.responses.get(status_code, "Error")})

    def _json(self, value):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        return self.finish(json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def _fail(self, status: int, message: str):
        self.set_status(status)
        self._json({"error": message})

    async def _dispatch(self, verbs: dict, verb: str):
        method = verbs.get(verb)
        if method is None:
            known = verb in self.GET_VERBS or verb in self.POST_VERBS or verb in self.DELETE_VERBS
            self._fail(405 if known else 404, "%s /_sim/%s is not a control verb"
                       % (self.request.method, verb))
            return
        try:
            await getattr(self, method)()
        except _BadRequest as exc:
            self._fail(400, str(exc))
        except (EventError, ValueError) as exc:
            self._fail(400, str(exc))
        except ControlError as exc:
            self._fail(409, str(exc))

    async def get(self, verb):
        await self._dispatch(self.GET_VERBS, verb)

    async def post(self, verb):
        await self._dispatch(self.POST_VERBS, verb)

    async def delete(self, verb):
        await self._dispatch(self.DELETE_VERBS, verb)

    # --- reading the body ----------------------------------------------------------------

    def _body(self, verb: str) -> dict:
        """The JSON object of the body, every key known to ``BODIES[verb]`` and of its
        type (null counts as absent and is dropped), or _BadRequest naming the key."""
        try:
            value = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):    # RecursionError: nested too deeply
            raise _BadRequest("the body is not JSON") from None
        if not isinstance(value, dict):
            raise _BadRequest("the body must be a JSON object")
        return _typed(value, BODIES[verb])

    @staticmethod
    def _number(body: dict, key: str, required: bool = True):
        """A positive number below 2**32 (QQ numbers, uins, counts and retcodes are)."""
        value = body.get(key)
        if value is None and not required:
            return None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 1 << 32:
            raise _BadRequest("%s: expected a number, got %s" % (key, repr(value)[:40]))
        return value

    def _account(self, body: dict, key: str = "account") -> int:
        qq = self._number(body, key)
        if qq not in self.world.accounts:
            raise _BadRequest("%s: no account %d in the world" % (key, qq))
        return qq

    def _group(self, body: dict):
        number = self._number(body, "group", required=False)
        if number is None:
            return None
        group = self.world.groups.get(number)
        if group is None:
            raise _BadRequest("group: no group %d in the world" % number)
        return group

    def _discussion(self, body: dict):
        number = self._number(body, "discussion", required=False)
        if number is None:
            return None
        discussion = self.world.discussions.get(number)
        if discussion is None:
            raise _BadRequest("discussion: no discussion %d in the world" % number)
        return discussion

    def _spec(self, body: dict, poll_type: str, pictures: bool = False) -> EventSpec:
        sender = self._number(body, "from", required=False)
        group, discussion = self._group(body), self._discussion(body)
        if group is not None and sender is not None and poll_type == "group_message" \
                and group.member(sender) is None:
            raise _BadRequest("from: %d is not a member of group %d" % (sender, group.number))
        if discussion is not None and sender is not None and poll_type == "discu_message" \
                and sender not in discussion.members:
            raise _BadRequest("from: %d is not a member of discussion %d"
                              % (sender, discussion.number))
        text, content = body.get("text"), body.get("content")
        if content is not None:
            _check_content(content, pictures)
        font = body.get("font", SIMULATED_FONT)
        value = body.get("value", {})
        status = body.get("status")
        if status is not None and status not in STATUSES:
            raise _BadRequest("status: one of %s" % ", ".join(STATUSES))
        subtype = body.get("type")
        return EventSpec(poll_type=poll_type, sender=sender, group=group, discussion=discussion,
                         subtype=subtype, text=text, content=content, font=dict(font),
                         status=status, value=dict(value))

    # --- verbs -----------------------------------------------------------------------------

    async def state(self):
        self._json({"accounts": self.backend.report(),
                    "poll_hold": self.sim.poll_hold, "era": self.sim.options.era,
                    "faults": self.sim.faults.describe()})

    def _query_account(self) -> int:
        qq = self.get_query_argument("account", None)
        if qq is None or not qq.isdigit() or int(qq) not in self.world.accounts:
            raise _BadRequest("account: give ?account=QQ of an account in the world")
        return int(qq)

    async def sent(self):
        self._json(self.backend.chat.sent_by(self._query_account()))

    async def dropped(self):
        self._json(self.backend.chat.dropped_by(self._query_account()))

    async def faults(self):
        self._json(self.sim.faults.describe())

    async def say(self):
        body = self._body("say")
        to = self._account(body, "to")
        if body.get("from") is None:
            raise _BadRequest("from: who says it (a QQ number)")
        picture = body.pop("picture", None)
        if body.get("text") is None and body.get("content") is None and picture is None:
            raise _BadRequest("text: what is said")
        if "group" in body and "discussion" in body:
            raise _BadRequest("group or discussion: one chat, not both")
        if "group" in body:
            poll_type = "group_message"
        elif "discussion" in body:
            poll_type = "discu_message"
        else:
            poll_type = "message"
        spec = self._spec(body, poll_type, pictures=True)
        pieces = spec.content if spec.content is not None else (
            [spec.text] if spec.text else [])
        if picture is not None:
            pieces = pieces + [["picture", picture]]
        if any(_is_picture(piece) for piece in pieces):
            spec = replace(spec, content=[self._said(to, spec, piece) for piece in pieces])
        self._json({"ok": True, "item": self.backend.chat.push_event(to, spec)})

    def _said(self, to: int, spec: EventSpec, piece):
        """A ``["picture", {...}]`` piece of /_sim/say as the received piece it becomes."""
        if not _is_picture(piece):
            return piece
        how = piece[1].get("as", "offpic")
        chat = spec.group or spec.discussion
        if how not in ("offpic", "cface") or (chat is not None and "as" in piece[1]):
            raise _BadRequest("picture: \"as\" is \"offpic\" or \"cface\", for a friend's "
                              "picture only")
        data = picture_from(piece[1], self.world.folder)
        return self.backend.pictures.said(to, spec.sender, data, chat=chat, how=how)

    async def event(self):
        body = self._body("event")
        to = self._account(body, "to")
        poll_type = body.get("poll_type")
        if poll_type not in POLL_TYPES:
            raise _BadRequest("poll_type: one of %s" % ", ".join(POLL_TYPES))
        spec = self._spec(body, poll_type)
        self._json({"ok": True, "item": self.backend.chat.push_event(to, spec)})

    async def kick(self):
        body = self._body("kick")
        notice = body.get("kick_message", False)
        self.backend.sessions.kick(self._account(body), notice)
        self._json({"ok": True})

    async def rotate(self):
        self.backend.sessions.rotate(self._account(self._body("rotate")))
        self._json({"ok": True})

    async def expire(self):
        self.backend.sessions.expire(self._account(self._body("expire")))
        self._json({"ok": True})

    async def captcha(self):
        body = self._body("captcha")
        qq = self._account(body)
        code = body.get("code")
        if code is None or not _CODE.match(code):
            raise _BadRequest("code: 1 to 8 letters or digits")
        self.backend.login.demand_captcha(qq, code)
        self._json({"ok": True})

    async def fault(self):
        body = self._body("fault")
        path, kind = body.get("path"), body.get("kind")
        if path is None or not path.startswith("/") or path.startswith("/_sim/"):
            raise _BadRequest("path: a protocol path such as /channel/poll2")
        if kind not in FAULT_KINDS:
            raise _BadRequest("kind: one of %s" % ", ".join(FAULT_KINDS))
        # Every key given is checked, also one the kind does not use.
        status = self._number(body, "status", required=False)
        retcode = self._number(body, "retcode", required=kind == "retcode")
        seconds = _seconds(body["seconds"]) if "seconds" in body else None
        when = body.get("when", default_when(kind))
        if when is not None and (default_when(kind) is None or when not in FAULT_WHEN):
            raise _BadRequest("when: %s, for a status or reset fault"
                              % " or ".join(FAULT_WHEN))
        fault = Fault(path=path, kind=kind, count=self._number(body, "count", False) or 1,
                      host=body.get("host"), when=when)
        if kind == "status":
            fault.status = status or 502
            if not 100 <= fault.status <= 599:
                raise _BadRequest("status: an HTTP status 100..599")
        elif kind == "delay":
            fault.seconds = seconds or 1.0
        elif kind == "retcode":
            if retcode == 116:
                raise _BadRequest("retcode: use /_sim/rotate for a 116 with a real new ptwebqq")
            fault.retcode = retcode
        self.sim.faults.add(fault)
        self._json({"ok": True, "faults": self.sim.faults.describe()})

    async def file(self):
        body = self._body("file")
        to, action = self._account(body, "to"), body.get("action", "offer")
        if action not in ("offer", "offline", "cancel"):
            raise _BadRequest("action: offer, offline or cancel")
        # Every key given is checked, also one the action does not use.
        session_id = self._number(body, "session_id", required=action == "cancel")
        sender = self._number(body, "from", required=action != "cancel")
        data = _base64(body["base64"]) if "base64" in body else None
        files = self.backend.files
        if action == "cancel":
            item = files.cancel(to, session_id)
        else:
            if body.get("name") is None or data is None:
                raise _BadRequest("name and base64: the file's name and its bytes")
            item = (files.offer if action == "offer" else files.leave)(
                to, sender, body["name"], data)
        self._json({"ok": True, "item": item})

    async def files(self):
        self._json(self.backend.files.report(self._query_account()))

    async def friend(self):
        body = self._body("friend")
        to, other = self._account(body, "to"), self._number(body, "from")
        action, manage = body.get("action", "request"), self.backend.manage
        category = _category(body.get("category"))
        if action == "request":
            item = manage.ask_friend(to, other, body.get("text", ""))
        elif action == "added":
            item = manage.added_by(to, other)
        elif action == "accepted":
            item = manage.accepted_by(to, other, category)
        else:
            raise _BadRequest("action: request, added or accepted")
        self._json({"ok": True, "item": item})

    async def group(self):
        body = self._body("group")
        group = self._group(body)
        if group is None:
            raise _BadRequest("group: which group (its number)")
        member, admin = self._number(body, "member"), self._number(body, "admin", False)
        action, manage = body.get("action"), self.backend.manage
        if admin is not None and action not in ("join", "remove", "agree", "deny"):
            raise _BadRequest("admin: only for join, remove, agree or deny")
        if action in ("join", "leave", "remove"):
            items = manage.change_member(group, member, action, admin)
        elif action == "request":
            items = manage.ask_to_join(group, member, body.get("text", ""))
        elif action in ("agree", "deny"):
            items = manage.answer_account(group, member, action == "agree",
                                          body.get("text", ""), admin)
        else:
            raise _BadRequest("action: join, leave, remove, request, agree or deny")
        self._json({"ok": True, "items": items})

    async def answers(self):
        self._json(self.backend.manage.answers(self._query_account()))

    async def picture(self):
        picture = self.backend.pictures.by_sha1(self.get_query_argument("sha1", ""))
        if picture is None:
            raise _BadRequest("sha1: give ?sha1= of a picture /_sim/sent named")
        self._json(picture.to_json())

    async def clear_faults(self):
        self.sim.faults.clear()
        self._json({"ok": True})

    async def offline(self):
        seconds = _seconds(self._body("offline").get("seconds"))
        # Answer first: going offline closes this very connection too.
        await self._json({"ok": True, "seconds": seconds})
        self.sim.go_offline(seconds)


def _typed(body: dict, keys: dict) -> dict:
    """``body`` without its null values, once every key is one of ``keys`` and has the
    JSON type ``keys`` gives it; _BadRequest names the first key that does not."""
    unknown = set(body) - set(keys)
    if unknown:
        raise _BadRequest("unknown key(s): %s" % ", ".join(sorted(unknown)))
    checked = {}
    for key, value in body.items():
        if value is None:
            continue
        kind = keys[key]
        if isinstance(value, bool) != (kind == FLAG) or not isinstance(value, _ACCEPTS[kind]):
            raise _BadRequest("%s: expected %s, got %s" % (key, kind, _json_type(value)))
        checked[key] = value
    return checked


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


#: Received-side picture elements a said message may carry as they are (§5.14).
_PICTURES = ("offpic", "cface")


def _is_picture(piece) -> bool:
    """A ``["picture", {...}]`` piece of /_sim/say (a picture to store and send)."""
    return isinstance(piece, list) and len(piece) == 2 and piece[0] == "picture" \
        and isinstance(piece[1], dict)


def _base64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest("base64: not valid base64") from None


def _category(value) -> "int | None":
    """A friend category: 0 (the default one) or more, or None when not given."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or not 0 <= value < 1 << 16):
        raise _BadRequest("category: a category index, 0 or more")
    return value


def _check_content(content, pictures: bool = False) -> None:
    """Received-side pieces: strings, ``["face", N]`` and picture elements (and, with
    ``pictures``, /_sim/say's ``["picture", {...}]``); the font is the ``"font"`` key,
    not a piece."""
    if not isinstance(content, list) or not content:
        raise _BadRequest("content: expected a non-empty list of pieces")
    for piece in content:
        if isinstance(piece, str):
            continue
        if isinstance(piece, list) and len(piece) == 2 and piece[0] == "face":
            if isinstance(piece[1], int) and not isinstance(piece[1], bool) \
                    and 0 <= piece[1] < 1 << 32:
                continue
        elif isinstance(piece, list) and len(piece) >= 2 and piece[0] in _PICTURES:
            continue
        elif pictures and _is_picture(piece):
            continue
        raise _BadRequest("content: %s is not a piece (a string, [\"face\", N], or an "
                          "offpic or cface element)" % json.dumps(piece)[:40])


def _seconds(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise _BadRequest("seconds: a number of seconds, more than 0 and at most 3600")
    return float(value)
