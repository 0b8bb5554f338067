"""WebQQClient's pictures, files, friend and group events and management calls, end to
end: the simulator logs the client in and polls; ``MediaFront`` (tests/media_helpers.py)
serves the endpoints the simulator lacks, as the 2013 sources show them, and delivers
the poll items a test pushes."""
import asyncio
import json
import logging
import os
import stat
import urllib.parse

import pytest
from media_helpers import GFACE_KEY, GFACE_SIG, front, online  # noqa: F401 (a fixture)

from webqq import qq
from webqq.client.calls import NotOnline, Unavailable
from webqq.client.pictures import ReceivedPicture
from webqq.client.send_queue import SendStatus
from webqq.http_stream import HTTPStream

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(range(100))


def header(msg_id, from_uin, poll_type="message", **value):
    return {"poll_type": poll_type, "value": dict(
        {"msg_id": msg_id, "from_uin": from_uin, "to_uin": 10001, "msg_id2": msg_id + 9000,
         "msg_type": 9, "reply_ip": 176621916, "time": 1366948800}, **value)}


FONT = ["font", {"size": 10, "color": "000000", "style": [0, 0, 0], "name": "Arial"}]


def buddy_message(msg_id, from_uin, *pieces):
    return header(msg_id, from_uin, content=[FONT] + list(pieces))


def group_message(msg_id, group, send_uin, *pieces, discussion=False):
    if discussion:
        return header(msg_id, 10000, "discu_message", did=group.did, send_uin=send_uin,
                      seq=1, msg_type=42, content=[FONT] + list(pieces))
    return header(msg_id, group.gid, "group_message", group_code=group.code,
                  send_uin=send_uin, seq=1, info_seq=group.number, msg_type=43,
                  content=[FONT] + list(pieces))


def member_uin(group, number):
    return next(m.uin for m in group.members.values() if m.qq == number)


# --- receiving pictures ---------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friends_offpic_is_a_picture_piece_fetched_once_then_cached(world, front):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    front.offpics["/7acccf74-0fcd-4bbd-b885-03a5cc2f7507"] = JPEG
    front.push(buddy_message(5598, alice.uin, "look\r", ["face", 1], " here",
                             ["offpic", {"success": 1, "file_path":
                                         "/7acccf74-0fcd-4bbd-b885-03a5cc2f7507"}], " "))
    message = await events.wait("message")
    assert message.text == "look\n[face:1] here[image]"
    text, face, rest, picture = message.pieces
    assert (text, face, rest) == ("look\n", qq.Face(1), " here")
    assert picture == ReceivedPicture("offpic", "/7acccf74-0fcd-4bbd-b885-03a5cc2f7507",
                                      alice.uin)
    assert message.pictures == (picture,)
    first, second = await client.pictures.fetch(picture), await client.pictures.fetch(picture)
    assert first == second == JPEG
    (asked,) = front.seen("/channel/get_offpic2")          # the second came from the cache
    assert asked.query["f_uin"] == str(alice.uin)
    cached = os.path.join(client.state_dir, "pictures", picture.key)
    with open(cached, "rb") as kept:
        assert kept.read() == JPEG
    assert stat.S_IMODE(os.stat(cached).st_mode) == 0o600


