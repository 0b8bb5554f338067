"""README's Python examples, run as written against a real simulator (issue 12 #2); the
files it points a reader to, which must exist; its tables of the daemon's commands and
of status.json, which must name what the code has (#5).

The examples name the simulator's default port, 18080 (and the aiocqhttp bot port
8080); the tests run on free ports and rewrite those numbers in the text they run
(``readme_helpers.on_ports``), and nothing else.
"""
import re
import subprocess
import sys
from typing import List, Tuple

import pytest
from daemon_helpers import (DEADLINE, REPO, Daemon, StandaloneSimulator, daemon_simulator,
                            environment, wait_for, write_config)
from readme_helpers import README, free_port, on_ports, python_blocks, section

from webqq.daemon import config as configuration
from webqq.daemon.cli import build_parser
from webqq.daemon.daemon import Daemon as WebQQDaemon

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


def simple_tables(text: str) -> List[List[Tuple[str, str]]]:
    """The simple tables of ``text``, each a list of (first column, rest) rows; a row
    whose first column is blank continues the row above."""
    tables, rows, border, inside = [], [], None, False
    for line in text.splitlines():
        match = re.fullmatch(r"(=+)(  +)=+", line)
        if match:
            if inside and rows and line == border:
                tables.append(rows)
                rows, inside = [], False
            elif not inside:
                border, inside = line, True
            continue
        if inside and line.strip():
            width = len(border.split()[0])
            first, rest = line[:width].strip(), line[width:].strip()
            if first:
                rows.append((first, rest))
            else:
                rows[-1] = (rows[-1][0], rows[-1][1] + " " + rest)
    return tables


def test_the_verbs_table_lists_every_command():
    verbs_table = simple_tables(section("The daemon"))[0]
    listed = {re.fullmatch(r"``(\w+)``", first).group(1) for first, _ in verbs_table}
    usage = build_parser().format_help()
    commands = set(re.findall(r"^    (\w+) +\S", usage.split("commands:")[1], re.MULTILINE))
    assert listed == commands


def test_the_status_table_names_every_field_of_status_json(tmp_path):
    # Written by a daemon that has done nothing yet: every key is there, null or not.
    written = set(WebQQDaemon(configuration.load(write_config(tmp_path))).status())
    status_table = simple_tables(section("The daemon"))[1]
    rows = {name for first, _ in status_table for name in re.findall(r"``(\w+)``", first)}
    named = {name for first, rest in status_table
             for name in re.findall(r"``(\w+)``", first + " " + rest)}
    assert rows <= written, "README names fields status.json does not have"
    assert written <= named, "status.json has fields README does not name"
