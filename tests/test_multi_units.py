"""Several accounts in one daemon (issue 15), piece by piece: cookie scopes on one
HTTPStream, one account's rows of the shared store, the embedded simulator's generated
accounts, and the configuration's ``[account:NAME]`` sections."""
import asyncio
from urllib.request import Request

import pytest

from test_http_stream import app_server, stream  # noqa: F401 (fixtures)
from webqq.http.scope import CookieScope


# -- one HTTPStream, a cookie jar per account ------------------------------------------

@pytest.mark.gen_test
async def test_cookie_scopes_share_a_stream_but_not_their_cookies(io_loop, no_leaks,
                                                                   app_server, stream):
    http = stream()
    alice, bob = CookieScope(http), CookieScope(http)
    await alice.fetch(Request(app_server + "/set-cookie"))
    assert (await alice.fetch(Request(app_server + "/echo"))).json()["cookie"]
    assert (await bob.fetch(Request(app_server + "/echo"))).json()["cookie"] == ""
    assert {c.name for c in alice.cookiejar} == {"session", "other"}
    assert list(bob.cookiejar) == [] and list(http.cookiejar) == []
    # A redirect that sets the cookie, and the next request of a chain, keep the scope.
    done = asyncio.get_running_loop().create_future()

    def after_redirect(response):
        return Request(app_server + "/echo"), lambda echoed: done.set_result(echoed)
    bob.add_request(Request(app_server + "/redirect/_set-cookie"), after_redirect)
    echoed = await done
    assert "session=abc123" in echoed.json()["cookie"]
    assert {c.name for c in bob.cookiejar} == {"session", "other"}
    assert list(http.cookiejar) == []
    assert bob.io_loop is http.io_loop


@pytest.mark.gen_test
async def test_each_scope_reports_its_own_requests_to_its_observer(io_loop, no_leaks,
                                                                     app_server, stream):
    """The metrics count each account's requests under its own label: a scope's
    observer sees its requests (a redirect's and a chain's next included), the stream's
    only the rest."""
    http = stream()
    seen = []
    http.observer = lambda request, outcome, seconds: seen.append(("stream", outcome))
    alice, bob = CookieScope(http), CookieScope(http)
    alice.observer = lambda request, outcome, seconds: seen.append(("alice", outcome))
    await alice.fetch(Request(app_server + "/echo"))
    await bob.fetch(Request(app_server + "/echo"))
    done = asyncio.get_running_loop().create_future()
    alice.add_request(Request(app_server + "/redirect/_set-cookie"),
                      lambda response: (Request(app_server + "/echo"), done.set_result))
    await done
    assert seen == [("alice", 200), ("stream", 200), ("alice", 200), ("alice", 200)]


# -- one store, rows per account ---------------------------------------------------------

import sqlite3  # noqa: E402

from webqq.onebot.store import SCHEMA_VERSION, Store  # noqa: E402

#: messages.sqlite3 as a single-account version wrote it (schema 1).
_SCHEMA_1 = ("""CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, direction TEXT NOT NULL, chat TEXT NOT NULL,
    target INTEGER, user_id INTEGER, text TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}',
    time REAL NOT NULL, status TEXT NOT NULL, retcode INTEGER, error TEXT,
    idempotency_key TEXT UNIQUE, updated REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'api')""",
             "CREATE INDEX messages_pending ON messages (status) WHERE direction = 'out'",
             """CREATE TABLE undelivered_events (id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL, body TEXT NOT NULL, time REAL NOT NULL, error TEXT)""",
             "PRAGMA user_version = 1")