@pytest.mark.gen_test(timeout=30)
async def test_group_and_discussion_pictures_come_from_the_server_the_piece_names(world,
                                                                                  front):
    client, events = await online(world, front)
    group = client.contacts.group(number=30001)
    discussion = next(iter(client.contacts.discussions.values()))
    sender = member_uin(group, 20001)
    front.group_pics["71A8E53B7F678D035656FECDA1BD7F31.jpg"] = PNG
    front.group_pics["{94E8E5BA-9304}.gif"] = GIF
    front.push(group_message(13893, group, sender, ["cface", {
        "name": "71A8E53B7F678D035656FECDA1BD7F31.jpg", "file_id": 2857831080,
        "key": "PN576E5TyB53muY9", "server": front.server}], "!"),
               group_message(18803, discussion, sender, ["cface", {
                   "name": "{94E8E5BA-9304}.gif", "file_id": 7, "key": "k",
                   "server": front.server}], discussion=True))
    in_group = await events.wait("message", lambda e: e.chat == "group")
    in_discussion = await events.wait("message", lambda e: e.chat == "discussion")
    (picture,) = in_group.pictures
    assert (picture.source, picture.code, picture.file_id, picture.server) == (
        "group", group.code, 2857831080, front.server)
    assert await client.pictures.fetch(picture) == PNG
    assert await client.pictures.fetch(in_discussion.pictures[0]) == GIF
    asked, asked_discussion = front.seen("/cgi-bin/get_group_pic")
    assert (asked.query["type"], asked.query["gid"], asked.query["uin"], asked.query["rip"],
            asked.query["rport"], asked.query["fid"]) == (
        "0", str(group.code), str(sender), "127.0.0.1", str(front.port), "2857831080")
    assert asked.query["vfwebqq"] == client._link.vfwebqq
    assert (asked_discussion.query["type"], asked_discussion.query["gid"]) == (
        "1", str(discussion.did))


@pytest.mark.gen_test(timeout=30)
async def test_a_friends_custom_face_is_fetched_by_its_message_id(world, front):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    front.cfaces["5E10B9BCA2BDF8489CB3239DFFA745B5.jpg"] = JPEG
    front.push(buddy_message(18631, alice.uin,
                             ["cface", "5E10B9BCA2BDF8489CB3239DFFA745B5.jpg", ""]))
    (picture,) = (await events.wait("message")).pictures
    assert await client.pictures.fetch(picture) == JPEG
    (asked,) = front.seen("/channel/get_cface2")
    assert (asked.query["lcid"], asked.query["to"], asked.query["count"]) == (
        "18631", str(alice.uin), "5")


@pytest.mark.gen_test(timeout=30)
async def test_fetching_a_picture_fails_clearly_and_twice_at_once_asks_once(world, front):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    gone = ReceivedPicture("offpic", "/gone", alice.uin)
    with pytest.raises(qq.RetcodeError) as caught:
        await client.pictures.fetch(gone)
    assert caught.value.retcode is qq.QQRetcode.LOGIN_EXPIRED
    front.cfaces["html.jpg"] = b"<html>not found</html>"
    with pytest.raises(qq.MalformedReply, match="not a picture"):
        await client.pictures.fetch(ReceivedPicture("cface", "html.jpg", alice.uin, 1))
    with pytest.raises(Unavailable, match="no 2013 endpoint"):
        await client.pictures.fetch(ReceivedPicture("unknown", "5E10B9BC-A2BD", alice.uin))
    front.cfaces["twice.jpg"] = JPEG
    twice = ReceivedPicture("cface", "twice.jpg", alice.uin, 2)
    assert await asyncio.gather(client.pictures.fetch(twice),
                                client.pictures.fetch(twice)) == [JPEG, JPEG]
    assert [s.query["guid"] for s in front.seen("/channel/get_cface2")].count("twice.jpg") == 1


@pytest.mark.gen_test(timeout=30)
async def test_actions_need_the_session(world, front):
    client = world.client(stream=HTTPStream(hosts=front.hosts, ca_file=world.sim.ca_file))
    with pytest.raises(NotOnline):
        await client.pictures.fetch(ReceivedPicture("offpic", "/p", 1))
    with pytest.raises(NotOnline):
        await client.manage.answer_friend(20005, True)
    assert front.requests == []


