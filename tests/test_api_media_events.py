"""Friend and group requests, member changes, files and group management through the
OneBot API, end to end: the poll items a 2013 server sent (pushed by ``MediaFront``,
tests/media_helpers.py) become OneBot notices and requests at a webhook, and the
actions that answer them reach the server's endpoints; what WebQQ cannot do answers
retcode 102 naming the action."""
import asyncio

import pytest
from api_helpers import FRIEND, GROUP, events_of, eventually
from media_front import front  # noqa: F401 (a fixture)
from test_api_media import buddy_message, get, start


def verify_required(seq, from_uin, account, msg="please add me"):
    return {"poll_type": "system_message", "value": {
        "seq": seq, "type": "verify_required", "uiuin": "", "from_uin": from_uin,
        "account": account, "msg": msg, "allow": 1, "stat": 10, "client_type": 1}}


def sys_g_msg(msg_id, group, kind, **value):
    return {"poll_type": "sys_g_msg", "value": dict(
        {"msg_id": msg_id, "from_uin": group.gid, "to_uin": 10001, "msg_id2": msg_id + 1,
         "msg_type": 33, "reply_ip": 176498394, "type": kind, "gcode": group.code,
         "t_gcode": group.number}, **value)}


def member_uin(group, number):
    return next(m.uin for m in group.members.values() if m.qq == number)


def of_type(record, post_type, key, value):
    return [e for e in events_of(record, post_type) if e.get(key) == value]


# --- friends ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friend_request_is_a_request_event_answered_by_its_flag(harness, front):
    record = await start(harness, front)
    front.push(verify_required(34653, 3863325290, 379450326),
               verify_required(34654, 3863325291, 555, "me too"))
    first, second = await eventually(lambda: len(events_of(record, "request")) == 2 and
                                     events_of(record, "request"), "the requests")
    assert (first["request_type"], first["user_id"], first["comment"], first["flag"]) == (
        "friend", 379450326, "please add me", "friend:379450326:34653")
    await harness.ok("set_friend_add_request", {"flag": first["flag"], "approve": True,
                                                "remark": "new friend"})
    (accepted,) = front.seen("/api/allow_and_add2")
    assert (accepted.r()["account"], accepted.r()["mname"]) == (379450326, "new friend")
    await harness.ok("set_friend_add_request", {"flag": second["flag"], "approve": False})
    (denied,) = front.seen("/api/deny_added_request2")
    assert denied.r()["account"] == 555
    code, answer = await harness.call("set_friend_add_request", {"flag": "group:1:2"})
    assert (answer["retcode"], answer["msg"]) == (
        100, "flag must be the flag of a friend request event")


@pytest.mark.gen_test(timeout=30)
async def test_a_quick_operation_approves_a_request(harness, front):
    record = await start(harness, front)
    record["answer"] = lambda event: {"approve": True, "remark": "quick"} \
        if event["post_type"] == "request" else None
    front.push(verify_required(1, 3863325290, 379450326))
    answer = await front.arrival("/api/allow_and_add2")
    assert (answer.r()["account"], answer.r()["mname"]) == (379450326, "quick")


@pytest.mark.gen_test(timeout=30)
async def test_friend_list_changes_are_friend_add_notices_once_per_friend(harness, front):
    record = await start(harness, front)
    alice = harness.account.client.contacts.friend(qq=FRIEND)
    front.push({"poll_type": "system_message", "value": {
        "seq": 49219, "type": "added_buddy_sig", "uiuin": "", "from_uin": 2388435354,
        "account": 569398403, "sig": "x", "stat": 20}},
        {"poll_type": "system_message", "value": {"seq": 37525, "type": "verify_pass",
                                                  "from_uin": alice.uin, "stat": 20}},
        {"poll_type": "buddylist_change", "value": {
            "added_friends": [{"groupid": 1, "uin": alice.uin}], "removed_friends": []}},
        buddy_message(77, alice.uin, "after"))
    await eventually(lambda: events_of(record, "message"), "the message after them")
    notices = events_of(record, "notice")
    assert [(n["notice_type"], n["user_id"]) for n in notices] == [
        ("friend_add", 569398403), ("friend_add", FRIEND)]    # accepted, then listed: once


