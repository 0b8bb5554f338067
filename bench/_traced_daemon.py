#!/usr/bin/env python3
"""``webqq`` under tracemalloc, for bench/soak.py: the same command line, plus snapshots.

What it is for: seeing where a long-running daemon's memory goes without putting
tracemalloc in the daemon's own code. It starts tracemalloc, installs a SIGUSR2 handler,
then runs ``webqq.daemon.cli.main`` with this process's arguments (so the pid the status
file names is this process's). Each SIGUSR2 writes ``snapshot-N.pickle`` (N = 1, 2, ...)
into the directory named by ``WEBQQ_TRACEMALLOC``, written under a temporary name and
renamed, so a reader never sees half a file; a forked child writes it, so the daemon's
RSS does not count the snapshot. ``WEBQQ_TRACEMALLOC_FRAMES`` (default 1)
is how many frames each allocation keeps.

What it must never do: be used outside a bench (tracemalloc slows every allocation and
costs memory per block), or change what the daemon does beyond the SIGUSR2 handler.

    WEBQQ_TRACEMALLOC=/tmp/snaps python bench/_traced_daemon.py -c webqq.ini run
"""
import os
import signal
import sys
import tracemalloc


def main() -> int:
    out = os.environ["WEBQQ_TRACEMALLOC"]
    os.makedirs(out, exist_ok=True)
    tracemalloc.start(int(os.environ.get("WEBQQ_TRACEMALLOC_FRAMES", "1")))
    taken = [0]

    def dump(signum, frame):
        # Runs in the main thread between two bytecodes, like any Python signal handler.
        # A forked child takes and writes the snapshot (its traces are the parent's, as
        # of the fork), so the snapshot's own memory never lands in the daemon's RSS;
        # the daemon waits for it (its loop pauses that long: a bench accepts that).
        taken[0] += 1
        path = os.path.join(out, "snapshot-%d.pickle" % taken[0])
        child = os.fork()
        if child == 0:
            try:
                tracemalloc.take_snapshot().dump(path + ".tmp")
                os.replace(path + ".tmp", path)
            finally:
                os._exit(0)
        os.waitpid(child, 0)

    signal.signal(signal.SIGUSR2, dump)
    # This script's directory (bench/) is sys.path[0]: import webqq as the console
    # script would, from the environment.
    del sys.path[0]
    from webqq.daemon.cli import main as webqq_main
    sys.argv[0] = "webqq"
    return webqq_main()


if __name__ == "__main__":
    sys.exit(main())
