"""The protocol hosts of WebQQ 2013 as Tornado handlers, routed by the Host header.

app: HTTP in, ``Backend`` calls, bytes out. Each handler reads what docs/protocol.rst says the
request carries (query, form field ``r``, cookies), applies the Referer policy (an HTTP
matter), asks a part of ``state.Backend`` for the decision and writes the reply in
Tencent's form (HTTP 200 with a retcode for every JSON or callback reply, §2.5). Injected faults
(``faults.py``) are applied here, before the request is handled or, for a ``status`` or
``reset`` that strikes ``after``, in place of its reply. Handlers never decide a
protocol rule themselves, never block the IOLoop, and never log a query string, a cookie
or a form field: those carry secrets.

Hosts and ports (docs/protocol.rst §2.1): the plain port serves ``HTTP_HOSTS`` over http; the
TLS port serves ``TLS_HOSTS`` (the login, captcha and login-page hosts the 2013 clients
reached over https, plus ``d.web2.qq.com``, which also spoke https from August 2013)
over https and plain http alike, so ``Simulator.hosts`` maps them to the TLS port and
one name reaches its host with either scheme; everything else maps to the plain port.
"""
import collections
import http.client
import logging
import re
import socket
import struct
from urllib.parse import urlsplit

from tornado import iostream, web

from . import wire
from .errors import Refusal

__all__ = ["HTTP_HOSTS", "TLS_HOSTS", "KNOWN_REFERERS", "ProtocolHandler",
           "make_application"]

log = logging.getLogger("webqq.simulator")

#: Hosts served on the plain HTTP port.
HTTP_HOSTS = ("check.ptlogin2.qq.com", "ptlogin2.qq.com", "ui.ptlogin2.qq.com",
              "captcha.qq.com", "ptlogin4.web2.qq.com", "web2.qq.com", "web.qq.com",
              "webqq.qq.com", "www.qq.com", "d.web2.qq.com", "s.web2.qq.com",
              # the picture upload servers (mediaapp.py)
              "weboffline.ftn.qq.com", "up.web2.qq.com")
#: Hosts served on the TLS port, over https and http (the certificate's SANs; keep
#: certs/README in step). Simulator.hosts maps them there.
TLS_HOSTS = ("ssl.ptlogin2.qq.com", "ui.ptlogin2.qq.com", "ssl.captcha.qq.com",
             "d.web2.qq.com")

#: §1.4: every Referer the 2013 clients sent to d.web2 and s.web2 ("strict" policy).
KNOWN_REFERERS = frozenset((
    "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2",
    "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=3",
    "https://d.web2.qq.com/cfproxy.html?v=20110331002&callback=1",
    "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1",
    "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=3",
    "http://d.web2.qq.com/proxy.html?v=20101025002",
    "http://d.web2.qq.com/proxy.html",
    # §3.25: the page picture uploads and fetches came from (twqq; pidgin-lwqq's form).
    "http://web2.qq.com/webqq.html",
    "http://web2.qq.com/",
))

