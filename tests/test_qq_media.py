"""Tests of webqq.qq's pictures, files and group management: sniffing and limits, the
upload and fetch requests, the upload servers' callback pages, the sends that carry
pictures, file transfers, op_group_join_req, quit_group2, update_group_business_card2,
and the poll items of §5.8-4.11. Literal values in, literal requests or values out; no
I/O. The samples are those of the 2013 clients (IQ, LQ, LUA), ids rewritten to
docs/protocol.rst's running example."""
import hashlib
import json
import urllib.parse

import pytest

from webqq import qq
from webqq.qq import request

PSESSIONID = "8368046764001e636f6e6e7365727665725f7765627171"
VFWEBQQ = "e7ce7913336ad0d28de9cdb9b46a57e4a6127161e35b87d09486001870226ec1fca4c2ba31c025c7"
SESSION = {"clientid": 53999199, "psessionid": PSESSIONID}

# The smallest files each format may start with (enough for sniffing, not for viewing).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 40
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20
BMP = b"BM" + (70).to_bytes(4, "little") + b"\x00" * 8 + (40).to_bytes(4, "little") \
    + b"\x00" * 50


def query(req):
    """The query of a GET, in order."""
    return urllib.parse.parse_qsl(urllib.parse.urlsplit(req.full_url).query,
                                  keep_blank_values=True)


def r_field(req):
    """The JSON object of the `r` field of a form POST, keys in the order sent."""
    fields = dict(urllib.parse.parse_qsl(req.data.decode("ascii")))
    return json.loads(fields["r"], object_pairs_hook=lambda pairs: pairs)


# --- sniffing and the limits --------------------------------------------------------------

@pytest.mark.parametrize("data, kind", [
    (JPEG, "jpg"), (PNG, "png"), (GIF, "gif"), (b"GIF87a" + b"\x00" * 10, "gif"),
    (BMP, "bmp"),
    (b"BM is also how a text may start", None),     # "BM" without a DIB header size
    (b"<html>not a picture</html>", None), (b"", None), (b"\xff\xd8", None),
    (b'{"retcode":103,"errmsg":""}', None),
])
def test_sniff_picture_trusts_the_bytes_only(data, kind):
    assert qq.sniff_picture(data) == kind


def test_upload_picture_from_bytes_names_it_by_md5_and_sniffed_format():
    picture = qq.UploadPicture.from_bytes(PNG)
    assert picture.format == "png" and picture.content_type == "image/png"
    assert picture.name == hashlib.md5(PNG).hexdigest().upper() + ".png"
    # A given name keeps its stem; the extension follows the bytes, not the name.
    assert qq.UploadPicture.from_bytes(JPEG, "/tmp/holiday.png").name == "holiday.jpg"
    assert qq.UploadPicture.from_bytes(GIF, "C:\\pics\\a.b.gif").name == "a.b.gif"


@pytest.mark.parametrize("data, message", [
    (b"", "the picture is empty"),
    (b"%PDF-1.4 not an image", r"not a picture: JPEG, PNG, GIF or BMP expected, the data "
                               r"starts with b'%PDF-1.4'"),
    (JPEG + b"\x00" * qq.GROUP_PICTURE_MAX,
     r"the picture is too large: 1,048,636 bytes, the 2013 limit is 1,048,576 bytes"),
])
def test_upload_picture_refuses_what_cannot_be_sent(data, message):
    with pytest.raises(qq.PictureError, match=message):
        qq.UploadPicture.from_bytes(data)


def test_upload_picture_limits_by_chat():
    picture = qq.UploadPicture.from_bytes(JPEG)
    for chat in (qq.ChatKind.BUDDY, qq.ChatKind.GROUP, qq.ChatKind.DISCUSSION):
        picture.check_for(chat)
    with pytest.raises(qq.PictureError, match="a session message cannot carry pictures"):
        picture.check_for(qq.ChatKind.SESSION)
    assert qq.picture_limit(qq.ChatKind.GROUP) == 1024 * 1024
    assert qq.picture_limit(qq.ChatKind.SESSION) == 0


