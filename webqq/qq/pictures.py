"""Pictures as bytes: what kind of image they are, and whether one may be sent.

pictures: values only; no I/O (``UploadPicture.from_file`` reads a file for the caller
who asks, and says so). Must never accept for sending anything that is not a JPEG,
PNG, GIF or BMP image within the 2013 limits: a clear ``PictureError`` before any
request is made.

The 2013 limits, where the sources state them (docs/media.rst has the details):

* a group or discussion picture goes to the custom-face server (``cface_upload`` with
  ``from=control``), which answered ``ret 2`` above 1 MB (LQ, 2013-06-02: "Send Pic over
  1MB"); without ``from=control`` the limit was 250 KB (LQ, 2013-09-19);
* a friend's picture goes to the offline-picture server (``upload_offline_pic``); no
  2013 source states its limit, so the group limit is ours too.
"""
import hashlib
from dataclasses import dataclass, field
from typing import Optional

from webqq.qq.kinds import ChatKind

__all__ = ["PICTURE_TYPES", "GROUP_PICTURE_MAX", "OFFLINE_PICTURE_MAX",
           "RECEIVED_PICTURE_MAX", "PictureError", "sniff_picture", "picture_limit",
           "UploadPicture"]

#: The formats the 2013 web client sent and showed, by file extension, and their type.
PICTURE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                 "bmp": "image/bmp"}

#: Bytes a group or discussion picture may have: cface_upload answered ``ret 2`` above
#: 1 MB (LQ). Read as 2**20; the server's exact count is not recorded.
GROUP_PICTURE_MAX = 1024 * 1024
#: Bytes a friend's (offline) picture may have: no 2013 source states the server's
#: limit; the group limit is our choice.
OFFLINE_PICTURE_MAX = 1024 * 1024
#: Bytes a received picture may have when fetched: our choice, four times what the web
#: client could send, for pictures from the PC client; anything larger is refused.
RECEIVED_PICTURE_MAX = 4 * 1024 * 1024

# DIB header sizes a BMP file can have (BITMAPCOREHEADER .. BITMAPV5HEADER): "BM"
# alone is two letters any text may start with.
_DIB_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}


class PictureError(ValueError):
    """Raised when bytes cannot be sent as a picture: empty, not a JPEG, PNG, GIF or
    BMP image, or over the limit of the chat they go to. ``str`` says which."""


def sniff_picture(data: bytes) -> Optional[str]:
    """The format of ``data`` from its first bytes: ``"jpg"``, ``"png"``, ``"gif"``,
    ``"bmp"``, or None for anything else (the name and any declared type are not
    trusted)."""
    head = bytes(data[:26])
    if head[:3] == b"\xff\xd8\xff":
        return "jpg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 18 and \
            int.from_bytes(head[14:18], "little") in _DIB_HEADER_SIZES:
        return "bmp"
    return None


def picture_limit(chat: ChatKind) -> int:
    """The most bytes a picture sent in ``chat`` may have; 0 for a temporary session,
    which cannot carry pictures (LQ: "sess message can not send picture")."""
    if chat is ChatKind.BUDDY:
        return OFFLINE_PICTURE_MAX
    if chat in (ChatKind.GROUP, ChatKind.DISCUSSION):
        return GROUP_PICTURE_MAX
    return 0


def _describe_size(size: int) -> str:
    return "{:,} bytes".format(size)


def _problem(data: bytes, format: Optional[str] = None) -> Optional[str]:
    """Why ``data`` cannot be sent as a picture (of ``format``, if given), or None."""
    if not data:
        return "the picture is empty"
    kind = sniff_picture(data)
    if kind is None:
        return "not a picture: JPEG, PNG, GIF or BMP expected, the data starts with %r" \
            % bytes(data[:8])
    if format is not None and kind != format:
        return "the picture is a %s, not a %s" % (kind, format)
    limit = max(GROUP_PICTURE_MAX, OFFLINE_PICTURE_MAX)
    if len(data) > limit:
        return "the picture is too large: %s, the 2013 limit is %s" % (
            _describe_size(len(data)), _describe_size(limit))
    return None


@dataclass(frozen=True)
class UploadPicture:
    """A picture to send: a piece of outgoing content, uploaded by the client when its
    turn comes (and replaced on the wire by an ``OffPic`` or a ``CFace``).

    Make one with ``from_bytes`` (or ``from_file``), which names it; every way of making
    one checks it, so that no picture that could not be sent ever exists.

    Attributes:
        data: the image's bytes.
        format: ``"jpg"``, ``"png"``, ``"gif"`` or ``"bmp"``, sniffed from ``data``.
        name: the file name sent with it.
    """
    data: bytes = field(repr=False)
    format: str
    name: str

    def __post_init__(self) -> None:
        """Check the picture: ``PictureError`` if it is empty, not the image its
        ``format`` says (sniffed), larger than the largest 2013 limit, or nameless."""
        problem = _problem(self.data, self.format)
        if problem is not None:
            raise PictureError(problem)
        if not self.name:
            raise PictureError("a picture needs a file name")

    @property
    def content_type(self) -> str:
        """The MIME type of ``format``."""
        return PICTURE_TYPES[self.format]

    @classmethod
    def from_bytes(cls, data: bytes, name: Optional[str] = None) -> "UploadPicture":
        """Check ``data`` and make it a picture to send.

        Args:
            data: the image's bytes.
            name: the file name to send; default: the upper-case MD5 of the bytes and
                the sniffed extension, as the QQ clients named custom faces. A given
                name keeps its stem and takes the sniffed extension.

        Returns:
            The ``UploadPicture``.

        Raises:
            PictureError: empty, not a JPEG, PNG, GIF or BMP image, or larger than the
                largest 2013 limit (``GROUP_PICTURE_MAX``).
        """
        data = bytes(data)
        kind = sniff_picture(data)
        if kind is None:
            raise PictureError(_problem(data))
        stem = hashlib.md5(data).hexdigest().upper()
        if name:
            base = name.replace("\\", "/").rsplit("/", 1)[-1]
            stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
            stem = "".join(c for c in stem if c.isprintable() and c not in '"\'') or stem
        return cls(data, kind, "%s.%s" % (stem, kind))

    @classmethod
    def from_file(cls, path: str, name: Optional[str] = None) -> "UploadPicture":
        """``from_bytes`` of a file's content, named after the file. It reads at most
        one byte more than the limit, with blocking I/O: call it where that is fine (a
        picture under the limit is a few milliseconds of disk).

        Raises:
            PictureError: as ``from_bytes``. OSError: the file cannot be read.
        """
        limit = max(GROUP_PICTURE_MAX, OFFLINE_PICTURE_MAX)
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
        return cls.from_bytes(data, name or path)

    def check_for(self, chat: ChatKind) -> None:
        """Raise ``PictureError`` when this picture cannot be sent in ``chat``."""
        limit = picture_limit(chat)
        if limit == 0:
            raise PictureError("a %s message cannot carry pictures" % chat)
        if len(self.data) > limit:
            raise PictureError("the picture is too large for a %s message: %s, the 2013 "
                               "limit is %s" % (chat, _describe_size(len(self.data)),
                                                 _describe_size(limit)))
