"""The simulator's files, friend requests and group management, spoken to with urllib as
a 2013 script would: what each call refuses, what it changes in the lists, and the
control verbs that drive the other side (docs/protocol.rst §3.24, §3.26; files.py,
manage.py)."""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from simulator_helpers import Browser, Reply, default_world, in_thread, start_simulator
from webqq.simulator.app import make_application
from webqq.simulator.mediaapp import SERVER_ROUTES, OfflineFileHandler

REFUSED_102 = {"retcode": 102, "errmsg": ""}


def fetch_plain(url) -> Reply:
    """A GET straight to the address a redirect or an item names (the simulator's own)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


def items(reply, poll_type=None) -> list:
    body = reply.json()
    assert body["retcode"] == 0, body
    return [i for i in body["result"] if poll_type is None or i["poll_type"] == poll_type]


async def control(browser, verb, body=None, status=200):
    reply = await in_thread(browser.control, verb, body)
    assert reply.status == status, (verb, body, reply.status, reply.text)
    return reply.json()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def managing_world() -> dict:
    """The built-in world where 10001 administers group 30001 and owns group 30002, and
    10001 and 10002 are not friends."""
    world = default_world()
    first, second = world["accounts"]
    first["friends"] = [f for f in first["friends"] if f["qq"] != 10002]
    second["friends"] = [f for f in second["friends"] if f["qq"] != 10001]
    for member in world["groups"][0]["members"]:
        member["admin"] = member["qq"] == 10001 or member.get("admin", False)
    world["groups"].append({"number": 30002, "name": "ours", "owner": 10001,
                            "members": [{"qq": 20001}]})
    return world


@pytest.fixture
def managing(io_loop, request):
    return start_simulator(io_loop, request, world=managing_world())


# --- files ----------------------------------------------------------------------------------

async def offer(browser, name="notes.txt", data=b"hello, file", **extra):
    body = dict({"to": 10001, "from": 20001, "name": name, "base64": b64(data)}, **extra)
    return (await control(browser, "file", body))["item"]["value"]


@pytest.mark.gen_test
async def test_an_offer_is_taken_by_get_file2_and_served_from_the_simulator(sim, browser):
    await in_thread(browser.sign_in, 10001)
    value = await offer(browser)
    assert (value["mode"], value["name"], value["type"]) == ("recv", "notes.txt", 101)
    alice = sim.world.uin(10001, 20001)
    query = {"lcid": value["session_id"], "guid": "notes.txt", "to": alice, "count": 1,
             "time": 1366948800}
    for change in ({"guid": "other.txt"}, {"to": 1}, {"lcid": value["session_id"] + 1},
                   {"lcid": "x"}):
        reply = await in_thread(browser.channel_get, "get_file2", **dict(query, **change))
        assert (reply.status, reply.json()) == (200, REFUSED_102), change
    reply = await in_thread(browser.channel_get, "get_file2", **query)
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location.startswith("http://127.0.0.1:%d/file/" % sim.port)
    assert (await in_thread(fetch_plain, location)).body == b"hello, file"
    assert (await in_thread(browser.channel_get, "get_file2", **query)).status == 302
    assert (await in_thread(fetch_plain, location)).body == b"hello, file"
    reply = await in_thread(browser.channel_get, "refuse_file2", lcid=value["session_id"],
                            to=alice)
    assert reply.json() == REFUSED_102                       # taken already
    (record,) = await control(browser, "files?account=10001")
    assert (record["state"], record["downloads"], record["size"]) == ("accepted", 2, 11)
    reply = await in_thread(browser.channel_get, "get_file2", **dict(query, psessionid="0"))
    assert reply.json() == {"retcode": 103, "errmsg": ""}


@pytest.mark.gen_test
async def test_an_offer_refused_or_taken_back_is_gone(sim, browser):
    await in_thread(browser.sign_in, 10001)
    refused, cancelled = await offer(browser, "a.txt"), await offer(browser, "b.txt")
    alice = sim.world.uin(10001, 20001)
    assert (await in_thread(browser.channel_get, "refuse_file2", lcid=refused["session_id"],
                            to=1)).json() == REFUSED_102
    reply = await in_thread(browser.channel_get, "refuse_file2", lcid=refused["session_id"],
                            to=alice, count=1, time=1)
    assert reply.json() == {"retcode": 0, "result": "ok"}
    assert (await in_thread(browser.channel_get, "refuse_file2", lcid=refused["session_id"],
                            to=alice)).json() == REFUSED_102
    item = (await control(browser, "file", {"to": 10001, "action": "cancel",
                                            "session_id": cancelled["session_id"]}))["item"]
    assert (item["value"]["mode"], item["value"]["session_id"], item["value"]["cancel_type"]) \
        == ("refuse", cancelled["session_id"], 1)
    for value in (refused, cancelled):
        reply = await in_thread(browser.channel_get, "get_file2", lcid=value["session_id"],
                                guid=value["name"], to=alice)
        assert reply.json() == REFUSED_102
    await control(browser, "file", {"to": 10001, "action": "cancel",
                                    "session_id": refused["session_id"]}, status=409)
    records = await control(browser, "files?account=10001")
    assert [(r["name"], r["state"]) for r in records] == [("a.txt", "refused"),
                                                          ("b.txt", "cancelled")]


@pytest.mark.gen_test
async def test_an_offline_file_is_served_where_its_item_says(sim, browser):
    await in_thread(browser.sign_in, 10001)
    value = await offer(browser, "读我 1.txt", b"0123456789", action="offline")
    assert (value["ip"], value["port"], value["size"], value["name"]) == (
        "127.0.0.1", sim.port, 10, "读我 1.txt")
    assert value["expire_time"] == value["time"] + 7 * 86400
    base = "http://127.0.0.1:%d/%s" % (sim.port, urllib.parse.quote(value["name"], safe=""))

    def url(**query):
        return base + "?" + urllib.parse.urlencode(dict({"ver": 2173, "rkey": value["rkey"],
                                                         "range": 0}, **query))
    assert (await in_thread(fetch_plain, url())).body == b"0123456789"
    assert (await in_thread(fetch_plain, url(range=4))).body == b"456789"
    for wrong in (url(rkey="0" * 64), url(range=11), url(range="x"),
                  url().replace("1.txt", "2.txt")):
        assert (await in_thread(fetch_plain, wrong)).status == 404, wrong
    (record,) = await control(browser, "files?account=10001")
    assert (record["kind"], record["downloads"]) == ("offline", 2)


@pytest.mark.gen_test
async def test_the_file_verb_refuses_what_cannot_happen(sim, browser):
    await in_thread(browser.sign_in, 10001)
    good = {"to": 10001, "from": 20001, "name": "a.txt", "base64": b64(b"x")}
    for change, problem in (({"from": 20003}, "not a friend"), ({"name": ""}, "name"),
                            ({"base64": "%%%"}, "base64: not valid"), ({"name": None},
                                                                       "name and base64"),
                            ({"action": "send"}, "action: "), ({"action": "cancel"},
                                                               "session_id: "),
                            ({"action": "cancel", "session_id": 12345}, "no transfer")):
        body = {k: v for k, v in dict(good, **change).items() if v is not None}
        reply = await in_thread(browser.control, "file", body)
        assert reply.status == 400 and problem in reply.json()["error"], (change, reply.text)
    await control(browser, "file", dict(good, to=10002), status=409)    # not logged in


# --- friend requests ------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_friend_request_accepted_and_added_back_changes_the_friend_list(sim, browser):
    await in_thread(browser.sign_in, 10001)
    item = (await control(browser, "friend", {"to": 10001, "from": 379450326,
                                              "text": "please add me"}))["item"]
    assert (item["value"]["type"], item["value"]["account"], item["value"]["msg"]) == (
        "verify_required", 379450326, "please add me")
    await in_thread(browser.poll)
    for r, retcode in (({"account": 555, "gid": 0}, 100001),       # nobody asked
                       ({"account": 379450326, "gid": 7}, 100001),   # no category 7
                       ({"account": 379450326}, 100003),             # no gid
                       ({"account": "x", "gid": 0}, 100003),
                       ({"account": 379450326, "gid": 0, "mname": 5}, 100003)):
        reply = await in_thread(browser.info_post, "allow_and_add2", r)
        assert reply.json() == {"retcode": retcode}, r
    reply = await in_thread(browser.info_post, "allow_and_add2",
                            {"account": 379450326, "gid": 1, "mname": "new friend",
                             "vfwebqq": "0" * 80})
    assert reply.json() == {"retcode": 100000}
    uin = sim.world.uin(10001, 379450326)
    reply = await in_thread(browser.info_post, "allow_and_add2",
                            {"account": 379450326, "gid": 1, "mname": "new friend"})
    assert reply.json() == {"retcode": 0, "result": {"result1": 0, "account": 379450326,
                                                     "tuin": uin, "stat": 20}}
    (change,) = items(await in_thread(browser.poll), "buddylist_change")
    assert change["value"] == {"added_friends": [{"groupid": 1, "uin": uin}],
                               "removed_friends": []}
    friends = (await in_thread(browser.info_post, "get_user_friends2", {})).json()["result"]
    assert {"flag": 0, "uin": uin, "categories": 1} in friends["friends"]
    assert {"uin": uin, "markname": "new friend", "type": 0} in friends["marknames"]
    again = await in_thread(browser.info_post, "allow_and_add2", {"account": 379450326,
                                                                  "gid": 0})
    assert again.json() == {"retcode": 100001}                     # answered already
    (answer,) = await control(browser, "answers?account=10001")
    assert (answer["call"], answer["qq"], answer["accept"], answer["add"], answer["category"],
            answer["remark"]) == ("allow_and_add2", 379450326, True, True, 1, "new friend")


@pytest.mark.gen_test
async def test_a_request_refused_or_accepted_only_leaves_our_list_as_it_was(managing):
    first, second = Browser(managing), Browser(managing)
    await in_thread(first.sign_in, 10001, "11111111")
    await in_thread(second.sign_in, 10002, "22222222")
    await control(first, "friend", {"to": 10001, "from": 555001})
    await control(first, "friend", {"to": 10001, "from": 10002, "text": "hi"})
    reply = await in_thread(first.info_post, "deny_added_request2",
                            {"account": 555001, "msg": "who are you"})
    assert reply.json() == {"retcode": 0, "result": 0}
    reply = await in_thread(first.info_post, "allow_added_request2", {"account": 10002})
    assert reply.json() == {"retcode": 0, "result": 0}
    world = managing.world
    assert world.accounts[10001].friend(555001) is None
    assert world.accounts[10001].friend(10002) is None
    assert world.accounts[10002].friend(10001) is not None        # the requester's list
    (passed,) = items(await in_thread(second.poll), "system_message")
    assert (passed["value"]["type"], passed["value"]["from_uin"]) == (
        "verify_pass", world.uin(10002, 10001))
    assert items(await in_thread(first.poll), "buddylist_change") == []
    answers = await control(first, "answers?account=10001")
    assert [(a["call"], a["qq"], a["accept"], a["reason"]) for a in answers] == [
        ("deny_added_request2", 555001, False, "who are you"),
        ("allow_added_request2", 10002, True, "")]


@pytest.mark.gen_test
async def test_the_friend_verb_adds_and_accepts_on_cue(sim, browser):
    await in_thread(browser.sign_in, 10001)
    added = (await control(browser, "friend", {"to": 10001, "from": 569398403,
                                               "action": "added"}))["item"]["value"]
    assert (added["type"], added["account"]) == ("added_buddy_sig", 569398403)
    assert sim.world.accounts[10001].friend(569398403) is None
    accepted = (await control(browser, "friend", {"to": 10001, "from": 20003,
                                                  "action": "accepted",
                                                  "category": 1}))["item"]["value"]
    assert (accepted["type"], accepted["group_id"]) == ("verify_pass_add", 1)
    assert sim.world.accounts[10001].friend(20003).category == 1
    for body, status in (({"from": 20003}, 400),                      # a friend already
                         ({"from": 20005, "action": "accepted", "category": 9}, 400),
                         ({"from": 20005, "action": "wave"}, 400),
                         ({"from": 20005, "category": -1}, 400),
                         ({"from": 20005, "to": 10002}, 409)):       # not logged in
        await control(browser, "friend", dict({"to": 10001}, **body), status=status)


# --- groups ---------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_member_changes_change_the_members_and_are_told_with_their_ids(sim, browser):
    await in_thread(browser.sign_in, 10001)
    world = sim.world
    joined = (await control(browser, "group", {"group": 30001, "action": "join",
                                               "member": 20003, "admin": 20002}))["items"]
    value = joined[0]["value"]
    assert (value["type"], value["op_type"], value["new_member"], value["admin_uin"],
            value["admin_nick"]) == ("group_join", 3, world.uin(10001, 20003),
                                     world.uin(10001, 20002), "Bob")
    info = (await in_thread(browser.info_get, "get_group_info_ext2",
                            gcode=world.groups[30001].code)).json()["result"]
    assert {"muin": world.uin(10001, 20003), "mflag": 0} in info["ginfo"]["members"]
    left = (await control(browser, "group", {"group": 30001, "action": "leave",
                                             "member": 20003}))["items"][0]["value"]
    assert (left["type"], left["op_type"], left["old_member"]) == (
        "group_leave", 2, world.uin(10001, 20003))
    assert "admin_uin" not in left
    removed = (await control(browser, "group", {"group": 30001, "action": "remove",
                                                "member": 20002}))["items"][0]["value"]
    assert list(removed)[-6:] == ["op_type", "old_member", "t_old_member", "admin_uin",
                                  "t_admin_uin", "admin_nick"]
    assert (removed["op_type"], removed["old_member"], removed["admin_uin"]) == (
        3, world.uin(10001, 20002), world.uin(10001, 20001))          # by the owner
    assert world.groups[30001].member(20002) is None
    for body in ({"action": "join", "member": 10002},                # a member already
                 {"action": "leave", "member": 20001},               # the owner
                 {"action": "remove", "member": 10002, "admin": 10002},
                 {"action": "remove", "member": 10002, "admin": 20003},   # not an admin
                 {"action": "leave", "member": 20003},               # not a member
                 {"action": "leave", "member": 10002, "admin": 20001},
                 {"action": "dance", "member": 10002},
                 {"action": "agree", "member": 20003},               # not an account
                 {"action": "join", "member": 20003, "group": 39999}):
        await control(browser, "group", dict({"group": 30001}, **body), status=400)
    await control(browser, "group", {"group": 30001, "action": "request", "member": 20003},
                  status=409)                                         # no admin logged in


@pytest.mark.gen_test
async def test_op_group_join_req_is_for_administrators_with_a_request(managing):
    first, second = Browser(managing), Browser(managing)
    await in_thread(first.sign_in, 10001, "11111111")
    await in_thread(second.sign_in, 10002, "22222222")
    world = managing.world
    group = world.groups[30001]
    (told,) = (await control(first, "group", {"group": 30001, "action": "request",
                                              "member": 20003, "text": "let me in"}))["items"]
    assert (told["value"]["type"], told["value"]["request_uin"], told["value"]["msg"]) == (
        "group_request_join", world.uin(10001, 20003), "let me in")
    carol = world.uin(10001, 20003)
    query = {"group_uin": group.gid, "req_uin": carol, "msg": "", "op_type": 2}
    for change, retcode in (({"op_type": 4}, 100006), ({"op_type": "x"}, 100006),
                            ({"req_uin": world.uin(10001, 20001)}, 100001),
                            ({"group_uin": group.code}, 100001)):
        reply = await in_thread(first.channel_get, "op_group_join_req", **dict(query, **change))
        assert reply.json()["retcode"] == retcode, change
    # 10002 is a member, not an administrator.
    reply = await in_thread(second.channel_get, "op_group_join_req",
                            **dict(query, req_uin=world.uin(10002, 20003)))
    assert reply.json() == {"retcode": 100001}
    reply = await in_thread(first.channel_get, "op_group_join_req", **query)
    assert reply.json() == {"retcode": 0, "result": "ok"}
    assert world.groups[30001].member(20003) is not None
    (joined,) = items(await in_thread(second.poll), "sys_g_msg")
    assert (joined["value"]["type"], joined["value"]["new_member"],
            joined["value"]["admin_uin"]) == ("group_join", world.uin(10002, 20003),
                                              world.uin(10002, 10001))
    reply = await in_thread(first.channel_get, "op_group_join_req", **query)
    assert reply.json() == {"retcode": 100001}                       # answered already
    # An account asking: told the answer.
    await control(first, "group", {"group": 30002, "action": "request", "member": 10002})
    reply = await in_thread(first.channel_get, "op_group_join_req",
                            group_uin=world.groups[30002].gid,
                            req_uin=world.uin(10001, 10002), msg="full", op_type=3)
    assert reply.json()["retcode"] == 0
    (denied,) = items(await in_thread(second.poll), "sys_g_msg")
    assert (denied["value"]["type"], denied["value"]["msg"], denied["value"]["admin_uin"]) \
        == ("group_request_join_deny", "full", world.uin(10002, 10001))
    assert world.groups[30002].member(10002) is None
    answers = await control(first, "answers?account=10001")
    assert [(a["group"], a["qq"], a["accept"]) for a in answers] == [
        (30001, 20003, True), (30002, 10002, False)]


@pytest.mark.gen_test
async def test_our_request_agreed_makes_us_a_member(managing):
    first, second = Browser(managing), Browser(managing)
    await in_thread(first.sign_in, 10001, "11111111")
    await in_thread(second.sign_in, 10002, "22222222")
    world = managing.world
    (denied,) = (await control(first, "group", {"group": 30002, "action": "deny",
                                                "member": 10002, "text": "no"}))["items"]
    assert (denied["value"]["type"], denied["value"]["msg"], denied["value"]["admin_uin"]) \
        == ("group_request_join_deny", "no", world.uin(10002, 10001))
    agreed, joined = (await control(first, "group", {"group": 30002, "action": "agree",
                                                     "member": 10002}))["items"]
    assert agreed["value"]["to_uin"] == 10002 and joined["value"]["to_uin"] == 10001
    assert joined["value"]["new_member"] == world.uin(10001, 10002)
    groups = (await in_thread(second.info_post, "get_group_name_list_mask2", {})).json()
    assert world.groups[30002].gid in [g["gid"] for g in groups["result"]["gnamelist"]]
    await control(first, "group", {"group": 30002, "action": "agree", "member": 10002},
                  status=400)                                        # a member already


@pytest.mark.gen_test
async def test_quit_group2_and_our_card(managing):
    browser = Browser(managing)
    await in_thread(browser.sign_in, 10001)
    world = managing.world
    code = world.groups[30001].code
    for r, retcode in (({"gcode": str(world.groups[30002].code)}, 100001),   # the owner
                       ({"gcode": "123"}, 100001), ({}, 100001),
                       ({"gcode": str(code), "vfwebqq": "0" * 80}, 100000)):
        assert (await in_thread(browser.info_post, "quit_group2", r)).json() == {
            "retcode": retcode}, r
    reply = await in_thread(browser.info_post, "update_group_business_card2",
                            {"gcode": str(code), "name": "robot", "phone": "123"})
    assert reply.json() == {"retcode": 0, "result": 0}
    info = (await in_thread(browser.info_get, "get_group_info_ext2", gcode=code)).json()
    assert {"muin": 10001, "card": "robot"} in info["result"]["cards"]
    assert (await in_thread(browser.info_post, "update_group_business_card2",
                            {"gcode": str(code), "name": 5})).json() == {"retcode": 100003}
    assert (await in_thread(browser.info_post, "quit_group2", {"gcode": str(code)})).json() \
        == {"retcode": 0, "result": 0}
    groups = (await in_thread(browser.info_post, "get_group_name_list_mask2", {})).json()
    assert [g["code"] for g in groups["result"]["gnamelist"]] == [world.groups[30002].code]
    for call in ("quit_group2", "update_group_business_card2"):
        reply = await in_thread(browser.info_post, call, {"gcode": str(code), "name": "x"})
        assert reply.json() == {"retcode": 100001}, call           # not a member now
    answers = await control(browser, "answers?account=10001")
    assert [(a["call"], a["group"]) for a in answers] == [
        ("update_group_business_card2", 30001), ("quit_group2", 30001)]


@pytest.mark.gen_test
async def test_the_new_endpoints_answer_404_and_405_like_the_others(sim, browser):
    await in_thread(browser.sign_in, 10001)
    assert (await in_thread(browser.fetch, "http://up.web2.qq.com/cgi-bin/cface_upload")
            ).status == 405
    assert (await in_thread(browser.fetch, "http://up.web2.qq.com/cgi-bin/other")).status == 404
    reply = await in_thread(browser.fetch, "http://d.web2.qq.com/channel/get_offpic2",
                            {"r": "{}"}, {"Referer": "http://web2.qq.com/"})
    assert reply.status == 405
    assert (await in_thread(browser.info_get, "quit_group2")).status == 405
    assert (await in_thread(fetch_plain, "http://127.0.0.1:%d/file/abc" % sim.port)).status \
        == 404
    assert json.loads((await in_thread(browser.channel_get, "get_discu_info", did=1)).body)


@pytest.mark.gen_test
async def test_the_file_server_leaves_other_paths_of_its_address_alone(sim, browser):
    await in_thread(browser.sign_in, 10001)
    value = await offer(browser, "page", b"a file named page", action="offline")
    url = "http://127.0.0.1:%d/page?rkey=%s" % (sim.port, value["rkey"])
    assert (await in_thread(fetch_plain, url)).body == b"a file named page"
    # Without an rkey, /page is not a file's: a page served beside the control surface
    # (routes for any Host, tried after the file server's) gets it.

    class Page(web.RequestHandler):
        def initialize(self, sim):
            pass

    app = make_application(sim, ("127.0.0.1",), [(r"/page", Page)],
                           {"127.0.0.1": SERVER_ROUTES})

    def handler_of(uri):
        request = HTTPServerRequest(start_line=RequestStartLine("GET", uri, "HTTP/1.1"),
                                    headers=HTTPHeaders(Host="127.0.0.1:1"))
        return app.find_handler(request).handler_class
    assert handler_of("/page") is Page
    assert handler_of("/page?rkey=1") is OfflineFileHandler
