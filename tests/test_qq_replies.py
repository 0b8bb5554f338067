"""Tests of webqq.qq's reply parsers (login, lists, poll, acknowledgements): literal bytes
in, values out; no I/O."""
import dataclasses
import json
import re
import sqlite3

import pytest

from webqq import qq
from webqq.qq.poll import batch_order

UIN_BYTES = b"\x00\x00\x00\x00\x64\x74\x8b\x05"  # QQ 1685359365, §4.2
PSESSIONID = ("8368046764001e636f6e6e7365727665725f77656271714031302e3133332e34312e3230320000"
              "6b2900001544016e0400058b74646d0000000a4046674d4652585136496d00000028e7ce791333"
              "6ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7")
VFWEBQQ = ("e7ce7913336ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7")


# --- login parsers -----------------------------------------------------------------------

CHECK_0 = b"ptui_checkVC('0','!PTH','\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');"
CHECK_1 = (b"ptui_checkVC('1','9ed32e3f644d968809e8cbeaaf2cce42de62dfee12c14b74',"
           b"'\\x00\\x00\\x00\\x00\\x64\\x74\\x8b\\x05');")


def test_parse_check_without_captcha():
    result = qq.parse_check(CHECK_0)
    assert result == qq.CheckResult(captcha_required=False, code="!PTH",
                                    uin_bytes=UIN_BYTES)
    assert result.qq == 1685359365
    assert qq.encrypt_password("password", result.uin_bytes, result.code) == (
        "8B861F6C749FD12FA8D03A0B1BB3A414")


def test_parse_check_with_captcha():
    result = qq.parse_check(CHECK_1)
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
    assert qq.parse_check(body).uin_bytes == UIN_BYTES


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
    with pytest.raises(qq.MalformedReply, match=re.escape(problem)) as caught:
        qq.parse_check(body)
    assert caught.value.endpoint == "check"
    assert len(caught.value.excerpt) <= 80


LOGIN_OK_A = "ptuiCB('0','0','http://www.qq.com','0','登录成功！', 'pual');".encode()
CHECK_SIG = ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login"
             "&nodirect=0&ptsig=KNTchh0YK-7DRnUFau5U8OQtSOsNWWUB6wFjCYtKniU_&s_url=http%3A"
             "%2F%2Fweb2.qq.com%2Floginproxy.html%3Flogin2qq%3D1%26webqq_type%3D10&f_url="
             "&ptlang=2052&ptredirect=100&aid=1003903&daid=164&j_later=0&low_login_hour=0"
             "&regmaster=0")


def test_parse_login_era_a_success():
    result = qq.parse_login(LOGIN_OK_A)
    assert result == qq.LoginResult(url="http://www.qq.com", message="登录成功！",
                                    nick="pual")
    assert result.check_sig_url is None


def test_parse_login_era_b_success_has_a_check_sig_url():
    body = ("ptuiCB('0','0','%s','0','登录成功！', 'pual');" % CHECK_SIG).encode()
    assert qq.parse_login(body).check_sig_url == CHECK_SIG


@pytest.mark.parametrize("body, code, subcode, page_expired", [
    ("ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '1685359365');",
     qq.LoginCode.WRONG_PASSWORD, 0, False),
    ("ptuiCB('4','0','','0','您输入的验证码不正确，请重新输入。', '1685359365');",
     qq.LoginCode.WRONG_VERIFYCODE, 0, False),
    ("ptuiCB('4','2','','0','页面过期，请重试。*', '1685359365');",
     qq.LoginCode.WRONG_VERIFYCODE, 2, True),
    ("ptuiCB('7','0','','0','很遗憾，网络连接出现异常，请您稍后再试。(2220884626)', '1685359365');",
     qq.LoginCode.NETWORK_ERROR, 0, False),
    ("ptuiCB('24','0','','0','很遗憾，网络连接出现异常，请您检查是否禁用cookies。(3972006392)',"
     " '1685359365');", qq.LoginCode.COOKIES_MISSING, 0, False),
    ("ptuiCB('99','1','','0','?', '');", 99, 1, False),
])
def test_parse_login_failures(body, code, subcode, page_expired):
    with pytest.raises(qq.LoginError) as caught:
        qq.parse_login(body.encode())
    error = caught.value
    assert (error.code, error.subcode, error.page_expired) == (code, subcode, page_expired)
    assert error.message in body
    assert error.endpoint == "login"
    assert str(error).startswith("login: refused with code %d/%d" % (code, subcode))


def test_parse_login_success_pointing_at_aq_needs_unblocking():
    body = "ptuiCB('0','0','http://aq.qq.com/cn2/login_limit','0','登录成功！', 'pual');"
    with pytest.raises(qq.UnblockRequired) as caught:
        qq.parse_login(body.encode())
    assert caught.value.url == "http://aq.qq.com/cn2/login_limit"
    assert isinstance(caught.value, qq.LoginError)


