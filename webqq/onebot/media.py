"""Pictures and files between OneBot and the client: what an ``image`` segment's
``file`` names, where a queued picture waits, which received picture or file a name
means.

media: four small parts, each used by one other module.

* ``read_image`` (the send actions): the bytes an outgoing ``image`` segment names, as
  an ``UploadPicture``. ``file`` may be ``base64://DATA``; a path (``file:///PATH``, or
  a plain absolute or relative one) inside ``[api] media_dir``; an ``http(s)`` URL,
  fetched through an ``HTTPStream`` capped at the 2013 limit, only when ``[api]
  fetch_urls`` is on; or a received picture's ``file`` (``NAME.image``), so a bot can
  send back what it got.
* ``OutgoingPictures`` (the outbound queue): the picture of a queued message is a file
  of ``state_dir/media-out`` named by the SHA-256 of its bytes (0600, written durably
  before the row), and the row keeps that name: a queued picture survives a restart,
  the database stays small, and one picture queued twice is one file. A file goes once
  no queued or sending row names it, of any account: a daemon's accounts share the
  directory (and one ``OutgoingPictures``, which knows the pictures being queued).
* ``ReceivedPictures`` (the server and the media route): the ``picture_name`` of each
  received picture, and what fetching it needs, in memory and in the store, so that its
  ``url`` works after a restart (the bytes are the client's cache's).
* ``FileOffers`` (the server, the file actions and the media route): the files friends
  offer or left, by an id drawn at random, in memory: a transfer lives in its session.

What it must never do: read a file outside ``media_dir``, fetch a URL while
``fetch_urls`` is off, accept bytes that are not a JPEG, PNG, GIF or BMP image within the
2013 limits, or read or write a picture on the IOLoop when a thread of its pool can
(the one exception: ``OutgoingPictures.load``, see its docstring).
"""
import asyncio
import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
import stat
import urllib.parse
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Set, Tuple, Union
from urllib.request import Request, url2pathname

from tornado.ioloop import IOLoop

from webqq.client.calls import NotOnline, Unavailable
from webqq.client.pictures import ReceivedPicture
from webqq.http.errors import HTTPStreamError, ResponseTooLargeError
from webqq.http.stream import HTTPStream
from webqq.onebot.mapping import BadParams, OneBotError, StoredPicture, is_picture_name
from webqq.onebot.store import Store, StoreUnavailable
from webqq.qq import (GROUP_PICTURE_MAX, OFFLINE_PICTURE_MAX, PictureError, ProtocolError,
                      UploadPicture)
from webqq.statedir import atomic_write, ensure_dir

__all__ = ["read_image", "PICTURE_MAX", "OutgoingPictures", "digests", "ReceivedPictures",
           "FileOffers", "Offer"]

log = logging.getLogger("webqq.api")

#: The most bytes a picture to send may have: the larger 2013 limit (both are 1 MiB).
PICTURE_MAX = max(GROUP_PICTURE_MAX, OFFLINE_PICTURE_MAX)
#: Received pictures and file offers remembered in memory (the most recent).
REMEMBERED = 1000

_DIGEST = re.compile(r"[0-9a-f]{64}")
_FORMS = ("base64://DATA, a path inside [api] media_dir, an http(s) URL (with [api] "
          "fetch_urls = yes) or the file of a picture received")


def _size(count: int) -> str:
    return "{:,} bytes".format(count)