# --- sending pictures -----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_friends_picture_is_uploaded_then_sent_as_offpic(world, front):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    picture = qq.UploadPicture.from_bytes(JPEG, "cat.jpg")
    message = await client.send_buddy(20001, ["a cat:", picture, qq.Face(14)]).done
    assert message.status is SendStatus.SENT, message.error
    assert message.text == "a cat:[image][face:14]"
    (upload,) = front.seen("/ftn_access/upload_offline_pic")
    assert list(upload.form) == ["callback", "locallangid", "clientversion", "uin", "skey",
                                 "appid", "peeruin", "fileid", "vfwebqq", "senderviplevel",
                                 "reciverviplevel"]
    assert (upload.form["uin"], upload.form["peeruin"], upload.form["appid"]) == (
        "10001", str(alice.uin), "1002101")
    assert upload.files["file"] == ("cat.jpg", "image/jpeg", JPEG)
    (path,) = front.offpics
    sent = (await world.control.sent())[-1]     # what the simulator received
    assert sent["content"] == ["a cat:", ["offpic", path, "cat.jpg", len(JPEG)],
                               ["face", 14]]


@pytest.mark.gen_test(timeout=30)
async def test_group_pictures_go_to_the_custom_face_server_with_one_signature(world, front,
                                                                             caplog):
    client, events = await online(world, front)
    group = client.contacts.group(number=30001)
    picture = qq.UploadPicture.from_bytes(PNG)
    first = client.send_group(30001, [picture, "first"])
    second = client.send_group(30001, ["again", picture])
    assert (await first.done).status is SendStatus.SENT, first.error
    assert (await second.done).status is SendStatus.SENT, second.error
    assert len(front.seen("/channel/get_gface_sig2")) == 1       # once per login
    uploads = front.seen("/cgi-bin/cface_upload")
    assert [u.form["from"] for u in uploads] == ["control", "control"]
    assert uploads[0].files["custom_face"][2] == PNG
    (name,) = front.cfaces                                       # the second: ret 4, same name
    assert name.endswith(".pNg")
    sent = [s for s in await world.control.sent() if s["kind"] == "group"][-2:]
    assert [s["content"] for s in sent] == [[["cface", "group", name], "first"],
                                            ["again", ["cface", "group", name]]]


@pytest.mark.gen_test(timeout=30)
async def test_sends_with_group_pictures_carry_code_key_and_sig(world, front):
    client, events = await online(world, front)
    group = client.contacts.group(number=30001)
    requests = []
    original = client.stream.add_request

    def spy(request, *args, **kwargs):
        requests.append(request)
        return original(request, *args, **kwargs)
    client.stream.add_request = spy
    message = await client.send_group(30001, [qq.UploadPicture.from_bytes(GIF)]).done
    assert message.status is SendStatus.SENT, message.error
    (send,) = [r for r in requests if r.selector == "/channel/send_qun_msg2"]
    r = json.loads(dict(urllib.parse.parse_qsl(send.data.decode()))["r"])
    assert (r["group_uin"], r["group_code"], r["key"], r["sig"]) == (
        group.gid, group.code, GFACE_KEY, GFACE_SIG)
    assert json.loads(r["content"])[0][:2] == ["cface", "group"]


@pytest.mark.gen_test(timeout=30)
async def test_bad_pictures_are_refused_before_anything_is_queued(world, front):
    client, events = await online(world, front)
    before = len(front.requests)
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
    assert len(client._sending.queue) == 0 and len(front.requests) == before
    ok = await client.send_buddy(20001, "still fine").done
    assert ok.status is SendStatus.SENT


@pytest.mark.gen_test(timeout=30)
async def test_a_picture_the_server_refuses_fails_its_message_only(world, front):
    client, events = await online(world, front)
    front.replies["/cgi-bin/cface_upload"] = (200, (
        "<head><script>parent.EQQ.Model.ChatMsg.callbackSendPicGroup({'ret':2,"
        "'msg':'over size'});</script></head>").encode())
    refused = client.send_group(30001, ["pic", qq.UploadPicture.from_bytes(JPEG)])
    after = client.send_group(30001, "next")
    refused, after = await refused.done, await after.done
    assert refused.status is SendStatus.FAILED
    assert "too large for the server" in refused.error
    assert after.status is SendStatus.SENT
    assert [s["text"] for s in await world.control.sent()][-1] == "next"


