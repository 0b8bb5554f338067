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
