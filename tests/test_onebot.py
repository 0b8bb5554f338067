"""webqq.onebot and webqq.store without a network: message formats, ids, the store's
rules (idempotency, recovery after a crash, retention, kept events)."""
import os
import re

import pytest

from webqq.client.contacts import Contacts, Friend, Group, Member
from webqq.client.pictures import ReceivedPicture
from webqq.onebot import mapping as onebot
from webqq.onebot.mapping import BadParams, UnsupportedSegment
from webqq.onebot.store import Store, StoreError, move_aside, open_store
from webqq.qq import Face, content_text


def test_cq_strings_are_parsed_with_their_escapes():
    segments = onebot.parse_message("a&amp;b &#91;x&#93;[CQ:face,id=14][CQ:at,qq=1&#44;2]z")
    assert segments == [{"type": "text", "data": {"text": "a&b [x]"}},
                        {"type": "face", "data": {"id": "14"}},
                        {"type": "at", "data": {"qq": "1,2"}},
                        {"type": "text", "data": {"text": "z"}}]
    assert onebot.to_cq_string(segments) == "a&amp;b &#91;x&#93;[CQ:face,id=14]" \
                                            "[CQ:at,qq=1&#44;2]z"
    assert onebot.parse_message("[CQ:face,id=1]", auto_escape=True) == [
        {"type": "text", "data": {"text": "[CQ:face,id=1]"}}]
    assert onebot.parse_message({"type": "text", "data": {"text": "one"}}) == [
        {"type": "text", "data": {"text": "one"}}]
    for bad in (5, [1], [{"data": {}}], [{"type": "text", "data": 3}]):
        with pytest.raises(BadParams):
            onebot.parse_message(bad)


def test_segments_map_to_webqq_pieces_or_are_refused():
    segments = onebot.parse_message("hi [CQ:at,qq=20001][CQ:reply,id=5][CQ:face,id=14]!")
    pieces = onebot.to_pieces(segments, names={20001: "Alice"})
    assert pieces == ["hi @Alice ", Face(14), "!"]
    assert content_text(pieces) == "hi @Alice [face:14]!"
    assert onebot.pieces_from_data(onebot.pieces_to_data(pieces)) == pieces
    assert onebot.to_pieces(onebot.parse_message("[CQ:at,qq=all] x")) == ["@all  x"]
    with pytest.raises(UnsupportedSegment) as refused:
        onebot.to_pieces(onebot.parse_message("[CQ:record,file=a.amr]"))
    assert refused.value.retcode == 102 and refused.value.kind == "record"
    with pytest.raises(BadParams):
        onebot.to_pieces(onebot.parse_message("[CQ:face,id=smile]"))
    with pytest.raises(BadParams):
        onebot.to_pieces(onebot.parse_message("[CQ:reply,id=1]"))


def test_received_pieces_become_segments_with_a_picture_name_and_url():
    picture = ReceivedPicture("cface", "x.jpg", 7, msg_id=3)
    pieces = ("a\n", "b", Face(2), picture)
    name = onebot.picture_name(picture)
    assert re.fullmatch(r"[0-9a-f]{40}\.image", name) and onebot.is_picture_name(name)
    assert onebot.from_pieces(pieces, base_url="http://127.0.0.1:5700") == [
        {"type": "text", "data": {"text": "a\nb"}}, {"type": "face", "data": {"id": "2"}},
        {"type": "image", "data": {"file": name,
                                   "url": "http://127.0.0.1:5700/images/" + name}}]
    assert onebot.from_pieces((picture,))[0]["data"] == {"file": name}   # no server
    assert onebot.to_cq_string(onebot.from_pieces((picture,), base_url="http://h:1")) == \
        "[CQ:image,file=%s,url=http://h:1/images/%s]" % (name, name)


def test_ids_are_qq_and_group_numbers_with_documented_fallbacks():
    contacts = Contacts(friends={7: Friend(7, 20001, "Alice"), 8: Friend(8, None, "Anon")},
                        groups={90: Group(90, 91, 30001, "g", members={
                            7: Member(7, 20001, "Alice")}), 95: Group(95, 96, None, "h")})
    assert onebot.user_id_of(7, None, contacts) == 20001
    assert onebot.user_id_of(8, None, contacts) == 8          # no QQ number known: the uin
    assert onebot.find_friend(contacts, 20001).uin == 7
    assert onebot.group_id_of(contacts.groups[90]) == 30001
    assert onebot.group_id_of(contacts.groups[95]) == 96      # no public number: the code
    assert onebot.find_group(contacts, 96).gid == 95
    assert onebot.split_target(None, {"group_id": "30001"}) == ("group", 30001)
    assert onebot.split_target("discuss", {"discuss_id": 5}) == ("discussion", 5)
    with pytest.raises(BadParams):
        onebot.split_target("private", {"user_id": "x"})


