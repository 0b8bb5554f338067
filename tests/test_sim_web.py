"""The chat page's server side: the page and its token, its files, and the live feed.

The browser itself is driven in test_sim_web_browser.py; here a Tornado client checks
what the server promises: the token only for a loopback Host, a policy that runs the
page's own script only, every file in the package, and a feed that needs the token,
refuses other origins, and shows what people said and what the bot sent, in order.
"""
import json
import logging
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from client_helpers import online_client
from tornado import websocket
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from webqq.simulator.web import feed as feed_module
from webqq.simulator.web.feed import ChatFeed, page_pieces
from webqq.simulator.web.handlers import STATIC_DIR

WEB = Path(STATIC_DIR).parent


async def fetch(sim, path="/", **headers):
    request = HTTPRequest("http://127.0.0.1:%d%s" % (sim.port, path), headers=headers)
    return await AsyncHTTPClient().fetch(request, raise_error=False)


async def feed(sim, token=None, **headers):
    """A feed connection, and its hello."""
    token = sim.control_token if token is None else token
    request = HTTPRequest("ws://127.0.0.1:%d/_chat/feed?token=%s" % (sim.port, token),
                          headers=headers)
    connection = await websocket.websocket_connect(request)
    hello = json.loads(await connection.read_message())
    return connection, hello


async def next_of(connection, kind="message"):
    """The next feed event of ``kind`` (skipping the others)."""
    while True:
        event = json.loads(await connection.read_message())
        if event["type"] == kind:
            return event


def test_page_pieces_read_text_faces_and_every_picture_form():
    assert page_pieces(["hi ", ["face", 14], ["offpic", {"success": 1, "file_path": "/a1"}],
                        ["cface", {"name": "{AB}.jpg", "file_id": 1}], ["cface", "x.png", ""],
                        ["cface", "group", "g.jpg"], ["pic_id", "p9"], ["shake", 1]]) == [
        ["text", "hi "], ["face", 14], ["picture", "/a1"], ["picture", "{AB}.jpg"],
        ["picture", "x.png"], ["picture", "g.jpg"], ["picture", "p9"], ["text", "[shake]"]]


@pytest.mark.gen_test
async def test_the_page_carries_the_token_under_a_strict_policy(world):
    sim = world.sim
    for host in ("127.0.0.1:%d" % sim.port, "localhost:%d" % sim.port):
        page = await fetch(sim, Host=host)
        assert page.code == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        token = re.search(r'<meta name="sim-token" content="([^"]*)">', page.body.decode())
        assert token.group(1) == sim.control_token
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.gen_test(timeout=30)
async def test_the_page_s_token_opens_the_control_surface_as_its_buttons_call_it(world):
    """What chat.js sends for the Kick button: the page's token, JSON, its own Origin."""
    await online_client(world)
    sim = world.sim
    page = (await fetch(sim)).body.decode()
    token = re.search(r'<meta name="sim-token" content="([^"]*)">', page).group(1)
    header = re.search(r'<meta name="sim-token-header" content="([^"]*)">', page).group(1)
    kick = HTTPRequest("http://127.0.0.1:%d/_sim/kick" % sim.port, method="POST",
                       body=json.dumps({"account": 10001}),
                       headers={header: token, "Content-Type": "application/json",
                                "Origin": "http://127.0.0.1:%d" % sim.port})
    answer = await AsyncHTTPClient().fetch(kick, raise_error=False)
    assert (answer.code, json.loads(answer.body)) == (200, {"ok": True})
    del kick.headers[header]
    assert (await AsyncHTTPClient().fetch(kick, raise_error=False)).code == 403


@pytest.mark.gen_test
async def test_a_foreign_host_gets_neither_the_token_nor_the_feed(world):
    """DNS rebinding: a site pointing its own name at 127.0.0.1 is same-origin with the
    simulator in the browser's eyes; only the Host header tells it apart."""
    sim = world.sim
    for host in ("evil.example:%d" % sim.port, "127.0.0.1:1", "d.web2.qq.com"):
        page = await fetch(sim, Host=host)
        assert page.code == 404 and sim.control_token.encode() not in page.body
    with pytest.raises(HTTPClientError) as refused:
        await feed(sim, Host="evil.example:%d" % sim.port)
    assert refused.value.code == 404


@pytest.mark.gen_test
async def test_the_feed_needs_the_token_and_the_page_s_own_origin(world, caplog):
    sim = world.sim
    for token in ("", "wrong-token-123"):
        with pytest.raises(HTTPClientError) as refused:
            await feed(sim, token=token)
        assert refused.value.code == 403
    with pytest.raises(HTTPClientError) as foreign:
        await feed(sim, Origin="http://evil.example")
    assert foreign.value.code == 403
    connection, hello = await feed(sim, Origin="http://localhost:%d" % sim.port)
    assert hello["type"] == "hello"
    connection.close()
    assert sim.control_token not in caplog.text