async def read_image(file: Any, *, media_dir: Optional[Path], fetch_urls: bool,
                     stream: Optional[HTTPStream], received: "ReceivedPictures",
                     client: Any) -> UploadPicture:
    """The picture an outgoing ``image`` segment's ``file`` names, checked.

    Args:
        file: the segment's ``file`` (see the module doc for its forms).
        media_dir: ``[api] media_dir``; None: no path is accepted.
        fetch_urls: ``[api] fetch_urls``.
        stream: fetches URLs (its body cap is ``PICTURE_MAX``).
        received: the received pictures a name may mean.
        client: the ``WebQQClient`` whose ``pictures`` fetch a received one.

    Raises:
        BadParams: not one of the forms; not base64; a path outside ``media_dir`` or
            absent; a URL while ``fetch_urls`` is off; bytes that are not a JPEG, PNG,
            GIF or BMP image, or over ``PICTURE_MAX`` (each message says which).
        OneBotError: a URL or a received picture could not be fetched.
    """
    if not isinstance(file, str) or not file:
        raise BadParams("an image segment needs a file: " + _FORMS)
    name: Optional[str] = None
    if file.startswith("base64://"):
        data = _decode_base64(file[len("base64://"):])
    elif file.startswith(("http://", "https://")):
        if not fetch_urls:
            raise BadParams("image file=%s: sending pictures by URL is off ([api] "
                            "fetch_urls = no)" % _shown(file))
        data = await _fetch(file, stream)
        name = urllib.parse.urlsplit(file).path.rsplit("/", 1)[-1] or None
    elif is_picture_name(file):
        data = await _received(file, received, client)
    elif file.startswith("file://") or "://" not in file:
        path = _inside(file, media_dir)
        data = await IOLoop.current().run_in_executor(None, _read_file, path)
        name = path.name
    else:
        raise BadParams("image file=%s: not one of %s" % (_shown(file), _FORMS))
    try:
        return UploadPicture.from_bytes(data, name)
    except PictureError as error:
        raise BadParams("image file=%s: %s" % (_shown(file), error)) from None


def _shown(file: str) -> str:
    """``file`` for a message: a base64 payload is not repeated."""
    if file.startswith("base64://"):
        return "base64://…"
    return file if len(file) <= 200 else file[:200] + "…"


def _decode_base64(text: str) -> bytes:
    if len(text) > (PICTURE_MAX + 2) // 3 * 4 + 4096:       # line breaks allowed for
        raise BadParams("image file=base64://…: the picture is too large: over %s, the "
                        "2013 limit" % _size(PICTURE_MAX))
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadParams("image file=base64://…: not valid base64") from None
    if len(data) > PICTURE_MAX:
        raise BadParams("image file=base64://…: the picture is too large: %s, the 2013 "
                        "limit is %s" % (_size(len(data)), _size(PICTURE_MAX)))
    return data


def _inside(file: str, media_dir: Optional[Path]) -> Path:
    """The real path ``file`` names, when it is inside ``media_dir`` (links followed).

    Raises:
        BadParams: no ``media_dir``, or the path is outside it.
    """
    if media_dir is None:
        raise BadParams("image file=%s: sending pictures by path needs [api] media_dir"
                        % _shown(file))
    if file.startswith("file://"):
        parts = urllib.parse.urlsplit(file)
        if parts.netloc not in ("", "localhost"):
            raise BadParams("image file=%s: a file URL names this machine's files only"
                            % _shown(file))
        file = url2pathname(parts.path)
    root = os.path.realpath(media_dir)
    path = os.path.realpath(os.path.join(root, file))
    if os.path.commonpath([root, path]) != root or path == root:
        raise BadParams("image file=%s: the path is outside [api] media_dir (%s)"
                        % (_shown(file), media_dir))
    return Path(path)


def _read_file(path: Path) -> bytes:
    """A picture file's bytes (in a worker thread).

    Raises:
        BadParams: absent, not a regular file, unreadable or over ``PICTURE_MAX``.
    """
    try:
        with open(path, "rb") as stream:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise BadParams("image file=%s: not a regular file" % path)
            size = status.st_size
            if size > PICTURE_MAX:
                raise BadParams("image file=%s: the picture is too large: %s, the 2013 "
                                "limit is %s" % (path, _size(size), _size(PICTURE_MAX)))
            return stream.read(PICTURE_MAX + 1)
    except OSError as error:
        raise BadParams("image file=%s: cannot be read: %s" % (
            path, error.strerror or error)) from None