def test_store_idempotency_recovery_and_retention(tmp_path):
    now = [1000000.0]
    store = Store(tmp_path / "s.sqlite3", retention_days=1, clock=lambda: now[0])
    first, created = store.add_outgoing(chat="buddy", target=1, user_id=2, text="a",
                                        data={}, idempotency_key="k")
    assert created and store.add_outgoing(chat="buddy", target=1, user_id=2, text="a",
                                          data={}, idempotency_key="k") == (first, False)
    second, _ = store.add_outgoing(chat="buddy", target=1, user_id=2, text="b", data={})
    store.set_status(first, "sending")
    assert store.recover() == 1
    assert store.get(first).status == "ambiguous"
    assert [row.id for row in store.queued()] == [second]
    received = store.add_received(chat="group", target=3, user_id=4, text="hi",
                                  data={"segments": []})
    store.keep_event("http://a/", b'{"n": 1}', "refused")
    store.keep_event("http://b/", b'{"n": 2}', "refused")
    now[0] += 2 * 86400
    assert store.prune() == 4                  # the ambiguous row, the received one, events
    assert store.get(received) is None and store.get(second).status == "queued"
    third = store.keep_event("http://a/", b'{"n": 3}', "refused")
    fourth = store.keep_event("http://a/", b'{"n": 4}', "refused")
    store.keep_event("http://b/", b'{"n": 5}', "refused")
    assert third < fourth
    assert store.kept_event("http://a/") == (third, b'{"n": 3}')
    assert store.kept_event("http://a/", after=third) == (fourth, b'{"n": 4}')
    assert store.kept_event("http://a/", after=fourth) is None
    store.forget_events("http://a/", third)
    assert (store.undelivered("http://a/"), store.undelivered()) == (1, 2)
    assert (tmp_path / "s.sqlite3").stat().st_mode & 0o777 == 0o600
    store.close()
    store.close()


def _garbage(path):
    path.write_bytes(b"this is not a database\n" * 200)


def _truncated(path):
    store = Store(path)
    for n in range(2000):
        store.add_received(chat="buddy", target=1, user_id=2, text="message %d" % n,
                           data={"padding": "x" * 50})
    store.close()
    with open(path, "r+b") as stream:
        stream.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damage, why", [(_garbage, "file is not a database"),
                                         (_truncated, "database disk image is malformed")])
def test_a_damaged_store_is_moved_aside_and_a_fresh_one_started(tmp_path, caplog, damage,
                                                                 why):
    path = tmp_path / "messages.sqlite3"
    damage(path)
    damaged = path.read_bytes()
    (tmp_path / "messages.sqlite3-wal").write_bytes(b"old wal")
    (tmp_path / "messages.sqlite3-shm").write_bytes(b"old shm")
    store = open_store(path)
    message_id, _ = store.add_outgoing(chat="buddy", target=1, user_id=2, text="a",
                                       data={})
    assert store.get(message_id).status == "queued"
    store.close()
    aside, = tmp_path.glob("messages.sqlite3.bad-*[0-9]")
    assert re.fullmatch(r"messages\.sqlite3\.bad-\d{8}T\d{6}", aside.name)
    assert aside.read_bytes() == damaged
    assert (tmp_path / (aside.name + "-wal")).read_bytes() == b"old wal"
    assert (tmp_path / (aside.name + "-shm")).exists()   # an index SQLite may rebuild
    line, = [r.getMessage() for r in caplog.records]
    assert line == "the message store %s is damaged (%s): moved to %s, starting with an " \
                   "empty one" % (path, why, aside.name)


def test_a_store_that_cannot_be_opened_or_moved_aside_says_what_to_do(tmp_path,
                                                                      monkeypatch):
    folder = tmp_path / "messages.sqlite3"
    folder.mkdir()                              # in the way of the file
    with pytest.raises(StoreError) as refused:
        open_store(folder)
    assert str(refused.value) == (
        "cannot open the message store %s: Is a directory; check that "
        "state_dir and the file can be written by this user" % folder)
    assert not refused.value.temporary
    path = tmp_path / "other.sqlite3"
    _garbage(path)

    def cannot(source, target):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "replace", cannot)
    with pytest.raises(StoreError) as refused:
        open_store(path)
    assert str(refused.value) == (
        "the message store %s is damaged (file is not a database) and cannot be moved "
        "aside: Permission denied; move it (and any other.sqlite3-wal, -shm) away by "
        "hand" % path)
    assert path.exists()


def test_the_store_files_are_private_whatever_the_umask(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o777)                         # whoever made it, made it open
    old = folder / "old.sqlite3"
    for name in ("old.sqlite3", "old.sqlite3-wal", "old.sqlite3-shm"):
        (folder / name).touch()
        (folder / name).chmod(0o644)            # as an older version left them
    previous = os.umask(0o022)
    try:
        stores = [Store(folder / "new.sqlite3"), Store(old)]
        for store in stores:
            store.add_received(chat="buddy", target=1, user_id=2, text="private", data={})
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes == dict.fromkeys(["%s.sqlite3%s" % (name, suffix)
                                   for name in ("new", "old")
                                   for suffix in ("", "-wal", "-shm")], 0o600)
    for store in stores:
        store.close()


def test_moving_aside_never_replaces_an_earlier_one(tmp_path):
    path = tmp_path / "messages.sqlite3"
    asides = []
    for content in (b"first", b"second", b"third"):
        path.write_bytes(content)
        (tmp_path / "messages.sqlite3-wal").write_bytes(content + b" wal")
        asides.append(move_aside(path))
    assert len({aside.name for aside in asides}) == 3
    assert [aside.read_bytes() for aside in asides] == [b"first", b"second", b"third"]
    assert [(tmp_path / (aside.name + "-wal")).read_bytes() for aside in asides] == [
        b"first wal", b"second wal", b"third wal"]
    assert {aside.stat().st_mode & 0o777 for aside in asides} == {0o600}
