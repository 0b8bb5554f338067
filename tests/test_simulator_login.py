"""The simulator's login server and session checks, driven by plain urllib (docs/protocol.rst §2-§4).

Every test speaks to a real Simulator on loopback through the hosts override, with the
blocking calls in the executor. What is asserted is what a 2013 client depended on: exact
callback and JSON forms, cookie names, values and domains, and each refusal's retcode.
"""
import json
import re
import socket
import ssl
import urllib.parse

import pytest

from simulator_helpers import (LOGIN_RE, PASSWORD, Browser, default_world, expected_p,
                               in_thread, next_held, start_simulator)
from webqq.simulator.digests import friend_list_hash


def test_password_oracle_matches_protocol_examples():
    # docs/protocol.rst §4.2's worked examples, so the oracle the other tests use is right.
    uin = bytes.fromhex("0000000064748b05")
    assert expected_p("password", uin, "!PTH") == "8B861F6C749FD12FA8D03A0B1BB3A414"
    assert expected_p("password", uin, "abcd") == "F0C288A57361621135A9E73D8FE2989A"
    assert expected_p("123456", uin, "!IJG") == "C5157F52D163706FD27E2BB292537CA8"


@pytest.mark.gen_test
async def test_full_era_a_login_sequence(sim, browser):
    # S2 check: the exact callback, the ptvfsession cookie for ptlogin2.qq.com.
    reply = await browser.get("http://check.ptlogin2.qq.com/check?uin=10001&appid=1003903&r=0.5")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-javascript; charset=utf-8"
    match = re.fullmatch(r"ptui_checkVC\('0','(![A-Z]{3})','(.{32})'\);", reply.text)
    assert match and match.group(2) == r"\x00\x00\x00\x00\x00\x00\x27\x11"  # 10001
    vfs = browser.cookie("ptvfsession")
    assert vfs.domain == ".ptlogin2.qq.com" and vfs.path == "/"
    assert re.fullmatch(r"[0-9a-f]{64}", vfs.value)

    # S4 login over TLS (certificate verified against the shipped CA).
    reply = await in_thread(browser.login, 10001, PASSWORD, match.group(1),
                            bytes.fromhex("0000000000002711"))
    assert reply.text == "ptuiCB('0','0','http://www.qq.com','0','登录成功！', 'webqq');"
    cookies = {c.name: c for c in browser.jar}
    for name in ("uin", "skey", "ptwebqq", "ptisp", "RK", "ptcz", "pt2gguin"):
        assert cookies[name].domain == ".qq.com" and cookies[name].path == "/", name
    assert cookies["uin"].value == "o0000010001" == cookies["pt2gguin"].value
    assert re.fullmatch(r"@[A-Za-z0-9]{9}", cookies["skey"].value)
    assert re.fullmatch(r"[0-9a-f]{48}", cookies["ptwebqq"].value)
    assert re.fullmatch(r"[0-9a-f]{64}", cookies["ptcz"].value)
    assert cookies["ptcz"].expires and not cookies["skey"].expires
    raw = [line for line in reply.set_cookies() if line.startswith("skey=")]
    assert raw == ["skey=%s; Domain=qq.com; Path=/" % cookies["skey"].value]  # unquoted @

    # S6 login2: the JSON form of §3.6, key for key.
    reply = await in_thread(browser.login2, "53999199")
    body = reply.json()
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert list(body) == ["retcode", "result"] and body["retcode"] == 0
    result = body["result"]
    assert list(result) == ["uin", "cip", "index", "port", "status", "vfwebqq", "psessionid",
                            "user_state", "f"]
    assert result["uin"] == 10001 and result["status"] == "online"
    assert result["cip"] == 2130706433                                  # 127.0.0.1
    assert re.fullmatch(r"[0-9a-f]{80}", result["vfwebqq"])
    # The Erlang-term psessionid of §3.6: the QQ number little-endian, then skey, vfwebqq.
    psessionid = result["psessionid"]
    assert psessionid.startswith("83680467") and "6e0400" + "11270000" in psessionid
    assert psessionid.endswith(result["vfwebqq"])
    assert cookies["skey"].value.encode().hex() in psessionid

    state = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert state["state"] == "online" and state["clientid"] == "53999199"
    assert "psessionid" not in json.dumps(state) and result["vfwebqq"] not in json.dumps(state)


