"""Tests of webqq.protocol: literal bytes in, values out; no I/O."""
import json
import random
import re
import time
import urllib.parse
from urllib.request import Request

import pytest

from webqq.qq import messages, protocol

UIN_BYTES = b"\x00\x00\x00\x00\x64\x74\x8b\x05"  # QQ 1685359365, PROTOCOL.md §3.2
PTWEBQQ = "2c0d8375e6c09f2af3ce60c6e081bdf4db271a14d0d85060"


# --- §3 password and friend-list hash ----------------------------------------------------

@pytest.mark.parametrize("password, vcode, expected", [
    ("password", "!PTH", "8B861F6C749FD12FA8D03A0B1BB3A414"),
    ("password", "abcd", "F0C288A57361621135A9E73D8FE2989A"),
    ("password", "ABCD", "F0C288A57361621135A9E73D8FE2989A"),
    ("123456", "!IJG", "C5157F52D163706FD27E2BB292537CA8"),
])
def test_encrypt_password_worked_examples(password, vcode, expected):
    assert protocol.encrypt_password(password, UIN_BYTES, vcode) == expected


def test_encrypt_password_needs_eight_bytes():
    with pytest.raises(ValueError, match="8 bytes"):
        protocol.encrypt_password("password", UIN_BYTES[1:], "!PTH")


@pytest.mark.parametrize("variant, expected", [
    ("N", "FDF4FAF5"),
    ("O", "035508510B060E0653035206015301545F00555007065B0356050102545157025C5701020852"
          "070155065C0D06050F03465442454F5A4151195644475E44"),
    ("P", "0521543759C45D4E"),
    ("Q", "3EB2FEEA"),
])
def test_friends_hash_worked_examples(variant, expected):
    assert protocol.friends_hash(1685359365, PTWEBQQ, variant) == expected


def test_friends_hash_published_p_vector():
    ptwebqq = "3d2a1d96e3c119ee6074807abcb4f13d6dd7db591a2988108c926ef62ca0fcee"
    assert protocol.friends_hash(398565080, ptwebqq, "P") == "5D52018255D15093"


def test_friends_hash_defaults_to_spring_2013_variant_o():
    assert protocol.friends_hash(1685359365, PTWEBQQ) == protocol.friends_hash(
        1685359365, PTWEBQQ, "O")


def test_friends_hash_n_reads_zero_past_the_end():
    # pos 9 of 10: the word is 'j', byte(10) = 0, byte(11) = 0, 'a' = 0x6A000061,
    # and 0xFFFFFFFF ^ 0x6A000061 = 0x95FFFF9E. (PB's Python raised IndexError here.)
    assert protocol.friends_hash(9, "abcdefghij", "N") == "95FFFF9E"


def test_friends_hash_rejects_unknown_variant_and_empty_ptwebqq():
    with pytest.raises(ValueError, match="unknown hash variant 'Z'"):
        protocol.friends_hash(1685359365, PTWEBQQ, "Z")
    with pytest.raises(ValueError, match="ptwebqq"):
        protocol.friends_hash(1685359365, "", "N")


# --- builders ----------------------------------------------------------------------------

PSESSIONID = ("8368046764001e636f6e6e7365727665725f77656271714031302e3133332e34312e3230320000"
              "6b2900001544016e0400058b74646d0000000a4046674d4652585136496d00000028e7ce791333"
              "6ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7")
VFWEBQQ = ("e7ce7913336ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7")
SESSION = {"clientid": 53999199, "psessionid": PSESSIONID}
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
    assert protocol.D_REFERER == "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"
    assert protocol.D_REFERER3.endswith("&id=3")
    assert protocol.S_REFERER == "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1"
    assert protocol.S_REFERER3.endswith("&id=3")
    assert protocol.D_ORIGIN == "http://d.web2.qq.com"
    assert protocol.S_ORIGIN == "http://s.web2.qq.com"
    assert "t=20130221001" in protocol.LOGIN_UI_REFERER_A


def test_build_login_page_is_the_era_b_login_ui():
    assert_get(protocol.build_login_page(), protocol.LOGIN_UI_REFERER_B)


def test_build_check_era_a():
    assert_get(protocol.build_check(1685359365, 0.6305723463557661),
               "http://check.ptlogin2.qq.com/check?uin=1685359365&appid=1003903"
               "&r=0.6305723463557661")


def test_build_check_era_b_adds_login_sig_and_referer():
    request = protocol.build_check(1685359365, 0.5, era=protocol.Era.B, login_sig="SIG*x")
    assert_get(request,
               "http://check.ptlogin2.qq.com/check?uin=1685359365&appid=1003903&r=0.5"
               "&u1=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&login_sig=SIG%2Ax"
               "&js_ver=10040&js_type=0", protocol.LOGIN_UI_REFERER_B)
    with pytest.raises(ValueError, match="login_sig"):
        protocol.build_check(1685359365, 0.5, era=protocol.Era.B)


def test_build_captcha():
    assert_get(protocol.build_captcha(1685359365, 0.25),
               "https://ssl.captcha.qq.com/getimage?aid=1003903&r=0.25&uin=1685359365")
    request = protocol.build_captcha(1685359365, 0.25, vc_type="9ed3")
    assert request.full_url.endswith("&uin=1685359365&vc_type=9ed3")


LOGIN_URL_A = (
    "https://ssl.ptlogin2.qq.com/login?u=1685359365&p=8B861F6C749FD12FA8D03A0B1BB3A414"
    "&verifycode=%21PTH&webqq_type=10&remember_uin=1&login2qq=1&aid=1003903"
    "&u1=http%3A%2F%2Fwww.qq.com&h=1&ptredirect=0&ptlang=2052&from_ui=1&pttype=1&dumy="
    "&fp=loginerroralert&mibao_css=m_webqq&t=1&g=1&js_type=0&js_ver=10021")


def test_build_login_era_a_is_the_worked_example_url():
    p = protocol.encrypt_password("password", UIN_BYTES, "!PTH")
    assert_get(protocol.build_login(1685359365, p, "!PTH"), LOGIN_URL_A)


def test_build_login_era_a_after_captcha_sends_the_login_page_referer():
    request = protocol.build_login(1685359365, "P", "abcd", after_captcha=True)
    assert request.get_header("Referer") == protocol.LOGIN_UI_REFERER_A


def test_build_login_hidden():
    request = protocol.build_login(1685359365, "P", "!PTH",
                                   webqq_type=protocol.WEBQQ_TYPE_HIDDEN)
    assert "&webqq_type=40&" in request.full_url


def test_build_login_era_b():
    request = protocol.build_login(1685359365, "P", "!PTH", era=protocol.Era.B,
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
    assert request.get_header("Referer") == protocol.LOGIN_UI_REFERER_B
    with pytest.raises(ValueError, match="login_sig"):
        protocol.build_login(1685359365, "P", "!PTH", era=protocol.Era.B)


def test_build_check_sig_fetches_the_url_as_is():
    url = ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login"
           "&nodirect=0&ptsig=KNTchh0YK-7DRnUFau5U8OQtSOsNWWUB6wFjCYtKniU_")
    assert_get(protocol.build_check_sig(url), url, protocol.LOGIN_UI_REFERER_B)
    with pytest.raises(ValueError, match="http"):
        protocol.build_check_sig("javascript:alert(1)")