def test_parse_login_unescapes_js_strings():
    body = b"ptuiCB('0','0','http://www.qq.com','0','ok \\'quoted\\' \\u4F60\\x41', 'a\\\\b');"
    result = qq.parse_login(body)
    assert (result.message, result.nick) == ("ok 'quoted' 你A", "a\\b")


@pytest.mark.parametrize("body, problem", [
    (b"ptuiCB('x','0','','0','m', 'n');", "numbers"),
    (b"ptuiCB('0','0','','0','m');", "5 arguments"),
    (b"ptuiCB(0,'0','','0','m', 'n');", "argument 1"),
    (b"ptui_checkVC('0','0','','0','m', 'n');", "ptuiCB"),
    (b"ptuiCB('\xd9\xa3','0','','0','m', 'n');", "numbers"),  # an Arabic-Indic digit
])
def test_parse_login_refuses_malformed_callbacks(body, problem):
    with pytest.raises(qq.MalformedReply, match=re.escape(problem)):
        qq.parse_login(body)


LOGIN_PAGE = (b'<html><head><script type="text/javascript">\nvar g_appid=1003903;\n'
              b'var g_login_sig=encodeURIComponent("PpbBnX213jzzSH8*xXyySm9qq1jAnP2uo1fXkGaC5t'
              b'0ZDaxE5MzSR59qh1EhmjqA");\n</script></head></html>')


def test_parse_login_sig():
    assert qq.parse_login_sig(LOGIN_PAGE) == (
        "PpbBnX213jzzSH8*xXyySm9qq1jAnP2uo1fXkGaC5t0ZDaxE5MzSR59qh1EhmjqA")


@pytest.mark.parametrize("body, problem", [
    (b"<html>no sig here</html>", "no g_login_sig"),
    (b'var g_login_sig=encodeURIComponent("");', "unexpected characters"),
    (b'var g_login_sig=encodeURIComponent("a b<");', "unexpected characters"),
])
def test_parse_login_sig_refuses_pages_without_one(body, problem):
    with pytest.raises(qq.MalformedReply, match=problem):
        qq.parse_login_sig(body)


LOGIN2 = (
    b'{"retcode":0,"result":{"uin":1685359365,"cip":3673277226,"index":1075,"port":43332,'
    b'"status":"online","vfwebqq":"' + VFWEBQQ.encode() + b'","psessionid":"'
    + PSESSIONID.encode() + b'","user_state":0,"f":0}}')


def test_parse_login2():
    assert qq.parse_login2(LOGIN2) == qq.Login2Result(
        qq=1685359365, vfwebqq=VFWEBQQ, psessionid=PSESSIONID, status="online",
        cip=3673277226, index=1075, port=43332)


@pytest.mark.parametrize("body, retcode", [
    (b'{"retcode":103,"errmsg":""}', qq.QQRetcode.LOGIN_EXPIRED),
    (b'{"retcode":106}', qq.QQRetcode.NOT_WHITELISTED),
    (b'{"retcode":111}', qq.QQRetcode.BLACKLISTED),
    (b'{"retcode":112}', qq.QQRetcode.OVERLOADED),
    (b'{"retcode":100000}', qq.QQRetcode.VFWEBQQ_EXPIRED),
    (b'{"retcode":100002}', qq.QQRetcode.CREDENTIALS_EXPIRED),
    (b'{"retcode":7777}', 7777),
])
def test_parse_login2_retcodes(body, retcode):
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_login2(body)
    assert caught.value.retcode == retcode
    assert type(caught.value.retcode) is type(retcode)
    assert caught.value.endpoint == "login2"


def test_retcode_error_message_names_the_code():
    error = qq.RetcodeError("login2", 103, "你的登录已失效，请重新登录。")
    assert str(error) == "login2: retcode 103 (LOGIN_EXPIRED): 你的登录已失效，请重新登录。"
    assert str(qq.RetcodeError("poll2", 114)) == "poll2: retcode 114 (unnamed)"


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
    with pytest.raises(qq.MalformedReply, match=re.escape(problem)):
        qq.parse_login2(body)


# --- lists -------------------------------------------------------------------------------