@pytest.mark.gen_test
async def test_lists_after_login(sim, browser):
    await in_thread(browser.sign_in, 10001)
    world = sim.world
    alice, bob, other = (world.uin(10001, qq) for qq in (20001, 20002, 10002))

    body = (await in_thread(browser.info_post, "get_user_friends2", {"h": "hello"})).json()
    result = body["result"]
    assert body["retcode"] == 0
    assert [f["uin"] for f in result["friends"]] == [alice, bob, other]
    assert result["friends"][1] == {"flag": 0, "uin": bob, "categories": 1}
    assert result["categories"] == [{"index": 1, "sort": 1, "name": "Colleagues"}]
    assert {"uin": bob, "markname": "Bob (work)", "type": 0} in result["marknames"]
    assert {"vip_level": 3, "u": bob, "is_vip": 1} in result["vipinfo"]
    assert {"face": 294, "flag": 0, "nick": "Bob", "uin": bob} in result["info"]

    groups = (await in_thread(browser.info_post, "get_group_name_list_mask2", {})).json()
    group = world.groups[30001]
    assert groups["result"]["gnamelist"] == [{"flag": 1090519041, "name": "测试群",
                                              "gid": group.gid, "code": group.code}]
    reply = await in_thread(browser.info_get, "get_group_info_ext2", gcode=group.code)
    assert "\\u6D4B\\u8BD5\\u7FA4" in reply.text                   # upper-case escapes
    info = reply.json()["result"]
    assert info["ginfo"]["owner"] == alice and info["ginfo"]["gid"] == group.gid
    assert {"muin": bob, "mflag": 1} in info["ginfo"]["members"]
    assert {"muin": alice, "card": "Alice@work"} in info["cards"]
    assert {"client_type": 41, "uin": 10001, "stat": 10} in info["stats"]
    assert all(s["uin"] != world.uin(10001, 20003) for s in info["stats"])  # Carol offline
    unknown = await in_thread(browser.info_get, "get_group_info_ext2", gcode=1)
    assert unknown.json() == {"retcode": 100001}

    discussion = world.discussions[40001]
    for reply in (await in_thread(browser.info_get, "get_discus_list",
                                  clientid="53999199", psessionid=browser.session["psessionid"]),
                  await in_thread(browser.channel_get, "get_discu_list_new2",
                                  vfwebqq=browser.session["vfwebqq"])):
        assert reply.json()["result"]["dnamelist"] == [{"did": discussion.did, "name": "good day"}]
    info = (await in_thread(browser.channel_get, "get_discu_info", did=discussion.did,
                            vfwebqq=browser.session["vfwebqq"])).json()["result"]
    assert info["info"]["discu_owner"] == alice
    assert {"mem_uin": world.uin(10001, 20003), "ruin": 20003} in info["info"]["mem_list"]

    lookup = (await in_thread(browser.info_get, "get_friend_uin2", tuin=bob, type=1,
                              verifysession="", code="")).json()
    assert lookup == {"retcode": 0, "result": {"uiuin": "", "account": 20002, "uin": bob}}
    lookup = (await in_thread(browser.info_get, "get_friend_uin2", tuin=group.code,
                              type=4)).json()
    assert lookup["result"]["account"] == 30001

    online = (await in_thread(browser.channel_get, "get_online_buddies2")).json()["result"]
    assert online == [{"uin": alice, "status": "online", "client_type": 1},
                      {"uin": bob, "status": "away", "client_type": 1}]
    beat = await browser.get("http://web.qq.com/web2/get_msg_tip?uin=&tp=1&id=0&retype=1&rc=1"
                             "&lv=3&t=1366948800000")
    assert beat.json() == {"retcode": 0, "result": {}}


@pytest.mark.gen_test
async def test_wrong_password_unknown_account_and_missing_check(sim, browser):
    reply = await in_thread(browser.login, 10001, "not-the-password")
    assert reply.text == ("ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '10001');")
    assert reply.set_cookies() == []
    reply = await in_thread(browser.login, 99999)
    assert LOGIN_RE.match(reply.text).group(1) == "3"
    # No /check before /login (no ptvfsession): "cookies disabled".
    fresh = Browser(sim)
    reply = await in_thread(fresh.login, 10001, PASSWORD, "!ABC", bytes.fromhex("0000000000002711"))
    assert LOGIN_RE.match(reply.text).groups()[:2] == ("24", "0")


