#!/usr/bin/env python3
"""Daemon bench: memory and CPU of ``webqq run`` online and idle, then answering 100/s.

Starts ``webqq-simulator`` and ``webqq -c <generated ini> run`` (own temporary state_dir,
``[bot] send_interval = 0`` so that the outbox is not what limits the rate; the shipped
0.5 s would cap replies at 2 a second) on free loopback ports and waits until online.

1. Idle: ``--idle-minutes`` (default 10) online with no traffic (poll2 held by the
   simulator, heartbeats): RSS (/proc/PID/status VmRSS) and CPU seconds (utime + stime
   of /proc/PID/stat) every 30 s.
2. Load: friend 20001 says ``!echo load-<n>`` through ``/_sim/say`` at ``--rate``
   (default 100) a second for ``--load-seconds`` (default 60); then up to ``--drain``
   seconds for the last replies. CPU seconds per 1,000 messages = the daemon's CPU time
   from the first say until the last reply, divided by thousands of replies.

It prints a table and says whether RSS grew: idle grew when the last idle sample exceeds
the first by more than ``--idle-slack-kb`` (default 1024 kB); under load when RSS at the
end of the load exceeds RSS after its first ``--load-warmup`` seconds (default 10) by more
than max(4 MiB, 10 %). Exit status 0 when every reply came and RSS did not grow, else 1;
2 when the rig could not be set up; 130 on Ctrl-C. Everything started is stopped.

    python bench/daemon_bench.py                       # 10 min idle + 60 s at 100/s
    python bench/daemon_bench.py --idle-minutes 2 --load-seconds 30
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle-minutes", type=float, default=10.0)
    parser.add_argument("--idle-every", type=float, default=30.0, help="seconds per sample")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="says per second")
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--load-warmup", type=float, default=10.0)
    parser.add_argument("--idle-slack-kb", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    return parser.parse_args(argv)


def row(label, sample, t0, cpu0, extra=""):
    print("%-12s %8.0f %10d %9.2f %9.2f %5d  %s" % (
        label, sample["t"] - t0, sample["rss_kb"], sample["cpu_s"], sample["cpu_s"] - cpu0,
        sample["fds"], extra), flush=True)


def idle_phase(args, rig, t0):
    print("%-12s %8s %10s %9s %9s %5s" % ("phase", "t (s)", "RSS (kB)", "CPU (s)", "dCPU (s)",
                                          "fds"))
    first = rig.sample()
    row("idle start", first, t0, first["cpu_s"])
    samples = [first]
    end = first["t"] + args.idle_minutes * 60.0
    next_at = first["t"] + args.idle_every
    while next_at <= end + 0.01:
        time.sleep(max(0.0, next_at - time.monotonic()))
        sample = rig.sample()
        row("idle", sample, t0, first["cpu_s"])
        samples.append(sample)
        next_at += args.idle_every
    return samples


def load_phase(args, rig, t0):
    before = rig.sample()
    row("load start", before, t0, before["cpu_s"])
    expected, refused = set(), 0
    start = time.monotonic()
    stop = start + args.load_seconds
    next_say, next_row, n = start, start + 10.0, 0
    samples = [before]
    warm = None
    while True:
        now = time.monotonic()
        if now >= stop:
            break
        if now >= next_say:
            n += 1
            text = "load-%d" % n
            status, _ = rig.say("!echo " + text)
            if status == 200:
                expected.add(text)
            else:
                refused += 1
            next_say += 1.0 / args.rate
        if now >= next_row:
            sample = rig.sample()
            samples.append(sample)
            if warm is None and sample["t"] - start >= args.load_warmup - 0.01:
                warm = sample
            row("load", sample, t0, before["cpu_s"], "said %d" % len(expected))
            next_row += 10.0
        time.sleep(max(0.0, min(next_say, next_row) - time.monotonic()))
    said_at_end = time.monotonic()
    loaded = rig.sample()
    row("load end", loaded, t0, before["cpu_s"], "said %d in %.1f s (%.1f/s)" % (
        len(expected), said_at_end - start, len(expected) / (said_at_end - start)))
    # Drain: until every echo is in /_sim/sent, or the time is up.
    deadline = time.monotonic() + args.drain
    answered = 0
    while True:
        records = rig.sent() or []
        replies = [r["text"] for r in records if r["kind"] == "buddy"
                   and r["text"] in expected and r.get("dropped") is None]
        answered = len(set(replies))
        duplicates = len(replies) - answered
        if answered >= len(expected) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    drained = rig.sample()
    row("drained", drained, t0, before["cpu_s"], "replies %d/%d" % (answered, len(expected)))
    return {"before": before, "warm": warm or loaded, "loaded": loaded, "drained": drained,
            "said": len(expected), "refused": refused, "answered": answered,
            "duplicates": duplicates, "start": start, "said_at_end": said_at_end}


def main(argv=None) -> int:
    args = parse_args(argv)
    h.sigterm_as_interrupt()
    rig = h.Rig(seed=args.seed, send_interval=0, keep=args.keep)
    try:
        rig.start_simulator()
        rig.start_daemon()
        time.sleep(5.0)                 # contacts loaded, first poll held: settled
        t0 = time.monotonic()
        print("[%s] daemon pid %d online; idle %.1f min, then %.0f s at %.0f says/s"
              % (h.stamp(), rig.daemon.pid, args.idle_minutes, args.load_seconds, args.rate))
        idle = idle_phase(args, rig, t0)
        load = load_phase(args, rig, t0)
        time.sleep(1.0)                 # the status file shows counts within 0.5 s
        alive = rig.daemon.poll() is None
        status = rig.status() or {}
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the daemon and the simulator", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print("daemon_bench: %s" % exc, file=sys.stderr)
        rig.keep = True
        print("logs kept in %s" % rig.dir, file=sys.stderr)
        return 2
    finally:
        rig.close()

    idle_minutes = (idle[-1]["t"] - idle[0]["t"]) / 60.0
    idle_cpu = idle[-1]["cpu_s"] - idle[0]["cpu_s"]
    idle_growth = idle[-1]["rss_kb"] - idle[0]["rss_kb"]
    idle_grew = idle_growth > args.idle_slack_kb
    busy_cpu = load["drained"]["cpu_s"] - load["before"]["cpu_s"]
    per_1000 = busy_cpu / (load["answered"] / 1000.0) if load["answered"] else float("nan")
    warm, loaded = load["warm"], load["loaded"]
    load_limit = warm["rss_kb"] + max(4096, warm["rss_kb"] * 0.10)
    load_grew = loaded["rss_kb"] > load_limit
    print()
    print("=== daemon bench (seed %d) ===" % args.seed)
    print("%-50s %s" % ("idle: minutes online", "%.1f" % idle_minutes))
    print("%-50s %s" % ("idle: RSS first / last / min / max (kB)", "%d / %d / %d / %d" % (
        idle[0]["rss_kb"], idle[-1]["rss_kb"], min(s["rss_kb"] for s in idle),
        max(s["rss_kb"] for s in idle))))
    print("%-50s %s" % ("idle: CPU seconds (per minute)", "%.2f (%.3f)" % (
        idle_cpu, idle_cpu / idle_minutes if idle_minutes else 0.0)))
    print("%-50s %s" % ("idle: RSS grew?", "YES (+%d kB)" % idle_growth if idle_grew else
                        "no (%+d kB, tolerance %d kB)" % (idle_growth, args.idle_slack_kb)))
    print("%-50s %s" % ("load: says accepted / refused", "%d / %d" % (load["said"],
                                                                     load["refused"])))
    print("%-50s %s" % ("load: achieved say rate (/s)", "%.1f" % (
        load["said"] / (load["said_at_end"] - load["start"]))))
    print("%-50s %s" % ("load: replies received / duplicates", "%d / %d" % (
        load["answered"], load["duplicates"])))
    print("%-50s %s" % ("load: daemon CPU seconds (first say..last reply)", "%.2f" % busy_cpu))
    print("%-50s %s" % ("load: CPU seconds per 1,000 messages", "%.2f" % per_1000))
    print("%-50s %s" % ("load: RSS before / after 10 s / end / drained (kB)",
                        "%d / %d / %d / %d" % (load["before"]["rss_kb"], warm["rss_kb"],
                                               loaded["rss_kb"], load["drained"]["rss_kb"])))
    print("%-50s %s" % ("load: RSS grew?", "YES" if load_grew else
                        "no (%+d kB after warm-up, tolerance max(4 MiB, 10%%))"
                        % (loaded["rss_kb"] - warm["rss_kb"])))
    print("%-50s %s" % ("daemon counts", ", ".join("%s=%s" % kv for kv in sorted(
        status.get("counts", {}).items()))))
    print("%-50s %s" % ("daemon still running", "yes" if alive else "NO"))
    ok = alive and not idle_grew and not load_grew and load["answered"] == load["said"] \
        and not load["duplicates"]
    print("verdict: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
