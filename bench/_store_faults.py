"""Faults of a running daemon's message store, made from outside as an admin or a full
disk would make them: ``lock`` holds the store's write lock from a second SQLite
connection (a backup, an ``sqlite3`` shell); ``fill`` leaves it no room to grow.

How ``fill`` works. The store's WAL is first truncated (``PRAGMA wal_checkpoint
(TRUNCATE)`` from the second connection), so that the daemon's next write must grow a
file; then:

* with a tmpfs (``mount`` works: root), state_dir is a small tmpfs of its own, and a
  filler file takes every free byte of it: the daemon's writes fail with ENOSPC, which
  SQLite reports as "database or disk is full", the way a full disk does. The daemon's
  log is kept out of the tmpfs;
* without one, the daemon's RLIMIT_FSIZE (``prlimit``) is lowered to one page: SQLite
  says "disk I/O error". The limit is the process's: log lines written meanwhile fail
  too (Python prints "--- Logging error ---" to the daemon's stderr).

``unfill`` and ``unlock`` undo them; ``close`` undoes everything and unmounts. Like
``_harness``, it never touches webqq's internals: SQLite, the file system and /proc.
"""
import os
import resource
import sqlite3
import subprocess

__all__ = ["StoreFaults"]

#: Bytes of the filler's writes (then single pages, to take the last ones).
CHUNK = 1024 * 1024
PAGE = 4096


class StoreFaults:
    """Lock and fill the store of ``rig``'s daemon.

    Args:
        rig: the ``_harness.Rig`` (before ``start_daemon``: ``prepare`` moves things).
        tmpfs_mb: size of the tmpfs for state_dir, when one can be mounted.
    """

    def __init__(self, rig, tmpfs_mb: int = 64) -> None:
        self.rig = rig
        self.tmpfs_mb = tmpfs_mb
        self.tmpfs = False
        self.how = "RLIMIT_FSIZE (no tmpfs could be mounted)"
        self._locker = None
        self._filler = None
        self._limited = False

    @property
    def store(self) -> str:
        return os.path.join(self.rig.state_dir, "messages.sqlite3")

    def prepare(self) -> None:
        """Before the daemon starts: a tmpfs for state_dir if one can be mounted, and
        the log out of it."""
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700"
                               % self.tmpfs_mb, "tmpfs", self.rig.state_dir],
                              capture_output=True, text=True)
        if done.returncode == 0:
            self.tmpfs = True
            self.how = "a %d MB tmpfs for state_dir, filled" % self.tmpfs_mb
            self.rig.log_file = os.path.join(self.rig.dir, "webqq.log")

    def lock(self) -> None:
        self._locker = sqlite3.connect(self.store, timeout=10, isolation_level=None)
        self._locker.execute("BEGIN IMMEDIATE")

    def unlock(self) -> None:
        if self._locker is not None:
            self._locker.execute("ROLLBACK")
            self._locker.close()
            self._locker = None

    def fill(self) -> None:
        db = sqlite3.connect(self.store, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        if self.tmpfs:
            self._filler = os.path.join(self.rig.state_dir, "filler")
            with open(self._filler, "wb", buffering=0) as out:
                for size in (CHUNK, PAGE):
                    try:
                        while True:
                            out.write(b"\0" * size)
                    except OSError:
                        pass
        else:
            resource.prlimit(self.rig.daemon.pid, resource.RLIMIT_FSIZE,
                             (PAGE, resource.RLIM_INFINITY))
            self._limited = True

    def unfill(self) -> None:
        if self._filler is not None:
            os.unlink(self._filler)
            self._filler = None
        if self._limited:
            self._limited = False
            if self.rig.daemon is not None and self.rig.daemon.poll() is None:
                resource.prlimit(self.rig.daemon.pid, resource.RLIMIT_FSIZE,
                                 (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def close(self) -> None:
        """Undo every fault; unmount the tmpfs once the daemon is gone."""
        self.unlock()
        try:
            self.unfill()
        except OSError:
            pass
        if self.tmpfs and (self.rig.daemon is None or self.rig.daemon.poll() is not None):
            subprocess.run(["umount", self.rig.state_dir], capture_output=True)
            self.tmpfs = False
