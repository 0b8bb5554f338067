"""Pictures through the OneBot API, end to end: a client online on the simulator (which
serves the picture endpoints and keeps what is uploaded), the API on loopback, a webhook
receiving its events. A received picture becomes an ``image`` segment whose ``url``
serves its bytes; a bot's ``image`` segment (base64, a path in ``[api] media_dir``, a
URL when ``[api] fetch_urls`` is on, a received picture's name) reaches the simulator as
the same bytes; bad input is a clear error that disturbs nothing; a queued picture
survives a restart."""
import asyncio
import os
import socket
import stat
import subprocess
import sys
import textwrap

import pytest
from api_helpers import FRIEND, GROUP, TOKEN, Webhook, events_of, eventually
from media_helpers import GIF, JPEG, PNG, b64, kept_by_simulator, sha1, spy_stream
from tornado import web
from tornado.httpclient import HTTPRequest
from tornado.ioloop import IOLoop

from webqq import statedir
from webqq.daemon.config import ApiConfig, ConfigError, load
from webqq.onebot.mapping import StoredPicture
from webqq.onebot.media import OutgoingPictures
from webqq.onebot.outbound import Outbound
from webqq.onebot.store import Store
from webqq.qq import UploadPicture


def inline(data: bytes) -> str:
    """An ``image`` segment's ``file`` carrying ``data``."""
    return "base64://" + b64(data)


async def start(harness, **settings):
    """The API on a client online on the simulator through a ``SpyStream``:
    ``(record, stream)``, the webhook's record (every event the API posts) and the
    stream (every request the client made)."""
    record = {}
    port = harness.serve(web.Application([(r"/hook", Webhook, {"record": record})]))
    stream = spy_stream(harness.world)
    await harness.start(stream=stream, post_url="http://127.0.0.1:%d/hook" % port,
                        **settings)
    return record, stream


async def say(harness, **body):
    """A simulated person says something to the account (/_sim/say); the poll item."""
    return (await harness.world.control.say(**body))["item"]


async def get(harness, url, token=TOKEN):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return await harness.http.fetch(HTTPRequest(url, headers=headers), raise_error=False)


async def offpics_sent(harness):
    """The friends' pictures the simulator received, in order: ``(piece, SHA-1 of the
    bytes uploaded)``."""
    return [(sent["content"][picture["piece"]], picture["sha1"])
            for sent in await harness.world.control.sent()
            for picture in sent["pictures"] if picture["kind"] == "offpic"]


def without_polls(requests):
    return [r for r in requests if not r.selector.startswith("/channel/poll2")]


# --- receiving ------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_received_picture_is_an_image_segment_whose_url_serves_its_bytes(harness):
    record, stream = await start(harness)
    client = harness.account.client
    await say(harness, **{"from": FRIEND}, content=[
        "look ", ["face", 14], ["picture", {"base64": b64(JPEG)}], " here"])
    (event,) = await eventually(lambda: events_of(record, "message"), "the message")
    message = event["message"]
    name = message[message.index("file=") + 5:message.index(",url=")]
    url = "%s/images/%s" % (harness.api.url, name)
    assert message == "look [CQ:face,id=14][CQ:image,file=%s,url=%s] here" % (name, url)

    assert (await get(harness, url, token=None)).code == 401         # the token is needed
    assert (await get(harness, url, token="wrong")).code == 403
    served = await get(harness, url)
    assert (served.code, served.body, served.headers["Content-Type"]) == (
        200, JPEG, "image/jpeg")
    again = await get(harness, url + "?access_token=" + TOKEN)      # or in the query
    assert again.body == JPEG
    assert len(stream.asked("/channel/get_offpic2")) == 1           # then from the cache
    image = await harness.ok("get_image", {"file": name})
    assert (image["size"], image["filename"], image["url"]) == (len(JPEG), name, url)
    with open(image["file"], "rb") as cached:                       # under state_dir
        assert cached.read() == JPEG
    assert image["file"].startswith(client.state_dir)

    stored = await harness.ok("get_msg", {"message_id": event["message_id"]})
    assert stored["message"] == message
    missing = await get(harness, "%s/images/%s.image" % (harness.api.url, "0" * 40))
    assert missing.code == 404 and b"no picture received" in missing.body
    code, answer = await harness.call("get_image", {"file": "cat.jpg"})
    assert (answer["retcode"], answer["msg"]) == (100, "file must be the file of an "
                                                       "image segment received (40 hex "
                                                       "digits and .image)")


