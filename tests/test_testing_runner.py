"""``webqq-simulator test``: scenarios run against webqq's built-in plugins and against a
OneBot bot over HTTP POST, their reports (console and JUnit XML), and the exit codes.

The packaged example with a 30 s outage is the issue's acceptance run; it takes 40 s,
so it runs only with WEBQQ_SLOW_TESTS=1 (the suite keeps the same steps with a 2 s
outage in test_a_kick_and_an_outage_pass_against_the_builtin_plugins).
"""
import asyncio
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from conftest import refused_port
from daemon_helpers import environment
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from webqq.testing.junit import junit_xml
from webqq.testing.runner import FAILED, Result
from webqq.testing.scenario import parse_scenario

EXAMPLES = Path(__file__).resolve().parent.parent / "webqq" / "testing" / "scenarios"

KICK_AND_OUTAGE = """
name = "ping and echo survive a kick and an outage"

[[step]]
say = "!ping"
from = 20001

[[step]]
expect = "pong"
within = 5

[[step]]
kick = true

[[step]]
say = "!echo still here"
from = 20001

[[step]]
expect_match = "^still here$"

[[step]]
outage = 2

[[step]]
say = "!ping"
from = 20002
group = 30001

[[step]]
expect = "pong"
within = 15

[[step]]
silence = 0.5
"""

PING = """
name = "ping"

[[step]]
say = "!ping"
from = 20001

[[step]]
expect = "pong"
within = 5
"""


def command(*args: str) -> list:
    return [sys.executable, "-m", "webqq.simulator.cli", "test", *args]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout,
                          env=environment())


def suite_of(junit: Path):
    return ElementTree.parse(junit).getroot().find("testsuite")