FRIENDS = b"""{"retcode":0,"result":{
  "friends":[{"flag":0,"uin":2440652742,"categories":0},{"flag":8,"uin":3291940000,"categories":1}],
  "marknames":[{"uin":3291940000,"markname":"Bob (work)","type":0}],
  "categories":[{"index":1,"sort":1,"name":"Colleagues"}],
  "vipinfo":[{"vip_level":0,"u":2440652742,"is_vip":0},{"vip_level":3,"u":3291940000,"is_vip":1}],
  "info":[{"face":0,"flag":25707010,"nick":"Alice","uin":2440652742},{"face":294,"flag":8389126,"nick":"Bob","uin":3291940000}]}}"""


def test_parse_friends():
    result = qq.parse_friends(FRIENDS)
    assert result.friends == (
        qq.FriendEntry(uin=2440652742, nick="Alice", markname=None, category=0, face=0,
                        vip_level=0),
        qq.FriendEntry(uin=3291940000, nick="Bob", markname="Bob (work)", category=1,
                        face=294, vip_level=3))
    assert result.categories == (qq.CategoryEntry(index=1, sort=1, name="Colleagues"),)
    assert [f.display_name for f in result.friends] == ["Alice", "Bob (work)"]


def test_parse_friends_minimal_and_errors():
    result = qq.parse_friends(b'{"retcode":0,"result":{"friends":[{"uin":1}]}}')
    assert result.friends[0].nick == "" and result.categories == ()
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_friends(b'{"retcode":50,"errmsg":""}')
    assert caught.value.retcode is qq.QQRetcode.HASH_WRONG
    with pytest.raises(qq.MalformedReply, match="missing key 'friends'"):
        qq.parse_friends(b'{"retcode":0,"result":{"info":[]}}')
    with pytest.raises(qq.MalformedReply, match=re.escape("result.friends[1] is not")):
        qq.parse_friends(b'{"retcode":0,"result":{"friends":[{"uin":1},7]}}')


GROUPS = (b'{"retcode":0,"result":{"gmasklist":[{"gid":1000,"mask":0},{"gid":2559225925,'
          b'"mask":0}],"gnamelist":[{"flag":1090519041,"name":"\\u6D4B\\u8BD5\\u7FA4",'
          b'"gid":2559225925,"code":3483368056}],"gmarklist":[{"uin":2559225925,'
          b'"markname":"test group"}]}}')


def test_parse_groups():
    result = qq.parse_groups(GROUPS)
    group = qq.GroupEntry(gid=2559225925, code=3483368056, name="测试群",
                           markname="test group", mask=0)
    assert result.groups == (group,)
    assert result.by_code(3483368056) == group
    assert result.by_code(1) is None


def test_parse_groups_accepts_raw_utf8_and_empty_lists():
    body = '{"retcode":0,"result":{"gnamelist":[{"name":"测试群","gid":1,"code":2}]}}'
    assert qq.parse_groups(body.encode()).groups[0].name == "测试群"
    assert qq.parse_groups(
        b'{"retcode":0,"result":{"gmasklist":[],"gnamelist":[],"gmarklist":[]}}'
    ).groups == ()
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_groups(b'{"retcode":100003}')
    assert caught.value.retcode is qq.QQRetcode.MALFORMED_REQUEST


GROUP_INFO = b"""{"retcode":0,"result":{
  "stats":[{"client_type":1,"uin":2440652742,"stat":10},{"client_type":41,"uin":1685359365,"stat":10}],
  "minfo":[{"nick":"Alice","province":"\\u4E0A\\u6D77","gender":"male","uin":2440652742,"country":"\\u4E2D\\u56FD","city":"\\u6D66\\u4E1C\\u65B0\\u533A"},
           {"nick":"pual","province":"","gender":"unknown","uin":1685359365,"country":"","city":""}],
  "ginfo":{"face":0,"memo":"","class":10048,"fingermemo":"","code":3483368056,"createtime":1388307595,"flag":1090519041,"level":0,"name":"\\u6D4B\\u8BD5\\u7FA4","gid":2559225925,"owner":1685359365,
           "members":[{"muin":2440652742,"mflag":21},{"muin":1685359365,"mflag":0},{"muin":5,"mflag":0}],"option":1},
  "cards":[{"muin":2440652742,"card":"Alice@work"}],
  "vipinfo":[{"vip_level":0,"u":2440652742,"is_vip":0},{"vip_level":0,"u":1685359365,"is_vip":0}]}}"""


def test_parse_group_info():
    info = qq.parse_group_info(GROUP_INFO)
    assert (info.gid, info.code, info.name, info.owner_uin, info.createtime) == (
        2559225925, 3483368056, "测试群", 1685359365, 1388307595)
    alice = info.member(2440652742)
    assert alice == qq.GroupMember(uin=2440652742, nick="Alice", card="Alice@work",
                                   is_admin=True, status="online", client_type=1,
                                   gender="male")
    assert alice.display_name == "Alice@work"
    assert info.member(1685359365).display_name == "pual"
    assert info.member(5) == qq.GroupMember(uin=5, nick="", card=None, is_admin=False,
                                            status="offline", client_type=None,
                                            gender="unknown")
    assert info.member(6) is None