@pytest.mark.gen_test(timeout=30)
async def test_a_picture_the_server_cannot_serve_is_a_clear_answer(harness):
    record, stream = await start(harness)
    await say(harness, **{"from": FRIEND}, content=[
        ["offpic", {"success": 1, "file_path": "/gone"}]])        # a path it never gave
    (event,) = await eventually(lambda: events_of(record, "message"), "the message")
    url = event["message"].split(",url=")[1].rstrip("]")
    answer = await get(harness, url)
    assert answer.code == 502 and b"cannot be fetched" in answer.body


# --- sending ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_bots_pictures_reach_the_server_as_the_same_bytes_in_order(harness, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "cat.png").write_bytes(PNG)
    await start(harness, media_dir=media)
    sent = await harness.ok("send_private_msg", {
        "user_id": FRIEND, "message": "a [CQ:face,id=14][CQ:image,file=%s] b" % inline(JPEG)})
    last = (await harness.world.control.sent())[-1]
    (((_, path, name, size), digest),) = await offpics_sent(harness)
    assert digest == sha1(JPEG) and size == len(JPEG)
    assert await kept_by_simulator(harness.world, digest) == JPEG
    assert last["content"] == ["a ", ["face", 14], ["offpic", path, name, len(JPEG)], " b"]
    stored = await harness.ok("get_msg", {"message_id": sent["message_id"]})
    assert stored["send_status"] == "sent"
    assert stored["message"] == "a [CQ:face,id=14][CQ:image,file=%s] b" % name  # no base64

    await harness.ok("send_group_msg", {"group_id": GROUP, "message": [
        {"type": "image", "data": {"file": "cat.png"}},                 # relative to it
        {"type": "text", "data": {"text": "and"}},
        {"type": "image", "data": {"file": "file://" + str(media / "cat.png")}}]})
    group_sent = [s for s in await harness.world.control.sent() if s["kind"] == "group"][-1]
    cface = group_sent["content"][0][2]
    assert group_sent["content"] == [["cface", "group", cface], "and",
                                     ["cface", "group", cface]]
    assert [p["sha1"] for p in group_sent["pictures"]] == [sha1(PNG)] * 2
    assert await kept_by_simulator(harness.world, sha1(PNG)) == PNG
    assert not os.listdir(harness.account.client.state_dir + "/" + statedir.MEDIA_OUT)  # swept


@pytest.mark.gen_test(timeout=30)
async def test_a_received_picture_can_be_sent_back_by_its_name(harness):
    record, stream = await start(harness)
    await say(harness, group=GROUP, **{"from": FRIEND}, picture={"base64": b64(GIF)})
    (event,) = await eventually(lambda: events_of(record, "message"), "the message")
    await harness.ok("send_msg", {"group_id": GROUP, "message": event["message"]})
    assert len(stream.asked("/cgi-bin/get_group_pic")) == 1          # fetched, then sent
    (sent,) = await harness.world.control.sent()
    assert (sent["kind"], sent["to"], sent["content"][0][0]) == ("group", GROUP, "cface")
    assert [p["sha1"] for p in sent["pictures"]] == [sha1(GIF)]
    assert await kept_by_simulator(harness.world, sha1(GIF)) == GIF


