"""Scenario files: who says what to the bot, what it must answer, and faults between.

scenario: reads a scenario file (TOML, with ``tomllib`` or, before Python 3.11,
``tomli``) into a ``Scenario`` of ``Step`` values, and refuses anything it does not
understand with one ``ScenarioError`` naming the file, the step and the key. It runs
nothing (``runner.py`` does) and knows no world: names are checked when a run starts.

The format, one scenario per file::

    name = "ping survives a kick"   # optional; default: the file's name
    account = 10001                 # optional: the bot's account (default: the world's first)
    timeout = 10                    # optional: seconds an expect waits by default

    [[step]]
    say = "!ping"                   # a person speaks: a text, or pieces ["hi ", ["face", 14]]
    from = 20001                    # who (a QQ number); a buddy chat with the bot, unless
                                    # group = 30001 or discussion = 40001 names the chat

    [[step]]
    expect = "pong"                 # the next message the bot sends to that chat, exactly
    within = 5                      # seconds (default: timeout)

    [[step]]
    expect_match = "^up \\d+"       # or: the next message matches this regular expression
                                    # (Python's re.search)

    [[step]]
    kick = true                     # faults: kick = true, rotate = true, outage = SECONDS,
    recover = 60                    # fault = {path = "/channel/poll2", kind = "status",
                                    #          status = 502, count = 2};
                                    # kick, rotate and outage then wait up to recover
                                    # seconds (default 60; 0: don't) until the bot's account
                                    # polls again (after the outage has ended)
    [[step]]
    silence = 3                     # the bot sends nothing to the chat for 3 seconds
    [[step]]
    pause = 1                       # just wait

``expect``, ``expect_match`` and ``silence`` read the chat of the latest ``say`` unless
the step names one (``to = QQ``, ``group = N`` or ``discussion = N``).
"""
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:                                                   # pragma: no cover (3.9, 3.10)
    import tomli as tomllib

__all__ = ["ACTIONS", "DEFAULT_RECOVER", "DEFAULT_TIMEOUT", "Scenario", "ScenarioError", "Step",
           "chats_of", "load_scenario", "parse_scenario"]

#: Seconds an expect waits when neither the step nor the scenario says.
DEFAULT_TIMEOUT = 10.0
#: Seconds a kick, rotate or outage step waits for the bot to poll again.
DEFAULT_RECOVER = 60.0
#: The longest wait a step may ask for, in seconds.
LONGEST = 3600.0

#: Each action and the other keys its step may have.
ACTIONS = {
    "say": {"from", "group", "discussion"},
    "expect": {"to", "group", "discussion", "within"},
    "expect_match": {"to", "group", "discussion", "within"},
    "silence": {"to", "group", "discussion"},
    "kick": {"recover"},
    "rotate": {"recover"},
    "outage": {"recover"},
    "fault": set(),
    "pause": set(),
}
_FAULT_KEYS = {"path", "kind", "status", "count", "seconds", "retcode", "host"}
_FAULT_KINDS = ("status", "reset", "delay", "retcode")
_TOP_KEYS = {"name", "account", "timeout", "step"}

Chat = Tuple[str, int]


class ScenarioError(ValueError):
    """Raised for a scenario file that cannot be read or says something unknown; the
    message starts with the file and, where it applies, the step number."""


@dataclass(frozen=True)
class Step:
    """One step. ``action`` is a key of ACTIONS; the fields it uses are set.

    ``number`` counts from 1 in file order. ``chat`` is None where the step takes the
    chat of the latest say.
    """

    number: int
    action: str
    text: Any = None                    # say: a str or pieces; expect: the text
    pattern: Optional[str] = None       # expect_match
    sender: Optional[int] = None        # say: the "from" QQ number
    chat: Optional[Chat] = None         # ("buddy", qq) / ("group", n) / ("discussion", n)
    seconds: Optional[float] = None     # within, silence, outage, pause
    recover: float = DEFAULT_RECOVER    # kick, rotate, outage
    fault: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A scenario file, read."""

    path: Path
    name: str
    account: Optional[int]
    timeout: float
    steps: Tuple[Step, ...]


def load_scenario(path) -> Scenario:
    """Read and check a scenario file.

    Raises:
        ScenarioError: the file cannot be read, is not TOML, or says something unknown.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ScenarioError("%s: cannot be read: %s" % (path, error.strerror or error)) from None
    except UnicodeDecodeError:
        raise ScenarioError("%s: not UTF-8 text" % path) from None
    return parse_scenario(text, path)