async def _fetch(url: str, stream: Optional[HTTPStream]) -> bytes:
    try:
        response = await stream.fetch(Request(url, headers={"Accept": "image/*"}))
    except ResponseTooLargeError:
        raise BadParams("image file=%s: the picture is too large: over %s, the 2013 limit"
                        % (_shown(url), _size(PICTURE_MAX))) from None
    except (HTTPStreamError, ValueError) as error:
        raise OneBotError("image file=%s: cannot be fetched: %s" % (_shown(url), error)
                          ) from None
    if response.status != 200:
        raise OneBotError("image file=%s: cannot be fetched: HTTP %d %s"
                          % (_shown(url), response.status, response.reason))
    return response.read()


async def _received(name: str, received: "ReceivedPictures", client: Any) -> bytes:
    picture = received.find(name)
    if picture is None:
        raise BadParams("image file=%s: no picture received has that name" % name)
    try:
        return await client.pictures.fetch(picture)
    except (Unavailable, NotOnline, ProtocolError, HTTPStreamError) as error:
        raise OneBotError("image file=%s: the picture received cannot be fetched: %s"
                          % (name, error)) from None


class OutgoingPictures:
    """The pictures of queued messages, one file per picture in ``directory``, named by
    the SHA-256 of its bytes (see the module doc).

    Args:
        directory: ``state_dir/media-out`` (created 0700 when first needed).

    Attribute ``being_put``: the digests of pictures written for a message not yet
    stored (a sweep keeps them), with how many such messages name each.
    """

    def __init__(self, directory: Union[str, Path]) -> None:
        self.directory = Path(directory)
        self.being_put: "Counter[str]" = Counter()
        self._sweeping: Optional[Store] = None      # a sweep_soon() not yet run

    async def keep(self, picture: UploadPicture) -> StoredPicture:
        """Write ``picture`` (durably, 0600, in a worker thread) unless its file is
        there; returns what a row keeps of it.

        Raises:
            OSError: it cannot be written (nothing is left behind).
        """
        digest = hashlib.sha256(picture.data).hexdigest()
        path = self.directory / digest
        if not (path.is_file() and path.stat().st_size == len(picture.data)):
            await IOLoop.current().run_in_executor(None, self._write, path, picture.data)
        return StoredPicture(digest, picture.format, picture.name)

    def _write(self, path: Path, data: bytes) -> None:
        ensure_dir(self.directory)
        atomic_write(path, data)

    def load(self, stored: StoredPicture) -> UploadPicture:
        """The picture a row names, read on the IOLoop: it is at most ``PICTURE_MAX``
        (1 MiB), read once when its message's turn comes, a few milliseconds of local
        disk that a thread would not save (the pump hands a row over synchronously).

        Raises:
            ValueError: the file is gone or damaged (its message fails with this reason).
        """
        try:
            data = (self.directory / stored.digest).read_bytes()
        except OSError as error:
            raise ValueError("its picture %s is gone from %s: %s" % (
                stored.name, self.directory, error.strerror or error)) from None
        if hashlib.sha256(data).hexdigest() != stored.digest:
            raise ValueError("its picture %s in %s is damaged" % (stored.name,
                                                                  self.directory))
        return UploadPicture(data, stored.format, stored.name)

    def sweep_soon(self, store: Store) -> None:
        """At the loop's next turn, remove the pictures that no queued or sending row of
        any account of ``store``'s file, nor a message being put, names: once for all
        who ask meanwhile (a daemon's thousand accounts ask together as they start).
        Nothing goes while the rows cannot be read."""
        if self._sweeping is None:
            self._sweeping = store
            IOLoop.current().add_callback(self._sweep_due)

    def _sweep_due(self) -> None:
        store, self._sweeping = self._sweeping, None
        keep = set(self.being_put)
        try:
            for row in store.pending_with_pictures():
                keep |= digests(row.data.get("pieces", ()))
        except StoreUnavailable as error:
            log.debug("pictures not swept: %s", error)
            return
        gone = self.sweep(keep)
        if gone:
            log.debug("%d picture(s) of finished messages removed", gone)

    def sweep(self, keep: Set[str]) -> int:
        """Remove the pictures whose digest is not in ``keep`` (what queued or sending
        rows, or a message being queued, still name). Returns how many went."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        except OSError as error:
            log.warning("cannot list %s: %s", self.directory, error.strerror or error)
            return 0
        gone = 0
        for name in names:
            if _DIGEST.fullmatch(name) and name not in keep:
                try:
                    os.unlink(self.directory / name)
                    gone += 1
                except OSError as error:
                    log.warning("cannot remove %s: %s", self.directory / name,
                                error.strerror or error)
        return gone


def digests(data: Iterable[Any]) -> Set[str]:
    """The picture digests a row's stored pieces (``pieces_to_data``) name."""
    return {item["picture"] for item in data if isinstance(item, dict) and "picture" in item}


