"""WebQQClient's pictures, files, friend and group events and management calls, end to
end against the simulator: what a simulated person says, offers or asks reaches the
client, and what the client uploads, sends and answers arrives at the simulator."""
import asyncio
import json
import logging
import os
import stat
import urllib.parse

import pytest
from media_helpers import GIF, JPEG, PNG, b64, kept_by_simulator, online, sha1, spy_stream

from webqq import qq
from webqq.client.calls import NotOnline, Unavailable
from webqq.client.pictures import ReceivedPicture
from webqq.client.send_queue import SendStatus


def member_uin(group, number):
    return next(m.uin for m in group.members.values() if m.qq == number)


async def say(world, **body):
    return (await world.control.say(**body))["item"]


# --- receiving pictures ---------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friends_picture_reaches_the_client_as_the_same_bytes_fetched_once(world):
    client, events, stream = await online(world)
    alice = client.contacts.friend(qq=20001)
    item = await say(world, **{"from": 20001}, content=["look\r", ["face", 1], " here"],
                     picture={"base64": b64(JPEG)})
    path = item["value"]["content"][-1][1]["file_path"]
    message = await events.wait("message")
    assert message.text == "look\n[face:1] here[image]"
    text, face, rest, picture = message.pieces
    assert (text, face, rest) == ("look\n", qq.Face(1), " here")
    assert picture == ReceivedPicture("offpic", path, alice.uin)
    assert message.pictures == (picture,)
    first, second = await client.pictures.fetch(picture), await client.pictures.fetch(picture)
    assert first == second == JPEG
    (asked,) = stream.asked("/channel/get_offpic2")           # the second came from the cache
    assert (asked["file_path"], asked["f_uin"]) == (path, str(alice.uin))
    cached = os.path.join(client.state_dir, "pictures", picture.key)
    with open(cached, "rb") as kept:
        assert kept.read() == JPEG
    assert stat.S_IMODE(os.stat(cached).st_mode) == 0o600


@pytest.mark.gen_test(timeout=30)
async def test_group_and_discussion_pictures_come_from_the_server_the_piece_names(world):
    client, events, stream = await online(world)
    group = client.contacts.group(number=30001)
    discussion = next(iter(client.contacts.discussions.values()))
    await say(world, group=30001, **{"from": 20001}, text="!", picture={"base64": b64(PNG)})
    await say(world, discussion=40001, **{"from": 20003}, picture={"base64": b64(GIF)})
    in_group = await events.wait("message", lambda e: e.chat == "group")
    in_discussion = await events.wait("message", lambda e: e.chat == "discussion")
    (picture,) = in_group.pictures
    server = "127.0.0.1:%d" % world.sim.port
    assert (picture.source, picture.code, picture.server) == ("group", group.code, server)
    assert await client.pictures.fetch(picture) == PNG
    assert await client.pictures.fetch(in_discussion.pictures[0]) == GIF
    asked, asked_discussion = stream.asked("/cgi-bin/get_group_pic")
    assert (asked["type"], asked["gid"], asked["uin"], asked["rip"], asked["rport"],
            asked["fid"], asked["pic"]) == (
        "0", str(group.code), str(member_uin(group, 20001)), "127.0.0.1",
        str(world.sim.port), str(picture.file_id), picture.name)
    assert asked["vfwebqq"] == client._link.vfwebqq
    assert (asked_discussion["type"], asked_discussion["gid"]) == ("1", str(discussion.did))


@pytest.mark.gen_test(timeout=30)
async def test_a_friends_custom_face_is_fetched_by_its_message_id(world):
    client, events, stream = await online(world)
    alice = client.contacts.friend(qq=20001)
    item = await say(world, **{"from": 20001}, picture={"base64": b64(JPEG), "as": "cface"})
    (picture,) = (await events.wait("message")).pictures
    assert picture.source == "cface" and picture.name.endswith(".jPg")
    assert await client.pictures.fetch(picture) == JPEG
    (asked,) = stream.asked("/channel/get_cface2")
    assert (asked["lcid"], asked["guid"], asked["to"], asked["count"]) == (
        str(item["value"]["msg_id"]), picture.name, str(alice.uin), "5")


