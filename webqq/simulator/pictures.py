"""Pictures through the simulator: the two upload servers, the group signature, sends
carrying pictures, fetching a received one, and pictures said by simulated people.

pictures: docs/protocol.rst §3.25 without HTTP (docs/media.rst §3 names the 2013 source
of each fact). Written from those sources, independently of ``webqq.qq``: the
simulator must not check a client with the client's own code. It keeps every picture it
is given for the simulator's life, each under the SHA-1 of its bytes (what /_sim/sent
and /_sim/picture name), and hands the protocol handlers decisions: a reply body, a
picture, a URL to redirect to, or ``errors.Refusal``. It never touches a socket, never
logs a token, and never takes bytes for a picture without sniffing them.

The rules, per endpoint:

``upload_offline_pic`` (weboffline.ftn)
    The uploader is named by the ``uin`` and ``skey`` cookies of a live session; the
    form's ``uin`` and ``skey`` must be the same, ``appid`` 1002101, ``peeruin`` the uin
    of a friend, and ``file`` a JPEG, PNG, GIF or BMP picture of at most
    ``OFFLINE_PICTURE_MAX`` bytes. ``vfwebqq`` must be the session's when given (the
    May 2013 eqq.js port sent none and was answered). The answer is the page calling
    the form's ``callback`` with webqq-core's and eqq.lua's JSON. No 2013 failure answer
    is recorded: ours carry ``retcode`` ``OFFPIC_FORM`` (1), ``OFFPIC_LOGIN`` (2),
    ``OFFPIC_PEER`` (3), ``OFFPIC_NOT_PICTURE`` (4) or ``OFFPIC_TOO_LARGE`` (5).
``cface_upload`` (up.web2)
    Cookies as above and the session's ``vfwebqq``, else eqq.lua's sample refusal
    (``ret`` 2, "get uin and skey error", no callback name). ``from=control`` allows
    ``CFACE_MAX`` bytes, without it ``CFACE_PLAIN_MAX`` (pidgin-lwqq's comment); above:
    ``ret`` 2 (pidgin-lwqq: "over 1MB"). ``ret`` 0 names a new picture
    ``MD5.jPg`` (the MD5 of the bytes, the extension of the sniffed format in the
    server's mixed case), ``ret`` 4 one it has (``NAME -6102 upload cface failed``,
    eqq.lua); ``ret`` 1 (ours) is anything that is not a picture.
``get_gface_sig2``
    One ``gface_key`` (16 letters and digits) and ``gface_sig`` (112 hex digits, as in
    the samples) per session, relinks included; a send with a group picture repeats them.
sends (``send_buddy_msg2``, ``send_qun_msg2``, ``send_discu_msg2``)
    A friend's send may carry ``["offpic", PATH, NAME, SIZE]`` whose PATH this account
    uploaded for that friend, or pidgin-lwqq's ``["cface", NAME]``; a group or
    discussion send ``["cface", "group", NAME]`` of an uploaded NAME, with ``key`` and
    ``sig`` of this session and, for a group, ``group_code`` its code (pidgin-lwqq
    ``lwqq_msg_send``). A temporary session carries none (pidgin-lwqq). Anything else
    is refused with 100006, as a malformed content is. Receivers get the received forms
    (§5.14): ``["offpic", {"success":1,"file_path":PATH}]``, ``["cface", NAME, ""]``,
    ``["cface", {"name", "file_id", "key", "server"}]``.
``get_offpic2``, ``get_cface2`` (d.web2)
    A picture sent to this account by the friend named (``f_uin``, ``to``): a 302 to the
    picture server, or the bytes; anything else 103.
``get_group_pic`` (web2.qq.com)
    A picture sent in a group (``type`` 0, ``gid`` its code) or discussion (1, its did)
    of this account, by ``uin``, as ``fid`` and ``pic``: a 302 to ``rip:rport``, whatever
    they name (libwebqq takes the Location); anything else 100001 (ours).

The picture server is the simulator's plain port, named by its address (``ip:port``,
what a group piece's ``server`` holds): ``/picture/TICKET``, one ticket per picture.
"""
import base64
import hashlib
import logging
import os
import re
from dataclasses import dataclass

from . import wire
from .errors import Refusal, channel_refusal
from .session import ONLINE
from .tokens import ALNUM, hex_token, letters
from .world import WorldGroup

