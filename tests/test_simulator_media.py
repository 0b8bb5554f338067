"""The simulator's picture servers, spoken to with urllib as a 2013 script would: the two
upload servers and what they refuse, the group signature, sends carrying pictures, and
fetching a received picture (docs/protocol.rst §3.25, webqq/simulator/pictures.py)."""
import base64
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from simulator_helpers import Browser, Reply, default_world, in_thread, start_simulator

WEB2 = "http://web2.qq.com/webqq.html"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(range(100))
BMP = b"BM" + b"\x00" * 12 + (40).to_bytes(4, "little") + b"\x00" * 40
OFFPIC_PAGE = re.compile(r"<head><script type=\"text/javascript\">document\.domain='qq\.com';"
                         r"parent\.EQQ\.Model\.ChatMsg\.callbackSendPic\((\{.*\})\);"
                         r"</script></head><body></body>\Z")
CFACE_PAGE = re.compile(r"<head><script type=\"text/javascript\">document\.domain='qq\.com';"
                        r"parent\.([\w.]*)\(\{'ret':(\d+),'msg':'([^']*)'\}\);"
                        r"</script></head><body></body>\Z")


def multipart(fields, files=()):
    """A browser's multipart form: ``fields`` (name, value) and ``files`` (name,
    filename, bytes), in order."""
    boundary = b"----WebKitFormBoundaryq1w2e3r4t5y6u7i8"
    body = b""
    for name, value in fields:
        body += b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (
            boundary, name.encode(), str(value).encode())
    for name, filename, data in files:
        body += (b"--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                 b"Content-Type: application/octet-stream\r\n\r\n%s\r\n"
                 % (boundary, name.encode(), filename.encode(), data))
    return body + b"--%s--\r\n" % boundary, "multipart/form-data; boundary=" + boundary.decode()