@pytest.mark.gen_test(timeout=30)
async def test_a_request_the_policy_answers_is_not_posted(harness, front):
    record = await start(harness, front)
    harness.account.client.manage.accept_friends = True
    front.push(verify_required(5, 3863325290, 379450326))
    await front.arrival("/api/allow_and_add2")
    front.push(buddy_message(78, harness.account.client.contacts.friend(qq=FRIEND).uin, "x"))
    await eventually(lambda: events_of(record, "message"), "the message after it")
    assert events_of(record, "request") == []


# --- groups -----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_joins_leaves_and_answers_are_notices_with_sub_type_and_operator(harness,
                                                                              front):
    record = await start(harness, front)
    group = harness.account.client.contacts.group(number=GROUP)
    alice, bob = member_uin(group, FRIEND), member_uin(group, 20002)
    front.push(sys_g_msg(1, group, "group_join", op_type=3, new_member=2440652742,
                         t_new_member="55555", admin_uin=bob, admin_nick="Bob"),
               sys_g_msg(2, group, "group_leave", op_type=2, old_member=alice,
                         t_old_member=""),
               sys_g_msg(3, group, "group_leave", op_type=3, old_member=alice,
                         t_old_member="", admin_uin=bob),
               sys_g_msg(4, group, "group_leave", op_type=3, old_member=10001,
                         t_old_member="", admin_uin=bob),
               sys_g_msg(5, group, "group_request_join_agree", admin_uin=bob, msg="hi"),
               sys_g_msg(6, group, "group_request_join_deny", admin_uin=bob, msg="no"))
    notices = await eventually(lambda: len(events_of(record, "notice")) == 6 and
                               events_of(record, "notice"), "the notices")
    assert [(n["notice_type"], n["sub_type"], n["group_id"], n["user_id"],
             n["operator_id"]) for n in notices] == [
        ("group_increase", "invite", GROUP, 55555, 20002),
        ("group_decrease", "leave", GROUP, FRIEND, FRIEND),
        ("group_decrease", "kick", GROUP, FRIEND, 20002),
        ("group_decrease", "kick_me", GROUP, 10001, 20002),
        ("group_request_answer", "approve", GROUP, 10001, 20002),
        ("group_request_answer", "reject", GROUP, 10001, 20002)]
    assert notices[5]["comment"] == "no"


@pytest.mark.gen_test(timeout=30)
async def test_a_join_request_is_a_request_answered_by_set_group_add_request(harness,
                                                                           front):
    record = await start(harness, front)
    group = harness.account.client.contacts.group(number=GROUP)
    front.push(sys_g_msg(10899, group, "group_request_join", request_uin=2297680537,
                         t_request_uin="", msg="let me in"))
    (request,) = await eventually(lambda: events_of(record, "request"), "the request")
    assert (request["request_type"], request["sub_type"], request["group_id"],
            request["comment"]) == ("group", "add", GROUP, "let me in")
    code, answer = await harness.call("set_group_add_request", {
        "flag": request["flag"], "sub_type": "invite", "approve": True})
    assert answer["retcode"] == 102 and "no group invitations" in answer["msg"]
    await harness.ok("set_group_add_request", {"flag": request["flag"], "sub_type": "add",
                                               "approve": False, "reason": "full"})
    (answered,) = front.seen("/channel/op_group_join_req")
    assert (answered.query["group_uin"], answered.query["req_uin"],
            answered.query["op_type"], answered.query["msg"]) == (
        str(group.gid), "2297680537", "3", "full")
    code, answer = await harness.call("set_group_add_request", {"flag": "group:1:1"})
    assert answer["retcode"] == 100 and "unknown flag 'group:1:1'" in answer["msg"]