@pytest.mark.gen_test(timeout=30)
async def test_fetching_a_picture_fails_clearly_and_twice_at_once_asks_once(world):
    client, events, stream = await online(world)
    alice = client.contacts.friend(qq=20001)
    with pytest.raises(qq.RetcodeError) as caught:
        await client.pictures.fetch(ReceivedPicture("offpic", "/gone", alice.uin))
    assert caught.value.retcode is qq.QQRetcode.LOGIN_EXPIRED
    with pytest.raises(Unavailable, match="no 2013 endpoint"):
        await client.pictures.fetch(ReceivedPicture("unknown", "5E10B9BC-A2BD", alice.uin))
    await say(world, **{"from": 20001}, picture={"base64": b64(GIF), "as": "cface"})
    (twice,) = (await events.wait("message")).pictures
    assert await asyncio.gather(client.pictures.fetch(twice),
                                client.pictures.fetch(twice)) == [GIF, GIF]
    assert len(stream.asked("/channel/get_cface2")) == 1


@pytest.mark.gen_test(timeout=30)
async def test_actions_need_the_session(world):
    stream = spy_stream(world)
    client = world.client(stream=stream)
    with pytest.raises(NotOnline):
        await client.pictures.fetch(ReceivedPicture("offpic", "/p", 1))
    with pytest.raises(NotOnline):
        await client.manage.answer_friend(20005, True)
    assert stream.requests == []


# --- sending pictures -----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friends_picture_arrives_at_the_simulator_as_the_same_bytes(world):
    client, events, stream = await online(world)
    picture = qq.UploadPicture.from_bytes(JPEG, "cat.jpg")
    message = await client.send_buddy(20001, ["a cat:", picture, qq.Face(14)]).done
    assert message.status is SendStatus.SENT, message.error
    assert message.text == "a cat:[image][face:14]"
    sent = (await world.control.sent())[-1]
    (path,) = [piece[1] for piece in sent["content"] if piece[0:1] == ["offpic"]]
    assert sent["content"] == ["a cat:", ["offpic", path, "cat.jpg", len(JPEG)],
                               ["face", 14]]
    assert sent["pictures"] == [{"piece": 1, "kind": "offpic", "name": path,
                                 "sha1": sha1(JPEG), "format": "jpg", "size": len(JPEG)}]
    assert await kept_by_simulator(world, sha1(JPEG)) == JPEG


@pytest.mark.gen_test(timeout=30)
async def test_group_pictures_go_to_the_custom_face_server_with_one_signature(world):
    client, events, stream = await online(world)
    group = client.contacts.group(number=30001)
    picture = qq.UploadPicture.from_bytes(PNG)
    first = client.send_group(30001, [picture, "first"])
    second = client.send_group(30001, ["again", picture])
    assert (await first.done).status is SendStatus.SENT, first.error
    assert (await second.done).status is SendStatus.SENT, second.error
    assert len(stream.asked("/channel/get_gface_sig2")) == 1           # once per login
    assert len(stream.asked("/cgi-bin/cface_upload")) == 2             # the second: ret 4
    sent = [s for s in await world.control.sent() if s["kind"] == "group"][-2:]
    name = sent[0]["content"][0][2]
    assert name.endswith(".pNg")
    assert [s["content"] for s in sent] == [[["cface", "group", name], "first"],
                                            ["again", ["cface", "group", name]]]
    assert [s["pictures"][0]["sha1"] for s in sent] == [sha1(PNG)] * 2
    assert await kept_by_simulator(world, sha1(PNG)) == PNG
    (send,) = [r for r in stream.requests if r.selector == "/channel/send_qun_msg2"][:1]
    r = json.loads(dict(urllib.parse.parse_qsl(send.data.decode()))["r"])
    assert r["group_uin"] == group.gid and r["group_code"] == group.code
    assert r["key"] and r["sig"]                  # the simulator refuses any but its own


@pytest.mark.gen_test(timeout=30)
async def test_a_discussion_picture_arrives_as_the_same_bytes(world):
    client, events, stream = await online(world)
    discussion = next(iter(client.contacts.discussions.values()))
    message = await client.send_discussion(discussion.did,
                                           [qq.UploadPicture.from_bytes(GIF)]).done
    assert message.status is SendStatus.SENT, message.error
    sent = (await world.control.sent())[-1]
    assert (sent["kind"], sent["to"], sent["pictures"][0]["sha1"]) == (
        "discussion", 40001, sha1(GIF))


