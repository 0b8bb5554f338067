#!/usr/bin/env python3
"""Latency bench: from the poll answer carrying a message to the plugin's reply on the wire.

Issue 17's figure: p50 and p99 of that time at 1, 100 and 1,000 messages a second, with
the send pacing left out and measured apart. One ``webqq run`` daemon (the built-in
``!echo`` plugin) and one simulator, each a process of its own, on loopback. The
simulator is bench/_timed_simulator.py: the simulator's own server, plus a generator that
says the messages in its own process (no HTTP call per message) and a clock that stamps
each one when the poll answer carrying it is handed to the socket and when its reply's
send request arrives (``time.monotonic()``, both in the simulator's process).

The world: ``--accounts`` accounts (10001 on; default 1,000) and ``--friends`` friends
each (20001 on). ``--model shared`` (the default) runs them in one daemon (one
``[account:NAME]`` section each); ``--model process``, one daemon per account, the
peers' model, for the ratio. Message n goes to account n mod A from its friend
(n div A) mod F.

Pacing: an account sends at most one message per ``send_interval`` (0.5 s at least: the
2013 server dropped faster sends, and the daemon refuses less), counted from the answer
to the previous send. Spreading the messages evenly over the accounts leaves pacing out:
at 1,000 a second over 1,000 accounts, each account answers one message a second, after
its previous reply went out long before. Pacing is then measured apart.

Phases, in order, each after the daemons' CPU has gone quiet (contacts loaded):

1. ``--rates`` (1,100,1000) messages a second over every account, each for ``--seconds``
   (a phase says at least ``--min-messages``, so the 1/s phase runs longer), evenly
   spaced (``--arrivals poisson``: at random). Per phase: p50, p90, p99, max of
   answer->reply; the simulator's own queue time (say -> answer, p50/p99: how long a
   message waited for a poll); replies missing; the daemons' CPU per message.
2. Pacing, apart: ``--pacing-rate`` (1.8) messages a second to one account for
   ``--pacing-seconds``, arriving at random (Poisson): 90 % of the 2 a second that
   0.5 s allows, so a reply often waits for the one before it (evenly spaced messages
   below the cap would never wait). Its latency less phase 1's at the nearest rate is
   what pacing costs a message; above 1/send_interval a second for one account the
   queue grows without end.

A benchmark, not a test: it prints one run's figures, and exits 0 unless the rig failed
(2) or it was interrupted (130).

    python bench/latency_bench.py
    python bench/latency_bench.py --rates 1000 --seconds 10 --friends 2000
"""
import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="1,100,1000", help="messages a second, per phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of a phase")
    parser.add_argument("--min-messages", type=int, default=120,
                        help="a phase says at least this many (default 120)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--model", choices=("shared", "process"), default="shared",
                        help="the accounts in one daemon (shared, default) or one daemon "
                             "each (process: the peers' model)")
    parser.add_argument("--friends", type=int, default=2, help="per account (default 2)")
    parser.add_argument("--send-interval", type=float, default=0.5,
                        help="[bot] send_interval (default 0.5, the least the daemon takes)")
    parser.add_argument("--login-timeout", type=float, default=120.0,
                        help="seconds for every account to come online (default 120)")
    parser.add_argument("--drain", type=float, default=60.0,
                        help="seconds to wait for the last replies of a phase")
    parser.add_argument("--pacing", action=argparse.BooleanOptionalAction, default=True,
                        help="run the pacing phase (default yes)")
    parser.add_argument("--pacing-rate", type=float, default=1.8,
                        help="messages a second of the pacing phase (default 1.8: 90%% of "
                             "the 2 a second that send_interval 0.5 allows)")
    parser.add_argument("--pacing-seconds", type=float, default=60.0)
    parser.add_argument("--arrivals", choices=("even", "poisson"), default="even",
                        help="message n at n/rate s (even, default) or Poisson arrivals")
    parser.add_argument("--loglevel", default="info", help="the daemon's (default info)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",") if r]
    return args


def make_world(path: str, accounts: list, friends: int) -> list:
    """A world file: the accounts, each with the same ``friends`` people as friends;
    returns the people's numbers."""
    people = [20001 + n for n in range(friends)]
    world = {"options": {"era": "A"},
             "accounts": [{"qq": qq, "password": h.PASSWORD, "nick": "bot-%d" % qq,
                           "friends": [{"qq": p} for p in people]} for qq in accounts],
             "people": [{"qq": p, "nick": "p%d" % p} for p in people]}
    with open(path, "w") as out:
        json.dump(world, out)
    return people


def percentile(values: list, q: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def wait_quiet(fleet, seconds: float = 2.0, cpu_ms: float = 40.0,
               limit: float = 600.0) -> float:
    """Wait until the daemons spent under ``cpu_ms`` of CPU in ``seconds`` (contacts
    loaded, lookups done); returns how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = fleet.cpu()
        time.sleep(seconds)
        if (fleet.cpu() - before) * 1000 < cpu_ms:
            break
    return time.monotonic() - start


def run_phase(fleet, rig, name: str, rate: float, seconds: float, targets: list, drain: float,
              min_messages: int, arrivals: str = "even", seed: int = 1) -> dict:
    seconds = max(seconds, min_messages / rate)
    spec = {"name": name, "rate": rate, "seconds": seconds, "drain": drain,
            "targets": targets, "arrivals": arrivals, "seed": seed}
    path = os.path.join(rig.dir, "phase.json")
    with open(path, "w") as out:
        json.dump(spec, out)
    result_path = os.path.join(rig.dir, name + ".json")
    cpu0 = fleet.cpu()
    rig.sim.send_signal(signal.SIGUSR1)
    print("[%s] phase %s: %g messages/s for %.0f s" % (h.stamp(), name, rate, seconds),
          file=sys.stderr, flush=True)
    deadline = time.monotonic() + seconds + drain + 60
    while not os.path.exists(result_path):
        if time.monotonic() > deadline or rig.sim.poll() is not None:
            raise RuntimeError("phase %s never ended; see %s" % (name, rig.dir))
        time.sleep(0.2)
    cpu = fleet.cpu() - cpu0
    with open(result_path) as handle:
        result = json.load(handle)
    times = result["times"]
    latency = [(sent - answered) * 1000 for _, answered, sent in times
               if answered is not None and sent is not None]
    queued = [(answered - said) * 1000 for said, answered, _ in times if answered is not None]
    missing = sum(1 for _, _, sent in times if sent is None)
    replies = [sent for _, _, sent in times if sent is not None]
    first = min(said for said, _, _ in times)
    replied = len(replies) / (max(replies) - first) if len(replies) > 1 else 0.0
    return {"name": name, "rate": rate, "arrivals": arrivals, "said": result["said"], "late": result["late"],
            "missing": missing, "p50": percentile(latency, 50), "p90": percentile(latency, 90),
            "p99": percentile(latency, 99), "max": max(latency) if latency else float("nan"),
            "queue_p50": percentile(queued, 50), "queue_p99": percentile(queued, 99),
            "achieved": result["said"] / result["generated"] if result["generated"] else 0.0,
            "replied": replied,
            "cpu_per_msg_us": cpu / max(1, result["said"]) * 1e6,
            "sim_cpu_share": result["cpu"] / result["wall"] if result["wall"] else 0.0}


def print_table(rows: list, pacing) -> None:
    print("%-10s %7s %7s %9s %8s %8s %8s %8s %8s %9s %9s %8s %10s %8s" % (
        "phase", "rate/s", "said/s", "replied/s", "messages", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "queue p50", "queue p99", "missing", "CPU µs/msg", "sim CPU"))
    for row in rows:
        print("%-10s %7g %7.0f %9.0f %8d %8.2f %8.2f %8.2f %8.1f %9.2f %9.2f %8d %10.0f %7.0f%%"
              % (row["name"], row["rate"], row["achieved"], row["replied"], row["said"], row["p50"], row["p90"],
                 row["p99"], row["max"], row["queue_p50"], row["queue_p99"], row["missing"],
                 row["cpu_per_msg_us"], row["sim_cpu_share"] * 100))
    if pacing is not None:
        paced, unpaced = pacing
        print()
        print("pacing (send_interval %g s) at %g/s: p50 %.1f ms, p99 %.1f ms; without "
              "pacing at %g/s: p50 %.2f ms, p99 %.2f ms -> pacing adds %.1f ms at p50, "
              "%.1f ms at p99" % (paced["interval"], paced["rate"], paced["p50"], paced["p99"],
                                  unpaced["rate"], unpaced["p50"], unpaced["p99"],
                                  paced["p50"] - unpaced["p50"], paced["p99"] - unpaced["p99"]))


def main(argv=None) -> int:
    args = parse_args(argv)
    h.sigterm_as_interrupt()
    accounts = [h.ACCOUNT + n for n in range(args.accounts)]
    rig = h.Rig(seed=args.seed, send_interval=args.send_interval, keep=args.keep,
                loglevel=args.loglevel,
                accounts=accounts,
                simulator=[sys.executable, os.path.join(HERE, "_timed_simulator.py")])
    rig.simulator.extend(["--dir", rig.dir])
    rig.world = os.path.join(rig.dir, "world.json")
    people = make_world(rig.world, accounts, args.friends)
    targets = [[accounts[n % len(accounts)], people[(n // len(accounts)) % len(people)]]
               for n in range(len(accounts) * len(people))]
    fleet = h.Fleet(rig, args.model, accounts)
    missing = 0
    try:
        rig.start_simulator()
        fleet.start()
        try:
            fleet.wait_online(timeout=args.login_timeout)
        except RuntimeError as exc:
            # Go on with the accounts that are online, if most are: the latency of those
            # is still the figure; the missing ones are reported.
            online = fleet.online()
            if not fleet.alive() or len(online) < len(accounts) / 2:
                raise
            print("[%s] %s; going on with the %d online" % (h.stamp(), exc, len(online)),
                  file=sys.stderr, flush=True)
            missing = len(accounts) - len(online)
            accounts = [qq for qq in accounts if qq in online]
            targets = [t for t in targets if t[0] in online]
        settled = wait_quiet(fleet)
        print("[%s] %d daemon(s) online, %d account(s) x %d friends; quiet after %.0f s"
              % (h.stamp(), len(fleet.daemons), len(accounts), len(people), settled),
              file=sys.stderr, flush=True)
        rows = []
        for rate in args.rates:
            rows.append(run_phase(fleet, rig, "r%g" % rate, rate, args.seconds, targets,
                                  args.drain, args.min_messages, args.arrivals, args.seed))
            wait_quiet(fleet)
        pacing = None
        if args.pacing:
            one = [target for target in targets if target[0] == accounts[0]]
            paced = run_phase(fleet, rig, "paced", args.pacing_rate, args.pacing_seconds,
                              one, args.drain, 0, "poisson", args.seed)
            paced["interval"] = args.send_interval
            rows.append(paced)
            others = [row for row in rows if row is not paced]
            if others:
                pacing = (paced, min(others, key=lambda r: abs(r["rate"] - paced["rate"])))
        print("latency: answer -> reply (ms), %d account(s) (%s: %d daemon(s)), %d friends "
              "each%s" % (len(accounts), args.model, len(fleet.daemons), len(people),
                          "; %d more never came online" % missing if missing else ""))
        print_table(rows, pacing)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print("latency_bench: %s" % exc, file=sys.stderr)
        rig.keep = True
        print("logs kept in %s" % rig.dir, file=sys.stderr)
        return 2
    finally:
        fleet.close()
        rig.close()


if __name__ == "__main__":
    sys.exit(main())