@pytest.mark.gen_test
async def test_wrong_verify_code_consumes_the_challenge(sim, browser):
    flag, code, uin_bytes = await in_thread(browser.check, 10001)
    reply = await in_thread(browser.login, 10001, PASSWORD, "!ZZZ" if code != "!ZZZ" else "!YYY",
                            uin_bytes)
    assert reply.text == "ptuiCB('4','0','','0','您输入的验证码不正确，请重新输入。', '10001');"
    # The challenge is spent: the right code now finds no challenge (run /check again).
    reply = await in_thread(browser.login, 10001, PASSWORD, code, uin_bytes)
    assert LOGIN_RE.match(reply.text).group(1) == "24"


@pytest.mark.gen_test
async def test_captcha_demanded_by_control_surface(sim, browser):
    assert (await in_thread(browser.control, "captcha", {"account": 10001, "code": "ABCD"})).json() == {"ok": True}
    flag, token, uin_bytes = await in_thread(browser.check, 10001)
    assert flag == "1" and re.fullmatch(r"[0-9a-f]{48}", token)
    assert not [c for c in browser.jar if c.name == "ptvfsession"]
    image = await browser.get("https://ssl.captcha.qq.com/getimage?aid=1003903&r=0.2&uin=10001")
    assert image.headers["Content-Type"] == "image/jpeg"
    assert image.body[:3] == b"\xff\xd8\xff" and image.body.endswith(b"\xff\xd9")
    session = browser.cookie("verifysession")
    assert session.domain == ".qq.com" and session.value.startswith("h00")
    state = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert state["captcha"] == "ABCD"
    # The answer is compared case-insensitively and hashed upper-case (PB@ce65a04).
    reply = await in_thread(browser.login, 10001, PASSWORD, "abcd", uin_bytes)
    assert LOGIN_RE.match(reply.text).group(1) == "0", reply.text
    # Solved: the next check needs no captcha.
    assert (await in_thread(browser.check, 10001))[0] == "0"


@pytest.mark.gen_test
async def test_stale_ptwebqq_after_rotation(sim, browser, held_polls):
    session = await in_thread(browser.sign_in, 10001)
    old = browser.cookie("ptwebqq").value
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    await in_thread(browser.control, "rotate", {"account": 10001})
    body = (await poll).json()
    assert list(body) == ["retcode", "p"] and body["retcode"] == 116
    assert re.fullmatch(r"[0-9a-f]{48}", body["p"]) and body["p"] != old
    # A relink that still carries the old ptwebqq is refused...
    assert (await in_thread(browser.login2, session["clientid"])).json() == {"retcode": 103, "errmsg": ""}
    # ...and works once the client stores p as cookie ptwebqq (domain qq.com).
    browser.set_cookie("ptwebqq", body["p"])
    assert (await in_thread(browser.login2, session["clientid"])).json()["retcode"] == 0


@pytest.mark.gen_test
async def test_a_rotation_no_poll_answered_yet_leaves_the_old_ptwebqq_and_the_queue(sim,
                                                                                    browser):
    # The 60-minute soak's episode: a 116 owed while no poll is held, and a 502 (a proxy
    # that never reached the server) in place of the poll that was to carry it.
    session = await in_thread(browser.sign_in, 10001)
    old = browser.cookie("ptwebqq").value
    await in_thread(browser.control, "rotate", {"account": 10001})
    await in_thread(browser.control, "say", {"to": 10001, "from": 20001, "text": "meanwhile"})
    await in_thread(browser.control, "fault", {"path": "/channel/poll2", "kind": "status",
                                               "status": 502})
    assert (await in_thread(browser.poll)).status == 502
    # The client cannot know p: its relink with the old ptwebqq is the same client back.
    assert (await in_thread(browser.login2, session["clientid"])).json()["retcode"] == 0
    body = (await in_thread(browser.poll)).json()
    assert body["retcode"] == 116 and body["p"] != old
    # From the answer on, only p relinks; the queue waited through all of it.
    assert (await in_thread(browser.login2, session["clientid"])).json() == {"retcode": 103,
                                                                              "errmsg": ""}
    browser.set_cookie("ptwebqq", body["p"])
    assert (await in_thread(browser.login2, session["clientid"])).json()["retcode"] == 0
    [item] = (await in_thread(browser.poll)).json()["result"]
    assert item["value"]["content"][1:] == ["meanwhile"]