# --- files ------------------------------------------------------------------------------

def file_offer(msg_id, from_uin, session_id, name):
    return header(msg_id, from_uin, "file_message", mode="recv", type=101, name=name,
                  session_id=session_id, inet_ip=2051695055)


@pytest.mark.gen_test(timeout=30)
async def test_a_file_offer_becomes_an_event_and_is_accepted_or_refused(world, front):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    front.file_offers[19823] = b"hello, file"
    front.push(file_offer(6299, alice.uin, 19823, "../notes.txt"),
               file_offer(6300, alice.uin, 19824, "other.txt"))
    offer = await events.wait("file", lambda e: e.event.session_id == 19823)
    other = await events.wait("file", lambda e: e.event.session_id == 19824)
    assert (offer.change, offer.name, offer.sender.qq, offer.sender.name) == (
        "offer", "../notes.txt", 20001, "Alice")
    assert any(n.kind == "notice" and n.event is offer.event for n in events.events)
    path = await client.files.accept(offer.event)
    assert path.name == "notes.txt" and path.parent.name == "files"   # kept inside
    assert path.read_bytes() == b"hello, file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = await client.files.accept(offer.event)
    assert again.name == "notes-2.txt"                                 # nothing overwritten
    with pytest.raises(qq.RetcodeError):                               # no such transfer
        await client.files.accept(other.event)
    await client.files.refuse(other.event)
    (refused,) = front.seen("/channel/refuse_file2")
    assert (refused.query["lcid"], refused.query["to"]) == ("19824", str(alice.uin))


@pytest.mark.gen_test(timeout=30)
async def test_an_offline_file_is_downloaded_on_request_within_the_cap(world, front):
    client, events = await online(world, front, file_max_bytes=64)
    alice = client.contacts.friend(qq=20001)
    front.offline_files["2c09bbdb"] = b"print('hi')\n"
    front.offline_files["toolarge"] = b"x" * 65
    item = {"poll_type": "push_offfile", "value": {
        "msg_id": 10438, "rkey": "2c09bbdb", "ip": "127.0.0.1", "port": front.port,
        "from_uin": alice.uin, "size": 12, "name": "test2.py", "expire_time": 1365470120,
        "time": 1364865321}}
    lying = dict(item, value=dict(item["value"], msg_id=10439, rkey="toolarge", size=3))
    announced = dict(item, value=dict(item["value"], msg_id=10440, size=10 ** 9))
    front.push(item, lying, announced)
    offline = await events.wait("file", lambda e: e.event.msg_id == 10438)
    assert (offline.change, offline.size) == ("offline", 12)
    path = await client.files.download(offline.event)
    assert path.read_bytes() == b"print('hi')\n"
    lied = await events.wait("file", lambda e: e.event.msg_id == 10439)
    with pytest.raises(Unavailable, match="over the 64-byte cap"):
        await client.files.download(lied.event)
    big = await events.wait("file", lambda e: e.event.msg_id == 10440)
    fetched = len([r for r in front.requests if r.host == "127.0.0.1"])
    with pytest.raises(Unavailable, match="1000000000 bytes, over the 64-byte cap"):
        await client.files.download(big.event)
    assert len([r for r in front.requests if r.host == "127.0.0.1"]) == fetched
    with pytest.raises(Unavailable, match="only a push_offfile"):
        await client.files.download(qq.FileEvent("notify_offfile", 1, "a", None, None, {}))


# --- friend requests ----------------------------------------------------------------------

def verify_required(seq, from_uin, account, msg="please add me"):
    return {"poll_type": "system_message", "value": {
        "seq": seq, "type": "verify_required", "uiuin": "", "from_uin": from_uin,
        "account": account, "msg": msg, "allow": 1, "stat": 10, "client_type": 1}}


