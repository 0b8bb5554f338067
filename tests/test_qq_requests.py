"""Tests of webqq.qq's requests: the password and list hashes, and every builder; literal
values in, literal requests out; no I/O."""
import json
import random
import time
import urllib.parse
from urllib.request import Request

import pytest

from webqq import qq
from webqq.qq import builders

UIN_BYTES = b"\x00\x00\x00\x00\x64\x74\x8b\x05"  # QQ 1685359365, §4.2
PTWEBQQ = "2c0d8375e6c09f2af3ce60c6e081bdf4db271a14d0d85060"


# --- §4 password and friend-list hash ----------------------------------------------------

@pytest.mark.parametrize("password, vcode, expected", [
    ("password", "!PTH", "8B861F6C749FD12FA8D03A0B1BB3A414"),
    ("password", "abcd", "F0C288A57361621135A9E73D8FE2989A"),
    ("password", "ABCD", "F0C288A57361621135A9E73D8FE2989A"),
    ("123456", "!IJG", "C5157F52D163706FD27E2BB292537CA8"),
])
def test_encrypt_password_worked_examples(password, vcode, expected):
    assert qq.encrypt_password(password, UIN_BYTES, vcode) == expected


def test_encrypt_password_needs_eight_bytes():
    with pytest.raises(ValueError, match="8 bytes"):
        qq.encrypt_password("password", UIN_BYTES[1:], "!PTH")


@pytest.mark.parametrize("variant, expected", [
    ("N", "FDF4FAF5"),
    ("O", "035508510B060E0653035206015301545F00555007065B0356050102545157025C5701020852"
          "070155065C0D06050F03465442454F5A4151195644475E44"),
    ("P", "0521543759C45D4E"),
    ("Q", "3EB2FEEA"),
])
def test_friends_hash_worked_examples(variant, expected):
    assert qq.friends_hash(1685359365, PTWEBQQ, variant) == expected


def test_friends_hash_published_p_vector():
    ptwebqq = "3d2a1d96e3c119ee6074807abcb4f13d6dd7db591a2988108c926ef62ca0fcee"
    assert qq.friends_hash(398565080, ptwebqq, "P") == "5D52018255D15093"


def test_friends_hash_defaults_to_spring_2013_variant_o():
    assert qq.friends_hash(1685359365, PTWEBQQ) == qq.friends_hash(
        1685359365, PTWEBQQ, "O")


def test_friends_hash_n_reads_zero_past_the_end():
    # pos 9 of 10: the word is 'j', byte(10) = 0, byte(11) = 0, 'a' = 0x6A000061,
    # and 0xFFFFFFFF ^ 0x6A000061 = 0x95FFFF9E. (PB's Python raised IndexError here.)
    assert qq.friends_hash(9, "abcdefghij", "N") == "95FFFF9E"


def test_friends_hash_rejects_unknown_variant_and_empty_ptwebqq():
    with pytest.raises(ValueError, match="unknown hash variant 'Z'"):
        qq.friends_hash(1685359365, PTWEBQQ, "Z")
    with pytest.raises(ValueError, match="ptwebqq"):
        qq.friends_hash(1685359365, "", "N")


# --- builders ----------------------------------------------------------------------------

PSESSIONID = ("8368046764001e636f6e6e7365727665725f77656271714031302e3133332e34312e3230320000"
              "6b2900001544016e0400058b74646d0000000a4046674d4652585136496d00000028e7ce791333"
              "6ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7")
VFWEBQQ = ("e7ce7913336ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7")
SESSION = {"clientid": 53999199, "psessionid": PSESSIONID}
# The clock as builders take it (unix seconds, a float); each sends t as its 2013
# clients did: whole seconds (webqq-core, pual_bot), the heartbeat in milliseconds.
NOW = 1366948800.25
FORM = "application/x-www-form-urlencoded"


def form(request):
    """The form fields of a POST, in order."""
    return urllib.parse.parse_qsl(request.data.decode("ascii"), keep_blank_values=True)


def r_field(request):
    """The JSON object of the `r` field, keys in the order sent."""
    return json.loads(dict(form(request))["r"], object_pairs_hook=lambda pairs: pairs)


def assert_get(request, url, referer=None):
    assert request.get_method() == "GET"
    assert request.full_url == url
    assert request.data is None
    assert request.get_header("Referer") == referer
    assert request.get_header("Origin") is None