def test_build_login2_is_the_documented_body():
    request = protocol.build_login2(PTWEBQQ, clientid=53999199)
    assert_post(request, "http://d.web2.qq.com/channel/login2", protocol.D_REFERER3,
                protocol.D_ORIGIN)
    assert request.data == (
        b"r=%7B%22status%22%3A%22online%22%2C%22ptwebqq%22%3A%222c0d8375e6c09f2af3ce60c6e081"
        b"bdf4db271a14d0d85060%22%2C%22passwd_sig%22%3A%22%22%2C%22clientid%22%3A%2253999199"
        b"%22%2C%22psessionid%22%3Anull%7D&clientid=53999199&psessionid=null")


def test_build_login2_relink_sends_the_current_psessionid():
    request = protocol.build_login2(PTWEBQQ, clientid=53999199, status="hidden",
                                    psessionid=PSESSIONID)
    r = dict(r_field(request))
    assert (r["status"], r["psessionid"]) == ("hidden", PSESSIONID)
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]
    with pytest.raises(ValueError, match="unknown status 'sleeping'"):
        protocol.build_login2(PTWEBQQ, clientid=53999199, status="sleeping")


def test_build_friends_era_a_has_no_hash():
    request = protocol.build_friends(vfwebqq=VFWEBQQ)
    assert_post(request, "http://s.web2.qq.com/api/get_user_friends2", protocol.S_REFERER,
                protocol.S_ORIGIN)
    assert form(request) == [("r", '{"h":"hello","vfwebqq":"%s"}' % VFWEBQQ)]


def test_build_friends_with_hash():
    request = protocol.build_friends(vfwebqq=VFWEBQQ,
                                     hash_value=protocol.friends_hash(1685359365, PTWEBQQ))
    assert [key for key, _ in r_field(request)] == ["h", "hash", "vfwebqq"]
    assert dict(r_field(request))["hash"].startswith("035508510B06")


def test_build_groups():
    request = protocol.build_groups(vfwebqq=VFWEBQQ)
    assert_post(request, "http://s.web2.qq.com/api/get_group_name_list_mask2",
                protocol.S_REFERER, protocol.S_ORIGIN)
    assert form(request) == [("r", '{"vfwebqq":"%s"}' % VFWEBQQ)]


def test_build_group_info():
    assert_get(protocol.build_group_info(3483368056, vfwebqq=VFWEBQQ, t=1366948800),
               "http://s.web2.qq.com/api/get_group_info_ext2?gcode=3483368056&vfwebqq=%s"
               "&t=1366948800" % VFWEBQQ, protocol.D_REFERER3)


def test_build_discussions():
    assert_get(protocol.build_discussions(vfwebqq=VFWEBQQ, t=1366948800000, **SESSION),
               "http://s.web2.qq.com/api/get_discus_list?clientid=53999199&psessionid=%s"
               "&vfwebqq=%s&t=1366948800000" % (PSESSIONID, VFWEBQQ), protocol.S_REFERER)


def test_build_discussion_info():
    assert_get(protocol.build_discussion_info(2006892653, vfwebqq=VFWEBQQ, t=1, **SESSION),
               "http://d.web2.qq.com/channel/get_discu_info?did=2006892653&clientid=53999199"
               "&psessionid=%s&vfwebqq=%s&t=1" % (PSESSIONID, VFWEBQQ), protocol.D_REFERER)


def test_build_friend_uin():
    assert_get(protocol.build_friend_uin(721281587, vfwebqq=VFWEBQQ, t=1),
               "http://s.web2.qq.com/api/get_friend_uin2?tuin=721281587&verifysession="
               "&type=1&code=&vfwebqq=%s&t=1" % VFWEBQQ, protocol.S_REFERER3)
    group = protocol.build_friend_uin(3483368056, vfwebqq=VFWEBQQ, t=1, lookup_type=4)
    assert "&type=4&" in group.full_url


def test_build_online_buddies():
    assert_get(protocol.build_online_buddies(t=1, **SESSION),
               "http://d.web2.qq.com/channel/get_online_buddies2?clientid=53999199"
               "&psessionid=%s&t=1" % PSESSIONID, protocol.D_REFERER)


def test_build_poll():
    request = protocol.build_poll(**SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/poll2", protocol.D_REFERER,
                protocol.D_ORIGIN)
    assert r_field(request) == [("clientid", 53999199), ("psessionid", PSESSIONID),
                                ("key", 0), ("ids", [])]
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_heartbeat():
    assert_get(protocol.build_heartbeat(rc=1, t=1366948800000),
               "http://web.qq.com/web2/get_msg_tip?uin=&tp=1&id=0&retype=1&rc=1&lv=2"
               "&t=1366948800000")
    assert "&lv=3&" in protocol.build_heartbeat(rc=7, t=1, lv=3).full_url


def content_of(request):
    return json.loads(dict(r_field(request))["content"])


def test_build_send_buddy_matches_the_documented_form():
    font = messages.Font(name="Monospace")
    request = protocol.build_send_buddy(2440652742, "hello", msg_id=21870001, font=font,
                                        **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_buddy_msg2", protocol.D_REFERER3,
                protocol.D_ORIGIN)
    r = r_field(request)
    assert [key for key, _ in r] == ["to", "face", "content", "msg_id", "clientid",
                                     "psessionid"]
    assert dict(r)["to"] == 2440652742 and dict(r)["face"] == 564
    assert dict(r)["content"] == ('["hello",["font",{"name":"Monospace","size":10,'
                                  '"style":[0,0,0],"color":"000000"}]]')
    assert (dict(r)["msg_id"], dict(r)["clientid"]) == (21870001, 53999199)
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_send_buddy_with_faces_and_chinese():
    request = protocol.build_send_buddy(
        2440652742, ["hello 你好", messages.Face(14), "\n"], msg_id=1, **SESSION)
    assert content_of(request) == [
        "hello 你好", ["face", 14], "\n",
        ["font", {"name": "宋体", "size": 10, "style": [0, 0, 0], "color": "000000"}]]
    assert request.data.isascii()


def test_build_send_group():
    request = protocol.build_send_group(2559225925, "hi all", msg_id=21870002, **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_qun_msg2", protocol.D_REFERER3,
                protocol.D_ORIGIN)
    assert [key for key, _ in r_field(request)] == [
        "group_uin", "content", "msg_id", "clientid", "psessionid"]
    assert dict(r_field(request))["group_uin"] == 2559225925
    assert content_of(request)[0] == "hi all"
    assert form(request)[1:] == [("psessionid", PSESSIONID), ("clientid", "53999199")]