def parse_scenario(text: str, path) -> Scenario:
    """``load_scenario`` for text already read; ``path`` names it in errors."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError("%s: not TOML: %s" % (path, error)) from None
    where = str(path)
    _refuse_unknown(where, data, _TOP_KEYS)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError("%s: name: a non-empty string" % where)
    account = None if "account" not in data else _number(where, "account", data["account"])
    timeout = DEFAULT_TIMEOUT if "timeout" not in data else _seconds(where, "timeout",
                                                                     data["timeout"])
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError("%s: no steps: add [[step]] tables (say, expect, kick…)" % where)
    read = []
    for number, table in enumerate(steps, 1):
        read.append(_step("%s: step %d" % (where, number), number, table, timeout))
    if not any(step.action == "say" for step in read):
        raise ScenarioError("%s: nobody says anything: add a step with say = …" % where)
    first_say = next(step.number for step in read if step.action == "say")
    for step in read:
        if step.chat is None and step.action in ("expect", "expect_match", "silence") \
                and step.number < first_say:
            raise ScenarioError("%s: step %d: %s: which chat? name one (to, group or "
                                "discussion) or say something first"
                                % (where, step.number, step.action))
    return Scenario(path=path, name=name.strip(), account=account, timeout=timeout,
                    steps=tuple(read))


def _step(where: str, number: int, table, timeout: float) -> Step:
    if not isinstance(table, dict):
        raise ScenarioError("%s: a table of keys ([[step]]), not %r" % (where, table))
    actions = [key for key in table if key in ACTIONS]
    if not actions:
        raise ScenarioError("%s: no action: one of %s" % (where, ", ".join(ACTIONS)))
    if len(actions) > 1:
        raise ScenarioError("%s: one action per step, not %s" % (where, " and ".join(actions)))
    action = actions[0]
    _refuse_unknown(where, table, ACTIONS[action] | {action})
    value = table[action]
    chat = _chat(where, table)
    if action == "say":
        if "from" not in table:
            raise ScenarioError("%s: say: who says it? add from = QQ" % where)
        if "to" in table:
            raise ScenarioError("%s: say: to is the bot; name a group or a discussion, or "
                                "leave it out for a buddy chat" % where)
        sender = _number(where, "from", table["from"])
        return Step(number, action, text=_said(where, value), sender=sender,
                    chat=chat or ("buddy", sender))
    if action in ("expect", "expect_match"):
        if not isinstance(value, str):
            raise ScenarioError("%s: %s: a string" % (where, action))
        within = _seconds(where, "within", table["within"]) if "within" in table else timeout
        if action == "expect":
            return Step(number, action, text=value, chat=chat, seconds=within)
        try:
            re.compile(value)
        except re.error as error:
            raise ScenarioError("%s: expect_match: not a regular expression: %s"
                                % (where, error)) from None
        return Step(number, action, pattern=value, chat=chat, seconds=within)
    if action == "silence":
        return Step(number, action, chat=chat, seconds=_seconds(where, action, value))
    recover = _seconds(where, "recover", table["recover"], zero=True) \
        if "recover" in table else DEFAULT_RECOVER
    if action in ("kick", "rotate"):
        if value is not True:
            raise ScenarioError("%s: %s: write %s = true" % (where, action, action))
        return Step(number, action, recover=recover)
    if action == "outage":
        return Step(number, action, seconds=_seconds(where, action, value), recover=recover)
    if action == "pause":
        return Step(number, action, seconds=_seconds(where, action, value))
    return Step(number, action, fault=_fault(where, value))


def _chat(where: str, table: dict) -> Optional[Chat]:
    named = [(kind, key) for kind, key in (("buddy", "to"), ("group", "group"),
                                           ("discussion", "discussion")) if key in table]
    if len(named) > 1:
        raise ScenarioError("%s: one chat: %s" % (where, " or ".join(k for _, k in named)))
    if not named:
        return None
    kind, key = named[0]
    return kind, _number(where, key, table[key])


def _said(where: str, value):
    if isinstance(value, str):
        if not value:
            raise ScenarioError("%s: say: an empty message" % where)
        return value
    if isinstance(value, list) and value and all(
            isinstance(piece, str) or (isinstance(piece, list) and len(piece) == 2
                                       and piece[0] == "face" and isinstance(piece[1], int))
            for piece in value):
        return value
    raise ScenarioError("%s: say: a string, or a list of strings and [\"face\", N]" % where)


def _fault(where: str, value) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError("%s: fault: a table such as {path = \"/channel/poll2\", kind = "
                            "\"status\", status = 502}" % where)
    _refuse_unknown(where + ": fault", value, _FAULT_KEYS)
    if not isinstance(value.get("path"), str) or not value["path"].startswith("/"):
        raise ScenarioError("%s: fault: path: a protocol path such as /channel/poll2" % where)
    if value.get("kind") not in _FAULT_KINDS:
        raise ScenarioError("%s: fault: kind: one of %s" % (where, ", ".join(_FAULT_KINDS)))
    return dict(value)


def _number(where: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 32:
        raise ScenarioError("%s: %s: a QQ, group or discussion number, not %r"
                            % (where, key, value))
    return value


def _seconds(where: str, key: str, value, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (0 <= value if zero else 0 < value) or value > LONGEST:
        raise ScenarioError("%s: %s: a number of seconds, %s 0 and at most %g, not %r"
                            % (where, key, "at least" if zero else "more than", LONGEST, value))
    return float(value)


def _refuse_unknown(where: str, table: dict, known: set) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ScenarioError("%s: unknown key %s (known here: %s)" % (
            where, ", ".join(repr(k) for k in unknown), ", ".join(sorted(known))))


def chats_of(scenario: Scenario) -> List[Chat]:
    """Every chat a scenario names, for checking them against a world."""
    return [step.chat for step in scenario.steps if step.chat is not None]
