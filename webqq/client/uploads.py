"""Pictures to send: uploaded when their message's turn comes, then sent as pieces.

uploads: ``Uploader``, which the ``Transmitter`` asks to make a part with pictures
sendable: each ``UploadPicture`` uploaded (a friend's to the offline-picture server, a
group's or discussion's to the custom-face server) and replaced by the piece the server
named, and for a group or discussion the ``get_gface_sig2`` key and sig the send
carries (asked once per login). It never opens a socket and never parses bytes.

Why at the message's turn and not when it is queued: the uploads need the session
(vfwebqq, the skey cookie) that a message queued while offline does not have yet, and a
picture's place in the queue is its message's.
"""
import logging
import random
import string
from dataclasses import dataclass
from typing import List, Optional

from webqq.client.calls import Calls, NotOnline
from webqq.client.session import cookie_value
from webqq.qq import (CFace, ChatKind, GFaceSig, OffPic, OutgoingPiece, UploadPicture,
                      build_gface_sig, build_upload_cface, build_upload_offline_pic,
                      parse_gface_sig, parse_upload_cface, parse_upload_offline_pic)

__all__ = ["Prepared", "Uploader"]

log = logging.getLogger("webqq.client")

_BOUNDARY_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Prepared:
    """A part made sendable: ``content`` holds no ``UploadPicture`` any more, and
    ``gface`` is the signature a group or discussion send carries (None without a
    group picture)."""
    content: List[OutgoingPiece]
    gface: Optional[GFaceSig] = None


class Uploader:
    """Uploads the pictures of a part (see the module doc).

    Args:
        calls: the client's ``Calls``.
        qq: the account's QQ number (the offline-picture form's ``uin``).
        rng: draws the multipart boundaries.
    """

    def __init__(self, calls: Calls, qq: int, rng: random.Random) -> None:
        self._calls = calls
        self._qq = qq
        self._rng = rng
        self._gface: Optional[GFaceSig] = None
        self._fileid = 0

    def forget(self) -> None:
        """A new login: the old key and sig are void."""
        self._gface = None

    async def prepare(self, chat: ChatKind, to: int,
                      part: List[OutgoingPiece]) -> Prepared:
        """Upload the pictures of ``part``, going to ``to`` (a friend's uin, a gid or a
        did) in ``chat``.

        Returns:
            The ``Prepared`` part.

        Raises:
            NotOnline: the client is not online (or has no skey cookie).
            UploadRefused: an upload server said no (``too_large``: over its limit).
            ProtocolError, HTTPStreamError: as ``Calls.call``.
        """
        content: List[OutgoingPiece] = []
        for piece in part:
            if not isinstance(piece, UploadPicture):
                content.append(piece)
            elif chat is ChatKind.BUDDY:
                content.append(await self._offpic(piece, to))
            else:
                content.append(await self._cface(piece))
        gface = None
        if chat is not ChatKind.BUDDY and any(isinstance(p, CFace) for p in content):
            gface = await self._gface_sig()
        return Prepared(content, gface)

    def _boundary(self) -> str:
        return "----WebKitFormBoundary" + "".join(
            self._rng.choice(_BOUNDARY_ALPHABET) for _ in range(16))

    def _next_fileid(self) -> int:
        self._fileid += 1
        return self._fileid

    async def _offpic(self, picture: UploadPicture, peer_uin: int) -> OffPic:
        link = self._calls.session()
        skey = cookie_value(self._calls.stream.cookiejar, "skey")
        if not skey:
            raise NotOnline("no skey cookie: the session is not logged in")
        request = build_upload_offline_pic(
            picture, qq=self._qq, skey=skey, peer_uin=peer_uin, vfwebqq=link.vfwebqq,
            t=self._calls.milliseconds(), boundary=self._boundary(),
            fileid=self._next_fileid())
        offpic = await self._calls.call(request, parse_upload_offline_pic)
        log.info("Uploaded %s (%d bytes) as offline picture %s", picture.name,
                 len(picture.data), offpic.file_path)
        return offpic

    async def _cface(self, picture: UploadPicture) -> CFace:
        link = self._calls.session()
        request = build_upload_cface(picture, vfwebqq=link.vfwebqq, t=self._calls.seconds(),
                                     boundary=self._boundary())
        cface = await self._calls.call(request, parse_upload_cface)
        log.info("Uploaded %s (%d bytes) as custom face %s", picture.name,
                 len(picture.data), cface.name)
        return cface

    async def _gface_sig(self) -> GFaceSig:
        if self._gface is None:
            link = self._calls.session()
            request = build_gface_sig(clientid=link.clientid, psessionid=link.psessionid,
                                      t=self._calls.seconds())
            self._gface = await self._calls.call(request, parse_gface_sig)
        return self._gface
