"""The process around the daemon: exit codes, OS effects, detaching, the start report.

What it is for: ``ExitCode`` is what ``webqq`` exits with; ``System`` holds every effect
on the process (fork, setsid, kill, sleep, the clock) as methods tests can swap;
``detach`` is the double fork of ``webqq start``; ``ReportPipe`` is the daemon's end of
the pipe on which the waiting ``webqq start`` reads how the start goes, and
``read_report`` is the other end.

What it must never do: run in the daemon's IOLoop what blocks (only the CLI, which has no
loop, sleeps or waits on the pipe), or leave the detached daemon a controlling terminal.
"""
import enum
import os
import select
import time
from typing import Callable, List, NoReturn, Optional

__all__ = ["ExitCode", "StartupError", "System", "detach", "ReportPipe", "read_report"]


class ExitCode(enum.IntEnum):
    """What the ``webqq`` process exits with, so that a supervisor can act on it."""
    OK = 0              # done, or stopped cleanly
    FAILURE = 1         # anything else that went wrong (not running, killed, offline)
    USAGE = 2           # a bad command line (argparse)
    CONFIG = 3          # the configuration cannot be used: restarting will not help
    LOGIN_REFUSED = 4   # the server refused the login for good (password): do not retry


class StartupError(Exception):
    """Raised before the daemon is up: ``code`` is the ExitCode to leave with."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    def line(self) -> str:
        """What the CLI prints: a configuration error's one line as it is."""
        return str(self) if self.code == ExitCode.CONFIG else "webqq: %s" % self


class System:
    """Every effect on the process the daemon and the CLI have, in one place."""

    fork = staticmethod(os.fork)
    setsid = staticmethod(os.setsid)
    umask = staticmethod(os.umask)
    chdir = staticmethod(os.chdir)
    kill = staticmethod(os.kill)
    waitpid = staticmethod(os.waitpid)
    exit_now = staticmethod(os._exit)
    getpid = staticmethod(os.getpid)
    sleep = staticmethod(time.sleep)        # only the CLI waiting for another process
    monotonic = staticmethod(time.monotonic)

    def redirect_stdio(self) -> None:
        """Point stdin, stdout and stderr at /dev/null (a detached daemon has no tty)."""
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)

    def alive(self, pid: int) -> bool:
        """Whether process ``pid`` exists (signal 0)."""
        try:
            self.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def detach(system: System, body: Callable[[], int]) -> NoReturn:
    """In the first child of ``webqq start``: a new session, a second fork, then
    ``body()`` in the grandchild, which exits with what it returns.

    Forking before ``setsid`` makes us a process-group follower, which setsid
    requires; the second fork leaves the session leader behind, so the daemon can
    never acquire a controlling terminal by opening one.
    """
    code = 1
    try:
        system.setsid()
        if system.fork() != 0:
            system.exit_now(0)
        system.umask(0o027)
        system.chdir("/")
        system.redirect_stdio()
        code = body()
    finally:
        system.exit_now(int(code))


class ReportPipe:
    """The daemon's end of the pipe a waiting ``webqq start`` reads, one line per step;
    nothing happens without one (``webqq run``)."""

    def __init__(self, fd: Optional[int] = None) -> None:
        self.fd = fd

    def tell(self, line: str) -> None:
        """Send one report line; a reader that left is no error."""
        if self.fd is None:
            return
        try:
            os.write(self.fd, line.encode("utf-8") + b"\n")
        except OSError:
            pass

    def close(self) -> None:
        """The report is over (the parent stops waiting). Safe to call twice."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_report(read_end: int, wait: float, system: System) -> List[str]:
    """The parent's side: the lines read from ``read_end`` until the daemon closes the
    pipe or ``wait`` seconds have passed. Closes ``read_end``."""
    deadline = system.monotonic() + wait
    data = b""
    try:
        while True:
            left = deadline - system.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                break
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
    return data.decode("utf-8", "replace").splitlines()
