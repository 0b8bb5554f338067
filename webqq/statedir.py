"""The files webqq keeps in state_dir, named in one place, and the one way to write them.

What it is for: every module that reads or writes a file of state_dir takes its name
from here, so the folder's contents are listed once::

    webqq.pid          the pidfile, locked while the daemon runs        (daemon)
    status.json        what ``webqq status`` shows                      (daemon)
    webqq.log          the log of a detached daemon without a logfile   (daemon)
    api-token          the generated OneBot access token                (onebot)
    messages.sqlite3   messages and the durable outgoing queue          (onebot)
      (-wal, -shm)     its journal and index, 0600 like it              (onebot)
    messages.sqlite3.bad-STAMP  a damaged store, set aside for a look   (onebot)
    outbox-QQ.json     an older version's unsent replies, moved into
                       messages.sqlite3 at start                        (onebot)
    session-QQ.json    an account's session, for resuming it            (client)
    session-QQ.json.bad-STAMP  one found unusable, set aside for a look (client)
    captcha-QQ.jpg     the verify-code image while a login waits        (client)
    pictures/          received pictures, fetched on first use; capped  (client)
    files/             files taken from friends and offline files       (client)
    media-out/         pictures of queued messages, by content hash     (onebot)

What it must never do: keep a half-written file where a reader can see it, or leave a
file readable by others. Each of these files may hold a secret (cookies, a token) or
message text, so ``atomic_write`` creates them 0600 whatever the umask.
"""
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

__all__ = ["PIDFILE", "STATUS", "LOG", "TOKEN", "STORE", "PICTURES", "FILES", "MEDIA_OUT",
           "session_file", "captcha_file", "saved_outbox_file", "ensure_dir", "atomic_write",
           "atomic_write_json"]

PIDFILE = "webqq.pid"
STATUS = "status.json"
LOG = "webqq.log"
TOKEN = "api-token"
STORE = "messages.sqlite3"
PICTURES = "pictures"
FILES = "files"
MEDIA_OUT = "media-out"

PathLike = Union[str, "os.PathLike[str]"]


def session_file(qq: int) -> str:
    """The name of account ``qq``'s saved session."""
    return "session-%d.json" % qq


def saved_outbox_file(qq: int) -> str:
    """The name of the unsent replies of account ``qq`` an older version saved."""
    return "outbox-%d.json" % qq


def captcha_file(qq: int) -> str:
    """The name of account ``qq``'s verify-code image."""
    return "captcha-%d.jpg" % qq


def ensure_dir(state_dir: PathLike) -> Path:
    """``state_dir``, created with mode 0700 (and its parents) when missing."""
    path = Path(state_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def atomic_write(path: PathLike, data: bytes, *, mode: int = 0o600,
                 durable: bool = True) -> None:
    """Replace ``path`` with ``data``: a reader sees the old file or the new one whole.

    The bytes go to a temporary file in the same directory, created with ``mode``
    (0600 by default, whatever the umask), then renamed over ``path``. With
    ``durable`` the file is fsynced before the rename and the directory after it, so
    the new content survives a power cut once this returns; without it (a status file
    rewritten every few seconds) only the rename's atomicity is promised.

    Raises:
        OSError: the directory or the file cannot be written; nothing is left behind.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp",
                                     dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    if durable:
        directory = os.open(str(path.parent), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def atomic_write_json(path: PathLike, value: Any, *, mode: int = 0o600,
                      durable: bool = True, indent: Optional[int] = 1) -> None:
    """``atomic_write`` of ``value`` as key-sorted JSON (indented by ``indent``, or on
    one line with None) and a newline."""
    text = json.dumps(value, indent=indent, sort_keys=True) + "\n"
    atomic_write(path, text.encode("utf-8"), mode=mode, durable=durable)