def test_build_send_discussion_sends_did_as_a_string():
    request = protocol.build_send_discussion(2006892653, "x", msg_id=21870004, **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_discu_msg2", protocol.D_REFERER,
                protocol.D_ORIGIN)
    assert r_field(request)[0] == ("did", "2006892653")
    assert form(request)[1:] == [("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_c2c_sig():
    assert_get(protocol.build_c2c_sig(2559225925, 3043560234, service_type=0, t=5,
                                      **SESSION),
               "http://d.web2.qq.com/channel/get_c2cmsg_sig2?id=2559225925&to_uin=3043560234"
               "&service_type=0&clientid=53999199&psessionid=%s&t=5" % PSESSIONID,
               protocol.D_REFERER3)


def test_build_send_session():
    request = protocol.build_send_session(3043560234, "hello", group_sig="b839", msg_id=3,
                                          service_type=1, **SESSION)
    assert_post(request, "http://d.web2.qq.com/channel/send_sess_msg2", protocol.D_REFERER3,
                protocol.D_ORIGIN)
    r = r_field(request)
    assert [key for key, _ in r] == ["to", "group_sig", "face", "content", "msg_id",
                                     "service_type", "clientid", "psessionid"]
    assert (dict(r)["group_sig"], dict(r)["service_type"]) == ("b839", 1)


def test_build_change_status():
    assert_get(protocol.build_change_status("away", t=9, **SESSION),
               "http://d.web2.qq.com/channel/change_status2?newstatus=away&clientid=53999199"
               "&psessionid=%s&t=9" % PSESSIONID, protocol.D_REFERER)
    with pytest.raises(ValueError, match="unknown status"):
        protocol.build_change_status("offline!", t=9, **SESSION)


def test_build_logout():
    assert_get(protocol.build_logout(t=9, **SESSION),
               "http://d.web2.qq.com/channel/logout2?ids=&clientid=53999199&psessionid=%s&t=9"
               % PSESSIONID, protocol.D_REFERER)


def test_build_friend_request_answers():
    request = protocol.build_allow_and_add(379450326, vfwebqq=VFWEBQQ, markname="379450326")
    assert_post(request, "http://s.web2.qq.com/api/allow_and_add2", protocol.S_REFERER3,
                protocol.S_ORIGIN)
    assert r_field(request) == [("account", 379450326), ("gid", 0), ("mname", "379450326"),
                                ("vfwebqq", VFWEBQQ)]
    request = protocol.build_allow_added_request(379450326, vfwebqq=VFWEBQQ)
    assert request.full_url == "http://s.web2.qq.com/api/allow_added_request2"
    assert r_field(request) == [("account", 379450326), ("vfwebqq", VFWEBQQ)]
    request = protocol.build_deny_added_request(379450326, vfwebqq=VFWEBQQ, reason="no")
    assert request.full_url == "http://s.web2.qq.com/api/deny_added_request2"
    assert r_field(request) == [("account", 379450326), ("msg", "no"), ("vfwebqq", VFWEBQQ)]


def all_builders():
    """One call of every builder."""
    return [
        protocol.build_login_page(),
        protocol.build_check(1, 0.5),
        protocol.build_check(1, 0.5, era=protocol.Era.B, login_sig="s"),
        protocol.build_captcha(1, 0.5),
        protocol.build_login(1, "P", "!PTH"),
        protocol.build_login(1, "P", "!PTH", era=protocol.Era.B, login_sig="s"),
        protocol.build_check_sig("http://ptlogin4.web2.qq.com/check_sig?x=1"),
        protocol.build_login2(PTWEBQQ, clientid=1),
        protocol.build_friends(vfwebqq=VFWEBQQ),
        protocol.build_groups(vfwebqq=VFWEBQQ),
        protocol.build_group_info(1, vfwebqq=VFWEBQQ, t=1),
        protocol.build_discussions(vfwebqq=VFWEBQQ, t=1, **SESSION),
        protocol.build_discussion_info(1, vfwebqq=VFWEBQQ, t=1, **SESSION),
        protocol.build_friend_uin(1, vfwebqq=VFWEBQQ, t=1),
        protocol.build_online_buddies(t=1, **SESSION),
        protocol.build_poll(**SESSION),
        protocol.build_heartbeat(rc=1, t=1),
        protocol.build_send_buddy(1, "x", msg_id=1, **SESSION),
        protocol.build_send_group(1, "x", msg_id=1, **SESSION),
        protocol.build_send_discussion(1, "x", msg_id=1, **SESSION),
        protocol.build_c2c_sig(1, 2, service_type=0, t=1, **SESSION),
        protocol.build_send_session(1, "x", group_sig="s", msg_id=1, **SESSION),
        protocol.build_change_status("online", t=1, **SESSION),
        protocol.build_logout(t=1, **SESSION),
        protocol.build_allow_and_add(1, vfwebqq=VFWEBQQ),
        protocol.build_allow_added_request(1, vfwebqq=VFWEBQQ),
        protocol.build_deny_added_request(1, vfwebqq=VFWEBQQ),
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


# --- login parsers -----------------------------------------------------------------------

CHECK_0 = b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');"
CHECK_1 = (b"ptui_checkVC('1','9ed32e3f644d968809e8cbeaaf2cce42de62dfee12c14b74',"
           b"'\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');")


def test_parse_check_without_captcha():
    result = protocol.parse_check(CHECK_0)
    assert result == protocol.CheckResult(captcha_required=False, code="!PTH",
                                          uin_bytes=UIN_BYTES)
    assert result.qq == 1685359365
    assert protocol.encrypt_password("password", result.uin_bytes, result.code) == (
        "8B861F6C749FD12FA8D03A0B1BB3A414")


def test_parse_check_with_captcha():
    result = protocol.parse_check(CHECK_1)
    assert result.captcha_required
    assert result.code == "9ed32e3f644d968809e8cbeaaf2cce42de62dfee12c14b74"
    assert result.uin_bytes == UIN_BYTES


@pytest.mark.parametrize("body", [
    CHECK_0 + b"\r\n",
    b"ptui_checkVC('0','!PTH', '\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');",  # LQ's spacing
    b"  ptui_checkVC( '0' , '!PTH' , '\\x00\\x00\\x00\\x00\\x64\\x74\\x8B\\x05' ) ;\n",
    b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05')",
    b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05','ptvf','0');",
])
def test_parse_check_is_lenient_on_spacing_and_later_arguments(body):
    assert protocol.parse_check(body).uin_bytes == UIN_BYTES


@pytest.mark.parametrize("body, problem", [
    (b"ptui_checkVC('0','!PTH',__import__('os').system('x'));", "argument 3"),
    (b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');", "eight"),
    (b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05\\x00');", "eight"),
    (b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x0g');", "eight"),
    (b"ptui_checkVC('2','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');", "'0' or '1'"),
    (b"ptui_checkVC('0','','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');", "empty"),
    (b"ptui_checkVC('0','!PTH');", "2 arguments"),
    (b'ptui_checkVC("0","!PTH","\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05");', "argument 1"),
    (b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');alert(1);",
     "expected ','"),
    (b"ptuiCB('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');", "ptui_checkVC"),
    (b"ptui_checkVC('0','!PTH','\\x00\\x00", "ptui_checkVC"),
    (b"ptui_checkVC('0,'!PTH');", "expected ','"),
    (b"", "ptui_checkVC"),
    (b"<html>502 Bad Gateway</html>", "ptui_checkVC"),
    (b"ptui_checkVC('0','\xff','x');", "UTF-8"),
])
def test_parse_check_refuses_anything_else(body, problem):
    with pytest.raises(protocol.MalformedReply, match=re.escape(problem)) as caught:
        protocol.parse_check(body)
    assert caught.value.endpoint == "check"
    assert len(caught.value.excerpt) <= 80


LOGIN_OK_A = "ptuiCB('0','0','http://www.qq.com','0','登录成功！', 'pual');".encode()
CHECK_SIG = ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login"
             "&nodirect=0&ptsig=KNTchh0YK-7DRnUFau5U8OQtSOsNWWUB6wFjCYtKniU_&s_url=http%3A"
             "%2F%2Fweb2.qq.com%2Floginproxy.html%3Flogin2qq%3D1%26webqq_type%3D10&f_url="
             "&ptlang=2052&ptredirect=100&aid=1003903&daid=164&j_later=0&low_login_hour=0"
             "&regmaster=0")


def test_parse_login_era_a_success():
    result = protocol.parse_login(LOGIN_OK_A)
    assert result == protocol.LoginResult(url="http://www.qq.com", message="登录成功！",
                                          nick="pual")
    assert result.check_sig_url is None


def test_parse_login_era_b_success_has_a_check_sig_url():
    body = ("ptuiCB('0','0','%s','0','登录成功！', 'pual');" % CHECK_SIG).encode()
    assert protocol.parse_login(body).check_sig_url == CHECK_SIG


@pytest.mark.parametrize("body, code, subcode, page_expired", [
    ("ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '1685359365');",
     protocol.LoginCode.WRONG_PASSWORD, 0, False),
    ("ptuiCB('4','0','','0','您输入的验证码不正确，请重新输入。', '1685359365');",
     protocol.LoginCode.WRONG_VERIFYCODE, 0, False),
    ("ptuiCB('4','2','','0','页面过期，请重试。*', '1685359365');",
     protocol.LoginCode.WRONG_VERIFYCODE, 2, True),
    ("ptuiCB('7','0','','0','很遗憾，网络连接出现异常，请您稍后再试。(2220884626)', '1685359365');",
     protocol.LoginCode.NETWORK_ERROR, 0, False),
    ("ptuiCB('24','0','','0','很遗憾，网络连接出现异常，请您检查是否禁用cookies。(3972006392)',"
     " '1685359365');", protocol.LoginCode.COOKIES_MISSING, 0, False),
    ("ptuiCB('99','1','','0','?', '');", 99, 1, False),
])
def test_parse_login_failures(body, code, subcode, page_expired):
    with pytest.raises(protocol.LoginError) as caught:
        protocol.parse_login(body.encode())
    error = caught.value
    assert (error.code, error.subcode, error.page_expired) == (code, subcode, page_expired)
    assert error.message in body
    assert error.endpoint == "login"
    assert str(error).startswith("login: refused with code %d/%d" % (code, subcode))


def test_parse_login_success_pointing_at_aq_needs_unblocking():
    body = "ptuiCB('0','0','http://aq.qq.com/cn2/login_limit','0','登录成功！', 'pual');"
    with pytest.raises(protocol.UnblockRequired) as caught:
        protocol.parse_login(body.encode())
    assert caught.value.url == "http://aq.qq.com/cn2/login_limit"
    assert isinstance(caught.value, protocol.LoginError)


def test_parse_login_unescapes_js_strings():
    body = b"ptuiCB('0','0','http://www.qq.com','0','ok \\'quoted\\' \\u4F60\\x41', 'a\\\\b');"
    result = protocol.parse_login(body)
    assert (result.message, result.nick) == ("ok 'quoted' 你A", "a\\b")


@pytest.mark.parametrize("body, problem", [
    (b"ptuiCB('x','0','','0','m', 'n');", "numbers"),
    (b"ptuiCB('0','0','','0','m');", "5 arguments"),
    (b"ptuiCB(0,'0','','0','m', 'n');", "argument 1"),
    (b"ptui_checkVC('0','0','','0','m', 'n');", "ptuiCB"),
    (b"ptuiCB('\xd9\xa3','0','','0','m', 'n');", "numbers"),  # an Arabic-Indic digit
])
def test_parse_login_refuses_malformed_callbacks(body, problem):
    with pytest.raises(protocol.MalformedReply, match=re.escape(problem)):
        protocol.parse_login(body)


LOGIN_PAGE = (b'<html><head><script type="text/javascript">\nvar g_appid=1003903;\n'
              b'var g_login_sig=encodeURIComponent("PpbBnX213jzzSH8*xXyySm9qq1jAnP2uo1fXkGaC5t'
              b'0ZDaxE5MzSR59qh1EhmjqA");\n</script></head></html>')


def test_parse_login_sig():
    assert protocol.parse_login_sig(LOGIN_PAGE) == (
        "PpbBnX213jzzSH8*xXyySm9qq1jAnP2uo1fXkGaC5t0ZDaxE5MzSR59qh1EhmjqA")


@pytest.mark.parametrize("body, problem", [
    (b"<html>no sig here</html>", "no g_login_sig"),
    (b'var g_login_sig=encodeURIComponent("");', "unexpected characters"),
    (b'var g_login_sig=encodeURIComponent("a b<");', "unexpected characters"),
])
def test_parse_login_sig_refuses_pages_without_one(body, problem):
    with pytest.raises(protocol.MalformedReply, match=problem):
        protocol.parse_login_sig(body)


LOGIN2 = (
    b'{"retcode":0,"result":{"uin":1685359365,"cip":3673277226,"index":1075,"port":43332,'
    b'"status":"online","vfwebqq":"' + VFWEBQQ.encode() + b'","psessionid":"'
    + PSESSIONID.encode() + b'","user_state":0,"f":0}}')


def test_parse_login2():
    assert protocol.parse_login2(LOGIN2) == protocol.Login2Result(
        qq=1685359365, vfwebqq=VFWEBQQ, psessionid=PSESSIONID, status="online",
        cip=3673277226, index=1075, port=43332)


@pytest.mark.parametrize("body, retcode", [
    (b'{"retcode":103,"errmsg":""}', protocol.Retcode.LOGIN_EXPIRED),
    (b'{"retcode":106}', protocol.Retcode.NOT_WHITELISTED),
    (b'{"retcode":111}', protocol.Retcode.BLACKLISTED),
    (b'{"retcode":112}', protocol.Retcode.OVERLOADED),
    (b'{"retcode":100000}', protocol.Retcode.VFWEBQQ_EXPIRED),
    (b'{"retcode":100002}', protocol.Retcode.CREDENTIALS_EXPIRED),
    (b'{"retcode":7777}', 7777),
])
def test_parse_login2_retcodes(body, retcode):
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_login2(body)
    assert caught.value.retcode == retcode
    assert type(caught.value.retcode) is type(retcode)
    assert caught.value.endpoint == "login2"


def test_retcode_error_message_names_the_code():
    error = protocol.RetcodeError("login2", 103, "你的登录已失效，请重新登录。")
    assert str(error) == "login2: retcode 103 (LOGIN_EXPIRED): 你的登录已失效，请重新登录。"
    assert str(protocol.RetcodeError("poll2", 114)) == "poll2: retcode 114 (unnamed)"


@pytest.mark.parametrize("body, problem", [
    (b'{"retcode":0}', "retcode 0 without a result"),
    (b'{"retcode":0,"result":{"uin":1685359365,"psessionid":"ab"}}', "missing key 'vfwebqq'"),
    (b'{"retcode":0,"result":{"uin":1685359365,"vfwebqq":"","psessionid":"ab"}}',
     "result.vfwebqq is not a non-empty string"),
    (b'{"retcode":0,"result":{"uin":true,"vfwebqq":"a","psessionid":"b"}}',
     "result.uin is not an integer"),
    (b'{"retcode":0,"result":{"uin":1.5,"vfwebqq":"a","psessionid":"b"}}',
     "result.uin is not an integer"),
    (b'{"retcode":0,"result":[]}', "result is not an object"),
    (b'{"retcode":"0","result":{}}', "no integer retcode"),
    (b'{"retcode":0,"result":{}', "not JSON"),
    (b'<html><body>502</body></html>', "not JSON"),
])
def test_parse_login2_malformed(body, problem):
    with pytest.raises(protocol.MalformedReply, match=re.escape(problem)):
        protocol.parse_login2(body)


# --- lists -------------------------------------------------------------------------------

FRIENDS = b"""{"retcode":0,"result":{
  "friends":[{"flag":0,"uin":2440652742,"categories":0},{"flag":8,"uin":3291940000,"categories":1}],
  "marknames":[{"uin":3291940000,"markname":"Bob (work)","type":0}],
  "categories":[{"index":1,"sort":1,"name":"Colleagues"}],
  "vipinfo":[{"vip_level":0,"u":2440652742,"is_vip":0},{"vip_level":3,"u":3291940000,"is_vip":1}],
  "info":[{"face":0,"flag":25707010,"nick":"Alice","uin":2440652742},{"face":294,"flag":8389126,"nick":"Bob","uin":3291940000}]}}"""


def test_parse_friends():
    result = protocol.parse_friends(FRIENDS)
    assert result.friends == (
        protocol.Friend(uin=2440652742, nick="Alice", markname=None, category=0, face=0,
                        vip_level=0),
        protocol.Friend(uin=3291940000, nick="Bob", markname="Bob (work)", category=1,
                        face=294, vip_level=3))
    assert result.categories == (protocol.Category(index=1, sort=1, name="Colleagues"),)
    assert [f.display_name for f in result.friends] == ["Alice", "Bob (work)"]


def test_parse_friends_minimal_and_errors():
    result = protocol.parse_friends(b'{"retcode":0,"result":{"friends":[{"uin":1}]}}')
    assert result.friends[0].nick == "" and result.categories == ()
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_friends(b'{"retcode":50,"errmsg":""}')
    assert caught.value.retcode is protocol.Retcode.HASH_WRONG
    with pytest.raises(protocol.MalformedReply, match="missing key 'friends'"):
        protocol.parse_friends(b'{"retcode":0,"result":{"info":[]}}')
    with pytest.raises(protocol.MalformedReply, match=re.escape("result.friends[1] is not")):
        protocol.parse_friends(b'{"retcode":0,"result":{"friends":[{"uin":1},7]}}')


GROUPS = (b'{"retcode":0,"result":{"gmasklist":[{"gid":1000,"mask":0},{"gid":2559225925,'
          b'"mask":0}],"gnamelist":[{"flag":1090519041,"name":"\\u6D4B\\u8BD5\\u7FA4",'
          b'"gid":2559225925,"code":3483368056}],"gmarklist":[{"uin":2559225925,'
          b'"markname":"test group"}]}}')


def test_parse_groups():
    result = protocol.parse_groups(GROUPS)
    group = protocol.Group(gid=2559225925, code=3483368056, name="测试群",
                           markname="test group", mask=0)
    assert result.groups == (group,)
    assert result.by_code(3483368056) == group
    assert result.by_code(1) is None


def test_parse_groups_accepts_raw_utf8_and_empty_lists():
    body = '{"retcode":0,"result":{"gnamelist":[{"name":"测试群","gid":1,"code":2}]}}'
    assert protocol.parse_groups(body.encode()).groups[0].name == "测试群"
    assert protocol.parse_groups(
        b'{"retcode":0,"result":{"gmasklist":[],"gnamelist":[],"gmarklist":[]}}'
    ).groups == ()
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_groups(b'{"retcode":100003}')
    assert caught.value.retcode is protocol.Retcode.MALFORMED_REQUEST


GROUP_INFO = b"""{"retcode":0,"result":{
  "stats":[{"client_type":1,"uin":2440652742,"stat":10},{"client_type":41,"uin":1685359365,"stat":10}],
  "minfo":[{"nick":"Alice","province":"\\u4E0A\\u6D77","gender":"male","uin":2440652742,"country":"\\u4E2D\\u56FD","city":"\\u6D66\\u4E1C\\u65B0\\u533A"},
           {"nick":"pual","province":"","gender":"unknown","uin":1685359365,"country":"","city":""}],
  "ginfo":{"face":0,"memo":"","class":10048,"fingermemo":"","code":3483368056,"createtime":1388307595,"flag":1090519041,"level":0,"name":"\\u6D4B\\u8BD5\\u7FA4","gid":2559225925,"owner":1685359365,
           "members":[{"muin":2440652742,"mflag":21},{"muin":1685359365,"mflag":0},{"muin":5,"mflag":0}],"option":1},
  "cards":[{"muin":2440652742,"card":"Alice@work"}],
  "vipinfo":[{"vip_level":0,"u":2440652742,"is_vip":0},{"vip_level":0,"u":1685359365,"is_vip":0}]}}"""


def test_parse_group_info():
    info = protocol.parse_group_info(GROUP_INFO)
    assert (info.gid, info.code, info.name, info.owner_uin, info.createtime) == (
        2559225925, 3483368056, "测试群", 1685359365, 1388307595)
    alice = info.member(2440652742)
    assert alice == protocol.GroupMember(uin=2440652742, nick="Alice", card="Alice@work",
                                         is_admin=True, status="online", client_type=1,
                                         gender="male")
    assert alice.display_name == "Alice@work"
    assert info.member(1685359365).display_name == "pual"
    assert info.member(5) == protocol.GroupMember(uin=5, nick="", card=None, is_admin=False,
                                                  status="offline", client_type=None,
                                                  gender="unknown")
    assert info.member(6) is None


def test_parse_group_info_errors():
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_group_info(b'{"retcode":100001}')
    assert caught.value.retcode is protocol.Retcode.BAD_GROUP_CODE
    with pytest.raises(protocol.MalformedReply, match="result.ginfo is not an object"):
        protocol.parse_group_info(b'{"retcode":0,"result":{"minfo":[]}}')


DISCUSSIONS = (b'{"retcode":0,"result":{"dnamelist":[{"did":2006892653,"name":"good day"}],'
               b'"dmasklist":[{"did":1000,"mask":0}]}}')
DISCUSSION_INFO = b"""{"retcode":0,"result":{
  "info":{"did":2006892653,"discu_owner":2440652742,"discu_name":"good day","info_seq":2,
          "mem_list":[{"mem_uin":2440652742,"ruin":123774072},{"mem_uin":1685359365,"ruin":1685359365},{"mem_uin":7,"ruin":8}]},
  "mem_status":[{"uin":2440652742,"status":"online","client_type":1},{"uin":1685359365,"status":"online","client_type":41}],
  "mem_info":[{"uin":2440652742,"nick":"Alice"},{"uin":1685359365,"nick":"pual"}]}}"""


def test_parse_discussions():
    assert protocol.parse_discussions(DISCUSSIONS) == protocol.DiscussionList(
        (protocol.Discussion(did=2006892653, name="good day", mask=0),))


def test_parse_discussion_info():
    info = protocol.parse_discussion_info(DISCUSSION_INFO)
    assert (info.did, info.name, info.owner_uin) == (2006892653, "good day", 2440652742)
    assert info.member(2440652742) == protocol.DiscussionMember(
        uin=2440652742, qq=123774072, nick="Alice", status="online", client_type=1)
    assert info.member(7) == protocol.DiscussionMember(uin=7, qq=8, nick="",
                                                       status="offline", client_type=None)


def test_parse_friend_uin():
    body = b'{"retcode":0,"result":{"uiuin":"","account":2664046919,"uin":721281587}}'
    assert protocol.parse_friend_uin(body) == protocol.QQLookup(uin=721281587, qq=2664046919)
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_friend_uin(b'{"retcode":99999}')
    assert caught.value.retcode is protocol.Retcode.LOOKUP_REFUSED


def test_parse_online_buddies():
    body = b'{"retcode":0,"result":[{"uin":2440652742,"status":"online","client_type":1}]}'
    assert protocol.parse_online_buddies(body) == (
        protocol.OnlineBuddy(uin=2440652742, status="online", client_type=1),)
    with pytest.raises(protocol.MalformedReply, match="result is not an array"):
        protocol.parse_online_buddies(b'{"retcode":0,"result":{}}')


def test_parse_c2c_sig():
    body = (b'{"retcode":0,"result":{"type":0,"value":"b83900ad33607db576d106ffba5ad4e2b8b1cad'
            b'd660d059efdde23781b3b0c858b5a0452acd28d421af7867d606e4593","flags":{"text":1,'
            b'"pic":1,"file":1,"audio":1,"video":0}}}')
    sig = protocol.parse_c2c_sig(body)
    assert sig.group_sig.startswith("b83900ad") and sig.group_sig.endswith("4593")
    assert sig.media == {"text", "pic", "file", "audio"}
    with pytest.raises(protocol.MalformedReply, match="missing key 'value'"):
        protocol.parse_c2c_sig(b'{"retcode":0,"result":{"type":0}}')


# --- acknowledgements --------------------------------------------------------------------

def test_parse_send():
    assert protocol.parse_send(b'{"retcode":0,"result":"ok"}') == protocol.SendResult("ok")
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_send(b'{"retcode":108,"errmsg":""}')
    assert caught.value.retcode is protocol.Retcode.SESSION_GONE


@pytest.mark.parametrize("parse", [protocol.parse_heartbeat, protocol.parse_change_status,
                                   protocol.parse_logout,
                                   protocol.parse_friend_request_reply])
def test_acknowledgements(parse):
    assert parse(b'{"retcode":0,"result":"ok"}') == protocol.Ack("ok")
    with pytest.raises(protocol.RetcodeError):
        parse(b'{"retcode":103,"errmsg":""}')


def test_heartbeat_and_friend_request_results_may_be_objects():
    assert protocol.parse_heartbeat(b'{"retcode":0,"result":{}}').result == {}
    ack = protocol.parse_friend_request_reply(
        b'{"retcode":0,"result":{"result1":0,"account":379450326,"tuin":3863325290,"stat":10}}')
    assert ack.result["tuin"] == 3863325290


# --- poll --------------------------------------------------------------------------------

# The items of PROTOCOL.md §4, as the server sends them (newest first does not matter here).
POLL_ITEMS = [
    r'''{"poll_type":"message","value":{"msg_id":5597,"from_uin":2440652742,"to_uin":1685359365,"msg_id2":900140,"msg_type":9,"reply_ip":176882141,"time":1366948800,
 "content":[["font",{"size":10,"color":"808080","style":[0,0,0],"name":"\u65B0\u5B8B\u4F53"}],"123",["face",1],"2343",["face",3]," "]}}''',
    r'''{"poll_type":"group_message","value":{"msg_id":13893,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":873821,"msg_type":43,"reply_ip":176621995,"group_code":3483368056,"send_uin":2440652742,"seq":5761,"time":1366948800,"info_seq":346167134,
 "content":[["font",{"size":10,"color":"808080","style":[0,0,0],"name":"\u65B0\u5B8B\u4F53"}],"\u6211\u4E5F\u662F "]}}''',
    r'''{"poll_type":"discu_message","value":{"msg_id":18803,"from_uin":10000,"to_uin":1685359365,"msg_id2":175418,"msg_type":42,"reply_ip":176488598,"did":2006892653,"send_uin":2440652742,"seq":8,"time":1366948800,"info_seq":2,
 "content":[["font",{"size":13,"color":"004faa","style":[0,0,0],"name":"STKaiti"}],"world "]}}''',
    r'''{"poll_type":"sess_message","value":{"msg_id":7522,"from_uin":3043560234,"to_uin":1685359365,"msg_id2":369799,"msg_type":140,"reply_ip":176882136,"time":1366948800,"id":2559225925,"ruin":85379868,"service_type":0,
 "flags":{"text":1,"pic":1,"file":1,"audio":1,"video":1},
 "content":[["font",{"size":8,"color":"000000","style":[0,0,0],"name":"Tahoma"}],"test "]}}''',
    r'''{"poll_type":"kick_message","value":{"msg_id":53125,"from_uin":10000,"to_uin":1685359365,"msg_id2":53126,"msg_type":48,"reply_ip":0,"show_reason":1,
 "reason":"\u60A8\u7684\u5E10\u53F7\u5728\u53E6\u4E00\u5730\u70B9\u767B\u5F55\uFF0C\u60A8\u5DF2\u88AB\u8FEB\u4E0B\u7EBF\u3002\u5982\u6709\u7591\u95EE\uFF0C\u8BF7\u767B\u5F55 safe.qq.com \u4E86\u89E3\u66F4\u591A\u3002"}}''',
    r'''{"poll_type":"buddies_status_change","value":{"uin":2440652742,"status":"online","client_type":1}}''',
    r'''{"poll_type":"input_notify","value":{"msg_id":42953,"from_uin":2440652742,"to_uin":1685359365,"msg_id2":1813669024,"msg_type":121,"reply_ip":4294967295}}''',
    r'''{"poll_type":"shake_message","value":{"msg_id":568,"from_uin":2440652742,"to_uin":1685359365,"msg_id2":405490,"msg_type":9,"reply_ip":176498151}}''',
    r'''{"poll_type":"system_message","value":{"seq":34653,"type":"verify_required","uiuin":"","from_uin":3863325290,"account":379450326,"msg":"please add me","allow":1,"stat":10,"client_type":1}}''',
    r'''{"poll_type":"system_message","value":{"seq":49219,"type":"added_buddy_sig","uiuin":"","from_uin":2388435354,"account":569398403,"sig":"<binary-ish string>","stat":20}}''',
    r'''{"poll_type":"system_message","value":{"seq":37525,"type":"verify_pass","from_uin":431533686,"stat":20}}''',
    r'''{"poll_type":"system_message","value":{"seq":37526,"type":"verify_pass_add","from_uin":431533686,"group_id":0,"stat":20}}''',
    r'''{"poll_type":"sys_g_msg","value":{"msg_id":5940,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":979390,"msg_type":33,"reply_ip":176498394,"type":"group_join","gcode":3483368056,"t_gcode":346167134,"op_type":3,"new_member":2440652742,"t_new_member":"","admin_uin":1448380605,"admin_nick":"\u521B\u5EFA\u8005"}}''',
    r'''{"poll_type":"sys_g_msg","value":{"msg_id":51488,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":180256,"msg_type":34,"reply_ip":176882139,"type":"group_leave","gcode":3483368056,"t_gcode":346167134,"op_type":2,"old_member":574849996,"t_old_member":""}}''',
    r'''{"poll_type":"sys_g_msg","value":{"msg_id":10899,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":693883,"msg_type":35,"reply_ip":176752016,"type":"group_request_join","gcode":3483368056,"t_gcode":346167134,"request_uin":2297680537,"t_request_uin":"","msg":""}}''',
    r'''{"poll_type":"sys_g_msg","value":{"msg_id":29407,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":28428,"msg_type":36,"reply_ip":176498075,"type":"group_request_join_agree","gcode":3483368056,"t_gcode":346167134,"admin_uin":4005533729,"msg":""}}''',
    r'''{"poll_type":"sys_g_msg","value":{"msg_id":1253,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":93655,"msg_type":37,"reply_ip":176622059,"type":"group_request_join_deny","gcode":3483368056,"t_gcode":346167134,"admin_uin":4005533729,"msg":"123"}}''',
    r'''{"poll_type":"sys_g_msg","value":{"msg_id":39194,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":539171,"msg_type":38,"reply_ip":176752410,"type":"group_create","gcode":3483368056,"t_gcode":346167134,"owner_uin":1685359365}}''',
    r'''{"poll_type":"buddylist_change","value":{"added_friends":[{"groupid":0,"uin":1754314370}],"removed_friends":[]}}''',
    r'''{"poll_type":"file_message","value":{"msg_id":6299,"mode":"recv","from_uin":2440652742,"to_uin":1685359365,"msg_id2":559004,"msg_type":9,"reply_ip":176621916,"type":101,"name":"test.txt","time":1364865210,"session_id":19823,"inet_ip":2051695055}}''',
    r'''{"poll_type":"file_message","value":{"msg_id":6301,"mode":"refuse","from_uin":2440652742,"to_uin":1685359365,"msg_id2":615845,"reply_ip":176621916,"type":101,"session_id":19823,"cancel_type":1,"time":1364865264}}''',
    r'''{"poll_type":"push_offfile","value":{"msg_id":10438,"rkey":"2c09bbdb","ip":"101.226.77.168","port":80,"from_uin":2440652742,"size":235,"name":"test2.py","expire_time":1365470120,"time":1364865321}}''',
    r'''{"poll_type":"notify_offfile","value":{"msg_id":9948,"from_uin":2440652742,"to_uin":1685359365,"msg_id2":460591,"msg_type":9,"reply_ip":178847911,"action":2,"filename":"12.jpg","filesize":137972}}''',
    r'''{"poll_type":"filesrv_transfer","value":{"file_count":1,"lc_id":19823,"now":1364865300,"operation":1,"type":1,"file_infos":[{"file_name":"test.txt","file_status":50,"pro_id":1}]}}''',
    r'''{"poll_type":"group_web_message","value":{"msg_id":11746,"from_uin":2559225925,"to_uin":1685359365,"msg_id2":556231,"msg_type":45,"reply_ip":176752015,"group_code":3483368056,"group_type":1,"ver":1,"send_uin":1007665318,"xml":"<?xml version=\"1.0\" encoding=\"utf-8\"?><d><n t=\"h\" u=\"979270988\" i=\"6\" s=\"x\"/></d>"}}''',
    r'''{"poll_type":"tips","value":{"msg_id":1,"from_uin":10000,"to_uin":1685359365,"msg_id2":2,"msg_type":3,"reply_ip":0,"content":"a notice"}}''',
    r'''{"poll_type":"av_request","value":{"from_uin":2440652742,"msg_id":3}}''',
    r'''{"poll_type":"brand_new_2014_thing","value":{"x":[1,2]}}''',
]


def poll_body(items):
    return ('{"retcode":0,"result":[%s]}' % ",".join(items)).encode("utf-8")


def poll_events(items):
    result = protocol.parse_poll(poll_body(items))
    assert result.outcome is protocol.PollOutcome.MESSAGES
    assert result.retcode is protocol.Retcode.OK
    return result.events


def test_parse_poll_every_documented_item():
    events = poll_events(POLL_ITEMS)
    assert len(events) == len(POLL_ITEMS)
    # newest first on the wire, arrival order in the result
    assert isinstance(events[-1], messages.BuddyMessage)
    assert isinstance(events[0], messages.UnknownEvent)
    assert not any(isinstance(event, messages.UnknownEvent) for event in events[1:])


def test_parse_poll_buddy_message():
    (event,) = poll_events(POLL_ITEMS[0:1])
    assert (event.msg_id, event.msg_id2, event.from_uin, event.time) == (
        5597, 900140, 2440652742, 1366948800)
    assert event.text == "123[face:1]2343[face:3]"
    assert event.content.font == messages.Font(name="新宋体", size=10, color="808080")
    assert event.content.raw[1] == "123"


def test_parse_poll_group_message():
    (event,) = poll_events(POLL_ITEMS[1:2])
    assert event == messages.GroupMessage(
        msg_id=13893, msg_id2=873821, gid=2559225925, code=3483368056, send_uin=2440652742,
        seq=5761, group_number=346167134, time=1366948800, content=event.content)
    assert event.text == "我也是"


def test_parse_poll_discussion_and_session_messages():
    discussion, session = poll_events(POLL_ITEMS[3:1:-1])
    assert (discussion.did, discussion.send_uin, discussion.seq, discussion.text) == (
        2006892653, 2440652742, 8, "world")
    assert (session.from_uin, session.via_id, session.service_type, session.qq,
            session.text) == (3043560234, 2559225925, 0, 85379868, "test")


def test_parse_poll_kick_status_typing_shake():
    kick, status, typing, shake = poll_events(POLL_ITEMS[7:3:-1])
    assert kick == messages.Kick(
        msg_id=53125, reason="您的帐号在另一地点登录，您已被迫下线。如有疑问，请登录 safe.qq.com 了解更多。")
    assert status == messages.StatusChange(uin=2440652742, status="online", client_type=1)
    assert typing == messages.InputNotify(msg_id=42953, msg_id2=1813669024,
                                          from_uin=2440652742)
    assert shake == messages.Shake(msg_id=568, msg_id2=405490, from_uin=2440652742)


def test_parse_poll_kick_without_reason():
    item = ('{"poll_type":"kick_message","value":{"msg_id":1,"from_uin":10000,"msg_id2":2,'
            '"show_reason":0,"reason":"hidden","way":"poll"}}')
    assert poll_events([item]) == (messages.Kick(msg_id=1, reason=""),)


def test_parse_poll_friend_request_workflow():
    events = poll_events(POLL_ITEMS[11:7:-1])
    assert events == (
        messages.FriendRequest(seq=34653, from_uin=3863325290, qq=379450326,
                               message="please add me"),
        messages.FriendAdded(seq=49219, from_uin=2388435354, qq=569398403),
        messages.FriendRequestAccepted(seq=37525, from_uin=431533686, category=None),
        messages.FriendRequestAccepted(seq=37526, from_uin=431533686, category=0))
    unknown = ('{"poll_type":"system_message","value":{"seq":1,"type":"new_kind",'
               '"from_uin":2}}')
    (event,) = poll_events([unknown])
    assert event == messages.UnknownEvent("system_message",
                                          {"seq": 1, "type": "new_kind", "from_uin": 2})


def test_parse_poll_group_system_events():
    join, leave, request, agree, deny, create = poll_events(POLL_ITEMS[17:11:-1])
    assert join == messages.GroupSystemEvent(
        msg_id=5940, kind="group_join", gid=2559225925, code=3483368056,
        group_number=346167134, member_uin=2440652742, admin_uin=1448380605, op_type=3,
        message="")
    assert (leave.kind, leave.member_uin, leave.op_type, leave.admin_uin) == (
        "group_leave", 574849996, 2, None)
    assert (request.kind, request.member_uin) == ("group_request_join", 2297680537)
    assert (agree.kind, agree.admin_uin, agree.member_uin) == (
        "group_request_join_agree", 4005533729, None)
    assert (deny.kind, deny.message) == ("group_request_join_deny", "123")
    assert (create.kind, create.member_uin) == ("group_create", 1685359365)


def test_parse_poll_buddylist_and_file_events():
    change, recv, refuse, push, notify, transfer = poll_events(POLL_ITEMS[23:17:-1])
    assert change == messages.BuddyListChange(added=((1754314370, 0),), removed=())
    assert (recv.kind, recv.mode, recv.name, recv.session_id, recv.from_uin) == (
        "file_message", "recv", "test.txt", 19823, 2440652742)
    assert (refuse.mode, refuse.name, refuse.value["cancel_type"]) == ("refuse", None, 1)
    assert (push.kind, push.name, push.value["size"]) == ("push_offfile", "test2.py", 235)
    assert (notify.kind, notify.name) == ("notify_offfile", "12.jpg")
    assert (transfer.kind, transfer.from_uin, transfer.session_id, transfer.name) == (
        "filesrv_transfer", None, 19823, None)


def test_parse_poll_group_web_tips_av_and_unknown():
    unknown, av, tips, web = poll_events(POLL_ITEMS[24:])
    assert (web.gid, web.code, web.send_uin) == (2559225925, 3483368056, 1007665318)
    assert web.xml.startswith('<?xml version="1.0"')
    assert (tips.from_uin, tips.text) == (10000, "a notice")
    assert av.from_uin == 2440652742
    assert unknown == messages.UnknownEvent("brand_new_2014_thing", {"x": [1, 2]})


def test_parse_poll_accepts_raw_utf8_and_64_bit_ids():
    item = ('{"poll_type":"message","value":{"msg_id":1,"from_uin":18446744073709551615,'
            '"msg_id2":2,"content":["\\u4F60\\u597d 世界"]}}')
    (event,) = poll_events([item])
    assert (event.from_uin, event.text, event.time) == (2 ** 64 - 1, "你好 世界", None)


def test_parse_poll_empty_result():
    assert protocol.parse_poll(b'{"retcode":0,"result":[]}').events == ()


@pytest.mark.parametrize("body, outcome", [
    (b'{"retcode":102,"errmsg":""}', protocol.PollOutcome.RETRY),
    (b'{"retcode":0,"result":"ok"}', protocol.PollOutcome.RETRY),
    (b'{"retcode":120,"t":"0"}', protocol.PollOutcome.RELINK),
    (b'{"retcode":121,"t":"0"}', protocol.PollOutcome.RELINK),
    (b'{"retcode":100}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":103,"errmsg":""}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":108,"errmsg":""}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":122,"errmsg":"wrong web client3"}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":100000}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":100002}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":100006}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":100101}', protocol.PollOutcome.RELOGIN),
    (b'{"retcode":109,"errmsg":""}', protocol.PollOutcome.LOGGED_OUT),
    (b'{"retcode":110}', protocol.PollOutcome.LOGGED_OUT),
])
def test_parse_poll_outcomes(body, outcome):
    result = protocol.parse_poll(body)
    assert result.outcome is outcome
    assert isinstance(result.retcode, protocol.Retcode)
    assert result.events == () and result.ptwebqq is None


def test_parse_poll_new_ptwebqq():
    result = protocol.parse_poll(
        b'{"retcode":116,"p":"3cbe693781c61e1e2766749cf46eb157f65a7bc156697804"}')
    assert result == protocol.PollResult(protocol.PollOutcome.NEW_PTWEBQQ,
                                         protocol.Retcode.NEW_PTWEBQQ,
                                         ptwebqq="3cbe693781c61e1e2766749cf46eb157f65a7bc156697804")
    with pytest.raises(protocol.MalformedReply, match="missing key 'p'"):
        protocol.parse_poll(b'{"retcode":116}')


@pytest.mark.parametrize("retcode", [114, 100001, 1])
def test_parse_poll_other_retcodes_are_errors(retcode):
    with pytest.raises(protocol.RetcodeError) as caught:
        protocol.parse_poll(b'{"retcode":%d,"errmsg":"x"}' % retcode)
    assert (caught.value.retcode, caught.value.errmsg, caught.value.endpoint) == (
        retcode, "x", "poll2")


@pytest.mark.parametrize("item, problem", [
    ('7', "result[0] is not an object"),
    ('{"value":{}}', "missing key 'poll_type' in result[0]"),
    ('{"poll_type":"message"}', "result[0].value is not an object"),
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":3}}',
     "result[0].value.content: content is not an array"),
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":"x","content":[]}}',
     "result[0].value.from_uin is not an integer"),
    ('{"poll_type":"group_message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
     '"send_uin":4,"content":[]}}', "missing key 'group_code' in result[0].value"),
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
     '"content":[["face","smile"]]}}', "malformed face piece"),
    ('{"poll_type":"buddylist_change","value":{"added_friends":[{"groupid":0}]}}',
     "missing key 'uin' in result[0].value.added_friends[0]"),
])
def test_parse_poll_malformed_items_do_not_cost_the_others(item, problem):
    good = ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
            '"to_uin":4,"time":5,"content":[["font",{"size":10,"color":"000000",'
            '"style":[0,0,0],"name":"Arial"}],"hi"]}}')
    result = protocol.parse_poll(poll_body([item, good]))
    kept, bad = result.events   # arrival order is the reverse of the list
    assert isinstance(bad, messages.MalformedEvent) and problem in bad.problem
    assert isinstance(kept, messages.BuddyMessage) and kept.content.text == "hi"


# --- every parser, every kind of garbage -------------------------------------------------

PARSERS = [protocol.parse_login_sig, protocol.parse_check, protocol.parse_login,
           protocol.parse_login2, protocol.parse_friends, protocol.parse_groups,
           protocol.parse_group_info, protocol.parse_discussions,
           protocol.parse_discussion_info, protocol.parse_friend_uin,
           protocol.parse_online_buddies, protocol.parse_poll, protocol.parse_heartbeat,
           protocol.parse_send, protocol.parse_c2c_sig, protocol.parse_change_status,
           protocol.parse_logout, protocol.parse_friend_request_reply]

GARBAGE = [b"", b" ", b"null", b"[]", b"{}", b'"ok"', b"0", b"\xff\xfe\x00", b"<html>",
           b'{"retcode":null}', b'{"retcode":true}', b'{"retcode":1.0}',
           b'{"retcode":0,"result":null}', b'{"retcode":0,"result":[null]}',
           b'{"retcode":0,"result":{"friends":"x","gnamelist":1,"ginfo":[],"info":2}}',
           b"[" * 100000, b'{"a":' * 50000, b"ptuiCB(", b"ptui_checkVC('0',",
           b"\x00" * 10, b'{"retcode":0,"result":"\\ud800"}', b"NaN",
           b'{"retcode":' + b"1" * 5000 + b"}",  # past Python's int digit limit
           poll_body(['{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
                      '"content":[%s1%s]}}' % ("[" * 900, "]" * 900)])]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda parse: parse.__name__)
def test_parsers_raise_only_protocol_errors_on_garbage(parse):
    for body in GARBAGE:
        try:
            parse(body)
        except protocol.ProtocolError:
            pass


SAMPLES = [
    (protocol.parse_login_sig, LOGIN_PAGE), (protocol.parse_check, CHECK_0),
    (protocol.parse_login, LOGIN_OK_A), (protocol.parse_login2, LOGIN2),
    (protocol.parse_friends, FRIENDS), (protocol.parse_groups, GROUPS),
    (protocol.parse_group_info, GROUP_INFO), (protocol.parse_discussions, DISCUSSIONS),
    (protocol.parse_discussion_info, DISCUSSION_INFO), (protocol.parse_poll,
                                                        poll_body(POLL_ITEMS)),
]


@pytest.mark.parametrize("parse, body", SAMPLES, ids=lambda value: getattr(
    value, "__name__", "sample"))
def test_parsers_on_every_truncation_of_their_sample(parse, body):
    parse(body)
    for end in range(len(body)):
        try:
            parse(body[:end])
        except protocol.ProtocolError:
            pass
