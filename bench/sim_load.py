#!/usr/bin/env python3
"""Simulator load: its CPU per message and per idle account, with clients that cost little.

What it is for: the simulator's own cost, apart from the daemon's. bench/latency_bench.py
found the simulator the first limit at 1,000 messages a second over 1,000 accounts, but
there the daemon (2.3 ms of CPU a message) cannot keep up either; here the clients are
this script's: per account, one keep-alive connection that holds the long poll and one
that sends, speaking the 2013 protocol over real HTTP on 127.0.0.1, and answering each
``!echo TEXT`` with a send of TEXT, as the daemon's echo plugin does. The simulator is
bench/_timed_simulator.py (the simulator's server, a message generator in its process,
and its CPU over each phase), in a process of its own.

Its requests are the client's own (``webqq.qq``'s builders and password hash, so every
check the simulator makes is met as the daemon meets it), with the cookies the
simulator set, sent by domain; its reading is minimal (Content-Length bodies, which is
all the simulator writes).

Phases, after every account is online and the simulator has gone quiet:

1. idle, ``--idle-seconds`` (the poll hold and 5 s): the simulator's CPU with every
   account's poll held (a poll is answered 102 every ``--poll-hold`` seconds, 55 by
   default, and polled again; the accounts logged in together, so their polls end
   together): ms of CPU a second, and µs a second per account.
2. each of ``--rates`` (1000) messages a second, spread evenly over the accounts, for
   ``--seconds`` (10): said/s (the generator in the simulator falls behind when the
   simulator is saturated), replied/s (replies over the time from the first say to the
   last reply), the simulator's CPU per message (its say, the poll answer, the next
   poll, the reply's send) and its share of a core, and this script's share (if it is
   near 100 %, the clients were the limit, not the simulator).

``--profile DIR`` runs each phase of the simulator under cProfile (``DIR/NAME.prof``;
its figures are then cProfile's, not the simulator's). A benchmark, not a test: exits 0
unless the rig failed (2) or it was interrupted (130).

    PYTHONPATH=$PWD python bench/sim_load.py
    PYTHONPATH=$PWD python bench/sim_load.py --rates 1000,3000 --profile /tmp/prof
"""
import argparse
import asyncio
import json
import os
import re
import resource
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

