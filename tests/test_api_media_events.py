"""Friend and group requests, member changes, files and group management through the
OneBot API, end to end against the simulator: what a simulated person asks, does or
offers (its /_sim/ verbs) becomes OneBot notices and requests at a webhook, and the
actions that answer them reach the simulator (its /_sim/answers and /_sim/files show
what the account did); what WebQQ cannot do answers retcode 102 naming the action."""
import asyncio
import json
from urllib.parse import parse_qsl

import pytest
from api_helpers import FRIEND, GROUP, Harness, events_of, eventually
from media_helpers import b64
from test_api_media import get, say, start


@pytest.fixture
def admin_harness(admin_world, tmp_path, io_loop):
    """A harness on the world where 10001 administers group 30001 (media_helpers)."""
    h = Harness(admin_world, tmp_path)
    yield h
    io_loop.run_sync(h.close)


async def sim(harness, verb, **body):
    """A /_sim/ verb said to the account 10001; its answer."""
    return await harness.world.control.call(verb, dict({"to": 10001}, **body))


async def answers(harness):
    """What the account answered and changed, as the simulator recorded it."""
    return await harness.world.control.call("answers?account=10001")


def of_type(record, post_type, key, value):
    return [e for e in events_of(record, post_type) if e.get(key) == value]


# --- friends ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friend_request_is_a_request_event_answered_by_its_flag(harness):
    record, stream = await start(harness)
    asked = await sim(harness, "friend", **{"from": 379450326, "text": "please add me"})
    await sim(harness, "friend", **{"from": 555, "text": "me too"})
    first, second = await eventually(lambda: len(events_of(record, "request")) == 2 and
                                     events_of(record, "request"), "the requests")
    assert (first["request_type"], first["user_id"], first["comment"], first["flag"]) == (
        "friend", 379450326, "please add me", "friend:379450326:%d" % asked["item"]["value"]["seq"])
    assert (second["user_id"], second["comment"]) == (555, "me too")
    await harness.ok("set_friend_add_request", {"flag": first["flag"], "approve": True,
                                                "remark": "new friend"})
    await harness.ok("set_friend_add_request", {"flag": second["flag"], "approve": False})
    assert [(a["call"], a["qq"], a["accept"], a["remark"]) for a in await answers(harness)] == [
        ("allow_and_add2", 379450326, True, "new friend"),
        ("deny_added_request2", 555, False, "")]
    account = harness.world.sim.world.accounts[10001]
    assert account.friend(379450326).remark == "new friend" and account.friend(555) is None
    code, answer = await harness.call("set_friend_add_request", {"flag": "group:1:2"})
    assert (answer["retcode"], answer["msg"]) == (
        100, "flag must be the flag of a friend request event")


@pytest.mark.gen_test(timeout=30)
async def test_a_quick_operation_approves_a_request(harness):
    record, stream = await start(harness)
    record["answer"] = lambda event: {"approve": True, "remark": "quick"} \
        if event["post_type"] == "request" else None
    await sim(harness, "friend", **{"from": 379450326})
    await eventually(lambda: of_type(record, "notice", "notice_type", "friend_add"),
                     "the new friend")                             # the answer took
    (answer,) = await answers(harness)
    assert (answer["call"], answer["qq"], answer["remark"]) == (
        "allow_and_add2", 379450326, "quick")


@pytest.mark.gen_test(timeout=30)
async def test_friend_list_changes_are_friend_add_notices_once_per_friend(harness):
    record, stream = await start(harness)
    await sim(harness, "friend", **{"from": 569398403, "action": "added"})
    await sim(harness, "friend", **{"from": 20003, "action": "accepted"})   # verify_pass
    await sim(harness, "event", poll_type="buddylist_change", type="added",
              **{"from": 20003})                                     # then listed
    await say(harness, **{"from": FRIEND}, text="after")
    await eventually(lambda: events_of(record, "message"), "the message after them")
    notices = events_of(record, "notice")
    assert [(n["notice_type"], n["user_id"]) for n in notices] == [
        ("friend_add", 569398403), ("friend_add", 20003)]    # accepted, then listed: once


@pytest.mark.gen_test(timeout=30)
async def test_a_request_the_policy_answers_is_not_posted(harness):
    record, stream = await start(harness)
    harness.account.client.manage.accept_friends = True
    await sim(harness, "friend", **{"from": 379450326})
    await eventually(lambda: of_type(record, "notice", "notice_type", "friend_add"),
                     "the new friend")                             # the policy answered
    await say(harness, **{"from": FRIEND}, text="x")
    await eventually(lambda: events_of(record, "message"), "the message after it")
    assert events_of(record, "request") == []
    assert [a["call"] for a in await answers(harness)] == ["allow_and_add2"]


