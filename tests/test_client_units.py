"""WebQQClient pieces that need no server: de-duplication, the state table, the session
file, the echo example end to end, and what the logs never contain."""
import json
import logging
import os
import stat
from http.cookiejar import CookieJar

import pytest
from client_helpers import PASSWORD, Recorder

from webqq.client.client import _MOVES, State, WebQQClient
from webqq.client.session import (SavedSession, cookies_from_data, cookies_to_data,
                                  load_session, save_session, set_cookie)
from webqq.examples import echo
from webqq.http_stream import HTTPStream
from webqq.qq import BuddyMessage, decode_content


def _buddy(msg_id, text):
    content = decode_content([["font", {"name": "x", "size": 10, "style": [0, 0, 0],
                                        "color": "000000"}], text])
    return BuddyMessage(msg_id=msg_id, msg_id2=5, from_uin=77, time=None,
                        content=content)


@pytest.mark.gen_test
async def test_a_repeated_msg_id_is_dropped(tmp_path):
    stream = HTTPStream()
    client = WebQQClient(10001, PASSWORD, stream, str(tmp_path))
    events = Recorder(client)
    for event in (_buddy(1, "a"), _buddy(1, "a"), _buddy(2, "b"), _buddy(1, "a")):
        client._dispatch(event)
    assert [e.text for e in events.of("message")] == ["a", "b"]
    assert events.of("message")[0].sender.uin == 77
    stream.close()


def test_every_state_has_moves_and_stop_is_always_allowed():
    assert set(_MOVES) == set(State)
    for state, moves in _MOVES.items():
        assert state is State.STOPPED or State.STOPPED in moves


@pytest.mark.gen_test
async def test_an_illegal_move_raises(tmp_path):
    stream = HTTPStream()
    client = WebQQClient(10001, PASSWORD, stream, str(tmp_path))
    with pytest.raises(RuntimeError, match="no move from STOPPED to ONLINE"):
        client._set_state(State.ONLINE, "test")
    with pytest.raises(RuntimeError):
        client.enter_verify_code("ABCD")
    stream.close()


@pytest.mark.gen_test
async def test_clients_share_one_generator_which_a_forked_child_draws_afresh(tmp_path):
    # A Random per client was 2.5 KB of each account in a daemon of a thousand (issue
    # 17). A shared one must not repeat itself in a forked child (a detaching daemon):
    # client ids and nonces drawn there are not the parent's.
    stream = HTTPStream()
    first = WebQQClient(10001, PASSWORD, stream, str(tmp_path / "a"))
    second = WebQQClient(10002, PASSWORD, stream, str(tmp_path / "b"))
    assert first.rng is second.rng
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:                                    # pragma: no cover (the child)
        os.write(write_end, b"%d" % first.rng.getrandbits(60))
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    drawn = int(os.read(read_end, 64))
    os.close(read_end)
    assert drawn != first.rng.getrandbits(60)
    stream.close()


def test_session_file_round_trip_is_private_json(tmp_path):
    saved = SavedSession(qq=1, clientid=12345678, psessionid="p" * 20, vfwebqq="v" * 20,
                         msg_id=42, cookies=[])
    path = save_session(str(tmp_path / "state"), saved)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as source:
        assert json.load(source)["msg_id"] == 42
    assert load_session(str(tmp_path / "state"), 1) == saved
    assert "p" * 20 not in repr(saved)
    assert os.listdir(str(tmp_path / "state")) == ["session-1.json"]   # no temporary left


def test_a_broken_session_file_is_ignored(tmp_path, caplog):
    (tmp_path / "session-1.json").write_text("{not json")
    assert load_session(str(tmp_path), 1) is None
    (tmp_path / "session-1.json").write_text(json.dumps({"version": 1, "qq": 1}))
    assert load_session(str(tmp_path), 1) is None
    with pytest.raises(ValueError):
        cookies_from_data(CookieJar(), [{"name": "x"}])


TOKEN = "8368046764001d636f6e6e" * 4       # a psessionid: must never reach the log


def _session_data(**changes):
    jar = CookieJar()
    set_cookie(jar, "ptwebqq", "2c0d8375e6c09f2a")
    set_cookie(jar, "skey", "@Ab3dE5gH1")
    data = {"version": 1, "qq": 1, "clientid": 53999199, "psessionid": TOKEN,
            "vfwebqq": "v" * 40, "msg_id": 21870001, "cookies": cookies_to_data(jar)}
    data.update(changes)
    return data