__all__ = ["CFACE_MAX", "CFACE_PLAIN_MAX", "OFFLINE_PICTURE_MAX", "SAID_PICTURE_MAX",
           "OFFPIC_APPID", "PICTURE_TYPES", "Pictures", "StoredPicture", "callback_of",
           "cface_page", "offpic_page", "picture_from", "sniff_picture"]

log = logging.getLogger("webqq.simulator")

#: The MIME type of each format the 2013 web client sent and showed.
PICTURE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                 "bmp": "image/bmp"}
#: Bytes a custom face may have with ``from=control`` (pidgin-lwqq 4ec8fc1: ``ret`` 2
#: is "Send Pic over 1MB"), read as 2**20.
CFACE_MAX = 1024 * 1024
#: Without ``from=control`` (pidgin-lwqq msg.c: "it can upload over 250K").
CFACE_PLAIN_MAX = 250 * 1024
#: Bytes of a friend's (offline) picture: no 2013 source states the limit; the custom
#: face's is our choice.
OFFLINE_PICTURE_MAX = 1024 * 1024
#: Bytes of a picture a simulated person says (/_sim/say): our cap, twice the most a
#: client need fetch (a PC client's pictures could be larger than the web client's).
SAID_PICTURE_MAX = 8 * 1024 * 1024
#: The offline-picture server's application id (webqq-core capture, pidgin-lwqq).
OFFPIC_APPID = "1002101"

# upload_offline_pic refusals (our codes; see the module doc).
OFFPIC_FORM, OFFPIC_LOGIN, OFFPIC_PEER, OFFPIC_NOT_PICTURE, OFFPIC_TOO_LARGE = 1, 2, 3, 4, 5
# cface_upload's ret values: 0 stored, 4 already there (eqq.lua), 2 too large or not
# logged in (pidgin-lwqq, eqq.lua), 1 not a picture (ours).
_CFACE_OK, _CFACE_NOT_PICTURE, _CFACE_REFUSED, _CFACE_HAVE = 0, 1, 2, 4
_CFACE_LOGIN_MESSAGE = "get uin and skey error getcgiparams failed"

# The pages both upload servers answer with (webqq-core analyze.txt, eqq.lua).
_PAGE = ("<head><script type=\"text/javascript\">document.domain='qq.com';%s(%s);"
         "</script></head><body></body>")
# A callback named by the form: a dotted JavaScript name, nothing else.
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\Z")
# The upload server wrote extensions in mixed case: "jPg", "gIf" (eqq.lua, 2014 notes).
_WIRE_EXTENSION = {"jpg": "jPg", "png": "pNg", "gif": "gIf", "bmp": "bMp"}
# BMP's DIB header sizes (BITMAPCOREHEADER .. BITMAPV5HEADER): "BM" alone is text.
_DIB_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}


def sniff_picture(data: bytes) -> "str | None":
    """The format of ``data`` from its first bytes (``"jpg"``, ``"png"``, ``"gif"``,
    ``"bmp"``), or None: a name or a declared type is never trusted."""
    head = bytes(data[:26])
    if head[:3] == b"\xff\xd8\xff":
        return "jpg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 18 \
            and int.from_bytes(head[14:18], "little") in _DIB_HEADER_SIZES:
        return "bmp"
    return None


def offpic_page(callback: str, reply: dict) -> bytes:
    """The page upload_offline_pic answers: ``callback`` called with ``reply`` written as
    the server wrote it (``{"retcode":0, "result":"OK", ...}``: a space after each comma)."""
    text = "{%s}" % ", ".join("%s:%s" % (wire.dumps(k).decode(), wire.dumps(v).decode())
                              for k, v in reply.items())
    return (_PAGE % (callback, text)).encode("utf-8")


def cface_page(callback: str, ret: int, message: str) -> bytes:
    """The page cface_upload answers: ``parent.CALLBACK({'ret':N,'msg':'...'})``."""
    quoted = message.replace("\\", "\\\\").replace("'", "\\'")
    return (_PAGE % ("parent." + callback, "{'ret':%d,'msg':'%s'}" % (ret, quoted))
            ).encode("utf-8")