# --- groups -----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_joins_leaves_and_answers_are_notices_with_sub_type_and_operator(
        admin_harness):
    harness = admin_harness
    record, stream = await start(harness)
    for body in ({"group": 30002, "action": "deny", "member": 10001, "admin": 20002,
                  "text": "no"},
                 {"group": 30002, "action": "agree", "member": 10001, "admin": 20002},
                 {"group": GROUP, "action": "join", "member": 20003, "admin": 20002},
                 {"group": GROUP, "action": "leave", "member": 20003},
                 {"group": GROUP, "action": "remove", "member": 10002, "admin": 20002},
                 {"group": GROUP, "action": "remove", "member": 10001, "admin": 20002}):
        await harness.world.control.call("group", body)
    notices = await eventually(lambda: len(events_of(record, "notice")) == 6 and
                               events_of(record, "notice"), "the notices")
    assert [(n["notice_type"], n["sub_type"], n["group_id"], n["user_id"],
             n["operator_id"]) for n in notices] == [
        ("group_request_answer", "reject", 30002, 10001, 20002),
        ("group_request_answer", "approve", 30002, 10001, 20002),
        ("group_increase", "invite", GROUP, 20003, 20002),
        ("group_decrease", "leave", GROUP, 20003, 20003),
        ("group_decrease", "kick", GROUP, 10002, 20002),
        ("group_decrease", "kick_me", GROUP, 10001, 20002)]
    assert notices[0]["comment"] == "no"


@pytest.mark.gen_test(timeout=30)
async def test_a_join_request_is_a_request_answered_by_set_group_add_request(admin_harness):
    harness = admin_harness
    record, stream = await start(harness)
    group = harness.account.client.contacts.group(number=GROUP)
    await harness.world.control.call("group", {"group": GROUP, "action": "request",
                                               "member": 20003, "text": "let me in"})
    (request,) = await eventually(lambda: events_of(record, "request"), "the request")
    assert (request["request_type"], request["sub_type"], request["group_id"],
            request["comment"]) == ("group", "add", GROUP, "let me in")
    code, answer = await harness.call("set_group_add_request", {
        "flag": request["flag"], "sub_type": "invite", "approve": True})
    assert answer["retcode"] == 102 and "no group invitations" in answer["msg"]
    await harness.ok("set_group_add_request", {"flag": request["flag"], "sub_type": "add",
                                               "approve": False, "reason": "full"})
    (answered,) = stream.asked("/channel/op_group_join_req")
    assert (answered["group_uin"], answered["req_uin"], answered["op_type"],
            answered["msg"]) == (
        str(group.gid), str(harness.world.sim.world.uin(10001, 20003)), "3", "full")
    assert [(a["call"], a["group"], a["qq"], a["accept"], a["reason"])
            for a in await answers(harness)] == [
        ("op_group_join_req", GROUP, 20003, False, "full")]
    assert harness.world.sim.world.groups[GROUP].member(20003) is None
    code, answer = await harness.call("set_group_add_request", {"flag": "group:1:1"})
    assert answer["retcode"] == 100 and "unknown flag 'group:1:1'" in answer["msg"]


@pytest.mark.gen_test(timeout=30)
async def test_leaving_and_our_own_card_are_done_and_the_rest_is_unsupported(harness):
    record, stream = await start(harness)
    group = harness.account.client.contacts.group(number=GROUP)
    await harness.ok("set_group_card", {"group_id": GROUP, "user_id": 10001,
                                        "card": "robot"})
    assert harness.world.sim.world.groups[GROUP].member(10001).card == "robot"
    code, answer = await harness.call("set_group_card", {"group_id": GROUP,
                                                         "user_id": FRIEND, "card": "x"})
    assert (answer["retcode"], answer["msg"]) == (
        102, "set_group_card: WebQQ sets only the account's own card (user_id 10001), "
             "not 20001's")
    code, answer = await harness.call("set_group_leave", {"group_id": GROUP,
                                                          "is_dismiss": True})
    assert answer["retcode"] == 102 and "disbands" in answer["msg"]
    await harness.ok("set_group_leave", {"group_id": GROUP})
    assert [(a["call"], a["group"]) for a in await answers(harness)] == [
        ("update_group_business_card2", GROUP), ("quit_group2", GROUP)]
    assert harness.world.sim.world.groups[GROUP].member(10001) is None
    (left,) = [r for r in stream.requests if r.selector == "/api/quit_group2"]
    assert json.loads(dict(parse_qsl(left.data.decode()))["r"])["gcode"] == str(group.code)
    for action in ("set_group_kick", "set_group_ban", "delete_msg", "get_record",
                   "set_group_whole_ban_async"):
        code, answer = await harness.call(action, {"group_id": GROUP, "user_id": FRIEND})
        name = action.replace("_async", "")
        if action.endswith("_async"):
            assert (code, answer["status"]) == (200, "async")
            continue
        assert (code, answer["status"], answer["retcode"]) == (200, "failed", 102)
        assert answer["msg"].startswith("%s is not supported by WebQQ: " % name)
    code, answer = await harness.call("no_such_action", {})
    assert (code, answer["retcode"]) == (404, 1404)


