"""The OneBot API of a real ``webqq run`` child process: the CLI verbs on top of it,
messages accepted by the API surviving SIGKILL (each sent once after the restart), and a
bot written for a real OneBot SDK (aiocqhttp, from PyPI) answering a message."""
import json
import os
import resource
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
from daemon_helpers import (DEADLINE, FRIEND, GROUP, Daemon, StandaloneSimulator,
                            daemon_simulator, environment, read_status, wait_for, webqq,
                            write_config)

from webqq.statedir import TOKEN as TOKEN_NAME

LOOPBACK_ANY_PORT = {"listen": "127.0.0.1:0"}


def api_call(daemon: Daemon, action: str, params: dict, token: str) -> dict:
    url = read_status(daemon.state_dir)["api"]["url"]
    request = urllib.request.Request(
        "%s/%s" % (url, action), data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_cli_verbs_call_the_api_with_the_generated_token(tmp_path):
    config = write_config(tmp_path, api=LOOPBACK_ANY_PORT)
    daemon = Daemon(config)
    try:
        sim = daemon_simulator(daemon)
        token_file = daemon.state_dir / TOKEN_NAME
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()

        sent = webqq(config, "send", "buddy", str(FRIEND), "hello", "there")
        assert (sent.returncode, sent.stdout) == (0, "sent to buddy 20001 (message_id 1)\n")
        by_name = webqq(config, "send", "group", "测试群", "hi group")
        assert by_name.stdout == "sent to group 30001 (message_id 2)\n"
        as_json = json.loads(webqq(config, "send", "--json", "discussion", "good day",
                                   "hi all").stdout)
        assert as_json["status"] == "ok" and as_json["stored"]["send_status"] == "sent"
        refused = webqq(config, "send", "buddy", "55555", "nobody")
        assert refused.returncode == 1 and "unknown buddy 55555" in refused.stderr
        assert [(m["kind"], m["to"], m["text"]) for m in sim.sent()] == [
            ("buddy", FRIEND, "hello there"), ("group", GROUP, "hi group"),
            ("discussion", 40001, "hi all")]

        friends = webqq(config, "friends")
        assert friends.returncode == 0
        assert "20002        Bob (Bob (work))\n" in friends.stdout
        assert friends.stdout.endswith("3 friend(s)\n")
        assert {f["user_id"] for f in json.loads(webqq(config, "friends", "--json").stdout)
                } == {20001, 20002, 10002}
        groups = webqq(config, "groups").stdout.splitlines()
        assert groups[0] == "group      30001        测试群 (4 members)"
        assert groups[1].startswith("discussion ") and groups[1].endswith(
            " good day (4 members)")
        captcha = webqq(config, "captcha", "ABCD")
        assert captcha.returncode == 1
        assert captcha.stderr == "webqq captcha: no verify code is awaited (the client is " \
                                 "online)\n"
        status = webqq(config, "status").stdout
        assert "\napi: http://127.0.0.1:" in status and "3 sent, 0 queued, 1 failed" in status
    finally:
        assert daemon.stop() == 0
    assert token not in daemon.log_text() and "hello there" not in "\n".join(
        line for line in daemon.log_text().splitlines() if " INFO " in line)
    # The daemon is gone: the verbs say so.
    gone = webqq(config, "friends")
    assert gone.returncode == 1 and "webqq is not running, or its API" in gone.stderr


def test_captcha_verb_answers_a_waiting_login(tmp_path):
    simulator = StandaloneSimulator()
    simulator.control._call("captcha", {"account": 10001, "code": "ABCD"})
    daemon = Daemon(simulator.config(tmp_path, api=LOOPBACK_ANY_PORT))
    try:
        wait_for(lambda: daemon.status().get("state") == "waiting_captcha", "the captcha")
        answered = webqq(daemon.config, "captcha", "ABCD")
        assert (answered.returncode, answered.stdout) == (
            0, "verify code accepted: 10001 is online\n")
        daemon.wait_online()
    finally:
        daemon.close()
        simulator.close()


def _store_files(state_dir) -> dict:
    return {path.name: path.stat().st_size for path in state_dir.glob("messages.sqlite3*")}


def test_messages_accepted_before_sigkill_are_sent_once_after_restart(tmp_path):
    """Messages sent through the API and plugin replies, around a store that another
    process locks and then one that cannot grow (a full disk, made by lowering the
    daemon's RLIMIT_FSIZE to the store's size), then queued while the server is away,
    then SIGKILL: after the restart every accepted message is sent exactly once, and
    every one refused was refused with its reason and is never sent."""
    simulator = StandaloneSimulator()
    # One retry: the daemon must notice the short outage rather than ride it out.
    config = simulator.config(tmp_path, api=LOOPBACK_ANY_PORT, network={"retries": "1"},
                              daemon={"loglevel": "info"})
    daemon = Daemon(config)
    accepted, refused, echoed = {}, {}, []
    try:
        daemon.wait_online()
        token = (daemon.state_dir / TOKEN_NAME).read_text().strip()

        def send(text):
            answer = api_call(daemon, "send_private_msg", {"user_id": FRIEND,
                                                           "message": text}, token)
            if answer["status"] == "ok":
                accepted[text] = answer["data"]["message_id"]
            else:
                refused[text] = answer["msg"]

        def phase(name, why):
            send("%s api" % name)
            simulator.control.say("!echo %s plugin" % name)
            echoed.append("%s plugin" % name)
            wait_for(lambda: daemon.status().get("sending_paused") == why,
                     "sending to pause: %s" % why)
            send("%s api again" % name)

        # A store locked by another process (a backup, an sqlite3 shell).
        locker = sqlite3.connect(str(daemon.state_dir / "messages.sqlite3"),
                                 isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        phase("locked", "database is locked")
        locker.execute("ROLLBACK")
        locker.close()
        wait_for(lambda: daemon.status().get("sending_paused", "") is None, "resume")
        # A store that cannot grow: its largest file's size is the limit of any file.
        limit = max(_store_files(daemon.state_dir).values())
        assert daemon.log.stat().st_size < limit - 16384, "the log would hit the limit"
        resource.prlimit(daemon.process.pid, resource.RLIMIT_FSIZE,
                         (limit, resource.RLIM_INFINITY))
        phase("full", "disk I/O error")
        resource.prlimit(daemon.process.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_for(lambda: daemon.status().get("sending_paused", "") is None, "resume")
        for text in echoed:
            simulator.control.wait_sent(text)

        simulator.control._call("offline", {"seconds": 3})
        wait_for(lambda: daemon.status().get("state") not in ("online", None),
                 "the daemon to notice the server is gone")
        for n in range(3):
            send("queued %d" % n)
        daemon.stop(signal.SIGKILL)

        daemon = Daemon(config)
        daemon.wait_online()

        def all_sent():
            states = [api_call(daemon, "get_msg", {"message_id": i}, token)["data"]
                      ["send_status"] for i in accepted.values()]
            return states == ["sent"] * len(accepted)
        wait_for(all_sent, "the accepted messages to be sent")
        texts = [m["text"] for m in simulator.control.sent()]
        delivered = list(accepted) + echoed
        assert {text: texts.count(text) for text in delivered} == dict.fromkeys(delivered, 1)
        assert {text: texts.count(text) for text in refused} == dict.fromkeys(refused, 0)
        assert {text: why.rsplit(": ", 1)[1] for text, why in refused.items()} == {
            "locked api": "database is locked", "locked api again": "database is locked",
            "full api": "disk I/O error", "full api again": "disk I/O error"}
        assert {"queued 0", "queued 1", "queued 2"} <= set(accepted)
        assert "3 message(s) are waiting to be sent (3 from the API, 0 from plugins)" \
            in daemon.log_text()
    finally:
        daemon.close()
        simulator.close()


def test_plugin_replies_queued_before_sigkill_are_sent_once_after_restart(tmp_path):
    simulator = StandaloneSimulator()
    # Paced 30 s apart: the first reply goes, the two others wait in the queue.
    config = simulator.config(tmp_path, bot={"send_interval": "30"})
    daemon = Daemon(config)
    try:
        daemon.wait_online()
        for word in ("one", "two", "three"):
            simulator.control.say("!echo " + word)
        simulator.control.wait_sent("one")
        wait_for(lambda: daemon.status().get("queued") == 2, "two replies queued")
        daemon.stop(signal.SIGKILL)

        simulator.config(tmp_path, bot={"send_interval": "0.5"})
        # What an older version saved at a clean stop joins the same queue.
        (daemon.state_dir / "outbox-10001.json").write_text(json.dumps([
            ["buddy", FRIEND, "from an old outbox"]]))
        daemon = Daemon(config)
        daemon.wait_online()
        for text in ("two", "three", "from an old outbox"):
            simulator.control.wait_sent(text)
        wait_for(lambda: daemon.status().get("queued") == 0, "the queue to empty")
        texts = [m["text"] for m in simulator.control.sent()]
        assert [texts.count(text) for text in ("one", "two", "three", "from an old outbox")
                ] == [1, 1, 1, 1]
        assert "3 message(s) are waiting to be sent (0 from the API, 3 from plugins)" \
            in daemon.log_text()
        assert not list(daemon.state_dir.glob("outbox-*"))
    finally:
        daemon.close()
        simulator.close()


def test_a_damaged_store_is_moved_aside_and_the_daemon_starts(tmp_path):
    config = write_config(tmp_path)
    state_dir = tmp_path / "run"
    state_dir.mkdir(mode=0o700)
    (state_dir / "messages.sqlite3").write_bytes(b"not a database\n" * 100)
    daemon = Daemon(config)
    try:
        daemon.wait_online()
        sim = daemon_simulator(daemon)
        sim.say("!ping")
        sim.wait_sent("pong")
        aside, = state_dir.glob("messages.sqlite3.bad-*[0-9]")
        assert aside.read_bytes() == b"not a database\n" * 100
        lines = [line for line in daemon.log_text().splitlines() if " is damaged " in line]
        assert len(lines) == 1 and lines[0].endswith(
            " WARNING webqq.api: the message store %s is damaged (file is not a database): "
            "moved to %s, starting with an empty one" % (state_dir / "messages.sqlite3",
                                                         aside.name))
    finally:
        assert daemon.stop() == 0


def test_a_store_that_cannot_be_opened_stops_the_start_with_exit_3(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "run" / "messages.sqlite3").mkdir(parents=True)     # in the way
    result = webqq(config, "run")
    assert result.returncode == 3
    log = (tmp_path / "webqq.log").read_text()
    assert ("ERROR webqq.daemon: %s: [daemon] state_dir: cannot open the message store "
            "%s: Is a directory; check that state_dir and the file can be "
            "written by this user\n" % (config, tmp_path / "run" / "messages.sqlite3")) \
        in log
    assert "Traceback" not in log + result.stderr


def test_every_file_in_state_dir_is_private_whatever_the_umask(tmp_path):
    config = write_config(tmp_path, api=LOOPBACK_ANY_PORT)
    state_dir = tmp_path / "run"
    state_dir.mkdir()
    state_dir.chmod(0o777)                      # whoever made it, made it open
    previous = os.umask(0o022)                  # the daemon inherits it
    try:
        daemon = Daemon(config)
    finally:
        os.umask(previous)
    try:
        sim = daemon_simulator(daemon)
        sim.say("!ping")
        sim.wait_sent("pong")
        token = (state_dir / TOKEN_NAME).read_text().strip()
        assert api_call(daemon, "send_private_msg", {"user_id": FRIEND, "message": "hi"},
                        token)["status"] == "ok"
        modes = {path.name: path.stat().st_mode & 0o777 for path in state_dir.iterdir()}
        assert {"messages.sqlite3", "messages.sqlite3-wal", "messages.sqlite3-shm",
                "webqq.pid", "status.json", TOKEN_NAME} <= set(modes)
        assert {name: oct(mode) for name, mode in modes.items() if mode != 0o600} == {}
    finally:
        assert daemon.stop() == 0


def test_a_locked_store_pauses_the_daemons_sending_until_it_is_released(tmp_path):
    config = write_config(tmp_path)             # no API: the queue is the daemon's own
    daemon = Daemon(config)
    locker = None
    try:
        sim = daemon_simulator(daemon)
        # An admin's sqlite3 shell holds the write lock; a plugin's reply comes.
        locker = sqlite3.connect(str(daemon.state_dir / "messages.sqlite3"),
                                 isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        sim.say("!ping")
        wait_for(lambda: daemon.status().get("sending_paused") == "database is locked",
                 "sending to pause")
        assert "\nsending paused: the message store cannot be written (database is " \
               "locked)\n" in webqq(config, "status").stdout
        assert "pong" not in [m["text"] for m in sim.sent()]
        locker.execute("ROLLBACK")
        sim.wait_sent("pong")
        wait_for(lambda: daemon.status().get("sending_paused", "") is None,
                 "sending to resume")
        assert [m["text"] for m in sim.sent()].count("pong") == 1
    finally:
        if locker is not None:
            locker.close()
        assert daemon.stop() == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A bot as aiocqhttp's README writes one: the SDK serves the reverse WebSocket (/ws/),
# checks our Bearer token, calls send_msg over the socket (bot.send), and turns a returned
# dict into .handle_quick_operation_async.
AIOCQHTTP_BOT = textwrap.dedent("""\
    import sys
    from aiocqhttp import CQHttp

    bot = CQHttp(access_token=sys.argv[2])

    @bot.on_message("private")
    async def private(event):
        await bot.send(event, "you said: " + event.raw_message)

    @bot.on_message("group")
    async def group(event):
        info = await bot.get_login_info()
        return {"reply": "%s heard you" % info["nickname"]}

    bot.run(host="127.0.0.1", port=int(sys.argv[1]))
    """)


def test_an_aiocqhttp_bot_answers_through_webqq(tmp_path):
    pytest.importorskip("aiocqhttp")
    port = _free_port()
    (tmp_path / "bot.py").write_text(AIOCQHTTP_BOT)
    bot = subprocess.Popen([sys.executable, str(tmp_path / "bot.py"), str(port),
                            "bot-token-123"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env=environment())
    daemon = None
    try:
        def listening():
            if bot.poll() is not None:
                raise AssertionError("the bot exited: %s" % bot.stderr.read())
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening, "the bot to listen")
        config = write_config(tmp_path, api={
            "listen": "127.0.0.1:0", "token": "bot-token-123",
            "ws_reverse_url": "ws://127.0.0.1:%d/ws/" % port})
        daemon = Daemon(config)
        sim = daemon_simulator(daemon)
        wait_for(lambda: "reverse WebSocket connected" in daemon.log_text(),
                 "the reverse WebSocket", timeout=DEADLINE)
        sim.say("hello bot")
        assert sim.wait_sent("you said: hello bot")["to"] == FRIEND
        sim.say("anyone?", sender=20002, group=GROUP)
        assert sim.wait_sent("@Bob webqq heard you")["to"] == GROUP
    finally:
        if daemon is not None:
            daemon.stop()
        bot.terminate()
        bot.wait(timeout=DEADLINE)
        bot.stderr.close()


def test_a_public_listen_address_without_a_token_refuses_to_start(tmp_path):
    config = write_config(tmp_path, api={"listen": "0.0.0.0:0"})
    result = webqq(config, "run")
    assert result.returncode == 3
    assert result.stderr.endswith("listen = 0.0.0.0:0 is not a loopback address: set "
                                  "[api] token\n")
    assert not (tmp_path / "run" / TOKEN_NAME).exists()


def _cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_half_open_connections_at_the_fd_limit_leave_the_daemon_working(tmp_path):
    """300 peers, each with half a request head, against a daemon limited to 256 file
    descriptors: they filled its fd table, and Tornado's accept loop spun on EMFILE,
    the API and status.json dead until they left. Now the API holds 128 (its cap), the
    rest wait; the WebQQ session answers, status.json follows, no core spins, and the
    API serves as soon as they are gone."""
    config = write_config(tmp_path, api=LOOPBACK_ANY_PORT)
    daemon = Daemon(config, fd_limit=256)
    peers = []
    try:
        sim = daemon_simulator(daemon)
        token = (daemon.state_dir / TOKEN_NAME).read_text().strip()
        port = int(read_status(daemon.state_dir)["api"]["url"].rsplit(":", 1)[1])
        for _ in range(300):
            peer = socket.socket()
            peer.setblocking(False)
            peer.connect_ex(("127.0.0.1", port))
            peers.append(peer)
        _, writable, _ = select.select([], peers, [], 5.0)
        for peer in writable:
            try:
                peer.send(b"GET /get_status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            except OSError:
                pass                        # not accepted by the kernel either: fine
        wait_for(lambda: "the API holds 128 connections, its cap" in daemon.log_text(),
                 "the cap")
        sent_before = daemon.status()["counts"].get("sent", 0)
        cpu, started = _cpu_seconds(daemon.process.pid), time.monotonic()
        sim.say("!ping")
        sim.wait_sent("pong")
        wait_for(lambda: daemon.status()["counts"].get("sent", 0) > sent_before,
                 "status.json to count the pong")
        time.sleep(1.0)                     # a second of the siege, to measure the CPU
        busy = _cpu_seconds(daemon.process.pid) - cpu
        assert busy < 0.5 * (time.monotonic() - started), busy
        for peer in peers:
            peer.close()
        peers = []
        assert api_call(daemon, "get_status", {}, token)["data"]["online"] is True
    finally:
        for peer in peers:
            peer.close()
        assert daemon.stop() == 0
    text = daemon.log_text()
    assert "Too many open files" not in text and "Traceback" not in text


def test_discussion_ids_stay_across_restarts_and_an_unknown_one_is_an_error(tmp_path):
    """The embedded simulator draws new dids at every start, and the ids webqq handed
    out changed with them (1536836207, 2358630789, 4230747227); `webqq send discussion
    40001 hi` answered 'retcode 108'."""
    config = write_config(tmp_path, api=LOOPBACK_ANY_PORT)
    ids = []
    for run in range(2):
        daemon = Daemon(config)
        try:
            sim = daemon_simulator(daemon)
            listed = json.loads(webqq(config, "groups", "--json").stdout)["discussions"]
            ids.append([d["discuss_id"] for d in listed])
            sent = webqq(config, "send", "discussion", str(ids[-1][0]), "run %d" % run)
            assert sent.returncode == 0, sent.stderr
            assert sim.wait_sent("run %d" % run)["to"] == 40001
            refused = webqq(config, "send", "discussion", "40001", "hi")
            assert refused.returncode == 1
            assert refused.stderr.endswith("failed: unknown discussion 40001\n"), \
                refused.stderr
        finally:
            assert daemon.stop() == 0
    assert ids[0] == ids[1] and len(ids[0]) == 1
