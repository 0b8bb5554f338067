"""The client's media parts without a server: the picture cache's caps, a message's
pieces, the reading of friend, group and file notices, file names kept inside their
directory."""
import json
import os
import time
import types

import pytest
from tornado.ioloop import IOLoop

from webqq import qq
from webqq.client.contacts import Contacts, Friend, Group, Member
from webqq.client.files import safe_file_name
from webqq.client.numbers import NumberBook
from webqq.client.pictures import PictureCache, ReceivedPicture, message_pieces
from webqq.client.receiving import Receiver


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def key(n):
    return "%040x" % n


# --- PictureCache ---------------------------------------------------------------------------

def test_cache_keeps_bytes_and_evicts_the_oldest_past_its_size(tmp_path):
    clock = Clock()
    cache = PictureCache(tmp_path / "pictures", max_bytes=250, max_age=3600, clock=clock)
    for n in range(3):
        cache.put(key(n), bytes([n]) * 100)
        clock.now += 1
    assert cache.get(key(0)) is None                   # 300 bytes: the oldest went
    assert cache.get(key(1)) == b"\x01" * 100 and cache.get(key(2)) == b"\x02" * 100
    assert sorted(os.listdir(tmp_path / "pictures")) == [key(1), key(2)]
    assert cache.size == 200
    cache.put(key(9), b"x" * 251)                       # larger than the cap: not kept
    assert cache.get(key(9)) is None and cache.size == 200


def test_cache_forgets_what_is_too_old_and_reads_its_directory_again(tmp_path):
    clock = Clock()
    directory = tmp_path / "pictures"
    cache = PictureCache(directory, max_bytes=10_000, max_age=60, clock=clock)
    cache.put(key(1), b"old")
    clock.now += 61
    assert cache.get(key(1)) is None and not (directory / key(1)).exists()
    cache.put(key(2), b"new")
    (directory / "not-a-key.txt").write_bytes(b"ignored")
    reopened = PictureCache(directory, max_bytes=10_000, max_age=60, clock=clock)
    assert reopened.get(key(2)) == b"new" and reopened.size == 3
    with pytest.raises(ValueError, match="40 hex digits"):
        reopened.put("../../etc/passwd", b"x")


def test_cache_survives_a_directory_it_cannot_write(tmp_path, caplog):
    blocked = tmp_path / "file-in-the-way"
    blocked.write_bytes(b"")
    cache = PictureCache(blocked / "pictures", clock=Clock())
    cache.put(key(1), b"data")                          # logged, not raised
    assert cache.get(key(1)) is None
    assert "cannot write" in caplog.text


# --- a message's pieces -----------------------------------------------------------------

FONT = ["font", {"size": 10, "color": "000000", "style": [0, 0, 0], "name": "Arial"}]


def event_of(poll_type, content, **value):
    body = {"poll_type": poll_type, "value": dict(
        {"msg_id": 7, "msg_id2": 8, "from_uin": 2440652742, "content": content}, **value)}
    (event,) = qq.parse_poll(('{"retcode":0,"result":[%s]}' % json.dumps(
        body)).encode()).events
    return event


def test_message_pieces_read_texts_faces_and_pictures_in_order():
    event = event_of("message", [FONT, "a\r\nb", ["face", 14], "c",
                                 ["offpic", {"success": 1, "file_path": "/p"}],
                                 ["cface", "N.jpg", ""],
                                 "\n【提示：此用户正在使用Q+ Web：http://web.qq.com/】", " "])
    assert message_pieces(event) == (
        "a\nb", qq.Face(14), "c", ReceivedPicture("offpic", "/p", 2440652742),
        ReceivedPicture("cface", "N.jpg", 2440652742, msg_id=7))


def test_session_pic_ids_are_one_unfetchable_picture_each():
    event = event_of("sess_message", [FONT, ["pic_id", "5E10-A2BD"], ["image", "jpg", 0],
                                      "x"], id=1, service_type=0)
    assert message_pieces(event) == (ReceivedPicture("unknown", "5E10-A2BD", 2440652742),
                                     "x")


def test_group_pictures_name_their_group_and_sender():
    event = event_of("group_message", [FONT, ["cface", {"name": "A.jpg", "file_id": 5,
                                                        "key": "k", "server": "1.2.3.4:80"}],
                                       ["cface", {"name": "B.jpg"}]],
                     from_uin=2559225925, group_code=3483368056, send_uin=99)
    with_server, without = message_pieces(event)
    assert with_server == ReceivedPicture("group", "A.jpg", 99, code=3483368056, file_id=5,
                                          server="1.2.3.4:80")
    assert without.source == "unknown"