@pytest.mark.gen_test(timeout=30)
async def test_bad_pictures_are_refused_before_anything_is_queued(world):
    client, events, stream = await online(world)
    before = len(stream.requests)
    with pytest.raises(qq.PictureError, match="not a picture"):
        client.send_buddy(20001, ["x", qq.UploadPicture(b"%PDF-1.4", "jpg", "fake.jpg")])
    with pytest.raises(qq.PictureError, match="not a picture"):
        qq.UploadPicture.from_bytes(b"%PDF-1.4")
    with pytest.raises(qq.PictureError, match="too large: 1,049,612 bytes"):
        client.send_group(30001, [qq.UploadPicture(JPEG + b"\x00" * qq.GROUP_PICTURE_MAX,
                                                   "jpg", "big.jpg")])
    with pytest.raises(qq.PictureError, match="session message cannot carry pictures"):
        client.send_session(123, [qq.UploadPicture.from_bytes(JPEG)], via_id=1)
    with pytest.raises(ValueError, match="CFace is a group picture"):
        client.send_buddy(20001, [qq.CFace("N.jPg")])
    assert len(client._sending.queue) == 0
    assert [r for r in stream.requests[before:] if "poll2" not in r.selector] == []
    ok = await client.send_buddy(20001, "still fine").done
    assert ok.status is SendStatus.SENT


@pytest.mark.gen_test(timeout=30)
async def test_a_picture_the_server_refuses_fails_its_message_only(world):
    client, events, stream = await online(world)
    await world.control.call("fault", {"path": "/cgi-bin/cface_upload", "kind": "retcode",
                                       "retcode": 2})
    refused = client.send_group(30001, ["pic", qq.UploadPicture.from_bytes(JPEG)])
    after = client.send_group(30001, "next")
    refused, after = await refused.done, await after.done
    assert refused.status is SendStatus.FAILED
    assert "too large for the server" in refused.error
    assert after.status is SendStatus.SENT
    assert [s["text"] for s in await world.control.sent()] == ["next"]


# --- files ------------------------------------------------------------------------------

async def offer(world, name, data, action="offer"):
    body = {"to": 10001, "from": 20001, "name": name, "base64": b64(data), "action": action}
    return (await world.control.call("file", body))["item"]["value"]


@pytest.mark.gen_test(timeout=30)
async def test_a_file_offered_is_accepted_and_downloaded_another_refused(world):
    client, events, stream = await online(world)
    alice = client.contacts.friend(qq=20001)
    first = await offer(world, "../notes.txt", b"hello, file")
    second = await offer(world, "other.txt", b"not wanted")
    offer_event = await events.wait("file", lambda e: e.event.session_id == first["session_id"])
    other = await events.wait("file", lambda e: e.event.session_id == second["session_id"])
    assert (offer_event.change, offer_event.name, offer_event.sender.qq,
            offer_event.sender.name) == ("offer", "../notes.txt", 20001, "Alice")
    assert any(n.kind == "notice" and n.event is offer_event.event for n in events.events)
    path = await client.files.accept(offer_event.event)
    assert path.name == "notes.txt" and path.parent.name == "files"   # kept inside
    assert path.read_bytes() == b"hello, file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = await client.files.accept(offer_event.event)
    assert again.name == "notes-2.txt"                                 # nothing overwritten
    await client.files.refuse(other.event)
    (refused,) = stream.asked("/channel/refuse_file2")
    assert (refused["lcid"], refused["to"]) == (str(second["session_id"]), str(alice.uin))
    with pytest.raises(qq.RetcodeError) as caught:                     # refused: gone
        await client.files.accept(other.event)
    assert caught.value.retcode == 102
    files = await world.control.call("files?account=10001")
    assert [(f["name"], f["state"], f["downloads"]) for f in files] == [
        ("../notes.txt", "accepted", 2), ("other.txt", "refused", 0)]