def test_parse_group_info_errors():
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_group_info(b'{"retcode":100001}')
    assert caught.value.retcode is qq.QQRetcode.BAD_GROUP_CODE
    with pytest.raises(qq.MalformedReply, match="result.ginfo is not an object"):
        qq.parse_group_info(b'{"retcode":0,"result":{"minfo":[]}}')


DISCUSSIONS = (b'{"retcode":0,"result":{"dnamelist":[{"did":2006892653,"name":"good day"}],'
               b'"dmasklist":[{"did":1000,"mask":0}]}}')
DISCUSSION_INFO = b"""{"retcode":0,"result":{
  "info":{"did":2006892653,"discu_owner":2440652742,"discu_name":"good day","info_seq":2,
          "mem_list":[{"mem_uin":2440652742,"ruin":123774072},{"mem_uin":1685359365,"ruin":1685359365},{"mem_uin":7,"ruin":8}]},
  "mem_status":[{"uin":2440652742,"status":"online","client_type":1},{"uin":1685359365,"status":"online","client_type":41}],
  "mem_info":[{"uin":2440652742,"nick":"Alice"},{"uin":1685359365,"nick":"pual"}]}}"""


def test_parse_discussions():
    assert qq.parse_discussions(DISCUSSIONS) == qq.DiscussionList(
        (qq.DiscussionEntry(did=2006892653, name="good day", mask=0),))


def test_parse_discussion_info():
    info = qq.parse_discussion_info(DISCUSSION_INFO)
    assert (info.did, info.name, info.owner_uin) == (2006892653, "good day", 2440652742)
    assert info.member(2440652742) == qq.DiscussionMember(
        uin=2440652742, qq=123774072, nick="Alice", status="online", client_type=1)
    assert info.member(7) == qq.DiscussionMember(uin=7, qq=8, nick="",
                                                 status="offline", client_type=None)


def test_parse_friend_uin():
    body = b'{"retcode":0,"result":{"uiuin":"","account":2664046919,"uin":721281587}}'
    assert qq.parse_friend_uin(body) == qq.QQLookup(uin=721281587, qq=2664046919)
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_friend_uin(b'{"retcode":99999}')
    assert caught.value.retcode is qq.QQRetcode.LOOKUP_REFUSED


def test_parse_online_buddies():
    body = b'{"retcode":0,"result":[{"uin":2440652742,"status":"online","client_type":1}]}'
    assert qq.parse_online_buddies(body) == (
        qq.OnlineBuddy(uin=2440652742, status="online", client_type=1),)
    with pytest.raises(qq.MalformedReply, match="result is not an array"):
        qq.parse_online_buddies(b'{"retcode":0,"result":{}}')


def test_parse_c2c_sig():
    body = (b'{"retcode":0,"result":{"type":0,"value":"b83900ad33607db576d106ffba5ad4e2b8b1cad'
            b'd660d059efdde23781b3b0c858b5a0452acd28d421af7867d606e4593","flags":{"text":1,'
            b'"pic":1,"file":1,"audio":1,"video":0}}}')
    sig = qq.parse_c2c_sig(body)
    assert sig.group_sig.startswith("b83900ad") and sig.group_sig.endswith("4593")
    assert sig.media == {"text", "pic", "file", "audio"}
    with pytest.raises(qq.MalformedReply, match="missing key 'value'"):
        qq.parse_c2c_sig(b'{"retcode":0,"result":{"type":0}}')


# --- acknowledgements --------------------------------------------------------------------

def test_parse_send():
    assert qq.parse_send(b'{"retcode":0,"result":"ok"}') == qq.SendResult("ok")
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_send(b'{"retcode":108,"errmsg":""}')
    assert caught.value.retcode is qq.QQRetcode.SESSION_GONE


@pytest.mark.parametrize("parse", [qq.parse_heartbeat, qq.parse_change_status,
                                   qq.parse_logout,
                                   qq.parse_friend_request_reply])
def test_acknowledgements(parse):
    assert parse(b'{"retcode":0,"result":"ok"}') == qq.Ack("ok")
    with pytest.raises(qq.RetcodeError):
        parse(b'{"retcode":103,"errmsg":""}')


def test_heartbeat_and_friend_request_results_may_be_objects():
    assert qq.parse_heartbeat(b'{"retcode":0,"result":{}}').result == {}
    ack = qq.parse_friend_request_reply(
        b'{"retcode":0,"result":{"result1":0,"account":379450326,"tuin":3863325290,"stat":10}}')
    assert ack.result["tuin"] == 3863325290


