#!/usr/bin/env python3
"""Accounts bench: many accounts online in one daemon, against one process per account.

Issue 17's figure: N accounts online against one simulator process, each holding its long
poll, with the heartbeat and the contacts refresh running. For each N of ``--counts``
(1, 10, 100, 1000) and each model of ``--models``:

* ``shared``: one ``webqq run`` daemon whose configuration has N ``[account:qQQ]``
  sections (``[account]`` when N is 1);
* ``process``: N ``webqq run`` daemons of one ``[account]`` each, every one with its own
  configuration and state_dir: the peers' model (one process per account). Skipped for
  an N whose processes would not fit in memory (``--process-max``, default 100: each
  daemon is a Python process of about 45 MB).

Each cell starts a fresh simulator (``webqq-simulator`` with a generated world of N
accounts, each the friend of two people) pinned to one core, the daemons pinned to the
other (``os.sched_setaffinity``; the cores are ``--cores``, default 0,1: daemons on the
first). It measures:

* login: seconds from starting the daemon(s) until every account's ``online as QQ`` is
  in the logs (each account logs in as the protocol paces it; accounts in parallel);
* settle: then until the daemons' CPU stays under 2 % for 5 s (contacts loaded);
* RSS and PSS: the sum of ``VmRSS`` and of ``Pss`` (/proc/PID/smaps_rollup: a page
  shared by k processes counts 1/k) over the daemons, after settling;
* idle CPU: the daemons' CPU time (every thread's, /proc/PID/task/*/schedstat, in ns)
  over ``--idle-seconds`` (default 120: two heartbeats
  and two poll holds of 55 s per account), as ms per account per minute. The contacts
  refresh runs hourly; at login it is in "settle", not in this window.

Then: RSS per additional account, (RSS(N) - RSS(1)) / (N - 1), per model, and each figure
of ``process`` divided by ``shared`` at the same N (``×shared``). The targets: RSS per
additional account <= 64 KiB, idle CPU <= 1 ms per account per minute, login of 1,000
within 60 s. A benchmark, not a test: it prints one run; exit 0 unless the rig failed (2)
or it was interrupted (130).

    python bench/accounts_bench.py
    python bench/accounts_bench.py --counts 1,10,100 --models shared --idle-seconds 60
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

PEOPLE = (20001, 20002)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,10,100,1000")
    parser.add_argument("--models", default="shared,process")
    parser.add_argument("--process-max", type=int, default=100,
                        help="largest N run as one process per account (default 100)")
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--login-timeout", type=float, default=600.0)
    parser.add_argument("--cores", default="0,1", help="daemons' core, simulator's core")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (logs)")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in args.counts.split(",") if n]
    args.models = [m for m in args.models.split(",") if m]
    args.cores = [int(c) for c in args.cores.split(",")]
    return args


def make_world(path: str, accounts: list) -> None:
    world = {"options": {"era": "A"},
             "accounts": [{"qq": qq, "password": h.PASSWORD, "nick": "bot-%d" % qq,
                           "friends": [{"qq": p} for p in PEOPLE]} for qq in accounts],
             "people": [{"qq": p, "nick": "p%d" % p} for p in PEOPLE]}
    with open(path, "w") as out:
        json.dump(world, out)


def pin(pid: int, core: int) -> None:
    try:
        os.sched_setaffinity(pid, {core})
    except OSError:
        pass


def measure(args, model: str, count: int) -> dict:
    accounts = [h.ACCOUNT + n for n in range(count)]
    rig = h.Rig(seed=args.seed, keep=args.keep, accounts=accounts)
    rig.world = os.path.join(rig.dir, "world.json")
    make_world(rig.world, accounts)
    fleet = h.Fleet(rig, model, accounts, pin_core=args.cores[0])
    try:
        rig.start_simulator()
        pin(rig.sim.pid, args.cores[-1])
        fleet.start()
        try:
            login = fleet.wait_online(args.login_timeout)
            online = count
        except RuntimeError as exc:
            # Most online: measure those, and say how many never came (login = None).
            online = len(set(accounts) & fleet.online())
            if not fleet.alive() or online < count / 2:
                raise
            print("[%s] %s; measuring the %d online" % (h.stamp(), exc, online),
                  file=sys.stderr, flush=True)
            login = None
        settle_start = time.monotonic()
        while time.monotonic() - settle_start < 600:
            before = fleet.cpu()
            time.sleep(5.0)
            if fleet.cpu() - before < 0.1:          # under 2 % of a core for 5 s
                break
        settle = time.monotonic() - settle_start
        rss, pss = fleet.rss(), fleet.pss()
        sim_cpu0 = h.cpu_exact(rig.sim.pid)
        cpu0 = fleet.cpu()
        time.sleep(args.idle_seconds)
        idle_cpu = fleet.cpu() - cpu0
        sim_cpu = h.cpu_exact(rig.sim.pid) - sim_cpu0
        if not fleet.alive():
            raise RuntimeError("a daemon died while idle; see %s" % rig.dir)
        minutes = args.idle_seconds / 60
        row = {"model": model, "count": count, "online": online, "login": login,
               "settle": settle, "rss_kb": rss, "pss_kb": pss,
               "idle_ms_per_account_min": idle_cpu * 1000 / online / minutes,
               "sim_idle_ms_per_account_min": sim_cpu * 1000 / online / minutes,
               "sim_rss_kb": h.rss_kb(rig.sim.pid)}
        print("[%s] %s N=%d (%d online): login %s s, settle %.0f s, RSS %d kB, PSS %d kB, "
              "idle %.3f ms per account-minute" % (
                  h.stamp(), model, count, online, "-" if login is None else "%.1f" % login,
                  settle, rss, pss, row["idle_ms_per_account_min"]),
              file=sys.stderr, flush=True)
        return row
    except RuntimeError:
        rig.keep = True
        raise
    finally:
        fleet.close()
        rig.close()


def report(rows: list) -> None:
    """The table: N and the accounts online (fewer when some never came: the per-account
    figures then divide by those online, and login shows "-")."""
    by = {(r["model"], r["count"]): r for r in rows}
    nan = float("nan")
    print("%-8s %6s %6s %8s %8s %9s %9s %12s %10s %14s %9s %9s %9s" % (
        "model", "N", "online", "login s", "settle s", "RSS MiB", "PSS MiB", "RSS/acct KiB",
        "+acct KiB", "idle ms/acct/min", "login ×sh", "RSS ×sh", "idle ×sh"))
    for r in rows:
        one = by.get((r["model"], 1))
        extra = (r["rss_kb"] - one["rss_kb"]) / (r["online"] - 1) \
            if one is not None and r["online"] > 1 else nan
        shared = by.get(("shared", r["count"]))

        def ratio(key):
            if not shared or not shared[key] or r[key] is None:
                return nan
            return r[key] / shared[key]
        print("%-8s %6d %6d %8s %8.0f %9.1f %9.1f %12.1f %10.1f %14.3f %9.2f %9.2f %9.2f" % (
            r["model"], r["count"], r["online"],
            "-" if r["login"] is None else "%.1f" % r["login"], r["settle"],
            r["rss_kb"] / 1024, r["pss_kb"] / 1024, r["rss_kb"] / r["online"], extra,
            r["idle_ms_per_account_min"], ratio("login"), ratio("rss_kb"),
            ratio("idle_ms_per_account_min")))
    print()
    print("simulator (its own core): idle CPU ms per account-minute: %s" % ", ".join(
        "%s N=%d %.3f" % (r["model"], r["count"], r["sim_idle_ms_per_account_min"])
        for r in rows))


def main(argv=None) -> int:
    args = parse_args(argv)
    h.sigterm_as_interrupt()
    rows = []
    try:
        for count in args.counts:
            for model in args.models:
                if model == "process" and count > args.process_max:
                    print("[%s] process N=%d skipped: %d processes of ~45 MB do not fit "
                          "(--process-max %d)" % (h.stamp(), count, count, args.process_max),
                          file=sys.stderr, flush=True)
                    continue
                rows.append(measure(args, model, count))
        report(rows)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        if rows:
            report(rows)
        return 130
    except RuntimeError as exc:
        print("accounts_bench: %s" % exc, file=sys.stderr)
        if rows:
            report(rows)
        return 2


if __name__ == "__main__":
    sys.exit(main())