class ReceivedPictures:
    """Received pictures by their ``picture_name``: the most recent in memory, all of
    them in the store (while their messages are kept).

    Args:
        store: the API's ``Store``; a failed write costs only the lookup after a
            restart.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._recent: "OrderedDict[str, ReceivedPicture]" = OrderedDict()

    def remember(self, picture: ReceivedPicture, name: str) -> None:
        self._recent[name] = picture
        self._recent.move_to_end(name)
        while len(self._recent) > REMEMBERED:
            self._recent.popitem(last=False)
        try:
            self.store.keep_picture(name, {
                "source": picture.source, "name": picture.name,
                "from_uin": picture.from_uin, "msg_id": picture.msg_id,
                "code": picture.code, "discussion": picture.discussion,
                "file_id": picture.file_id, "server": picture.server})
        except StoreUnavailable as error:
            log.debug("picture %s not stored: %s", name, error.reason)

    def find(self, name: str) -> Optional[ReceivedPicture]:
        """The picture of that name, or None."""
        picture = self._recent.get(name)
        if picture is not None:
            return picture
        try:
            data = self.store.picture(name)
        except StoreUnavailable:
            return None
        return ReceivedPicture(**data) if data is not None else None


class Offer:
    """A file a friend offered or left: its ``notice`` (the client's ``FileNotice``);
    while it is being taken, ``taking`` (a task whose result is the path); once taken,
    the ``path`` it was written to; once it cannot be taken any more, ``gone`` says why
    (refused, or taken back)."""

    __slots__ = ("notice", "taking", "path", "gone")

    def __init__(self, notice: Any) -> None:
        self.notice = notice
        self.taking: Optional["asyncio.Future[Path]"] = None
        self.path: Optional[Path] = None
        self.gone: Optional[str] = None


class FileOffers:
    """The files of ``offline_file`` notices by id (the most recent ``REMEMBERED``), and
    which of them the friend took back."""

    def __init__(self) -> None:
        self._offers: "OrderedDict[str, Offer]" = OrderedDict()
        self._sessions: Dict[Tuple[Optional[int], Optional[int]], str] = {}

    def add(self, notice: Any) -> str:
        """Remember a ``FileNotice`` (offer or offline); returns its new id."""
        file_id = secrets.token_hex(8)
        self._offers[file_id] = Offer(notice)
        if notice.change == "offer":
            inner = notice.event
            self._sessions[(inner.from_uin, inner.session_id)] = file_id
        while len(self._offers) > REMEMBERED:
            _, old = self._offers.popitem(last=False)
            self._sessions.pop((old.notice.event.from_uin, old.notice.event.session_id),
                               None)
        return file_id

    def cancelled(self, notice: Any) -> None:
        """The friend took back an offer (a ``cancel`` ``FileNotice``)."""
        inner = notice.event
        file_id = self._sessions.get((inner.from_uin, inner.session_id))
        if file_id is not None and file_id in self._offers:
            self._offers[file_id].gone = "the friend took it back"

    def get(self, file_id: Any) -> Offer:
        """The offer of ``file_id``.

        Raises:
            BadParams: no such id (unknown, forgotten, or from before a restart).
        """
        offer = self._offers.get(file_id) if isinstance(file_id, str) else None
        if offer is None:
            raise BadParams("unknown file_id %r (files are remembered in memory: not "
                            "across a restart or an [api] reload)" % (file_id,))
        return offer
