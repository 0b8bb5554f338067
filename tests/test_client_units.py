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
from webqq.client.session import SavedSession, cookies_from_data, load_session, save_session
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
    secrets = [PASSWORD, client._psessionid, client._vfwebqq]
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
