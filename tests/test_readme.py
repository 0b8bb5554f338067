"""README's Python examples, run as written against a real simulator (issue 12 #2), and
the files it points a reader to, which must exist.

The examples name the simulator's default port, 18080 (and the aiocqhttp bot port
8080); the tests run on free ports and rewrite those numbers in the text they run
(``readme_helpers.on_ports``), and nothing else.
"""
import re
import subprocess
import sys

import pytest
from daemon_helpers import (DEADLINE, REPO, Daemon, StandaloneSimulator, daemon_simulator,
                            environment, wait_for, write_config)
from readme_helpers import README, free_port, on_ports, python_blocks, section

CHECK_ANSWER = r"200 ptui_checkVC\('0','!\w{3}','(\\x[0-9a-f]{2}){8}'\);"


@pytest.fixture(scope="module")
def simulator():
    standalone = StandaloneSimulator()
    yield standalone
    standalone.close()


def run_example(code: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=environment())


def test_the_httpstream_examples_run_as_written(simulator):
    chain, coroutine = python_blocks(section("HTTPStream"))
    results = [run_example(on_ports(block, {18080: simulator.port}))
               for block in (chain, coroutine)]
    for result in results:
        assert (result.returncode, result.stderr) == (0, "")
        for line in result.stdout.splitlines():
            assert re.fullmatch(CHECK_ANSWER, line), line
    assert [len(result.stdout.splitlines()) for result in results] == [3, 1]


def test_the_httpstream_chain_ends_when_nothing_listens():
    # Before: a traceback, then a loop that never stopped.
    chain = python_blocks(section("HTTPStream"))[0]
    result = run_example(on_ports(chain, {18080: free_port()}))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch(r"failed: .*Connection refused.*\n", result.stdout), result.stdout
    assert "retrying in" in result.stderr      # the stream's warnings, one per attempt


def test_the_aiocqhttp_bot_answers_with_the_settings_readme_gives(tmp_path):
    pytest.importorskip("aiocqhttp")           # in the test extras; CI installs it
    text = section("OneBot v11 API")
    bot_code = next(block for block in python_blocks(text) if "CQHttp" in block)
    token = re.search(r"``\[api\] token = (\S+)``", text).group(1)
    reverse = re.search(r"``ws_reverse_url = (\S+)``", text).group(1)
    said = re.search(r'"text": "([^"]+)"\}\' http://127\.0\.0\.1:18080/_sim/say', text)
    port = free_port()
    bot = subprocess.Popen([sys.executable, "-c", on_ports(bot_code, {8080: port})],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env=environment())
    daemon = None
    try:
        config = write_config(tmp_path, api={
            "listen": "127.0.0.1:0", "token": token,
            "ws_reverse_url": on_ports(reverse, {8080: port})})
        daemon = Daemon(config)
        sim = daemon_simulator(daemon)

        def connected():
            if bot.poll() is not None:
                raise AssertionError("the bot exited: %s" % bot.stderr.read())
            return "reverse WebSocket connected" in daemon.log_text()
        wait_for(connected, "the reverse WebSocket")
        sim.say(said.group(1))
        sim.wait_sent("you said: %s" % said.group(1))
    finally:
        if daemon is not None:
            daemon.stop()
        bot.terminate()
        bot.wait(timeout=DEADLINE)
        bot.stderr.close()


def test_every_file_readme_names_exists():
    named = set(re.findall(r"``((?:webqq|conf|bench|tests|bin|docs|\.ci)/[\w./-]*)``",
                           README.read_text(encoding="utf-8")))
    named |= set(re.findall(r"^    ((?:webqq|conf|bench|tests)/[\w./-]*)",
                            section("Layout"), re.MULTILINE))
    assert len(named) > 10
    made_by_the_reader = {"conf/standalone.ini"}
    assert sorted(path for path in named - made_by_the_reader
                  if not (REPO / path).exists()) == []