def _with_cookie(**changes):
    data = _session_data()
    data["cookies"][0].update(changes)
    return data


def _json(data):
    return json.dumps(data).encode()


def _raw(text):
    return text.replace("TOKEN", TOKEN).encode()


# Each is a session file a start once crashed on (OverflowError, ValueError from the
# cookie jar, an AttributeError later in a request) or silently misread.
DAMAGED = {
    "cookie without fields": _json(_session_data(cookies=[{"name": "x"}])),
    "cookie not an object": _json(_session_data(cookies=["ptwebqq=1"])),
    "cookies a string": _json(_session_data(cookies="ptwebqq=1")),
    "cookie name a number": _json(_with_cookie(name=5)),
    "cookie domain a number": _json(_with_cookie(domain=7)),
    "cookie secure a string": _json(_with_cookie(secure="yes")),
    "cookie expires a bool": _json(_with_cookie(expires=True)),
    "cookie value with CRLF": _json(_with_cookie(value="x\r\nX-Evil: 1")),
    "cookie value with a semicolon": _json(_with_cookie(value="a; b=c")),
    "cookie name with =": _json(_with_cookie(name="a=b")),
    "cookie value not Latin-1": _json(_with_cookie(value="\u4e2d")),
    "clientid Infinity": _raw('{"version": 1, "qq": 1, "clientid": Infinity, '
                              '"psessionid": "TOKEN", "vfwebqq": "v", "msg_id": 1, '
                              '"cookies": []}'),
    "msg_id NaN": _raw('{"version": 1, "qq": 1, "clientid": 53999199, "psessionid": '
                       '"TOKEN", "vfwebqq": "v", "msg_id": NaN, "cookies": []}'),
    "cookie expires -Infinity": _raw(_json(_session_data()).decode().replace(
        '"expires": null', '"expires": -Infinity', 1)),
    "clientid huge": _json(_session_data(clientid=10 ** 30)),
    "clientid negative": _json(_session_data(clientid=-5)),
    "msg_id past 2**53": _json(_session_data(msg_id=2 ** 64)),
    "msg_id of 5000 digits": _raw(_json(_session_data()).decode().replace(
        "21870001", "9" * 5000)),
    "clientid a string": _json(_session_data(clientid="53999199")),
    "clientid a float": _json(_session_data(clientid=53999199.5)),
    "clientid true": _json(_session_data(clientid=True)),
    "psessionid an object": _json(_session_data(psessionid={"a": TOKEN})),
    "psessionid null": _json(_session_data(psessionid=None)),
    "psessionid with a newline": _json(_session_data(psessionid=TOKEN + "\n")),
    "vfwebqq a number": _json(_session_data(vfwebqq=5)),
    "qq of another account": _json(_session_data(qq=2)),
    "version 2": _json(_session_data(version=2)),
    "a list": b"[1, 2, 3]",
    "null": b"null",
    "empty": b"",
    "truncated": _json(_session_data())[:90],
    "not UTF-8": b"\xff\xfe" + _json(_session_data()),
    "nested 100000 deep": b"[" * 100000 + b"]" * 100000,
    "over a megabyte": b" " * (1 << 20) + _json(_session_data()),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=list(DAMAGED))
