"""The chat page's Tornado handlers: the page, its files, and its live WebSocket feed.

handlers: serves ``index.html`` at ``/`` with the control token written into it
(the page's operator buttons call /_sim/ with it, as any client must), the files under
``static/`` at ``/_chat/static/``, and the feed of ``feed.ChatFeed`` at ``/_chat/feed``.

It guards the token, which is what keeps other web sites from driving the simulator:
the page is served only to a loopback Host (a site that rebinds its own name to
127.0.0.1 gets a 404, never the token), with a Content-Security-Policy that runs the
page's own script only and no framing; the feed needs the token and, from a browser,
the page's own Origin. It never logs a query string (the feed's carries the token) and
never writes message text into HTML: the page's script renders every message as text.
"""
import hmac
import http.client
import json
import logging
import os
from urllib.parse import urlsplit

from tornado import httputil, template, web, websocket

__all__ = ["ChatPageHandler", "FeedSocket", "StaticHandler", "STATIC_DIR", "TOKEN_HEADER",
           "routes"]

log = logging.getLogger("webqq.simulator")

_HERE = os.path.dirname(os.path.abspath(__file__))
#: The page's files (CSS, JavaScript, pictures), all in the package; the page itself,
#: a template for the token, is ``index.html`` beside this module.
STATIC_DIR = os.path.join(_HERE, "static")

#: The header a non-browser client may carry the control token in (the page's script
#: sends it on every /_sim/ call; a browser's WebSocket cannot set headers, so the feed
#: also takes ``?token=``).
TOKEN_HEADER = "X-Sim-Token"

# Names under which a browser on this machine reaches the simulator.
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: The page runs its own script and style only, connects only to its own origin (its
#: /_sim/ calls and feed), shows pictures from the package only, and cannot be framed.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")


def _is_local(name: str, port, sim) -> bool:
    """Whether host ``name`` and ``port`` (None: 80) name this simulator's plain port."""
    return (name in _LOOPBACK or name == sim.host) and (port or 80) == sim.port


def local_host(host_header: str, sim) -> bool:
    """Whether a request's Host header names the simulator on a loopback name."""
    name, port = httputil.split_host_and_port(host_header.lower())
    return _is_local(name.strip("[]"), port, sim)


def local_origin(origin: str, sim) -> bool:
    """Whether an Origin header is the page's own (http on a loopback name, our port)."""
    try:
        parts = urlsplit(origin.lower())
        return parts.scheme == "http" and _is_local(parts.hostname or "", parts.port, sim)
    except ValueError:                                  # a malformed port
        return False


def presented_token(request) -> str:
    """The token a request carries: ``X-Sim-Token``, ``Authorization: Bearer`` or
    ``?token=`` (the browser's WebSocket), or ""."""
    token = request.headers.get(TOKEN_HEADER)
    if token is None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else ""
    if not token:
        values = request.query_arguments.get("token")
        token = values[0].decode("utf-8", "replace") if values else ""
    return token


def token_matches(presented: str, token: str) -> bool:
    """Constant-time comparison; an empty token never matches."""
    return bool(presented) and hmac.compare_digest(presented.encode("utf-8", "replace"),
                                                   token.encode("utf-8"))


class _Quiet:
    """Logging of the web handlers: no query string, no headers (they carry the token)."""

    def log_exception(self, typ, value, tb):
        if not isinstance(value, web.HTTPError):
            log.error("%s %s: unexpected error", self.request.method, self.request.path,
                      exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        reason = http.client.responses.get(status_code, "Error")
        self.finish(("%d %s\n" % (status_code, reason)).encode("utf-8"))


class ChatPageHandler(_Quiet, web.RequestHandler):
    """GET /: the chat page, with this run's control token in a ``<meta>`` element."""

    _template = None                    # the compiled index.html, shared

    def initialize(self, sim):
        self.sim = sim

    def compute_etag(self):
        return None                     # the page carries a per-run token: never cached

    def get(self):
        if not local_host(self.request.host, self.sim):
            raise web.HTTPError(404)
        if ChatPageHandler._template is None:
            with open(os.path.join(_HERE, "index.html"), "rb") as page:
                ChatPageHandler._template = template.Template(page.read(), name="index.html")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.finish(self._template.generate(token=self.sim.control_token,
                                            header=TOKEN_HEADER))


class StaticHandler(_Quiet, web.StaticFileHandler):
    """GET /_chat/static/FILE: the page's CSS, JavaScript and pictures."""

    def initialize(self, sim):
        super().initialize(path=STATIC_DIR)

    def set_extra_headers(self, path):
        self.set_header("X-Content-Type-Options", "nosniff")


class FeedSocket(_Quiet, websocket.WebSocketHandler):
    """GET /_chat/feed: the ChatFeed as JSON text frames, first ``hello``, then each event.

    Needs the control token (header or ``?token=``) and, from a browser, the page's own
    Origin. What a client sends is ignored: the page speaks through /_sim/.
    """

    def initialize(self, sim):
        self.sim = sim
        self._unsubscribe = None

    def prepare(self):
        if not local_host(self.request.host, self.sim):
            raise web.HTTPError(404)
        if not token_matches(presented_token(self.request), self.sim.control_token):
            log.info("chat feed refused: no or wrong control token")
            raise web.HTTPError(403)

    def check_origin(self, origin: str) -> bool:
        return local_origin(origin, self.sim)

    def open(self):
        feed = self.sim.chat_feed
        self._send(feed.hello())
        self._unsubscribe = feed.subscribe(self._send)

    def _send(self, event: dict) -> None:
        try:
            self.write_message(json.dumps(event, ensure_ascii=False))
        except websocket.WebSocketClosedError:
            self._stop()

    def on_message(self, message):
        pass

    def on_close(self):
        self._stop()

    def _stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


def routes() -> list:
    """(path, handler) pairs for the plain port, any Host (``make_application``)."""
    return [(r"/", ChatPageHandler), (r"/_chat/static/(.+)", StaticHandler),
            (r"/_chat/feed", FeedSocket)]
