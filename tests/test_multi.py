"""Several accounts in one daemon (issue 15), end to end: a real ``webqq run`` with
``[account:NAME]`` sections against its embedded simulator, driven through the
simulator's control surface, the OneBot API and the command line.

Done when: two and more accounts run in one daemon against the embedded simulator, each
answers ``!ping``, each is reached through the OneBot API by self_id, and one kicked,
one refused and one needing a captcha do not disturb the others.
"""
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from daemon_helpers import (Daemon, SimulatorControl, read_status, wait_for, webqq,
                            write_config)

from webqq.simulator.world import DEFAULT_WORLD_FILE

TOKEN = "multi-test-token-0123"
FRIEND = 20001


def multi_config(directory: Path, accounts: Dict[str, Dict[str, str]], *,
                 world: Optional[Path] = None, api: bool = True) -> Path:
    """An ini file with an ``[account:NAME]`` section per entry of ``accounts``."""
    extra = "".join("[account:%s]\n%s\n" % (name, "".join(
        "%s = %s\n" % pair for pair in keys.items())) for name, keys in accounts.items())
    simulator = {"embedded": "yes", "port": "0", "tls_port": "0", "poll_hold": "5"}
    if world is not None:
        simulator["world"] = str(world)
    return write_config(directory, simulator=simulator, extra=extra,
                        api={"listen": "127.0.0.1:0" if api else "", "token": TOKEN})


def world_with_a_captcha(directory: Path, qq: int) -> Path:
    """The built-in world, but account ``qq`` must always solve a captcha."""
    data = json.loads(Path(DEFAULT_WORLD_FILE).read_text(encoding="utf-8"))
    for account in data["accounts"]:
        if account["qq"] == qq:
            account["captcha"] = "always"
    path = directory / "world.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def accounts_of(daemon: Daemon) -> Dict[str, Dict[str, Any]]:
    if daemon.process.poll() is not None:
        raise AssertionError("webqq run exited %s: %s%s" % (
            daemon.process.returncode, daemon.process.stderr.read(), daemon.log_text()))
    return daemon.status().get("accounts") or {}


def wait_states(daemon: Daemon, **wanted: str) -> Dict[str, Dict[str, Any]]:
    """Waits until each named account is in the wanted state; returns the accounts."""
    def reached():
        accounts = accounts_of(daemon)
        return accounts if all((accounts.get(name) or {}).get("state") == state
                               for name, state in wanted.items()) else None
    return wait_for(reached, "accounts in %s" % wanted)


def control_of(daemon: Daemon) -> SimulatorControl:
    import re
    port = wait_for(lambda: daemon.status().get("simulator"), "the simulator")["port"]
    found = wait_for(lambda: re.search(r"control token (\S+)", daemon.log_text()),
                     "the control token")
    return SimulatorControl(port, found.group(1))


def ping(control: SimulatorControl, qq: int, text: str) -> None:
    """Friend 20001 says ``!echo TEXT`` to account ``qq``, which must answer it."""
    control._call("say", {"to": qq, "from": FRIEND, "text": "!echo " + text})
    wait_for(lambda: any(m["text"] == text for m in control._call("sent?account=%d" % qq)),
             "%d to answer %r" % (qq, text))