# --- poll --------------------------------------------------------------------------------

# The items of docs/protocol.rst §5, as the server sends them (newest first does not matter here).
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
    result = qq.parse_poll(poll_body(items))
    assert result.outcome is qq.PollOutcome.MESSAGES
    assert result.retcode is qq.QQRetcode.OK
    return result.events


def test_parse_poll_every_documented_item():
    events = poll_events(POLL_ITEMS)
    assert len(events) == len(POLL_ITEMS)
    # newest first on the wire, arrival order in the result
    assert isinstance(events[-1], qq.BuddyMessage)
    assert isinstance(events[0], qq.UnknownEvent)
    assert not any(isinstance(event, qq.UnknownEvent) for event in events[1:])


def said(text, msg_id, time=1366948800):
    return ('{"poll_type":"message","value":{"msg_id":%d,"from_uin":3,"to_uin":4,'
            '"msg_id2":%d,"msg_type":9,"reply_ip":0,"time":%d,"content":[["font",'
            '{"size":10,"color":"000000","style":[0,0,0],"name":"Arial"}],"%s"]}}'
            % (msg_id, 500 + msg_id, time, text))


TYPING = '{"poll_type":"input_notify","value":{"msg_id":9,"from_uin":3,"msg_id2":1}}'


@pytest.mark.parametrize("wire", ["newest_first", "oldest_first"])
def test_parse_poll_gives_a_batch_in_the_order_it_was_said_either_way(wire):
    # one, two, three in the same second: msg_id (the receiver's counter) tells them
    # apart; a notice without time keeps its place between them.
    items = [said("one", 7), said("two", 8), TYPING, said("three", 9, 1366948801)]
    if wire == "newest_first":
        items.reverse()
    assert batch_order(json.loads(poll_body(items))["result"]) == wire
    events = poll_events(items)
    assert [getattr(e, "text", "typing") for e in events] == ["one", "two", "typing",
                                                              "three"]


def test_parse_poll_reads_a_batch_that_does_not_say_as_newest_first():
    # One keyed item, equal keys, or keys that disagree: the sources' reading (§5.0).
    for items, arrived in (([said("a", 1), TYPING], ["typing", "a"]),
                           ([said("a", 1), said("b", 1)], ["b", "a"]),
                           ([said("a", 2), said("b", 1), said("c", 3)], ["c", "b", "a"])):
        assert batch_order(json.loads(poll_body(items))["result"]) == "newest_first"
        assert [getattr(e, "text", "typing") for e in poll_events(items)] == arrived


def test_parse_poll_buddy_message():
    (event,) = poll_events(POLL_ITEMS[0:1])
    assert (event.msg_id, event.msg_id2, event.from_uin, event.time) == (
        5597, 900140, 2440652742, 1366948800)
    assert event.text == "123[face:1]2343[face:3]"
    assert event.content.font == qq.Font(name="新宋体", size=10, color="808080")
    assert event.content.raw[1] == "123"


def test_parse_poll_group_message():
    (event,) = poll_events(POLL_ITEMS[1:2])
    assert event == qq.GroupMessage(
        msg_id=13893, msg_id2=873821, gid=2559225925, code=3483368056, send_uin=2440652742,
        seq=5761, group_number=346167134, time=1366948800, content=event.content)
    assert event.text == "我也是"


def test_parse_poll_discussion_and_session_messages():
    (discussion,) = poll_events(POLL_ITEMS[2:3])
    (session,) = poll_events(POLL_ITEMS[3:4])
    assert (discussion.did, discussion.send_uin, discussion.seq, discussion.text) == (
        2006892653, 2440652742, 8, "world")
    assert (session.from_uin, session.via_id, session.service_type, session.qq,
            session.text) == (3043560234, 2559225925, 0, 85379868, "test")


def test_parse_poll_kick_status_typing_shake():
    kick, status, typing, shake = poll_events(POLL_ITEMS[7:3:-1])
    assert kick == qq.Kick(
        msg_id=53125, reason="您的帐号在另一地点登录，您已被迫下线。如有疑问，请登录 safe.qq.com 了解更多。")
    assert status == qq.StatusChange(uin=2440652742, status="online", client_type=1)
    assert typing == qq.InputNotify(msg_id=42953, msg_id2=1813669024,
                                    from_uin=2440652742)
    assert shake == qq.Shake(msg_id=568, msg_id2=405490, from_uin=2440652742)


def test_parse_poll_kick_without_reason():
    item = ('{"poll_type":"kick_message","value":{"msg_id":1,"from_uin":10000,"msg_id2":2,'
            '"show_reason":0,"reason":"hidden","way":"poll"}}')
    assert poll_events([item]) == (qq.Kick(msg_id=1, reason=""),)


