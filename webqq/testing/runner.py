"""Running a scenario against a bot, and the readable report of how it went.

runner: for each scenario a fresh ``Harness`` (simulator, webqq, the bot's URL) and a
``Simulation``; the steps run in order, the first that fails ends the scenario, and
the ``Result`` holds the outcome, the failed step with its reason, the conversation
(every message said and sent, from the simulator's feed, with the faults between) and
the end of webqq's log. ``check_against`` refuses, before anything starts, a scenario
naming people or chats the world does not have.

It judges by what the simulator saw, never by what webqq reports, and never waits by
sleeping where the feed or the simulator's state can be watched: its sleeps are a
scenario's own ``pause`` and the length of an ``outage``.
"""
import asyncio
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from .feed import Watcher
from .harness import Harness, HarnessError, SimulatorError
from .scenario import Scenario, ScenarioError, Step
from .simulation import NoReply, Simulation, event_chat

__all__ = ["PASSED", "FAILED", "ERROR", "Result", "check_against", "run_scenario"]

PASSED, FAILED, ERROR = "passed", "failed", "error"
#: Lines of webqq's log a failure report ends with.
LOG_LINES = 15


@dataclass
class Result:
    """How one scenario went. ``outcome`` is PASSED, FAILED (a step did not hold) or
    ERROR (the run could not start or stopped on its own)."""

    scenario: Scenario
    outcome: str = PASSED
    seconds: float = 0.0
    step: Optional[Step] = None         # the step that failed
    step_text: str = ""                 # that step in words
    reason: str = ""                    # why
    transcript: List[str] = field(default_factory=list)
    log_tail: str = ""

    @property
    def title(self) -> str:
        return "%s: %s" % (self.scenario.path.name, self.scenario.name)

    def report(self) -> str:
        """The readable account: outcome, the failed step and why, the conversation, the
        end of webqq's log."""
        lines = ["%s  %s (%.1f s)" % (self.outcome.upper(), self.title, self.seconds)]
        if self.outcome == PASSED:
            return lines[0]
        if self.step is not None:
            lines.append("  step %d of %d: %s" % (self.step.number, len(self.scenario.steps),
                                                   self.step_text or describe(self.step)))
        lines += ["    " + line for line in self.reason.splitlines()]
        if self.transcript:
            lines.append("  conversation:")
            lines += ["    " + line for line in self.transcript]
        if self.log_tail:
            lines.append("  the end of webqq's log:")
            lines += ["    " + line for line in self.log_tail.splitlines()]
        return "\n".join(lines)


def describe(step: Step, name=None, chat=None) -> str:
    """A step in words, as the report names it. ``name(chat)`` reads a chat as people do
    (``Simulation.name``); ``chat`` is the chat an expect reads when it names none."""
    name = name or (lambda c: "%s %d" % c)
    chat = step.chat or chat
    if step.action == "say":
        said = "%s says %s" % (name(("buddy", step.sender)), _quoted(step.text))
        return said + (" to the bot" if step.chat[0] == "buddy" else " in %s" % name(chat))
    if step.action == "expect":
        return "expect %s from the bot %s within %g s" % (_quoted(step.text), _in(chat, name),
                                                          step.seconds)
    if step.action == "expect_match":
        return "expect a match of /%s/ from the bot %s within %g s" % (
            step.pattern, _in(chat, name), step.seconds)
    if step.action == "silence":
        return "expect silence from the bot %s for %g s" % (_in(chat, name), step.seconds)
    recover = ", back online within %g s" % step.recover if step.recover else ""
    if step.action == "outage":
        return "an outage of %g s%s" % (step.seconds, recover)
    if step.action in ("kick", "rotate"):
        return "%s%s" % (step.action, recover)
    if step.action == "pause":
        return "pause %g s" % step.seconds
    return "fault %s" % json.dumps(step.fault, sort_keys=True)


def _in(chat, name) -> str:
    if chat is None:
        return "in the chat of the latest say"
    return "to %s" % name(chat) if chat[0] == "buddy" else "in %s" % name(chat)