def test_a_kick_and_an_outage_pass_against_the_builtin_plugins(tmp_path):
    (tmp_path / "kick.toml").write_text(KICK_AND_OUTAGE)
    done = run(str(tmp_path / "kick.toml"), "--junit", str(tmp_path / "junit.xml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("PASSED  kick.toml: ping and echo survive a kick and an "
                                  "outage (")
    assert done.stdout.endswith("1 of 1 scenario(s) passed\nJUnit XML: %s\n"
                                % (tmp_path / "junit.xml"))
    suite = suite_of(tmp_path / "junit.xml")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    case = suite.find("testcase")
    assert case.get("classname") == "kick" and case.find("failure") is None
    conversation = case.find("system-out").text
    assert "-- the outage ends" in conversation
    assert "测试群 (30001) · webqq (10001): pong" in conversation


class WrongBot(web.RequestHandler):
    """A OneBot bot on HTTP POST that answers every message "PONG!" (a quick reply)."""

    def post(self):
        event = json.loads(self.request.body)
        if event.get("post_type") == "message":
            self.write({"reply": "PONG!"})
        else:
            self.set_status(204)


@pytest.mark.gen_test(timeout=90)
async def test_a_bot_that_answers_wrongly_fails_with_a_readable_report(tmp_path):
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/events", WrongBot)]))
    server.add_sockets(sockets)
    (tmp_path / "ping.toml").write_text(PING)
    try:
        process = await asyncio.create_subprocess_exec(
            *command(str(tmp_path / "ping.toml"), "--bot-url",
                     "http://127.0.0.1:%d/events" % sockets[0].getsockname()[1],
                     "--junit", str(tmp_path / "junit.xml")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment())
        output = (await process.communicate())[0].decode()
    finally:
        server.stop()
        await server.close_all_connections()
    assert process.returncode == 1, output
    report = output.split("  the end of webqq's log:\n")[0]
    lines = report.splitlines()
    assert lines[0].startswith("FAILED  ping.toml: ping (")
    assert lines[1:4] == ['  step 2 of 2: expect "pong" from the bot to Alice (20001) within 5 s',
                          '    expected "pong"',
                          '         got "PONG!"']
    assert lines[4] == "  conversation:"
    assert lines[5].endswith("step 1: Alice (20001) says \"!ping\" to the bot")
    assert any(line.endswith("  Alice (20001) → webqq (10001): !ping") for line in lines)
    assert any(line.endswith("  webqq (10001) → Alice (20001): PONG!") for line in lines)
    assert output.endswith("0 of 1 scenario(s) passed\nJUnit XML: %s\n" % (tmp_path / "junit.xml"))
    suite = suite_of(tmp_path / "junit.xml")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "1", "0")
    failure = suite.find("testcase/failure")
    assert failure.get("message") == 'step 2: expected "pong"'
    assert 'got "PONG!"' in failure.text


def test_an_unreachable_bot_is_an_error_that_says_so(tmp_path):
    (tmp_path / "ping.toml").write_text(PING)
    done = run(str(tmp_path / "ping.toml"), "--bot-url",
               "ws://127.0.0.1:%d/ws/" % refused_port(), "--startup-timeout", "3",
               "--junit", str(tmp_path / "junit.xml"))
    assert done.returncode == 1
    assert done.stdout.startswith("ERROR  ping.toml: ping (")
    assert "timed out after 3 s waiting for webqq to connect to the bot at ws://127.0.0.1:" \
           in done.stdout and "(is the bot running?)" in done.stdout
    assert suite_of(tmp_path / "junit.xml").find("testcase/error") is not None


def test_a_bad_scenario_stops_the_run_before_anything_starts(tmp_path):
    (tmp_path / "good.toml").write_text(PING)
    (tmp_path / "bad.toml").write_text(PING.replace("within", "whithin"))
    done = run(str(tmp_path / "good.toml"), str(tmp_path / "bad.toml"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "webqq-simulator test: %s: step 2: unknown key 'whithin' (known " \
                          "here: discussion, expect, group, to, within)\n" \
                          % (tmp_path / "bad.toml")


def test_a_bot_url_of_another_scheme_is_a_usage_error(tmp_path):
    (tmp_path / "ping.toml").write_text(PING)
    done = run(str(tmp_path / "ping.toml"), "--bot-url", "ftp://127.0.0.1/")
    assert done.returncode == 2
    assert done.stderr.endswith("argument --bot-url: 'ftp://127.0.0.1/': a ws:// or wss:// URL "
                                "(the bot's reverse WebSocket) or http:// or https:// (events "
                                "POSTed to the bot)\n")


def test_a_missing_world_file_is_a_usage_error(tmp_path):
    (tmp_path / "ping.toml").write_text(PING)
    done = run(str(tmp_path / "ping.toml"), "--world", str(tmp_path / "none.json"))
    assert (done.returncode, done.stderr) == (
        2, "webqq-simulator test: --world %s: No such file or directory\n"
        % (tmp_path / "none.json"))


def test_junit_xml_keeps_markup_and_control_characters_readable():
    scenario = parse_scenario(PING, "odd.toml")
    result = Result(scenario, outcome=FAILED, seconds=1.5, step=scenario.steps[1],
                    reason='expected "pong"\n     got "<b>\x00\x1b</b> & \ud800"',
                    transcript=["+  0.10 s  webqq (10001) → Alice (20001): <b>\x00</b>"])
    root = ElementTree.fromstring(junit_xml([result]))
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == 'step 2: expected "pong"'
    assert 'got "<b>\\x00\\x1b</b> & \\ud800"' in failure.text
    assert root.find("testsuite/testcase/system-out").text.endswith(": <b>\\x00</b>")


@pytest.mark.skipif(not os.environ.get("WEBQQ_SLOW_TESTS"),
                    reason="the issue's example has a 30 s outage and takes about 40 s; set "
                           "WEBQQ_SLOW_TESTS=1 to run it (the suite runs the same steps "
                           "with a 2 s outage)")
def test_the_documented_kick_and_30s_outage_scenario_passes(tmp_path):
    done = run(str(EXAMPLES / "kick_and_outage.toml"), timeout=180)
    assert done.returncode == 0, done.stdout
