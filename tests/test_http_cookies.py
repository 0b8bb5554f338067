"""CachingCookieJar sends what the stdlib's CookieJar sends, at the moment it sends it:
through HTTPStream against Tornado servers on loopback (the WebQQ host names mapped to
127.0.0.1), and step by step beside a plain CookieJar under a clock the test moves."""
import random
import ssl
import time
from http import cookiejar
from urllib.request import Request

import pytest
import trustme
from tornado import httpserver, netutil, web

import webqq.http.cookies
from conftest import settle
from webqq.daemon.logs import MaskingCookieJar, SecretMask
from webqq.http.cookies import MAX_CACHED_URLS, CachingCookieJar
from webqq.http.scope import CookieScope
from webqq.http_stream import HTTPStream, RetryPolicy

HOSTS = ("d.web2.qq.com", "s.web2.qq.com", "web.qq.com")


class Echo(web.RequestHandler):
    def get(self):
        self.write({"cookie": self.request.headers.get("Cookie", "")})


class Grant(web.RequestHandler):
    """Sets the cookie its query describes, as Tencent writes them (raw value)."""

    def get(self):
        line = "%s=%s; Domain=%s; Path=%s" % (self.get_argument("name"),
                                              self.get_argument("value"),
                                              self.get_argument("domain", "qq.com"),
                                              self.get_argument("path", "/"))
        if self.get_argument("max_age", None):
            line += "; Max-Age=" + self.get_argument("max_age")
        if self.get_argument("secure", None):
            line += "; Secure"
        self.add_header("Set-Cookie", line)
        self.write("set")


class Clock:
    """``time`` with a ``time()`` the test sets."""

    def __init__(self):
        self.now = float(int(time.time()))

    def time(self):
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    """The clock both the stdlib's jar and ours read."""
    clock = Clock()
    monkeypatch.setattr(cookiejar, "time", clock)
    monkeypatch.setattr(webqq.http.cookies, "time", clock)
    return clock