@pytest.mark.gen_test(timeout=30)
async def test_a_file_taken_back_cannot_be_accepted(world):
    client, events, stream = await online(world)
    offered = await offer(world, "a.txt", b"x")
    event = await events.wait("file", lambda e: e.change == "offer")
    await world.control.call("file", {"to": 10001, "action": "cancel",
                                      "session_id": offered["session_id"]})
    await events.wait("file", lambda e: e.change == "cancel")
    with pytest.raises(qq.RetcodeError):
        await client.files.accept(event.event)
    with pytest.raises(qq.RetcodeError):
        await client.files.refuse(event.event)


@pytest.mark.gen_test(timeout=30)
async def test_an_offline_file_is_downloaded_on_request_within_the_cap(world):
    client, events, stream = await online(world, file_max_bytes=64)
    left = await offer(world, "test2.py", b"print('hi')\n", action="offline")
    large = await offer(world, "large.bin", b"x" * 65, action="offline")
    assert (left["ip"], left["port"], left["size"]) == ("127.0.0.1", world.sim.port, 12)
    offline = await events.wait("file", lambda e: e.event.msg_id == left["msg_id"])
    assert (offline.change, offline.size) == ("offline", 12)
    path = await client.files.download(offline.event)
    assert path.read_bytes() == b"print('hi')\n"
    announced = await events.wait("file", lambda e: e.event.msg_id == large["msg_id"])
    with pytest.raises(Unavailable, match="65 bytes, over the 64-byte cap"):
        await client.files.download(announced.event)     # refused before any byte
    # The same file announced as 3 bytes: the body itself is over the cap.
    lying = (await world.control.call("event", {
        "to": 10001, "poll_type": "push_offfile", "from": 20001, "text": "large.bin",
        "value": {"rkey": large["rkey"], "ip": "127.0.0.1", "port": world.sim.port,
                  "size": 3}}))["item"]["value"]
    lied = await events.wait("file", lambda e: e.event.msg_id == lying["msg_id"])
    with pytest.raises(Unavailable, match="over the 64-byte cap"):
        await client.files.download(lied.event)
    files = await world.control.call("files?account=10001")
    assert [(f["name"], f["downloads"]) for f in files] == [("test2.py", 1), ("large.bin", 1)]
    with pytest.raises(Unavailable, match="only a push_offfile"):
        await client.files.download(qq.FileEvent("notify_offfile", 1, "a", None, None, {}))


# --- friend requests ----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friend_request_approved_makes_a_friend_one_refused_does_not(world):
    client, events, stream = await online(world)
    await world.control.call("friend", {"to": 10001, "from": 379450326, "text": "hi there"})
    request = await events.wait("friend_request")
    assert (request.qq, request.uin, request.message, request.accepting) == (
        379450326, world.sim.world.uin(10001, 379450326), "hi there", False)
    assert await world.control.call("answers?account=10001") == []   # nobody answered yet
    await client.manage.answer_friend(request.qq, True, markname="new friend", category=1)
    added = await events.wait("friend_change", lambda e: e.change == "added")
    assert (added.uin, added.category) == (request.uin, 1)
    await world.control.call("friend", {"to": 10001, "from": 555001, "text": "me too"})
    other = await events.wait("friend_request", lambda e: e.qq == 555001)
    await client.manage.answer_friend(other.qq, False, reason="who are you")
    answers = await world.control.call("answers?account=10001")
    assert [(a["call"], a["qq"], a["accept"], a["remark"], a["reason"]) for a in answers] == [
        ("allow_and_add2", 379450326, True, "new friend", ""),
        ("deny_added_request2", 555001, False, "", "who are you")]
    account = world.sim.world.accounts[10001]
    assert account.friend(379450326).remark == "new friend"
    assert account.friend(555001) is None
    await events.wait("contacts", lambda e: client.contacts.friend(uin=request.uin) is not None)
    with pytest.raises(qq.RetcodeError):                  # answered already
        await client.manage.answer_friend(request.qq, True)


