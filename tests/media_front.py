"""A stand-in for the picture, file and request endpoints, in front of the simulator: the
OneBot media tests still use it (to be moved onto the simulator, which now serves
these endpoints itself; see tests/test_client_media.py).

``MediaFront`` listens on loopback. The client's ``hosts`` send ``d.web2``, ``s.web2``
and ``web2.qq.com`` to it, and the hosts the simulator has no name for
(``weboffline.ftn.qq.com``, ``up.web2.qq.com``, ``file1.web.qq.com``): it answers what
it knows, as the 2013 sources show the servers answering, and passes every other
request through to the simulator unchanged (cookies, headers, status, body), so that
the login, the contacts, the poll and the sends are the simulator's own.

What it serves (the source of each shape in docs/media.rst):

* ``upload_offline_pic`` (multipart): the callback page with ``filepath``; the form's
  ``skey`` must be the cookie's, ``vfwebqq`` the session's;
* ``cface_upload`` (multipart, ``from=control``): ``{'ret':0,'msg':'NAME'}``, ``ret 4``
  for a picture it has, ``ret 2`` over 1 MB;
* ``get_gface_sig2``, ``get_offpic2`` (a 302 to the picture, 103 for an unknown path),
  ``get_cface2`` (the picture), ``get_group_pic`` (a 302 to the server the piece
  names: ``rip:rport``, which is this server);
* ``get_file2`` (a 302 to the file; 102 for an unknown transfer), ``refuse_file2``,
  offline files at ``http://IP:PORT/NAME?ver=2173&rkey=...``;
* ``op_group_join_req``, ``quit_group2``, ``update_group_business_card2``,
  ``allow_and_add2``, ``deny_added_request2``;
* ``poll2``: items a test ``push``es are delivered on the next poll; otherwise the
  simulator answers it.

Every d.web2 call must carry the session's psessionid (else 103) and every s.web2 or
upload call its vfwebqq (else 100000): the front learns both from the ``login2``
answer passing through.
"""
import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import pytest
from client_helpers import POLL_HOLD, Recorder
from tornado import httputil
from tornado.concurrent import Future
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from webqq.http_stream import HTTPStream

#: Hosts the front takes from the simulator, and those only it serves.
FRONTED = ("d.web2.qq.com", "s.web2.qq.com", "web2.qq.com")
OWN = ("weboffline.ftn.qq.com", "up.web2.qq.com", "file1.web.qq.com")
CFACE_MAX = 1024 * 1024
GFACE_KEY, GFACE_SIG = "Icn6VvY89nFcaGiH", "a2e96a31386ce2ebac8fe8426b1d0b80a462bbf1"
_UPLOAD_PAGE = ('<head><script type="text/javascript">document.domain=\'qq.com\';'
                "parent.EQQ.Model.ChatMsg.%s(%s);</script></head><body></body>")


@dataclass
class Seen:
    """One request the front answered itself."""
    host: str
    method: str
    path: str
    query: Dict[str, str]
    form: Dict[str, str]
    files: Dict[str, Tuple[str, str, bytes]] = field(default_factory=dict)
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def r(self) -> Any:
        """The JSON of the form's ``r``."""
        return json.loads(self.form["r"])


def _wire_extension(name: str) -> str:
    """The 2013 server's spelling of an extension: ``jPg``, ``gIf`` (LUA, CS samples)."""
    extension = name.rsplit(".", 1)[-1].lower()
    return extension[0] + extension[1:2].upper() + extension[2:]


