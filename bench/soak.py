#!/usr/bin/env python3
"""Bounded soak: the daemon against the simulator, faults at random, messages both ways.

Starts ``webqq-simulator`` and ``webqq -c <generated ini> run`` (own temporary state_dir)
on free loopback ports, waits until the status file says online, then for ``--minutes``
(or ``--seconds``) makes friend 20001 (and, one message in four, member 20002 of group
30001) say ``!echo soak-<n>`` through ``/_sim/say`` at ``--rate`` messages a second, and
every few seconds (seeded ``--seed``), while the daemon is online and no earlier fault is
still pending in the simulator, injects one fault: poll2 resets, 502/503 on poll2
and on sends, a reset of a send, delays of poll2 and of sends, kicks (121), rotations
(116), and once a ``--outage``-second ``/_sim/offline``. A 502 or a reset of a send
strikes, at random, before the simulator handles it (nothing delivered) or after (the
message delivered, only the answer lost); a 503, which says "not processed", before. Then it stops injecting, clears pending faults
and waits up to ``--grace`` seconds for the last answers. The simulator's world is the
default one, as strict as the 2013 server: it drops, answering "ok", a send less than
0.5 s after the previous one and a copy of the previous one within 1 s.

Verdict, from ``/_sim/sent?account=10001`` (what the bot really sent) and the daemon's
log (the sends it reported as not confirmed: ``Message N (buddy 20001, 'soak-7')
ambiguous|failed ...``):

* ambiguous: an echo the daemon reported ambiguous (its fate unknown, not sent again
  unless ``--resend-ambiguous``); it may or may not appear, and is counted apart;
* failed: an echo the daemon reported failed (e.g. expired after the outage);
* lost: an accepted say whose echo never appears and that the daemon did not report
  (lost silently; a send the simulator recorded as ``dropped`` is no answer);
* duplicated: an echo that appears more than once (each extra copy counts one);
* dropped: sends the simulator dropped for coming too fast or too soon as a copy;
* a say the simulator refused (409: no session to queue to) or could not take (it was
  offline, the connection was refused) never reached the bot: counted apart as
  "refused"/"unreachable", never as lost, and not retried (the next say carries a new
  number, so the flow simply goes on);
* a say whose answer from /_sim/ was lost (a timeout) is "ambiguous": its echo is
  counted if it comes, but its absence is not a loss.

Leaks: the daemon's fd count (/proc/PID/fd) and RSS (VmRSS) are sampled at online, after
a warm-up (the first minute, or a quarter of a shorter run), every minute, and at the end
(after the grace). Flat means: end fds <= warm-up fds + ``--fd-slack`` (default 2: a poll
and a send connection may be open at either instant), and end RSS <= warm-up RSS +
max(``--rss-slack-mb`` MiB, ``--rss-slack-pct`` %) (default 4 MiB / 10 %: allocator
arenas and caches settle, a leak of one object per message would not).

Store faults (``--store-faults``, issue 11): from ``--store-fault-start`` seconds on,
every ``--store-fault-every`` seconds, the daemon's message store is alternately locked
(a second SQLite connection holds the write lock) and full (no room to grow: a filled
tmpfs when one can be mounted, else a lowered RLIMIT_FSIZE; see ``_store_faults``), for
``--store-fault-seconds`` each. The daemon then also serves the OneBot API, and
``--api-rate`` messages a second (default 0.5) are sent through ``send_private_msg``
from a few threads: an API send is accepted (must then reach the simulator exactly
once), refused with its reason (the store cannot be written: must never be sent), failed
after acceptance (the server refused it: reported, at most once), or unanswered
(ambiguous: at most once). Plugin replies to the says meanwhile wait in memory and must
all arrive, once.

Memory by allocation site: the daemon runs under tracemalloc (bench/_traced_daemon.py,
``--tracemalloc FRAMES``, default 1; 0: without it), and snapshots are taken at the
warm-up ("start"), at half the length ("middle") and after the grace ("end"). The report
prints the traced bytes at each, their growth per minute between them, and the
``--top`` allocation sites (file:line) that grew most from start to middle and from
middle to end: a cache that fills and then holds steady shows in the first list and not
in the second; a leak shows in both. tracemalloc costs the daemon CPU and memory per
block, so the RSS figures of a traced run are higher than an untraced one's.

Exit status: 0 when lost == 0, dropped == 0, duplicated == 0 (says and API sends; unless
``--resend-ambiguous``: at least once may duplicate a say), no refused API
send was sent, every refusal came with its reason, fds and RSS flat and the daemon still
running at the end; 1 otherwise; 2 when the rig could not be set up; 130 on Ctrl-C.
Everything started is stopped (daemon first, then simulator) in every case.

    python bench/soak.py --minutes 10 --seed 7
    python bench/soak.py --minutes 3 --resend-ambiguous   # at least once
    python bench/soak.py --seconds 90           # a quick check (the outage is skipped
                                                # when the run is shorter than 3 outages)
    python bench/soak.py --minutes 3 --store-faults
"""
import argparse
import collections
import os
import random
import re
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor, wait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402
from _store_faults import StoreFaults  # noqa: E402