@pytest.mark.gen_test(timeout=30)
async def test_accept_friends_answers_the_listed_requests_by_itself(world):
    client, events, stream = await online(world, accept_friends={379450326})
    await world.control.call("friend", {"to": 10001, "from": 379450326})
    await world.control.call("friend", {"to": 10001, "from": 555})
    listed = await events.wait("friend_request", lambda e: e.qq == 379450326)
    other = await events.wait("friend_request", lambda e: e.qq == 555)
    assert listed.accepting and not other.accepting
    await events.wait("friend_change", lambda e: e.uin == listed.uin)    # the answer took
    (answer,) = await world.control.call("answers?account=10001")
    assert (answer["call"], answer["qq"], answer["remark"]) == ("allow_and_add2", 379450326, "")
    client.manage.accept_friends = True                     # a reload may change it
    await world.control.call("friend", {"to": 10001, "from": 556})
    assert (await events.wait("friend_request", lambda e: e.qq == 556)).accepting


@pytest.mark.gen_test(timeout=30)
async def test_friend_list_changes_are_events_and_reload_the_contacts(world):
    client, events, stream = await online(world)
    alice = client.contacts.friend(qq=20001)
    loads = len(events.of("contacts"))
    await world.control.call("friend", {"to": 10001, "from": 569398403, "action": "added"})
    await world.control.call("friend", {"to": 10001, "from": 20003, "action": "accepted"})
    await world.control.call("event", {"to": 10001, "poll_type": "buddylist_change",
                                       "from": 20001, "type": "removed"})
    added = await events.wait("friend_change", lambda e: e.change == "added")
    accepted = await events.wait("friend_change", lambda e: e.change == "accepted")
    removed = await events.wait("friend_change", lambda e: e.change == "removed")
    assert (added.uin, added.qq) == (world.sim.world.uin(10001, 569398403), 569398403)
    assert (accepted.uin, accepted.qq) == (world.sim.world.uin(10001, 20003), 20003)
    assert (removed.uin, removed.name) == (alice.uin, "Alice")
    await events.wait("contacts", lambda e: len(events.of("contacts")) > loads)
    assert client.contacts.friend(uin=accepted.uin) is not None     # in the list reloaded


# --- group events and management ----------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_group_joins_and_leaves_are_member_events_with_the_right_ids(world):
    client, events, stream = await online(world)
    group = client.contacts.group(number=30001)
    sim = world.sim.world
    loads = len(events.of("contacts"))
    for body in ({"action": "join", "member": 20003, "admin": 20002},
                 {"action": "leave", "member": 20003},
                 {"action": "remove", "member": 10001, "admin": 20002}):
        await world.control.call("group", dict(body, group=30001))
    joined = await events.wait("group_member", lambda e: e.change == "join")
    left = await events.wait("group_member", lambda e: e.sub_type == "leave")
    kicked = await events.wait("group_member", lambda e: e.sub_type == "kick_me")
    assert (joined.sub_type, joined.member.uin, joined.operator.uin, joined.group.number) == (
        "invite", sim.uin(10001, 20003), member_uin(group, 20002), 30001)
    assert (left.member.uin, left.operator.uin) == ((sim.uin(10001, 20003),) * 2)
    assert kicked.operator.uin == member_uin(group, 20002)
    assert sim.groups[30001].member(10001) is None
    await events.wait("contacts", lambda e: len(events.of("contacts")) > loads)
    await events.wait("contacts", lambda e: client.contacts.group(number=30001) is None)


@pytest.mark.gen_test(timeout=30)
async def test_a_join_request_is_answered_with_op_group_join_req(admin_world):
    world = admin_world
    client, events, stream = await online(world)
    group = client.contacts.group(number=30001)
    sim = world.sim.world
    await world.control.call("group", {"group": 30001, "action": "request", "member": 20003,
                                       "text": "let me in"})
    request = await events.wait("group_request")
    assert (request.requester.uin, request.message, request.group.number) == (
        sim.uin(10001, 20003), "let me in", 30001)
    await client.manage.answer_group_request(request.event, False, reason="full")
    (answer,) = stream.asked("/channel/op_group_join_req")
    assert (answer["group_uin"], answer["req_uin"], answer["op_type"], answer["msg"]) == (
        str(group.gid), str(sim.uin(10001, 20003)), "3", "full")
    assert sim.groups[30001].member(20003) is None
    await world.control.call("group", {"group": 30001, "action": "request", "member": 20003})
    again = await events.wait("group_request")
    await client.manage.answer_group_request(again.event, True)
    joined = await events.wait("group_member", lambda e: e.change == "join")
    assert joined.member.uin == sim.uin(10001, 20003) and joined.operator.qq == 10001
    assert sim.groups[30001].member(20003) is not None
    answers = await world.control.call("answers?account=10001")
    assert [(a["call"], a["qq"], a["accept"], a["reason"]) for a in answers] == [
        ("op_group_join_req", 20003, False, "full"), ("op_group_join_req", 20003, True, "")]
    with pytest.raises(qq.RetcodeError):                 # no request left to answer
        await client.manage.answer_group_request(again.event, True)
    with pytest.raises(Unavailable, match="only a group_request_join"):
        await client.manage.answer_group_request(joined.event, True)