def test_upload_picture_from_file_reads_no_more_than_the_limit(tmp_path):
    path = tmp_path / "big.gif"
    path.write_bytes(GIF + b"\x00" * (3 * qq.GROUP_PICTURE_MAX))
    with pytest.raises(qq.PictureError, match="too large: 1,048,577 bytes"):
        qq.UploadPicture.from_file(str(path))
    (tmp_path / "small.gif").write_bytes(GIF)
    assert qq.UploadPicture.from_file(str(tmp_path / "small.gif")).name == "small.gif"


# --- content with pictures ----------------------------------------------------------------

def test_encode_content_writes_the_sent_picture_pieces():
    # The IQ capture's buddy message with a face and a picture, font ours.
    offpic = qq.OffPic("/27d736df-2a59-4007-8701-7218bc70898d", "Beaver.bmp", 14173)
    encoded = json.loads(qq.encode_content(
        ["2222", qq.Face(14), "222", offpic, "123\n", qq.CFace("5E10.jPg")]))
    assert encoded[:6] == ["2222", ["face", 14], "222",
                           ["offpic", "/27d736df-2a59-4007-8701-7218bc70898d", "Beaver.bmp",
                            14173], "123\n", ["cface", "group", "5E10.jPg"]]
    assert encoded[6][0] == "font"


def test_encode_content_refuses_a_picture_not_yet_uploaded():
    with pytest.raises(TypeError, match="upload .*\\.jpg first"):
        qq.encode_content(["a", qq.UploadPicture.from_bytes(JPEG)])


def test_content_text_split_and_has_pictures_count_a_picture_as_one_piece():
    picture = qq.UploadPicture.from_bytes(GIF)
    content = ["ab", picture, "cd", qq.Face(1)]
    assert qq.content_text(content) == "ab[image]cd[face:1]"
    assert qq.has_pictures(content) and not qq.has_pictures(["ab", qq.Face(1)])
    assert not qq.has_pictures("text")
    assert qq.split_content(content, 3) == [["ab", picture], ["cd", qq.Face(1)]]


def test_decoded_sent_forms_round_trip():
    sent = qq.encode_content(["x", qq.OffPic("/p", "n.jpg", 3), qq.CFace("N.jPg")])
    content = qq.decode_sent_content(sent)
    assert content.pieces == (qq.Text("x"), qq.Image("offpic", "/p"), qq.Image("cface", "N.jPg"))


@pytest.mark.parametrize("piece, problem", [
    (["offpic", {"success": 1}], "malformed offpic piece (no file_path)"),
    (["cface", {"name": "a.jpg", "server": "124.115.11.111"}], "server is not ip:port"),
    (["cface", {"name": "a.jpg", "server": "1.2.3.4:70000"}], "server is not ip:port"),
    (["cface", {"name": "a.jpg", "file_id": -1}], "file_id is not an id"),
    (["cface", {"name": "a.jpg", "key": 5}], "key is not a string"),
    (["cface", ""], "malformed cface piece"),
])
def test_malformed_picture_pieces_are_refused(piece, problem):
    with pytest.raises(qq.MalformedContent, match=problem.replace("(", r"\(")
                       .replace(")", r"\)")):
        qq.decode_content([piece])


def test_a_group_cface_keeps_where_it_is_kept():
    (image,) = qq.decode_content([["cface", {"name": "{94E8}.jpg", "file_id": "445318646",
                                             "key": "PN576E5TyB53muY9",
                                             "server": "124.115.11.111:8000"}]]).pieces
    assert image == qq.Image("cface", "{94E8}.jpg", 445318646, "124.115.11.111:8000",
                             "PN576E5TyB53muY9")


# --- multipart ----------------------------------------------------------------------------