SEND_PATHS = ("/channel/send_buddy_msg2", "/channel/send_qun_msg2")
POLL = "/channel/poll2"
#: Seconds without a new send (daemon online, outbox empty) that end the grace early.
QUIET = 30.0
#: The daemon's log line for a send it could not confirm (webqq.client.send_queue):
#: "Message 12 to buddy 20001 ('soak-12') ambiguous: ...".
_NOT_CONFIRMED = re.compile(r"webqq\.send_queue: Message \d+ to \w+ [^(]+ \('([^']*)'\) "
                            r"(ambiguous|failed)")
#: kind -> weight of the random choice (the outage is scheduled apart, once).
FAULT_WEIGHTS = {"poll_reset": 3, "poll_5xx": 3, "send_5xx": 3, "send_reset": 1,
                 "poll_delay": 2, "send_delay": 2, "kick": 2, "rotate": 2}


#: What the soak's snapshots leave out: tracemalloc's own and the import machinery's.
SNAPSHOT_FILTERS = [tracemalloc.Filter(False, tracemalloc.__file__),
                    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
                    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
                    tracemalloc.Filter(False, "<unknown>")]


def short_path(filename: str) -> str:
    """``webqq/client/receiving.py`` for a file of the package, ``tornado/...`` for a
    site-package, the name as it is otherwise."""
    if "/site-packages/" in filename:
        return filename.split("/site-packages/", 1)[1]
    stdlib = os.path.dirname(os.__file__) + os.sep
    if filename.startswith(stdlib):
        return filename[len(stdlib):]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    return filename[len(root):] if filename.startswith(root) else filename


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=10.0, help="length (default 10)")
    length.add_argument("--seconds", type=float, help="length in seconds (quick checks)")
    parser.add_argument("--seed", type=int, default=1, help="seeds faults and simulator")
    parser.add_argument("--rate", type=float, default=1.0, help="says per second (default 1: "
                        "the 0.5 s send interval answers about 2 a second, so backlogs "
                        "after faults drain)")
    parser.add_argument("--fault-every", type=float, default=5.0,
                        help="mean seconds between two faults (uniform 0.5x..1.5x; default 5)")
    parser.add_argument("--outage", type=float, default=30.0,
                        help="seconds of the one /_sim/offline (0: none; default 30)")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="seconds to wait for the last echoes (default 120)")
    parser.add_argument("--send-interval", type=float, default=0.5,
                        help="[bot] send_interval of the daemon (default and least: 0.5 s)")
    parser.add_argument("--resend-ambiguous", action="store_true",
                        help="[bot] resend_ambiguous = yes (at least once)")
    parser.add_argument("--faults", default=",".join(FAULT_WEIGHTS),
                        help="comma-separated kinds to draw from (default: all of %s)"
                        % ", ".join(FAULT_WEIGHTS))
    parser.add_argument("--fd-slack", type=int, default=2)
    parser.add_argument("--rss-slack-mb", type=float, default=4.0)
    parser.add_argument("--rss-slack-pct", type=float, default=10.0)
    parser.add_argument("--tracemalloc", type=int, default=1, metavar="FRAMES",
                        help="frames per traced allocation in the daemon (default 1; 0: "
                             "no tracemalloc, no snapshots)")
    parser.add_argument("--top", type=int, default=12,
                        help="allocation sites listed per interval (default 12)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--store-faults", action="store_true",
                        help="lock the message store, then fill it, by turns (and send "
                             "through the OneBot API too)")
    parser.add_argument("--store-fault-start", type=float, default=20.0)
    parser.add_argument("--store-fault-every", type=float, default=40.0)
    parser.add_argument("--store-fault-seconds", type=float, default=12.0)
    parser.add_argument("--tmpfs-mb", type=int, default=64,
                        help="size of state_dir's tmpfs for the full store (default 64)")
    parser.add_argument("--api-rate", type=float, default=None,
                        help="API sends per second (default 0.5 with --store-faults, "
                             "else 0)")
    args = parser.parse_args(argv)
    if args.api_rate is None:
        args.api_rate = 0.5 if args.store_faults else 0.0
    args.duration = args.seconds if args.seconds is not None else args.minutes * 60.0
    args.faults = [kind for kind in args.faults.split(",") if kind]
    unknown = set(args.faults) - set(FAULT_WEIGHTS)
    if unknown or not args.faults:
        parser.error("--faults: kinds among %s" % ", ".join(FAULT_WEIGHTS))
    return args


