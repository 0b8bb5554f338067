"""The daemon's files that other processes read: the pidfile lock and the status file.

What it is for: ``Pidfile`` is ``state_dir/webqq.pid``, an ``fcntl.flock`` lock held for
the daemon's life with the pid written into it once the daemon is up; ``Pidfile.probe``
tells the CLI whether a daemon runs. ``read_status`` reads ``state_dir/status.json``,
which the daemon rewrites (``Daemon.write_status``) and ``webqq status`` shows.

What it must never do: take the file, not the lock, for proof that a daemon runs (a
killed daemon leaves its file, unlocked), or remove a pidfile this process did not write.
"""
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from webqq import statedir
from webqq.daemon.config import Config

__all__ = ["AlreadyRunning", "Pidfile", "pidfile_path", "status_path", "read_status"]


def pidfile_path(config: Config) -> Path:
    return config.daemon.state_dir / statedir.PIDFILE


def status_path(config: Config) -> Path:
    return config.daemon.state_dir / statedir.STATUS


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
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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


def read_status(config: Config) -> Optional[Dict[str, Any]]:
    """What the daemon last wrote to its status file, or None (absent or unreadable)."""
    try:
        with open(status_path(config), encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None