@pytest.mark.gen_test
@pytest.mark.parametrize("kind", ["status", "reset"])
async def test_a_116_whose_answer_is_lost_is_undone_and_owed_again(sim, browser, held_polls,
                                                                   kind):
    # Like a poll's items, a 116 never written has no effect: the old ptwebqq stands.
    session = await in_thread(browser.sign_in, 10001)
    old = browser.cookie("ptwebqq").value
    await in_thread(browser.control, "fault", {"path": "/channel/poll2", "kind": kind,
                                               "when": "after"})
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    await in_thread(browser.control, "rotate", {"account": 10001})
    if kind == "status":
        assert (await poll).status == 502
    else:
        with pytest.raises(OSError):
            await poll
    assert (await in_thread(browser.login2, session["clientid"])).json()["retcode"] == 0
    body = (await in_thread(browser.poll)).json()
    assert body["retcode"] == 116 and body["p"] != old
    browser.set_cookie("ptwebqq", body["p"])
    assert (await in_thread(browser.login2, session["clientid"])).json()["retcode"] == 0


@pytest.mark.gen_test
async def test_login2_refusals(sim, browser):
    await in_thread(browser.login, 10001)
    ptwebqq = browser.cookie("ptwebqq").value
    # r.ptwebqq must equal the cookie.
    assert (await in_thread(browser.login2, "1", "0" * 48)).json() == {"retcode": 103, "errmsg": ""}
    # r that is not JSON: bad parameters.
    reply = await browser.post("http://d.web2.qq.com/channel/login2", {"r": "{not json"},
                               {"Referer": "http://d.web2.qq.com/proxy.html"})
    assert reply.json() == {"retcode": 100006, "errmsg": ""}
    # No Referer from *.qq.com: answered as for missing cookies.
    reply = await browser.post("http://d.web2.qq.com/channel/login2",
                               {"r": json.dumps({"ptwebqq": ptwebqq, "clientid": 1})},
                               {"Referer": "http://example.com/"})
    assert reply.json() == {"retcode": 103, "errmsg": ""}
    # No login cookies at all.
    stranger = Browser(sim)
    reply = await stranger.post("http://d.web2.qq.com/channel/login2",
                                {"r": json.dumps({"ptwebqq": ptwebqq, "clientid": 1})},
                                {"Referer": "http://d.web2.qq.com/proxy.html"})
    assert reply.json() == {"retcode": 103, "errmsg": ""}


@pytest.mark.gen_test
async def test_unknown_session_and_bad_tokens(sim, browser):
    session = await in_thread(browser.sign_in, 10001)
    bogus = dict(session, psessionid="8368" + "0" * 60)
    assert (await in_thread(browser.poll, bogus)).json() == {"retcode": 103, "errmsg": ""}
    assert (await in_thread(browser.poll, dict(session, clientid="1"))).json()["retcode"] == 103
    browser.session = bogus
    assert (await in_thread(browser.send, "send_buddy_msg2",
                            {"to": sim.world.uin(10001, 20001)})).json() == {"retcode": 108, "errmsg": ""}
    browser.session = dict(session, vfwebqq="0" * 80)
    assert (await in_thread(browser.info_post, "get_user_friends2", {})).json() == {"retcode": 100000}
    assert (await in_thread(browser.channel_get, "get_discu_info", did=1,
                            vfwebqq="0" * 80)).json()["retcode"] == 100000
    browser.session = session
    stranger = Browser(sim)
    stranger.session = session
    assert (await in_thread(stranger.info_post, "get_user_friends2", {})).json() == {"retcode": 100101}
    assert (await in_thread(stranger.channel_get, "get_online_buddies2")).json()["retcode"] == 103
    reply = await browser.post("http://s.web2.qq.com/api/get_user_friends2", {"r": "[]"},
                               {"Referer": "http://s.web2.qq.com/proxy.html"})
    assert reply.json() == {"retcode": 100003}