def _quoted(text) -> str:
    return json.dumps(text if isinstance(text, str) else _pieces_text(text),
                      ensure_ascii=False)


def _pieces_text(pieces) -> str:
    return "".join(p if isinstance(p, str) else "[face:%d]" % p[1] for p in pieces)


def check_against(scenario: Scenario, world) -> None:
    """Refuse a scenario whose people, groups, discussions or account the world lacks.

    Raises:
        ScenarioError: naming the step and the number.
    """
    if scenario.account is not None and scenario.account not in world.accounts:
        raise ScenarioError("%s: account: %d is not an account of the world"
                            % (scenario.path, scenario.account))
    tables = {"buddy": world.people, "group": world.groups, "discussion": world.discussions}
    for step in scenario.steps:
        where = "%s: step %d" % (scenario.path, step.number)
        if step.sender is not None and step.sender not in world.people:
            raise ScenarioError("%s: from: nobody %d in the world" % (where, step.sender))
        if step.chat is not None and step.chat[1] not in tables[step.chat[0]]:
            raise ScenarioError("%s: no %s %d in the world" % (where, step.chat[0],
                                                               step.chat[1]))


class _StepFailed(Exception):
    """A step did not hold; the message says what happened instead."""


class _Run:
    """The steps of one scenario on a Simulation, with the transcript's notes."""

    def __init__(self, scenario: Scenario, sim: Simulation, watcher: Watcher) -> None:
        self.scenario, self.sim, self.watcher = scenario, sim, watcher
        self.control = sim.control
        self.started = time.monotonic()
        self.notes = []                 # (time.monotonic(), text)
        self.chat = None                # the chat of the latest say
        self.taken = set()              # seqs of replies already matched

    def note(self, text: str) -> None:
        self.notes.append((time.monotonic(), text))

    async def step(self, step: Step) -> None:
        try:
            await getattr(self, "_" + step.action)(step)
        except (SimulatorError, NoReply) as error:
            raise _StepFailed(str(error)) from None

    async def _say(self, step: Step) -> None:
        self.chat = step.chat
        group = step.chat[1] if step.chat[0] == "group" else None
        discussion = step.chat[1] if step.chat[0] == "discussion" else None
        await self.control.call_async("say", self.sim.say_body(
            step.sender, step.text, group=group, discussion=discussion))

    def _next_reply(self, chat) -> Optional[dict]:
        for seen in self.watcher.seen:
            event = seen.event
            if event["seq"] not in self.taken and self.sim.is_reply(event, chat):
                self.taken.add(event["seq"])
                return event
        return None

    async def _expect(self, step: Step) -> None:
        chat = step.chat or self.chat
        event = await self.watcher.wait(lambda: self._next_reply(chat), step.seconds)
        if event is None:
            raise _StepFailed("the bot sent nothing to %s within %g s%s"
                              % (self.sim.name(chat), step.seconds, self._elsewhere()))
        if step.action == "expect" and event["text"] != step.text:
            raise _StepFailed("expected %s\n     got %s" % (_quoted(step.text),
                                                           _quoted(event["text"])))
        if step.action == "expect_match" and not re.search(step.pattern, event["text"]):
            raise _StepFailed("expected a match of /%s/\n     got %s"
                              % (step.pattern, _quoted(event["text"])))

    _expect_match = _expect

    def _elsewhere(self) -> str:
        other = ["%s: %s" % (self.sim.name(event_chat(s.event)), _quoted(s.event["text"]))
                 for s in self.watcher.seen
                 if s.event["seq"] not in self.taken and self.sim.is_reply(s.event)]
        return "; it sent elsewhere: " + ", ".join(other[-3:]) if other else ""

    async def _silence(self, step: Step) -> None:
        chat = step.chat or self.chat
        event = await self.watcher.wait(lambda: self._next_reply(chat), step.seconds)
        if event is not None:
            raise _StepFailed("expected silence, the bot said %s" % _quoted(event["text"]))

    async def _polls(self) -> int:
        answer = await self.control.call_async("state")
        return answer["accounts"][str(self.sim.account)].get("polls", 0)

    async def _recover(self, step: Step, polls: int, what: str) -> None:
        if not step.recover:
            return
        began = time.monotonic()
        await self.sim.online(step.recover, after_polls=polls)
        self.note("-- the bot's account polls again, %.1f s after the %s"
                  % (time.monotonic() - began, what))

    async def _kick(self, step: Step) -> None:
        polls = await self._polls()
        await self.control.call_async("kick", {"account": self.sim.account})
        self.note("-- kick: the simulator kicks account %d" % self.sim.account)
        await self._recover(step, polls, "kick")

    async def _rotate(self, step: Step) -> None:
        polls = await self._polls()
        await self.control.call_async("rotate", {"account": self.sim.account})
        self.note("-- rotate: the next poll answers 116 with a new ptwebqq")
        await self._recover(step, polls, "rotation")

    async def _outage(self, step: Step) -> None:
        polls = await self._polls()
        await self.control.call_async("offline", {"seconds": step.seconds})
        self.sim.outage_ends = time.monotonic() + step.seconds
        self.note("-- outage: the simulator refuses every connection for %g s" % step.seconds)
        await asyncio.sleep(step.seconds)
        self.note("-- the outage ends")
        await self._recover(step, polls, "outage")

    async def _fault(self, step: Step) -> None:
        await self.control.call_async("fault", step.fault)
        self.note("-- fault: %s" % json.dumps(step.fault, sort_keys=True))

    async def _pause(self, step: Step) -> None:
        await asyncio.sleep(step.seconds)

    def transcript(self) -> List[str]:
        """Every message seen and every note, in the order they happened."""
        lines = [(s.arrived, self._line(s.event)) for s in self.watcher.seen]
        lines += self.notes
        lines.sort(key=lambda pair: pair[0])
        return ["+%6.2f s  %s" % (max(0.0, when - self.started), text) for when, text in lines]

    def _line(self, event: dict) -> str:
        sim = self.sim
        text = "".join(p[1] if p[0] == "text" else "[face:%d]" % p[1] if p[0] == "face"
                       else "[picture %s]" % p[1] for p in event["pieces"])
        sender = sim.name(("buddy", event["sender"]))
        chat = event_chat(event)
        if chat[0] == "buddy":
            where = "%s → %s" % (sender, sim.name(chat) if event["direction"] == "out"
                                  else sim.name(("buddy", event["account"])))
        else:
            where = "%s · %s" % (sim.name(chat), sender)
        dropped = " (dropped by the server: %s)" % event["dropped"] if event["dropped"] else ""
        return "%s: %s%s" % (where, text, dropped)


