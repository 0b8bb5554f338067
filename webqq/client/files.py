"""Files: taking or refusing what a friend sends, fetching what was left offline.

files: ``Files`` (``client.files``). A ``file_message`` offer (``FileEvent`` with
``mode`` ``recv``) is taken with ``accept`` (``get_file2``, which redirects to the
bytes) or declined with ``refuse`` (``refuse_file2``); a ``push_offfile`` is fetched with
``download`` from the server it names. It never opens a socket and never parses bytes.

Every file is capped (``max_bytes``): an offline file whose announced size is over the
cap is refused before any byte is fetched, and any body over the cap is dropped. The
stream itself never reads more than its own cap (16 MiB), whatever a server announces.

Blocking file I/O: a file (up to the cap, megabytes) is written to ``state_dir/files``
in the loop's thread pool (``IOLoop.run_in_executor``), never on the IOLoop itself.
"""
import logging
import os
import re
import unicodedata
from pathlib import Path
from typing import Union

from tornado.ioloop import IOLoop

from webqq.client.calls import Calls, Unavailable
from webqq.qq import (FileEvent, build_get_file, build_get_offline_file, build_refuse_file,
                      parse_get_file, parse_refuse_file)
from webqq.statedir import ensure_dir

__all__ = ["Files", "FILE_MAX_BYTES", "safe_file_name"]

log = logging.getLogger("webqq.client")

#: Bytes a file taken or fetched may have: our choice, under the stream's 16 MiB cap.
#: The 2013 web client's offline files could be larger; those are refused with a
#: clear error rather than held in memory.
FILE_MAX_BYTES = 10 * 1024 * 1024

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_NAME_MAX = 120


def safe_file_name(name: str) -> str:
    """``name`` as a file name that stays inside its directory: no path, no control
    or reserved characters, no leading dot, at most 120 characters; "file" if nothing
    is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".")
    if len(name) > _NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[:_NAME_MAX - len(extension) - 1] + "." + extension
        else:
            name = name[:_NAME_MAX]
    return name or "file"


def _write_new(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new file of ``directory`` named ``name`` (or ``name-2``,
    ``name-3``...: nothing is overwritten), mode 0600. Runs in a worker thread."""
    ensure_dir(directory)
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    for attempt in range(1, 1000):
        candidate = name if attempt == 1 else "%s-%d%s" % (
            stem, attempt, "." + extension if extension else "")
        path = directory / candidate
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path
    raise FileExistsError("no free name for %s in %s" % (name, directory))


class Files:
    """``client.files``: take, refuse or fetch the files friends send.

    Args:
        calls: the client's ``Calls``.
        directory: where files are written (``state_dir/files``).
        max_bytes: the cap on one file (``FILE_MAX_BYTES``).
        io_loop: whose thread pool writes the files.
    """

    def __init__(self, calls: Calls, directory: Union[str, Path], *,
                 max_bytes: int = FILE_MAX_BYTES, io_loop: IOLoop) -> None:
        self._calls = calls
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._io_loop = io_loop

    async def accept(self, offer: FileEvent) -> Path:
        """Take the file a friend offers (``get_file2``) and write it to the directory.

        Args:
            offer: a ``file_message`` ``FileEvent`` whose ``mode`` is ``recv``.

        Returns:
            Where the file was written (its name made safe, never overwriting).

        Raises:
            Unavailable: not an offer, or the file is over ``max_bytes``.
            NotOnline, ProtocolError (e.g. ``RetcodeError``: the transfer is gone),
            HTTPStreamError: see ``webqq.client.calls``.
        """
        if offer.kind != "file_message" or offer.mode != "recv":
            raise Unavailable("only a file_message offer (mode recv) can be accepted, "
                              "not a %s%s" % (offer.kind, " " + offer.mode
                                              if offer.mode else ""))
        link = self._calls.session()
        request = build_get_file(offer.session_id, offer.name, offer.from_uin,
                                 clientid=link.clientid, psessionid=link.psessionid,
                                 t=self._calls.seconds())
        response = await self._calls.response(request)
        data = parse_get_file(response.read(), redirected=response.url != request.full_url)
        return await self._keep(offer.name, data)

    async def refuse(self, offer: FileEvent) -> None:
        """Decline the file a friend offers (``refuse_file2``).

        Raises:
            Unavailable: not an offer. NotOnline, ProtocolError, HTTPStreamError: see
            ``webqq.client.calls``.
        """
        if offer.kind != "file_message" or offer.mode != "recv":
            raise Unavailable("only a file_message offer (mode recv) can be refused")
        link = self._calls.session()
        await self._calls.call(build_refuse_file(
            offer.session_id, offer.from_uin, clientid=link.clientid,
            psessionid=link.psessionid, t=self._calls.seconds()), parse_refuse_file)
        log.info("Refused file %s from uin %d", offer.name, offer.from_uin)

    async def download(self, offline: FileEvent) -> Path:
        """Fetch an offline file from the server its ``push_offfile`` names, and write
        it to the directory.

        Returns:
            Where the file was written.

        Raises:
            Unavailable: not a ``push_offfile``, or over ``max_bytes`` (announced or
                received). ProtocolError, HTTPStreamError: see ``webqq.client.calls``.
        """
        if offline.kind != "push_offfile":
            raise Unavailable("only a push_offfile can be downloaded, not a %s"
                              % offline.kind)
        if offline.size is not None and offline.size > self.max_bytes:
            raise Unavailable("offline file %s is %d bytes, over the %d-byte cap"
                              % (offline.name, offline.size, self.max_bytes))
        request = build_get_offline_file(offline.name, ip=offline.ip, port=offline.port,
                                         rkey=offline.rkey)
        response = await self._calls.response(request)
        return await self._keep(offline.name, response.read())

    async def _keep(self, name: str, data: bytes) -> Path:
        if len(data) > self.max_bytes:
            raise Unavailable("file %s is %d bytes, over the %d-byte cap"
                              % (name, len(data), self.max_bytes))
        path = await self._io_loop.run_in_executor(
            None, _write_new, self.directory, safe_file_name(name), data)
        log.info("Saved file %s (%d bytes) as %s", name, len(data), path)
        return path
