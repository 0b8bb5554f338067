"""``python -m webqq.testing.simulator_child``: a Simulator for ``Harness``, in a child.

simulator_child: starts a Simulator on free loopback ports, prints one JSON line (its
ports, the hosts a client maps to them, and the control token), and serves until its
standard input closes (the harness stopped, or died) or SIGTERM/SIGINT arrives. The
token goes to the parent through the pipe only; nothing is logged but the simulator's
own lines, on stderr.
"""
import argparse
import asyncio
import json
import logging
import signal
import sys

from webqq.simulator import Simulator, WorldError


async def _serve(world, poll_hold) -> int:
    options = {} if poll_hold is None else {"poll_hold": poll_hold}
    try:
        sim = Simulator(world=world, **options)
    except (OSError, WorldError) as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 1
    print(json.dumps({"port": sim.port, "tls_port": sim.tls_port,
                      "hosts": {name: list(where) for name, where in sim.hosts.items()},
                      "token": sim.control_token}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def parent_gone():
        if not sys.stdin.buffer.read1(4096):
            stop.set()
    loop.add_reader(sys.stdin.fileno(), parent_gone)
    await stop.wait()
    loop.remove_reader(sys.stdin.fileno())
    await sim.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webqq.testing.simulator_child")
    parser.add_argument("--world", help="a world file (default: the built-in world)")
    parser.add_argument("--poll-hold", type=float, help="seconds a poll2 is held")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_serve(args.world, args.poll_hold))


if __name__ == "__main__":
    sys.exit(main())
