"""Helpers of the simulator tests: a plain-urllib "browser" routed to a Simulator.

No webqq client code is used against the simulator: requests are built with urllib and
http.client, as a 2013 script would have, and run in the IOLoop's executor so that the
simulator's IOLoop never blocks. The password oracle below is written from docs/protocol.rst
§4.1 independently of webqq.qq, so a mistake there cannot hide here.
"""
import asyncio
import functools
import hashlib
import http.client
import http.cookiejar
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

import pytest
from tornado.ioloop import IOLoop

from webqq.simulator import Simulator
from webqq.simulator.session import Session
from webqq.simulator.world import DEFAULT_WORLD_FILE

D_REFERER3 = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=3"
S_REFERER = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1"
PASSWORD = "webqq-demo"
CHECK_RE = re.compile(r"ptui_checkVC\('([01])','([^']*)','((?:\\x[0-9a-f]{2}){8})'\);\Z")
LOGIN_RE = re.compile(r"ptuiCB\('(\d+)','(\d+)','([^']*)','0','([^']*)', '([^']*)'\);\Z")


def expected_p(password: str, uin_bytes: bytes, code: str) -> str:
    """docs/protocol.rst §4.1, written out again: md5(hex(md5(md5(pw) + uin)) + CODE)."""
    inner = hashlib.md5(password.encode()).digest()
    h1 = hashlib.md5(inner + uin_bytes).hexdigest().upper()
    return hashlib.md5((h1 + code.upper()).encode()).hexdigest().upper()


def uin_bytes_of(literal: str) -> bytes:
    return bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", literal))


class Reply:
    """An HTTP answer read whole: status, headers, body."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def set_cookies(self) -> list:
        return self.headers.get_all("Set-Cookie") or []


class _RoutedHTTPConnection(http.client.HTTPConnection):
    """Connects to the simulator's address for the host; the Host header stays the name."""

    def __init__(self, host, *, routes, **kwargs):
        super().__init__(host, **kwargs)
        self._routes = routes

    def connect(self):
        self.sock = socket.create_connection(self._routes[self.host], self.timeout)


class _RoutedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, *, routes, tls, **kwargs):
        super().__init__(host, context=tls, **kwargs)
        self._routes, self._tls = routes, tls

    def connect(self):
        sock = socket.create_connection(self._routes[self.host], self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _RoutedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, routes):
        super().__init__()
        self.routes = routes

    def http_open(self, req):
        return self.do_open(_RoutedHTTPConnection, req, routes=self.routes)


class _RoutedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, routes, tls):
        super().__init__(context=tls)
        self.routes, self.tls = routes, tls

    def https_open(self, req):
        return self.do_open(_RoutedHTTPSConnection, req, routes=self.routes, tls=self.tls)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def tls_context(sim) -> ssl.SSLContext:
    """A default client context that trusts the simulator's CA, strict X.509 checks on."""
    context = ssl.create_default_context(cafile=sim.ca_file)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


