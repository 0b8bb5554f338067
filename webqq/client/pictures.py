"""Received pictures: what a message's picture piece is, and its bytes on first use.

pictures: ``ReceivedPicture`` (a picture piece with what fetching it needs),
``message_pieces`` (a chat message's content as texts, faces and pictures),
``PictureCache`` (the bytes under ``state_dir/pictures``, capped in size and age) and
``Pictures`` (``client.pictures``: fetch once, then serve from the cache). It never
opens a socket and never parses bytes: ``webqq.qq.media`` builds and reads, the
client's ``HTTPStream`` carries.

Blocking file I/O: the cache reads and writes a picture's file on the IOLoop. A
received picture is at most ``RECEIVED_PICTURE_MAX`` (4 MiB), most are tens of KB: a
few milliseconds of local disk at worst, which we accept rather than a thread per
picture. Anything larger never reaches the cache (the fetch refuses it first).

Which request fetches which piece (§3.25)::

    source "offpic"   a friend's offline picture     get_offpic2 (a redirect)
    source "cface"    a custom face from a friend    get_cface2 (by the message's msg_id)
    source "group"    a group or discussion picture  get_group_pic on the server the piece
                                                     names (rip, rport, fid; a redirect)
    source "unknown"  a pic_id, or a piece without its server: no 2013 endpoint
"""
import asyncio
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

from webqq.client.calls import Calls, Unavailable
from webqq.qq import (ChatMessage, DiscussionMessage, Face, GroupMessage, Image,
                      Text, build_get_cface, build_get_group_pic, build_get_offpic,
                      parse_picture)
from webqq.statedir import atomic_write, ensure_dir

__all__ = ["ReceivedPicture", "MessagePiece", "message_pieces", "PictureCache", "Pictures",
           "CACHE_MAX_BYTES", "CACHE_MAX_AGE"]

log = logging.getLogger("webqq.client")

#: Bytes the picture cache may hold: a few hundred chat pictures. Our choice.
CACHE_MAX_BYTES = 64 * 1024 * 1024
#: Seconds a cached picture is kept: a week. Our choice; the 2013 servers kept offline
#: pictures about as long (push_offfile's expire_time is a week after the send).
CACHE_MAX_AGE = 7 * 24 * 3600

# The advert of the browser client (§5.14), as Content.text removes it.
_ADVERT = re.compile(r"\n?【提示：此用户正在使用Q\+ Web：http://web\d?\.qq\.com/】")
_KEY = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class ReceivedPicture:
    """A picture of a received message, with what fetching it needs.

    Attributes:
        source: which request fetches it: ``"offpic"``, ``"cface"``, ``"group"``, or
            ``"unknown"`` (no 2013 endpoint: a ``pic_id``, or a group piece without its
            server).
        name: the piece's ``file_path`` (offpic) or file name.
        from_uin: who sent it.
        msg_id: the message's ``msg_id`` (``get_cface2``'s ``lcid``).
        code: the group's code, or the discussion's did (``get_group_pic``'s ``gid``).
        discussion: True for a discussion's picture.
        file_id, server: the group piece's ``file_id`` and ``"ip:port"``.
    """
    source: str
    name: str
    from_uin: int
    msg_id: int = 0
    code: Optional[int] = None
    discussion: bool = False
    file_id: Optional[int] = None
    server: Optional[str] = None

    @property
    def key(self) -> str:
        """The cache key: 40 hex digits of the picture's identity. Offline paths are
        unique and custom-face names are the MD5 of the bytes, so the name with its
        source identifies the picture."""
        return hashlib.sha256(("%s:%s" % (self.source, self.name)).encode()).hexdigest()[:40]


#: A piece of a received message as the client hands it out.
MessagePiece = Union[str, Face, ReceivedPicture]