def test_parse_poll_friend_request_workflow():
    events = poll_events(POLL_ITEMS[11:7:-1])
    assert events == (
        qq.FriendRequest(seq=34653, from_uin=3863325290, qq=379450326,
                         message="please add me"),
        qq.FriendAdded(seq=49219, from_uin=2388435354, qq=569398403),
        qq.FriendRequestAccepted(seq=37525, from_uin=431533686, category=None),
        qq.FriendRequestAccepted(seq=37526, from_uin=431533686, category=0))
    unknown = ('{"poll_type":"system_message","value":{"seq":1,"type":"new_kind",'
               '"from_uin":2}}')
    (event,) = poll_events([unknown])
    assert event == qq.UnknownEvent("system_message",
                                    {"seq": 1, "type": "new_kind", "from_uin": 2})


def test_parse_poll_group_system_events():
    join, leave, request, agree, deny, create = poll_events(POLL_ITEMS[17:11:-1])
    assert join == qq.GroupSystemEvent(
        msg_id=5940, kind="group_join", gid=2559225925, code=3483368056,
        group_number=346167134, member_uin=2440652742, admin_uin=1448380605, op_type=3,
        message="", admin_nick="创建者")
    assert (leave.kind, leave.member_uin, leave.op_type, leave.admin_uin) == (
        "group_leave", 574849996, 2, None)
    assert (request.kind, request.member_uin) == ("group_request_join", 2297680537)
    assert (agree.kind, agree.admin_uin, agree.member_uin) == (
        "group_request_join_agree", 4005533729, None)
    assert (deny.kind, deny.message) == ("group_request_join_deny", "123")
    assert (create.kind, create.member_uin) == ("group_create", 1685359365)


def test_parse_poll_buddylist_and_file_events():
    change, recv, refuse, push, notify, transfer = poll_events(POLL_ITEMS[23:17:-1])
    assert change == qq.BuddyListChange(added=((1754314370, 0),), removed=())
    assert (recv.kind, recv.mode, recv.name, recv.session_id, recv.from_uin) == (
        "file_message", "recv", "test.txt", 19823, 2440652742)
    assert (refuse.mode, refuse.name, refuse.value["cancel_type"]) == ("refuse", None, 1)
    assert (push.kind, push.name, push.value["size"]) == ("push_offfile", "test2.py", 235)
    assert (notify.kind, notify.name) == ("notify_offfile", "12.jpg")
    assert (transfer.kind, transfer.from_uin, transfer.session_id, transfer.name) == (
        "filesrv_transfer", None, 19823, "test.txt")


def test_parse_poll_group_web_tips_av_and_unknown():
    unknown, av, tips, web = poll_events(POLL_ITEMS[24:])
    assert (web.gid, web.code, web.send_uin) == (2559225925, 3483368056, 1007665318)
    assert web.xml.startswith('<?xml version="1.0"')
    assert (tips.from_uin, tips.text) == (10000, "a notice")
    assert av.from_uin == 2440652742
    assert unknown == qq.UnknownEvent("brand_new_2014_thing", {"x": [1, 2]})


def test_parse_poll_accepts_raw_utf8_and_64_bit_ids():
    item = ('{"poll_type":"message","value":{"msg_id":1,"from_uin":9223372036854775807,'
            '"msg_id2":2,"content":["\\u4F60\\u597d 世界"]}}')
    (event,) = poll_events([item])
    assert (event.from_uin, event.text, event.time) == (2 ** 63 - 1, "你好 世界", None)


def test_parse_poll_empty_result():
    assert qq.parse_poll(b'{"retcode":0,"result":[]}').events == ()


@pytest.mark.parametrize("body, outcome", [
    (b'{"retcode":102,"errmsg":""}', qq.PollOutcome.RETRY),
    (b'{"retcode":0,"result":"ok"}', qq.PollOutcome.RETRY),
    (b'{"retcode":120,"t":"0"}', qq.PollOutcome.RELINK),
    (b'{"retcode":121,"t":"0"}', qq.PollOutcome.RELINK),
    (b'{"retcode":100}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":103,"errmsg":""}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":108,"errmsg":""}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":122,"errmsg":"wrong web client3"}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":100000}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":100002}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":100006}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":100101}', qq.PollOutcome.RELOGIN),
    (b'{"retcode":109,"errmsg":""}', qq.PollOutcome.LOGGED_OUT),
    (b'{"retcode":110}', qq.PollOutcome.LOGGED_OUT),
])
def test_parse_poll_outcomes(body, outcome):
    result = qq.parse_poll(body)
    assert result.outcome is outcome
    assert isinstance(result.retcode, qq.QQRetcode)
    assert result.events == () and result.ptwebqq is None


