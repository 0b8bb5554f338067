"""Who the OneBot API says people and chats are (issue 12): a group sender's nickname,
card and role as the protocol tells them, and discussion ids that stay the same across
restarts, with an unknown discussion a plain error."""
import pytest
from api_helpers import GROUP, Webhook, events_of, eventually
from tornado import web


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