class Soak:
    def __init__(self, args, rig):
        self.args, self.rig = args, rig
        self.rng = random.Random(args.seed)
        self.expected = {}                          # (kind, to, text) -> say number
        self.ambiguous = set()                      # keys of says with no /_sim/ answer
        self.says = collections.Counter()           # accepted, refused, unreachable, ...
        self.faults = collections.Counter()         # kind -> injected
        self.faults_skipped = collections.Counter()  # kind -> refused by the simulator
        self.faults_held = collections.Counter()    # kind -> not injected: not ready
        self.fault_log = []
        self.samples = {}
        self.snapshots = []                         # (label, elapsed s, Snapshot)
        self.minutes = []
        self.number = 0
        self.store_faults = StoreFaults(rig, args.tmpfs_mb) if args.store_faults else None
        self.store_fault_log = []
        self.api_pool = ThreadPoolExecutor(max_workers=4) if args.api_rate else None
        self.api_sends = []                         # futures of (text, status, answer)

    # -- traffic -------------------------------------------------------------------------

    def say_next(self) -> None:
        self.number += 1
        text = "soak-%d" % self.number
        group = self.number % 4 == 0
        key = ("group", h.GROUP, text) if group else ("buddy", h.FRIEND, text)
        status, body = self.rig.say("!echo " + text, group=group)
        if status == 200:
            self.says["accepted"] += 1
            self.expected[key] = self.number
        elif status == 409:
            self.says["refused"] += 1
        elif status is None and "timed out" in str(body):
            self.says["ambiguous"] += 1
            self.expected[key] = self.number
            self.ambiguous.add(key)
        elif status is None:
            self.says["unreachable"] += 1
        else:
            self.says["error %s" % status] += 1

    def api_next(self) -> None:
        """One API send, in a thread: the send waits for the client's answer (5 s at
        most) while the says go on."""
        text = "api-%d" % (len(self.api_sends) + 1)
        self.api_sends.append((text, self.api_pool.submit(
            self.rig.api_call, "send_private_msg", {"user_id": h.FRIEND, "message": text})))

    def api_outcomes(self) -> dict:
        """The API sends by outcome: ``accepted`` (texts), ``refused`` (text -> reason),
        ``failed`` (accepted, then refused by the server: text -> reason), ``ambiguous``
        (no answer)."""
        wait([future for _, future in self.api_sends], timeout=60)
        outcomes = {"accepted": [], "refused": {}, "failed": {}, "ambiguous": []}
        for text, future in self.api_sends:
            status, answer = future.result() if future.done() else (None, "no answer")
            if status != 200 or not isinstance(answer, dict):
                outcomes["ambiguous"].append(text)
            elif answer.get("status") == "ok":
                outcomes["accepted"].append(text)
            elif (answer.get("data") or {}).get("message_id"):
                outcomes["failed"][text] = answer.get("msg") or ""
            else:
                outcomes["refused"][text] = answer.get("msg") or ""
        return outcomes

    # -- faults --------------------------------------------------------------------------

    def store_fault(self, number: int, start: bool) -> None:
        """Start or end store fault ``number``: even ones lock, odd ones fill."""
        faults = self.store_faults
        kind = "lock" if number % 2 == 0 else "full"
        if start:
            faults.lock() if kind == "lock" else faults.fill()
        else:
            faults.unlock() if kind == "lock" else faults.unfill()
        self.store_fault_log.append("%s store %s %s" % (h.stamp(), kind,
                                                         "on" if start else "off"))
        print("[%s] store %s %s" % (h.stamp(), kind, "on" if start else "off"),
              flush=True)

    def ready_for_fault(self) -> bool:
        """A fault is injected only while the daemon is online and the simulator holds
        no fault still waiting for its request: faults drawn while the daemon recovers
        would pile up in the simulator and each meet the next relink, and the recovery
        ladder's growing delays then meet ever more of them (a rig that no network
        resembles)."""
        status = self.rig.status() or {}
        if status.get("state") != "online":
            return False
        code, pending = self.rig.control("GET", "fault")
        return code == 200 and not pending

    def inject(self, kind: str) -> None:
        rng = self.rng
        if kind == "poll_reset":
            call = ("POST", "fault", {"path": POLL, "kind": "reset"})
        elif kind == "poll_5xx":
            call = ("POST", "fault", {"path": POLL, "kind": "status",
                                      "status": rng.choice((502, 503)),
                                      "count": rng.randint(1, 3)})
        elif kind == "send_5xx":
            # A 503 says "not processed" (RFC 9110 §15.6.4), so the client sends the
            # message again: one after delivery would be a server lying, not a fault.
            status = rng.choice((502, 503))
            call = ("POST", "fault", {"path": rng.choice(SEND_PATHS), "kind": "status",
                                      "status": status, "count": rng.randint(1, 2),
                                      "when": rng.choice(("before", "after"))
                                      if status == 502 else "before"})
        elif kind == "send_reset":
            call = ("POST", "fault", {"path": rng.choice(SEND_PATHS), "kind": "reset",
                                      "when": rng.choice(("before", "after"))})
        elif kind == "poll_delay":
            call = ("POST", "fault", {"path": POLL, "kind": "delay",
                                      "seconds": round(rng.uniform(1, 8), 1)})
        elif kind == "send_delay":
            call = ("POST", "fault", {"path": rng.choice(SEND_PATHS), "kind": "delay",
                                      "seconds": round(rng.uniform(0.5, 3), 1)})
        elif kind in ("kick", "rotate"):
            call = ("POST", kind, {"account": h.ACCOUNT})
        elif kind == "outage":
            call = ("POST", "offline", {"seconds": self.args.outage})
        else:
            raise ValueError(kind)
        status, body = self.rig.control(*call)
        detail = "%s %s" % (call[1], call[2])
        if status == 200:
            self.faults[kind] += 1
            if call[1] == "fault":
                detail = "fault %s" % {k: v for k, v in call[2].items()}
        else:
            self.faults_skipped[kind] += 1
            detail += " -> %s %s" % (status, body)
        self.fault_log.append("%s %s" % (h.stamp(), detail))

    @staticmethod
    def reported(rig) -> dict:
        """Echo text -> "ambiguous" or "failed", as the daemon's log reported each send
        it could not confirm (the last report of a text wins)."""
        fates = {}
        for line in rig.grep_log(_NOT_CONFIRMED.pattern):
            found = _NOT_CONFIRMED.search(line)
            fates[found.group(1)] = found.group(2)
        return fates

    # -- memory by allocation site ------------------------------------------------------

    def snapshot(self, label: str, t0: float) -> None:
        snap = self.rig.snapshot()
        if snap is None:
            return
        snap = snap.filter_traces(SNAPSHOT_FILTERS)
        elapsed = time.monotonic() - t0
        self.snapshots.append((label, elapsed, snap))
        total = sum(stat.size for stat in snap.statistics("filename"))
        print("[%s] tracemalloc %-6s t=%4.0fs traced=%d kB" % (h.stamp(), label, elapsed,
                                                              total // 1024), flush=True)

    def report_snapshots(self) -> None:
        if len(self.snapshots) < 2:
            if self.args.tracemalloc > 0:
                print("tracemalloc: fewer than two snapshots were taken")
            return
        print("tracemalloc, traced bytes of the daemon: %s" % ", ".join(
            "%s %d kB at %.0f s" % (label, sum(s.size for s in snap.statistics("filename"))
                                   // 1024, at) for label, at, snap in self.snapshots))
        for (label0, at0, snap0), (label1, at1, snap1) in zip(self.snapshots,
                                                              self.snapshots[1:]):
            stats = snap1.compare_to(snap0, "lineno")
            minutes = max(at1 - at0, 1.0) / 60.0
            growth = sum(stat.size_diff for stat in stats)
            print("%s -> %s (%.1f min): %+.1f kB in all, %+.2f kB a minute; top sites:"
                  % (label0, label1, minutes, growth / 1024, growth / 1024 / minutes))
            for stat in sorted(stats, key=lambda s: -abs(s.size_diff))[:self.args.top]:
                frame = stat.traceback[0]
                print("  %+10.1f kB %+8d blocks  %8.1f kB now  %s:%d" % (
                    stat.size_diff / 1024, stat.count_diff, stat.size / 1024,
                    short_path(frame.filename), frame.lineno))

    # -- the run -------------------------------------------------------------------------

    def progress(self, label: str, elapsed: float) -> None:
        sample = self.rig.sample()
        records = self.rig.sent()
        status = self.rig.status() or {}
        self.minutes.append(sample)
        print("[%s] %-6s t=%4.0fs said=%d answered=%s faults=%d state=%s rss=%d kB fds=%d "
              "cpu=%.1fs" % (h.stamp(), label, elapsed, self.says["accepted"],
                             "?" if records is None else len(records),
                             sum(self.faults.values()), status.get("state"), sample["rss_kb"],
                             sample["fds"], sample["cpu_s"]), flush=True)

    def run(self) -> int:
        args, rig = self.args, self.rig
        rig.start_simulator()
        if self.store_faults is not None:
            self.store_faults.prepare()
        rig.start_daemon()
        self.samples["online"] = rig.sample()
        duration = args.duration
        warmup = min(60.0, duration / 4)
        t0 = time.monotonic()
        end = t0 + duration
        next_say = t0
        next_fault = t0 + self.rng.uniform(0.5, 1.5) * args.fault_every
        next_minute = t0 + 60.0
        outage_at = None
        if args.outage > 0 and duration >= 3 * args.outage:
            outage_at = t0 + self.rng.uniform(0.3, 0.6) * duration
        warm_at = t0 + warmup
        middle_at = t0 + duration / 2
        next_api = t0 if args.api_rate else float("inf")
        store_fault, store_fault_at, store_fault_on = 0, float("inf"), False
        if self.store_faults is not None:
            store_fault_at = t0 + args.store_fault_start
        print("[%s] online (pid %d); soaking %.0f s at %.1f says/s, a fault every ~%.0f s, "
              "outage %s" % (h.stamp(), rig.daemon.pid, duration, args.rate, args.fault_every,
                             "at +%.0f s for %.0f s" % (outage_at - t0, args.outage)
                             if outage_at else "none"), flush=True)
        kinds = tuple(args.faults)
        weights = tuple(FAULT_WEIGHTS[kind] for kind in kinds)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if rig.daemon.poll() is not None:
                print("the daemon exited (code %s) during the soak" % rig.daemon.returncode)
                break
            if now >= next_say:
                self.say_next()
                next_say += 1.0 / args.rate
                if next_say < now - 1.0:        # fell behind (an outage): no burst
                    next_say = now
            if now >= next_api:
                self.api_next()
                next_api = max(next_api + 1.0 / args.api_rate, now - 1.0)
            if now >= store_fault_at:
                self.store_fault(store_fault, start=not store_fault_on)
                if store_fault_on:
                    store_fault += 1
                    store_fault_at += args.store_fault_every - args.store_fault_seconds
                else:
                    store_fault_at += args.store_fault_seconds
                store_fault_on = not store_fault_on
            if outage_at is not None and now >= outage_at:
                outage_at = None
                self.inject("outage")
                # Faults queued for the outage's end would land during the relogin: wait.
                next_fault = max(next_fault, now + args.outage + args.fault_every)
            elif now >= next_fault:
                kind = self.rng.choices(kinds, weights)[0]
                if self.ready_for_fault():
                    self.inject(kind)
                else:
                    self.faults_held[kind] += 1
                next_fault = now + self.rng.uniform(0.5, 1.5) * args.fault_every
            if warm_at is not None and now >= warm_at:
                warm_at = None
                self.samples["warm"] = rig.sample()
                self.snapshot("start", t0)
            if middle_at is not None and now >= middle_at:
                middle_at = None
                self.snapshot("middle", t0)
            if now >= next_minute:
                next_minute += 60.0
                self.progress("minute", now - t0)
            wake = min(next_say, next_fault, next_minute, end, next_api, store_fault_at)
            time.sleep(max(0.0, min(wake - time.monotonic(), 0.5)))
        if store_fault_on:
            self.store_fault(store_fault, start=False)
        if "warm" not in self.samples:
            self.samples["warm"] = rig.sample()
        return self.finish(t0)

    def finish(self, t0: float) -> int:
        args, rig = self.args, self.rig
        rig.control("DELETE", "fault")
        print("[%s] traffic stopped; waiting up to %.0f s for the last echoes"
              % (h.stamp(), args.grace), flush=True)
        self.api = self.api_outcomes() if self.api_pool else None
        api_expected = [("buddy", h.FRIEND, text) for text in self.api["accepted"]] \
            if self.api else []
        deadline = time.monotonic() + args.grace
        records, seen, quiet_since = None, -1, time.monotonic()
        while True:
            records = rig.sent()
            if records is not None:
                answered = {(r["kind"], r["to"], r["text"]) for r in records
                            if r.get("dropped") is None}
                missing = [k for k in list(self.expected) + api_expected
                           if k not in answered and k not in self.ambiguous]
                if not missing:
                    break
                if len(records) != seen:
                    seen, quiet_since = len(records), time.monotonic()
                # Nothing sent for QUIET s, the daemon online with an empty outbox: the
                # missing ones are not coming (saves waiting out the whole grace).
                status = rig.status() or {}
                if time.monotonic() - quiet_since >= QUIET and status.get("queued") == 0 \
                        and status.get("state") == "online":
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(2.0)
        time.sleep(1.0)                         # let a reply in flight land (duplicates)
        records = rig.sent() or records or []
        self.samples["end"] = rig.sample()
        alive = rig.daemon.poll() is None
        self.snapshot("end", t0)
        self.progress("end", time.monotonic() - t0)
        return self.report(records, alive)

    def report(self, records: list, alive: bool) -> int:
        args, rig = self.args, self.rig
        replies = collections.Counter((r["kind"], r["to"], r["text"]) for r in records
                                      if r.get("dropped") is None)
        dropped = [r for r in records if r.get("dropped") is not None]
        reported = self.reported(rig)
        missing = [k for k in self.expected if replies[k] == 0 and k not in self.ambiguous]
        ambiguous = [k for k in self.expected if reported.get(k[2]) == "ambiguous"]
        failed = [k for k in missing if reported.get(k[2]) == "failed"]
        lost = sorted(self.expected[k] for k in missing if k[2] not in reported)
        duplicated = {k: c for k, c in replies.items() if c > 1}
        extra = sum(c - 1 for c in duplicated.values())
        api = self.api or {"accepted": [], "refused": {}, "failed": {}, "ambiguous": []}
        sent_api = lambda text: replies[("buddy", h.FRIEND, text)]  # noqa: E731
        api_lost = [text for text in api["accepted"] if not sent_api(text)]
        refused_sent = [text for text in api["refused"] if sent_api(text)]
        unreported = [text for text, why in api["refused"].items() if not why]
        api_texts = {("buddy", h.FRIEND, text) for _, texts in api.items() for text in texts}
        unexpected = [k for k in replies if k not in self.expected and k not in api_texts]
        onlines = rig.onlines()
        status = rig.status() or {}
        warm, end, online = self.samples["warm"], self.samples["end"], self.samples["online"]
        rss_limit = warm["rss_kb"] + max(args.rss_slack_mb * 1024,
                                         warm["rss_kb"] * args.rss_slack_pct / 100)
        fds_flat = end["fds"] <= warm["fds"] + args.fd_slack
        rss_flat = end["rss_kb"] <= rss_limit
        ok = (not lost and not dropped and (not extra or args.resend_ambiguous)
              and fds_flat and rss_flat and alive and not api_lost and not refused_sent
              and not unreported)
        counts = status.get("counts", {})
        print()
        print("=== soak report (seed %d, %.0f s, %.1f says/s, send_interval %g s, "
              "resend_ambiguous %s) ===" % (args.seed, args.duration, args.rate,
                                             args.send_interval,
                                             "yes" if args.resend_ambiguous else "no"))
        print("says: %s" % ", ".join("%s %d" % kv for kv in sorted(self.says.items())))
        print("messages sent to the bot (accepted says): %d" % self.says["accepted"])
        print("replies received (in /_sim/sent, not dropped): %d (%d distinct)"
              % (sum(replies.values()), len(replies)))
        print("lost silently: %d%s" % (len(lost), "  numbers: %s" % lost[:20] if lost else ""))
        print("duplicated: %d%s" % (extra, "  e.g. %s" % list(duplicated.items())[:5]
                                    if duplicated else ""))
        print("ambiguous (reported by the daemon): %d, of which delivered %d, not "
              "delivered %d" % (len(ambiguous), sum(1 for k in ambiguous if replies[k]),
                                sum(1 for k in ambiguous if not replies[k])))
        print("failed (reported by the daemon, not delivered): %d" % len(failed))
        print("ambiguous says (no /_sim/ answer): %d, answered anyway: %d"
              % (len(self.ambiguous), sum(1 for k in self.ambiguous if replies[k])))
        print("dropped by the simulator (too fast, quick copies): %d%s; unexpected replies: "
              "%d" % (len(dropped), "  e.g. %s" % [(r["text"], r["dropped"])
                                                   for r in dropped[:5]] if dropped else "",
                      len(unexpected)))
        if self.api is not None:
            reasons = collections.Counter(why.rsplit(": ", 1)[-1]
                                          for why in api["refused"].values())
            print("API sends: %d; accepted %d, refused %d (%s), failed after acceptance %d, "
                  "unanswered %d" % (len(self.api_sends), len(api["accepted"]),
                                     len(api["refused"]), ", ".join(
                                         "%s x%d" % kv for kv in sorted(reasons.items()))
                                     or "none", len(api["failed"]), len(api["ambiguous"])))
            print("API lost: %d%s; refused yet sent: %d; refusals without a reason: %d"
                  % (len(api_lost), "  e.g. %s" % api_lost[:10] if api_lost else "",
                     len(refused_sent), len(unreported)))
        if self.store_faults is not None:
            print("store faults (%s): %s" % (self.store_faults.how, "; ".join(
                self.store_fault_log) or "none"))
        print("daemon counts: %s" % ", ".join("%s=%s" % kv for kv in sorted(counts.items())))
        fates = collections.Counter()
        for line in rig.grep_log(_NOT_CONFIRMED.pattern):
            found = _NOT_CONFIRMED.search(line)
            fates[found.group(2) + line[found.end():][:120]] += 1
        if fates:
            print("daemon log, sends not confirmed: %s"
                  % "; ".join("%s x%d" % kv for kv in sorted(fates.items())))
        print("onlines: logged in %d (relogins %d), relinked %d, resumed %d"
              % (onlines["logged in"], max(0, onlines["logged in"] - 1), onlines["relinked"],
                 onlines["resumed the saved session"]))
        print("faults injected: %s" % ", ".join("%s %d" % kv for kv in sorted(self.faults.items())))
        if self.faults_held:
            print("faults not drawn (daemon not online, or a fault still pending): %s"
                  % ", ".join("%s %d" % kv for kv in sorted(self.faults_held.items())))
        if self.faults_skipped:
            print("faults refused by the simulator (not online then): %s"
                  % ", ".join("%s %d" % kv for kv in sorted(self.faults_skipped.items())))
        print("fds: online %d, warm %d, end %d -> %s (tolerance +%d)"
              % (online["fds"], warm["fds"], end["fds"], "flat" if fds_flat else "GREW",
                 args.fd_slack))
        print("RSS: online %d kB, warm %d kB, end %d kB -> %s (tolerance max(%g MiB, %g%%))"
              % (online["rss_kb"], warm["rss_kb"], end["rss_kb"],
                 "flat" if rss_flat else "GREW", args.rss_slack_mb, args.rss_slack_pct))
        print("RSS by minute (kB): %s" % " ".join(str(s["rss_kb"]) for s in self.minutes))
        print("CPU seconds of the daemon: %.1f" % end["cpu_s"])
        print("daemon still running at the end: %s" % ("yes" if alive else "NO"))
        self.report_snapshots()
        print("verdict: %s" % ("PASS" if ok else "FAIL"))
        if args.keep:
            print("logs kept in %s" % rig.dir)
        with open(os.path.join(rig.dir, "faults.log"), "w") as out:
            out.write("\n".join(self.fault_log) + "\n")
        return 0 if ok else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    h.sigterm_as_interrupt()
    rig = h.Rig(seed=args.seed, send_interval=args.send_interval, keep=args.keep,
                 resend_ambiguous=args.resend_ambiguous, api=args.api_rate > 0,
                 tracemalloc_frames=args.tracemalloc)
    soak = None
    try:
        soak = Soak(args, rig)
        return soak.run()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the daemon and the simulator", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print("soak: %s" % exc, file=sys.stderr)
        rig.keep = True
        print("logs kept in %s" % rig.dir, file=sys.stderr)
        return 2
    finally:
        if soak is not None and soak.store_faults is not None:
            soak.store_faults.unlock()
            soak.store_faults.unfill()
            rig.stop_daemon()
            soak.store_faults.close()
        if soak is not None and soak.api_pool is not None:
            soak.api_pool.shutdown(wait=False)
        rig.close()


if __name__ == "__main__":
    sys.exit(main())