def test_parse_poll_new_ptwebqq():
    result = qq.parse_poll(
        b'{"retcode":116,"p":"3cbe693781c61e1e2766749cf46eb157f65a7bc156697804"}')
    assert result == qq.PollResult(qq.PollOutcome.NEW_PTWEBQQ,
                                   qq.QQRetcode.NEW_PTWEBQQ,
                                   ptwebqq="3cbe693781c61e1e2766749cf46eb157f65a7bc156697804")
    with pytest.raises(qq.MalformedReply, match="missing key 'p'"):
        qq.parse_poll(b'{"retcode":116}')


@pytest.mark.parametrize("retcode", [114, 100001, 1])
def test_parse_poll_other_retcodes_are_errors(retcode):
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_poll(b'{"retcode":%d,"errmsg":"x"}' % retcode)
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
    # ids the message store (SQLite, signed 64-bit) and OneBot (int64) could not hold
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":1180591620717411303424,'
     '"content":[]}}', "result[0].value.from_uin is not a 64-bit integer"),
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":9223372036854775808,'
     '"content":[]}}', "result[0].value.from_uin is not a 64-bit integer"),
    ('{"poll_type":"message","value":{"msg_id":-1,"msg_id2":2,"from_uin":3,"content":[]}}',
     "result[0].value.msg_id is not an id (an integer in 0..2**63-1)"),
    ('{"poll_type":"message","value":{"msg_id":"123456789012345678901234567890",'
     '"msg_id2":2,"from_uin":3,"content":[]}}', "result[0].value.msg_id is not a 64-bit"),
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":true,"from_uin":3,"content":[]}}',
     "result[0].value.msg_id2 is not an integer"),
    ('{"poll_type":"group_message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
     '"group_code":4,"send_uin":36893488147419103232,"content":[]}}',
     "result[0].value.send_uin is not a 64-bit integer"),
    ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
     '"time":1e400,"content":[]}}', "result[0].value.time is not an integer"),
    ('{"poll_type":"sys_g_msg","value":{"msg_id":1,"type":"group_join","from_uin":3,'
     '"gcode":4,"new_member":-5}}', "result[0].value.new_member is not an id"),
])
def test_parse_poll_malformed_items_do_not_cost_the_others(item, problem):
    good = ('{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,"from_uin":3,'
            '"to_uin":4,"time":5,"content":[["font",{"size":10,"color":"000000",'
            '"style":[0,0,0],"name":"Arial"}],"hi"]}}')
    result = qq.parse_poll(poll_body([item, good]))
    kept, bad = result.events   # arrival order is the reverse of the list
    assert isinstance(bad, qq.MalformedEvent) and problem in bad.problem
    assert isinstance(kept, qq.BuddyMessage) and kept.content.text == "hi"


def test_parse_poll_accepts_ids_up_to_2_63_and_digit_strings():
    item = ('{"poll_type":"group_message","value":{"msg_id":"0","msg_id2":9223372036854775807,'
            '"from_uin":9223372036854775807,"group_code":"9223372036854775807","send_uin":0,'
            '"content":[]}}')
    (event,) = poll_events([item])
    assert (event.msg_id, event.msg_id2, event.gid, event.code, event.send_uin) == (
        0, 2 ** 63 - 1, 2 ** 63 - 1, 2 ** 63 - 1, 0)


def storable_values(value):
    """Every str and int inside an event, a result or the raw JSON they keep."""
    if dataclasses.is_dataclass(value):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, dict):
        value = list(value.items())
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from storable_values(item)
    elif isinstance(value, (str, int)):
        yield value