@pytest.mark.gen_test
async def test_friend_hash_policy(io_loop, request):
    world = default_world(friends_hash="O", friends_hash_required=True)
    sim = start_simulator(io_loop, request, world=world)
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    ptwebqq = browser.cookie("ptwebqq").value
    assert (await in_thread(browser.info_post, "get_user_friends2", {"h": "hello"})).json() == {"retcode": 50, "errmsg": ""}
    assert (await in_thread(browser.info_post, "get_user_friends2",
                            {"hash": "00"})).json()["retcode"] == 50
    good = friend_list_hash(10001, ptwebqq, "O")
    assert (await in_thread(browser.info_post, "get_user_friends2",
                            {"h": "hello", "hash": good})).json()["retcode"] == 0


@pytest.mark.gen_test
async def test_era_b_check_sig_hop(io_loop, request):
    world = default_world(era="B")
    sim = start_simulator(io_loop, request, world=world)
    browser = Browser(sim)
    page = await browser.get("https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&appid=1003903")
    sig = re.search(r'g_login_sig=encodeURIComponent\("([A-Za-z0-9*-]{64})"\)', page.text).group(1)
    u1 = "http://www.qq.com/loginproxy.html?login2qq=1&webqq_type=10"
    # Without the login page's sig or daid=164 the server refused the login as bad
    # parameters.
    for missing in ({"login_sig": sig}, {"daid": 164}):
        reply = await in_thread(browser.login, 10001, u1=u1, **missing)
        assert reply.text.startswith("ptuiCB('7','0','','0',"), (missing, reply.text)
    reply = await in_thread(browser.login, 10001, u1=u1, daid=164, login_sig=sig)
    code, _, url, _, nick = LOGIN_RE.match(reply.text).groups()
    assert code == "0" and nick == "webqq" and sig
    assert url.startswith("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=10001&")
    # login2 before the hop: no p_skey yet.
    assert (await in_thread(browser.login2)).json()["retcode"] == 103
    hop = await browser.get(url)
    assert hop.status == 302 and hop.headers["Location"] == u1
    # The hop's target is served too (pual_bot@ce65a04 followed it).
    landing = await browser.get(hop.headers["Location"])
    assert landing.status == 200 and landing.headers["Content-Type"].startswith("text/html")
    assert browser.cookie("p_skey").domain == ".web2.qq.com"
    assert (await in_thread(browser.login2)).json()["retcode"] == 0
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    bad = await browser.get(url.replace(query["ptsig"], "x" * 44))
    assert bad.status == 403


@pytest.mark.gen_test
async def test_tls_hosts_verify_against_the_shipped_ca(sim):
    for host in ("ssl.ptlogin2.qq.com", "ui.ptlogin2.qq.com", "ssl.captcha.qq.com",
                 "d.web2.qq.com"):
        routes = dict(sim.hosts, **{host: ("127.0.0.1", sim.tls_port)})
        reply = await Browser(sim, routes).get("https://%s/cgi-bin/ver" % host)
        assert reply.status in (200, 404), host     # verified handshake, then routed
    context = ssl.create_default_context()          # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        await in_thread(_handshake, sim.tls_port, context)
    await in_thread(_handshake, sim.tls_port, ssl.create_default_context(cafile=sim.ca_file))


@pytest.mark.gen_test
async def test_one_host_name_reaches_its_host_over_http_and_https(sim, browser, held_polls):
    # Era B clients spoke https to d.web2.qq.com for some calls and http for others, and
    # fetched ui.ptlogin2.qq.com over both: one hosts entry must serve either scheme.
    assert sim.hosts["d.web2.qq.com"] == sim.hosts["ui.ptlogin2.qq.com"] == \
        ("127.0.0.1", sim.tls_port)
    await in_thread(browser.sign_in, 10001)                   # login2 over http
    s = browser.session
    r = json.dumps({"clientid": int(s["clientid"]), "psessionid": s["psessionid"]})
    poll = in_thread(browser.fetch, "https://d.web2.qq.com/channel/poll2",
                        {"r": r, "clientid": s["clientid"], "psessionid": s["psessionid"]},
                        {"Referer": "https://d.web2.qq.com/cfproxy.html?v=20110331002&callback=1"})
    await next_held(held_polls, 10001)
    item = (await in_thread(browser.control, "say", {"to": 10001, "from": 20001,
                                                     "text": "over TLS"})).json()["item"]
    assert (await poll).json() == {"retcode": 0, "result": [item]}
    for scheme in ("http", "https"):
        reply = await browser.get("%s://ui.ptlogin2.qq.com/cgi-bin/ver" % scheme)
        assert (reply.status, reply.body) == (200, b"ptuiV(201205211530);"), scheme


