"""The real ``webqq`` command in subprocesses, against the simulator (issue 5).

Every test has its own directory, state_dir and free ports, and waits on conditions
(the status file, the simulator's /_sim/sent), never on fixed sleeps.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from daemon_helpers import (DISCUSSION, GROUP, PASSWORD, Daemon, StandaloneSimulator,
                            daemon_simulator, read_status, wait_for, webqq, write_config)


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

    assert daemon.stop() == 0
    status = read_status(daemon.state_dir)
    assert status["phase"] == "stopped"
    assert status["shutdown"] == {"outbox": "drained", "session": "saved", "exit_code": 0}
    assert status["counts"]["received"] == 4 and status["counts"]["sent"] == 4
    assert not (daemon.state_dir / "webqq.pid").exists()
    assert (daemon.state_dir / "session-10001.json").exists()
    log = daemon.log_text()
    assert "SIGTERM: shutting down" in log
    assert "curl -d '{\"to\": 10001, \"from\": 20001, \"text\": \"!ping\"}' " \
           "http://127.0.0.1:%d/_sim/say" % status["simulator"]["port"] in log


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


def test_start_status_stop_and_a_second_start_refused(tmp_path, stop_after):
    config = write_config(tmp_path, daemon={"logfile": ""})
    stop_after(config)
    started = webqq(config, "start")
    assert started.returncode == 0, started.stderr
    assert "online as 10001 (logged in)" in started.stdout
    state_dir = tmp_path / "run"
    pid = int((state_dir / "webqq.pid").read_text())
    assert started.stdout.startswith("webqq started, pid %d" % pid)
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


def test_sigkill_then_start_resumes_the_session(tmp_path, standalone, stop_after):
    # The simulator must outlive the daemon here: a separate process.
    config = standalone.config(tmp_path)
    stop_after(config)
    assert webqq(config, "start").returncode == 0
    pid = int((tmp_path / "run" / "webqq.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: webqq(config, "status").returncode == 1, "the killed daemon to be gone")

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
        0, "webqq reloaded (pid %d)\n" % daemon.process.pid)
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
                              "command_prefix, send_interval, resend_ambiguous)" % config
    assert "reload refused, keeping the running configuration" in daemon.log_text()
    # webqq reload validates first and says the same, exit 3, without signalling.
    refused = webqq(config, "reload")
    assert (refused.returncode, refused.stderr) == (3, reload["error"] + "\n")
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
    "unknown account": ("[account]\nqq = 12345\n[daemon]\nstate_dir = run\n"
                        "[simulator]\nembedded = yes\nport = 0\ntls_port = 0\n"
                        "[api]\nlisten =\n",
                        "{ini}: [account] qq: 12345 is not an account of the embedded "
                        "simulator (its accounts: 10001, 10002)"),
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