def test_multipart_post_writes_the_browsers_form():
    req = request.multipart_post(
        "http://up.example/x", [("a", "1"), ("f", request.FilePart("p.gif", "image/gif",
                                                                   b"GIF"))],
        {"Referer": "r"}, "----WebKitFormBoundaryj3P206QtBMSSesgJ")
    assert req.get_header("Content-type") == \
        "multipart/form-data; boundary=----WebKitFormBoundaryj3P206QtBMSSesgJ"
    assert req.data == (
        b"------WebKitFormBoundaryj3P206QtBMSSesgJ\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b"------WebKitFormBoundaryj3P206QtBMSSesgJ\r\n"
        b'Content-Disposition: form-data; name="f"; filename="p.gif"\r\n'
        b"Content-Type: image/gif\r\n\r\nGIF\r\n"
        b"------WebKitFormBoundaryj3P206QtBMSSesgJ--\r\n")


@pytest.mark.parametrize("boundary, data, problem", [
    ("", b"x", "not allowed"), ("a b", b"x", "not allowed"), ("x" * 71, b"x", "not allowed"),
    ("abc", b"--abc inside", "occurs in field 'f'"),
])
def test_multipart_post_refuses_unusable_boundaries(boundary, data, problem):
    with pytest.raises(ValueError, match=problem):
        request.multipart_post("http://x/", [("f", request.FilePart("n", "t", data))], {},
                               boundary)


# --- a friend's picture: upload_offline_pic -----------------------------------------------

def test_build_upload_offline_pic_sends_the_captured_fields_in_order():
    picture = qq.UploadPicture.from_bytes(BMP, "Beaver.bmp")
    req = qq.build_upload_offline_pic(picture, qq=1685359365, skey="@4fPBdpNl5",
                                      peer_uin=2440652742, vfwebqq=VFWEBQQ,
                                      t=1361752435983, boundary="B0undary")
    assert req.get_method() == "POST"
    assert req.full_url == ("http://weboffline.ftn.qq.com/ftn_access/upload_offline_pic"
                            "?time=1361752435983")
    assert req.get_header("Referer") == "http://web2.qq.com/webqq.html"
    assert req.get_header("Origin") == "http://web2.qq.com"
    parts = req.data.split(b"--B0undary")
    names = [part.split(b'name="')[1].split(b'"')[0].decode() for part in parts[1:-1]]
    assert names == ["callback", "locallangid", "clientversion", "uin", "skey", "appid",
                     "peeruin", "file", "fileid", "vfwebqq", "senderviplevel",
                     "reciverviplevel"]
    assert b"\r\n\r\nparent.EQQ.Model.ChatMsg.callbackSendPic\r\n" in parts[1]
    assert parts[4].endswith(b"\r\n\r\n1685359365\r\n")
    assert parts[6].endswith(b"\r\n\r\n1002101\r\n")
    assert parts[8] == (b'\r\nContent-Disposition: form-data; name="file"; '
                        b'filename="Beaver.bmp"\r\nContent-Type: image/bmp\r\n\r\n'
                        + BMP + b"\r\n")


# The LUA port's sample answer (eqq.lua, 2013), name as the server sent it.
OFFPIC_PAGE = (
    '<head><script type="text/javascript">document.domain=\'qq.com\';parent.EQQ.Model.'
    'ChatMsg.callbackSendPic({"retcode":0, "result":"OK", "progress":100, '
    '"filesize":17299, "fileid":"1", "filename":"%7B5E10B9BC-A2BD-F848-9CB3-239DFFA745B5'
    '%7D[2].jpg", "filepath":"/279dd1f0-e108-4482-a194-c158175beacf"});</script></head>'
    '<body></body>')


def test_parse_upload_offline_pic_reads_the_callback_page():
    assert qq.parse_upload_offline_pic(OFFPIC_PAGE.encode()) == qq.OffPic(
        "/279dd1f0-e108-4482-a194-c158175beacf",
        "%7B5E10B9BC-A2BD-F848-9CB3-239DFFA745B5%7D[2].jpg", 17299)