def assert_storable(value):
    """What the message store does with a received message: SQLite takes it."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v)")
    for item in storable_values(value):
        db.execute("INSERT INTO t VALUES (?)", (item,))   # raises on "\ud800" or 2**70
    db.close()


# A body as the server sends it: JSON escapes a lone surrogate may hide in.
SURROGATE_POLL = (
    b'{"retcode":0,"result":[{"poll_type":"message","value":{"msg_id":1,"msg_id2":2,'
    b'"from_uin":3,"time":4,"content":[["font",{"size":10,"color":"000000","style":[0,0,0],'
    b'"name":"\\ud800Arial"}],"lone \\ud800 high, lone \\uDC00 low, pair \\ud83d\\ude00, '
    b'backslash \\\\ud800, reversed \\ude00\\ud83d"]}},'
    b'{"poll_type":"brand_new","value":{"\\ud800key":["\\udfff"]}},'
    b'{"poll_type":"kick_message","value":{"msg_id":5,"reason":"\\udbff bye"}}]}')


def test_parse_poll_makes_lone_surrogates_storable():
    kick, unknown, message = qq.parse_poll(SURROGATE_POLL).events
    assert message.text == ("lone \ufffd high, lone \ufffd low, pair \U0001F600, "
                            "backslash \\ud800, reversed \ufffd\ufffd")
    assert message.content.font.name == "\ufffdArial"
    assert message.content.raw[1] == message.text          # the raw array kept is clean too
    assert unknown.value == {"\ufffdkey": ["\ufffd"]}
    assert kick.reason == "\ufffd bye"
    for event in (kick, unknown, message):
        assert_storable(event)


def test_parse_poll_without_surrogates_is_untouched():
    (event,) = poll_events(POLL_ITEMS[0:1])
    assert event.content.raw[1:] == ["123", ["face", 1], "2343", ["face", 3], " "]


def test_other_replies_make_lone_surrogates_storable_too():
    friends = qq.parse_friends(
        b'{"retcode":0,"result":{"friends":[{"uin":1,"categories":0}],'
        b'"info":[{"uin":1,"nick":"a\\ud800b","face":0}],"marknames":[]}}')
    assert friends.friends[0].nick == "a\ufffdb"
    login = qq.parse_login(b"ptuiCB('0','0','http://www.qq.com','0','ok','\\ud800\\ud83d\\ude00');")
    assert login.nick == "\ufffd\U0001F600"
    assert_storable(friends)
    assert_storable(login)


def test_every_documented_poll_item_is_storable():
    for event in poll_events(POLL_ITEMS):
        assert_storable(event)


def test_events_are_frozen_values():
    content = qq.decode_content(["hi"])
    event = qq.BuddyMessage(msg_id=1, msg_id2=2, from_uin=3, time=None,
                            content=content)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.from_uin = 4
    assert isinstance(event, qq.PollEvent)
    assert event.text == "hi"
    assert hash(qq.StatusChange(1, "online", 1)) == hash(
        qq.StatusChange(1, "online", 1))


def test_each_chat_message_says_its_chat_kind():
    events = poll_events(POLL_ITEMS[0:4])
    assert [event.chat for event in reversed(events)] == [
        qq.ChatKind.BUDDY, qq.ChatKind.GROUP, qq.ChatKind.DISCUSSION, qq.ChatKind.SESSION]
    assert not hasattr(poll_events(POLL_ITEMS[5:6])[0], "chat")  # a status change


def test_chat_kind_reads_and_writes_as_its_plain_value(tmp_path):
    """JSON, the message store (SQLite) and the CLI keep seeing "group"."""
    kind = qq.ChatKind.GROUP
    assert kind == "group" and qq.ChatKind("group") is kind
    assert ("%s" % kind, "{}".format(kind), f"{kind}", str(kind)) == ("group",) * 4
    assert json.dumps({"chat": kind}) == '{"chat": "group"}'
    db = sqlite3.connect(str(tmp_path / "kinds.sqlite3"))
    db.execute("CREATE TABLE t (chat TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (kind,))
    assert db.execute("SELECT chat FROM t WHERE chat = 'group'").fetchone() == ("group",)
    db.close()


# --- every parser, every kind of garbage -------------------------------------------------

PARSERS = [qq.parse_login_sig, qq.parse_check, qq.parse_login,
           qq.parse_login2, qq.parse_friends, qq.parse_groups,
           qq.parse_group_info, qq.parse_discussions,
           qq.parse_discussion_info, qq.parse_friend_uin,
           qq.parse_online_buddies, qq.parse_poll, qq.parse_heartbeat,
           qq.parse_send, qq.parse_c2c_sig, qq.parse_change_status,
           qq.parse_logout, qq.parse_friend_request_reply]

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
        except qq.ProtocolError:
            pass


SAMPLES = [
    (qq.parse_login_sig, LOGIN_PAGE), (qq.parse_check, CHECK_0),
    (qq.parse_login, LOGIN_OK_A), (qq.parse_login2, LOGIN2),
    (qq.parse_friends, FRIENDS), (qq.parse_groups, GROUPS),
    (qq.parse_group_info, GROUP_INFO), (qq.parse_discussions, DISCUSSIONS),
    (qq.parse_discussion_info, DISCUSSION_INFO), (qq.parse_poll,
                                                  poll_body(POLL_ITEMS)),
]


@pytest.mark.parametrize("parse, body", SAMPLES, ids=lambda value: getattr(
    value, "__name__", "sample"))
def test_parsers_on_every_truncation_of_their_sample(parse, body):
    parse(body)
    for end in range(len(body)):
        try:
            parse(body[:end])
        except qq.ProtocolError:
            pass