def _picture(image: Image, event: ChatMessage, sender: int) -> ReceivedPicture:
    """The ``ReceivedPicture`` of an ``Image`` piece of ``event``."""
    if image.kind == "offpic":
        return ReceivedPicture("offpic", image.name, sender)
    if image.kind == "cface":
        if isinstance(event, (GroupMessage, DiscussionMessage)):
            if image.server is None or image.file_id is None:
                return ReceivedPicture("unknown", image.name, sender)
            group = isinstance(event, GroupMessage)
            return ReceivedPicture("group", image.name, sender,
                                   code=event.code if group else event.did,
                                   discussion=not group, file_id=image.file_id,
                                   server=image.server)
        return ReceivedPicture("cface", image.name, sender, msg_id=event.msg_id)
    return ReceivedPicture("unknown", image.name, sender)


def message_pieces(event: ChatMessage) -> Tuple[MessagePiece, ...]:
    """A chat message's content as texts, ``Face`` pieces and ``ReceivedPicture``
    pieces, in order, the font left out.

    Texts read as ``Content.text`` reads them: ``\\r\\n`` and ``\\r`` become ``\\n``, the
    Q+ Web advert and the PC client's one trailing space are removed, empty texts
    dropped. A ``["image", "jpg", 0]`` that follows its ``pic_id`` is the same picture
    and adds nothing.
    """
    group_chat = isinstance(event, (GroupMessage, DiscussionMessage))
    sender = event.send_uin if group_chat else event.from_uin
    pieces = []
    previous = None
    for piece in event.content.pieces:
        if isinstance(piece, Text):
            text = _ADVERT.sub("", piece.text.replace("\r\n", "\n").replace("\r", "\n"))
            if pieces and isinstance(pieces[-1], str):
                pieces[-1] += text
            else:
                pieces.append(text)
        elif isinstance(piece, Face):
            pieces.append(piece)
        elif isinstance(piece, Image):
            follows_its_id = (piece.kind == "image" and isinstance(previous, Image)
                              and previous.kind == "pic_id")
            if not follows_its_id:
                pieces.append(_picture(piece, event, sender))
        previous = piece
    if pieces and isinstance(pieces[-1], str) and pieces[-1].endswith(" "):
        pieces[-1] = pieces[-1][:-1]
    return tuple(piece for piece in pieces if piece != "")


