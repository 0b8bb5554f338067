"""Echo bot: log in and answer every message with its own text.

    python -m webqq.examples.echo                 # an embedded simulator, account 10001
    python -m webqq.examples.echo --demo          # ... say one thing to it, check the echo, exit

By default it starts the bundled simulator in the same IOLoop and routes every protocol
host to it, so it runs out of the box; talk to the bot through the simulator's control
surface, e.g. ``curl -H 'Content-Type: application/json' -H 'X-Sim-Token: TOKEN' -d
'{"to": 10001, "from": 20001, "text": "hi"}' http://127.0.0.1:PORT/_sim/say`` (PORT and
TOKEN are printed at start). ``--no-simulator`` talks to
the real hosts instead. The password comes from ``--password`` or ``WEBQQ_PASSWORD``.
A captcha is saved under the state directory and read from stdin here, in the program;
the library itself never touches stdin. The state directory (session, captcha) is a
temporary one of its own, removed at exit, unless ``--state-dir`` names one: never the
daemon's, whose saved session it would use up.
"""
import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from typing import List, Optional
from urllib.request import Request

from webqq.client.client import MessageReceived, WebQQClient
from webqq.http.stream import HTTPStream

log = logging.getLogger("webqq.examples.echo")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m webqq.examples.echo",
                                     description="A WebQQ bot that echoes every message.")
    parser.add_argument("--qq", type=int, default=10001, help="account (default: 10001)")
    parser.add_argument("--password", default=os.environ.get("WEBQQ_PASSWORD", "webqq-demo"),
                        help="password (default: $WEBQQ_PASSWORD, else the simulator's)")
    parser.add_argument("--state-dir", default=None,
                        help="session and captcha files (default: a temporary directory, "
                             "removed at exit)")
    parser.add_argument("--no-simulator", dest="simulator", action="store_false",
                        help="talk to the real WebQQ hosts, not an embedded simulator")
    parser.add_argument("--poll-hold", type=float, default=5.0,
                        help="the embedded simulator's poll hold, seconds (default: 5)")
    parser.add_argument("--demo", action="store_true",
                        help="say one message to the bot through the simulator, wait for "
                             "its echo, and exit (status 0 when it came back)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    """Run the bot until SIGINT/SIGTERM (or, with ``--demo``, one echo). Returns the
    exit status."""
    sim = None
    if args.simulator:
        from webqq.simulator.server import Simulator
        sim = Simulator(poll_hold=args.poll_hold)
        print("simulator on http://127.0.0.1:%d (control: /_sim/say, /_sim/sent; header "
              "X-Sim-Token: %s)" % (sim.port, sim.control_token))
        stream = HTTPStream(hosts=sim.hosts, ca_file=sim.ca_file,
                            request_timeout=args.poll_hold + 30)
    else:
        stream = HTTPStream()
    client = WebQQClient(args.qq, args.password, stream, args.state_dir,
                         poll_hold=args.poll_hold if sim else 60.0)
    finished = asyncio.get_running_loop().create_future()

    def echo(event: MessageReceived) -> None:
        print("%s %s: %s" % (event.chat, event.sender.name or event.sender.uin, event.text))
        client.reply(event, event.text)

    def on_state(event) -> None:
        print("state: %s (%s)" % (event.new.value, event.reason))
        if event.new.value == "offline" and not finished.done():
            finished.set_result(1)

    def on_captcha(event) -> None:
        # The library saved the image and waits; a program decides how a human answers.
        loop = asyncio.get_running_loop()
        print("captcha saved at %s; type the code: " % event.path, end="", flush=True)
        loop.add_reader(sys.stdin, lambda: (loop.remove_reader(sys.stdin),
                                            client.enter_verify_code(sys.stdin.readline().strip())))

    client.on("message", echo)
    client.on("state", on_state)
    client.on("captcha", on_captcha)
    if args.demo:
        client.on("online", lambda _: asyncio.ensure_future(_demo(sim, client, finished)))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: finished.done() or finished.set_result(0))
    client.start()
    try:
        return await finished
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        client.stop("echo bot exiting")
        stream.close()
        if sim is not None:
            await sim.stop()


async def _demo(sim, client: WebQQClient, finished: "asyncio.Future") -> None:
    """Say "hello, echo" from Alice (20001) and wait until the bot's echo is recorded."""
    control = HTTPStream()
    try:
        url = "http://127.0.0.1:%d/_sim/" % sim.port
        say = {"to": client.qq, "from": 20001, "text": "hello, echo"}
        token = {"X-Sim-Token": sim.control_token}
        await control.fetch(Request(url + "say", data=json.dumps(say).encode(), method="POST",
                                    headers=dict(token, **{"Content-Type": "application/json"})))
        for _ in range(100):
            sent = (await control.fetch(Request(url + "sent?account=%d" % client.qq,
                                                headers=token))).json()
            if any(item["text"] == "hello, echo" for item in sent):
                print("echo seen by the simulator: %r" % sent[-1]["text"])
                if not finished.done():
                    finished.set_result(0)
                return
            await asyncio.sleep(0.1)
        if not finished.done():
            finished.set_result(1)
    finally:
        control.close()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.simulator:
        logging.getLogger("webqq.simulator").setLevel(logging.WARNING)
    if args.state_dir is not None:
        return asyncio.run(run(args))
    with tempfile.TemporaryDirectory(prefix="webqq-echo-") as state_dir:
        args.state_dir = state_dir
        return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