# --- files ------------------------------------------------------------------------------

async def offer(harness, name, data, action="offer"):
    """A friend offers a file (or leaves one offline); the poll item's value."""
    return (await sim(harness, "file", **{"from": FRIEND, "name": name, "base64": b64(data),
                                          "action": action}))["item"]["value"]


async def files(harness):
    """The simulator's transfers to the account: ``(name, state, downloads)``."""
    return [(f["name"], f.get("state"), f["downloads"])
            for f in await harness.world.control.call("files?account=10001")]


@pytest.mark.gen_test(timeout=30)
async def test_an_offered_file_is_a_notice_taken_or_refused_by_actions(harness):
    record, stream = await start(harness)
    await offer(harness, "notes.txt", b"hello, file")
    other_offer = await offer(harness, "other.txt", b"not wanted")
    gone_offer = await offer(harness, "gone.txt", b"taken back")
    await sim(harness, "file", action="cancel", session_id=gone_offer["session_id"])
    await say(harness, **{"from": FRIEND}, text="after")           # after the cancel
    await eventually(lambda: events_of(record, "message"), "the message after them")
    notes, other, gone = events_of(record, "notice")                # a cancel: no notice
    assert (notes["notice_type"], notes["sub_type"], notes["user_id"],
            notes["file"]["name"]) == ("offline_file", "offer", FRIEND, "notes.txt")
    url = notes["file"]["url"]
    assert url == "%s/files/%s" % (harness.api.url, notes["file"]["id"])
    early = await get(harness, url)
    assert early.code == 409 and b"take it with the accept_file action" in early.body
    taken = await harness.ok("accept_file", {"file_id": notes["file"]["id"]})
    assert (taken["name"], taken["size"], taken["url"]) == ("notes.txt", 11, url)
    served = await get(harness, url)
    assert (served.code, served.body) == (200, b"hello, file")
    await harness.ok("refuse_file", {"file_id": other["file"]["id"]})
    (refused,) = stream.asked("/channel/refuse_file2")
    assert refused["lcid"] == str(other_offer["session_id"])
    code, answer = await harness.call("accept_file", {"file_id": other["file"]["id"]})
    assert (answer["retcode"], answer["msg"]) == (
        103, "file %s cannot be taken: it was refused" % other["file"]["id"])
    code, answer = await harness.call("accept_file", {"file_id": gone["file"]["id"]})
    assert answer["msg"].endswith("the friend took it back")
    code, answer = await harness.call("accept_file", {"file_id": "nope"})
    assert answer["retcode"] == 100 and "unknown file_id 'nope'" in answer["msg"]
    assert await files(harness) == [("notes.txt", "accepted", 1),
                                    ("other.txt", "refused", 0),
                                    ("gone.txt", "cancelled", 0)]


@pytest.mark.gen_test(timeout=30)
async def test_an_offline_file_is_fetched_by_its_url_on_first_use(harness):
    record, stream = await start(harness)
    await offer(harness, "test2.py", b"print('hi')\n", action="offline")
    (notice,) = await eventually(lambda: events_of(record, "notice"), "the notice")
    assert (notice["sub_type"], notice["file"]["size"]) == ("offline", 12)
    served, at_once = await asyncio.gather(get(harness, notice["file"]["url"]),
                                           get(harness, notice["file"]["url"]))
    assert (served.code, served.body) == (200, b"print('hi')\n")
    again = await get(harness, notice["file"]["url"])
    assert at_once.body == again.body == served.body
    assert [(name, downloads) for name, _state, downloads in await files(harness)] == [
        ("test2.py", 1)]                                                # fetched once
    assert [p.name for p in (harness.tmp_path / "10001" / "files").iterdir()] == [
        "test2.py"]
    code, answer = await harness.call("refuse_file", {"file_id": notice["file"]["id"]})
    assert answer["retcode"] == 100 and "no offer to refuse" in answer["msg"]
