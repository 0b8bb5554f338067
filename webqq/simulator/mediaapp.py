"""The protocol handlers of pictures, files, friend and group requests, and the
simulator's picture and file server.

mediaapp: HTTP in, calls on the back end's ``pictures``, ``files`` and ``manage`` parts,
bytes out, built on ``app.py``'s handlers (the Referer policy, faults, quiet logging).
``ROUTES`` adds these endpoints to the hosts of ``app.py`` (``server.py`` joins the two
tables) and ``SERVER_ROUTES`` is the picture and file server on the simulator's own
address. Like ``app.py`` it decides no protocol rule itself, never blocks the IOLoop and
never logs a query string, a cookie or a form field.

Endpoints (docs/protocol.rst §3.24 - §3.26; the rules are in pictures.py, files.py and
manage.py)::

    POST weboffline.ftn.qq.com /ftn_access/upload_offline_pic   multipart -> a page
    POST up.web2.qq.com /cgi-bin/cface_upload                   multipart -> a page
    GET  d.web2.qq.com /channel/get_gface_sig2, get_offpic2 (302), get_cface2,
         get_file2 (302), refuse_file2, op_group_join_req
    POST s.web2.qq.com /api/allow_and_add2, allow_added_request2, deny_added_request2,
         quit_group2, update_group_business_card2
    GET  web2.qq.com /cgi-bin/get_group_pic                     302 to rip:rport
    GET  HOST:PORT /picture/TICKET, /file/TICKET, /NAME?ver=2173&rkey=RKEY&range=N

A refused Referer is answered as missing cookies (§2.4): the upload servers with
their refusal page, the others with their JSON refusal.
"""
from urllib.parse import parse_qs

from tornado import routing, web

from . import wire
from .app import ChannelHandler, InfoHandler, ProtocolHandler, _ApiHandler
from .pictures import callback_of, cface_page, offpic_page

__all__ = ["ROUTES", "SERVER_ROUTES"]


class _Redirects:
    """A 302 that an injected fault striking ``after`` replaces, as any reply."""

    def redirect_to(self, location: str) -> None:
        if self._after is not None:
            self.reply(b"")             # the fault instead: a status or a reset
        else:
            self.redirect(location, status=302)


class _UploadHandler(_ApiHandler):
    """POST on an upload server: a multipart form, answered with a page."""

    #: The form's file part.
    PART = ""

    def _cookies(self) -> dict:
        return self.cookie_values() if self.referer_ok() else {}

    def _form(self) -> tuple:
        """``(fields, upload)``: the text fields (valid UTF-8 only) and ``(filename,
        bytes)`` of the file part, or None; nothing for a body that is not multipart."""
        media_type = self.request.headers.get("Content-Type", "").partition(";")[0]
        if media_type.strip().lower() != "multipart/form-data":
            return {}, None
        fields = {}
        for name, values in self.request.body_arguments.items():
            try:
                fields[name] = values[-1].decode("utf-8")
            except UnicodeDecodeError:
                continue
        parts = self.request.files.get(self.PART)
        return fields, ((parts[0].filename, parts[0].body) if parts else None)


class OfflinePictureUploadHandler(_UploadHandler):
    """POST weboffline.ftn.qq.com/ftn_access/upload_offline_pic: a friend's picture."""

    POST_CALLS = {"upload_offline_pic": "upload"}
    PART = "file"

    def reply_retcode(self, retcode: int):
        # A retcode fault answers in this server's own form (as /login's does).
        callback = callback_of(self._form()[0].get("callback"))
        return self.reply(offpic_page(callback, {"retcode": retcode, "result": "ERROR"}),
                          wire.HTML_TYPE)

    async def post(self, name):
        fields, upload = self._form()
        callback, reply = self.backend.pictures.upload_offline(self._cookies(), fields, upload)
        self.reply(offpic_page(callback, reply), wire.HTML_TYPE)


class CustomFaceUploadHandler(_UploadHandler):
    """POST up.web2.qq.com/cgi-bin/cface_upload: a group or discussion picture."""

    POST_CALLS = {"cface_upload": "upload"}
    PART = "custom_face"

    def reply_retcode(self, retcode: int):
        # A retcode fault answers in this server's own form: the page with 'ret'.
        callback = callback_of(self._form()[0].get("f"))
        return self.reply(cface_page(callback, retcode, "upload cface failed"), wire.HTML_TYPE)

    async def post(self, name):
        fields, upload = self._form()
        callback, ret, message = self.backend.pictures.upload_cface(self._cookies(), fields,
                                                                    upload)
        self.reply(cface_page(callback, ret, message), wire.HTML_TYPE)