@pytest.mark.gen_test(timeout=30)
async def test_our_own_request_to_join_is_denied_then_agreed(admin_world):
    world = admin_world
    client, events, stream = await online(world)
    for action, text in (("deny", "no room"), ("agree", "")):
        await world.control.call("group", {"group": 30002, "action": action, "member": 10001,
                                           "admin": 20002, "text": text})
    denied = await events.wait("group_request_answer", lambda e: not e.accepted)
    agreed = await events.wait("group_request_answer", lambda e: e.accepted)
    admin_uin = world.sim.world.uin(10001, 20002)
    assert (denied.admin.uin, denied.message) == (admin_uin, "no room")
    assert agreed.admin.uin == admin_uin
    await events.wait("contacts", lambda e: client.contacts.group(number=30002) is not None)


@pytest.mark.gen_test(timeout=30)
async def test_leaving_a_group_and_setting_our_card(world):
    client, events, stream = await online(world)
    group = client.contacts.group(number=30001)
    await client.manage.set_group_card(30001, "robot")
    assert world.sim.world.groups[30001].member(10001).card == "robot"
    await client.manage.leave_group(group.name)
    (card,) = [r for r in stream.requests
               if r.selector == "/api/update_group_business_card2"]
    assert json.loads(dict(urllib.parse.parse_qsl(card.data.decode()))["r"]) == {
        "gcode": str(group.code), "name": "robot", "vfwebqq": client._link.vfwebqq}
    assert world.sim.world.groups[30001].member(10001) is None
    answers = await world.control.call("answers?account=10001")
    assert [(a["call"], a["group"]) for a in answers] == [
        ("update_group_business_card2", 30001), ("quit_group2", 30001)]
    with pytest.raises(qq.RetcodeError):                     # not a member any more
        await client.manage.set_group_card(group, "again")
    with pytest.raises(Unavailable, match="no group 99999"):
        await client.manage.leave_group(99999)


@pytest.mark.gen_test(timeout=30)
async def test_our_card_shows_in_the_group_members_reloaded(world):
    client, events, stream = await online(world)
    await client.manage.set_group_card(30001, "robot")
    loads = len(events.of("contacts"))
    await world.control.call("group", {"group": 30001, "action": "join", "member": 20003})
    await events.wait("contacts", lambda e: len(events.of("contacts")) > loads)
    group = client.contacts.group(number=30001)
    assert group.members[10001].card == "robot"          # our own uin is our QQ number


@pytest.mark.gen_test(timeout=30)
async def test_a_malformed_item_is_logged_and_costs_nothing_else(world, caplog):
    client, events, stream = await online(world)
    caplog.set_level(logging.WARNING, "webqq.client")
    await world.control.call("event", {"to": 10001, "poll_type": "push_offfile",
                                       "from": 20001, "value": {"rkey": None}})
    await say(world, **{"from": 20001}, content=[["cface", {"name": "a.jpg",
                                                           "server": "nowhere"}]])
    await say(world, **{"from": 20001}, text="after")
    after = await events.wait("message", lambda e: e.text == "after")
    assert after.text == "after"
    problems = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(problems) == 2
    assert "push_offfile" in problems[0] and "rkey" in problems[0]
    assert "message" in problems[1] and "server is not ip:port" in problems[1]
    assert client.state.value == "online"