def post(browser, url, body, content_type, referer=WEB2) -> Reply:
    request = urllib.request.Request(url, data=body, headers={
        "Content-Type": content_type, "Referer": referer, "Origin": "http://web2.qq.com"})
    try:
        with browser.opener.open(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


def offpic_form(browser, peer_qq, data=JPEG, name="cat.jpg", **change):
    """upload_offline_pic's fields in webqq-core's captured order; ``change`` replaces
    one (None leaves it out)."""
    session = browser.session
    fields = dict([
        ("callback", "parent.EQQ.Model.ChatMsg.callbackSendPic"), ("locallangid", 2052),
        ("clientversion", 1409), ("uin", session["uin"]),
        ("skey", browser.cookie("skey").value), ("appid", 1002101),
        ("peeruin", browser.sim.world.uin(session["uin"], peer_qq)), ("fileid", 1),
        ("vfwebqq", session["vfwebqq"]), ("senderviplevel", 0), ("reciverviplevel", 0)])
    fields.update(change)
    return [(k, v) for k, v in fields.items() if v is not None], [("file", name, data)]


async def upload_offpic(browser, peer_qq, data=JPEG, referer=WEB2, **change) -> dict:
    """The JSON of upload_offline_pic's page."""
    fields, files = offpic_form(browser, peer_qq, data, **change)
    reply = await in_thread(post, browser, "http://weboffline.ftn.qq.com/ftn_access/"
                            "upload_offline_pic?time=1366948800000", *multipart(fields, files),
                            referer=referer)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    match = OFFPIC_PAGE.match(reply.text)
    assert match, reply.text
    return json.loads(match.group(1))


async def upload_cface(browser, data=PNG, vfwebqq=None, from_="control", name="a.png"):
    """``(callback, ret, msg)`` of cface_upload's page."""
    fields = [("from", from_), ("f", "EQQ.Model.ChatMsg.callbackSendPicGroup"),
              ("vfwebqq", vfwebqq or browser.session["vfwebqq"]), ("fileid", 1)]
    fields = [(k, v) for k, v in fields if v is not None]
    files = [("custom_face", name, data)] if data is not None else []
    reply = await in_thread(post, browser, "http://up.web2.qq.com/cgi-bin/cface_upload?"
                            "time=1366948800", *multipart(fields, files))
    match = CFACE_PAGE.match(reply.text)
    assert reply.status == 200 and match, reply.text
    return match.group(1), int(match.group(2)), match.group(3)


def fetch_plain(url) -> Reply:
    """A GET straight to the address a redirect names (the simulator's own)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


def items(reply, poll_type=None) -> list:
    body = reply.json()
    assert body["retcode"] == 0, body
    return [i for i in body["result"] if poll_type is None or i["poll_type"] == poll_type]


async def signed_in(sim) -> tuple:
    """10001 and 10002 (friends, both in group 30001 and discussion 40001) signed in."""
    first, second = Browser(sim), Browser(sim)
    await in_thread(first.sign_in, 10001, "11111111")
    await in_thread(second.sign_in, 10002, "22222222")
    await in_thread(second.poll)        # 10001's presence notice
    return first, second


# --- upload_offline_pic ---------------------------------------------------------------------

@pytest.mark.gen_test
async def test_upload_offline_pic_answers_the_captured_page_and_keeps_the_bytes(sim):
    first, _ = await signed_in(sim)
    fields, files = offpic_form(first, 20001)
    body, content_type = multipart(fields, files)
    reply = await in_thread(post, first, "http://weboffline.ftn.qq.com/ftn_access/"
                            "upload_offline_pic?time=1", body, content_type)
    match = OFFPIC_PAGE.match(reply.text)
    assert match, reply.text
    assert re.fullmatch(r'\{"retcode":0, "result":"OK", "progress":100, "filesize":%d, '
                        r'"fileid":"1", "filename":"cat.jpg", "filepath":"/[0-9a-f]{8}-'
                        r'[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"\}' % len(JPEG),
                        match.group(1)), match.group(1)
    # eqq.lua (May 2013) sent neither vfwebqq nor fileid, and was answered.
    answer = await upload_offpic(first, 20001, data=BMP, vfwebqq=None, fileid=None)
    assert (answer["retcode"], answer["fileid"], answer["filesize"]) == (0, "1", len(BMP))


@pytest.mark.gen_test
async def test_upload_offline_pic_refuses_what_the_server_refused(sim):
    first, _ = await signed_in(sim)
    cases = [({"skey": "@wrongskey"}, 2), ({"uin": 10002}, 2), ({"skey": None}, 2),
             ({"vfwebqq": "0" * 80}, 2), ({"appid": 1003903}, 1), ({"appid": None}, 1),
             ({"fileid": "x"}, 1), ({"peeruin": 123}, 3), ({"peeruin": None}, 3)]
    for change, retcode in cases:
        answer = await upload_offpic(first, 20001, **change)
        assert (answer["retcode"], "filepath" in answer) == (retcode, False), change
    assert (await upload_offpic(first, 20003))["retcode"] == 3          # not a friend
    assert (await upload_offpic(first, 20001, data=b"%PDF-1.4 ..."))["retcode"] == 4
    assert (await upload_offpic(first, 20001, data=b"BM" + b"\x00" * 40))["retcode"] == 4
    assert (await upload_offpic(first, 20001, data=JPEG + b"\x00" * (1 << 20)))["retcode"] == 5
    assert (await upload_offpic(first, 20001, referer="http://example.com/"))["retcode"] == 2
    fields, _ = offpic_form(first, 20001)
    no_file = await in_thread(post, first, "http://weboffline.ftn.qq.com/ftn_access/"
                              "upload_offline_pic", *multipart(fields))
    assert json.loads(OFFPIC_PAGE.match(no_file.text).group(1))["retcode"] == 1
    stranger = Browser(sim)                                  # no cookies at all
    stranger.session = first.session
    stranger.jar.set_cookie(first.cookie("skey"))
    assert (await upload_offpic(stranger, 20001))["retcode"] == 2
    sent = await in_thread(first.control, "sent?account=10001")
    assert sent.json() == []


# --- cface_upload ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_cface_upload_names_the_picture_and_knows_it_the_second_time(sim):
    first, second = await signed_in(sim)
    name = hashlib.md5(PNG).hexdigest().upper() + ".pNg"
    assert await upload_cface(first) == ("EQQ.Model.ChatMsg.callbackSendPicGroup", 0, name)
    assert await upload_cface(second, name="other.jpg") == (
        "EQQ.Model.ChatMsg.callbackSendPicGroup", 4, name + " -6102 upload cface failed")
    assert (await upload_cface(first, data=GIF))[2].endswith(".gIf")
    assert (await upload_cface(first, data=JPEG))[2].endswith(".jPg")


@pytest.mark.gen_test
async def test_cface_upload_refuses_what_the_server_refused(sim):
    first, _ = await signed_in(sim)
    refused = ("", 2, "get uin and skey error getcgiparams failed")   # eqq.lua's sample
    assert await upload_cface(first, vfwebqq="0" * 80) == refused
    assert await upload_cface(Browser(sim), vfwebqq="x") == refused       # no cookies
    assert (await upload_cface(first, data=b"<html>"))[1:] == (1, "upload cface failed: "
                                                                "not a picture")
    assert (await upload_cface(first, data=None))[1] == 1
    big = JPEG + b"\x00" * (300 * 1024)
    assert (await upload_cface(first, data=big, from_=None))[1:] == (2, "pic size over 256000")
    assert (await upload_cface(first, data=big))[1] == 0        # from=control: up to 1 MB
    assert (await upload_cface(first, data=big + b"\x00" * (1 << 20)))[1] == 2


# --- the group signature and sends --------------------------------------------------------

async def gface(browser) -> tuple:
    reply = await in_thread(browser.channel_get, "get_gface_sig2")
    result = reply.json()["result"]
    assert result["reply"] == 0, reply.text
    return result["gface_key"], result["gface_sig"]


@pytest.mark.gen_test
async def test_get_gface_sig2_is_one_key_and_sig_per_session(sim):
    first, second = await signed_in(sim)
    key, sig = await gface(first)
    assert re.fullmatch(r"[A-Za-z0-9]{16}", key) and re.fullmatch(r"[0-9a-f]{112}", sig)
    assert await gface(first) == (key, sig)
    assert await gface(second) != (key, sig)
    reply = await in_thread(first.channel_get, "get_gface_sig2", psessionid="0" * 20)
    assert reply.json() == {"retcode": 103, "errmsg": ""}


@pytest.mark.gen_test
async def test_a_group_picture_send_needs_the_code_key_and_sig(sim):
    first, second = await signed_in(sim)
    group = sim.world.groups[30001]
    name = (await upload_cface(first))[2]
    key, sig = await gface(first)
    piece = ["cface", "group", name]
    good = {"group_uin": group.gid, "group_code": group.code, "key": key, "sig": sig}
    for change in ({"key": None}, {"sig": None}, {"group_code": None}, {"sig": sig[:-1] + "0"},
                   {"group_code": group.gid}, {"key": (await gface(second))[0]}):
        r = {k: v for k, v in dict(good, **change).items() if v is not None}
        reply = await in_thread(first.send, "send_qun_msg2", r, ["look", piece])
        assert reply.json() == {"retcode": 100006, "errmsg": ""}, change
    for content in (["look", ["cface", "group", "0" * 32 + ".jPg"]], [["cface", name]],
                    [["offpic", "/x", "x.jpg", 1]], [["cface", "group"]]):
        reply = await in_thread(first.send, "send_qun_msg2", good, content)
        assert reply.json()["retcode"] == 100006, content
    assert (await in_thread(first.control, "sent?account=10001")).json() == []
    assert (await in_thread(first.send, "send_qun_msg2", good, ["look", piece])).json() == {
        "retcode": 0, "result": "ok"}
    (sent,) = (await in_thread(first.control, "sent?account=10001")).json()
    assert sent["content"] == ["look", piece]
    assert sent["pictures"] == [{"piece": 1, "kind": "cface", "name": name, "format": "png",
                                 "size": len(PNG), "sha1": hashlib.sha1(PNG).hexdigest()}]
    kept = (await in_thread(first.control, "picture?sha1=" + sent["pictures"][0]["sha1"]))
    assert base64.b64decode(kept.json()["base64"]) == PNG
    # The discussion send carries key and sig, and no group code.
    discussion = sim.world.discussions[40001]
    reply = await in_thread(first.send, "send_discu_msg2",
                            {"did": str(discussion.did), "key": key, "sig": sig}, [piece])
    assert reply.json()["retcode"] == 0
    reply = await in_thread(first.send, "send_discu_msg2", {"did": str(discussion.did)},
                            [piece])
    assert reply.json()["retcode"] == 100006


@pytest.mark.gen_test
async def test_a_friends_picture_send_needs_a_path_uploaded_for_that_friend(sim):
    first, second = await signed_in(sim)
    to_alice = (await upload_offpic(first, 20001))["filepath"]
    to_other = (await upload_offpic(first, 10002))["filepath"]
    by_other = (await upload_offpic(second, 10001))["filepath"]
    alice = sim.world.uin(10001, 20001)
    for path in (to_other, by_other, "/00000000-0000-0000-0000-000000000000"):
        reply = await in_thread(first.send, "send_buddy_msg2", {"to": alice},
                                [["offpic", path, "cat.jpg", len(JPEG)]])
        assert reply.json()["retcode"] == 100006, path
    for piece in (["offpic", to_alice], ["offpic", to_alice, "cat.jpg", "12"],
                  ["cface", "group", "X.jPg"]):
        reply = await in_thread(first.send, "send_buddy_msg2", {"to": alice}, [piece])
        assert reply.json()["retcode"] == 100006, piece
    reply = await in_thread(first.send, "send_buddy_msg2", {"to": alice},
                            [["offpic", to_alice, "cat.jpg", len(JPEG)]])
    assert reply.json()["retcode"] == 0


@pytest.mark.gen_test
async def test_a_session_message_carries_no_picture(sim):
    first, _ = await signed_in(sim)
    group = sim.world.groups[30001]
    alice = sim.world.uin(10001, 20001)
    sig = (await in_thread(first.channel_get, "get_c2cmsg_sig2", id=group.gid, to_uin=alice,
                           service_type=0)).json()["result"]["value"]
    path = (await upload_offpic(first, 20001))["filepath"]
    reply = await in_thread(first.send, "send_sess_msg2",
                            {"to": alice, "group_sig": sig, "service_type": 0},
                            [["offpic", path, "cat.jpg", len(JPEG)]])
    assert reply.json()["retcode"] == 100006


# --- receiving and fetching ---------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_friends_offpic_is_delivered_and_fetched_by_that_friend_only(sim):
    first, second = await signed_in(sim)
    path = (await upload_offpic(first, 10002, data=GIF))["filepath"]
    reply = await in_thread(first.send, "send_buddy_msg2", {"to": sim.world.uin(10001, 10002)},
                            ["see", ["offpic", path, "cat.gif", len(GIF)]])
    assert reply.json()["retcode"] == 0
    (item,) = items(await in_thread(second.poll), "message")
    assert item["value"]["content"][1:] == ["see", ["offpic", {"success": 1,
                                                               "file_path": path}]]
    first_uin = sim.world.uin(10002, 10001)
    reply = await in_thread(second.channel_get, "get_offpic2", file_path=path, f_uin=first_uin)
    assert reply.status == 302
    picture = await in_thread(fetch_plain, reply.headers["Location"])
    assert (picture.body, picture.headers["Content-Type"]) == (GIF, "image/gif")
    assert reply.headers["Location"].startswith("http://127.0.0.1:%d/picture/" % sim.port)
    for browser, query in ((second, {"file_path": path, "f_uin": 1}),
                           (second, {"file_path": "/gone", "f_uin": first_uin}),
                           (first, {"file_path": path, "f_uin": sim.world.uin(10001, 10002)})):
        reply = await in_thread(browser.channel_get, "get_offpic2", **query)
        assert (reply.status, reply.json()) == (200, {"retcode": 103, "errmsg": ""}), query
    gone = await in_thread(fetch_plain, "http://127.0.0.1:%d/picture/0123abcd" % sim.port)
    assert gone.status == 404


@pytest.mark.gen_test
async def test_a_group_picture_is_delivered_with_its_server_and_fetched_by_members(sim):
    first, second = await signed_in(sim)
    group = sim.world.groups[30001]
    name = (await upload_cface(first, data=JPEG))[2]
    key, sig = await gface(first)
    await in_thread(first.send, "send_qun_msg2", {"group_uin": group.gid,
                                                  "group_code": group.code, "key": key,
                                                  "sig": sig}, [["cface", "group", name]])
    (item,) = items(await in_thread(second.poll), "group_message")
    piece = item["value"]["content"][1]
    assert piece[0] == "cface" and list(piece[1]) == ["name", "file_id", "key", "server"]
    assert (piece[1]["name"], piece[1]["server"]) == (name, "127.0.0.1:%d" % sim.port)
    query = {"type": 0, "gid": group.code, "uin": sim.world.uin(10002, 10001), "rip": "127.0.0.1",
             "rport": sim.port, "fid": piece[1]["file_id"], "pic": name,
             "vfwebqq": second.session["vfwebqq"], "t": 1366948800}

    async def group_pic(**change):
        q = urllib.parse.urlencode(dict(query, **change))
        return await in_thread(second.fetch, "http://web2.qq.com/cgi-bin/get_group_pic?" + q,
                               None, {"Referer": WEB2})

    reply = await group_pic()
    assert reply.status == 302
    assert (await in_thread(fetch_plain, reply.headers["Location"])).body == JPEG
    elsewhere = await group_pic(rip="10.1.2.3", rport=9072)        # wherever the piece said
    assert elsewhere.headers["Location"].startswith("http://10.1.2.3:9072/picture/")
    for change in ({"fid": piece[1]["file_id"] + 1}, {"pic": "X.jPg"}, {"uin": 1},
                   {"type": 1}, {"gid": group.gid}, {"rport": 0}, {"rip": "a b"}):
        reply = await group_pic(**change)
        assert (reply.status, reply.json()) == (200, {"retcode": 100001}), change
    assert (await group_pic(vfwebqq="0" * 80)).json() == {"retcode": 100000}


@pytest.mark.gen_test
async def test_pictures_said_become_the_received_pieces_a_client_fetches(sim, tmp_path):
    first, _ = await signed_in(sim)
    said = await in_thread(first.control, "say", {
        "to": 10001, "from": 20001, "content": ["a", ["picture", {"base64": base64.b64encode(
            PNG).decode(), "as": "cface"}]]})
    value = said.json()["item"]["value"]
    name = value["content"][2][1]
    assert value["content"][2] == ["cface", name, ""] and name.endswith(".pNg")
    alice = sim.world.uin(10001, 20001)
    reply = await in_thread(first.channel_get, "get_cface2", lcid=value["msg_id"], guid=name,
                            to=alice, count=5, time=1)
    assert (reply.status, reply.body, reply.headers["Content-Type"]) == (200, PNG, "image/png")
    for query in ({"to": 1}, {"lcid": "x"}, {"guid": "X.jPg"}):
        q = dict({"lcid": value["msg_id"], "guid": name, "to": alice}, **query)
        reply = await in_thread(first.channel_get, "get_cface2", **q)
        assert reply.json() == {"retcode": 103, "errmsg": ""}, query
    said = await in_thread(first.control, "say", {"to": 10001, "group": 30001, "from": 20002,
                                                  "picture": {"file": "certs/../" + "x.gif"}})
    assert said.status == 400 and "cannot read" in said.json()["error"]


@pytest.mark.gen_test
async def test_say_refuses_a_picture_it_cannot_read_or_place(sim):
    first, _ = await signed_in(sim)
    b64 = base64.b64encode(JPEG).decode()
    cases = [({"picture": {"base64": "not base64!"}}, "base64 is not valid"),
             ({"picture": {"base64": base64.b64encode(b"%PDF").decode()}}, "not a JPEG"),
             ({"picture": {"base64": b64, "file": "x.jpg"}}, "picture: {"),
             ({"picture": {}}, "picture: {"),
             ({"picture": {"file": "/etc/passwd"}}, "relative to the world's folder"),
             ({"picture": {"file": "../../setup.py"}}, "outside the world's folder"),
             ({"picture": {"base64": b64, "as": "image"}}, "\"as\" is"),
             ({"group": 30001, "picture": {"base64": b64, "as": "cface"}}, "\"as\" is"),
             ({"content": [["picture", "x"]]}, "content: "),
             ({"picture": "x"}, "picture: expected an object")]
    for extra, problem in cases:
        reply = await in_thread(first.control, "say", dict({"to": 10001, "from": 20002},
                                                           **extra))
        assert reply.status == 400 and problem in reply.json()["error"], (extra, reply.text)
    missing = await in_thread(first.control, "picture?sha1=" + "0" * 40)
    assert missing.status == 400


@pytest.mark.gen_test
async def test_a_world_file_names_its_pictures_by_path(io_loop, request, tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cat.bmp").write_bytes(BMP)
    world = tmp_path / "world.json"
    world.write_text(json.dumps(default_world()))
    sim = start_simulator(io_loop, request, world=str(world))
    browser = Browser(sim)
    await in_thread(browser.sign_in, 10001)
    said = await in_thread(browser.control, "say", {"to": 10001, "discussion": 40001,
                                                    "from": 20003,
                                                    "picture": {"file": "pictures/cat.bmp"}})
    assert said.status == 200, said.text
    piece = said.json()["item"]["value"]["content"][1]
    assert piece[1]["name"] == hashlib.md5(BMP).hexdigest().upper() + ".bMp"
    dict_world = start_simulator(io_loop, request, world=default_world())
    other = Browser(dict_world)
    await in_thread(other.sign_in, 10001)
    refused = await in_thread(other.control, "say", {"to": 10001, "from": 20001,
                                                     "picture": {"file": "cat.bmp"}})
    assert refused.status == 400 and "send base64" in refused.json()["error"]


@pytest.mark.gen_test
async def test_the_picture_pages_referers_pass_the_strict_policy(io_loop, request):
    sim = start_simulator(io_loop, request, world=default_world(referer="strict"))
    browser = Browser(sim)
    session = await in_thread(browser.sign_in, 10001)
    query = urllib.parse.urlencode({"clientid": session["clientid"], "t": 1,
                                    "psessionid": session["psessionid"]})
    url = "http://d.web2.qq.com/channel/get_gface_sig2?" + query
    for referer in (WEB2, "http://web2.qq.com/"):
        reply = await in_thread(browser.fetch, url, None, {"Referer": referer})
        assert reply.json()["retcode"] == 0, referer
    reply = await in_thread(browser.fetch, url, None, {"Referer": "http://web2.qq.com/x"})
    assert reply.json() == {"retcode": 103, "errmsg": ""}
    assert (await upload_offpic(browser, 20001))["retcode"] == 0
    assert (await upload_offpic(browser, 20001, referer="http://web.qq.com/"))["retcode"] == 2
