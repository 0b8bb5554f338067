#!/usr/bin/env python3
"""``webqq-simulator`` for bench/latency_bench.py: the same server, plus a load generator
in its own process and a clock on each message.

What it is for: saying messages at 1,000 a second without an HTTP call per message (the
bench's /_sim/say calls would cost the simulator more than the messages), and timing
each one where the issue defines its latency: from the poll answer that carries it (the
simulator's "answered" listener event, when the answer is handed to the socket) to the
reply's send request (the "sent" event). Both stamps are ``time.monotonic()`` in this
process, so no clock is shared between processes.

How the bench drives it (files in ``--dir``, signals):

* it writes ``phase.json``: ``{"name", "rate", "seconds", "drain", "targets": [[account,
  friend], ...], "arrivals": "even" or "poisson", "seed"}`` and sends SIGUSR1. Message n
  goes to ``targets[n % len]`` as a buddy message ``!echo <name>-<n>``, at n/rate
  seconds (even) or after exponential gaps of mean 1/rate (poisson, seeded); the
  generator wakes at least every 5 ms and says what is due;
* when every reply came, or ``drain`` seconds after the last say, it writes
  ``<name>.json``: ``{"said": n, "times": [[said, answered, sent], ...] (None where a
  stamp is missing), "cpu": seconds of this process during the phase, "wall": seconds
  from the first say to the file, "generated": seconds from the first say to the last,
  "late": says the generator could not make on time}``.

``--profile DIR`` runs each phase under cProfile and writes ``DIR/<name>.prof`` (for
bench/sim_load.py; the phase's CPU then includes cProfile's own).

What it must never do: be used outside a bench, or change an answer the simulator gives.

    python bench/_timed_simulator.py --dir DIR --world W --port P --tls-port T
"""
import argparse
import asyncio
import cProfile
import json
import logging
import os
import random
import re
import resource
import signal
import sys
import time

TEXT = re.compile(r"!echo (\S+-\d+)")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timer:
    """Listens to the simulator's backend and stamps each bench message."""

    def __init__(self) -> None:
        self.said = {}          # text -> monotonic
        self.answered = {}      # text -> monotonic of the last answer carrying it
        self.sent = {}          # text -> monotonic of its first reply
        self.waiting = set()    # texts said and not yet answered by a reply

    def __call__(self, kind, **fields) -> None:
        if kind == "answered":
            now = time.monotonic()
            for item in fields["body"].get("result") or ():
                if not isinstance(item, dict) or item.get("poll_type") != "message":
                    continue
                for piece in item["value"].get("content", ())[1:]:
                    if isinstance(piece, str):
                        match = TEXT.search(piece)
                        if match:
                            self.answered[match.group(1)] = now
        elif kind == "sent":
            text = fields["record"].text
            if text in self.waiting:
                self.sent[text] = time.monotonic()
                self.waiting.discard(text)


async def run_phase(sim, timer: Timer, spec: dict, out: str, profile=None) -> None:
    from webqq.simulator.events import EventSpec
    name, rate, seconds = spec["name"], float(spec["rate"]), float(spec["seconds"])
    targets = [tuple(t) for t in spec["targets"]]
    total = max(1, int(round(rate * seconds)))
    if spec.get("arrivals") == "poisson":
        rng = random.Random(spec.get("seed", 1))
        at, offsets = 0.0, []
        for _ in range(total):
            at += rng.expovariate(rate)
            offsets.append(at)
    else:
        offsets = [n / rate for n in range(total)]
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    cpu0 = cpu_seconds()
    start = time.monotonic()
    n = late = 0
    texts = []
    while n < total:
        now = time.monotonic() - start
        while n < total and offsets[n] <= now:
            if now - offsets[n] > 0.05:
                late += 1
            account, friend = targets[n % len(targets)]
            text = "%s-%d" % (name, n)
            spec_ = EventSpec(poll_type="message", sender=friend, text="!echo " + text)
            timer.waiting.add(text)
            timer.said[text] = time.monotonic()
            try:
                sim.backend.chat.push_event(account, spec_)
            except Exception as exc:          # not logged in right now: counted as lost
                logging.getLogger("bench").warning("say %s: %s", text, exc)
            texts.append(text)
            n += 1
        if n < total:
            await asyncio.sleep(max(0.0, min(0.005, offsets[n] - (time.monotonic() - start))))
    ended = time.monotonic()
    generated = ended - start
    while timer.waiting.intersection(texts) and time.monotonic() < ended + float(spec["drain"]):
        await asyncio.sleep(0.05)
    result = {"said": len(texts), "late": late, "cpu": cpu_seconds() - cpu0,
              "wall": time.monotonic() - start, "generated": generated,
              "times": [[timer.said.get(t), timer.answered.get(t), timer.sent.get(t)]
                        for t in texts]}
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.path.join(profile, name + ".prof"))
    for table in (timer.said, timer.answered, timer.sent):
        for text in texts:
            table.pop(text, None)
    timer.waiting.difference_update(texts)
    path = os.path.join(out, name + ".json")
    with open(path + ".tmp", "w") as handle:
        json.dump(result, handle)
    os.replace(path + ".tmp", path)


async def serve(args) -> int:
    from webqq.simulator.server import Simulator
    sim = Simulator(world=args.world, poll_hold=args.poll_hold, host="127.0.0.1",
                    port=args.port, tls_port=args.tls_port, seed=args.seed,
                    control_token=args.control_token)
    timer = Timer()
    sim.backend.listeners.append(timer)
    print("timed simulator on %d/%d" % (sim.port, sim.tls_port), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    phases = asyncio.Queue()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, phases.put_nowait, None)

    async def phase_runner():
        while True:
            await phases.get()
            with open(os.path.join(args.dir, "phase.json")) as handle:
                spec = json.load(handle)
            await run_phase(sim, timer, spec, args.dir, args.profile)
    runner = asyncio.ensure_future(phase_runner())
    await stop.wait()
    runner.cancel()
    await sim.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--world")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--poll-hold", type=float, default=55.0)
    parser.add_argument("--control-token")
    parser.add_argument("--loglevel", default="warning")
    parser.add_argument("--profile", metavar="DIR", help="cProfile each phase into DIR")
    args = parser.parse_args()
    logging.basicConfig(level=args.loglevel.upper(),
                        format="%(asctime)s %(name)s %(message)s")
    del sys.path[0]                 # bench/: import webqq as webqq-simulator would
    from webqq.simulator.cli import collect_less
    collect_less()                  # as webqq-simulator does
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