def test_each_account_sees_only_its_rows_of_the_one_store(tmp_path):
    store = Store(tmp_path / "messages.sqlite3")
    alice, bob = store.for_account(10001), store.for_account(10002)
    first, created = alice.add_outgoing(chat="buddy", target=20001, user_id=10001,
                                        text="hi", data={}, idempotency_key="k")
    assert created
    # The same key is another message for another account, the same one for the first.
    assert bob.add_outgoing(chat="buddy", target=20001, user_id=10002, text="hi",
                            data={}, idempotency_key="k")[1]
    assert alice.add_outgoing(chat="buddy", target=20001, user_id=10001, text="hi",
                              data={}, idempotency_key="k") == (first, False)
    bob.add_received(chat="buddy", target=20001, user_id=20001, text="yo", data={})
    bob.keep_event("http://127.0.0.1:1/", b"{}", "refused")
    assert [row.id for row in alice.queued()] == [first]
    assert alice.next_queued().id == first and bob.next_queued().id != first
    assert bob.get(first) is None and alice.get(first).account == 10001
    assert alice.counts() == {"queued": 1}
    assert bob.counts() == {"queued": 1, "received": 1}
    assert alice.undelivered() == 0 and bob.undelivered() == 1
    assert alice.take_events("http://127.0.0.1:1/", 10) == []
    assert bob.take_events("http://127.0.0.1:1/", 10) == [b"{}"]
    # A row left 'sending' by a dead process: only its own account's start recovers it.
    alice.mark_sending(first)
    assert bob.recover() == 0 and alice.recover() == 1
    store.close()