async def _run_steps(scenario: Scenario, sim: Simulation, result: Result) -> None:
    async with Watcher(sim.harness.feed_url, sim.control.token) as watcher:
        run = _Run(scenario, sim, watcher)
        try:
            for step in scenario.steps:
                text = describe(step, sim.name, run.chat)
                run.note("step %d: %s" % (step.number, text))
                await run.step(step)
        except _StepFailed as failure:
            result.outcome, result.step, result.reason = FAILED, step, str(failure)
            result.step_text = text
        finally:
            result.transcript = run.transcript()


def run_scenario(scenario: Scenario, directory, **harness_options) -> Result:
    """Run one scenario on a fresh simulator and webqq (``Harness(directory,
    **harness_options)``); returns its Result, never raises for the bot's faults."""
    result = Result(scenario)
    started = time.monotonic()
    if scenario.account is not None:
        harness_options["account"] = scenario.account
    try:
        harness = Harness(Path(directory), **harness_options)
        harness.start()
    except HarnessError as error:
        result.outcome, result.reason = ERROR, str(error)
        result.seconds = time.monotonic() - started
        return result
    try:
        asyncio.run(_run_steps(scenario, Simulation(harness, scenario.timeout), result))
    except Exception:                   # a bug of ours: reported, the other scenarios run
        result.outcome = ERROR
        result.reason = "the runner failed:\n" + traceback.format_exc()
    finally:
        if result.outcome != PASSED:
            result.log_tail = harness.output_tail(LOG_LINES)
        harness.stop()
        result.seconds = time.monotonic() - started
    return result