from webqq.qq import builders  # noqa: E402
from webqq.qq.hashes import encrypt_password  # noqa: E402
from webqq.qq.login_replies import parse_check, parse_login2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
USER_AGENT = "Mozilla/5.0 (sim_load)"
_COOKIE = re.compile(r"\s*([^=;\s]+)=([^;]*)")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--friends", type=int, default=2, help="per account (default 2)")
    parser.add_argument("--rates", default="1000", help="messages a second, per phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a phase")
    parser.add_argument("--idle-seconds", type=float,
                        help="the idle window (default: the poll hold and 5 s, so that "
                             "every poll is answered 102 and polled again once)")
    parser.add_argument("--poll-hold", type=float, default=55.0)
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds to wait for a phase's last replies")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile each phase of the simulator into DIR/NAME.prof")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",") if r]
    if args.idle_seconds is None:
        args.idle_seconds = args.poll_hold + 5.0
    return args


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Connection:
    """One keep-alive HTTP/1.1 connection to a simulator port, one request at a time."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def open(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def fetch(self, request, cookies: dict):
        """``(status, Set-Cookie values, body)`` of ``request`` (a urllib Request)."""
        await self.open()
        host = request.host
        lines = ["%s %s HTTP/1.1" % (request.get_method(), request.selector), "Host: " + host,
                 "User-Agent: " + USER_AGENT, "Accept-Encoding: gzip, deflate"]
        lines += ["%s: %s" % item for item in request.header_items()]
        sent = [name + "=" + value for name, (value, domain) in cookies.items()
                if host == domain or host.endswith("." + domain)]
        if sent:
            lines.append("Cookie: " + "; ".join(sent))
        data = request.data or b""
        if request.get_method() == "POST":
            lines.append("Content-Length: %d" % len(data))
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status, length, set_cookies = int(status_line.split()[1]), 0, []
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                set_cookies.append(value.strip())
        body = await self.reader.readexactly(length) if length else b""
        return status, set_cookies, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def keep_cookies(cookies: dict, set_cookies: list) -> None:
    """Store ``Set-Cookie`` values as name -> (value, domain without its dot)."""
    for line in set_cookies:
        parts = _COOKIE.findall(line)
        if not parts:
            continue
        name, value = parts[0]
        attrs = {k.lower(): v for k, v in parts[1:]}
        cookies[name] = (value, attrs.get("domain", "qq.com").lstrip("."))


class Client:
    """One account: logs in, holds its poll, answers each ``!echo TEXT`` with TEXT."""

    def __init__(self, qq: int, password: str, port: int, tls_port: int, stats: dict):
        self.qq, self.password = qq, password
        self.port, self.tls_port = port, tls_port
        self.cookies = {}
        self.clientid = 10_000_000 + qq % 90_000_000
        self.psessionid = None
        self.msg_id = 1_000_000
        self.stats = stats
        self.poller = Connection(port)
        self.sender = Connection(port)
        self.replies = asyncio.Queue()
        self.tasks = []

    async def _call(self, connection: Connection, request) -> bytes:
        status, set_cookies, body = await connection.fetch(request, self.cookies)
        keep_cookies(self.cookies, set_cookies)
        if status != 200:
            raise RuntimeError("%s: HTTP %d" % (request.selector.split("?")[0], status))
        return body

    async def login(self) -> None:
        login_conn = Connection(self.port)
        tls_conn = Connection(self.tls_port)     # the TLS port also speaks plain HTTP
        try:
            check = parse_check(await self._call(login_conn, builders.build_check(self.qq, 0.5)))
            p = encrypt_password(self.password, check.uin_bytes, check.code)
            body = await self._call(tls_conn, builders.build_login(self.qq, p, check.code))
            if not body.startswith(b"ptuiCB('0'"):
                raise RuntimeError("login of %d: %r" % (self.qq, body[:80]))
            login2 = parse_login2(await self._call(self.poller, builders.build_login2(
                self.cookies["ptwebqq"][0], clientid=self.clientid)))
            self.psessionid = login2.psessionid
            # Connected now, as a daemon's kept connection is: a thousand connects at
            # the first message would overflow the simulator's accept queue.
            await self.sender.open()
        finally:
            login_conn.close()
            tls_conn.close()

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._poll()), asyncio.ensure_future(self._send())]

    async def _poll(self) -> None:
        request = builders.build_poll(clientid=self.clientid, psessionid=self.psessionid)
        while True:
            body = json.loads(await self._call(self.poller, request))
            self.stats["polls"] += 1
            if body.get("retcode") not in (0, 102):
                raise RuntimeError("poll of %d: %r" % (self.qq, body))
            for item in body.get("result") or ():
                value = item.get("value", {})
                if item.get("poll_type") != "message":
                    continue
                for piece in value.get("content", ())[1:]:
                    if isinstance(piece, str) and piece.startswith("!echo "):
                        self.replies.put_nowait((value["from_uin"], piece[6:]))

    async def _send(self) -> None:
        while True:
            to_uin, text = await self.replies.get()
            self.msg_id += 1
            request = builders.build_send_buddy(to_uin, text, msg_id=self.msg_id,
                                                clientid=self.clientid,
                                                psessionid=self.psessionid)
            body = json.loads(await self._call(self.sender, request))
            if body.get("retcode") != 0:
                raise RuntimeError("send of %d: %r" % (self.qq, body))
            self.stats["sent"] += 1

    def failed(self):
        """The exception that ended one of its loops, or None."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return task.exception()
        return None

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.poller.close()
        self.sender.close()


async def sim_cpu_over(pid: int, seconds: float) -> float:
    before = h.cpu_exact(pid)
    await asyncio.sleep(seconds)
    return h.cpu_exact(pid) - before