@pytest.mark.gen_test(timeout=30)
async def test_bad_pictures_are_clear_errors_and_disturb_nothing(harness, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (tmp_path / "secret.jpg").write_bytes(JPEG)
    os.symlink(tmp_path / "secret.jpg", media / "link.jpg")
    (media / "big.jpg").write_bytes(JPEG + b"\0" * (1024 * 1024))
    record, stream = await start(harness, media_dir=media)
    before = len(stream.requests)
    refusals = {
        inline(b"%PDF-1.4 not a picture"): "image file=base64://…: not a picture: JPEG, "
                                        "PNG, GIF or BMP expected, the data starts with "
                                        "b'%PDF-1.4'",
        inline(JPEG + b"\0" * (1024 * 1024)): "image file=base64://…: the picture is too "
                                           "large: 1,049,612 bytes, the 2013 limit is "
                                           "1,048,576 bytes",
        "base64://not base64!": "image file=base64://…: not valid base64",
        "big.jpg": "image file=%s: the picture is too large: 1,049,612 bytes, the 2013 "
                   "limit is 1,048,576 bytes" % (media / "big.jpg"),
        "../secret.jpg": "image file=../secret.jpg: the path is outside [api] media_dir "
                         "(%s)" % media,
        str(tmp_path / "secret.jpg"): "image file=%s: the path is outside [api] "
                                      "media_dir (%s)" % (tmp_path / "secret.jpg", media),
        "link.jpg": "image file=link.jpg: the path is outside [api] media_dir (%s)" % media,
        "absent.jpg": "image file=%s: cannot be read: No such file or directory"
                      % (media / "absent.jpg"),
        "http://127.0.0.1:9/cat.jpg": "image file=http://127.0.0.1:9/cat.jpg: sending "
                                      "pictures by URL is off ([api] fetch_urls = no)",
        "ftp://example.com/cat.jpg": "image file=ftp://example.com/cat.jpg: not one of "
                                     "base64://DATA, a path inside [api] media_dir, an "
                                     "http(s) URL (with [api] fetch_urls = yes) or the "
                                     "file of a picture received",
    }
    for file, why in refusals.items():
        code, answer = await harness.call("send_private_msg", {
            "user_id": FRIEND, "message": [{"type": "text", "data": {"text": "x"}},
                                           {"type": "image", "data": {"file": file}}]})
        assert (code, answer["status"], answer["retcode"], answer["msg"]) == (
            200, "failed", 100, why), file
    harness.outbound.sessions[55555] = (55555, 30001, 0)   # a stranger met in a group
    code, answer = await harness.call("send_private_msg", {
        "user_id": 55555, "message": "[CQ:image,file=%s]" % inline(JPEG)})
    assert (answer["retcode"], answer["msg"]) == (
        100, "a session message cannot carry pictures")
    code, answer = await harness.call("send_group_msg", {
        "group_id": GROUP, "message": "[CQ:image]"})
    assert answer["retcode"] == 100 and answer["msg"].startswith("an image segment needs")
    assert without_polls(stream.requests[before:]) == []  # nothing uploaded, nothing sent
    assert harness.outbound.waiting() == 0
    await harness.ok("send_private_msg", {"user_id": FRIEND, "message": "still fine"})
    assert [s["text"] for s in await harness.world.control.sent()] == ["still fine"]


@pytest.mark.gen_test(timeout=30)
async def test_without_media_dir_no_path_is_accepted(harness):
    await start(harness)
    code, answer = await harness.call("send_private_msg", {
        "user_id": FRIEND, "message": "[CQ:image,file=/etc/hostname]"})
    assert (answer["retcode"], answer["msg"]) == (
        100, "image file=/etc/hostname: sending pictures by path needs [api] media_dir")


@pytest.mark.gen_test(timeout=30)
async def test_urls_are_fetched_when_allowed_within_the_limit(harness):
    pictures = {"/cat.jpg": (200, JPEG), "/big.jpg": (200, JPEG + b"\0" * 1024 * 1024),
                "/gone.jpg": (404, b"not here"), "/page.html": (200, b"<html></html>")}

    class Pictures(web.RequestHandler):
        def get(self):
            status, body = pictures[self.request.path]
            self.set_status(status)
            self.finish(body)
    port = harness.serve(web.Application([(r"/.*", Pictures)]))
    await start(harness, fetch_urls=True)
    url = "http://127.0.0.1:%d" % port
    await harness.ok("send_private_msg", {"user_id": FRIEND,
                                          "message": "[CQ:image,file=%s/cat.jpg]" % url})
    (((_, _path, name, _size), digest),) = await offpics_sent(harness)
    assert (digest, name) == (sha1(JPEG), "cat.jpg")
    assert await kept_by_simulator(harness.world, digest) == JPEG
    for file, retcode, why in (
            ("big.jpg", 100, "the picture is too large: over 1,048,576 bytes, the 2013 "
                             "limit"),
            ("gone.jpg", 103, "cannot be fetched: HTTP 404 Not Found"),
            ("page.html", 100, "not a picture")):
        code, answer = await harness.call("send_private_msg", {
            "user_id": FRIEND, "message": "[CQ:image,file=%s/%s]" % (url, file)})
        assert answer["retcode"] == retcode and why in answer["msg"], answer


# --- the durable queue ------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_queued_picture_survives_a_restart_as_a_file_then_goes(harness, tmp_path):
    offline = harness.world.client()                      # never started
    store = Store(tmp_path / "messages.sqlite3")
    outbound = Outbound(offline, store, self_id=10001)
    outbound.start()
    segments = [{"type": "image", "data": {"file": "cat.jpg"}}]
    message_id, _ = await outbound.put("buddy", FRIEND, [
        "look", UploadPicture.from_bytes(JPEG, "cat.jpg")], segments)
    (kept,) = (tmp_path / "10001" / statedir.MEDIA_OUT).iterdir()
    assert kept.read_bytes() == JPEG and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert store.get(message_id).data["pieces"] == [
        "look", {"picture": kept.name, "format": "jpg", "name": "cat.jpg"}]
    outbound.release()
    outbound.close()
    store.close()

    await start(harness)                                  # the same state_dir and store
    await eventually(lambda: not kept.exists(), "the picture file to go once sent")
    ((_piece, digest),) = await offpics_sent(harness)
    assert await kept_by_simulator(harness.world, digest) == JPEG
    stored = await harness.ok("get_msg", {"message_id": message_id})
    assert (stored["send_status"], stored["message"]) == ("sent", "[CQ:image,file=cat.jpg]")


@pytest.mark.gen_test(timeout=30)
async def test_one_accounts_sweep_leaves_another_accounts_queued_picture(harness, tmp_path,
                                                                        monkeypatch):
    # A daemon's accounts share state_dir/media-out: each sweep (at its start, hourly,
    # after a picture message) removed every picture its own rows did not name, so the
    # second account's start deleted the first's queued picture. A sweep reads every
    # account's rows, so the accounts' starts make one.
    from conftest import settle
    shared = tmp_path / "run"
    store = Store(tmp_path / "messages.sqlite3")
    pictures = OutgoingPictures(shared / statedir.MEDIA_OUT)      # as the daemon has it
    first = Outbound(harness.world.client(10001, state_dir=str(shared)),
                     store.for_account(10001), self_id=10001, pictures=pictures)
    first.start()
    message_id, _ = await first.put("buddy", FRIEND, [
        "look", UploadPicture.from_bytes(JPEG, "cat.jpg")],
        [{"type": "image", "data": {"file": "cat.jpg"}}])
    (kept,) = (shared / statedir.MEDIA_OUT).iterdir()
    sweeps = []
    monkeypatch.setattr(Store, "pending_with_pictures",
                        lambda view, read=Store.pending_with_pictures: sweeps.append(1)
                        or read(view))
    others = [Outbound(harness.world.client(qq, state_dir=str(shared)),
                       store.for_account(qq), self_id=qq, pictures=pictures)
              for qq in (10002, 10003, 10004)]
    for outbound in others:
        outbound.start()                                    # each sweeps as it starts
    await settle(IOLoop.current())
    assert sweeps == [1]                                    # one sweep for all of them
    others[0]._prune()                                      # and every hour
    await settle(IOLoop.current())
    assert kept.read_bytes() == JPEG
    assert first.store.get(message_id).status == "queued"
    for outbound in [first] + others:
        outbound.release()
        outbound.close()
    store.close()


def test_a_picture_gone_from_media_out_or_damaged_is_a_clear_reason(tmp_path):
    pictures = OutgoingPictures(tmp_path)
    with pytest.raises(ValueError, match="its picture cat.jpg is gone from"):
        pictures.load(StoredPicture("a" * 64, "jpg", "cat.jpg"))
    (tmp_path / ("b" * 64)).write_bytes(JPEG)
    with pytest.raises(ValueError, match="is damaged"):
        pictures.load(StoredPicture("b" * 64, "jpg", "cat.jpg"))
    assert pictures.sweep({"c" * 64}) == 1 and not (tmp_path / ("b" * 64)).exists()


def test_media_dir_and_fetch_urls_are_read_from_the_api_section(tmp_path):
    (tmp_path / "pictures").mkdir()
    ini = tmp_path / "webqq.ini"
    ini.write_text("[simulator]\nembedded = yes\n[api]\nmedia_dir = pictures\n"
                   "fetch_urls = yes\n")
    loaded = load(ini)
    assert (loaded.api.media_dir, loaded.api.fetch_urls) == (tmp_path / "pictures", True)
    assert ApiConfig().media_dir is None and ApiConfig().fetch_urls is False
    ini.write_text("[simulator]\nembedded = yes\n[api]\nmedia_dir = nowhere\n")
    with pytest.raises(ConfigError) as refused:
        load(ini)
    assert str(refused.value).endswith("[api] media_dir: 'nowhere' is not a directory: %s "
                                       "does not exist" % (tmp_path / "nowhere"))


# --- a bot written for aiocqhttp --------------------------------------------------------

# The bot fetches the picture at its url (with the token), writes it to media_dir, and
# answers with it three ways: as base64, by its path in media_dir, and as README's image
# echo bot does, with the received segments themselves (their file names).
AIOCQHTTP_BOT = textwrap.dedent("""\
    import base64, pathlib, sys
    import httpx
    from aiocqhttp import CQHttp, Message, MessageSegment

    port, token, media = int(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
    bot = CQHttp(access_token=token)

    @bot.on_message("private")
    async def echo(event):
        for segment in Message(event.message):
            if segment.type != "image":
                continue
            async with httpx.AsyncClient(trust_env=False) as http:
                answer = await http.get(segment.data["url"],
                                        headers={"Authorization": "Bearer " + token})
            (media / "echo.jpg").write_bytes(answer.content)
            encoded = base64.b64encode(answer.content).decode()
            await bot.send(event, MessageSegment.image("base64://" + encoded))
            await bot.send(event, MessageSegment.image("echo.jpg"))
        # README's image echo bot:
        pictures = [s for s in Message(event.message) if s.type == "image"]
        if pictures:
            await bot.send(event, pictures)

    bot.run(host="127.0.0.1", port=port)
    """)


async def listening(port: int, process) -> bool:
    assert process.poll() is None, "the bot exited: %s" % process.stderr.read()
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


@pytest.mark.gen_test(timeout=60)
async def test_an_aiocqhttp_bot_gets_a_picture_by_its_url_and_sends_it_back(harness, tmp_path):
    pytest.importorskip("aiocqhttp")
    media = tmp_path / "media"
    media.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "bot.py").write_text(AIOCQHTTP_BOT)
    bot = subprocess.Popen([sys.executable, str(tmp_path / "bot.py"), str(port), TOKEN,
                            str(media)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not await listening(port, bot):
            assert loop.time() < deadline, "the bot never listened"
            await asyncio.sleep(0.05)
        await start(harness, media_dir=media,
                    ws_reverse_url="ws://127.0.0.1:%d/ws/" % port)
        await eventually(lambda: harness.account.reverse.connects, "the reverse WebSocket")
        await say(harness, **{"from": FRIEND}, text="for you", picture={"base64": b64(JPEG)})
        replies = []

        async def three_replies():
            replies[:] = await offpics_sent(harness)
            return len(replies) == 3
        deadline = loop.time() + 20
        while not await three_replies():
            assert loop.time() < deadline, "the bot's replies: %r" % replies
            await asyncio.sleep(0.05)
        assert [digest for _piece, digest in replies] == [sha1(JPEG)] * 3
        assert await kept_by_simulator(harness.world, sha1(JPEG)) == JPEG
        assert (media / "echo.jpg").read_bytes() == JPEG        # what the url served
    finally:
        bot.terminate()
        try:
            bot.wait(timeout=5)
        except subprocess.TimeoutExpired:   # Quart on 3.13 may outlive SIGTERM with a socket open
            bot.kill()
            bot.wait(timeout=5)
        bot.stderr.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_queued_picture_whose_file_is_gone_fails_only_its_message(harness):
    await start(harness)
    lost, _ = harness.outbound.accept("buddy", FRIEND, [
        "look", StoredPicture("a" * 64, "jpg", "cat.jpg")], [])
    status, why = await harness.outbound.outcome(lost, 10)
    assert status == "failed" and why.startswith("its picture cat.jpg is gone from ")
    await harness.ok("send_private_msg", {"user_id": FRIEND, "message": "next"})
    assert [s["text"] for s in await harness.world.control.sent()] == ["next"]
