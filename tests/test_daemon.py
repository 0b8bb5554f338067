"""The daemon's parts, in process: secret masking, repeated warnings, log files, the
pidfile lock, the status file. The whole daemon runs in tests/test_cli.py."""
import argparse
import asyncio
import http.cookiejar
import json
import logging
import os
import subprocess
import sys
import time

import pytest
from daemon_helpers import write_config

from webqq import statedir
from webqq.daemon import config as configuration
from webqq.daemon.cli import Commands
from webqq.daemon.config import DaemonConfig
from webqq.daemon.daemon import Daemon
from webqq.daemon.logs import LogSetup, MaskingCookieJar, RepeatCollapser, SecretMask
from webqq.daemon.pidfile import AlreadyRunning, Pidfile, pidfile_path
from webqq.daemon.process import ExitCode, System
from webqq.http.redact import MASK


class ListHandler(logging.Handler):
    """Keeps the formatted lines."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def handler():
    handler = ListHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.daemon")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_exit_codes_are_the_documented_ones():
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4]


def test_secret_mask_covers_message_args_traceback_and_url_forms(handler):
    mask = SecretMask()
    handler.addFilter(mask)
    mask.add("p@ss word/1")
    mask.add("abc")                      # too short to mask safely: ignored
    mask.add(None)
    logger = logging.getLogger("test.daemon")
    logger.debug("login with %s", "p@ss word/1")
    logger.info("GET /x?ptwebqq=p%40ss%20word%2F1&y=p%40ss+word%2F1 abc")
    try:
        raise ValueError("bad p@ss word/1")
    except ValueError:
        logger.exception("failed")
    logger.warning("stack", stack_info=True, extra={})
    text = "\n".join(handler.lines)
    assert "p@ss" not in text and "p%40ss" not in text
    assert handler.lines[0] == "DEBUG login with ********"
    assert handler.lines[1] == "INFO GET /x?ptwebqq=********&y=******** abc"
    assert handler.lines[2].endswith("ValueError: bad ********")


def test_masking_cookie_jar_registers_secret_cookies_as_they_arrive():
    mask = SecretMask()
    jar = MaskingCookieJar(mask)
    for name, value in (("skey", "@AbCdEf123"), ("uin", "o0000010001")):
        jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, ".qq.com", True, True, "/", True, False, None,
            True, None, None, {}))
    assert mask.mask("skey=@AbCdEf123; uin=o0000010001") == "skey=********; uin=o0000010001"


def test_secret_mask_keeps_the_last_session_secrets_max_values_of_each_account(monkeypatch):
    import webqq.daemon.logs as logs
    monkeypatch.setattr(logs, "SESSION_SECRETS_MAX", 2)
    mask = SecretMask()
    mask.add("the-password")
    for value in ("skey-one", "skey-two", "skey-one", "skey-three"):
        mask.add(value, session="shop")
    mask.add("other-account", session="support")
    # skey-one was registered again after skey-two: skey-two is the oldest, let go; the
    # other account's value is not pushed out by this one's logins.
    assert mask.mask("the-password skey-one skey-two skey-three other-account") == \
        "******** ******** skey-two ******** ********"
    for n in range(100):
        mask.add("rotated-%d" % n, session="shop")
    assert len(mask._refs) <= 3 + 3 * 3      # the password's forms, three values' forms
    assert len(mask._starts) <= len(mask._refs)     # its index lets go of them too
    assert mask.mask("the-password other-account") == "******** ********"


def test_secret_mask_takes_a_thousand_accounts_cookies_without_stalling_the_loop():
    # Each add sorted every registered form again: 10,000 session values (a thousand
    # accounts logging in) took 6 s of the IOLoop; they must take a small fraction.
    mask = SecretMask()
    mask.add("abcd-short")
    mask.add("abcd-short-and-longer", session="one")
    start = time.perf_counter()
    for account in range(1000):
        for cookie in range(10):
            mask.add("%032x" % (account * 10 + cookie + 1), session=account)
    assert time.perf_counter() - start < 2.0
    # Longest first: the longer secret is masked whole, not after its prefix.
    assert mask.mask("abcd-short-and-longer abcd-short") == "******** ********"
    assert mask.mask("%032x" % 1) == "********"


def test_repeated_warnings_are_collapsed(handler):
    handler.addFilter(RepeatCollapser(handler))
    logger = logging.getLogger("test.daemon")
    for _ in range(5):
        logger.warning("poll failed: %s", "reset")
    logger.info("something else")
    for _ in range(2):
        logger.info("info lines are never collapsed")
    logger.error("once")
    logger.error("once")
    collapser = handler.filters[0]
    collapser.flush()
    collapser.flush()
    assert handler.lines == [
        "WARNING poll failed: reset", "WARNING last message repeated 4 times",
        "INFO something else", "INFO info lines are never collapsed",
        "INFO info lines are never collapsed", "ERROR once",
        "ERROR last message repeated 1 times"]


def test_log_setup_watched_file_reopens_after_logrotate(tmp_path):
    logfile = tmp_path / "logs" / "webqq.log"
    setup = LogSetup(SecretMask())
    root_level = logging.getLogger().level
    try:
        setup.apply(DaemonConfig(state_dir=tmp_path, logfile=logfile, loglevel=logging.INFO))
        assert isinstance(setup.handler, logging.handlers.WatchedFileHandler)
        logging.getLogger("test.logfile").info("before rotation")
        os.rename(logfile, str(logfile) + ".1")          # what logrotate does
        logging.getLogger("test.logfile").info("after rotation")
        logging.getLogger("test.logfile").debug("below the level")
    finally:
        setup.close()
        logging.getLogger().setLevel(root_level)
    assert "before rotation" in (tmp_path / "logs" / "webqq.log.1").read_text()
    after = logfile.read_text()
    assert "INFO test.logfile: after rotation" in after and "below" not in after


def test_log_setup_size_rotation_and_handler_replaced_on_change(tmp_path):
    logfile = tmp_path / "webqq.log"
    setup = LogSetup(SecretMask())
    root_level = logging.getLogger().level
    try:
        setup.apply(DaemonConfig(state_dir=tmp_path, logfile=logfile, log_max_bytes=200,
                                 log_backups=2))
        first = setup.handler
        assert isinstance(first, logging.handlers.RotatingFileHandler)
        for n in range(20):
            logging.getLogger("test.logsize").warning("line %d of the log", n)
        setup.apply(DaemonConfig(state_dir=tmp_path, logfile=logfile, log_max_bytes=200,
                                 log_backups=2, loglevel=logging.DEBUG))
        assert setup.handler is first                       # same destination: kept
        setup.apply(DaemonConfig(state_dir=tmp_path, logfile=None))
        assert isinstance(setup.handler, logging.StreamHandler)
        assert first not in logging.getLogger().handlers
    finally:
        setup.close()
        logging.getLogger().setLevel(root_level)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["webqq.log", "webqq.log.1",
                                                          "webqq.log.2"]


def test_pidfile_lock_refuses_a_second_holder_and_probe_sees_it(tmp_path):
    path = tmp_path / "webqq.pid"
    assert Pidfile.probe(path) == (False, None)
    first = Pidfile(path)
    assert first.acquire() is None
    assert Pidfile.probe(path) == (True, None)               # up, pid not written yet
    first.write(4242)
    assert Pidfile.probe(path) == (True, 4242)
    with pytest.raises(AlreadyRunning) as refused:
        Pidfile(path).acquire()
    assert refused.value.pid == 4242
    assert str(refused.value) == "already running (pid 4242 holds %s)" % path
    first.release()
    first.release()                                          # twice is fine
    assert not path.exists() and Pidfile.probe(path) == (False, None)


def test_pidfile_not_written_is_not_removed_and_a_stale_one_is_replaced(tmp_path):
    path = tmp_path / "webqq.pid"
    path.write_text("999999\n")                              # left by a killed daemon
    assert Pidfile.probe(path) == (False, 999999)
    pidfile = Pidfile(path)
    assert pidfile.acquire() == 999999                       # stale: taken over
    assert Pidfile.probe(path) == (True, None)               # the stale pid is gone
    pidfile.release()                                        # we never wrote our pid
    assert path.read_text() == ""


class RecordingSystem(System):
    """Records signals instead of sending them; its clock moves only when it sleeps."""

    def __init__(self) -> None:
        self.signals = []
        self.now = 0.0

    def kill(self, pid, signum):
        self.signals.append((pid, signum))

    def sleep(self, seconds):
        self.now += seconds

    def monotonic(self):
        return self.now


def test_a_starting_daemon_hides_the_stale_pid_so_nothing_signals_it(tmp_path, capsys):
    config = configuration.load(write_config(tmp_path))
    path = pidfile_path(config)
    path.parent.mkdir()
    path.write_text("%d\n" % os.getpid())                  # left by a SIGKILLed daemon
    starting = Pidfile(path)
    assert starting.acquire() == os.getpid()                 # still reported, for the log
    try:
        assert Pidfile.probe(path) == (True, None)           # locked, pid not written yet
        system = RecordingSystem()
        commands = Commands(config, system=system)
        assert commands.stop(argparse.Namespace(timeout=1.0)) == ExitCode.FAILURE
        assert commands.reload(argparse.Namespace()) == ExitCode.FAILURE
        # Not online yet: status says so with its exit code too.
        assert commands.status(argparse.Namespace(json=False)) == ExitCode.FAILURE
        assert system.signals == []
        out, err = capsys.readouterr()
        assert err == ("webqq is starting and has not written its pid; try again\n"
                       "webqq is starting and has not written its pid; try again\n")
        assert out == "webqq is starting (pid not written yet)\n"
    finally:
        starting.release()


def test_the_daemon_masks_the_credentials_of_the_api_urls(tmp_path):
    daemon = Daemon(configuration.load(write_config(tmp_path, api={
        "listen": "", "post_url": "http://u:UrlPass-777@127.0.0.1:9/?key=QueryKey-555",
        "ws_reverse_url": "ws://127.0.0.1:9/?access_token=WsTok-444"})))
    assert daemon.mask.mask("UrlPass-777 QueryKey-555 WsTok-444") == " ".join(
        [MASK] * 3)


def test_pidfile_lock_is_seen_from_another_process(tmp_path):
    path = tmp_path / "webqq.pid"
    pidfile = Pidfile(path)
    pidfile.acquire()
    pidfile.write(os.getpid())
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from webqq.daemon.pidfile import Pidfile; "
         "print(Pidfile.probe(sys.argv[1]))", str(path)],
        capture_output=True, text=True, check=True)
    pidfile.release()
    assert probe.stdout == "(True, %d)\n" % os.getpid()


def test_status_file_is_replaced_atomically(tmp_path):
    path = tmp_path / "status.json"
    statedir.atomic_write_json(path, {"state": "online"})
    statedir.atomic_write_json(path, {"state": "stopped"})
    assert json.loads(path.read_text()) == {"state": "stopped"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]   # no temporary left


# -- stopping with messages still queued ------------------------------------------------

def make_daemon(tmp_path):
    from daemon_helpers import write_config

    from webqq.daemon.config import load
    daemon = Daemon(load(write_config(tmp_path)))
    daemon.config.daemon.state_dir.mkdir()
    return daemon


@pytest.mark.gen_test(timeout=30)
async def test_a_clean_stop_leaves_unsent_replies_queued_in_the_store(tmp_path, world):
    from client_helpers import Recorder

    from webqq.onebot.store import Store
    daemon = make_daemon(tmp_path)
    daemon.drain_timeout = 0.05
    daemon._open_store()
    (account,) = daemon.accounts.values()
    account.client = world.client(send_interval=60.0)     # the second waits its turn
    recorder = Recorder(account.client)
    account.client.start()
    await recorder.online()
    account._start_queue()
    first = account._send("buddy", 20001, "first")
    second = account._send("group", 30001, "second")
    while not [m for m in await world.control.sent() if m["text"] == "first"]:
        await asyncio.sleep(0.02)
    await daemon._shut_down()
    assert daemon.shutdown_report == {"outbox": "1 queued in the store",
                                      "session": "saved", "exit_code": 0}
    assert account.client.state.value == "stopped"
    assert not (tmp_path / "run" / "outbox-10001.json").exists()
    store = Store(tmp_path / "run" / statedir.STORE)
    rows = store.for_account(10001)
    assert [(row.id, row.text, row.origin) for row in rows.queued()] == [
        (second, "second", "plugin")]
    assert rows.get(first).status == "sent"
    store.close()


def test_atomic_write_makes_every_state_file_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        statedir.atomic_write(tmp_path / "token", b"secret\n")
        statedir.atomic_write(tmp_path / "shared", b"x", mode=0o644)
    finally:
        os.umask(previous)
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "token").read_bytes() == b"secret\n"


# -- reload, crash, pointer (issue 12) ---------------------------------------------------

def test_reload_applies_what_it_can_live_and_keeps_the_rest_for_a_restart(tmp_path, io_loop):
    import types

    from webqq.daemon.config import load
    from webqq.plugins import Dispatcher
    daemon = make_daemon(tmp_path)
    old = daemon.config
    daemon.stream = types.SimpleNamespace(connect_timeout=10.0, request_timeout=120.0,
                                          retry=None)
    (account,) = daemon.accounts.values()
    account.outbound = types.SimpleNamespace(send_interval=0.5)
    account.client = types.SimpleNamespace(send_queue=types.SimpleNamespace(interval=0.5),
                                           manage=types.SimpleNamespace(accept_friends=False),
                                           resend_ambiguous=False)
    account.dispatcher = Dispatcher(lambda *_: None)
    new = load(write_config(tmp_path, network={"connect_timeout": "3", "retries": "1"},
                            bot={"send_interval": "2", "command_prefix": "#",
                                 "resend_ambiguous": "yes", "accept_friends": "all"},
                            daemon={"state_dir": "elsewhere", "loglevel": "warning"},
                            simulator={"embedded": "yes", "port": "0", "tls_port": "0",
                                       "poll_hold": "7"}))
    outcome = io_loop.run_sync(lambda: daemon._apply(new))
    assert outcome["applied"] == ["[daemon] loglevel", "[network] connect_timeout",
                                  "[network] retries", "[bot] command_prefix",
                                  "[bot] send_interval", "[bot] resend_ambiguous",
                                  "[bot] accept_friends"]
    assert outcome["at_restart"] == ["[daemon] state_dir", "[simulator] poll_hold"]
    assert (daemon.stream.connect_timeout, daemon.stream.retry.attempts) == (3.0, 2)
    assert account.client.send_queue.interval == 2.0 and account.dispatcher.prefix == "#"
    assert account.client.manage.accept_friends is True
    assert account.client.resend_ambiguous is True      # the next unknown fate: resent
    assert account.outbound.send_interval == 2.0         # the durable queue paces alike
    # Until the restart the daemon runs with what it started with there: its status and
    # pidfile stay where they are.
    assert daemon.config.daemon.state_dir == old.daemon.state_dir
    assert daemon.config.simulator == old.simulator
    assert daemon.config.network.connect_timeout == 3.0


# A daemon whose start meets a bug (in a child: the daemon runs its own event loop).
CRASHING = """if True:
    import sys
    from webqq.daemon import cli, daemon
    async def explode(self):
        raise RuntimeError("a bug")
    daemon.Daemon._start_api = explode
    sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verb", ["run", "start"])
