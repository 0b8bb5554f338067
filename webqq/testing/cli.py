"""``webqq-simulator test SCENARIO... --bot-url URL``: run scenario files against a bot.

cli: reads every scenario first (a bad file stops the run before anything starts, exit
2), then runs each on a fresh simulator and webqq daemon wired to the bot, prints each
outcome (a failure with its readable report), writes JUnit XML when asked, and exits 0
when every scenario passed, 1 otherwise. Without ``--bot-url`` webqq answers with its
built-in plugins (or ``--plugins``), which tests webqq itself, or a webqq plugin.
It prints no token or password.
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from webqq.simulator import WorldError, load_world

from .junit import write_junit
from .runner import PASSED, check_against, run_scenario
from .scenario import ScenarioError, load_scenario

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webqq-simulator test",
        description="Run scenario files (TOML: who says what, the replies expected, faults "
                    "between) against a OneBot bot through webqq and the simulator.")
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files")
    parser.add_argument("--bot-url", type=_bot_url, help="the bot's reverse WebSocket "
                        "(ws://…) or event POST (http://…) URL; default: no bot, webqq's "
                        "plugins answer")
    parser.add_argument("--plugins", help="webqq plugins to load, comma-separated (default: "
                        "none with --bot-url, else webqq.plugins.builtin)")
    parser.add_argument("--token", help="the OneBot access token the bot expects")
    parser.add_argument("--secret", help="HMAC secret signing POSTed events (X-Signature)")
    parser.add_argument("--api-listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="where webqq serves the OneBot API the bot calls (default: "
                             "any free port; give one when the bot needs to know it)")
    parser.add_argument("--world", metavar="FILE", help="the simulator's world file")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--workdir", metavar="DIR", help="keep each run's ini file and logs "
                        "here (default: a temporary directory, removed afterwards)")
    parser.add_argument("--startup-timeout", type=float, default=30.0, metavar="S",
                        help="seconds for webqq to log in and reach the bot (default: 30)")
    return parser


def _bot_url(text: str) -> str:
    if text.partition("://")[0] not in ("ws", "wss", "http", "https"):
        raise argparse.ArgumentTypeError("%r: a ws:// or wss:// URL (the bot's reverse "
                                         "WebSocket) or http:// or https:// (events "
                                         "POSTed to the bot)" % text)
    return text


def main(argv=None) -> int:
    """Entry point of ``webqq-simulator test``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        world = load_world(args.world)
    except (OSError, WorldError) as error:
        print("webqq-simulator test: --world %s: %s" % (
            args.world, getattr(error, "strerror", None) or error), file=sys.stderr)
        return 2
    try:
        scenarios = [load_scenario(path) for path in args.scenarios]
        for scenario in scenarios:
            check_against(scenario, world)
    except ScenarioError as error:
        print("webqq-simulator test: %s" % error, file=sys.stderr)
        return 2
    plugins = None if args.plugins is None else [
        p.strip() for p in args.plugins.split(",") if p.strip()]
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="webqq-test-"))
    results = []
    try:
        for number, scenario in enumerate(scenarios, 1):
            result = run_scenario(
                scenario, workdir / ("%02d-%s" % (number, scenario.path.stem)),
                bot_url=args.bot_url, plugins=plugins, token=args.token, secret=args.secret,
                api_listen=args.api_listen, world=args.world,
                startup_timeout=args.startup_timeout)
            results.append(result)
            print(result.report(), flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    passed = sum(result.outcome == PASSED for result in results)
    print("%d of %d scenario(s) passed" % (passed, len(results)))
    if args.junit:
        write_junit(args.junit, results)
        print("JUnit XML: %s" % args.junit)
    return 0 if passed == len(results) else 1