@pytest.fixture
def certificate(tmp_path):
    """A server context for the WebQQ host names and the CA file that trusts it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS).configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


@pytest.fixture
def qq(io_loop):
    """``qq(ssl_options=None, **stream_options)``: an HTTPStream whose WebQQ host names
    reach a Tornado server on 127.0.0.1 (over TLS with ``ssl_options``)."""
    servers, streams = [], []

    def make(ssl_options=None, **options):
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = httpserver.HTTPServer(
            web.Application([("/grant", Grant), ("/.*", Echo)]), ssl_options=ssl_options)
        server.add_sockets(sockets)
        servers.append(server)
        port = sockets[0].getsockname()[1]
        made = HTTPStream(hosts={host: ("127.0.0.1", port) for host in HOSTS},
                          retry=RetryPolicy(attempts=1), **options)
        streams.append(made)
        return made

    yield make
    for made in streams:
        made.close()
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections)
    io_loop.run_sync(lambda: settle(io_loop))


async def sent(http, url, jar=None):
    """The Cookie header the server received for GET ``url``."""
    return (await http.fetch(Request(url), cookiejar=jar)).json()["cookie"]


async def grant(http, jar=None, url="http://s.web2.qq.com", **cookie):
    await http.fetch(Request(url + "/grant?" + "&".join(
        "%s=%s" % item for item in cookie.items())), cookiejar=jar)


def cookie(name, value, domain=".qq.com", path="/", secure=False, expires=None):
    return cookiejar.Cookie(0, name, value, None, False, domain, True, domain.startswith("."),
                            path, True, secure, expires, expires is None, None, None, {})


@pytest.fixture
def computed(monkeypatch):
    """How many times the stdlib worked out which cookies a request gets."""
    calls = []
    original = cookiejar.CookieJar._cookies_for_request

    def counted(self, request):
        calls.append(request.full_url)
        return original(self, request)

    monkeypatch.setattr(cookiejar.CookieJar, "_cookies_for_request", counted)
    return calls


# -- through HTTPStream -----------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_cookie_set_after_the_header_was_kept_is_sent_next_time(io_loop, no_leaks, qq):
    http = qq()
    await grant(http, name="skey", value="@FgMFRXQ6I")
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    await grant(http, name="ptwebqq", value="a3" * 24)
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == \
        "skey=@FgMFRXQ6I; ptwebqq=" + "a3" * 24
    # A poll's 116 replaces ptwebqq in the jar itself (webqq.client.session.set_cookie).
    http.cookiejar.set_cookie(cookie("ptwebqq", "b4" * 24))
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == \
        "skey=@FgMFRXQ6I; ptwebqq=" + "b4" * 24


@pytest.mark.gen_test
async def test_a_cookie_that_expires_is_no_longer_sent(io_loop, no_leaks, qq, clock):
    http = qq()
    await grant(http, name="skey", value="@FgMFRXQ6I")
    await grant(http, name="verifysession", value="v1", max_age="30")
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == \
        "skey=@FgMFRXQ6I; verifysession=v1"
    clock.now += 29
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == \
        "skey=@FgMFRXQ6I; verifysession=v1"
    clock.now += 1
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    assert [c.name for c in http.cookiejar] == ["skey"]     # dropped, as the stdlib does


@pytest.mark.gen_test
async def test_a_cleared_jar_sends_nothing(io_loop, no_leaks, qq):
    http = qq()
    await grant(http, name="skey", value="@FgMFRXQ6I")
    await grant(http, name="p_skey", value="Xy" * 22, domain="web2.qq.com")
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == \
        "skey=@FgMFRXQ6I; p_skey=" + "Xy" * 22
    http.cookiejar.clear(".web2.qq.com")
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    http.cookiejar.clear_session_cookies()
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == ""
    await grant(http, name="skey", value="@Second")
    http.cookiejar.clear()
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == ""


@pytest.mark.gen_test
async def test_each_host_and_path_gets_its_own_header(io_loop, no_leaks, qq):
    http = qq()
    await grant(http, name="skey", value="@FgMFRXQ6I")
    await grant(http, name="p_skey", value="Xy" * 22, domain="web2.qq.com")
    await grant(http, url="http://d.web2.qq.com", name="channel", value="c", domain="d.web2.qq.com",
                path="/channel")
    for url, header in [
            ("http://d.web2.qq.com/channel/poll2", "channel=c; skey=@FgMFRXQ6I; p_skey=XyXy"),
            ("http://d.web2.qq.com/api/x", "skey=@FgMFRXQ6I; p_skey=XyXy"),
            ("http://d.web2.qq.com/channelx", "skey=@FgMFRXQ6I; p_skey=XyXy"),
            ("http://s.web2.qq.com/channel/poll2", "skey=@FgMFRXQ6I; p_skey=XyXy"),
            ("http://web.qq.com/web2/get_msg_tip?t=1", "skey=@FgMFRXQ6I"),
            ("http://d.web2.qq.com/channel/poll2?n=1", "channel=c; skey=@FgMFRXQ6I; "
                                                      "p_skey=XyXy")]:
        assert await sent(http, url) == header.replace("XyXy", "Xy" * 22), url


@pytest.mark.gen_test
async def test_secure_cookies_go_over_https_only(io_loop, no_leaks, qq, certificate):
    context, ca_file = certificate
    plain = qq()
    tls = qq(ssl_options=context, ca_file=ca_file, cookiejar=plain.cookiejar)
    await grant(plain, name="skey", value="@FgMFRXQ6I")
    await grant(tls, url="https://s.web2.qq.com", name="pt4_token", value="9e" * 16,
                secure="1")
    assert await sent(plain, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    assert await sent(tls, "https://d.web2.qq.com/channel/poll2") == \
        "skey=@FgMFRXQ6I; pt4_token=" + "9e" * 16
    assert await sent(plain, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"


@pytest.mark.gen_test
async def test_the_default_jars_work_out_a_url_once_while_unchanged(io_loop, no_leaks, qq,
                                                                   computed):
    http = qq()
    scope = CookieScope(http)
    for jar in (http.cookiejar, scope.cookiejar):
        await grant(http, jar, name="skey", value="@FgMFRXQ6I")
        computed.clear()
        for n in range(3):
            assert await sent(http, "http://d.web2.qq.com/channel/poll2?n=%d" % n, jar) == \
                "skey=@FgMFRXQ6I"
        assert len(computed) == 1


@pytest.mark.gen_test
async def test_a_users_plain_cookie_jar_still_works(io_loop, no_leaks, qq):
    jar = cookiejar.CookieJar()
    http = qq(cookiejar=jar)
    await grant(http, name="skey", value="@FgMFRXQ6I")
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    jar.clear()
    assert await sent(http, "http://d.web2.qq.com/channel/poll2") == ""


# -- the jar alone ----------------------------------------------------------------------

def header(jar, url, **request):
    made = Request(url, **request)
    jar.add_cookie_header(made)
    return made.get_header("Cookie")


def test_an_accounts_masking_jar_keeps_its_headers_and_still_masks(computed):
    mask = SecretMask()
    jar = MaskingCookieJar(mask)
    jar.set_cookie(cookie("skey", "@AbCdEf123"))
    assert [header(jar, "http://d.web2.qq.com/channel/poll2") for _ in range(3)] == \
        ["skey=@AbCdEf123"] * 3
    assert len(computed) == 1
    assert mask.mask("skey=@AbCdEf123") == "skey=********"


def test_a_policy_changed_in_place_or_replaced_is_applied_at_once():
    jar = CachingCookieJar()
    jar.set_cookie(cookie("skey", "@FgMFRXQ6I"))
    policy = jar._policy
    assert header(jar, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    policy.set_blocked_domains([".qq.com"])
    assert header(jar, "http://d.web2.qq.com/channel/poll2") is None
    policy.set_blocked_domains([])
    assert header(jar, "http://d.web2.qq.com/channel/poll2") == "skey=@FgMFRXQ6I"
    jar.set_policy(cookiejar.DefaultCookiePolicy(netscape=False))
    assert header(jar, "http://d.web2.qq.com/channel/poll2") is None


def test_a_policy_of_its_own_kind_is_asked_every_time():
    class EveryOther(cookiejar.DefaultCookiePolicy):
        calls = 0

        def return_ok(self, cookie, request):
            EveryOther.calls += 1
            return EveryOther.calls % 2 == 1

    jar = CachingCookieJar(EveryOther())
    jar.set_cookie(cookie("skey", "@FgMFRXQ6I"))
    assert [header(jar, "http://d.web2.qq.com/channel/poll2") for _ in range(3)] == \
        ["skey=@FgMFRXQ6I", None, "skey=@FgMFRXQ6I"]


def test_a_request_with_its_own_cookie_header_keeps_it():
    jar = CachingCookieJar()
    jar.set_cookie(cookie("skey", "@FgMFRXQ6I"))
    assert header(jar, "http://d.web2.qq.com/x", headers={"Cookie": "mine=1"}) == "mine=1"
    assert header(jar, "http://d.web2.qq.com/x") == "skey=@FgMFRXQ6I"
    assert header(jar, "http://d.web2.qq.com/x", headers={"Cookie": "mine=1"}) == "mine=1"


def test_it_keeps_at_most_max_cached_urls_and_shares_equal_headers():
    jar = CachingCookieJar()
    jar.set_cookie(cookie("skey", "@FgMFRXQ6I"))
    for n in range(MAX_CACHED_URLS * 2):
        assert header(jar, "http://d.web2.qq.com/%d" % n) == "skey=@FgMFRXQ6I"
    assert len(jar._headers) == MAX_CACHED_URLS
    assert len({id(text) for text, _ in jar._headers.values()}) == 1


# -- step by step beside the stdlib -----------------------------------------------------

URLS = ["http://d.web2.qq.com/channel/poll2", "https://d.web2.qq.com/channel/poll2?x=1",
        "http://s.web2.qq.com/api/get_user_friends2", "http://s.web2.qq.com/api",
        "http://web.qq.com/web2/get_msg_tip?t=5", "http://d.web2.qq.com:8080/channel/x",
        "https://web2.qq.com/", "http://D.WEB2.qq.com/channel/", "http://qq.com/"]


def random_cookie(rng, now):
    domain = rng.choice([".qq.com", ".web2.qq.com", "d.web2.qq.com", "s.web2.qq.com"])
    port = rng.choice([None, None, "8080"])
    return cookiejar.Cookie(
        rng.choice([0, 0, 0, 1]), rng.choice(["skey", "ptwebqq", "uin", "p_skey"]),
        rng.choice(["a", "b c", "@x"]), port, port is not None, domain, domain.startswith("."),
        domain.startswith("."), rng.choice(["/", "/channel", "/api", "/channel/poll2"]), True,
        rng.random() < 0.3, rng.choice([None, None, now + 1, now + 2.5, now + 10, now - 1]),
        False, None, None, {})


@pytest.mark.parametrize("seed", range(8))
def test_step_by_step_it_sends_and_keeps_what_the_stdlib_does(clock, seed):
    rng = random.Random(seed)
    plain, caching = cookiejar.CookieJar(), CachingCookieJar()
    for step in range(400):
        action = rng.random()
        if action < 0.15:
            made = random_cookie(rng, clock.now)
            for jar in (plain, caching):
                jar.set_cookie(made)
        elif action < 0.2:
            made, request = random_cookie(rng, clock.now), Request(rng.choice(URLS))
            for jar in (plain, caching):
                jar.set_cookie_if_ok(made, request)
        elif action < 0.23:
            kept = list(plain)
            if kept:
                gone = rng.choice(kept)
                for jar in (plain, caching):
                    jar.clear(gone.domain, gone.path, gone.name)
        elif action < 0.25:
            sweep = rng.choice(["clear_session_cookies", "clear_expired_cookies"])
            for jar in (plain, caching):
                getattr(jar, sweep)()
        elif action < 0.4:
            clock.now += rng.choice([0.3, 0.5, 1, 2.5])
        else:
            url, options = rng.choice(URLS), {}
            if rng.random() < 0.1:
                options["headers"] = {"Cookie": "mine=1"}
            if rng.random() < 0.1:
                options.update(unverifiable=True, origin_req_host=rng.choice(
                    ["example.com", "web2.qq.com"]))
            sent = []
            for jar in (plain, caching):
                request = Request(url, **options)
                jar.add_cookie_header(request)
                sent.append(sorted(request.header_items()))
            assert sent[0] == sent[1], (seed, step, url)
        assert [(c.domain, c.path, c.name, c.value) for c in plain] == \
            [(c.domain, c.path, c.name, c.value) for c in caching], (seed, step)