class PictureCache:
    """Pictures' bytes in a directory, one file per key, capped in total size and age.

    The directory is read once, at first use; after that an index in memory knows each
    file's size and time. Bound: ``max_bytes`` on disk and ``max_age`` per file, so the
    index holds one small entry per file kept. A put evicts what is too old, then the oldest files until the
    total is under the cap; a picture larger than the cap is not kept. A disk failure is
    logged and costs only the cache: the caller still has the bytes.

    Args:
        directory: where the files are (created 0700 when missing).
        max_bytes: the most bytes kept.
        max_age: seconds a file is kept after it was written.
        clock: wall-clock seconds (``time.time``), compared with the files' mtimes.
    """

    def __init__(self, directory: Union[str, Path], *, max_bytes: int = CACHE_MAX_BYTES,
                 max_age: float = CACHE_MAX_AGE, clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self._index: Optional[Dict[str, Tuple[int, float]]] = None   # key -> (size, mtime)

    def _entries(self) -> Dict[str, Tuple[int, float]]:
        if self._index is None:
            self._index = {}
            try:
                with os.scandir(self.directory) as found:
                    for entry in found:
                        if _KEY.fullmatch(entry.name) and entry.is_file():
                            stat = entry.stat()
                            self._index[entry.name] = (stat.st_size, stat.st_mtime)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("Picture cache %s unreadable: %s", self.directory, exc)
        return self._index

    @property
    def size(self) -> int:
        """The bytes the cache holds now."""
        return sum(size for size, _ in self._entries().values())

    def get(self, key: str) -> Optional[bytes]:
        """The bytes kept for ``key``, or None (never kept, evicted or too old)."""
        entry = self._entries().get(key)
        if entry is None:
            return None
        if self.clock() - entry[1] > self.max_age:
            self._remove(key)
            return None
        try:
            return (self.directory / key).read_bytes()
        except OSError as exc:
            log.warning("Picture cache: cannot read %s: %s", key, exc)
            self._entries().pop(key, None)
            return None

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` for ``key`` (a 40-hex-digit key), then evict down to the caps."""
        if not _KEY.fullmatch(key):
            raise ValueError("a picture cache key is 40 hex digits, not %r" % key[:60])
        entries = self._entries()
        if len(data) > self.max_bytes:
            return
        try:
            ensure_dir(self.directory)
            atomic_write(self.directory / key, data, durable=False)
        except OSError as exc:
            log.warning("Picture cache: cannot write %s: %s", key, exc)
            return
        entries[key] = (len(data), self.clock())
        self._evict()

    def _evict(self) -> None:
        entries = self._entries()
        oldest = self.clock() - self.max_age
        for key in [key for key, (_, mtime) in entries.items() if mtime < oldest]:
            self._remove(key)
        total = sum(size for size, _ in entries.values())
        for key in sorted(entries, key=lambda k: entries[k][1]):
            if total <= self.max_bytes:
                break
            total -= entries[key][0]
            self._remove(key)

    def _remove(self, key: str) -> None:
        self._entries().pop(key, None)
        try:
            os.unlink(self.directory / key)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("Picture cache: cannot remove %s: %s", key, exc)


class Pictures:
    """``client.pictures``: a received picture's bytes, fetched from the server on first
    use and kept in the cache. Two fetches of the same picture at once make one request.

    Args:
        calls: the client's ``Calls``.
        cache: where the bytes are kept.
    """

    def __init__(self, calls: Calls, cache: PictureCache) -> None:
        self._calls = calls
        self.cache = cache
        # Fetches in flight, by key: one entry per picture being fetched, gone when done.
        self._pending: Dict[str, "asyncio.Future[bytes]"] = {}

    async def fetch(self, picture: ReceivedPicture) -> bytes:
        """The bytes of ``picture``: from the cache, else from the server.

        Args:
            picture: a ``ReceivedPicture`` of a ``MessageReceived``'s ``pieces``.

        Returns:
            The image's bytes (a JPEG, PNG, GIF or BMP: anything else is refused).

        Raises:
            Unavailable: no 2013 endpoint fetches this picture (``source`` unknown).
            NotOnline: not cached, and the client is not online.
            ProtocolError: the server refused (``RetcodeError``) or answered with
                something that is not a picture (``MalformedReply``).
            HTTPStreamError: the network failed.
        """
        if picture.source == "unknown":
            raise Unavailable("picture %s cannot be fetched: no 2013 endpoint serves it"
                              % picture.name)
        cached = self.cache.get(picture.key)
        if cached is not None:
            return cached
        pending = self._pending.get(picture.key)
        if pending is None:
            pending = asyncio.ensure_future(self._download(picture))
            self._pending[picture.key] = pending
            pending.add_done_callback(lambda done: self._settled(picture.key, done))
        return await asyncio.shield(pending)

    def _settled(self, key: str, done: "asyncio.Future[bytes]") -> None:
        """A download ended: forget it; its error was delivered to every waiter (and is
        marked seen, should they all have gone)."""
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()

    async def _download(self, picture: ReceivedPicture) -> bytes:
        link = self._calls.session()
        session = dict(clientid=link.clientid, psessionid=link.psessionid)
        if picture.source == "offpic":
            request, endpoint = build_get_offpic(picture.name, picture.from_uin,
                                                 **session), "get_offpic2"
        elif picture.source == "cface":
            request, endpoint = build_get_cface(picture.name, picture.from_uin,
                                                picture.msg_id, **session), "get_cface2"
        else:
            request = build_get_group_pic(
                picture.name, code=picture.code, send_uin=picture.from_uin,
                server=picture.server, file_id=picture.file_id, vfwebqq=link.vfwebqq,
                t=self._calls.seconds(), discussion=picture.discussion)
            endpoint = "get_group_pic"
        fetched = await self._calls.call(request, lambda body: parse_picture(body, endpoint))
        self.cache.put(picture.key, fetched.data)
        log.info("Fetched picture %s (%s, %d bytes)", picture.name, fetched.format,
                 len(fetched.data))
        return fetched.data