def _handshake(port, context):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        with context.wrap_socket(sock, server_hostname="ssl.ptlogin2.qq.com"):
            pass


@pytest.mark.gen_test
async def test_no_secret_reaches_the_log(sim, browser, caplog):
    caplog.set_level("DEBUG", logger="webqq.simulator")
    session = await in_thread(browser.sign_in, 10001)
    await in_thread(browser.send, "send_buddy_msg2", {"to": sim.world.uin(10001, 20001)})
    await in_thread(browser.poll)
    await in_thread(browser.info_get, "get_group_info_ext2", gcode=1)
    secrets = [PASSWORD, session["psessionid"], session["vfwebqq"],
               browser.cookie("skey").value, browser.cookie("ptwebqq").value]
    assert any("/channel/poll2" in r.getMessage() for r in caplog.records)  # each request
    for record in caplog.records:
        text = record.getMessage()
        assert not [s for s in secrets if s in text], text


@pytest.mark.gen_test
async def test_expire_forces_a_login_from_check_where_a_captcha_applies(sim, browser,
                                                                       held_polls):
    session = await in_thread(browser.sign_in, 10001)
    poll = in_thread(browser.poll)
    await next_held(held_polls, 10001)
    assert (await in_thread(browser.control, "captcha", {"account": 10001, "code": "ABCD"})).status == 200
    # The captcha alone changes nothing for a live session: it applies at /check.
    assert (await in_thread(browser.control, "expire", {"account": 10001})).json() == {"ok": True}
    assert (await poll).json() == {"retcode": 103, "errmsg": ""}      # 你的登录已失效
    item = (await in_thread(browser.control, "say", {"to": 10001, "from": 20001,
                                                     "text": "while expired"})).json()["item"]
    assert (await in_thread(browser.poll)).json() == {"retcode": 103, "errmsg": ""}
    assert (await in_thread(browser.send, "send_buddy_msg2", {
        "to": sim.world.uin(10001, 20001)})).json() == {"retcode": 108, "errmsg": ""}
    # A resume or relink (login2 with the saved cookies and ptwebqq) is refused...
    assert (await in_thread(browser.login2, session["clientid"])).json() == {
        "retcode": 103, "errmsg": ""}
    state = (await in_thread(browser.control, "state")).json()["accounts"]["10001"]
    assert state["state"] == "expired"
    assert (await in_thread(browser.control, "kick", {"account": 10001})).status == 409
    # ...so the client logs in from /check, which now asks for the captcha.
    flag, _, uin_bytes = await in_thread(browser.check, 10001)
    assert flag == "1"
    await browser.get("https://ssl.captcha.qq.com/getimage?aid=1003903&r=0.2&uin=10001")
    reply = await in_thread(browser.login, 10001, PASSWORD, "ABCD", uin_bytes)
    assert LOGIN_RE.match(reply.text).group(1) == "0", reply.text
    assert (await in_thread(browser.login2, "87654321")).json()["retcode"] == 0
    # What was said while the login was expired waits for the new session.
    assert (await in_thread(browser.poll)).json() == {"retcode": 0, "result": [item]}


@pytest.mark.gen_test
async def test_expire_needs_a_login(sim, browser):
    assert (await in_thread(browser.control, "expire", {"account": 10001})).status == 409
    assert (await in_thread(browser.control, "expire", {"account": 12345})).status == 400
    # After /login but before login2, the grant alone expires: login2 is refused.
    await in_thread(browser.login, 10001)
    assert (await in_thread(browser.control, "expire", {"account": 10001})).status == 200
    assert (await in_thread(browser.login2)).json() == {"retcode": 103, "errmsg": ""}


@pytest.mark.gen_test
@pytest.mark.parametrize("served", ["d.web2", "s.web2", "both"])
async def test_discussion_list_world_option(io_loop, request, served):
    sim = start_simulator(io_loop, request, world=default_world(discussion_list=served))
    browser = Browser(sim)
    session = await in_thread(browser.sign_in, 10001)
    d_web2 = await in_thread(browser.channel_get, "get_discu_list_new2",
                             vfwebqq=session["vfwebqq"])
    s_web2 = await in_thread(browser.info_get, "get_discus_list", clientid=session["clientid"],
                             psessionid=session["psessionid"])
    expected = {"d.web2": (200, 404), "s.web2": (404, 200), "both": (200, 200)}[served]
    assert (d_web2.status, s_web2.status) == expected
    for reply in (d_web2, s_web2):
        if reply.status == 200:
            assert reply.json()["result"]["dnamelist"][0]["name"] == "good day"