class MediaChannelHandler(_Redirects, ChannelHandler):
    """d.web2.qq.com/channel/<call>: the group signature, received pictures, files, and
    answering a request to join a group."""

    GET_CALLS = {"get_gface_sig2": "gface_sig", "get_offpic2": "offpic",
                 "get_cface2": "friend_cface", "get_file2": "get_file",
                 "refuse_file2": "refuse_file", "op_group_join_req": "answer_join"}
    POST_CALLS = {}

    async def gface_sig(self):
        self.reply_json(self.backend.pictures.gface_sig(self._session_from_query()))

    async def offpic(self):
        session = self._session_from_query()
        self.redirect_to(self.backend.pictures.offpic_location(
            session, self.arg("file_path"), self.arg("f_uin")))

    async def friend_cface(self):
        session = self._session_from_query()
        picture = self.backend.pictures.friend_cface(session, self.arg("lcid"),
                                                     self.arg("guid"), self.arg("to"))
        self.reply(picture.data, picture.content_type)

    async def get_file(self):
        session = self._session_from_query()
        self.redirect_to(self.backend.files.accept(session, self.arg("lcid"),
                                                   self.arg("guid"), self.arg("to")))

    async def refuse_file(self):
        session = self._session_from_query()
        self.reply_json(self.backend.files.refuse(session, self.arg("lcid"), self.arg("to")))

    async def answer_join(self):
        session = self._session_from_query()
        query = {name: self.arg(name) for name in ("group_uin", "req_uin", "msg", "op_type")}
        self.reply_json(self.backend.manage.answer_join(session, query))


class ManageInfoHandler(InfoHandler):
    """s.web2.qq.com/api/<call>: answering friend requests, leaving a group, our card."""

    POST_CALLS = {"allow_and_add2": "answer_friend", "allow_added_request2": "answer_friend",
                  "deny_added_request2": "answer_friend", "quit_group2": "quit_group",
                  "update_group_business_card2": "set_card"}
    GET_CALLS = {}

    async def answer_friend(self):
        r, session = self._r_session()
        self.reply_json(self.backend.manage.answer_friend(session, self.path_args[0], r))

    async def quit_group(self):
        r, session = self._r_session()
        self.reply_json(self.backend.manage.quit_group(session, r))

    async def set_card(self):
        r, session = self._r_session()
        self.reply_json(self.backend.manage.set_card(session, r))


class GroupPictureHandler(_Redirects, _ApiHandler):
    """GET web2.qq.com/cgi-bin/get_group_pic: a 302 to the server a group piece names."""

    GET_CALLS = {"get_group_pic": "group_pic"}
    REFERER_REFUSAL = {"retcode": 100101}

    async def group_pic(self):
        session = self.backend.sessions.info_session(self.cookie_values(), self.arg("vfwebqq"))
        query = {name: self.arg(name) for name in ("type", "gid", "uin", "rip", "rport",
                                                    "fid", "pic")}
        self.redirect_to(self.backend.pictures.group_pic_location(session, query))


class PictureServerHandler(ProtocolHandler):
    """GET /picture/TICKET on the simulator's address: a picture's bytes."""

    def get(self, ticket):
        picture = self.backend.pictures.served(ticket)
        if picture is None:
            raise web.HTTPError(404)
        self.reply(picture.data, picture.content_type)


class FileServerHandler(ProtocolHandler):
    """GET /file/TICKET on the simulator's address: an accepted transfer's bytes."""

    def get(self, ticket):
        data = self.backend.files.served(ticket)
        if data is None:
            raise web.HTTPError(404)
        self.reply(data, "application/octet-stream")


class OfflineFileHandler(ProtocolHandler):
    """GET /NAME?ver=2173&rkey=RKEY&range=N on the simulator's address: an offline file."""

    def get(self, name):
        data = self.backend.files.offline_file(name, self.arg("rkey"), self.arg("range"))
        if data is None:
            raise web.HTTPError(404)
        self.reply(data, "application/octet-stream")


class _OfflineFileMatches(routing.PathMatches):
    """``/NAME`` asked with an ``rkey``: an offline file. Any other request on the
    simulator's address goes on to the routes after these (the control surface, and
    whatever else is served beside it)."""

    def match(self, request):
        if "rkey" not in parse_qs(request.query):
            return None
        return super().match(request)


#: Host -> routes, tried before app.py's own for the same host.
ROUTES = {
    "weboffline.ftn.qq.com": [(r"/ftn_access/(upload_offline_pic)", OfflinePictureUploadHandler)],
    "up.web2.qq.com": [(r"/cgi-bin/(cface_upload)", CustomFaceUploadHandler)],
    "web2.qq.com": [(r"/cgi-bin/(get_group_pic)", GroupPictureHandler)],
    "d.web2.qq.com": [(r"/channel/(%s)" % "|".join(MediaChannelHandler.GET_CALLS),
                       MediaChannelHandler)],
    "s.web2.qq.com": [(r"/api/(%s)" % "|".join(ManageInfoHandler.POST_CALLS),
                       ManageInfoHandler)],
}

#: The picture and file server, on the simulator's own address (the ``ip:port`` group
#: pieces and ``push_offfile`` items name).
SERVER_ROUTES = [(r"/picture/(\w+)", PictureServerHandler), (r"/file/(\w+)", FileServerHandler),
                 (_OfflineFileMatches(r"/([^/]+)"), OfflineFileHandler)]