@pytest.mark.parametrize("page, error, problem", [
    (OFFPIC_PAGE.replace('"retcode":0', '"retcode":4'), qq.UploadRefused,
     "upload refused with code 4: OK"),
    (OFFPIC_PAGE.replace('"/279dd1f0-e108-4482-a194-c158175beacf"', '""'), qq.MalformedReply,
     "no filepath: the picture was not stored"),
    (OFFPIC_PAGE.replace('"filesize":17299', '"filesize":"big"'), qq.MalformedReply,
     "filename or filesize missing or mistyped"),
    ("<html>502 Bad Gateway</html>", qq.MalformedReply, r"no callbackSendPic\(\{...\}\)"),
    ("parent.EQQ.Model.ChatMsg.callbackSendPic({retcode:0});", qq.MalformedReply,
     "argument is not JSON"),
])
def test_parse_upload_offline_pic_errors(page, error, problem):
    with pytest.raises(error, match=problem) as caught:
        qq.parse_upload_offline_pic(page.encode())
    assert caught.value.endpoint == "upload_offline_pic"


# --- a group picture: get_gface_sig2 and cface_upload -------------------------------------

def test_build_and_parse_gface_sig():
    req = qq.build_gface_sig(t=1366948800, **SESSION)
    assert req.full_url == ("http://d.web2.qq.com/channel/get_gface_sig2?clientid=53999199"
                            "&psessionid=%s&t=1366948800" % PSESSIONID)
    assert req.get_header("Referer") == qq.builders.D_REFERER
    body = (b'{"retcode":0,"result":{"reply":0,"gface_key":"Icn6VvY89nFcaGiH","gface_sig":'
            b'"a2e96a31386ce2ebac8fe8426b1d0b80a462bbf1c7340bb4"}}')     # LUA sample, cut
    assert qq.parse_gface_sig(body) == qq.GFaceSig(
        "Icn6VvY89nFcaGiH", "a2e96a31386ce2ebac8fe8426b1d0b80a462bbf1c7340bb4")
    with pytest.raises(qq.RetcodeError):
        qq.parse_gface_sig(b'{"retcode":103,"errmsg":""}')
    with pytest.raises(qq.MalformedReply, match="gface_sig"):
        qq.parse_gface_sig(b'{"retcode":0,"result":{"gface_key":"k","gface_sig":""}}')


def test_build_upload_cface_sends_from_control():
    picture = qq.UploadPicture.from_bytes(GIF)
    req = qq.build_upload_cface(picture, vfwebqq=VFWEBQQ, t=1366948800, boundary="xyz")
    assert req.full_url == "http://up.web2.qq.com/cgi-bin/cface_upload?time=1366948800"
    parts = req.data.split(b"--xyz")
    assert [part.split(b'name="')[1].split(b'"')[0] for part in parts[1:-1]] == [
        b"from", b"f", b"vfwebqq", b"fileid", b"custom_face"]
    assert parts[1].endswith(b"\r\n\r\ncontrol\r\n")
    assert parts[2].endswith(b"\r\n\r\nEQQ.Model.ChatMsg.callbackSendPicGroup\r\n")
    assert b'filename="%s"\r\nContent-Type: image/gif' % picture.name.encode() in parts[5]


def cface_page(ret, msg):
    return ('<head><script type="text/javascript">document.domain=\'qq.com\';parent.EQQ.'
            "Model.ChatMsg.callbackSendPicGroup({'ret':%d,'msg':'%s'});</script></head>"
            "<body></body>" % (ret, msg)).encode()