# The login page: in Era B the one line clients read is g_login_sig (§3.1); the spring
# 2013 page had none (login_sig came with the July page, t=20130723001), so an Era A
# world leaves it out and a client that probes the page logs in the Era A way.
_LOGIN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>QQ登录</title>
<script type="text/javascript">
var g_appid=encodeURIComponent("1003903");%s
</script></head><body>webqq simulator login page</body></html>
"""
_LOGIN_SIG_LINE = '\nvar g_login_sig=encodeURIComponent("%s");'
_LOGIN_PROXY_PAGE = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body></body></html>"


#: Cookie headers whose values ``CookieValues`` remembers: a client sends the same
#: header on every call until a cookie changes, so one or two per account logged in
#: (d.web2 and s.web2 get the same cookies) cover a thousand accounts four times over.
COOKIE_HEADERS_KEPT = 4096


class CookieValues:
    """A request's cookies as a dict, parsed once per distinct Cookie header.

    Tornado's ``request.cookies`` builds a ``Morsel`` per cookie on every request (a
    tenth of the simulator's CPU per message with a thousand accounts); the result
    depends on the header's text alone, so the last ``COOKIE_HEADERS_KEPT`` headers
    are kept with their values (least recently used first out). Each caller gets its
    own copy. The values are the cookies the simulator itself granted; it keeps them
    in its sessions anyway.
    """

    def __init__(self, kept: int = COOKIE_HEADERS_KEPT):
        self.kept = kept
        self._values = collections.OrderedDict()    # Cookie header -> {name: value}

    def of(self, request) -> dict:
        """``{name: morsel.value}`` of ``request.cookies``, parsed at most once per header."""
        header = request.headers.get("Cookie")
        values = self._values.get(header)
        if values is None:
            values = {name: morsel.value for name, morsel in request.cookies.items()}
            self._values[header] = values
            if len(self._values) > self.kept:
                self._values.popitem(last=False)
        else:
            self._values.move_to_end(header)
        return dict(values)


class ProtocolHandler(web.RequestHandler):
    """Base of every protocol handler: faults, cookies, replies, quiet logging."""

    def initialize(self, sim):
        self.sim = sim
        self.backend = sim.backend
        self._after = None              # a status or reset fault owed instead of the reply

    def compute_etag(self):
        # Tencent sent no ETag; without this Tornado would add one and answer 304s.
        return None

    def set_default_headers(self):
        self.set_header("Server", "webqq-simulator")

    def prepare(self):
        # Not a coroutine itself: most requests meet no fault and need no await.
        fault = self.sim.faults.take(self.request.host_name, self.request.path)
        if fault is None:
            return None
        return self._strike(fault)

    async def _strike(self, fault):
        log.info("fault %s%s on %s%s", fault.kind, " (%s)" % fault.when if fault.when else "",
                 self.request.host_name, self.request.path)
        if fault.kind == "delay":
            await self.sim.sleep(fault.seconds)
        elif fault.kind == "retcode":
            self.reply_retcode(fault.retcode)
        elif fault.when == "after":
            self._after = fault
        elif fault.kind == "status":
            self.set_status(fault.status)
            self.finish()
        else:
            self.reset_connection()     # detached: the handler does not run

    def reply_retcode(self, retcode: int):
        """Answer a bare retcode in the envelope this endpoint uses (JSON here)."""
        body = {"retcode": retcode, "t": "0"} if retcode == 121 else {"retcode": retcode,
                                                                        "errmsg": ""}
        return self.reply(wire.dumps(body))

    def reply(self, body: bytes, content_type: str = wire.JSON_TYPE):
        """Write the whole reply, or the fault owed instead of it (a status with an empty
        body, or a reset); returns ``finish()``'s Future, or None after a reset."""
        fault = self._after
        if fault is not None and fault.kind == "reset":
            self.reset_connection()
            return None
        if fault is not None:
            self.clear_header("Set-Cookie")
            self.set_status(fault.status)
            return self.finish()
        self.set_header("Content-Type", content_type)
        return self.finish(body)

    def reply_json(self, value):
        return self.reply(wire.dumps(value))

    def reset_connection(self) -> None:
        """Drop the connection with a TCP reset instead of answering (fault "reset")."""
        stream = self.detach()
        if stream.socket is not None:
            # SO_LINGER on with a zero timeout: close() sends RST, not FIN.
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.close()

    def cookie_values(self) -> dict:
        """The request's cookies, name -> value, as ``request.cookies`` reads them."""
        return self.application.cookie_values.of(self.request)

    def arg(self, name: str):
        """A query or form argument as str, or None when absent or not valid UTF-8."""
        try:
            return self.get_argument(name, None)
        except web.HTTPError:
            return None

    def log_exception(self, typ, value, tb):
        # Tornado's own version logs the query string and the headers (cookies).
        where = "%s %s%s" % (self.request.method, self.request.host_name, self.request.path)
        if isinstance(value, web.HTTPError):
            log.info("%s: HTTP %d", where, value.status_code)
        else:
            log.error("%s: unexpected error", where, exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        reason = http.client.responses.get(status_code, "Error")
        self.finish(("%d %s\n" % (status_code, reason)).encode("utf-8"))


# --- login server (§3.1 - §3.5) ----------------------------------------------------------

class CheckHandler(ProtocolHandler):
    """GET check.ptlogin2.qq.com/check (also ssl.ptlogin2): ``ptui_checkVC(…);``."""

    def get(self):
        answer = self.backend.login.check(self.arg("uin") or "")
        for cookie in answer.cookies:
            self.add_header("Set-Cookie", cookie)
        self.reply(wire.ptui_callback("ptui_checkVC", answer.flag, answer.code,
                                      answer.uin_bytes, escape=False), wire.JS_TYPE)


class CaptchaHandler(ProtocolHandler):
    """GET ssl.captcha.qq.com/getimage: a JPEG, the code bound to ``verifysession``."""

    def get(self):
        image, cookie = self.backend.login.captcha_image(self.arg("uin") or "")
        self.add_header("Set-Cookie", cookie)
        self.reply(image, wire.JPEG_TYPE)


class LoginHandler(ProtocolHandler):
    """GET ssl.ptlogin2.qq.com/login (also http ptlogin2): ``ptuiCB(…);``."""

    def reply_retcode(self, retcode: int):
        # A fault on /login answers in the login server's own code space (§3.4).
        outcome = self.backend.login.failure(str(retcode), "0", self.arg("u") or "")
        return self._reply_outcome(outcome)

    def get(self):
        query = {name: self.arg(name) or "" for name in self.request.query_arguments}
        self._reply_outcome(self.backend.login.login(query, self.cookie_values()))

    def _reply_outcome(self, outcome):
        for cookie in outcome.cookies:
            self.add_header("Set-Cookie", cookie)
        return self.reply(wire.ptui_callback("ptuiCB", outcome.code, outcome.subcode,
                                             outcome.url, "0", outcome.message, outcome.nick,
                                             last_spaced=True), wire.JS_TYPE)


class LoginPageHandler(ProtocolHandler):
    """GET ui.ptlogin2.qq.com/cgi-bin/login: the login page; in Era B it carries a
    g_login_sig."""

    def get(self):
        line = ""
        if self.sim.options.era == "B":
            line = _LOGIN_SIG_LINE % self.backend.login.issue_login_sig()
        self.reply((_LOGIN_PAGE % line).encode("utf-8"), wire.HTML_TYPE)


class VersionHandler(ProtocolHandler):
    """GET ui.ptlogin2.qq.com/cgi-bin/ver (§3.1)."""

    def get(self):
        self.reply(b"ptuiV(201205211530);", wire.JS_TYPE)


class CheckSigHandler(ProtocolHandler):
    """GET ptlogin4.web2.qq.com/check_sig (Era B, §3.5): cookies, then 302 to s_url."""

    def get(self):
        query = {name: self.arg(name) or "" for name in ("uin", "ptsig", "s_url")}
        result = self.backend.login.check_sig(query)
        if result is None:
            self.set_status(403)
            self.reply(b"check_sig: ptsig is not valid\n", "text/plain; charset=utf-8")
            return
        location, cookies = result
        if self._after is not None:     # the cookies were granted; the answer is lost
            self.reply(b"")
            return
        for cookie in cookies:
            self.add_header("Set-Cookie", cookie)
        self.redirect(location, status=302)


class LoginProxyHandler(ProtocolHandler):
    """GET web2.qq.com/loginproxy.html: the redirect target, a blank page."""

    def get(self):
        self.reply(_LOGIN_PROXY_PAGE.encode("utf-8"), wire.HTML_TYPE)


class HeartbeatHandler(ProtocolHandler):
    """GET web.qq.com/web2/get_msg_tip (§3.16): nobody parsed it; liveness ignores it.

    §8.11 leaves the body uncertain; no client read it, so the [sim] body is served.
    """

    def get(self):
        self.reply_json({"retcode": 0, "result": {}})


# --- d.web2 and s.web2 (§3.6 - §3.23) ----------------------------------------------------

class _ApiHandler(ProtocolHandler):
    """Shared by d.web2 and s.web2: Referer policy, the ``r`` field, dispatch by name.

    Subclasses list their calls in ``GET_CALLS``/``POST_CALLS`` (name -> method name)
    and say which retcode a refused Referer gets (§1.4 [sim]: "as for a missing cookie").
    """

    GET_CALLS: dict = {}
    POST_CALLS: dict = {}
    REFERER_REFUSAL: dict = {}

    def referer_ok(self) -> bool:
        policy = self.sim.options.referer
        referer = self.request.headers.get("Referer", "")
        if policy == "none":
            return True
        if policy == "strict":
            return referer in KNOWN_REFERERS
        host = urlsplit(referer).hostname or ""
        return host == "qq.com" or host.endswith(".qq.com")

    def r_object(self) -> "dict | None":
        """The form field ``r`` as a JSON object, or None when absent or malformed."""
        return wire.json_object(self.arg("r"))

    async def _dispatch(self, calls: dict, name: str):
        method = calls.get(name)
        if method is None:
            raise web.HTTPError(404 if name not in self.GET_CALLS and name not in self.POST_CALLS
                                else 405)
        if not self.referer_ok():
            log.info("%s%s refused: Referer not accepted", self.request.host_name,
                     self.request.path)
            self.reply_json(self.REFERER_REFUSAL)
            return
        try:
            await getattr(self, method)()
        except Refusal as refusal:
            self.reply_json(refusal.body)

    async def get(self, name):
        await self._dispatch(self.GET_CALLS, name)

    async def post(self, name):
        await self._dispatch(self.POST_CALLS, name)


class ChannelHandler(_ApiHandler):
    """d.web2.qq.com/channel/<call>: login2, poll2, sends, status, logout, lists."""

    POST_CALLS = {"login2": "login2", "poll2": "poll2",
                  "send_buddy_msg2": "send_buddy", "send_qun_msg2": "send_group",
                  "send_discu_msg2": "send_discussion", "send_sess_msg2": "send_session"}
    GET_CALLS = {"get_c2cmsg_sig2": "c2c_sig", "change_status2": "change_status",
                 "logout2": "logout", "get_discu_list_new2": "discussion_list",
                 "get_discu_info": "discussion_info", "get_online_buddies2": "online_buddies"}
    REFERER_REFUSAL = {"retcode": 103, "errmsg": ""}

    # The held poll, for on_connection_close: (session, future) while waiting.
    _held = None

    def _session_from_r(self, r: "dict | None", purpose: str):
        """Session named by ``r`` (clientid/psessionid there, else the form fields).

        §3.18 (uncertain which one the server read): pual_bot@54b74d7 named the form field
        ``sessionid`` yet worked, so ``r`` comes first.
        """
        if r is None:
            raise Refusal(100006, errmsg="")
        psessionid = r.get("psessionid") or self.arg("psessionid")
        clientid = r.get("clientid", self.arg("clientid"))
        return self.backend.sessions.channel_session(self.cookie_values(), psessionid, clientid, purpose)

    def _session_from_query(self, purpose: str = "call"):
        return self.backend.sessions.channel_session(self.cookie_values(), self.arg("psessionid"),
                                            self.arg("clientid"), purpose)

    def _vf_session(self):
        return self.backend.sessions.discussion_session(self.cookie_values(), self.arg("psessionid"),
                                               self.arg("clientid"), self.arg("vfwebqq"))

    async def login2(self):
        self.reply_json(self.backend.sessions.login2(self.cookie_values(), self.arg("r"),
                                            self.arg("clientid"), self.request.remote_ip))

    async def poll2(self):
        """The long poll (§3.15): held until an event, a 116/121 or the hold time."""
        session = self._session_from_r(self.r_object(), "poll")
        future = session.begin_poll()
        if not future.done():
            self._held = (session, future)
            timer = self.sim.call_later(self.sim.poll_hold, session.end_hold, future)
            try:
                await future
            finally:
                self._held = None
                self.sim.cancel_timer(timer)
        answer = future.result()
        if answer is not None:          # None: the connection or the simulator closed
            await self._deliver(answer, session.qq)

    async def _deliver(self, answer, qq: int):
        """Write a poll answer; put its items back if they could not be written.

        docs/protocol.rst describes no acknowledgement of poll answers (``ids`` is always
        empty), so this is our design: bytes the kernel accepted count as delivered (the
        server cannot know more; clients de-duplicate by msg_id/msg_id2, §3.15), while a
        connection closed before the write, broken during it, or reset by a fault returns
        the items to the queue in their original order.
        """
        stream = self.request.connection.stream
        if self._after is not None or stream.closed():
            if answer.restore is not None:
                answer.restore()
            if self._after is not None:
                self.reply(b"")         # the fault instead: a status or a reset
            return
        written = self.reply_json(answer.body)
        self.backend.tell("answered", qq=qq, body=answer.body)
        try:
            await written
        except iostream.StreamClosedError:
            pass
        if stream.error is not None and answer.restore is not None:
            answer.restore()

    def on_connection_close(self):
        if self._held is not None:
            session, future = self._held
            session.abandon(future)

    async def _send(self, kind: str):
        r = self.r_object()
        session = self._session_from_r(r, "send")
        self.reply_json(self.backend.chat.send(session, kind, r))

    async def send_buddy(self):
        await self._send("buddy")

    async def send_group(self):
        await self._send("group")

    async def send_discussion(self):
        await self._send("discussion")

    async def send_session(self):
        await self._send("session")

    async def c2c_sig(self):
        session = self._session_from_query()
        self.reply_json(self.backend.chat.c2c_sig(session, self.arg("id"), self.arg("to_uin"),
                                             self.arg("service_type")))

    async def change_status(self):
        session = self._session_from_query()
        self.reply_json(self.backend.sessions.change_status(session, self.arg("newstatus")))

    async def logout(self):
        self.reply_json(self.backend.sessions.logout(self._session_from_query()))

    async def discussion_list(self):
        if self.sim.options.discussion_list == "s.web2":
            raise web.HTTPError(404)
        self.reply_json(self.backend.lists.discussion_list(self._vf_session()))

    async def discussion_info(self):
        self.reply_json(self.backend.lists.discussion_info(self._vf_session(), self.arg("did")))

    async def online_buddies(self):
        self.reply_json(self.backend.lists.online_buddies(self._session_from_query()))


class InfoHandler(_ApiHandler):
    """s.web2.qq.com/api/<call>: friends, groups, group info, discussions, lookups."""

    POST_CALLS = {"get_user_friends2": "friends", "get_group_name_list_mask2": "group_list"}
    GET_CALLS = {"get_group_info_ext2": "group_info", "get_discus_list": "discussion_list",
                 "get_friend_uin2": "friend_uin", "get_single_long_nick2": "long_nick"}
    REFERER_REFUSAL = {"retcode": 100101}

    def _r_session(self):
        r = self.r_object()
        if r is None:
            raise Refusal(100003)       # §6: unparseable r on s.web2
        return r, self.backend.sessions.info_session(self.cookie_values(), r.get("vfwebqq"))

    def _query_session(self):
        return self.backend.sessions.info_session(self.cookie_values(), self.arg("vfwebqq"))

    async def friends(self):
        r, session = self._r_session()
        self.reply_json(self.backend.lists.friends(session, r))

    async def group_list(self):
        _, session = self._r_session()
        self.reply_json(self.backend.lists.group_list(session))

    async def group_info(self):
        self.reply_json(self.backend.lists.group_info(self._query_session(), self.arg("gcode")))

    async def discussion_list(self):
        if self.sim.options.discussion_list == "d.web2":
            raise web.HTTPError(404)
        self.reply_json(self.backend.lists.discussion_list(self._query_session()))

    async def friend_uin(self):
        self.reply_json(self.backend.lists.friend_uin(self._query_session(), self.arg("tuin"),
                                                self.arg("type")))

    async def long_nick(self):
        self.reply_json(self.backend.lists.long_nick(self._query_session(), self.arg("tuin")))


class NotFoundHandler(ProtocolHandler):
    """Any path or host the simulator does not serve: 404 (§2.5)."""

    def prepare(self):
        raise web.HTTPError(404)


# Host -> routes. A host served on both ports has the same routes on both. §8.1: /check
# is served on check.ptlogin2 (pual_bot, IQ, LQ, MC) and ssl.ptlogin2 (TW's doc), /login
# on ssl.ptlogin2 (pual_bot, TW) and plain ptlogin2 (IQ, LQ, MC).
_ROUTES = {
    "check.ptlogin2.qq.com": [("/check", CheckHandler)],
    "ssl.ptlogin2.qq.com": [("/check", CheckHandler), ("/login", LoginHandler)],
    "ptlogin2.qq.com": [("/login", LoginHandler)],
    "ui.ptlogin2.qq.com": [("/cgi-bin/login", LoginPageHandler), ("/cgi-bin/ver", VersionHandler)],
    "ssl.captcha.qq.com": [("/getimage", CaptchaHandler)],
    "captcha.qq.com": [("/getimage", CaptchaHandler)],
    "ptlogin4.web2.qq.com": [("/check_sig", CheckSigHandler)],
    "web2.qq.com": [("/loginproxy.html", LoginProxyHandler), ("/web2/get_msg_tip", HeartbeatHandler)],
    "web.qq.com": [("/loginproxy.html", LoginProxyHandler), ("/web2/get_msg_tip", HeartbeatHandler)],
    "webqq.qq.com": [("/web2/get_msg_tip", HeartbeatHandler)],
    # check_sig's 302 target in Era B: the u1 that pual_bot@ce65a04 and twqq sent.
    "www.qq.com": [("/loginproxy.html", LoginProxyHandler)],
    "d.web2.qq.com": [(r"/channel/(\w+)", ChannelHandler)],
    "s.web2.qq.com": [(r"/api/(\w+)", InfoHandler)],
}


# The hosts a logged-in client calls for every message (polls, sends, lookups): their
# routes are tried first.
_BUSY_HOSTS = ("d.web2.qq.com", "s.web2.qq.com")


def _log_request(handler) -> None:
    """One line per request, without the query string (it carries secrets)."""
    if not log.isEnabledFor(logging.INFO):
        return
    request = handler.request
    log.info("%s %s%s %d %.1fms", request.method, request.host_name, request.path,
             handler.get_status(), 1000.0 * request.request_time())


def make_application(sim, hosts, extra_handlers=(), more_routes=None) -> web.Application:
    """The Tornado application of one port: ``hosts`` routed by the Host header.

    Args:
        sim: the Simulator (handlers reach the back end, faults and timers through it).
        hosts: the host names this port serves.
        extra_handlers: routes for any Host (the /_sim/ control surface on the plain port).
        more_routes: host -> routes tried before this module's own for that host
            (mediaapp.py's endpoints; a host may have only these).
    """
    args = {"sim": sim}
    app = web.Application([(path, handler, args) for path, handler in extra_handlers],
                          default_handler_class=NotFoundHandler, default_handler_args=args,
                          log_function=_log_request)
    app.cookie_values = CookieValues()
    more_routes = more_routes or {}
    # Tornado tries the host rules in the order they were added; each matches one name
    # exactly, so the order changes nothing but how many a request tries first.
    for host in sorted(hosts, key=lambda name: name not in _BUSY_HOSTS):
        routes = more_routes.get(host, []) + _ROUTES.get(host, [])
        app.add_handlers(re.escape(host) + "$",
                         [(path, handler, args) for path, handler in routes])
    return app