def test_an_unusable_session_file_is_moved_aside_with_one_log_line(tmp_path, caplog,
                                                                    content):
    path = tmp_path / "session-1.json"
    path.write_bytes(content)
    caplog.set_level(logging.DEBUG)
    assert load_session(str(tmp_path), 1, clock=lambda: 1796488500.0) is None
    assert not path.exists()
    aside = tmp_path / "session-1.json.bad-20261205T163500"
    assert aside.read_bytes() == content                          # kept for a look
    lines = [record for record in caplog.records if record.name == "webqq.session"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert str(path) in lines[0].getMessage() and str(aside) in lines[0].getMessage()
    assert TOKEN not in caplog.text
    assert load_session(str(tmp_path), 1) is None                 # nothing left to trip on


def test_a_second_bad_file_in_the_same_second_does_not_replace_the_first(tmp_path):
    for content in (b"{", b"["):
        (tmp_path / "session-1.json").write_bytes(content)
        assert load_session(str(tmp_path), 1, clock=lambda: 0.0) is None
    assert (tmp_path / "session-1.json.bad-19700101T000000").read_bytes() == b"{"
    assert (tmp_path / "session-1.json.bad-19700101T000000-2").read_bytes() == b"["


def test_a_saved_session_with_every_kind_of_cookie_loads_back(tmp_path):
    jar = CookieJar()
    set_cookie(jar, "ptwebqq", "2c0d8375e6c09f2a")
    set_cookie(jar, "skey", "@Ab3dE5gH1")
    data = _session_data()
    data["cookies"] = cookies_to_data(jar) + [dict(data["cookies"][0], name="flag",
                                                   value=None, expires=1796488500.5)]
    (tmp_path / "session-1.json").write_bytes(_json(data))
    saved = load_session(str(tmp_path), 1)
    assert saved is not None and saved.psessionid == TOKEN
    restored = CookieJar()
    cookies_from_data(restored, saved.cookies)
    assert sorted(cookie.name for cookie in restored) == ["flag", "ptwebqq", "skey"]


@pytest.mark.parametrize("name", ["cookie without fields", "clientid Infinity",
                                  "msg_id NaN", "not UTF-8"])
@pytest.mark.gen_test(timeout=30)
async def test_a_start_on_an_unusable_session_file_logs_in_again(world, caplog, name):
    client = world.client()
    os.makedirs(client.state_dir)
    with open(os.path.join(client.state_dir, "session-10001.json"), "wb") as out:
        out.write(DAMAGED[name].replace(b'"qq": 1,', b'"qq": 10001,'))
    events = Recorder(client)
    client.start()
    online = await events.wait("online")
    assert not online.resumed and events.states() == ["logging_in", "online"]
    assert "Unusable session file" in caplog.text
    names = sorted(os.listdir(client.state_dir))
    assert names[0] == "session-10001.json" and names[1].startswith("session-10001.json.bad-")


@pytest.mark.gen_test(timeout=30)
async def test_echo_example_logs_in_to_an_embedded_simulator_and_echoes(tmp_path, capsys):
    args = echo.parse_args(["--demo", "--state-dir", str(tmp_path), "--poll-hold", "0.5"])
    assert await echo.run(args) == 0
    out = capsys.readouterr().out
    assert "buddy Alice: hello, echo" in out and "echo seen by the simulator" in out


@pytest.mark.gen_test(timeout=30)
async def test_no_password_or_token_is_ever_logged(world, caplog):
    caplog.set_level(logging.DEBUG)
    client = world.client()
    events = Recorder(client)
    client.start()
    await events.online()
    await world.control.call("rotate", {"account": 10001})
    await world.control.say(**{"from": 20001, "text": "hi"})
    await client.reply(await events.wait("message"), "hello").done
    await world.control.call("kick", {"account": 10001})
    await events.online()
    secrets = [PASSWORD, client._link.psessionid, client._link.vfwebqq]
    secrets += [c.value for c in client.stream.cookiejar
                if c.name in ("ptwebqq", "skey", "uin", "ptcz", "RK")]
    text = caplog.text
    assert "LOGGING_IN -> ONLINE" in text
    for secret in secrets:
        assert secret and secret not in text


@pytest.mark.gen_test
async def test_a_bound_method_listener_can_be_removed(tmp_path):
    stream = HTTPStream()
    client = WebQQClient(10001, PASSWORD, stream, str(tmp_path))
    seen = []

    class Listener:
        def note(self, event):
            seen.append(event)

    listener = Listener()
    client.add_listener(listener.note)
    client.remove_listener(listener.note)   # a new bound-method object, equal to the first
    client._dispatch(_buddy(1, "a"))
    assert seen == []
    stream.close()


def test_the_client_package_keeps_its_modules_and_classes_small():
    """The split of WebQQClient along its jobs (login.py, sending.py, receiving.py)
    stays split: no module over 800 lines, no class over 40 methods."""
    import ast
    from pathlib import Path

    import webqq.client
    for path in sorted(Path(webqq.client.__file__).parent.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert text.count("\n") <= 800, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                methods = [item for item in node.body
                           if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))]
                assert len(methods) <= 40, (path.name, node.name, len(methods))