def assert_post(request, url, referer, origin):
    assert request.get_method() == "POST"
    assert request.full_url == url
    assert request.get_header("Content-type") == FORM
    assert request.get_header("Referer") == referer
    assert request.get_header("Origin") == origin


def test_referer_constants_are_those_of_the_protocol():
    assert builders.D_REFERER == "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"
    assert builders.D_REFERER3.endswith("&id=3")
    assert builders.S_REFERER == "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1"
    assert builders.S_REFERER3.endswith("&id=3")
    assert builders.D_ORIGIN == "http://d.web2.qq.com"
    assert builders.S_ORIGIN == "http://s.web2.qq.com"
    assert "t=20130221001" in builders.LOGIN_UI_REFERER_A


def test_build_login_page_is_the_era_b_login_ui():
    assert_get(qq.build_login_page(), builders.LOGIN_UI_REFERER_B)


def test_build_check_era_a():
    assert_get(qq.build_check(1685359365, 0.6305723463557661),
               "http://check.ptlogin2.qq.com/check?uin=1685359365&appid=1003903"
               "&r=0.6305723463557661")


def test_build_check_era_b_adds_login_sig_and_referer():
    request = qq.build_check(1685359365, 0.5, era=qq.Era.B, login_sig="SIG*x")
    assert_get(request,
               "http://check.ptlogin2.qq.com/check?uin=1685359365&appid=1003903&r=0.5"
               "&u1=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&login_sig=SIG%2Ax"
               "&js_ver=10040&js_type=0", builders.LOGIN_UI_REFERER_B)
    with pytest.raises(ValueError, match="login_sig"):
        qq.build_check(1685359365, 0.5, era=qq.Era.B)


def test_build_captcha_sends_no_vc_type():
    # pual_bot's three parameters; no 2013 client sent check's token back as vc_type.
    assert_get(qq.build_captcha(1685359365, 0.25),
               "https://ssl.captcha.qq.com/getimage?aid=1003903&r=0.25&uin=1685359365")
    with pytest.raises(TypeError):
        qq.build_captcha(1685359365, 0.25, vc_type="9ed3")


LOGIN_URL_A = (
    "https://ssl.ptlogin2.qq.com/login?u=1685359365&p=8B861F6C749FD12FA8D03A0B1BB3A414"
    "&verifycode=%21PTH&webqq_type=10&remember_uin=1&login2qq=1&aid=1003903"
    "&u1=http%3A%2F%2Fwww.qq.com&h=1&ptredirect=0&ptlang=2052&from_ui=1&pttype=1&dumy="
    "&fp=loginerroralert&mibao_css=m_webqq&t=1&g=1&js_type=0&js_ver=10021")


def test_build_login_era_a_is_the_worked_example_url():
    p = qq.encrypt_password("password", UIN_BYTES, "!PTH")
    assert_get(qq.build_login(1685359365, p, "!PTH"), LOGIN_URL_A)


def test_build_login_era_a_after_captcha_sends_the_login_page_referer():
    request = qq.build_login(1685359365, "P", "abcd", after_captcha=True)
    assert request.get_header("Referer") == builders.LOGIN_UI_REFERER_A


def test_build_login_hidden():
    request = qq.build_login(1685359365, "P", "!PTH",
                             webqq_type=qq.WEBQQ_TYPE_HIDDEN)
    assert "&webqq_type=40&" in request.full_url


def test_build_login_era_b():
    request = qq.build_login(1685359365, "P", "!PTH", era=qq.Era.B,
                             login_sig="PpbBnX213")
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(request.full_url).query,
                                   keep_blank_values=True)
    assert [name for name, _ in query] == [
        "u", "p", "verifycode", "webqq_type", "remember_uin", "login2qq", "aid", "u1", "h",
        "ptredirect", "ptlang", "daid", "from_ui", "pttype", "dumy", "fp", "action",
        "mibao_css", "t", "g", "js_type", "js_ver", "login_sig"]
    values = dict(query)
    assert values["u1"] == "http://www.qq.com/loginproxy.html?login2qq=1&webqq_type=10"
    assert (values["daid"], values["action"], values["js_ver"], values["login_sig"]) == (
        "164", "4-5-8246", "10040", "PpbBnX213")
    assert request.get_header("Referer") == builders.LOGIN_UI_REFERER_B
    with pytest.raises(ValueError, match="login_sig"):
        qq.build_login(1685359365, "P", "!PTH", era=qq.Era.B)