def test_a_start_that_crashes_says_so_before_it_says_stopped(tmp_path, verb):
    from daemon_helpers import environment
    config = write_config(tmp_path)
    crashed = subprocess.run([sys.executable, "-c", CRASHING, "-c", str(config), verb],
                             capture_output=True, text=True, timeout=60,
                             env=environment(runtime=tmp_path / "xdg"))
    assert crashed.returncode == ExitCode.FAILURE
    assert crashed.stderr == ("webqq: crashed: RuntimeError: a bug\n" if verb == "start" else
                              "webqq: crashed: RuntimeError: a bug; the traceback is in the "
                              "log\n")
    log = (tmp_path / "webqq.log").read_text()
    assert log.index("CRITICAL webqq.daemon: the daemon crashed") < log.index(
        "INFO webqq.daemon: stopped (exit code 1)")
    assert "RuntimeError: a bug" in log and "exit code 0" not in log


def test_the_pointer_leads_to_a_running_daemon_only(tmp_path):
    from webqq.daemon.pidfile import Pointer
    notes, state_dir = tmp_path / "notes", tmp_path / "state"
    state_dir.mkdir()
    config = write_config(tmp_path)
    pointer = Pointer(config, notes)
    assert pointer.state_dir() is None                         # no note yet
    pidfile = Pidfile(state_dir / "webqq.pid")
    pidfile.acquire()
    pidfile.write(os.getpid())
    pointer.write(state_dir, os.getpid())
    assert notes.stat().st_mode & 0o777 == 0o700
    link = tmp_path / "link.ini"
    link.symlink_to(config)
    assert Pointer(link, notes).state_dir() == state_dir       # the same file, another name
    pidfile.release()
    assert pointer.state_dir() is None                         # its daemon is gone
    pointer.remove(os.getpid())
    assert list(notes.iterdir()) == []
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(PermissionError):                       # others could plant notes
        Pointer(config, shared).write(state_dir, os.getpid())