def test_a_locked_store_pauses_every_account_and_a_forgotten_one_hears_nothing(tmp_path):
    store = Store(tmp_path / "messages.sqlite3")
    alice, bob, gone = (store.for_account(qq) for qq in (10001, 10002, 10003))
    heard = []
    for view in (alice, bob, gone):
        view.on_unwritable = lambda reason, view=view: heard.append(view.account)
    gone.forget()
    locker = sqlite3.connect(str(store.path), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    with pytest.raises(Exception, match="cannot be written"):
        alice.add_received(chat="buddy", target=1, user_id=1, text="x", data={})
    assert heard == [10001, 10002]
    assert bob.unwritable is not None        # one file: every view knows
    locker.execute("ROLLBACK")
    locker.close()
    assert bob.probe() is None and alice.unwritable is None
    store.close()


def test_a_single_account_store_is_upgraded_and_its_rows_adopted(tmp_path):
    path = tmp_path / "messages.sqlite3"
    old = sqlite3.connect(str(path), isolation_level=None)
    for statement in _SCHEMA_1:
        old.execute(statement)
    for key in ("a", "b", "c"):
        old.execute("INSERT INTO messages (direction, chat, target, user_id, text, time, "
                    "status, idempotency_key, updated) VALUES ('out', 'buddy', 20001, "
                    "10001, 'x', 1, 'queued', ?, 1)", (key,))
    old.execute("DELETE FROM messages WHERE idempotency_key = 'c'")   # id 3 was used
    old.execute("INSERT INTO undelivered_events (url, body, time) VALUES ('u', '{}', 1)")
    old.close()
    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    mine = store.for_account(10001)
    assert mine.queued() == [] and [row.id for row in store.queued()] == [1, 2]
    assert mine.adopt() == 2
    assert [row.id for row in mine.queued()] == [1, 2] and store.queued() == []
    assert mine.take_events("u", 5) == [b"{}"]
    assert mine.add_outgoing(chat="buddy", target=20001, user_id=10001, text="y",
                             data={}, idempotency_key="a") == (1, False)
    assert mine.add_outgoing(chat="buddy", target=20001, user_id=10001, text="y",
                             data={})[0] == 4          # never an id given out before
    store.close()


def test_discussion_ids_are_kept_per_account_and_a_schema_3_file_gains_them(tmp_path):
    """Schema 3 (rows per account) had no discussions table: the upgrade to 4 adds it,
    with an account column, so two accounts may both have discussion id 1."""
    path = tmp_path / "messages.sqlite3"
    store = Store(path)
    store._db.execute("DROP TABLE discussions")
    store._db.execute("PRAGMA user_version = 3")
    store.close()
    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    alice, bob = store.for_account(10001), store.for_account(10002)
    alice.save_discussion(1, 333, 20001, "alice's")
    bob.save_discussion(1, 444, None, "bob's")
    assert alice.discussions() == [(1, 333, 20001, "alice's")]
    assert bob.discussions() == [(1, 444, None, "bob's")]
    store.save_discussion(2, 555, None, "from before accounts")
    assert alice.adopt() == 0 and alice.discussions()[-1] == (2, 555, None,
                                                               "from before accounts")
    store.close()


# -- the embedded simulator's world grows the accounts the configuration names -------------

from webqq.simulator import WorldError, load_world  # noqa: E402


def test_a_generated_account_is_everyones_friend_and_in_every_chat():
    world = load_world()
    account = world.add_account(10005, nick="webqq third")
    assert world.accounts[10005] is account and account.password == "webqq-demo"
    assert {f.qq for f in account.friends} == {20001, 20002, 20003}
    assert all(group.member(10005) for group in world.groups.values())
    assert all(10005 in d.members for d in world.discussions.values())
    assert world.qq_of_uin(10005, world.uin(10005, 20001)) == 20001
    for taken, what in ((10001, "an account"), (20001, "a person")):
        with pytest.raises(WorldError, match=what):
            world.add_account(taken)
    with pytest.raises(WorldError, match="not a QQ number"):
        world.add_account(12)


# -- one OneBot API, several accounts ------------------------------------------------------

import json  # noqa: E402

from api_helpers import (TOKEN, ReverseServer, Webhook, eventually,  # noqa: E402
                         events_of)
from client_helpers import Recorder, online_client  # noqa: E402
from tornado import web, websocket  # noqa: E402
from tornado.httpclient import HTTPClientError, HTTPRequest  # noqa: E402

from webqq.daemon.config import ApiConfig  # noqa: E402
from webqq.onebot.outbound import Outbound  # noqa: E402
from webqq.onebot.server import OneBotApi  # noqa: E402


@pytest.mark.gen_test(timeout=40)
async def test_rows_of_several_accounts_asked_in_one_turn_share_one_sync(world, tmp_path):
    """Writing 'sending' syncs the disk (milliseconds of the loop): the rows every
    account's queue asks for in one loop turn are written in one synced transaction,
    and each is still written before its message leaves."""
    store = Store(tmp_path / "messages.sqlite3")
    statements = []
    store._file.db.set_trace_callback(statements.append)
    outbounds = []
    try:
        for qq in (10001, 10002):
            client, _ = await online_client(world, qq)
            outbound = Outbound(client, store.for_account(qq), self_id=qq, send_interval=0.1)
            outbound.start()
            outbounds.append(outbound)
        del statements[:]
        first = outbounds[0].send_text("buddy", 10002, "from one")
        second = outbounds[1].send_text("buddy", 20001, "from two")
        assert [await o.outcome(i, 10) for o, i in zip(outbounds, (first, second))] == \
            [("sent", None), ("sent", None)]
        synced = [n for n, sql in enumerate(statements) if sql == "PRAGMA synchronous=FULL"]
        assert len(synced) == 1
        transaction = statements[synced[0]:statements.index("COMMIT", synced[0]) + 1]
        marked = [sql for sql in transaction if sql.startswith("UPDATE messages SET "
                                                               "status = 'sending'")]
        assert len(marked) == 2
        assert [m["text"] for m in await world.control.sent(10001)] == ["from one"]
        assert [m["text"] for m in await world.control.sent(10002)] == ["from two"]
    finally:
        for outbound in outbounds:
            outbound.close()
        store.close()


@pytest.mark.gen_test(timeout=40)
async def test_a_queue_closed_before_its_row_is_synced_leaves_the_row_queued(world, tmp_path):
    """Closing takes the row out of the batch: nothing is written for it."""
    store = Store(tmp_path / "messages.sqlite3")
    statements = []
    client, _ = await online_client(world)
    outbound = Outbound(client, store.for_account(10001), self_id=10001, send_interval=0.1)
    outbound.start()
    try:
        message_id = outbound.send_text("buddy", 20001, "not yet")   # asked, not synced
        store._file.db.set_trace_callback(statements.append)
        outbound.close()
        store.flush_sending()
        assert statements == []
        assert store.for_account(10001).get(message_id).status == "queued"
        assert await world.control.sent(10001) == []
    finally:
        store.close()


@pytest.mark.gen_test(timeout=40)
async def test_each_account_has_its_deliveries_and_its_sockets(harness, world, tmp_path):
    hook, reverse = {}, {}
    hook_port = harness.serve(web.Application([(r"/hook", Webhook, {"record": hook})]))
    reverse_port = harness.serve(web.Application([(r"/ws/", ReverseServer,
                                                   {"record": reverse})]))
    store = Store(tmp_path / "messages.sqlite3")
    api = OneBotApi(ApiConfig(listen=("127.0.0.1", 0), token=TOKEN,
                              post_url="http://127.0.0.1:%d/hook" % hook_port,
                              ws_reverse_url="ws://127.0.0.1:%d/ws/" % reverse_port),
                    token=TOKEN, heartbeat_interval=0)
    outbounds = []
    for qq in (10001, 10002):
        client = world.client(qq=qq)
        recorder = Recorder(client)
        client.start()
        await recorder.online()
        outbound = Outbound(client, store.for_account(qq), self_id=qq, send_interval=0.1)
        outbound.start()
        outbounds.append(outbound)
        api.add(client, self_id=qq, outbound=outbound)
    await api.start()
    sockets = []
    try:
        # A reverse WebSocket connection per account, each announcing its X-Self-ID.
        await eventually(lambda: len(reverse.get("headers", [])) == 2, "two connections")
        assert sorted(h["X-Self-Id"] for h in reverse["headers"]) == ["10001", "10002"]
        # A forward WebSocket is one account's, by X-Self-ID (or self_id in the query).
        url = "ws://127.0.0.1:%d/event" % api.port
        headers = {"Authorization": "Bearer " + TOKEN}
        two = await websocket.websocket_connect(HTTPRequest(
            url, headers=dict(headers, **{"X-Self-ID": "10002"})))
        one = await websocket.websocket_connect(HTTPRequest(url + "?self_id=10001",
                                                            headers=headers))
        sockets += [one, two]
        assert json.loads(await two.read_message())["self_id"] == 10002     # connect
        assert json.loads(await one.read_message())["self_id"] == 10001
        with pytest.raises(HTTPClientError) as refused:
            await websocket.websocket_connect(HTTPRequest(url, headers=headers))
        assert refused.value.code == 400                # several: say which
        # Its media URLs name it; without a name the media route cannot choose.
        assert api.accounts[10002].media_url("files", "7") == \
            "%s/files/7?self_id=10002" % api.url
        with pytest.raises(HTTPClientError) as unnamed:
            await harness.http.fetch(api.url + "/images/x.jpg", headers=headers)
        assert unnamed.value.code == 400
        # A message to one account is its event alone, everywhere.
        await world.control.say(**{"to": 10002, "from": 20001, "text": "for two"})
        event = json.loads(await two.read_message())
        assert (event["self_id"], event["raw_message"]) == (10002, "for two")
        posted = await eventually(lambda: events_of(hook, "message"), "the POST")
        assert [(e["self_id"], e["raw_message"]) for e in posted] == [(10002, "for two")]
        assert [e["self_id"] for e in hook["events"]
                if e["event"]["post_type"] == "message"] == ["10002"]
        # An account removed: its sockets close, the other one goes on.
        await api.remove(10002)
        assert await two.read_message() is None
        with pytest.raises(HTTPClientError) as gone:
            await websocket.websocket_connect(HTTPRequest(
                url, headers=dict(headers, **{"X-Self-ID": "10002"})))
        assert gone.value.code == 404
        answer = await harness.http.fetch(HTTPRequest(
            api.url + "/get_login_info", method="POST", body=b"{}",
            headers=dict(headers, **{"Content-Type": "application/json"})))
        assert json.loads(answer.body)["data"]["user_id"] == 10001  # the only one left
    finally:
        for socket in sockets:
            socket.close()
        await api.close()
        for outbound in outbounds:
            outbound.release()
            outbound.close()
        store.close()



# -- [account:NAME] sections ---------------------------------------------------------------

from webqq.daemon import config as configuration  # noqa: E402
from webqq.daemon.config import ConfigError, load, render_effective  # noqa: E402
from webqq.daemon.reload import account_changes  # noqa: E402

EMBEDDED = "[simulator]\nembedded = yes\n"


def ini(tmp_path, text):
    path = tmp_path / "webqq.ini"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_named_accounts_are_read_in_file_order_each_with_its_own_keys(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    (tmp_path / "pw").chmod(0o600)
    path = ini(tmp_path, EMBEDDED + "[account:shop-2]\nqq = 10002\npassword_file = pw\n"
               "era = b\nplugins = webqq.plugins.builtin\n    webqq.examples.echo\n"
               "[account:main]\nqq = 10001\n[plugin:echo]\nkey = v\n")
    config = load(path)
    shop, main = config.accounts
    assert (shop.name, shop.section, shop.qq, shop.era) == ("shop-2", "account:shop-2",
                                                             10002, "B")
    assert shop.plugins == ("webqq.plugins.builtin", "webqq.examples.echo")
    assert (main.name, main.plugins, main.era) == ("main", None, "auto")
    # A [plugin:NAME] may serve a module only an account loads.
    assert dict(config.plugin_settings["webqq.examples.echo"]) == {"key": "v"}
    assert configuration.password_variable(shop) == "WEBQQ_PASSWORD_SHOP_2"
    assert configuration.resolve_password(config, shop, {}) == "from-file"
    assert configuration.resolve_password(
        config, shop, {"WEBQQ_PASSWORD_SHOP_2": "env", "WEBQQ_PASSWORD": "not-mine"}
    ) == "env"
    assert configuration.resolve_password(config, main, {"WEBQQ_PASSWORD": "x"}) is None
    again = load(_rendered(tmp_path, config))       # webqq check's text reads back
    assert again.accounts == config.accounts


def _rendered(tmp_path, config):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return ini(elsewhere, render_effective(config, environ={}))


@pytest.mark.parametrize("text, problem", [
    ("[account]\nqq = 10001\n[account:b]\nqq = 10002\n",
     "[account]: [account:b] is there too: name this one as well ([account:NAME]), or "
     "keep only [account]"),
    ("[account:a b]\nqq = 10001\n",
     "[account:a b]: NAME of [account:NAME] must be 1 to 32 letters, digits, '_' or '-'"),
    ("[account:a]\nqq = 10001\n[account:b]\nqq = 10001\n",
     "[account:b] qq: 10001 is [account:a]'s already"),
    (EMBEDDED + "[account:a]\npassword = x\n", "[account:a] qq: missing"),
    ("[account:a]\nqq = 10001\nera = C\n",
     "[account:a] era: 'C' is not an era (auto, A or B)"),
])
def test_bad_account_sections_are_one_line(tmp_path, text, problem):
    path = ini(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load(path)
    assert str(error.value) == "%s: %s" % (path, problem)


def test_a_named_account_without_a_password_names_its_variable(tmp_path):
    path = ini(tmp_path, "[account:shop]\nqq = 10001\n")
    config = load(path)
    with pytest.raises(ConfigError, match=r"\[account:shop\] password: missing: set "
                                          r"password or password_file, or "
                                          r"WEBQQ_PASSWORD_SHOP in the environment"):
        configuration.resolve_password(config, config.accounts[0], {})


def test_a_reload_restarts_only_the_accounts_whose_session_changes(tmp_path):
    before = load(ini(tmp_path, "[account:a]\nqq = 10001\npassword = x\n[account:b]\n"
                                "qq = 10002\npassword = x\n[account:c]\nqq = 10003\n"
                                "password = x\n")).accounts
    after = load(ini(tmp_path, "[account:a]\nqq = 10001\npassword = x\n"
                               "plugins = webqq.examples.echo\n[account:c]\nqq = 10003\n"
                               "password = y\n[account:d]\nqq = 10004\npassword = x\n")
                 ).accounts
    changes = account_changes(before, after)
    assert [a.name for a in changes.added] == ["d"]
    assert [a.name for a in changes.removed] == ["b"]
    assert [a.name for a in changes.restarted] == ["c"]          # another password
    assert [a.name for a in changes.kept] == ["a"]               # plugins only