@pytest.mark.parametrize("page, name", [
    (cface_page(0, "587D08324C50F0E9584ACA35CA4B13F1.jPg"),
     "587D08324C50F0E9584ACA35CA4B13F1.jPg"),
    # ret 4: the server had it already; the name leads the message (LUA, CS samples)
    (cface_page(4, "F20E3D64788A823FBAE9995DCF65D93F.gIf -6102 upload cface failed"),
     "F20E3D64788A823FBAE9995DCF65D93F.gIf"),
    # a sample (MoeWorker's comment) with the name twice and no space between
    (cface_page(0, "C5868D1266F58FA657A9352C76477296.jPgC5868D1266F58FA657A9352C76477296"
                   ".jPg -7001"), "C5868D1266F58FA657A9352C76477296.jPg"),
])
def test_parse_upload_cface_reads_the_name(page, name):
    assert qq.parse_upload_cface(page) == qq.CFace(name)


def test_parse_upload_cface_errors():
    with pytest.raises(qq.UploadRefused, match="too large for the server") as caught:
        qq.parse_upload_cface(cface_page(2, "over size"))
    assert caught.value.too_large and caught.value.code == 2
    with pytest.raises(qq.UploadRefused) as caught:
        qq.parse_upload_cface(cface_page(1, "error"))
    assert not caught.value.too_large
    with pytest.raises(qq.MalformedReply, match="no picture name"):
        qq.parse_upload_cface(cface_page(0, "-6102 upload cface failed"))
    with pytest.raises(qq.MalformedReply, match="no callbackSendPicGroup"):
        qq.parse_upload_cface(b"parent.EQQ.Model.ChatMsg.callbackSendPicGroup(eval('x'))")


# --- sends that carry pictures ------------------------------------------------------------

def test_build_send_buddy_with_an_offpic():
    offpic = qq.OffPic("/27d736df", "Beaver.bmp", 14173)
    r = dict(r_field(qq.build_send_buddy(2440652742, ["pic:", offpic], msg_id=7, **SESSION)))
    assert json.loads(r["content"])[:2] == ["pic:", ["offpic", "/27d736df", "Beaver.bmp",
                                                     14173]]
    with pytest.raises(ValueError, match="not CFace"):
        qq.build_send_buddy(2440652742, [qq.CFace("N.jPg")], msg_id=7, **SESSION)


def test_build_send_group_with_a_cface_carries_code_key_and_sig_after_group_uin():
    req = qq.build_send_group(2559225925, [qq.CFace("N.jPg")], msg_id=8,
                              group_code=3483368056, key="KEY", sig="SIG", **SESSION)
    r = r_field(req)
    assert [key for key, _ in r] == ["group_uin", "group_code", "key", "sig", "content",
                                     "msg_id", "clientid", "psessionid"]
    assert dict(r)["group_code"] == 3483368056 and dict(r)["sig"] == "SIG"
    # Without a picture the fields stay away, whatever is passed.
    plain = r_field(qq.build_send_group(2559225925, "hi", msg_id=8, key="K", sig="S",
                                        group_code=1, **SESSION))
    assert [key for key, _ in plain] == ["group_uin", "content", "msg_id", "clientid",
                                         "psessionid"]