def test_every_file_of_the_page_is_in_the_package_and_renders_text_only():
    names = ["index.html"] + [str(p.relative_to(WEB)) for p in (WEB / "static").rglob("*")
                              if p.is_file()]
    assert {"static/chat.js", "static/chat.css", "static/penguin.svg"} <= set(names)
    for name in names:
        text = (WEB / name).read_text(encoding="utf-8")
        # Nothing fetched from elsewhere: the only absolute URL is SVG's namespace name.
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)
    script = (WEB / "static" / "chat.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"style"):
        assert sink not in script, sink


@pytest.mark.gen_test
async def test_the_page_s_files_are_served(world):
    page = (await fetch(world.sim)).body.decode()
    for path in re.findall(r'(?:href|src)="(/_chat/static/[^"]+)"', page):
        answer = await fetch(world.sim, path)
        assert answer.code == 200, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert (await fetch(world.sim, "/_chat/static/../handlers.py")).code in (403, 404)


@pytest.mark.gen_test(timeout=30)
async def test_the_feed_shows_what_is_said_and_what_the_bot_sends(world):
    client, events = await online_client(world)
    connection, hello = await feed(world.sim)
    assert hello["accounts"]["10001"]["state"] == "online"
    people = {p["qq"]: p for p in hello["world"]["people"]}
    assert people[20001]["nick"] == "Alice" and people[10001]["account"]
    assert hello["world"]["groups"][0]["members"][0] == {"qq": 20001, "card": "Alice@work",
                                                         "admin": False}

    await world.control.say(**{"from": 20001, "content": ["<b>hi</b> ", ["face", 14]]})
    said = await next_of(connection)
    assert (said["direction"], said["account"], said["sender"], said["chat"]) == \
        ("in", 10001, 20001, {"kind": "buddy", "peer": 20001})
    assert said["pieces"] == [["text", "<b>hi</b> "], ["face", 14]]
    assert said["text"] == "<b>hi</b> " and said["time"] > 0

    await client.reply(await events.wait("message"), "hello Alice").done
    answer = await next_of(connection)
    assert (answer["direction"], answer["sender"], answer["chat"], answer["text"]) == \
        ("out", 10001, {"kind": "buddy", "peer": 20001}, "hello Alice")
    assert answer["seq"] == said["seq"] + 1 and answer["dropped"] is None

    await world.control.say(**{"from": 20002, "group": 30001, "text": "hi all"})
    in_group = await next_of(connection)
    assert (in_group["chat"], in_group["sender"]) == ({"kind": "group", "number": 30001}, 20002)
    await client.reply(await events.wait("message"), "hi group").done
    assert (await next_of(connection))["chat"] == {"kind": "group", "number": 30001}

    # A page opened later sees the same story in its hello.
    late, late_hello = await feed(world.sim)
    assert [e["text"] for e in late_hello["history"]] == [
        "<b>hi</b> ", "hello Alice", "hi all", "hi group"]
    assert late_hello["run"] == hello["run"] and late_hello["seq"] == answer["seq"] + 2
    connection.close()
    late.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_kick_reaches_the_feed_as_an_account_state(world):
    await online_client(world)
    connection, _ = await feed(world.sim)
    await world.control.call("kick", {"account": 10001})
    states = []
    while "online" not in states[1:]:
        states.append((await next_of(connection, "accounts"))["accounts"]["10001"]["state"])
    assert states[0] == "kicked"        # then webqq relinked
    connection.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_failing_listener_is_logged_and_the_others_still_hear(world, caplog):
    await online_client(world)

    def broken(kind, **fields):
        raise RuntimeError("listener bug")
    world.sim.backend.listeners.insert(0, broken)
    connection, _ = await feed(world.sim)
    with caplog.at_level(logging.ERROR, "webqq.simulator"):
        await world.control.say(**{"from": 20001, "text": "still heard"})
        assert (await next_of(connection))["text"] == "still heard"
    assert "simulator listener failed on 'said'" in caplog.text
    connection.close()


class _Backend:
    """Just what ChatFeed needs of a back end."""

    def __init__(self):
        self.listeners = []

    def report(self):
        return {}


def test_the_history_keeps_the_latest_events_only(monkeypatch):
    monkeypatch.setattr(feed_module, "HISTORY", 3)
    backend = _Backend()
    chat = ChatFeed(backend, world=None)
    record = type("Record", (), {"kind": "group", "to": 30001, "content": ["x"], "time": 1,
                                 "dropped": None})
    for _ in range(5):
        backend.listeners[0]("sent", account=10001, record=record)
    assert [e["seq"] for e in chat.history] == [3, 4, 5]


def test_the_accounts_report_is_built_only_while_someone_listens():
    # The report walks every account; built for nobody on each message, it was most of
    # the simulator's CPU with a thousand accounts (bench/sim_load.py).
    backend = _Backend()
    built = []
    backend.report = lambda: built.append(1) or {"10001": {"state": "online"}}
    chat = ChatFeed(backend, world=None)
    record = type("Record", (), {"kind": "buddy", "to": 20001, "content": ["x"], "time": 1,
                                 "dropped": None})
    backend.listeners[0]("sent", account=10001, record=record)
    backend.listeners[0]("state", qq=10001)
    assert built == [] and [e["seq"] for e in chat.history] == [1]
    events = []
    unsubscribe = chat.subscribe(events.append)
    backend.listeners[0]("sent", account=10001, record=record)
    backend.listeners[0]("state", qq=10001)
    assert [e["type"] for e in events] == ["message", "accounts", "accounts"]
    assert events[1]["accounts"] == {"10001": {"state": "online"}} and len(built) == 2
    unsubscribe()
    backend.listeners[0]("sent", account=10001, record=record)
    assert len(built) == 2 and len(events) == 3


def test_the_simulator_command_prints_where_the_page_is():
    process = subprocess.Popen([sys.executable, "-m", "webqq.simulator.cli", "--port", "0",
                                "--tls-port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [process.stdout.readline()]
        while not lines[-1].startswith("chat page:") and len(lines) < 10:
            lines.append(process.stdout.readline())
        page = re.fullmatch(r"chat page: (http://127\.0\.0\.1:\d+/)\n", lines[-1])
        assert page, lines
        with urllib.request.urlopen(page.group(1), timeout=5) as answer:
            assert b"<title>WebQQ" in answer.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
