"""The pidfile lock, and the note that leads to it from a configuration file.

What it is for: ``Pidfile`` is ``state_dir/webqq.pid``, an ``fcntl.flock`` lock held for
the daemon's life with the pid written into it once the daemon is up; ``Pidfile.probe``
tells the CLI whether a daemon runs.

``Pointer`` is a small note a running daemon leaves in the user's runtime directory
(``$XDG_RUNTIME_DIR/webqq``, else ``/tmp/webqq-UID``), named after its configuration
file: its state_dir and pid. With it ``webqq stop`` and ``webqq status`` still find the
daemon after a bad edit has made the configuration file unreadable.

What it must never do: take a file, not the lock, for proof that a daemon runs (a killed
daemon leaves its files, unlocked), remove a pidfile this process did not write, or
write the note into a directory another user could have prepared.
"""
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from webqq import statedir
from webqq.daemon.config import Config

__all__ = ["AlreadyRunning", "Pidfile", "pidfile_path", "Pointer"]

PathLike = Union[str, "os.PathLike[str]"]


def pidfile_path(config: Config) -> Path:
    return config.daemon.state_dir / statedir.PIDFILE


class AlreadyRunning(Exception):
    """Raised when another live process holds the pidfile lock; ``pid`` is the one it
    wrote (None while it is still starting)."""

    def __init__(self, path: Path, pid: Optional[int]) -> None:
        self.path, self.pid = path, pid
        who = "pid %d" % pid if pid else "a process that is starting"
        super().__init__("already running (%s holds %s)" % (who, path))


class Pidfile:
    """``state_dir/webqq.pid``: an ``fcntl.flock`` lock held for the daemon's life, and
    the pid written into it once the daemon is up (empty while it starts).

    The lock, not the file, says whether a daemon runs: a file left by a killed daemon is
    unlocked, so it is replaced. ``release()`` removes the file only if this process
    wrote it, and closing the descriptor (even by death) drops the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self._wrote = False

    def acquire(self) -> Optional[int]:
        """Take the lock and empty the file. Returns the pid a stale file held (None if
        none).

        The stale pid goes at once: until ``write`` a locked, empty file reads as
        "starting", so ``webqq stop`` or ``reload`` never signal a dead daemon's pid,
        which an unrelated process may have reused.

        Raises AlreadyRunning when a live process holds it; OSError when the file
        cannot be opened.
        """
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _parse_pid(os.pread(fd, 32, 0))
                os.close(fd)
                raise AlreadyRunning(self.path, pid) from None
            # The holder we waited on may have removed the file before we locked it:
            # then our lock is on a file nobody else will look at; take the new one.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        os.fchmod(fd, 0o600)        # every file of state_dir is private, an old one too
        stale = _parse_pid(os.pread(fd, 32, 0))
        os.ftruncate(fd, 0)
        return stale

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def write(self, pid: int) -> None:
        """Write ``pid`` (the daemon is up)."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, b"%d\n" % pid, 0)
        os.fsync(self._fd)
        self._wrote = True

    def release(self) -> None:
        """Remove the file if we wrote it, then drop the lock. Safe to call twice."""
        if self._fd is None:
            return
        if self._wrote:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def probe(path: Path) -> Tuple[bool, Optional[int]]:
        """``(running, pid)``: whether a live process holds the lock, and the pid in the
        file (a stale one when not running; None when absent or empty)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False, None
        try:
            pid = _parse_pid(os.pread(fd, 32, 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True, pid
            return False, pid
        finally:
            os.close(fd)


def _parse_pid(data: bytes) -> Optional[int]:
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


class Pointer:
    """The note that leads from a configuration file to its running daemon.

    Args:
        config_file: the configuration file, as given; the note is named after its real
            path (symlinks resolved), so every spelling of it finds the same note.
        directory: where notes live; default ``runtime_dir()``.
    """

    def __init__(self, config_file: PathLike, directory: Optional[Path] = None) -> None:
        self.config_file = os.path.realpath(config_file)
        self.directory = directory if directory is not None else runtime_dir()
        name = hashlib.sha256(os.fsencode(self.config_file)).hexdigest()[:16]
        self.path = self.directory / ("daemon-%s.json" % name)

    def write(self, state_dir: Path, pid: int) -> None:
        """Note that daemon ``pid`` of this configuration keeps its state in
        ``state_dir``.

        Raises OSError when the directory cannot be made ours (created 0700, owned by
        this user, not a symlink): then there is no note, which only costs the help
        after a bad edit.
        """
        try:
            self.directory.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        found = os.lstat(self.directory)
        if (not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid()
                or found.st_mode & 0o077):
            raise PermissionError("%s is not a private directory of this user"
                                  % self.directory)
        statedir.atomic_write_json(self.path, {"config": self.config_file,
                                               "state_dir": str(state_dir), "pid": pid},
                                   durable=False)

    def remove(self, pid: int) -> None:
        """Remove the note if it is still daemon ``pid``'s."""
        if self._read().get("pid") == pid:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def state_dir(self) -> Optional[Path]:
        """The state_dir of the daemon the note names, if that daemon still runs (it
        holds the pidfile lock there, under the same pid); else None."""
        note = self._read()
        if note.get("config") != self.config_file or not note.get("state_dir"):
            return None
        state_dir = Path(note["state_dir"])
        if Pidfile.probe(state_dir / statedir.PIDFILE) != (True, note.get("pid")):
            return None
        return state_dir

    def _read(self) -> Dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as stream:
                note = json.load(stream)
        except (OSError, ValueError):
            return {}
        return note if isinstance(note, dict) else {}


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/webqq`` when that variable names a directory, else
    ``webqq-UID`` in the temporary directory."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "webqq"
    return Path(tempfile.gettempdir()) / ("webqq-%d" % os.getuid())