@pytest.mark.gen_test(timeout=30)
async def test_a_friend_request_is_an_event_answered_by_a_call(world, front):
    client, events = await online(world, front)
    front.push(verify_required(34653, 3863325290, 379450326))
    request = await events.wait("friend_request")
    assert (request.qq, request.uin, request.message, request.accepting) == (
        379450326, 3863325290, "please add me", False)
    assert front.seen("/api/allow_and_add2") == []              # nobody answered yet
    await client.manage.answer_friend(request.qq, True, markname="new friend")
    (accepted,) = front.seen("/api/allow_and_add2")
    assert accepted.r() == {"account": 379450326, "gid": 0, "mname": "new friend",
                            "vfwebqq": client._link.vfwebqq}
    await client.manage.answer_friend(111, False, reason="who are you")
    (denied,) = front.seen("/api/deny_added_request2")
    assert denied.r()["msg"] == "who are you" and denied.r()["account"] == 111


@pytest.mark.gen_test(timeout=30)
async def test_accept_friends_answers_the_listed_requests_by_itself(world, front):
    client, events = await online(world, front, accept_friends={379450326})
    front.push(verify_required(1, 3863325290, 379450326),
               verify_required(2, 3863325291, 555))
    listed = await events.wait("friend_request", lambda e: e.qq == 379450326)
    other = await events.wait("friend_request", lambda e: e.qq == 555)
    assert listed.accepting and not other.accepting
    answer = await front.arrival("/api/allow_and_add2")
    assert answer.r()["account"] == 379450326 and answer.r()["mname"] == ""
    client.manage.accept_friends = True                     # a reload may change it
    front.push(verify_required(3, 3863325292, 556))
    assert (await events.wait("friend_request", lambda e: e.qq == 556)).accepting


@pytest.mark.gen_test(timeout=30)
async def test_friend_list_changes_are_events_and_reload_the_contacts(world, front):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    loads = len(events.of("contacts"))
    front.push({"poll_type": "system_message", "value": {
        "seq": 49219, "type": "added_buddy_sig", "uiuin": "", "from_uin": 2388435354,
        "account": 569398403, "sig": "x", "stat": 20}},
        {"poll_type": "system_message", "value": {"seq": 37525, "type": "verify_pass",
                                                  "from_uin": alice.uin, "stat": 20}},
        {"poll_type": "buddylist_change", "value": {
            "added_friends": [{"groupid": 1, "uin": 1754314370}],
            "removed_friends": [{"uin": alice.uin}]}})
    added = await events.wait("friend_change", lambda e: e.change == "added")
    accepted = await events.wait("friend_change", lambda e: e.change == "accepted")
    listed = await events.wait("friend_change", lambda e: e.change == "added")
    removed = await events.wait("friend_change", lambda e: e.change == "removed")
    assert (added.uin, added.qq) == (2388435354, 569398403)
    assert (accepted.uin, accepted.qq, accepted.name) == (alice.uin, 20001, "Alice")
    assert (listed.uin, listed.category) == (1754314370, 1)
    assert (removed.uin, removed.name) == (alice.uin, "Alice")
    await events.wait("contacts", lambda e: len(events.of("contacts")) > loads)


# --- group events and management ----------------------------------------------------------

def sys_g_msg(msg_id, group, kind, **value):
    return {"poll_type": "sys_g_msg", "value": dict(
        {"msg_id": msg_id, "from_uin": group.gid, "to_uin": 10001, "msg_id2": msg_id + 1,
         "msg_type": 33, "reply_ip": 176498394, "type": kind, "gcode": group.code,
         "t_gcode": group.number}, **value)}