# --- notices, read --------------------------------------------------------------------------

def contacts():
    members = {99: Member(99, 20001, "Alice", "Alice@work"), 98: Member(98, 20002, "Bob")}
    return Contacts(friends={2440652742: Friend(2440652742, 20001, "Alice")},
                    groups={2559225925: Group(2559225925, 3483368056, 30001, "测试群",
                                              members=members)})


def receiver():
    """A Receiver whose number book never asks the server (``read`` emits nothing)."""
    loop = IOLoop.current()
    numbers = NumberBook(types.SimpleNamespace(io_loop=loop), lambda: None, time.time,
                         enabled=False)
    return Receiver(loop, contacts, numbers, lambda event: None, self_qq=10001)


def group_event(kind, **fields):
    base = dict(msg_id=1, kind=kind, gid=2559225925, code=3483368056, group_number=30001,
                member_uin=None, admin_uin=None, op_type=None, message="")
    base.update(fields)
    return qq.GroupSystemEvent(**base)


@pytest.mark.parametrize("fields, change, sub_type, operator", [
    (dict(kind="group_join", member_uin=97, op_type=2), "join", "approve", 97),
    (dict(kind="group_join", member_uin=97, op_type=3, admin_uin=98), "join", "invite", 98),
    (dict(kind="group_leave", member_uin=99, op_type=2), "leave", "leave", 99),
    (dict(kind="group_leave", member_uin=99, op_type=3, admin_uin=98), "leave", "kick", 98),
    (dict(kind="group_leave", member_uin=10001, op_type=3, admin_uin=98), "leave", "kick_me",
     98),
])
def test_group_member_changes_have_onebots_sub_types(fields, change, sub_type, operator):
    kind = fields.pop("kind")
    (event,) = receiver().read(group_event(kind, **fields), lambda qq_: False)
    assert (event.kind, event.change, event.sub_type, event.operator.uin) == (
        "group_member", change, sub_type, operator)
    assert event.group.number == 30001


def test_member_names_come_from_the_group_and_the_item():
    (left,) = receiver().read(group_event("group_leave", member_uin=99, op_type=3,
                                          admin_uin=55, admin_nick="管理员"), lambda q: False)
    assert (left.member.name, left.member.qq, left.operator.name) == (
        "Alice@work", 20001, "管理员")


def test_friend_and_file_notices_and_the_rest():
    read = receiver().read
    (request,) = read(qq.FriendRequest(1, 3863325290, 379450326, "hi"), lambda q: q == 379450326)
    assert (request.kind, request.accepting) == ("friend_request", True)
    change = qq.BuddyListChange(added=((5, 1),), removed=(2440652742,))
    added, removed = read(change, lambda q: False)
    assert (added.change, added.uin, added.category) == ("added", 5, 1)
    assert (removed.change, removed.qq, removed.name) == ("removed", 20001, "Alice")
    offer = qq.FileEvent("file_message", 2440652742, "a.txt", "recv", 3, {}, msg_id=4)
    (notice,) = read(offer, lambda q: False)
    assert (notice.kind, notice.change, notice.sender.name, notice.name) == (
        "file", "offer", "Alice", "a.txt")
    transfer = qq.FileEvent("filesrv_transfer", None, None, None, 3, {})
    assert read(transfer, lambda q: False)[0].sender.uin == 0
    assert read(qq.Shake(1, 2, 3), lambda q: False) == []
    assert read(group_event("group_create", member_uin=10001), lambda q: False) == []


@pytest.mark.parametrize("name, safe", [
    ("notes.txt", "notes.txt"), ("../../etc/passwd", "passwd"), ("C:\\x\\y.doc", "y.doc"),
    (".hidden", "hidden"), ("a\x00b<c>.txt", "a_b_c_.txt"), ("", "file"), ("..", "file"),
    ("x" * 200 + ".tar.gz", "x" * 117 + ".gz"),
])
def test_safe_file_names_stay_in_their_directory(name, safe):
    assert safe_file_name(name) == safe


def test_a_friend_request_delivered_twice_is_read_once():
    reader = receiver()
    request = qq.FriendRequest(34653, 3863325290, 379450326, "hi")
    assert reader.receive(request) is not None
    assert reader.receive(qq.FriendRequest(34653, 3863325290, 379450326, "hi")) is None
    assert reader.receive(qq.FriendRequest(34654, 3863325290, 379450326, "hi")) is not None
