"""The real ``webqq`` command in subprocesses, against the simulator (issue 5).

Every test has its own directory, state_dir and free ports, and waits on conditions
(the status file, the simulator's /_sim/sent), never on fixed sleeps.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest
from daemon_helpers import (DEADLINE, DISCUSSION, GROUP, PASSWORD, Daemon,
                            StandaloneSimulator, daemon_simulator, environment, read_status,
                            wait_for, webqq, write_config)

from webqq.daemon.pidfile import Pidfile
from webqq.simulator.app import HTTP_HOSTS, TLS_HOSTS


@pytest.fixture
def standalone():
    simulator = StandaloneSimulator()
    yield simulator
    simulator.close()


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


@pytest.fixture
def stop_after(tmp_path):
    """Configs whose detached daemons ``webqq stop`` ends after the test."""
    configs = []
    yield configs.append
    for config in configs:
        webqq(config, "stop", "--timeout", "5")


# -- run: the foreground daemon ----------------------------------------------------------

def test_run_answers_the_builtin_commands_in_every_chat_and_stops_cleanly(tmp_path, daemons):
    daemon = daemons(write_config(tmp_path))
    sim = daemon_simulator(daemon)
    sim.say("!ping")
    assert sim.wait_sent("pong")["kind"] == "buddy"
    sim.say("!echo hello group", group=GROUP)
    assert sim.wait_sent("hello group")["kind"] == "group"
    sim.say("!help", discussion=DISCUSSION, sender=20003)
    help_text = wait_for(lambda: next((m["text"] for m in sim.sent()
                                       if m["kind"] == "discussion"), None), "help")
    assert "!ping - answers pong" in help_text and "!echo" in help_text
    sim.say("!uptime")
    wait_for(lambda: any(m["text"].startswith("up ") for m in sim.sent()), "uptime")
    # The status file shows the counts soon, not only at the next periodic rewrite.
    wait_for(lambda: daemon.status()["counts"]["sent"] == 4, "the counts", timeout=2)
    # One INFO line per message in and out, naming the chat and the other side; the
    # text only at DEBUG (issue 12 #13).
    log = daemon.log_text()
    assert "INFO webqq.daemon: message in buddy from 20001, 5 characters" in log
    assert "INFO webqq.daemon: message in group 30001 from 20001, 17 characters" in log
    assert "INFO webqq.send_queue: Message 1 to buddy 20001 sent (1 part(s))" in log
    assert "INFO webqq.send_queue: Message 2 to group 30001 sent (1 part(s))" in log
    assert {line.split()[2] for line in log.splitlines() if "hello group" in line} == {
        "DEBUG"}

    assert daemon.stop() == 0
    status = read_status(daemon.state_dir)
    assert status["phase"] == "stopped"
    assert status["shutdown"] == {"outbox": "drained", "session": "saved", "exit_code": 0}
    assert status["counts"]["received"] == 4 and status["counts"]["sent"] == 4
    assert not (daemon.state_dir / "webqq.pid").exists()
    assert (daemon.state_dir / "session-10001.json").exists()
    log = daemon.log_text()
    assert "SIGTERM: shutting down" in log
    # The logged curl line is one a user can paste: JSON type and the control token.
    assert ("curl -H 'Content-Type: application/json' -H 'X-Sim-Token: %s' -d '{\"to\": "
            "10001, \"from\": 20001, \"text\": \"!ping\"}' http://127.0.0.1:%d/_sim/say"
            % (sim.token, status["simulator"]["port"])) in log


def test_an_idle_daemon_leaves_its_status_file_alone_and_writes_each_change(tmp_path,
                                                                            daemons):
    """Issue 17: the status file was rewritten every 5 s whatever happened (in a daemon
    of a thousand idle accounts, half its CPU); now a change rewrites it, and only one."""
    daemon = daemons(write_config(tmp_path, simulator={
        "embedded": "yes", "port": "0", "tls_port": "0", "poll_hold": "1"}))
    sim = daemon_simulator(daemon)
    path = daemon.state_dir / "status.json"

    def polls_after(count):
        start = sim.state()["accounts"]["10001"]["polls"]
        wait_for(lambda: sim.state()["accounts"]["10001"]["polls"] >= start + count,
                 "%d polls" % count)

    def written():
        stat = path.stat()
        return stat.st_ino, stat.st_mtime_ns          # each write is a new file

    polls_after(2)                                     # the login's last changes written
    before = written()
    polls_after(7)                                     # 7 s of polls, heartbeats, ticks
    assert written() == before
    sim.say("!ping")
    sim.wait_sent("pong")
    # Each count soon (no tick to bring it): the message in, the plugin's handler, the
    # queue's row and its outcome.
    wait_for(lambda: daemon.status()["counts"]["sent"] == 1 and daemon.status()[
        "counts"]["handled"] == 1, "the counts", timeout=2)
    status = daemon.status()
    assert (status["counts"]["received"], status["queued"]) == (1, 0)
    assert written() != before


def test_login_refused_exits_4(tmp_path):
    config = write_config(tmp_path, account={"password": "not-the-password"})
    result = webqq(config, "run")
    assert result.returncode == 4, result.stderr
    assert "login refused for good" in (tmp_path / "webqq.log").read_text()
    result = webqq(config, "start", "--wait", "20")
    assert result.returncode == 4
    assert result.stderr.startswith("webqq login refused:")


# -- start, status, stop ----------------------------------------------------------------

def test_start_reports_a_captcha_and_keeps_waiting_for_the_code(tmp_path, stop_after):
    from webqq.simulator.world import DEFAULT_WORLD_FILE
    with open(DEFAULT_WORLD_FILE, encoding="utf-8") as bundled:
        world = json.load(bundled)
    world["accounts"][0]["captcha"] = "always"
    (tmp_path / "world.json").write_text(json.dumps(world))
    config = write_config(tmp_path, simulator={
        "embedded": "yes", "port": "0", "tls_port": "0", "world": "world.json"})
    stop_after(config)
    started = webqq(config, "start")
    image = tmp_path / "run" / "captcha-10001.jpg"
    assert (started.returncode, started.stderr) == (0, "")
    assert ": waiting for a verify code (%s); log: " % image in started.stdout
    assert image.read_bytes().startswith(b"\xff\xd8")            # a JPEG to read
    assert "login: waiting_captcha as 10001" in webqq(config, "status").stdout


def test_captcha_waits_for_the_outcome_and_the_image_goes_after_success(tmp_path, daemons):
    # Issue 12 #1: the verb says whether the code was right, status names the image
    # to read, and the image is removed once it has served.
    config = write_config(tmp_path, api={"listen": "127.0.0.1:0"})
    daemon = daemons(config)
    sim = daemon_simulator(daemon)
    sim.demand_captcha("ABCD")
    sim.expire()                    # a kick would relink: only a login runs check
    image = daemon.state_dir / "captcha-10001.jpg"
    wait_for(lambda: daemon.status().get("state") == "waiting_captcha", "the captcha")
    status = webqq(config, "status").stdout
    assert "; read %s, then run: webqq captcha CODE\n" % image in status
    assert image.read_bytes().startswith(b"\xff\xd8")

    wrong = webqq(config, "captcha", "WXYZ")
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert wrong.stderr.startswith("the code was refused (")
    assert wrong.stderr.endswith("); a new image: %s\n" % image)
    captcha = daemon.status()["captcha"]
    assert captcha["image"] == str(image) and captcha["images"] == 2
    assert captcha["last_code"]["outcome"] == "refused"

    right = webqq(config, "captcha", "ABCD")
    assert (right.returncode, right.stdout, right.stderr) == (
        0, "verify code accepted: 10001 is online\n", "")
    assert not image.exists()
    status = webqq(config, "status")
    assert "login: online as 10001" in status.stdout and "then run:" not in status.stdout
    assert daemon.status()["captcha"] is None


def test_start_status_stop_and_a_second_start_refused(tmp_path, stop_after):
    config = write_config(tmp_path, daemon={"logfile": ""})
    stop_after(config)
    started = webqq(config, "start")
    assert started.returncode == 0, started.stderr
    state_dir = tmp_path / "run"
    pid = int((state_dir / "webqq.pid").read_text())
    # Each step as it happens, then the outcome (issue 12 #11).
    log = state_dir / "webqq.log"
    assert started.stdout.splitlines() == [
        "webqq: pid %d is up; log: %s" % (pid, log), "webqq: checking the account",
        "webqq: logging in", "webqq: loading contacts",
        "webqq started, pid %d: online as 10001 (logged in); log: %s" % (pid, log)]
    # [daemon] logfile is empty, stderr is /dev/null: the log goes to state_dir.
    assert "online as 10001" in (state_dir / "webqq.log").read_text()

    again = webqq(config, "start")
    assert again.returncode == 1
    assert again.stderr == "webqq is already running (pid %d)\n" % pid
    run = webqq(config, "run")                  # the lock, not the CLI's check, refuses
    assert (run.returncode, run.stderr) == (1, "webqq: already running (pid %d holds %s)\n"
                                            % (pid, state_dir / "webqq.pid"))

    status = webqq(config, "status")
    assert status.returncode == 0
    assert status.stdout.startswith("webqq is running, pid %d, up " % pid)
    assert "login: online as 10001" in status.stdout
    as_json = json.loads(webqq(config, "status", "--json").stdout)
    assert as_json["running"] and as_json["pid"] == pid and as_json["state"] == "online"

    stopped = webqq(config, "stop")
    assert stopped.returncode == 0
    assert stopped.stdout.startswith("webqq stopped (pid %d) in " % pid)
    assert stopped.stdout.endswith(": outbox drained, session saved\n")
    assert not (state_dir / "webqq.pid").exists()
    after = webqq(config, "status")
    assert (after.returncode, after.stdout) == (1, "webqq is not running (last exit code 0)\n")
    assert webqq(config, "stop").stdout == "webqq is not running\n"


def test_a_stale_pidfile_is_replaced(tmp_path, stop_after):
    config = write_config(tmp_path)
    stop_after(config)
    state_dir = tmp_path / "run"
    state_dir.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (state_dir / "webqq.pid").write_text(dead + "\n")
    assert webqq(config, "status").stdout == "webqq is not running\n"
    started = webqq(config, "start")
    assert started.returncode == 0, started.stderr
    assert (state_dir / "webqq.pid").read_text() != dead + "\n"
    assert "replaced the stale pidfile of pid %s" % dead in (tmp_path / "webqq.log").read_text()


def test_restart(tmp_path, stop_after):
    config = write_config(tmp_path)
    stop_after(config)
    assert webqq(config, "start").returncode == 0
    first = int((tmp_path / "run" / "webqq.pid").read_text())
    restarted = webqq(config, "restart")
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.startswith("webqq stopped (pid %d)" % first)
    second = int((tmp_path / "run" / "webqq.pid").read_text())
    assert second != first and "webqq started, pid %d" % second in restarted.stdout
    # A fresh embedded simulator never knows the saved session: that is no error, and
    # the log says it plainly (issue 12 #13).
    assert "webqq: resuming the saved session" in restarted.stdout
    log = (tmp_path / "webqq.log").read_text()
    assert "INFO webqq.client: RESUMING -> LOGGING_IN: saved session expired; logging in" \
        in log
    assert "resume refused" not in log


def test_sigkill_then_start_resumes_the_session(tmp_path, standalone, stop_after):
    # The simulator must outlive the daemon here: a separate process.
    config = standalone.config(tmp_path)
    stop_after(config)
    assert webqq(config, "start").returncode == 0
    pid = int((tmp_path / "run" / "webqq.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: webqq(config, "status").returncode == 1, "the killed daemon to be gone")
    # It never wrote that it stopped: status says so (issue 12, docs).
    status = webqq(config, "status").stdout
    assert status.startswith("webqq is not running: pid %d did not stop cleanly (killed "
                             "or crashed; its last status is from " % pid), status

    started = webqq(config, "start")
    assert started.returncode == 0, started.stderr
    assert "online as 10001 (resumed the saved session)" in started.stdout
    assert read_status(tmp_path / "run")["resumed"] is True
    standalone.control.say("!ping")
    standalone.control.wait_sent("pong")


def test_stop_sigkills_a_daemon_that_does_not_exit(tmp_path, stop_after):
    config = write_config(tmp_path)
    stop_after(config)
    assert webqq(config, "start").returncode == 0
    pid = int((tmp_path / "run" / "webqq.pid").read_text())
    os.kill(pid, signal.SIGSTOP)           # a stopped process cannot handle SIGTERM
    stopped = webqq(config, "stop", "--timeout", "0.5")
    assert stopped.returncode == 1
    assert stopped.stderr == ("webqq did not stop within 0.5 s: killed (SIGKILL, pid %d); "
                              "unsent messages may be lost\n" % pid)
    assert webqq(config, "status").returncode == 1


# -- reload -----------------------------------------------------------------------------

def test_reload_applies_a_changed_setting(tmp_path, daemons):
    config = write_config(tmp_path)
    daemon = daemons(config)
    sim = daemon_simulator(daemon)
    online_since = read_status(daemon.state_dir)["online_since"]
    write_config(tmp_path, bot={"command_prefix": "#"},
                 extra="[plugin:builtin]\nping_reply = PONG!\n")
    reloaded = webqq(config, "reload")
    assert (reloaded.returncode, reloaded.stdout) == (
        0, "webqq reloaded (pid %d)\nwebqq reload: applied [bot] command_prefix, "
           "[plugin:webqq.plugins.builtin]\n" % daemon.process.pid)
    sim.say("!ping")
    sim.say("#ping")
    sim.wait_sent("PONG!")
    assert [m["text"] for m in sim.sent()] == ["PONG!"]      # "!ping" is no command now
    assert "SIGHUP: reloading config and plugins" in daemon.log_text()
    status = read_status(daemon.state_dir)
    assert status["online_since"] == online_since and status["state"] == "online"
    assert status["last_reload"]["ok"] and status["command_prefix"] == "#"
    assert daemon.stop() == 0


def test_reload_refuses_a_broken_config_and_keeps_the_old_one(tmp_path, daemons):
    config = write_config(tmp_path)
    daemon = daemons(config)
    sim = daemon_simulator(daemon)
    good = config.read_text()
    config.write_text(good.replace("[bot]", "[bot]\ncommand_prefix = #\nretries = 3", 1)
                      if "[bot]" in good else good + "\n[bot]\nretries = 3\n")
    os.kill(daemon.process.pid, signal.SIGHUP)       # as systemctl reload does
    reload = wait_for(lambda: read_status(daemon.state_dir).get("last_reload"), "reload")
    assert reload["ok"] is False
    assert reload["error"] == "%s: [bot] retries: unknown key (known: plugins, " \
                              "command_prefix, send_interval, resend_ambiguous, " \
                              "accept_friends)" % config
    assert "reload refused, keeping the running configuration" in daemon.log_text()
    # webqq reload validates first and says the same, exit 3, without signalling.
    refused = webqq(config, "reload")
    assert (refused.returncode, refused.stderr) == (
        3, reload["error"] + "\nwebqq: the daemon running from %s is left as it is; fix the "
                            "file first\n" % config)
    sim.say("!ping")
    sim.wait_sent("pong")
    assert daemon.stop() == 0


# -- plugins ----------------------------------------------------------------------------

RAISING_PLUGIN = textwrap.dedent('''
    def setup(plugin):
        @plugin.on_message()
        def explode(ctx):
            raise RuntimeError("boom from a plugin")

        @plugin.on_message(timeout=0.5)
        async def never_ends(ctx):
            import asyncio
            await asyncio.sleep(3600)
''')


def test_a_raising_plugin_does_not_stop_the_others(tmp_path, daemons):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "exploding.py").write_text(RAISING_PLUGIN)
    (plugins / "broken_import.py").write_text("import no_such_module_here\n")
    config = write_config(tmp_path, bot={
        "plugins": "exploding, broken_import, webqq.plugins.builtin"})
    daemon = daemons(config, pythonpath=plugins)
    sim = daemon_simulator(daemon)
    sim.say("!ping")
    sim.wait_sent("pong")
    status = read_status(daemon.state_dir)
    assert status["plugins"] == ["exploding", "webqq.plugins.builtin"]
    assert status["plugin_errors"] == [
        "broken_import: failed to import: ModuleNotFoundError: No module named "
        "'no_such_module_here'"]
    log = daemon.log_text()
    assert "plugin exploding: handler setup.<locals>.explode failed" in log
    assert "RuntimeError: boom from a plugin" in log
    assert "plugin exploding: handler setup.<locals>.never_ends timed out after 0.5 s" in log
    assert daemon.stop() == 0


# -- configuration errors ---------------------------------------------------------------

CONFIG_ERRORS = {
    "unknown section": ("[deamon]\nstate_dir = run\n",
                        "{ini}: [deamon]: unknown section (did you mean 'daemon'?)"),
    "unknown key": ("[simulator]\nembedded = yes\n[network]\nretry = 3\n",
                    "{ini}: [network] retry: unknown key (did you mean 'retries'?)"),
    "bad value": ("[simulator]\nembedded = yes\n[network]\nrequest_timeout = abc\n",
                  "{ini}: [network] request_timeout: 'abc' is not a number of seconds"),
    "missing key": ("[simulator]\nembedded = no\n",
                    "{ini}: [account] qq: missing (required unless [simulator] "
                    "embedded = yes)"),
    "no password": ("[simulator]\nembedded = no\n[account]\nqq = 10001\n",
                    "{ini}: [account] password: missing: set password or password_file, "
                    "or WEBQQ_PASSWORD in the environment"),
    "not an ini file": ("qq = 10001\n",
                        "{ini}: line 1: 'qq = 10001' comes before any [section]"),
    "duplicate key": ("[account]\nqq = 10001\nQQ = 10002\n",
                      "{ini}: [account] qq: line 3: the key appears twice"),
    "two password keys": ("[account]\nqq = 10001\npassword = a\npassword_file = pw\n",
                          "{ini}: [account] password_file: password is set too; keep one "
                          "of them"),
    "empty password file": ("[simulator]\nembedded = no\n[account]\nqq = 10001\n"
                            "password_file = empty.txt\n",
                            "{ini}: [account] password_file: {dir}/empty.txt: empty"),
    "missing file": ("[simulator]\nembedded = yes\nworld = nope.json\n",
                     "{ini}: [simulator] world: 'nope.json' is not a file: {dir}/nope.json "
                     "does not exist"),
    "plugin section": ("[simulator]\nembedded = yes\n[plugin:nope]\nkey = 1\n",
                       "{ini}: [plugin:nope]: no such plugin in [bot] plugins "
                       "(webqq.plugins.builtin)"),
    "public listen without a token": (
        "[simulator]\nembedded = yes\n[api]\nlisten = 0.0.0.0:18765\n",
        "{ini}: [api] token: listen = 0.0.0.0:18765 is not a loopback address: set [api] "
        "token"),
    # An account the world does not list is added to it (issue 15); a person is not.
    "unknown account": ("[account]\nqq = 20001\n[daemon]\nstate_dir = run\n"
                        "[simulator]\nembedded = yes\nport = 0\ntls_port = 0\n"
                        "[api]\nlisten =\n",
                        "{ini}: [account] qq: not an account of the embedded simulator: "
                        "20001 is a person of the world, who cannot log in"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_every_config_error_exits_3_with_one_line(tmp_path, case):
    text, line = CONFIG_ERRORS[case]
    ini = tmp_path / "webqq.ini"
    ini.write_text(text)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "empty.txt").chmod(0o600)
    expected = line.format(ini=ini, dir=tmp_path) + "\n"
    command = "run" if case == "unknown account" else "check"
    result = webqq(ini, command)
    assert (result.returncode, result.stderr) == (3, expected)


def test_a_missing_config_file_exits_3(tmp_path):
    result = webqq(tmp_path / "absent.ini", "status")
    assert result.returncode == 3
    assert result.stderr == "%s: cannot read: No such file or directory\n" % (
        tmp_path / "absent.ini")


def test_check_prints_the_effective_config_with_secrets_masked(tmp_path):
    config = write_config(tmp_path, account={"qq": "10001", "password": "s3cret-pass"})
    result = webqq(config, "-t")
    assert result.returncode == 0
    assert "password = ********" in result.stdout and "s3cret-pass" not in result.stdout
    assert webqq(config, "check").stdout == result.stdout


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    # `webqq check | head -1`: the pipe's reader is gone before we write.
    config = write_config(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "webqq", "-c", str(config), "check"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(write_end)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr


# -- usage ------------------------------------------------------------------------------

def test_usage_errors_exit_2_and_api_verbs_need_the_api(tmp_path):
    config = write_config(tmp_path)
    assert webqq(config, "frobnicate").returncode == 2
    assert webqq(config).returncode == 2
    assert webqq(config, "stop", "--timeout", "soon").returncode == 2
    assert webqq(config, "send", "fax", "20001", "hi").returncode == 2
    offline = webqq(config, "send", "buddy", "20001", "hi")
    assert offline.returncode == 1
    assert offline.stderr == "webqq send: the API is off ([api] listen is empty)\n"


def test_bin_webqq_is_the_same_command(tmp_path):
    config = write_config(tmp_path)
    launcher = os.path.join(os.path.dirname(os.path.dirname(__file__)), "bin", "webqq")
    result = subprocess.run([sys.executable, launcher, "-c", str(config), "status"],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "webqq is not running\n")


# -- secrets ----------------------------------------------------------------------------

LEAKY_PLUGIN = textwrap.dedent('''
    import logging
    import pathlib

    def setup(plugin):
        @plugin.command("leak")
        def leak(ctx):
            # A careless plugin: logs the saved session, tokens and cookies included.
            text = pathlib.Path(plugin.settings["session_file"]).read_text()
            logging.getLogger("leaky").debug("session file: %s", text)
            ctx.reply("leaked")
''')


def test_no_secret_in_a_debug_log_of_a_whole_session(tmp_path, daemons):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "leaky.py").write_text(LEAKY_PLUGIN)
    token = "api-token-value-123"
    config = write_config(
        tmp_path, account={"qq": "10001", "password": PASSWORD},
        api={"listen": "", "token": token},
        bot={"plugins": "webqq.plugins.builtin, leaky"},
        extra="[plugin:leaky]\nsession_file = %s\n" % (tmp_path / "run" / "session-10001.json"))
    daemon = daemons(config, pythonpath=plugins)
    sim = daemon_simulator(daemon)
    sim.say("!ping")
    sim.wait_sent("pong")
    # A new ptwebqq (poll answer 116) puts a fresh secret through the session too.
    sim.rotate()
    sim.say("!echo after rotate")
    sim.wait_sent("after rotate")
    session = json.loads((daemon.state_dir / "session-10001.json").read_text())
    sim.say("!leak")
    sim.wait_sent("leaked")
    assert daemon.stop() == 0
    secrets = {"password": PASSWORD, "token": token,
               "psessionid": session["psessionid"], "vfwebqq": session["vfwebqq"]}
    secrets.update({cookie["name"]: cookie["value"] for cookie in session["cookies"]
                    if cookie["name"] in ("skey", "ptwebqq", "p_skey", "ptcz")})
    assert {"skey", "ptwebqq"} <= set(secrets)
    log = daemon.log_text()
    assert "DEBUG webqq.http:" in log and "INFO webqq.simulator:" in log
    assert "DEBUG leaky: session file: {" in log
    assert '"psessionid": "********"' in log            # the mask did its work
    for name, value in secrets.items():
        assert value not in log, "%s leaked into the log" % name


def test_without_c_the_config_is_looked_up(tmp_path):
    (tmp_path / "conf").mkdir()
    write_config(tmp_path / "conf")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))

    def webqq_here(cwd):
        return subprocess.run([sys.executable, "-m", "webqq", "status"], cwd=str(cwd),
                              env=env, capture_output=True, text=True, timeout=60)
    found = webqq_here(tmp_path)
    assert (found.returncode, found.stdout) == (1, "webqq is not running\n")
    if os.path.exists("/etc/webqq/webqq.ini"):
        pytest.skip("this machine has /etc/webqq/webqq.ini")
    (tmp_path / "elsewhere").mkdir()
    missing = webqq_here(tmp_path / "elsewhere")
    assert missing.returncode == 3
    assert missing.stderr == ("no configuration file: tried conf/webqq.ini, %s, "
                              "/etc/webqq/webqq.ini; pass -c FILE\n"
                              % (tmp_path / "xdg" / "webqq" / "webqq.ini"))


# -- the first hour (issue 12) ----------------------------------------------------------

@pytest.fixture
def busy_port():
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def unused_port() -> int:
    """A port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("key", ["[simulator] port", "[simulator] tls_port", "[api] listen"])