@pytest.mark.gen_test
@pytest.mark.parametrize("era, with_hash, without_hash", [
    ("A", 0, 0),            # spring 2013: no hash enforced (pual_bot sent none)
    ("B", 0, 50),           # late 2013: N required (pual_bot@ce65a04)
])
async def test_the_friend_list_hash_of_each_era(io_loop, request, era, with_hash, without_hash):
    sim = start_simulator(io_loop, request, world=default_world(era=era))
    assert (sim.options.friends_hash, sim.options.friends_hash_required) == \
        {"A": ("none", False), "B": ("N", True)}[era]
    browser = Browser(sim)
    if era == "B":
        await browser.get("https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&appid=1003903")
        sig = next(iter(sim.backend.login.login_sigs))
        reply = await in_thread(browser.login, 10001, daid=164, login_sig=sig)
        await browser.get(LOGIN_RE.match(reply.text).group(3))           # check_sig
        assert (await in_thread(browser.login2)).json()["retcode"] == 0
    else:
        await in_thread(browser.sign_in, 10001)
    good = friend_list_hash(10001, browser.cookie("ptwebqq").value, "N")
    assert (await in_thread(browser.info_post, "get_user_friends2",
                            {"h": "hello", "hash": good})).json()["retcode"] == with_hash
    assert (await in_thread(browser.info_post, "get_user_friends2",
                            {"h": "hello"})).json()["retcode"] == without_hash


BAD_LOGIN_PARAMETERS = [
    ("aid", None), ("aid", 1003904), ("u1", None), ("u1", "www.qq.com"), ("h", None),
    ("h", 2), ("from_ui", None), ("from_ui", 0), ("ptredirect", 1), ("ptlang", 1033),
    ("webqq_type", None), ("webqq_type", "online"), ("login2qq", 0), ("js_ver", "x"),
    ("t", None), ("t", "now"),
]


@pytest.mark.gen_test
async def test_login_parameters_are_checked_as_the_server_did(sim, browser):
    for name, value in BAD_LOGIN_PARAMETERS:
        reply = await in_thread(browser.login, 10001, **{name: value})
        assert reply.text == ("ptuiCB('7','0','','0','很遗憾，网络连接出现异常，请您稍后再试。"
                              "(2220884626)', '10001');"), (name, value)
        assert reply.set_cookies() == []
    # Nothing else is refused: vc_type on the captcha, action, extra or unknown ones.
    image = await browser.get("https://ssl.captcha.qq.com/getimage?aid=1003903&r=0.2&uin=10001"
                              "&vc_type=9ed32e3f644d968809e8cbeaaf2cce42de62dfee12c14b74")
    assert image.status == 200
    reply = await in_thread(browser.login, 10001, action="2-11-7438", remember_uin=None,
                            webqq_type=40, js_ver=10037, t=1366948800, extra="x")
    assert LOGIN_RE.match(reply.text).group(1) == "0", reply.text


@pytest.mark.gen_test
async def test_lenient_login_checks_world_option(io_loop, request):
    sim = start_simulator(io_loop, request, world=default_world(login_checks="lenient"))
    browser = Browser(sim)
    reply = await in_thread(browser.login, 10001, aid=None, h=None, t=None, u1=None)
    assert LOGIN_RE.match(reply.text).group(1) == "0", reply.text


@pytest.mark.gen_test
async def test_number_lookups_are_rate_limited_per_session(io_loop, request):
    now = [1366948800.0]
    sim = start_simulator(io_loop, request, clock=lambda: now[0])
    assert sim.options.lookup_limit == 20                       # on by default
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    bob = sim.world.uin(10001, 20002)

    async def lookup():
        return (await in_thread(browser.info_get, "get_friend_uin2", tuin=bob, type=1,
                                verifysession="", code="")).json()["retcode"]
    assert [await lookup() for _ in range(21)] == [0] * 20 + [99999]
    now[0] += 61                                                # a minute later
    assert await lookup() == 0