@pytest.mark.gen_test(timeout=30)
async def test_leaving_and_our_own_card_are_done_and_the_rest_is_unsupported(harness,
                                                                             front):
    await start(harness, front)
    group = harness.account.client.contacts.group(number=GROUP)
    await harness.ok("set_group_card", {"group_id": GROUP, "user_id": 10001,
                                        "card": "robot"})
    (card,) = front.seen("/api/update_group_business_card2")
    assert (card.r()["gcode"], card.r()["name"]) == (str(group.code), "robot")
    code, answer = await harness.call("set_group_card", {"group_id": GROUP,
                                                         "user_id": FRIEND, "card": "x"})
    assert (answer["retcode"], answer["msg"]) == (
        102, "set_group_card: WebQQ sets only the account's own card (user_id 10001), "
             "not 20001's")
    code, answer = await harness.call("set_group_leave", {"group_id": GROUP,
                                                          "is_dismiss": True})
    assert answer["retcode"] == 102 and "disbands" in answer["msg"]
    await harness.ok("set_group_leave", {"group_id": GROUP})
    (left,) = front.seen("/api/quit_group2")
    assert left.r()["gcode"] == str(group.code)
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

def file_offer(msg_id, from_uin, session_id, name, mode="recv"):
    return {"poll_type": "file_message", "value": {
        "msg_id": msg_id, "from_uin": from_uin, "to_uin": 10001, "msg_id2": msg_id + 9000,
        "msg_type": 9, "reply_ip": 176621916, "time": 1366948800, "mode": mode,
        "type": 101, "name": name, "session_id": session_id, "inet_ip": 2051695055}}


@pytest.mark.gen_test(timeout=30)
async def test_an_offered_file_is_a_notice_taken_or_refused_by_actions(harness, front):
    record = await start(harness, front)
    alice = harness.account.client.contacts.friend(qq=FRIEND)
    front.file_offers[19823] = b"hello, file"
    front.push(file_offer(6299, alice.uin, 19823, "notes.txt"),
               file_offer(6300, alice.uin, 19824, "other.txt"),
               file_offer(6301, alice.uin, 19825, "gone.txt"),
               file_offer(6302, alice.uin, 19825, "gone.txt", mode="refuse"))
    notes, other, gone = await eventually(
        lambda: len(events_of(record, "notice")) == 3 and events_of(record, "notice"),
        "the file notices")
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
    (refused,) = front.seen("/channel/refuse_file2")
    assert refused.query["lcid"] == "19824"
    code, answer = await harness.call("accept_file", {"file_id": other["file"]["id"]})
    assert (answer["retcode"], answer["msg"]) == (
        103, "file %s cannot be taken: it was refused" % other["file"]["id"])
    code, answer = await harness.call("accept_file", {"file_id": gone["file"]["id"]})
    assert answer["msg"].endswith("the friend took it back")
    code, answer = await harness.call("accept_file", {"file_id": "nope"})
    assert answer["retcode"] == 100 and "unknown file_id 'nope'" in answer["msg"]


@pytest.mark.gen_test(timeout=30)
async def test_an_offline_file_is_fetched_by_its_url_on_first_use(harness, front):
    record = await start(harness, front)
    alice = harness.account.client.contacts.friend(qq=FRIEND)
    front.offline_files["2c09bbdb"] = b"print('hi')\n"
    front.push({"poll_type": "push_offfile", "value": {
        "msg_id": 10438, "rkey": "2c09bbdb", "ip": "127.0.0.1", "port": front.port,
        "from_uin": alice.uin, "size": 12, "name": "test2.py", "expire_time": 1365470120,
        "time": 1364865321}})
    (notice,) = await eventually(lambda: events_of(record, "notice"), "the notice")
    assert (notice["sub_type"], notice["file"]["size"]) == ("offline", 12)
    served, at_once = await asyncio.gather(get(harness, notice["file"]["url"]),
                                           get(harness, notice["file"]["url"]))
    assert (served.code, served.body) == (200, b"print('hi')\n")
    again = await get(harness, notice["file"]["url"])
    assert at_once.body == again.body == served.body
    assert len([r for r in front.requests if r.host == "127.0.0.1"]) == 1   # fetched once
    assert [p.name for p in (harness.tmp_path / "10001" / "files").iterdir()] == [
        "test2.py"]
    code, answer = await harness.call("refuse_file", {"file_id": notice["file"]["id"]})
    assert answer["retcode"] == 100 and "no offer to refuse" in answer["msg"]