def test_a_port_in_use_is_named_in_one_line_by_run_and_start(tmp_path, busy_port, key):
    simulator = {"embedded": "yes", "port": "0", "tls_port": "0", "poll_hold": "5"}
    api = {"listen": ""}
    if key == "[api] listen":
        api["listen"] = "127.0.0.1:%d" % busy_port
    else:
        simulator[key.split()[1]] = str(busy_port)
    config = write_config(tmp_path, simulator=simulator, api=api)
    line = "webqq: cannot listen on 127.0.0.1:%d (%s): address already in use\n" % (
        busy_port, key)
    run = webqq(config, "run")
    assert (run.returncode, run.stderr) == (1, line)
    log = (tmp_path / "webqq.log").read_text()
    assert log.index("ERROR webqq.daemon: cannot listen on") < log.index("stopped (exit code")
    started = webqq(config, "start")
    assert (started.returncode, started.stdout, started.stderr) == (1, "", line)


def test_a_broken_file_does_not_lock_the_operator_out(tmp_path, stop_after):
    config = write_config(tmp_path, api={"listen": "127.0.0.1:0"})
    stop_after(config)
    assert webqq(config, "start").returncode == 0
    state_dir = tmp_path / "run"
    pid = int((state_dir / "webqq.pid").read_text())
    good = config.read_text()

    # A bad key: found by the note the daemon left, or by the state_dir the file names.
    config.write_text(good + "[bot]\nretries = 3\n")
    error = "%s: [bot] retries: unknown key (known: plugins, command_prefix, " \
            "send_interval, resend_ambiguous, accept_friends)\n" % config
    acting = "webqq %s: the file is not valid; acting on the daemon running from it " \
             "(state_dir %s)\n"
    for runtime in (None, tmp_path / "no-note-here"):
        status = webqq(config, "status", runtime=runtime)
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("webqq is running, pid %d" % pid)
        assert status.stderr == error + acting % ("status", state_dir)
    friends = webqq(config, "friends")       # the API's token was generated: it is known
    assert friends.returncode == 0 and friends.stdout.endswith("3 friend(s)\n")

    # The state_dir line itself broken: only the note knows where the daemon lives.
    config.write_text(good.replace("state_dir = run", "state_dir ="))
    assert webqq(config, "status", runtime=tmp_path / "no-note-here").returncode == 3
    restart = webqq(config, "restart")       # it would leave no daemon at all: refused
    assert restart.returncode == 3
    assert restart.stderr.endswith("webqq: the daemon running from %s is left as it is; fix "
                                   "the file first\n" % config)
    assert Pidfile.probe(state_dir / "webqq.pid") == (True, pid)
    stopped = webqq(config, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("webqq stopped (pid %d)" % pid)
    assert webqq(config, "status").returncode == 3       # nothing runs: the error stays
    config.write_text(good)


def test_reload_moves_the_api_and_names_what_waits_for_a_restart(tmp_path, daemons):
    config = write_config(tmp_path, api={"listen": "127.0.0.1:0"})
    daemon = daemons(config)
    old_url = daemon.wait_online()["api"]["url"]
    port = unused_port()
    write_config(tmp_path, api={"listen": "127.0.0.1:%d" % port},
                 network={"request_timeout": "90"}, bot={"send_interval": "0.75"},
                 simulator={"embedded": "yes", "port": "0", "tls_port": "0",
                            "poll_hold": "4"})
    reloaded = webqq(config, "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.splitlines()[1:] == [
        "webqq reload: applied [network] request_timeout, [bot] send_interval, [api] listen",
        "webqq reload: [simulator] poll_hold changed; that takes effect at the next restart "
        "(webqq restart)"]
    assert daemon.status()["api"]["url"] == "http://127.0.0.1:%d" % port
    assert webqq(config, "friends").stdout.endswith("3 friend(s)\n")
    with pytest.raises(OSError):
        urllib.request.urlopen(old_url + "/get_status", timeout=5)
    assert daemon.stop() == 0


def test_status_shows_an_outage_as_it_starts_and_drops_its_error_after(tmp_path, daemons):
    config = write_config(tmp_path)
    daemon = daemons(config)
    sim = daemon_simulator(daemon)
    sim.offline(2)
    # At once, not after the poll's retries (about 12 s before).
    def outage():
        status = daemon.status()
        return status.get("state") not in (None, "online") and status.get("last_error") \
            and status
    shown = wait_for(outage, "the outage to show", timeout=3)
    assert shown["state"] == "relinking"
    assert shown["last_error"]["text"].startswith("poll failed: ")
    shown = webqq(config, "status").stdout
    assert re.search(r"login: relinking as 10001 since \d\d:\d\d:\d\d \(\d+s ago\); relink "
                     r"attempt \d+ (in \d+ s|running); last error at \d\d:\d\d:\d\d "
                     r"\(\d+s ago\): (poll|relink) failed: ", shown), shown
    back = wait_for(lambda: daemon.status().get("state") == "online" and daemon.status(),
                    "the daemon to be back")
    assert back["last_error"] is None and back["next_attempt"] is None
    assert "last error" not in webqq(config, "status").stdout
    assert daemon.stop() == 0


def test_a_poll_that_fails_twice_is_retried_without_a_relink(tmp_path, daemons):
    # A passing hiccup of the long poll is retried at once, quietly. Without that retry
    # every failed poll climbed the client's recovery ladder, which only a healthy poll
    # starts over: in bench/soak.py, faults met right after each relink had it waiting
    # minutes, and 734 of 1,140 messages went unanswered.
    daemon = daemons(write_config(tmp_path))
    sim = daemon_simulator(daemon)
    sim._call("fault", {"path": "/channel/poll2", "kind": "status", "status": 502,
                        "count": 2})
    sim.say("!ping")                    # ends the held poll; the next two get 502
    sim.wait_sent("pong")
    wait_for(lambda: sim._call("fault") == [], "the faults to be served")
    sim.say("!echo still here")
    sim.wait_sent("still here")
    log = daemon.log_text()
    assert "attempt 2 of 3 failed (502 Bad Gateway)" in log
    assert "poll failed" not in log and "RELINKING" not in log
    assert daemon.status()["state"] == "online"


def test_a_kick_is_told_with_its_time_after_the_daemon_stops(tmp_path, daemons):
    config = write_config(tmp_path)
    daemon = daemons(config)
    daemon_simulator(daemon).kick()
    assert daemon.process.wait(timeout=DEADLINE) == 1
    shown = webqq(config, "status")
    assert shown.returncode == 1
    assert re.fullmatch(r"webqq is not running \(last exit code 1\): offline since "
                        r"\d\d:\d\d:\d\d \(\d+s ago\): kicked: .+\n", shown.stdout), shown.stdout
    assert read_status(daemon.state_dir)["offline"]["reason"].startswith("kicked: ")


def test_start_against_a_closed_port_reports_each_attempt_and_fails_at_the_deadline(
        tmp_path, stop_after):
    port = unused_port()
    config = write_config(tmp_path, simulator={"embedded": "no"},
                          account={"qq": "10001", "password": PASSWORD},
                          hosts={host: "127.0.0.1:%d" % port
                                 for host in HTTP_HOSTS + TLS_HOSTS})
    stop_after(config)
    started = webqq(config, "start", "--wait", "3")
    assert started.returncode == 1
    pid = int((tmp_path / "run" / "webqq.pid").read_text())
    lines = started.stdout.splitlines()
    assert lines[1] == "webqq: checking the account"
    failed = "login failed: ConnectError: Cannot connect to check.ptlogin2.qq.com " \
             "(127.0.0.1 port %d): Connection refused" % port
    assert lines[2].startswith("webqq: %s; trying again in " % failed)
    assert started.stderr.startswith(
        "webqq: not online after 3 s; pid %d keeps trying (webqq status, webqq stop); last "
        "error: %s; log: " % (pid, failed))
    # One line per attempt in the log, not one per HTTP retry.
    log = [line for line in (tmp_path / "webqq.log").read_text().splitlines()
           if " DEBUG " not in line]
    refused = [line for line in log if "Connection refused" in line]
    assert len(refused) == len([line for line in log if "login again in" in line]) >= 2
    assert all(" WARNING webqq.client: login failed: " in line for line in refused)


def _queue_a_reply_behind_another(daemon):
    """A reply waits its turn: ``[bot] send_interval`` is 30 s and one just went."""
    sim = daemon_simulator(daemon)
    sim.say("!echo one")
    sim.wait_sent("one")
    sim.say("!echo two")
    wait_for(lambda: daemon.status()["queued"] == 1, "the second reply to wait")
    return sim


def test_ctrl_c_during_an_outage_keeps_a_queued_message_without_calling_it_failed(
        tmp_path, daemons):
    daemon = daemons(write_config(tmp_path, bot={"send_interval": "30"}))
    sim = _queue_a_reply_behind_another(daemon)
    sim.offline(30)
    wait_for(lambda: daemon.status()["state"] != "online", "the outage")
    assert daemon.stop(signal.SIGINT) == 0
    log = daemon.log_text()
    # It waited its turn in the store, and stays there for the next start.
    assert "INFO webqq.daemon: 1 queued in the store: sent at the next start" in log
    assert not [line for line in log.splitlines()     # the client never had it
                if "not sent" in line or "Message 2 " in line]
    assert read_status(daemon.state_dir)["shutdown"]["outbox"] == "1 queued in the store"


def test_a_second_ctrl_c_forces_the_exit_and_says_so(tmp_path, daemons):
    config = write_config(tmp_path, bot={"send_interval": "30"})
    daemon = daemons(config)
    _queue_a_reply_behind_another(daemon)
    daemon.process.send_signal(signal.SIGINT)     # it waits up to 10 s for the queue
    wait_for(lambda: "SIGINT: shutting down" in daemon.log_text(), "the first SIGINT")
    assert daemon.stop(signal.SIGINT) == 1
    assert "WARNING webqq.daemon: SIGINT again: exiting now, without waiting for the " \
           "shutdown to finish" in daemon.log_text()
    shutdown = read_status(daemon.state_dir)["shutdown"]
    assert shutdown["forced"] == "SIGINT" and shutdown["outbox"] == "1 queued in the store"
    assert not (daemon.state_dir / "webqq.pid").exists()
    assert webqq(config, "status").stdout == ("webqq is not running (last exit code 1): a "
                                              "second SIGINT forced the exit\n")


# -- the command line, for people -------------------------------------------------------

def test_bare_webqq_lists_the_commands_and_every_option_is_explained(tmp_path):
    def webqq_args(*args):
        return subprocess.run([sys.executable, "-m", "webqq", *args], capture_output=True,
                              text=True, timeout=60, env=environment(), cwd=str(tmp_path))
    bare = webqq_args()
    assert bare.returncode == 2
    for verb in ("check", "run", "start", "stop", "restart", "status", "reload", "send",
                 "captcha", "friends", "groups"):
        assert re.search(r"^    %s +\S" % verb, bare.stderr, re.M), verb
    restart = webqq_args("restart", "--help").stdout
    assert "SIGKILL the old daemon after this long" in restart
    assert "wait this long for the new daemon's login" in restart
    assert "the characters the image shows" in webqq_args("captcha", "--help").stdout
    config = write_config(tmp_path)
    after = webqq_args("status", "-c", str(config))    # the option after the command
    assert (after.returncode, after.stdout) == (1, "webqq is not running\n")


def test_the_echo_example_keeps_its_state_out_of_the_working_directory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "webqq.examples.echo", "--demo",
                             "--poll-hold", "0.5"], capture_output=True, text=True,
                            timeout=60, env=environment(), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "echo seen by the simulator" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_simulator_writes_its_ca_where_asked_and_names_it(tmp_path):
    # Issue 12, the standalone recipe: a ca_file outside the installed package, so a
    # reinstall does not pull it from under the daemon's configuration.
    import ssl
    target = tmp_path / "made" / "sim-ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "webqq.simulator.cli", "--port", "0", "--tls-port", "0",
         "--write-ca", str(target)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=environment())
    try:
        tls_port = int(re.findall(r"127\.0\.0\.1:(\d+)", process.stdout.readline())[1])
        assert process.stdout.readline() == "CA certificate (TEST MATERIAL): %s\n" % target
        context = ssl.create_default_context(cafile=str(target))     # verifies the name
        with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="ssl.ptlogin2.qq.com") as tls:
            tls.sendall(b"GET /check?uin=10001&appid=1003903&r=0.5 HTTP/1.1\r\n"
                        b"Host: ssl.ptlogin2.qq.com\r\nConnection: close\r\n\r\n")
            answer = b""
            while not answer.endswith(b");"):
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ") and b"ptui_checkVC('0'," in answer
    finally:
        process.terminate()
        process.wait(timeout=DEADLINE)
        process.stdout.close()
    refused = subprocess.run(
        [sys.executable, "-m", "webqq.simulator.cli", "--port", "0", "--tls-port", "0",
         "--write-ca", str(target / "ca.pem")],                  # under a file
        capture_output=True, text=True, env=environment(), timeout=DEADLINE)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == ("webqq-simulator: cannot write the CA certificate to %s: "
                              "%s: File exists\n" % (target / "ca.pem", target))