class _Handler(RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST")

    def initialize(self, front: "MediaFront") -> None:
        self.front = front

    async def get(self) -> None:
        await self.front.handle(self)

    async def post(self) -> None:
        await self.front.handle(self)

    def compute_etag(self) -> None:
        return None


class MediaFront:
    """The front (see the module doc). ``hosts`` is the mapping for the client's
    stream; ``seen(path)`` the requests it answered at ``path``."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.requests: List[Seen] = []
        self.psessionid: Optional[str] = None
        self.vfwebqq: Optional[str] = None
        self.offpics: Dict[str, bytes] = {}        # file_path -> bytes
        self.cfaces: Dict[str, bytes] = {}         # name as the server spells it -> bytes
        self.group_pics: Dict[str, bytes] = {}     # pic name -> bytes
        self.file_offers: Dict[int, bytes] = {}    # lcid -> bytes
        self.offline_files: Dict[str, bytes] = {}  # rkey -> bytes
        self.replies: Dict[str, Tuple[int, bytes]] = {}   # path -> forced (status, body)
        self._poll_items: List[dict] = []
        self._waiters: List[Tuple[str, Future]] = []
        self._uploads = 0
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = HTTPServer(Application([(r".*", _Handler, dict(front=self))]))
        self._server.add_sockets(sockets)
        self._http = AsyncHTTPClient(force_instance=True)
        self._routes = {
            ("d.web2.qq.com", "/channel/poll2"): self._poll2,
            ("weboffline.ftn.qq.com", "/ftn_access/upload_offline_pic"):
                self._upload_offline_pic,
            ("up.web2.qq.com", "/cgi-bin/cface_upload"): self._cface_upload,
            ("d.web2.qq.com", "/channel/get_gface_sig2"): self._get_gface_sig2,
            ("d.web2.qq.com", "/channel/get_offpic2"): self._get_offpic2,
            ("d.web2.qq.com", "/channel/get_cface2"): self._get_cface2,
            ("web2.qq.com", "/cgi-bin/get_group_pic"): self._get_group_pic,
            ("d.web2.qq.com", "/channel/get_file2"): self._get_file2,
            ("d.web2.qq.com", "/channel/refuse_file2"): self._ok_in_session,
            ("d.web2.qq.com", "/channel/op_group_join_req"): self._ok_in_session,
            ("s.web2.qq.com", "/api/quit_group2"): self._s_web2_ok,
            ("s.web2.qq.com", "/api/update_group_business_card2"): self._s_web2_ok,
            ("s.web2.qq.com", "/api/allow_and_add2"): self._s_web2_ok,
            ("s.web2.qq.com", "/api/deny_added_request2"): self._s_web2_ok,
        }

    @property
    def server(self) -> str:
        """``"127.0.0.1:PORT"``: what a picture piece names as its server."""
        return "127.0.0.1:%d" % self.port

    @property
    def hosts(self) -> Dict[str, Tuple[str, int]]:
        mapping = dict(self.sim.hosts)
        for host in FRONTED + OWN:
            mapping[host] = ("127.0.0.1", self.port)
        return mapping

    def push(self, *items: dict) -> None:
        """Deliver ``items`` (``{"poll_type":..., "value":...}``) on the next poll."""
        self._poll_items.extend(items)

    def seen(self, path: str) -> List[Seen]:
        return [request for request in self.requests if request.path == path]

    async def arrival(self, path: str) -> Seen:
        """The first request at ``path``, whether it came already or is to come."""
        for request in self.requests:
            if request.path == path:
                return request
        future: Future = Future()
        self._waiters.append((path, future))
        return await future

    async def stop(self) -> None:
        self._server.stop()
        await self._server.close_all_connections()
        self._http.close()

    # -- dispatch ----------------------------------------------------------------------

    async def handle(self, handler: RequestHandler) -> None:
        request = handler.request
        host = request.host.split(":")[0]
        route = self._routes.get((host, request.path))
        if host == "127.0.0.1":
            route = self._gchatpic if request.path.startswith("/gchatpic/") \
                else self._offline_file
        elif host == "file1.web.qq.com":
            route = self._offpic if request.path.startswith("/offpic/") else self._files
        if request.path == "/channel/poll2" and not self._poll_items:
            route = None
        if route is None:
            if host in FRONTED:
                await self._forward(handler)
            else:
                handler.send_error(404)
            return
        seen = self._record(handler, host)
        forced = self.replies.get(request.path)
        if forced is not None:
            handler.set_status(forced[0])
            handler.finish(forced[1])
            return
        route(handler, seen)

    def _record(self, handler: RequestHandler, host: str) -> Seen:
        request = handler.request
        query = {k: v[-1] for k, v in
                 urllib.parse.parse_qs(request.query, keep_blank_values=True).items()}
        form: Dict[str, Any] = {}
        files: Dict[str, List[httputil.HTTPFile]] = {}
        if request.method == "POST":
            arguments: Dict[str, List[bytes]] = {}
            httputil.parse_body_arguments(request.headers.get("Content-Type", ""),
                                          request.body, arguments, files)
            form = {k: v[-1].decode() for k, v in arguments.items()}
        seen = Seen(host, request.method, request.path, query, form,
                    {k: (f[0].filename, f[0].content_type, f[0].body)
                     for k, f in files.items()}, dict(request.headers.get_all()),
                    request.body)
        self.requests.append(seen)
        for waiter in [w for w in self._waiters if w[0] == seen.path]:
            self._waiters.remove(waiter)
            waiter[1].set_result(seen)
        return seen

    async def _forward(self, handler: RequestHandler) -> None:
        request = handler.request
        headers = httputil.HTTPHeaders()
        for name, value in request.headers.get_all():
            if name.lower() not in ("content-length", "connection", "accept-encoding",
                                    "transfer-encoding"):
                headers.add(name, value)
        try:
            answer = await self._http.fetch(HTTPRequest(
                "http://127.0.0.1:%d%s" % (self.sim.port, request.uri),
                method=request.method, headers=headers,
                body=request.body if request.method == "POST" else None,
                follow_redirects=False, decompress_response=False, request_timeout=120),
                raise_error=False)
        except Exception:                 # the simulator went away: a gateway's answer
            handler.send_error(502)
            return
        handler.set_status(answer.code, answer.reason)
        handler.clear_header("Content-Type")
        for name, value in answer.headers.get_all():
            if name.lower() in ("content-type", "set-cookie", "location"):
                handler.add_header(name, value)
        body = answer.body or b""
        if request.path == "/channel/login2" and answer.code == 200:
            result = json.loads(body).get("result") or {}
            self.psessionid = result.get("psessionid", self.psessionid)
            self.vfwebqq = result.get("vfwebqq", self.vfwebqq)
        handler.finish(body)

    # -- answers -----------------------------------------------------------------------

    @staticmethod
    def _json(handler: RequestHandler, value: Any) -> None:
        handler.set_header("Content-Type", "text/plain; charset=utf-8")
        handler.finish(json.dumps(value))

    def _session_ok(self, handler: RequestHandler, seen: Seen) -> bool:
        """d.web2: the psessionid of the live session, else 103 (§5)."""
        psessionid = seen.query.get("psessionid") or seen.form.get("psessionid")
        if psessionid is None or psessionid != self.psessionid:
            self._json(handler, {"retcode": 103, "errmsg": ""})
            return False
        return True

    def _vfwebqq_ok(self, handler: RequestHandler, vfwebqq: Optional[str]) -> bool:
        """s.web2 and the upload servers: the session's vfwebqq, else 100000 (§5)."""
        if vfwebqq is None or vfwebqq != self.vfwebqq:
            self._json(handler, {"retcode": 100000})
            return False
        return True

    def _poll2(self, handler: RequestHandler, seen: Seen) -> None:
        items, self._poll_items = self._poll_items, []
        self._json(handler, {"retcode": 0, "result": list(reversed(items))})

    def _upload_offline_pic(self, handler: RequestHandler, seen: Seen) -> None:
        cookie = httputil.parse_cookie(seen.headers.get("Cookie", ""))
        if not self._vfwebqq_ok(handler, seen.form.get("vfwebqq")):
            return
        if "file" not in seen.files or seen.form.get("skey") != cookie.get("skey"):
            reply = {"retcode": 1, "result": "ERROR"}
        else:
            self._uploads += 1
            name, _type, data = seen.files["file"]
            path = "/%08x-0fcd-4bbd-b885-%012x" % (self._uploads, len(data))
            self.offpics[path] = data
            reply = {"retcode": 0, "result": "OK", "progress": 100, "filesize": len(data),
                     "fileid": seen.form.get("fileid"), "filename": name, "filepath": path}
        handler.finish(_UPLOAD_PAGE % ("callbackSendPic", json.dumps(reply)))

    def _cface_upload(self, handler: RequestHandler, seen: Seen) -> None:
        if not self._vfwebqq_ok(handler, seen.form.get("vfwebqq")):
            return
        upload = seen.files.get("custom_face")
        if upload is None or seen.form.get("from") != "control":
            ret, message = 1, "upload cface failed"
        elif len(upload[2]) > CFACE_MAX:
            ret, message = 2, "over size"
        else:
            name = "%s.%s" % (hashlib.md5(upload[2]).hexdigest().upper(),
                              _wire_extension(upload[0]))
            ret, message = (4, name + " -6102 upload cface failed") \
                if name in self.cfaces else (0, name)
            self.cfaces[name] = upload[2]
        handler.finish(_UPLOAD_PAGE % ("callbackSendPicGroup",
                                       "{'ret':%d,'msg':'%s'}" % (ret, message)))

    def _get_gface_sig2(self, handler: RequestHandler, seen: Seen) -> None:
        if self._session_ok(handler, seen):
            self._json(handler, {"retcode": 0, "result": {
                "reply": 0, "gface_key": GFACE_KEY, "gface_sig": GFACE_SIG}})

    def _get_offpic2(self, handler: RequestHandler, seen: Seen) -> None:
        if not self._session_ok(handler, seen):
            return
        path = seen.query.get("file_path", "")
        if path not in self.offpics:
            self._json(handler, {"retcode": 103, "errmsg": ""})
            return
        handler.redirect("http://file1.web.qq.com/offpic%s?f_uin=%s" % (
            path, seen.query.get("f_uin")))

    def _get_cface2(self, handler: RequestHandler, seen: Seen) -> None:
        if self._session_ok(handler, seen):
            data = self.cfaces.get(seen.query.get("guid", ""))
            if data is None:
                handler.send_error(404)
            else:
                handler.set_header("Content-Type", "image/jpeg")
                handler.finish(data)

    def _get_group_pic(self, handler: RequestHandler, seen: Seen) -> None:
        if not self._vfwebqq_ok(handler, seen.query.get("vfwebqq")):
            return
        query = seen.query
        handler.redirect("http://%s:%s/gchatpic/%s/%s/%s/%s?type=%s" % (
            query["rip"], query["rport"], query["uin"], query["gid"], query["fid"],
            urllib.parse.quote(query["pic"], safe=""), query["type"]))

    def _gchatpic(self, handler: RequestHandler, seen: Seen) -> None:
        name = urllib.parse.unquote(seen.path.rsplit("/", 1)[-1])
        data = self.group_pics.get(name)
        if data is None:
            handler.send_error(404)
        else:
            handler.set_header("Content-Type", "image/jpeg")
            handler.finish(data)

    def _offpic(self, handler: RequestHandler, seen: Seen) -> None:
        handler.set_header("Content-Type", "image/jpeg")
        handler.finish(self.offpics[seen.path[len("/offpic"):]])

    def _get_file2(self, handler: RequestHandler, seen: Seen) -> None:
        if not self._session_ok(handler, seen):
            return
        lcid = int(seen.query.get("lcid", "0"))
        if lcid not in self.file_offers:
            self._json(handler, {"retcode": 102, "errmsg": ""})
            return
        handler.redirect("http://file1.web.qq.com/files/%d" % lcid)

    def _files(self, handler: RequestHandler, seen: Seen) -> None:
        handler.set_header("Content-Type", "application/octet-stream")
        handler.finish(self.file_offers[int(seen.path.rsplit("/", 1)[-1])])

    def _offline_file(self, handler: RequestHandler, seen: Seen) -> None:
        data = self.offline_files.get(seen.query.get("rkey", ""))
        if data is None or seen.query.get("ver") != "2173":
            handler.send_error(404)
        else:
            handler.set_header("Content-Type", "application/octet-stream")
            handler.finish(data)

    def _ok_in_session(self, handler: RequestHandler, seen: Seen) -> None:
        if self._session_ok(handler, seen):
            self._json(handler, {"retcode": 0, "result": "ok"})

    def _s_web2_ok(self, handler: RequestHandler, seen: Seen) -> None:
        if self._vfwebqq_ok(handler, seen.r().get("vfwebqq")):
            r = seen.r()
            self._json(handler, {"retcode": 0, "result": {
                "result1": 0, "account": r.get("account"), "tuin": 3863325290, "stat": 10}
                if seen.path.endswith("allow_and_add2") else {"result": 0}})


@pytest.fixture
def front(world, io_loop):
    """A ``MediaFront`` before the test's simulator; the clients stop before it does."""
    front = MediaFront(world.sim)
    yield front
    for client in world.clients:          # before the front goes: no poll left to pass on
        client.stop("test over")
    for stream in world.streams:
        stream.close()
    io_loop.run_sync(front.stop)


async def online(world, front, **kwargs):
    """A client of ``world`` routed through ``front``, ONLINE, and its ``Recorder``."""
    stream = HTTPStream(hosts=front.hosts, ca_file=world.sim.ca_file,
                        request_timeout=POLL_HOLD + 5, connect_timeout=2)
    client = world.client(stream=stream, **kwargs)
    events = Recorder(client)
    client.start()
    await events.online()
    return client, events