class Browser:
    """One client's cookie jar and opener; blocking calls, plus async wrappers."""

    def __init__(self, sim, routes=None):
        self.sim = sim
        self.jar = http.cookiejar.CookieJar()
        routes = routes or sim.hosts
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _RoutedHTTPHandler(routes),
            _RoutedHTTPSHandler(routes, tls_context(sim)), _NoRedirect())
        self.session = {}

    def fetch(self, url, form=None, headers=None) -> Reply:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read())

    async def get(self, url, headers=None) -> Reply:
        return await in_thread(self.fetch, url, None, headers)

    async def post(self, url, form, headers=None) -> Reply:
        return await in_thread(self.fetch, url, form, headers)

    def cookie(self, name):
        found = [c for c in self.jar if c.name == name]
        assert len(found) == 1, "cookie %s: %r" % (name, found)
        return found[0]

    def set_cookie(self, name, value, domain=".qq.com"):
        cookie = self.cookie(name)
        cookie.value = value
        assert cookie.domain == domain

    # --- the 2013 sequence, blocking (run it with in_thread) -------------------------

    def check(self, qq) -> tuple:
        reply = self.fetch("http://check.ptlogin2.qq.com/check?uin=%d&appid=1003903&r=0.63" % qq)
        match = CHECK_RE.match(reply.text)
        assert match, reply.text
        return match.group(1), match.group(2), uin_bytes_of(match.group(3))

    def login(self, qq, password=PASSWORD, code=None, uin_bytes=None, **change) -> Reply:
        """/login with pual_bot's Era A parameters; ``change`` replaces or adds some
        (``daid=164``, ``login_sig=…``), None leaves one out."""
        if code is None:
            flag, code, uin_bytes = self.check(qq)
            assert flag == "0"
        params = dict([
            ("u", qq), ("p", expected_p(password, uin_bytes, code)), ("verifycode", code),
            ("webqq_type", 10), ("remember_uin", 1), ("login2qq", 1), ("aid", 1003903),
            ("u1", "http://www.qq.com"), ("h", 1), ("ptredirect", 0), ("ptlang", 2052),
            ("from_ui", 1), ("pttype", 1), ("dumy", ""), ("fp", "loginerroralert"),
            ("mibao_css", "m_webqq"), ("t", 1), ("g", 1), ("js_type", 0), ("js_ver", 10021)])
        params.update(change)
        query = urllib.parse.urlencode([(k, v) for k, v in params.items() if v is not None])
        return self.fetch("https://ssl.ptlogin2.qq.com/login?" + query)

    def login2(self, clientid="53999199", ptwebqq=None) -> Reply:
        ptwebqq = ptwebqq or self.cookie("ptwebqq").value
        r = {"status": "online", "ptwebqq": ptwebqq, "passwd_sig": "", "clientid": clientid,
             "psessionid": None}
        reply = self.fetch("http://d.web2.qq.com/channel/login2",
                           {"r": json.dumps(r), "clientid": clientid, "psessionid": "null"},
                           {"Referer": D_REFERER3, "Origin": "http://d.web2.qq.com"})
        body = reply.json()
        if body["retcode"] == 0:
            self.session = {"clientid": clientid, "psessionid": body["result"]["psessionid"],
                            "vfwebqq": body["result"]["vfwebqq"], "uin": body["result"]["uin"]}
        return reply

    def sign_in(self, qq=10001, clientid="53999199") -> dict:
        """check, login, login2: the whole Era A sequence; returns the session tokens."""
        reply = self.login(qq)
        assert LOGIN_RE.match(reply.text).group(1) == "0", reply.text
        assert self.login2(clientid).json()["retcode"] == 0
        return self.session

    def poll(self, session=None) -> Reply:
        s = session or self.session
        r = {"clientid": int(s["clientid"]), "psessionid": s["psessionid"], "key": 0, "ids": []}
        return self.fetch("http://d.web2.qq.com/channel/poll2",
                          {"r": json.dumps(r), "clientid": s["clientid"],
                           "psessionid": s["psessionid"]},
                          {"Referer": "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"})

    def send(self, call, r: dict, content=("hello",)) -> Reply:
        font = ["font", {"name": "Monospace", "size": 10, "style": [0, 0, 0], "color": "000000"}]
        body = dict(r)
        body.setdefault("content", json.dumps(list(content) + [font]))
        body.setdefault("msg_id", 21870001)
        body.update(clientid=int(self.session["clientid"]), psessionid=self.session["psessionid"])
        return self.fetch("http://d.web2.qq.com/channel/" + call,
                          {"r": json.dumps(body), "clientid": self.session["clientid"],
                           "psessionid": self.session["psessionid"]}, {"Referer": D_REFERER3})

    def channel_get(self, call, **query) -> Reply:
        query.setdefault("clientid", self.session["clientid"])
        query.setdefault("psessionid", self.session["psessionid"])
        query.setdefault("t", 1366948800)
        return self.fetch("http://d.web2.qq.com/channel/%s?%s"
                          % (call, urllib.parse.urlencode(query)), headers={"Referer": D_REFERER3})

    def info_get(self, call, **query) -> Reply:
        query.setdefault("vfwebqq", self.session["vfwebqq"])
        query.setdefault("t", 1366948800)
        return self.fetch("http://s.web2.qq.com/api/%s?%s" % (call, urllib.parse.urlencode(query)),
                          headers={"Referer": S_REFERER})

    def info_post(self, call, r: dict) -> Reply:
        r = dict(r)
        r.setdefault("vfwebqq", self.session["vfwebqq"])
        return self.fetch("http://s.web2.qq.com/api/" + call, {"r": json.dumps(r)},
                          {"Referer": S_REFERER, "Origin": "http://s.web2.qq.com"})

    # --- the control surface ---------------------------------------------------------

    def control(self, verb, body=None, method=None, headers=None) -> Reply:
        """A /_sim/ call with the simulator's token (and a JSON Content-Type for a body);
        ``headers`` adds or overrides headers (None as a value leaves one out)."""
        url = "http://127.0.0.1:%d/_sim/%s" % (self.sim.port, verb)
        data = None if body is None else json.dumps(body).encode()
        sent = control_headers(self.sim, data is not None)
        sent.update(headers or {})
        request = urllib.request.Request(
            url, data=data, method=method,
            headers={name: value for name, value in sent.items() if value is not None})
        opener = urllib.request.build_opener()
        try:
            with opener.open(request, timeout=10) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read())


def control_headers(sim, json_body: bool = True) -> dict:
    """The headers a /_sim/ request needs: the token, and the type of a JSON body."""
    headers = {"X-Sim-Token": sim.control_token}
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


def default_world(**options) -> dict:
    """The built-in world as a dict, with ``options`` set."""
    with open(DEFAULT_WORLD_FILE, encoding="utf-8") as f:
        world = json.load(f)
    world["options"] = options
    return world


def in_thread(function, *args, **kwargs) -> asyncio.Future:
    """Start blocking ``function`` in the executor, off the simulator's IOLoop.

    Returns the Future at once (the call is already running): await it now, or later.
    """
    return IOLoop.current().run_in_executor(None, functools.partial(function, *args, **kwargs))


def start_simulator(io_loop, request, **kwargs) -> Simulator:
    """A Simulator on loopback with a small hold, stopped (and drained) after the test."""
    kwargs.setdefault("poll_hold", 0.3)
    kwargs.setdefault("seed", 2013)
    sim = Simulator(**kwargs)
    request.addfinalizer(lambda: io_loop.run_sync(sim.stop))
    return sim


@pytest.fixture
def sim(io_loop, request):
    return start_simulator(io_loop, request)


@pytest.fixture
def browser(sim):
    return Browser(sim)


@pytest.fixture
def held_polls(monkeypatch):
    """An asyncio.Queue that receives the QQ number of every poll2 the simulator holds."""
    queue = asyncio.Queue()
    original = Session.begin_poll

    def begin_poll(session):
        future = original(session)
        if not future.done():
            queue.put_nowait(session.qq)
        return future
    monkeypatch.setattr(Session, "begin_poll", begin_poll)
    return queue


async def next_held(queue, qq, timeout=5):
    """Wait until a poll of ``qq`` is held by the simulator."""
    while True:
        if await asyncio.wait_for(queue.get(), timeout) == qq:
            return
