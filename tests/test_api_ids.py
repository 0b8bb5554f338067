"""Who the OneBot API says people and chats are (issue 12): a group sender's nickname,
card and role as the protocol tells them, and discussion ids that stay the same across
restarts, with an unknown discussion a plain error."""
import pytest
from api_helpers import DISCUSSION, GROUP, Webhook, events_of, eventually
from tornado import web

from webqq.client.contacts import Contacts, Discussion, Member
from webqq.onebot.discussions import DiscussionIds
from webqq.onebot.store import Store, StoreUnavailable


@pytest.mark.gen_test(timeout=30)
async def test_senders_carry_the_nick_the_card_and_the_role(harness):
    """role was always 'member', and nickname the friend remark or the group card,
    while get_group_member_info said the nick: NoneBot's permission checks could never
    match. The owner and the administrators come from get_group_info_ext2."""
    record = {}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    await harness.start(post_url="http://127.0.0.1:%d/hook" % port)
    members = {m["user_id"]: m for m in await harness.ok("get_group_member_list",
                                                           {"group_id": GROUP})}
    assert {qq: (m["nickname"], m["card"], m["role"]) for qq, m in members.items()} == {
        20001: ("Alice", "Alice@work", "owner"), 20002: ("Bob", "", "admin"),
        10001: ("webqq", "", "member"), 10002: ("webqq-2", "bot two", "member")}
    control = harness.world.control
    await control.say(**{"from": 20001, "group": GROUP, "text": "from the owner"})
    await control.say(**{"from": 20002, "group": GROUP, "text": "from an admin"})
    await control.say(**{"from": 10002, "group": GROUP, "text": "from a member"})
    await control.say(**{"from": 20002, "text": "privately"})   # remark: "Bob (work)"
    events = await eventually(lambda: len(events_of(record, "message")) == 4
                              and events_of(record, "message"), "four messages")
    senders = [(e["raw_message"], e["sender"]["nickname"], e["sender"].get("card"),
                e["sender"].get("role")) for e in events]
    assert senders == [("from the owner", "Alice", "Alice@work", "owner"),
                       ("from an admin", "Bob", "", "admin"),
                       ("from a member", "webqq-2", "bot two", "member"),
                       ("privately", "Bob", None, None)]
    for event in events:
        stored = await harness.ok("get_msg", {"message_id": event["message_id"]})
        assert stored["sender"]["nickname"] == event["sender"]["nickname"]
        assert stored["sender"].get("role") == event["sender"].get("role")
    member = await harness.ok("get_group_member_info", {"group_id": GROUP,
                                                        "user_id": 20002})
    assert (member["nickname"], member["role"]) == ("Bob", "admin")
    assert events[1]["sender"]["nickname"] == member["nickname"]


def contacts_with(*discussions):
    return Contacts(discussions={d.did: d for d in discussions})


def discussion(did, name="good day", owner=20001):
    return Discussion(did, name, {1: Member(1, owner, "Alice", role="owner"),
                                  2: Member(2, 10001, "webqq")})


def test_discussion_ids_outlive_the_dids(tmp_path):
    """A discussion keeps the id it was first given (its did then) whatever did a later
    session gives it; a did that is another's id is not taken twice."""
    store = Store(tmp_path / "s.sqlite3")
    ids = DiscussionIds(store)
    first = contacts_with(discussion(111), discussion(222, "other"))
    assert (ids.id_of(111, first), ids.id_of(222, first)) == (111, 222)
    store.close()

    store = Store(tmp_path / "s.sqlite3")           # a restart: new dids
    ids = DiscussionIds(store)
    again = contacts_with(discussion(333), discussion(111, "new one", owner=20003),
                          discussion(444, "other"))
    assert ids.id_of(333, again) == 111
    assert ids.id_of(444, again) == 222
    assert ids.id_of(111, again) == 112             # 111 is taken: the next free number
    assert ids.find(111, again).did == 333
    assert ids.find(444, again).did == 444          # a plugin's did names it too
    assert ids.find(40001, again) is None
    assert sorted(ids.listed(again)) == [111, 112, 222]
    renamed = contacts_with(discussion(333, "renamed"), discussion(111, "new one",
                                                                    owner=20003))
    assert ids.id_of(333, renamed) == 111           # same did, same discussion
    store.close()


def test_discussion_ids_wait_for_a_store_that_cannot_be_read(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite3")
    DiscussionIds(store).id_of(111, contacts_with(discussion(111)))
    ids = DiscussionIds(store)
    broken = {"now": True}
    real = store.discussions

    def discussions():
        if broken["now"]:
            raise StoreUnavailable("disk I/O error")
        return real()
    monkeypatch.setattr(store, "discussions", discussions)
    later = contacts_with(discussion(555))
    assert ids.id_of(555, later) == 555             # meanwhile, the did
    broken["now"] = False
    assert ids.id_of(555, later) == 111             # matched once it can be read
    store.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_unknown_discussion_is_a_plain_error(harness):
    """A discussion id nobody knows went to the server as a did ('retcode 108'); it is
    refused as an unknown group is."""
    await harness.start()
    listed = await harness.ok("get_discuss_list")
    assert [(d["discuss_name"], d["member_count"]) for d in listed] == [("good day", 4)]
    code, answer = await harness.call("send_discuss_msg", {"discuss_id": 40001,
                                                           "message": "hi"})
    assert (answer["status"], answer["retcode"]) == ("failed", 103)
    assert answer["msg"].endswith("failed: unknown discussion 40001")
    await harness.ok("send_discuss_msg", {"discuss_id": listed[0]["discuss_id"],
                                          "message": "hi all"})
    sent = await harness.world.control.sent()
    assert [(m["kind"], m["to"], m["text"]) for m in sent] == [
        ("discussion", DISCUSSION, "hi all")]