def test_build_check_sig_fetches_the_url_as_is():
    url = ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login"
           "&nodirect=0&ptsig=KNTchh0YK-7DRnUFau5U8OQtSOsNWWUB6wFjCYtKniU_")
    assert_get(qq.build_check_sig(url), url, builders.LOGIN_UI_REFERER_B)
    with pytest.raises(ValueError, match="http"):
        qq.build_check_sig("javascript:alert(1)")


def test_build_login2_is_the_documented_body():
    request = qq.build_login2(PTWEBQQ, clientid=53999199)
    assert_post(request, "http://d.web2.qq.com/channel/login2", builders.D_REFERER3,
                builders.D_ORIGIN)
    assert request.data == (
        b"r=%7B%22status%22%3A%22online%22%2C%22ptwebqq%22%3A%222c0d8375e6c09f2af3ce60c6e081"
        b"bdf4db271a14d0d85060%22%2C%22passwd_sig%22%3A%22%22%2C%22clientid%22%3A%2253999199"
        b"%22%2C%22psessionid%22%3Anull%7D&clientid=53999199&psessionid=null")


def test_build_login2_relink_sends_the_current_psessionid():
    request = qq.build_login2(PTWEBQQ, clientid=53999199, status="hidden",
                              psessionid=PSESSIONID)
    r = dict(r_field(request))
    assert (r["status"], r["psessionid"]) == ("hidden", PSESSIONID)
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]
    with pytest.raises(ValueError, match="unknown status 'sleeping'"):
        qq.build_login2(PTWEBQQ, clientid=53999199, status="sleeping")


def test_build_friends_era_a_has_no_hash():
    request = qq.build_friends(vfwebqq=VFWEBQQ)
    assert_post(request, "http://s.web2.qq.com/api/get_user_friends2", builders.S_REFERER,
                builders.S_ORIGIN)
    assert form(request) == [("r", '{"h":"hello","vfwebqq":"%s"}' % VFWEBQQ)]


def test_build_friends_with_hash():
    request = qq.build_friends(vfwebqq=VFWEBQQ,
                               hash_value=qq.friends_hash(1685359365, PTWEBQQ))
    assert [key for key, _ in r_field(request)] == ["h", "hash", "vfwebqq"]
    assert dict(r_field(request))["hash"].startswith("035508510B06")


def test_build_groups():
    request = qq.build_groups(vfwebqq=VFWEBQQ)
    assert_post(request, "http://s.web2.qq.com/api/get_group_name_list_mask2",
                builders.S_REFERER, builders.S_ORIGIN)
    assert form(request) == [("r", '{"vfwebqq":"%s"}' % VFWEBQQ)]


def test_build_group_info():
    assert_get(qq.build_group_info(3483368056, vfwebqq=VFWEBQQ, t=NOW),
               "http://s.web2.qq.com/api/get_group_info_ext2?gcode=3483368056&vfwebqq=%s"
               "&t=1366948800" % VFWEBQQ, builders.D_REFERER3)


def test_build_discussions_on_either_host():
    assert_get(qq.build_discussions(vfwebqq=VFWEBQQ, t=NOW, **SESSION),
               "http://d.web2.qq.com/channel/get_discu_list_new2?clientid=53999199"
               "&psessionid=%s&vfwebqq=%s&t=1366948800" % (PSESSIONID, VFWEBQQ),
               builders.D_REFERER)
    assert_get(qq.build_discussions(vfwebqq=VFWEBQQ, t=NOW, host="s.web2", **SESSION),
               "http://s.web2.qq.com/api/get_discus_list?clientid=53999199&psessionid=%s"
               "&vfwebqq=%s&t=1366948800" % (PSESSIONID, VFWEBQQ), builders.S_REFERER)
    with pytest.raises(ValueError, match="discussion list host"):
        qq.build_discussions(vfwebqq=VFWEBQQ, t=NOW, host="web2", **SESSION)


def test_build_discussion_info():
    assert_get(qq.build_discussion_info(2006892653, vfwebqq=VFWEBQQ, t=NOW, **SESSION),
               "http://d.web2.qq.com/channel/get_discu_info?did=2006892653&clientid=53999199"
               "&psessionid=%s&vfwebqq=%s&t=1366948800" % (PSESSIONID, VFWEBQQ),
               builders.D_REFERER)