def callback_of(value) -> str:
    """The callback a form names, when it is a dotted JavaScript name; else ""."""
    return value if isinstance(value, str) and _CALLBACK.match(value) else ""


@dataclass(frozen=True)
class StoredPicture:
    """A picture the simulator keeps: its bytes, format, SHA-1 and serving ticket."""

    data: bytes
    format: str
    sha1: str
    ticket: str

    @property
    def content_type(self) -> str:
        return PICTURE_TYPES[self.format]

    def identity(self) -> dict:
        """What /_sim/sent shows of it."""
        return {"sha1": self.sha1, "format": self.format, "size": len(self.data)}

    def to_json(self) -> dict:
        """/_sim/picture: its identity and its bytes in base64."""
        return dict(self.identity(), base64=base64.b64encode(self.data).decode("ascii"))


@dataclass(frozen=True)
class _OffPic:
    picture: StoredPicture
    owner: int              # QQ number of who sent it
    peer: int               # QQ number of the friend it is for


@dataclass(frozen=True)
class _ChatPicture:
    name: str
    sender: int
    picture: StoredPicture


def picture_from(spec: dict, folder: "str | None") -> bytes:
    """The bytes a /_sim/ picture object names: ``{"base64": "..."}`` or ``{"file":
    "NAME"}`` (a file under the world's folder), checked to be a picture.

    Reads the file on the IOLoop: at most ``SAID_PICTURE_MAX`` + 1 bytes of local disk
    for a control request, milliseconds, which we accept rather than a thread.

    Raises:
        ValueError: neither or both keys, bad base64, a file outside the folder or
            unreadable, too large, or not a JPEG, PNG, GIF or BMP picture.
    """
    if not isinstance(spec, dict) or set(spec) - {"base64", "file", "as"} \
            or ("base64" in spec) == ("file" in spec):
        raise ValueError("picture: {\"base64\": \"...\"} or {\"file\": \"NAME\"}, "
                         "optionally with \"as\": \"offpic\" or \"cface\"")
    if "base64" in spec:
        try:
            data = base64.b64decode(spec["base64"], validate=True)
        except (ValueError, TypeError):
            raise ValueError("picture: base64 is not valid base64") from None
    else:
        data = _read_under(folder, spec["file"])
    if len(data) > SAID_PICTURE_MAX:
        raise ValueError("picture: %d bytes, over the simulator's %d" % (len(data),
                                                                        SAID_PICTURE_MAX))
    if sniff_picture(data) is None:
        raise ValueError("picture: not a JPEG, PNG, GIF or BMP picture (it starts with %r)"
                         % data[:8])
    return data


def _read_under(folder: "str | None", name) -> bytes:
    if folder is None:
        raise ValueError("picture: this world was not loaded from a file; send base64")
    if not isinstance(name, str) or not name or os.path.isabs(name):
        raise ValueError("picture: file is a path relative to the world's folder")
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root:
        raise ValueError("picture: %s is outside the world's folder" % name[:80])
    try:
        with open(path, "rb") as stream:
            return stream.read(SAID_PICTURE_MAX + 1)
    except OSError as exc:
        raise ValueError("picture: cannot read %s: %s" % (name[:80], exc.strerror)) from None