@pytest.mark.gen_test(timeout=30)
async def test_group_joins_and_leaves_are_member_events_with_their_operator(world, front):
    client, events = await online(world, front)
    group = client.contacts.group(number=30001)
    alice, admin = member_uin(group, 20001), member_uin(group, 20002)
    loads = len(events.of("contacts"))
    front.push(sys_g_msg(1, group, "group_join", op_type=3, new_member=2440652742,
                         t_new_member="", admin_uin=admin, admin_nick="创建者"),
               sys_g_msg(2, group, "group_leave", op_type=2, old_member=alice,
                         t_old_member=""),
               sys_g_msg(3, group, "group_leave", op_type=3, old_member=10001,
                         t_old_member="", admin_uin=admin))
    joined = await events.wait("group_member", lambda e: e.change == "join")
    left = await events.wait("group_member", lambda e: e.event.msg_id == 2)
    kicked = await events.wait("group_member", lambda e: e.event.msg_id == 3)
    assert (joined.sub_type, joined.member.uin, joined.operator.uin, joined.group.number) == (
        "invite", 2440652742, admin, 30001)
    assert (left.sub_type, left.member.qq, left.operator.qq) == ("leave", 20001, 20001)
    assert (kicked.sub_type, kicked.operator.uin) == ("kick_me", admin)
    await events.wait("contacts", lambda e: len(events.of("contacts")) > loads)


@pytest.mark.gen_test(timeout=30)
async def test_a_join_request_is_answered_with_op_group_join_req(world, front):
    client, events = await online(world, front)
    group = client.contacts.group(number=30001)
    front.push(sys_g_msg(10899, group, "group_request_join", request_uin=2297680537,
                         t_request_uin="", msg="let me in"),
               sys_g_msg(29407, group, "group_request_join_agree", admin_uin=4005533729,
                         msg=""),
               sys_g_msg(1253, group, "group_request_join_deny", admin_uin=4005533729,
                         msg="123"))
    request = await events.wait("group_request")
    assert (request.requester.uin, request.message, request.group.number) == (
        2297680537, "let me in", 30001)
    await client.manage.answer_group_request(request.event, False, reason="full")
    (answer,) = front.seen("/channel/op_group_join_req")
    assert (answer.query["group_uin"], answer.query["req_uin"], answer.query["op_type"],
            answer.query["msg"]) == (str(group.gid), "2297680537", "3", "full")
    agreed = await events.wait("group_request_answer", lambda e: e.accepted)
    denied = await events.wait("group_request_answer", lambda e: not e.accepted)
    assert (agreed.admin.uin, denied.message) == (4005533729, "123")
    with pytest.raises(Unavailable, match="only a group_request_join"):
        await client.manage.answer_group_request(agreed.event, True)


@pytest.mark.gen_test(timeout=30)
async def test_leaving_a_group_and_setting_our_card_name_it_by_its_code(world, front):
    client, events = await online(world, front)
    group = client.contacts.group(number=30001)
    await client.manage.set_group_card(30001, "robot")
    await client.manage.leave_group(group.name)
    (card,) = front.seen("/api/update_group_business_card2")
    (left,) = front.seen("/api/quit_group2")
    assert card.r() == {"gcode": str(group.code), "name": "robot",
                        "vfwebqq": client._link.vfwebqq}
    assert left.r() == {"gcode": str(group.code), "vfwebqq": client._link.vfwebqq}
    with pytest.raises(Unavailable, match="no group 99999"):
        await client.manage.leave_group(99999)


@pytest.mark.gen_test(timeout=30)
async def test_a_malformed_item_is_logged_and_costs_nothing_else(world, front, caplog):
    client, events = await online(world, front)
    alice = client.contacts.friend(qq=20001)
    caplog.set_level(logging.WARNING, "webqq.client")
    front.push({"poll_type": "push_offfile", "value": {"msg_id": 1, "ip": "1.2.3.4",
                                                     "port": 80, "from_uin": 2, "size": 3,
                                                     "name": "n"}},
               buddy_message(77, alice.uin, ["cface", {"name": "a.jpg", "server": "nowhere"}]),
               buddy_message(78, alice.uin, "after"))
    after = await events.wait("message")
    assert after.text == "after"
    problems = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(problems) == 2
    assert "push_offfile" in problems[0] and "missing key 'rkey'" in problems[0]
    assert "message" in problems[1] and "server is not ip:port" in problems[1]
    assert client.state.value == "online"
