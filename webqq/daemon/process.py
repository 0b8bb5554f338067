"""The process around the daemon: exit codes, OS effects, detaching, the start report.

What it is for: ``ExitCode`` is what ``webqq`` exits with; ``System`` holds every effect
on the process (fork, setsid, kill, sleep, the clock, giving free memory back) as
methods tests can swap;
``check_ports`` refuses a port that is taken; ``detach`` is the double fork of
``webqq start``; ``ReportPipe`` is the daemon's end of
the pipe on which the waiting ``webqq start`` reads how the start goes, and
``await_report`` is the other end.

What it must never do: run in the daemon's IOLoop what blocks (only the CLI, which has no
loop, sleeps or waits on the pipe), or leave the detached daemon a controlling terminal.
"""
import enum
import functools
import os
import select
import time
from typing import Callable, Iterable, Iterator, NoReturn, Optional, Tuple

from tornado.netutil import bind_sockets

__all__ = ["ExitCode", "StartupError", "System", "detach", "ReportPipe", "read_report",
           "await_report", "check_ports"]


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

    def release_free_memory(self) -> bool:
        """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

        What a burst frees stays in the process otherwise: a thousand logins at once
        hold a thousand TLS handshakes' buffers (about 30 KB each, OpenSSL's, in the C
        heap), and once they are freed the heap cannot shrink past what was allocated
        after them. Trimmed, that was a third of each account's resident memory in a
        daemon of a thousand (issue 17). It takes about a millisecond to give back tens
        of megabytes, a quarter of one to find nothing to give in that daemon's heap.
        Returns False where there is no ``malloc_trim`` (not glibc).
        """
        trim = _malloc_trim()
        if trim is None:
            return False
        trim(0)
        return True

    def alive(self, pid: int) -> bool:
        """Whether process ``pid`` exists (signal 0)."""
        try:
            self.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim`` from this process's own symbols, or None (musl, macOS);
    looked up once."""
    try:
        import ctypes           # only a daemon that trims: a few hundred KB
        return ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return None


def check_ports(wanted: Iterable[Tuple[str, int, str]]) -> None:
    """Refuse to start when a port to listen on is taken.

    Args:
        wanted: ``(host, port, key)`` of each address, ``key`` naming its setting
            (``"[api] listen"``); port 0 (any free port) is never taken.

    Raises StartupError (FAILURE) naming the first taken one, as ``cannot listen on
    127.0.0.1:18080 ([simulator] port): address already in use``. Each port is bound
    the way Tornado binds it, then let go.
    """
    for host, port, key in wanted:
        if not port:
            continue
        try:
            sockets = bind_sockets(port, host)
        except OSError as error:
            reason = error.strerror or str(error)
            raise StartupError(ExitCode.FAILURE, "cannot listen on %s:%d (%s): %s" % (
                "[%s]" % host if ":" in host else host, port, key,
                reason[:1].lower() + reason[1:])) from None
        for sock in sockets:
            sock.close()


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


def read_report(read_end: int, deadline: float, system: System) -> Iterator[str]:
    """The parent's side: each line from ``read_end`` as it comes, until the daemon
    closes the pipe or ``system.monotonic()`` reaches ``deadline``. Closes ``read_end``
    when done (or when the caller stops early)."""
    pending = b""
    try:
        while True:
            left = deadline - system.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                return
            chunk = os.read(read_end, 4096)
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
    finally:
        os.close(read_end)


def await_report(read_end: int, wait: float, system: System, logfile: "os.PathLike[str]",
                 progress: Callable[[str], None]) -> Tuple[int, str]:
    """The parent's side of ``webqq start``: read the daemon's report until it ends or
    ``wait`` seconds pass, handing each step to ``progress`` as a line for the user.

    The report's lines: "up PID" (pidfile written), "step WHAT" and "retry SECONDS WHY",
    then one of "login HOW" (online), "pending WHY" (a verify code is needed), "refused
    WHY", or "fail CODE MESSAGE" (it could not start, or stopped).

    Returns ``(exit code, the last line for the user)``: OK once online or waiting for a
    verify code; LOGIN_REFUSED; the failure's code; FAILURE when the daemon is not
    online by the deadline (it keeps trying) or stopped without a word.
    """
    deadline = system.monotonic() + wait
    pid, last_error = None, None
    for line in read_report(read_end, deadline, system):
        word, _, rest = line.partition(" ")
        if word == "fail":
            code, _, message = rest.partition(" ")
            return int(code), StartupError(ExitCode(int(code)), message).line()
        if word == "refused":
            return ExitCode.LOGIN_REFUSED, "webqq login refused: %s" % rest
        if word in ("login", "pending"):
            return ExitCode.OK, "webqq started, pid %s: %s; log: %s" % (pid, rest, logfile)
        if word == "up":
            pid = rest
            progress("webqq: pid %s is up; log: %s" % (pid, logfile))
        elif word == "step":
            progress("webqq: %s" % rest)
        elif word == "retry":
            delay, _, last_error = rest.partition(" ")
            progress("webqq: %s; trying again in %s s" % (last_error, delay))
    if pid is None:
        return ExitCode.FAILURE, ("webqq: the daemon did not report within %g s; see %s"
                                  % (wait, logfile))
    if system.monotonic() < deadline:
        return ExitCode.FAILURE, ("webqq: the daemon stopped before it was online; see %s"
                                  % logfile)
    last = "; last error: %s" % last_error if last_error else ""
    return ExitCode.FAILURE, ("webqq: not online after %g s; pid %s keeps trying (webqq "
                              "status, webqq stop)%s; log: %s" % (wait, pid, last, logfile))