def test_build_friend_uin():
    assert_get(qq.build_friend_uin(721281587, vfwebqq=VFWEBQQ, t=NOW),
               "http://s.web2.qq.com/api/get_friend_uin2?tuin=721281587&verifysession="
               "&type=1&code=&vfwebqq=%s&t=1366948800" % VFWEBQQ, builders.S_REFERER3)
    group = qq.build_friend_uin(3483368056, vfwebqq=VFWEBQQ, t=1, lookup_type=4)
    assert "&type=4&" in group.full_url


def test_build_online_buddies():
    assert_get(qq.build_online_buddies(t=NOW, **SESSION),
               "http://d.web2.qq.com/channel/get_online_buddies2?clientid=53999199"
               "&psessionid=%s&t=1366948800" % PSESSIONID, builders.D_REFERER)


def test_build_poll():
    request = qq.build_poll(**SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/poll2", builders.D_REFERER,
                builders.D_ORIGIN)
    assert r_field(request) == [("clientid", 53999199), ("psessionid", PSESSIONID),
                                ("key", 0), ("ids", [])]
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_heartbeat():
    # The one t in milliseconds (twqq; pual_bot's was a thousand times that, a bug).
    assert_get(qq.build_heartbeat(rc=1, t=NOW),
               "http://web.qq.com/web2/get_msg_tip?uin=&tp=1&id=0&retype=1&rc=1&lv=2"
               "&t=1366948800250")
    assert "&lv=3&" in qq.build_heartbeat(rc=7, t=1, lv=3).full_url


def content_of(request):
    return json.loads(dict(r_field(request))["content"])


def test_build_send_buddy_matches_the_documented_form():
    font = qq.Font(name="Monospace")
    request = qq.build_send_buddy(2440652742, "hello", msg_id=21870001, font=font,
                                  **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_buddy_msg2", builders.D_REFERER3,
                builders.D_ORIGIN)
    r = r_field(request)
    assert [key for key, _ in r] == ["to", "face", "content", "msg_id", "clientid",
                                     "psessionid"]
    assert dict(r)["to"] == 2440652742 and dict(r)["face"] == 564
    assert dict(r)["content"] == ('["hello",["font",{"name":"Monospace","size":10,'
                                  '"style":[0,0,0],"color":"000000"}]]')
    assert (dict(r)["msg_id"], dict(r)["clientid"]) == (21870001, 53999199)
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_send_buddy_with_faces_and_chinese():
    request = qq.build_send_buddy(
        2440652742, ["hello 你好", qq.Face(14), "\n"], msg_id=1, **SESSION)
    assert content_of(request) == [
        "hello 你好", ["face", 14], "\n",
        ["font", {"name": "宋体", "size": 10, "style": [0, 0, 0], "color": "000000"}]]
    assert request.data.isascii()


def test_build_send_group():
    request = qq.build_send_group(2559225925, "hi all", msg_id=21870002, **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_qun_msg2", builders.D_REFERER3,
                builders.D_ORIGIN)
    assert [key for key, _ in r_field(request)] == [
        "group_uin", "content", "msg_id", "clientid", "psessionid"]
    assert dict(r_field(request))["group_uin"] == 2559225925
    assert content_of(request)[0] == "hi all"
    assert form(request)[1:] == [("psessionid", PSESSIONID), ("clientid", "53999199")]


def test_build_send_discussion_sends_did_as_a_string():
    request = qq.build_send_discussion(2006892653, "x", msg_id=21870004, **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_discu_msg2", builders.D_REFERER,
                builders.D_ORIGIN)
    assert r_field(request)[0] == ("did", "2006892653")
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_c2c_sig():
    assert_get(qq.build_c2c_sig(2559225925, 3043560234, service_type=0, t=NOW,
                                **SESSION),
               "http://d.web2.qq.com/channel/get_c2cmsg_sig2?id=2559225925&to_uin=3043560234"
               "&service_type=0&clientid=53999199&psessionid=%s&t=1366948800" % PSESSIONID,
               builders.D_REFERER3)


def test_build_send_session():
    request = qq.build_send_session(3043560234, "hello", group_sig="b839", msg_id=3,
                                    service_type=1, **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_sess_msg2", builders.D_REFERER3,
                builders.D_ORIGIN)
    r = r_field(request)
    assert [key for key, _ in r] == ["to", "group_sig", "face", "content", "msg_id",
                                     "service_type", "clientid", "psessionid"]
    assert (dict(r)["group_sig"], dict(r)["service_type"]) == ("b839", 1)