class Pictures:
    """Every picture uploaded, sent or said, and the rules of §3.25 (see the module doc).

    Args:
        world: the loaded World.
        rng: the seeded ``random.Random`` (paths, names, keys, tickets).
        sessions: the ``Sessions`` uploaders are found in.
        address: returns the picture server's ``(host, port)``: the simulator's plain port.
    """

    def __init__(self, world, rng, sessions, address):
        self.world = world
        self.rng = rng
        self.sessions = sessions
        self.address = address
        self._by_sha1 = {}              # sha1 -> StoredPicture
        self._by_ticket = {}            # ticket -> StoredPicture
        self._offpics = {}              # file path -> _OffPic
        self._cfaces = {}               # custom-face name -> StoredPicture
        self._friend_cfaces = set()     # (viewer, sender, name) a friend's cface reached
        self._chat_pictures = {}        # (type 0/1, code or did, file_id) -> _ChatPicture
        self._gface = {}                # Session -> (gface_key, gface_sig)

    # --- keeping and serving -------------------------------------------------------------

    def keep(self, data: bytes) -> StoredPicture:
        """The StoredPicture of ``data`` (already sniffed), kept once per SHA-1."""
        sha1 = hashlib.sha1(data).hexdigest()
        found = self._by_sha1.get(sha1)
        if found is None:
            found = StoredPicture(bytes(data), sniff_picture(data), sha1, hex_token(self.rng, 32))
            self._by_sha1[sha1] = found
            self._by_ticket[found.ticket] = found
        return found

    def by_sha1(self, sha1: str) -> "StoredPicture | None":
        """/_sim/picture: a picture by the SHA-1 /_sim/sent names."""
        return self._by_sha1.get(sha1)

    def served(self, ticket: str) -> "StoredPicture | None":
        """The picture server's ``/picture/TICKET``."""
        return self._by_ticket.get(ticket)

    def server(self) -> str:
        """``ip:port`` of the picture server, as a group piece's ``server``."""
        return "%s:%d" % self.address()

    def url(self, picture: StoredPicture) -> str:
        return "http://%s/picture/%s" % (self.server(), picture.ticket)

    def _offpic_path(self) -> str:
        """A new offline picture's ``filepath``: ``/`` and a UUID, as in every sample."""
        return "/%s-%s-%s-%s-%s" % tuple(hex_token(self.rng, n) for n in (8, 4, 4, 4, 12))

    def _cface_name(self, picture: StoredPicture) -> str:
        return "%s.%s" % (hashlib.md5(picture.data).hexdigest().upper(),
                          _WIRE_EXTENSION[picture.format])

    # --- the upload servers --------------------------------------------------------------

    def _uploader(self, cookies: dict):
        """The live session the ``uin`` and ``skey`` cookies name, or None."""
        session = self.sessions.get(wire.cookie_qq(cookies))
        skey = cookies.get("skey")
        if session is None or session.state != ONLINE or not skey or skey != session.skey:
            return None
        return session

    def upload_offline(self, cookies: dict, form: dict, upload) -> tuple:
        """upload_offline_pic: ``(callback, reply)`` for ``offpic_page``.

        Args:
            cookies: the request's cookies.
            form: the multipart form's text fields (name -> str).
            upload: ``(filename, bytes)`` of the ``file`` part, or None.
        """
        callback = callback_of(form.get("callback"))
        session = self._uploader(cookies)
        if session is None or form.get("skey") != session.skey \
                or form.get("uin") != str(session.qq) \
                or form.get("vfwebqq", session.vfwebqq) != session.vfwebqq:
            log.info("upload_offline_pic refused: not the session's uin, skey or vfwebqq")
            return callback, _offpic_refusal(OFFPIC_LOGIN, "not logged in")
        fileid = form.get("fileid", "1")
        if form.get("appid") != OFFPIC_APPID or upload is None \
                or not (fileid.isascii() and fileid.isdigit()):
            return callback, _offpic_refusal(OFFPIC_FORM, "form incomplete")
        peer = self.world.qq_of_uin(session.qq, form.get("peeruin"))
        if peer is None or self.world.accounts[session.qq].friend(peer) is None:
            return callback, _offpic_refusal(OFFPIC_PEER, "peeruin is not a friend")
        name, data = upload
        if sniff_picture(data) is None:
            return callback, _offpic_refusal(OFFPIC_NOT_PICTURE, "not a picture")
        if len(data) > OFFLINE_PICTURE_MAX:
            return callback, _offpic_refusal(OFFPIC_TOO_LARGE, "file too large")
        picture = self.keep(data)
        path = self._offpic_path()
        self._offpics[path] = _OffPic(picture, session.qq, peer)
        log.info("offline picture from %d for %d stored (%d bytes)", session.qq, peer,
                 len(data))
        return callback, {"retcode": 0, "result": "OK", "progress": 100,
                          "filesize": len(data), "fileid": fileid, "filename": name,
                          "filepath": path}

    def upload_cface(self, cookies: dict, form: dict, upload) -> tuple:
        """cface_upload: ``(callback, ret, msg)`` for ``cface_page``; arguments as
        ``upload_offline``, ``upload`` being the ``custom_face`` part."""
        session = self._uploader(cookies)
        if session is None or form.get("vfwebqq") != session.vfwebqq:
            log.info("cface_upload refused: not the session's cookies or vfwebqq")
            return "", _CFACE_REFUSED, _CFACE_LOGIN_MESSAGE
        callback = callback_of(form.get("f"))
        if upload is None or sniff_picture(upload[1]) is None:
            return callback, _CFACE_NOT_PICTURE, "upload cface failed: not a picture"
        data = upload[1]
        limit = CFACE_MAX if form.get("from") == "control" else CFACE_PLAIN_MAX
        if len(data) > limit:
            return callback, _CFACE_REFUSED, "pic size over %d" % limit
        picture = self.keep(data)
        name = self._cface_name(picture)
        if name in self._cfaces:
            return callback, _CFACE_HAVE, name + " -6102 upload cface failed"
        self._cfaces[name] = picture
        log.info("custom face from %d stored (%d bytes)", session.qq, len(data))
        return callback, _CFACE_OK, name

    def gface_sig(self, session) -> dict:
        """get_gface_sig2: this session's key and sig, drawn at its first ask."""
        if session not in self._gface:
            self._gface[session] = (letters(self.rng, 16, ALNUM), hex_token(self.rng, 112))
        key, sig = self._gface[session]
        return {"retcode": 0, "result": {"reply": 0, "gface_key": key, "gface_sig": sig}}

    # --- sends ---------------------------------------------------------------------------

    def check_send(self, session, kind: str, r: dict, pieces: list, *, peer=None,
                   chat=None) -> tuple:
        """The pictures of a send, checked: ``(received pieces, identities)``.

        Args:
            kind: "buddy", "group", "discussion" or "session".
            r: the send's ``r`` (``group_code``, ``key``, ``sig``).
            pieces: the sent pieces, font left out.
            peer: the friend's QQ number (buddy sends).
            chat: the WorldGroup or WorldDiscussion (group and discussion sends).

        Returns:
            The pieces as receivers get them, and one ``{"piece", "kind", "name", "sha1",
            "format", "size"}`` per picture, for /_sim/sent.

        Raises:
            Refusal: 100006 for a picture piece this send may not carry (see the module
                doc), an unknown picture, or a group picture without this session's key
                and sig (and, in a group, the group's code).
        """
        found = []                      # (index, kind, name, StoredPicture)
        for index, piece in enumerate(pieces):
            if isinstance(piece, list) and piece and piece[0] in ("offpic", "cface"):
                found.append((index,) + self._sent_picture(session, kind, piece, peer))
        if not found:
            return pieces, []
        if kind != "buddy":
            self._check_gface(session, kind, r, chat)
        received = list(pieces)
        for index, what, name, picture in found:
            received[index] = self._received_piece(session.qq, what, name, picture, peer, chat)
        return received, [dict(picture.identity(), piece=index, kind=what, name=name)
                          for index, what, name, picture in found]

    def _sent_picture(self, session, kind: str, piece: list, peer) -> tuple:
        """``(kind, name, StoredPicture)`` of one sent picture piece, or Refusal(100006)."""
        if kind == "buddy" and piece[0] == "offpic" and len(piece) == 4 \
                and isinstance(piece[1], str) and isinstance(piece[2], str) \
                and isinstance(piece[3], int) and not isinstance(piece[3], bool):
            offpic = self._offpics.get(piece[1])
            if offpic is not None and offpic.owner == session.qq and offpic.peer == peer:
                return "offpic", piece[1], offpic.picture
            why = "an offline picture this account did not upload for this friend"
        elif kind == "buddy" and piece[0] == "cface" and len(piece) == 2:
            picture = self._cfaces.get(piece[1]) if isinstance(piece[1], str) else None
            if picture is not None:
                return "cface", piece[1], picture
            why = "a custom face that was not uploaded"
        elif kind in ("group", "discussion") and piece[0] == "cface" and len(piece) == 3 \
                and piece[1] == "group":
            picture = self._cfaces.get(piece[2]) if isinstance(piece[2], str) else None
            if picture is not None:
                return "cface", piece[2], picture
            why = "a custom face that was not uploaded"
        else:
            why = "a picture piece a %s message cannot carry" % kind
        log.info("send from %d refused: %s", session.qq, why)
        raise channel_refusal(100006)

    def _check_gface(self, session, kind: str, r: dict, chat) -> None:
        expected = self._gface.get(session)
        sig_ok = expected is not None and (r.get("key"), r.get("sig")) == expected
        code_ok = kind != "group" or wire.as_int(r.get("group_code")) == chat.code
        if not (sig_ok and code_ok):
            log.info("send from %d refused: a group picture without this session's key "
                     "and sig%s", session.qq, " and the group's code" if kind == "group" else "")
            raise channel_refusal(100006)

    def _received_piece(self, sender: int, what: str, name: str, picture, peer, chat) -> list:
        """The received form of a checked picture, remembered for whom may fetch it."""
        if chat is not None:
            return self._chat_piece(chat, sender, name, picture)
        if what == "offpic":
            return ["offpic", {"success": 1, "file_path": name}]
        self._friend_cfaces.add((peer, sender, name))
        return ["cface", name, ""]

    def _chat_piece(self, chat, sender: int, name: str, picture) -> list:
        """A group or discussion piece naming this server; a new file_id per message."""
        where = (0, chat.code) if isinstance(chat, WorldGroup) else (1, chat.did)
        while True:
            file_id = self.rng.randrange(1 << 20, 1 << 32)
            if where + (file_id,) not in self._chat_pictures:
                break
        self._chat_pictures[where + (file_id,)] = _ChatPicture(name, sender, picture)
        return ["cface", {"name": name, "file_id": file_id, "key": letters(self.rng, 16, ALNUM),
                          "server": self.server()}]

    # --- pictures said by simulated people -------------------------------------------------

    def said(self, to: int, sender: int, data: bytes, *, chat=None, how: str = "offpic") -> list:
        """The received piece of a picture ``sender`` says to account ``to`` (a friend's
        ``offpic`` or ``cface`` as ``how`` says, or a group or discussion picture)."""
        picture = self.keep(data)
        if chat is not None:
            name = self._cface_name(picture)
            self._cfaces.setdefault(name, picture)
            return self._chat_piece(chat, sender, name, picture)
        if how == "cface":
            name = self._cface_name(picture)
            self._cfaces.setdefault(name, picture)
            return self._received_piece(sender, "cface", name, picture, to, None)
        path = self._offpic_path()
        self._offpics[path] = _OffPic(picture, sender, to)
        return ["offpic", {"success": 1, "file_path": path}]

    # --- fetching a received picture ---------------------------------------------------

    def offpic_location(self, session, file_path, f_uin) -> str:
        """get_offpic2: where the picture is, or Refusal(103) (not one for this account
        from that friend)."""
        offpic = self._offpics.get(file_path)
        if offpic is None or offpic.peer != session.qq \
                or self.world.qq_of_uin(session.qq, f_uin) != offpic.owner:
            raise channel_refusal(103)
        return self.url(offpic.picture)

    def friend_cface(self, session, lcid, guid, to) -> StoredPicture:
        """get_cface2: the custom face ``guid`` that friend ``to`` sent this account, or
        Refusal(103)."""
        sender = self.world.qq_of_uin(session.qq, to)
        if wire.as_int(lcid) is None or (session.qq, sender, guid) not in self._friend_cfaces:
            raise channel_refusal(103)
        return self._cfaces[guid]

    def group_pic_location(self, session, query: dict) -> str:
        """get_group_pic: a 302's Location on ``rip:rport``, or Refusal(100001)."""
        kind, gid, fid = (wire.as_int(query.get(k)) for k in ("type", "gid", "fid"))
        rip, rport = query.get("rip") or "", wire.as_int(query.get("rport"))
        if kind == 0:
            chat = self.world.group_by_code(gid)
            member = chat is not None and chat.member(session.qq) is not None
        elif kind == 1:
            chat = self.world.discussion_by_did(gid)
            member = chat is not None and session.qq in chat.members
        else:
            member = False
        entry = self._chat_pictures.get((kind, gid, fid)) if member else None
        if entry is None or entry.name != query.get("pic") \
                or self.world.qq_of_uin(session.qq, query.get("uin")) != entry.sender \
                or not re.fullmatch(r"[0-9A-Za-z.\-]{1,253}", rip) \
                or rport is None or not 0 < rport < 65536:
            raise Refusal(100001)
        return "http://%s:%d/picture/%s" % (rip, rport, entry.picture.ticket)


def _offpic_refusal(retcode: int, result: str) -> dict:
    return {"retcode": retcode, "result": result}