def api_call(daemon: Daemon, action: str, params: Dict[str, Any],
             headers: Optional[Dict[str, str]] = None) -> Any:
    """``(HTTP status, envelope)`` of one action on the daemon's OneBot API."""
    url = "%s/%s" % (daemon.status()["api"]["url"], action)
    request = urllib.request.Request(url, data=json.dumps(params).encode(), method="POST",
                                     headers=dict({"Content-Type": "application/json",
                                                   "Authorization": "Bearer " + TOKEN},
                                                  **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def running(tmp_path):
    started = []

    def run(config: Path) -> Daemon:
        daemon = Daemon(config)
        started.append(daemon)
        return daemon
    yield run
    for daemon in started:
        daemon.close()


def test_accounts_answer_apart_and_one_kicked_refused_or_held_disturbs_none(tmp_path,
                                                                             running):
    world = world_with_a_captcha(tmp_path, 10002)
    config = multi_config(tmp_path, {
        "one": {"qq": "10001"},
        "held": {"qq": "10002"},                        # a captcha, every login
        "made": {"qq": "10004"},                        # not in the world: generated
        "wrong": {"qq": "10005", "password": "not-it"},  # generated; refused
        "kicked": {"qq": "10006"},
    }, world=world)
    daemon = running(config)
    accounts = wait_states(daemon, one="online", made="online", kicked="online",
                           held="waiting_captcha", wrong="offline")
    assert "refused" in accounts["wrong"]["offline"]["reason"]
    control = control_of(daemon)
    control._call("kick", {"account": 10006, "kick_message": True})   # a login elsewhere
    accounts = wait_states(daemon, kicked="offline", one="online", made="online")
    assert daemon.process.poll() is None                # the daemon goes on
    for qq, text in ((10001, "from one"), (10004, "from made")):
        ping(control, qq, text)
    # The held account takes its verify code from the command line, by name.
    code = wait_for(lambda: control.state()["accounts"]["10002"].get("captcha"),
                    "the captcha shown")
    several = webqq(config, "captcha", code)
    assert several.returncode == 1 and "choose one with --account" in several.stderr
    entered = webqq(config, "captcha", "--account", "held", code)
    assert entered.returncode == 0, entered.stderr
    wait_states(daemon, held="online")
    ping(control, 10002, "from held")
    # No message of one account went out as another.
    for qq in (10001, 10002, 10004):
        texts = [m["text"] for m in control._call("sent?account=%d" % qq)]
        assert texts == [{10001: "from one", 10002: "from held",
                          10004: "from made"}[qq]]
    # `webqq status` lists every account, and exits 1 while any is not online.
    shown = webqq(config, "status")
    assert shown.returncode == 1, shown.stderr
    assert "accounts: 5, 3 online" in shown.stdout
    for line in ("account one (10001):", "account wrong (10005):",
                 "account kicked (10006):"):
        assert line in shown.stdout
    one = webqq(config, "status", "--account", "10004")
    assert "account made (10004):" in one.stdout and "account one" not in one.stdout
    assert one.returncode == 0, one.stderr                  # that one is online
    assert webqq(config, "status", "--account", "kicked").returncode == 1
    assert daemon.stop() == 0


def test_the_api_reaches_each_account_by_self_id(tmp_path, running):
    config = multi_config(tmp_path, {"a": {"qq": "10001"}, "b": {"qq": "10002"},
                                     "c": {"qq": "10003"}})
    daemon = running(config)
    wait_states(daemon, a="online", b="online", c="online")
    control = control_of(daemon)
    for qq in (10001, 10002, 10003):
        assert api_call(daemon, "get_login_info", {"self_id": qq})[1]["data"][
            "user_id"] == qq
    status, answer = api_call(daemon, "get_login_info", {}, {"X-Self-ID": "10002"})
    assert (status, answer["data"]["user_id"]) == (200, 10002)
    status, answer = api_call(daemon, "get_login_info", {})
    assert (status, answer["retcode"]) == (400, 1400) and "self_id" in answer["msg"]
    status, answer = api_call(daemon, "get_login_info", {"self_id": 99999})
    assert (status, answer["retcode"]) == (404, 1404)
    status, answer = api_call(daemon, "send_private_msg", {
        "self_id": 10003, "user_id": FRIEND, "message": "through the API"})
    assert (status, answer["status"]) == (200, "ok"), answer
    wait_for(lambda: [m for m in control._call("sent?account=10003")
                      if m["text"] == "through the API"], "the API's message")
    assert control._call("sent?account=10001") == []
    # A message id is its account's: another account does not know it.
    message_id = answer["data"]["message_id"]
    assert api_call(daemon, "get_msg", {"self_id": 10003, "message_id": message_id}
                    )[1]["status"] == "ok"
    assert api_call(daemon, "get_msg", {"self_id": 10001, "message_id": message_id}
                    )[1]["status"] == "failed"
    # The command line names the account the same ways.
    sent = webqq(config, "send", "--account", "b", "buddy", str(FRIEND), "from", "b")
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: [m for m in control._call("sent?account=10002")
                      if m["text"] == "from b"], "the CLI's message")
    assert daemon.stop() == 0


def test_reload_adds_and_removes_accounts_without_touching_the_others(tmp_path, running):
    config = multi_config(tmp_path, {"a": {"qq": "10001"}, "b": {"qq": "10002"}},
                          api=False)
    daemon = running(config)
    wait_states(daemon, a="online", b="online")
    control = control_of(daemon)
    polls = control.state()["accounts"]["10001"]["clientid"]
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[account:b]\nqq = 10002\n",
                                   "[account:c]\nqq = 10007\n"), encoding="utf-8")
    reloaded = webqq(config, "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "[account:b] removed" in reloaded.stdout
    assert "[account:c] added" in reloaded.stdout
    accounts = wait_states(daemon, a="online", c="online")
    assert set(accounts) == {"a", "c"}
    assert control.state()["accounts"]["10001"]["clientid"] == polls   # a untouched
    ping(control, 10007, "from c")
    ping(control, 10001, "still a")
    assert daemon.stop() == 0
    assert read_status(daemon.state_dir)["shutdown"]["session"] == "2 x saved"


def test_the_last_account_to_end_stops_the_daemon(tmp_path, running):
    config = multi_config(tmp_path, {"a": {"qq": "10001", "password": "not-it"},
                                     "b": {"qq": "10002", "password": "not-it"}},
                          api=False)
    daemon = running(config)
    assert daemon.process.wait(timeout=30) == 4         # both refused: login refused
    accounts = read_status(daemon.state_dir)["accounts"]
    assert all("refused" in accounts[name]["offline"]["reason"] for name in "ab")
    shown = webqq(config, "status")
    assert shown.returncode == 1
    assert "a offline since" in shown.stdout and "b offline since" in shown.stdout


def test_the_shipped_multi_ini_names_accounts_the_simulator_grows(tmp_path):
    from webqq.daemon.config import load
    config = load(Path(__file__).resolve().parent.parent / "conf" / "multi.ini")
    assert [a.name for a in config.accounts] == ["first", "second", "third"]
    assert config.simulator.embedded


def _get(url: str) -> Any:
    """``(HTTP status, body)`` of a GET with the API's token."""
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + TOKEN})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_readiness_metrics_and_the_captcha_are_per_account(tmp_path, running):
    config = multi_config(tmp_path, {"one": {"qq": "10001"}, "held": {"qq": "10002"}},
                          world=world_with_a_captcha(tmp_path, 10002))
    daemon = running(config)
    wait_states(daemon, one="online", held="waiting_captcha")
    api = daemon.status()["api"]["url"]
    # /readyz: not ready while one account waits; each account answers for itself.
    code, body = _get(api + "/readyz")
    assert code == 503 and set(json.loads(body)["accounts"]) == {"10001", "10002"}
    assert _get(api + "/readyz/10001")[0] == 200
    assert _get(api + "/readyz/10002")[0] == 503
    # /metrics: each account under its own label, its WebQQ requests counted apart.
    code, text = _get(api + "/metrics")
    assert code == 200
    assert 'webqq_account_ready{account="10001"} 1.0' in text
    assert 'webqq_account_ready{account="10002"} 0.0' in text
    assert 'webqq_account_state{account="10002",state="waiting_captcha"} 1.0' in text
    assert 'webqq_http_requests_total{account="10001",endpoint="/channel/login2",' \
           'status="200"} 1.0' in text
    assert 'webqq_http_requests_total{account="10002",endpoint="/getimage",' \
           'status="200"} 1.0' in text
    assert 'account="10002",endpoint="/channel/login2"' not in text    # it waits
    # `webqq captcha --account` shows the image and page of that account alone.
    held = webqq(config, "captcha", "--account", "held")
    assert held.returncode == 0, held.stderr
    assert "10002 waits for a verify code (image 1)" in held.stdout
    assert "%s/captcha?account=10002" % api in held.stdout
    one = webqq(config, "captcha", "--account", "one")
    assert one.returncode == 1 and "10001 is online" in one.stdout
    # The page answers for the held account only.
    assert _get(api + "/captcha/state?account=10002")[0] == 200
    assert json.loads(_get(api + "/captcha/state?account=10002")[1])["waiting"] is True
    assert daemon.stop() == 0