def test_build_change_status():
    assert_get(qq.build_change_status("away", t=NOW, **SESSION),
               "http://d.web2.qq.com/channel/change_status2?newstatus=away&clientid=53999199"
               "&psessionid=%s&t=1366948800" % PSESSIONID, builders.D_REFERER)
    with pytest.raises(ValueError, match="unknown status"):
        qq.build_change_status("offline!", t=9, **SESSION)


def test_build_logout():
    assert_get(qq.build_logout(t=NOW, **SESSION),
               "http://d.web2.qq.com/channel/logout2?ids=&clientid=53999199&psessionid=%s"
               "&t=1366948800" % PSESSIONID, builders.D_REFERER)


def test_build_friend_request_answers():
    request = qq.build_allow_and_add(379450326, vfwebqq=VFWEBQQ, markname="379450326")
    assert_post(request, "http://s.web2.qq.com/api/allow_and_add2", builders.S_REFERER3,
                builders.S_ORIGIN)
    assert r_field(request) == [("account", 379450326), ("gid", 0), ("mname", "379450326"),
                                ("vfwebqq", VFWEBQQ)]
    request = qq.build_allow_added_request(379450326, vfwebqq=VFWEBQQ)
    assert request.full_url == "http://s.web2.qq.com/api/allow_added_request2"
    assert r_field(request) == [("account", 379450326), ("vfwebqq", VFWEBQQ)]
    request = qq.build_deny_added_request(379450326, vfwebqq=VFWEBQQ, reason="no")
    assert request.full_url == "http://s.web2.qq.com/api/deny_added_request2"
    assert r_field(request) == [("account", 379450326), ("msg", "no"), ("vfwebqq", VFWEBQQ)]


def all_builders():
    """One call of every builder."""
    return [
        qq.build_login_page(),
        qq.build_check(1, 0.5),
        qq.build_check(1, 0.5, era=qq.Era.B, login_sig="s"),
        qq.build_captcha(1, 0.5),
        qq.build_login(1, "P", "!PTH"),
        qq.build_login(1, "P", "!PTH", era=qq.Era.B, login_sig="s"),
        qq.build_check_sig("http://ptlogin4.web2.qq.com/check_sig?x=1"),
        qq.build_login2(PTWEBQQ, clientid=1),
        qq.build_friends(vfwebqq=VFWEBQQ),
        qq.build_groups(vfwebqq=VFWEBQQ),
        qq.build_group_info(1, vfwebqq=VFWEBQQ, t=1),
        qq.build_discussions(vfwebqq=VFWEBQQ, t=1, **SESSION),
        qq.build_discussion_info(1, vfwebqq=VFWEBQQ, t=1, **SESSION),
        qq.build_friend_uin(1, vfwebqq=VFWEBQQ, t=1),
        qq.build_online_buddies(t=1, **SESSION),
        qq.build_poll(**SESSION),
        qq.build_heartbeat(rc=1, t=1),
        qq.build_send_buddy(1, "x", msg_id=1, **SESSION),
        qq.build_send_group(1, "x", msg_id=1, **SESSION),
        qq.build_send_discussion(1, "x", msg_id=1, **SESSION),
        qq.build_c2c_sig(1, 2, service_type=0, t=1, **SESSION),
        qq.build_send_session(1, "x", group_sig="s", msg_id=1, **SESSION),
        qq.build_change_status("online", t=1, **SESSION),
        qq.build_logout(t=1, **SESSION),
        qq.build_allow_and_add(1, vfwebqq=VFWEBQQ),
        qq.build_allow_added_request(1, vfwebqq=VFWEBQQ),
        qq.build_deny_added_request(1, vfwebqq=VFWEBQQ),
    ]


def test_builders_never_read_the_clock_or_random(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a builder read the clock or random")
    for name in ("time", "monotonic", "time_ns"):
        monkeypatch.setattr(time, name, forbidden)
    for name in ("random", "randrange", "randint", "getrandbits"):
        monkeypatch.setattr(random, name, forbidden)
    first, second = all_builders(), all_builders()
    assert [(r.full_url, r.data, r.header_items()) for r in first] == [
        (r.full_url, r.data, r.header_items()) for r in second]
    assert all(isinstance(request, Request) for request in first)
    # every POST carries the form content type; every d.web2/s.web2 call a Referer
    for request in first:
        if request.get_method() == "POST":
            assert request.get_header("Content-type") == FORM
        if urllib.parse.urlsplit(request.full_url).hostname.endswith("web2.qq.com"):
            assert request.get_header("Referer").startswith("http")