@pytest.mark.parametrize("kwargs, problem", [
    ({"group_code": 1}, "needs the key and sig of get_gface_sig2"),
    ({"key": "K", "sig": "S"}, "needs the group code"),
])
def test_build_send_group_refuses_a_cface_without_its_signature(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        qq.build_send_group(2559225925, [qq.CFace("N.jPg")], msg_id=8, **kwargs, **SESSION)
    with pytest.raises(ValueError, match="not OffPic"):
        qq.build_send_group(2559225925, [qq.OffPic("/p", "n", 1)], msg_id=8, **SESSION)


def test_build_send_discussion_with_a_cface_and_send_session_without_pictures():
    r = r_field(qq.build_send_discussion(2006892653, [qq.CFace("N.jPg")], msg_id=9,
                                         key="K", sig="S", **SESSION))
    assert [key for key, _ in r][:3] == ["did", "key", "sig"]
    with pytest.raises(ValueError, match="cannot carry pictures"):
        qq.build_send_session(3043560234, [qq.OffPic("/p", "n", 1)], group_sig="g",
                              msg_id=10, **SESSION)


# --- fetching received pictures -----------------------------------------------------------

def test_build_get_offpic_and_get_cface():
    req = qq.build_get_offpic("/7acccf74-0fcd-4bbd-b885-03a5cc2f7507", 2440652742, **SESSION)
    assert req.full_url.startswith("http://d.web2.qq.com/channel/get_offpic2?")
    assert query(req) == [("file_path", "/7acccf74-0fcd-4bbd-b885-03a5cc2f7507"),
                          ("f_uin", "2440652742"), ("clientid", "53999199"),
                          ("psessionid", PSESSIONID)]
    assert req.get_header("Referer") == "http://web2.qq.com/webqq.html"
    req = qq.build_get_cface("5E10B9BCA2BDF8489CB3239DFFA745B5.jpg", 2440652742, 18631,
                             **SESSION)
    assert req.full_url.startswith("http://d.web2.qq.com/channel/get_cface2?")
    assert query(req) == [("lcid", "18631"), ("guid", "5E10B9BCA2BDF8489CB3239DFFA745B5.jpg"),
                          ("to", "2440652742"), ("count", "5"), ("time", "1"),
                          ("clientid", "53999199"), ("psessionid", PSESSIONID)]


def test_build_get_group_pic_follows_lqs_sample():
    # LQ's comment: ...get_group_pic?type=0&gid=3971957129&uin=4174682545&rip=120.196.
    # 211.216&rport=9072&fid=2857831080&pic=71A8E53B7F678D035656FECDA1BD7F31.jpg&vfwebqq=
    # ...&t=1343130567
    req = qq.build_get_group_pic("71A8E53B7F678D035656FECDA1BD7F31.jpg", code=3971957129,
                                 send_uin=4174682545, server="120.196.211.216:9072",
                                 file_id=2857831080, vfwebqq="v", t=1343130567)
    assert req.full_url == (
        "http://web2.qq.com/cgi-bin/get_group_pic?type=0&gid=3971957129&uin=4174682545"
        "&rip=120.196.211.216&rport=9072&fid=2857831080"
        "&pic=71A8E53B7F678D035656FECDA1BD7F31.jpg&vfwebqq=v&t=1343130567")
    discussion = qq.build_get_group_pic("a.jpg", code=2006892653, send_uin=1,
                                        server="1.2.3.4:80", file_id=2, vfwebqq="v", t=3,
                                        discussion=True)
    assert query(discussion)[:2] == [("type", "1"), ("gid", "2006892653")]
    with pytest.raises(ValueError, match="ip:port"):
        qq.build_get_group_pic("a.jpg", code=1, send_uin=1, server="nowhere", file_id=2,
                               vfwebqq="v", t=3)


def test_parse_picture():
    assert qq.parse_picture(JPEG, "get_offpic2") == qq.FetchedPicture(JPEG, "jpg")
    with pytest.raises(qq.RetcodeError) as caught:
        qq.parse_picture(b'{"retcode":103,"errmsg":""}', "get_offpic2")
    assert caught.value.retcode is qq.QQRetcode.LOGIN_EXPIRED
    with pytest.raises(qq.MalformedReply, match="not a picture"):
        qq.parse_picture(b"<html>404</html>", "get_group_pic")
    with pytest.raises(qq.MalformedReply, match="not a picture"):
        qq.parse_picture(b'{"retcode":0,"result":"ok"}', "get_cface2")
    with pytest.raises(qq.MalformedReply, match="over the 100-byte limit"):
        qq.parse_picture(PNG + b"\x00" * 100, "get_cface2", limit=100)


# --- files --------------------------------------------------------------------------------

def test_build_get_file_and_refuse_file_follow_lq():
    req = qq.build_get_file(19823, "test.txt", 2440652742, t=1364865220, **SESSION)
    assert req.full_url.startswith("http://d.web2.qq.com/channel/get_file2?")
    assert query(req) == [("lcid", "19823"), ("guid", "test.txt"), ("to", "2440652742"),
                          ("psessionid", PSESSIONID), ("count", "1"), ("time", "1364865220"),
                          ("clientid", "53999199")]
    req = qq.build_refuse_file(19823, 2440652742, t=1364865220, **SESSION)
    assert req.full_url.startswith("http://d.web2.qq.com/channel/refuse_file2?")
    assert query(req) == [("lcid", "19823"), ("to", "2440652742"), ("psessionid", PSESSIONID),
                          ("count", "1"), ("time", "1364865220"), ("clientid", "53999199")]
    assert qq.parse_refuse_file(b'{"retcode":0,"result":"ok"}').result == "ok"


def test_parse_get_file():
    assert qq.parse_get_file(b"file bytes", redirected=True) == b"file bytes"
    # What d.web2 answers itself is a refusal, never the file (even a JSON-looking one).
    with pytest.raises(qq.RetcodeError):
        qq.parse_get_file(b'{"retcode":102,"errmsg":""}', redirected=False)
    with pytest.raises(qq.MalformedReply, match="without redirecting"):
        qq.parse_get_file(b'{"retcode":0,"result":"ok"}', redirected=False)
    assert qq.parse_get_file(b'{"retcode":102}', redirected=True) == b'{"retcode":102}'


def test_build_get_offline_file_is_lqs_url():
    req = qq.build_get_offline_file("test 2.py", ip="101.226.77.168", port=80,
                                    rkey="2c09bbdb")
    assert req.full_url == "http://101.226.77.168:80/test%202.py?ver=2173&rkey=2c09bbdb&range=0"
    with pytest.raises(ValueError, match="host and a port"):
        qq.build_get_offline_file("a", ip="1.2.3.4/evil", port=80, rkey="k")
    with pytest.raises(ValueError, match="host and a port"):
        qq.build_get_offline_file("a", ip="1.2.3.4", port=0, rkey="k")


# --- friend and group management ----------------------------------------------------------

def test_build_answer_group_request_is_lqs_op_group_join_req():
    req = qq.build_answer_group_request(2559225925, 2297680537, accept=True, reason="",
                                        t=1366948800, **SESSION)
    assert req.full_url.startswith("http://d.web2.qq.com/channel/op_group_join_req?")
    assert query(req) == [("group_uin", "2559225925"), ("req_uin", "2297680537"),
                          ("msg", ""), ("op_type", "2"), ("clientid", "53999199"),
                          ("psessionid", PSESSIONID), ("t", "1366948800")]
    deny = qq.build_answer_group_request(1, 2, accept=False, reason="no room", t=3,
                                         **SESSION)
    assert ("op_type", "3") in query(deny) and ("msg", "no room") in query(deny)
    assert qq.parse_answer_group_request(b'{"retcode":0,"result":"ok"}').result == "ok"


def test_build_quit_group_and_set_group_card():
    req = qq.build_quit_group(3483368056, vfwebqq=VFWEBQQ)
    assert req.full_url == "http://s.web2.qq.com/api/quit_group2"
    assert r_field(req) == [("gcode", "3483368056"), ("vfwebqq", VFWEBQQ)]
    req = qq.build_set_group_card(3483368056, "机器人", vfwebqq=VFWEBQQ)
    assert req.full_url == "http://s.web2.qq.com/api/update_group_business_card2"
    assert r_field(req) == [("gcode", "3483368056"), ("name", "机器人"), ("vfwebqq", VFWEBQQ)]
    with pytest.raises(qq.RetcodeError):
        qq.parse_quit_group(b'{"retcode":100001}')
    assert qq.parse_set_group_card(b'{"retcode":0,"result":{"result":0}}').result == {
        "result": 0}


# --- poll items (§5.8 - §5.11) ------------------------------------------------------------

def poll(*items):
    body = '{"retcode":0,"result":[%s]}' % ",".join(reversed(items))
    return qq.parse_poll(body.encode()).events


def test_push_offfile_names_where_the_file_is_kept():
    (event,) = poll('{"poll_type":"push_offfile","value":{"msg_id":10438,"rkey":"2c09bbdb",'
                    '"ip":"101.226.77.168","port":80,"from_uin":2440652742,"size":235,'
                    '"name":"test2.py","expire_time":1365470120,"time":1364865321}}')
    assert (event.kind, event.from_uin, event.name, event.size, event.ip, event.port,
            event.rkey, event.expire_time, event.msg_id) == (
        "push_offfile", 2440652742, "test2.py", 235, "101.226.77.168", 80, "2c09bbdb",
        1365470120, 10438)
    assert "2c09bbdb" not in repr(event)


def test_file_message_and_notify_offfile_fields():
    recv, notify = poll(
        '{"poll_type":"file_message","value":{"msg_id":6299,"mode":"recv","from_uin":'
        '2440652742,"to_uin":1685359365,"msg_id2":559004,"msg_type":9,"reply_ip":176621916,'
        '"type":101,"name":"test.txt","time":1364865210,"session_id":19823,'
        '"inet_ip":2051695055}}',
        '{"poll_type":"notify_offfile","value":{"msg_id":9948,"from_uin":2440652742,'
        '"to_uin":1685359365,"msg_id2":460591,"msg_type":9,"reply_ip":178847911,"action":2,'
        '"filename":"12.jpg","filesize":137972}}')
    assert (recv.mode, recv.name, recv.session_id, recv.msg_id, recv.msg_id2) == (
        "recv", "test.txt", 19823, 6299, 559004)
    assert (notify.name, notify.size, notify.msg_id2) == ("12.jpg", 137972, 460591)


@pytest.mark.parametrize("item, problem", [
    ('{"poll_type":"push_offfile","value":{"msg_id":1,"ip":"1.2.3.4","port":80,'
     '"from_uin":2,"size":3,"name":"n"}}', "missing key 'rkey'"),
    ('{"poll_type":"push_offfile","value":{"msg_id":1,"rkey":"k","ip":"1.2.3.4","port":0,'
     '"from_uin":2,"size":3,"name":"n"}}', "size or port out of range"),
    ('{"poll_type":"file_message","value":{"msg_id":1,"mode":"recv","from_uin":2,'
     '"session_id":3}}', "missing key 'name'"),
    ('{"poll_type":"file_message","value":{"msg_id":1,"mode":"recv","from_uin":2,'
     '"name":"n"}}', "missing key 'session_id'"),
    ('{"poll_type":"filesrv_transfer","value":{"file_count":1}}', "missing key 'lc_id'"),
])
def test_malformed_file_items_become_malformed_events(item, problem):
    good = '{"poll_type":"shake_message","value":{"msg_id":1,"from_uin":2,"msg_id2":3}}'
    kept, bad = poll(good, item)
    assert isinstance(bad, qq.MalformedEvent) and problem in bad.problem
    assert isinstance(kept, qq.Shake)


def test_sys_g_msg_reads_the_qq_numbers_when_given():
    (event,) = poll(
        '{"poll_type":"sys_g_msg","value":{"msg_id":14601,"from_uin":2559225925,"to_uin":'
        '1685359365,"msg_id2":563796,"msg_type":34,"reply_ip":176752044,"type":"group_leave",'
        '"gcode":3483368056,"t_gcode":346167134,"op_type":3,"old_member":2440652742,'
        '"t_old_member":"123774072","admin_uin":4005533729,"t_admin_uin":"","admin_nick":'
        '"\\u7BA1\\u7406\\u5458"}}')
    assert (event.kind, event.op_type, event.member_uin, event.member_qq, event.admin_uin,
            event.admin_qq, event.admin_nick) == (
        "group_leave", 3, 2440652742, 123774072, 4005533729, None, "管理员")