async def wait_quiet(pid: int, seconds: float = 2.0, cpu_ms: float = 100.0,
                     limit: float = 120.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await sim_cpu_over(pid, seconds) * 1000 < cpu_ms:
            return


async def run_phase(rig, clients, name: str, rate: float, seconds: float, drain: float,
                    targets: list) -> dict:
    spec = {"name": name, "rate": rate, "seconds": seconds, "drain": drain,
            "targets": targets, "arrivals": "even", "seed": 1}
    with open(os.path.join(rig.dir, "phase.json"), "w") as out:
        json.dump(spec, out)
    result_path = os.path.join(rig.dir, name + ".json")
    own0 = cpu_self()
    start = time.monotonic()
    rig.sim.send_signal(signal.SIGUSR1)
    print("[%s] phase %s: %g messages/s for %.0f s" % (h.stamp(), name, rate, seconds),
          file=sys.stderr, flush=True)
    deadline = start + seconds + drain + 120
    while not os.path.exists(result_path):
        if time.monotonic() > deadline or rig.sim.poll() is not None:
            raise RuntimeError("phase %s never ended; see %s" % (name, rig.dir))
        failed = next((c.failed() for c in clients if c.failed() is not None), None)
        if failed is not None:
            raise RuntimeError("a client failed: %s" % failed)
        await asyncio.sleep(0.1)
    own = cpu_self() - own0
    with open(result_path) as handle:
        result = json.load(handle)
    times = result["times"]
    replies = [sent for _, _, sent in times if sent is not None]
    first = min(said for said, _, _ in times)
    said = result["said"]
    return {"name": name, "rate": rate, "said": said,
            "said_per_s": said / result["generated"] if result["generated"] else 0.0,
            "replied_per_s": (len(replies) / (max(replies) - first)
                              if len(replies) > 1 else 0.0),
            "missing": said - len(replies),
            "sim_us_per_msg": result["cpu"] / max(1, said) * 1e6,
            "sim_share": result["cpu"] / result["wall"] if result["wall"] else 0.0,
            "driver_share": own / (time.monotonic() - start)}


async def drive(args, rig, accounts: list, people: list) -> int:
    stats = {"polls": 0, "sent": 0}
    clients = [Client(qq, h.PASSWORD, rig.port, rig.tls_port, stats) for qq in accounts]
    try:
        start = time.monotonic()
        pending = list(clients)
        while pending:                  # 50 at a time: the login server's hash is cheap
            batch, pending = pending[:50], pending[50:]
            await asyncio.gather(*(c.login() for c in batch))
        for client in clients:
            client.start()
        login_cpu = h.cpu_exact(rig.sim.pid)
        print("[%s] %d accounts online in %.1f s (simulator CPU so far %.1f s)"
              % (h.stamp(), len(clients), time.monotonic() - start, login_cpu),
              file=sys.stderr, flush=True)
        await wait_quiet(rig.sim.pid)
        idle = await sim_cpu_over(rig.sim.pid, args.idle_seconds)
        polls0 = stats["polls"]
        rows = []
        targets = [[accounts[n % len(accounts)], people[(n // len(accounts)) % len(people)]]
                   for n in range(len(accounts) * len(people))]
        for rate in args.rates:
            rows.append(await run_phase(rig, clients, "r%g" % rate, rate, args.seconds,
                                        args.drain, targets))
            await wait_quiet(rig.sim.pid)
        print("simulator, %d accounts x %d friends, poll hold %g s; load average %s"
              % (len(accounts), len(people), args.poll_hold,
                 " ".join("%.2f" % x for x in os.getloadavg())))
        print("idle: %.1f ms CPU a second, %.1f µs a second per account (%d polls answered "
              "since)" % (idle / args.idle_seconds * 1000,
                          idle / args.idle_seconds / len(accounts) * 1e6,
                          stats["polls"] - polls0))
        print("%-8s %7s %7s %9s %8s %13s %8s %10s" % (
            "phase", "rate/s", "said/s", "replied/s", "missing", "sim µs/msg", "sim CPU",
            "driver CPU"))
        for row in rows:
            print("%-8s %7g %7.0f %9.0f %8d %13.0f %7.0f%% %9.0f%%" % (
                row["name"], row["rate"], row["said_per_s"], row["replied_per_s"],
                row["missing"], row["sim_us_per_msg"], row["sim_share"] * 100,
                row["driver_share"] * 100))
        return 0
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(0)


def make_world(path: str, accounts: list, friends: int) -> list:
    """The latency bench's world: the accounts, each with the same ``friends`` people."""
    people = [20001 + n for n in range(friends)]
    world = {"options": {"era": "A"},
             "accounts": [{"qq": qq, "password": h.PASSWORD, "nick": "bot-%d" % qq,
                           "friends": [{"qq": p} for p in people]} for qq in accounts],
             "people": [{"qq": p, "nick": "p%d" % p} for p in people]}
    with open(path, "w") as out:
        json.dump(world, out)
    return people


def main(argv=None) -> int:
    args = parse_args(argv)
    h.sigterm_as_interrupt()
    accounts = [h.ACCOUNT + n for n in range(args.accounts)]
    rig = h.Rig(seed=args.seed, keep=args.keep, poll_hold=args.poll_hold,
                simulator=[sys.executable, os.path.join(HERE, "_timed_simulator.py")])
    rig.simulator.extend(["--dir", rig.dir])
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
        rig.simulator.extend(["--profile", os.path.abspath(args.profile)])
    rig.world = os.path.join(rig.dir, "world.json")
    people = make_world(rig.world, accounts, args.friends)
    try:
        rig.start_simulator()
        return asyncio.run(drive(args, rig, accounts, people))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print("sim_load: %s" % exc, file=sys.stderr)
        rig.keep = True
        print("logs kept in %s" % rig.dir, file=sys.stderr)
        return 2
    finally:
        rig.close()


if __name__ == "__main__":
    sys.exit(main())
