"""The daemon against worlds as strict as the 2013 server (issue 13): ``[account] era =
auto`` logs in to an Era A and an Era B world, and messages queued before a poll reach a
plugin and the API's store in the order they were said, whichever way the world lists a
poll batch. Real ``webqq run`` children, the embedded simulator; waits on conditions."""
import contextlib
import json
import sqlite3
import textwrap

import pytest
from daemon_helpers import Daemon, daemon_simulator, wait_for, webqq, write_config
from simulator_helpers import default_world

from webqq import statedir


@pytest.fixture
def daemons():
    """Factory of ``webqq run`` children; each is stopped after the test."""
    started = []

    def start(config, **options):
        daemon = Daemon(config, **options)
        started.append(daemon)
        return daemon
    yield start
    for daemon in started:
        daemon.close()


def world_file(directory, **options):
    path = directory / "world.json"
    path.write_text(json.dumps(default_world(**options)), encoding="utf-8")
    return path


@pytest.mark.parametrize("era", ["A", "B"])
def test_era_auto_logs_in_to_a_world_of_either_era(tmp_path, daemons, era):
    world_file(tmp_path, era=era)
    simulator = {"embedded": "yes", "port": "0", "tls_port": "0", "poll_hold": "5",
                 "world": "world.json"}
    daemon = daemons(write_config(tmp_path, simulator=simulator, account={"era": "auto"}))
    sim = daemon_simulator(daemon)
    way = "late-2013" if era == "B" else "spring-2013"
    assert "logging in the %s way (Era %s)" % (way, era) in daemon.log_text()
    sim.say("!ping")
    assert sim.wait_sent("pong")["kind"] == "buddy"
    assert daemon.stop() == 0


RECORDER = textwrap.dedent('''\
    """Writes the text of every message it sees, one a line, in the order it sees them."""
    import os

    def setup(plugin):
        @plugin.on_message()
        def record(ctx):
            with open(os.environ["WEBQQ_TEST_RECORD"], "a", encoding="utf-8") as out:
                out.write(ctx.message.text + "\\n")
''')


@pytest.mark.parametrize("order", ["newest_first", "oldest_first"])
def test_messages_queued_before_a_poll_arrive_in_the_order_said(tmp_path, daemons,
                                                                monkeypatch, order):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(RECORDER, encoding="utf-8")
    record = tmp_path / "record.txt"
    monkeypatch.setenv("WEBQQ_TEST_RECORD", str(record))
    world_file(tmp_path, poll_order=order)
    simulator = {"embedded": "yes", "port": "0", "tls_port": "0", "poll_hold": "5",
                 "world": "world.json"}
    config = write_config(tmp_path, simulator=simulator, bot={"plugins": "recorder"},
                          api={"listen": "127.0.0.1:0"})
    daemon = daemons(config, pythonpath=plugins)
    sim = daemon_simulator(daemon)
    # The held poll answers the first say; the daemon's next poll is held back by the
    # server for 3 s before it is handled, so the next three queue up for one batch.
    sim._call("fault", {"path": "/channel/poll2", "kind": "delay", "seconds": 3})
    said = ["first", "second", "third", "fourth"]
    for text in said:
        sim.say(text)
    lines = wait_for(lambda: record.exists() and len(record.read_text().split()) == 4
                     and record.read_text().split(), "the plugin to see four messages")
    assert lines == said
    store = daemon.state_dir / statedir.STORE

    def received():
        with contextlib.closing(sqlite3.connect(str(store))) as db:
            rows = db.execute("SELECT text FROM messages WHERE direction = 'in' "
                              "ORDER BY id").fetchall()
        return [text for (text,) in rows] if len(rows) == 4 else None
    assert wait_for(received, "the store to hold four messages") == said
    assert daemon.stop() == 0


def test_a_send_interval_under_half_a_second_is_a_config_error(tmp_path):
    config = write_config(tmp_path, bot={"send_interval": "0.2"})
    result = webqq(config, "check")
    assert result.returncode == 3
    assert "[bot] send_interval: '0.2' is less than 0.5 s: the server silently dropped " \
        "messages sent closer together" in result.stderr


@pytest.mark.parametrize("resend, copies", [("no", 1), ("yes", 2)])
def test_resend_ambiguous_decides_what_a_send_of_unknown_fate_becomes(tmp_path, daemons,
                                                                      resend, copies):
    config = write_config(tmp_path, bot={"resend_ambiguous": resend})
    daemon = daemons(config)
    sim = daemon_simulator(daemon)
    sim._call("fault", {"path": "/channel/send_buddy_msg2", "kind": "reset",
                        "when": "after"})
    sim.say("!echo maybe twice")
    sim.wait_sent("maybe twice")
    if resend == "yes":
        wait_for(lambda: [m["text"] for m in sim.sent()].count("maybe twice") == 2,
                 "the second copy")
    else:
        wait_for(lambda: "'maybe twice') ambiguous: its fate is unknown" in daemon.log_text(),
                 "the ambiguous report")
    sim.say("!echo next")
    sim.wait_sent("next")
    assert [m["text"] for m in sim.sent()].count("maybe twice") == copies
    assert sim._call("dropped?account=10001") == []
    assert daemon.stop() == 0