# -- memory a burst freed goes back (issue 17) ---------------------------------------------

def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_the_free_memory_of_a_burst_goes_back_to_the_system():
    # What a thousand TLS handshakes leave: buffers in the C heap, freed, but below
    # memory still in use, so the heap cannot shrink by itself.
    if not System().release_free_memory():
        pytest.skip("no malloc_trim here (not glibc): nothing to give back with")
    burst = [bytes(20000) + bytes([n % 256]) for n in range(2000)]    # 40 MB, C heap
    keeper = bytes(20000) + b"kept"                 # allocated after: the heap's top
    before = _rss_kb()
    del burst
    assert _rss_kb() > before - 10000               # freed, but still resident
    System().release_free_memory()
    assert _rss_kb() < before - 30000
    assert keeper.endswith(b"kept")


def test_the_daemons_housekeeping_gives_freed_memory_back(tmp_path):
    calls = []

    class Recorded(System):
        def release_free_memory(self):
            calls.append(1)
            return True

    daemon = make_daemon(tmp_path)
    daemon.system = Recorded()
    daemon._tick()
    assert calls == [1]


@pytest.mark.gen_test
async def test_a_status_file_slow_to_write_is_rewritten_less_often(tmp_path, io_loop):
    """A thousand accounts' status file took tens of milliseconds to build and write;
    rewritten every STATUS_DELAY under traffic, it held up the replies behind it. The
    next rewrite now waits STATUS_COST_FACTOR times what the last one took, if longer;
    and the file is written on one line (indenting took three times as long)."""
    from webqq.daemon.daemon import STATUS_COST_FACTOR, STATUS_DELAY
    from webqq.daemon.status import status_path
    daemon = make_daemon(tmp_path)
    daemon.phase = "running"
    daemon.write_status()
    text = status_path(daemon.config).read_text()
    assert text.count("\n") == 1 and json.loads(text)["phase"] == "running"
    daemon._status_cost = 0.2               # as a thousand accounts' file may take
    clock = asyncio.get_running_loop()      # the timer handle's clock
    daemon.status_soon()
    assert daemon._status_timer_soon.when() - clock.time() == pytest.approx(
        STATUS_COST_FACTOR * 0.2, abs=0.05)
    daemon.write_status()                   # at once, and measured again
    assert daemon._status_timer_soon is None and daemon._status_cost < 0.2
    daemon.status_soon()
    assert daemon._status_timer_soon.when() - clock.time() == pytest.approx(
        STATUS_DELAY, abs=0.05)
    io_loop.remove_timeout(daemon._status_timer_soon)
