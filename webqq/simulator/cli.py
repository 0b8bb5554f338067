"""``webqq-simulator``: run the WebQQ simulator in the foreground until Ctrl-C.

cli: argument parsing, logging setup and the IOLoop of a stand-alone simulator. It prints
where the simulator listens, the CA file (copied where ``--write-ca`` says), the control
token of /_sim/ and curl lines to try; everything else is the Simulator's. The control
token goes to stdout only, for the person who started it; it never logs it, nor a
password or a session's token.
"""
import argparse
import asyncio
import gc
import logging
import os
import signal
import sys

from .control import TOKEN_HEADER
from .server import CA_FILE, DEFAULT_POLL_HOLD, Simulator, check_control_token
from .world import WorldError

__all__ = ["GC_FIRST_THRESHOLD", "collect_less", "main"]

# The ports of conf/webqq.ini's examples ([simulator] port, [hosts]).
DEFAULT_PORT = 18080
DEFAULT_TLS_PORT = 18443

#: The collector's first threshold in a stand-alone simulator (Python's is 700). A held
#: poll keeps some fifty objects alive until it is answered, so with a thousand
#: accounts polling Python's threshold ran 70 young collections per thousand messages,
#: each moving live polls into the older generations, whose full scans followed (up to
#: 250 ms each): bench/sim_load.py measured 170 µs of collector CPU per message, a
#: fifth of the total, and not one object freed. At 50,000 it was 10 µs, the longest
#: pause under 100 ms. The simulator makes next to no cyclic garbage, so little waits
#: longer to be freed.
GC_FIRST_THRESHOLD = 50_000


def collect_less() -> None:
    """Raise the collector's first threshold to ``GC_FIRST_THRESHOLD`` for this process:
    for a process that is the simulator (this command, a bench's wrapper), never for
    one that embeds it."""
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webqq-simulator",
        description="Serve the WebQQ (2013) protocol on loopback: login, lists, poll2, "
                    "sends, plus a /_sim/ control surface and a chat page at /.",
        epilog="webqq-simulator test SCENARIO... --bot-url URL runs scenario files against "
               "a bot (webqq-simulator test --help).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="plain HTTP port, also /_sim/ (default: %(default)s)")
    parser.add_argument("--tls-port", type=int, default=DEFAULT_TLS_PORT,
                        help="TLS port for the https hosts (default: %(default)s)")
    parser.add_argument("--world", metavar="FILE", help="world JSON file (default: the "
                        "built-in world, account 10001)")
    parser.add_argument("--poll-hold", metavar="S", type=float, default=DEFAULT_POLL_HOLD,
                        help="seconds a poll2 is held before 102 (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="seed ids and tokens for a reproducible run")
    parser.add_argument("--write-ca", metavar="PATH",
                        help="copy the CA certificate to PATH (replaced if there, its "
                             "folder made if missing) and print that path: a client's "
                             "ca_file that outlives a reinstall of this package")
    parser.add_argument("--control-token", metavar="TOKEN", type=_token,
                        help="the secret /_sim/ requests must send as %s (default: a new "
                             "random one, printed at start)" % TOKEN_HEADER)
    return parser


def _token(text: str) -> str:
    try:
        return check_control_token(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _write_ca(path: str) -> str:
    """Copy the simulator's CA certificate to ``path`` (its directories made as
    needed); returns its absolute path.

    Raises:
        OSError: it cannot be written there.
    """
    with open(CA_FILE, "rb") as source:
        certificate = source.read()
    path = os.path.expanduser(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as target:
        target.write(certificate)
    return os.path.abspath(path)


def _banner(sim: Simulator, ca_file: str) -> str:
    check = ("curl --cacert %s --resolve ssl.ptlogin2.qq.com:%d:%s "
             "'https://ssl.ptlogin2.qq.com:%d/check?uin=10001&appid=1003903&r=0.5'"
             % (ca_file, sim.tls_port, sim.host, sim.tls_port))
    return "\n".join((
        "webqq-simulator: HTTP on %s:%d (plain hosts and /_sim/), TLS on %s:%d"
        % (sim.host, sim.port, sim.host, sim.tls_port),
        "CA certificate (TEST MATERIAL): %s" % ca_file,
        "control token: %s (send it as %s on every /_sim/ request)"
        % (sim.control_token, TOKEN_HEADER),
        "control: curl -s -H '%s: %s' http://%s:%d/_sim/state"
        % (TOKEN_HEADER, sim.control_token, sim.host, sim.port),
        "try:     %s" % check,
        "chat page: http://%s:%d/" % (sim.host, sim.port),
    ))


async def _serve(args) -> int:
    ca_file = CA_FILE
    if args.write_ca:
        try:
            ca_file = _write_ca(args.write_ca)
        except OSError as exc:
            where = "" if exc.filename in (None, args.write_ca) else exc.filename + ": "
            print("webqq-simulator: cannot write the CA certificate to %s: %s%s"
                  % (args.write_ca, where, exc.strerror or exc), file=sys.stderr)
            return 1
    try:
        sim = Simulator(world=args.world, poll_hold=args.poll_hold, host=args.host,
                        port=args.port, tls_port=args.tls_port, seed=args.seed,
                        control_token=args.control_token)
    except (OSError, WorldError) as exc:
        print("webqq-simulator: %s" % exc, file=sys.stderr)
        return 1
    print(_banner(sim, ca_file), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logging.getLogger("webqq.simulator").info("stopping")
    await sim.stop()
    return 0


def main(argv=None) -> int:
    """Entry point of ``webqq-simulator``; returns the exit status. ``webqq-simulator test
    SCENARIO...`` runs scenario files against a bot instead (``webqq.testing.cli``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["test"]:
        from webqq.testing.cli import main as test
        return test(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    collect_less()
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
