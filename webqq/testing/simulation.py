"""What a bot's test does with the simulated QQ: people speak, the bot's replies are read.

simulation: ``Simulation`` wraps a started ``Harness``. People of the simulator's world
speak to the bot's account (``say``, ``say_in_group``, ``say_in_discussion``); ``await
replies(...)`` returns what the bot sent to a chat since the previous call, waiting for
it over the simulator's feed (no polling); ``kick``, ``rotate``, ``outage``, ``fault``
and ``captcha`` are the faults of /_sim/.

The control calls are plain blocking requests to the simulator, which runs in another
process and answers at once; they never wait on the test's event loop. It never reaches
into webqq: what the bot did is what the simulator saw.
"""
import asyncio
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .feed import Watcher
from .harness import Harness, SimulatorError

__all__ = ["NoReply", "Simulation", "DEFAULT_TIMEOUT"]

#: Seconds ``replies`` waits by default.
DEFAULT_TIMEOUT = 10.0
#: Seconds between two looks at /_sim/state while waiting for the bot to be back online.
STATE_INTERVAL = 0.1

Chat = Tuple[str, int]          # ("buddy", qq), ("group", number), ("discussion", number)
Text = Union[str, Sequence]     # a text, or pieces: ["hi ", ["face", 14]]


class NoReply(AssertionError):
    """Raised by ``replies`` when the bot did not send what was awaited in time; the
    message names the chat, what did arrive, and what the bot sent elsewhere."""


class Simulation:
    """The simulator, webqq and the bot of one test, as the test talks to them.

    Args:
        harness: a started Harness.
        timeout: default seconds ``replies`` waits.
    """

    def __init__(self, harness: Harness, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.harness = harness
        self.control = harness.control
        self.world = harness.world
        #: The bot's QQ number.
        self.account = harness.account
        self.timeout = timeout
        self._taken = set()             # feed seqs of replies already returned
        #: time.monotonic() when the latest outage ends: feeds and state wait for it.
        self.outage_ends = 0.0

    # --- names ----------------------------------------------------------------------------

    def name(self, chat: Chat) -> str:
        """``Alice (20001)``, ``测试群 (30001)``: a chat as people read it."""
        kind, number = chat
        if kind == "group" and number in self.world.groups:
            return "%s (%d)" % (self.world.groups[number].name, number)
        if kind == "discussion" and number in self.world.discussions:
            return "%s (%d)" % (self.world.discussions[number].name, number)
        return "%s (%d)" % (self.world.person(number).nick, number)

    # --- people speak ---------------------------------------------------------------------

    def say_body(self, sender: int, text: Text, *, group: Optional[int] = None,
                 discussion: Optional[int] = None) -> Dict[str, Any]:
        """The /_sim/say body for ``sender`` saying ``text`` (a string, or pieces)."""
        body: Dict[str, Any] = {"to": self.account, "from": sender}
        if isinstance(text, str):
            body["text"] = text
        else:
            body["content"] = list(text)
        if group is not None:
            body["group"] = group
        if discussion is not None:
            body["discussion"] = discussion
        return body

    def say(self, friend: int, text: Text) -> None:
        """``friend`` (a QQ number) sends the bot ``text`` in a buddy chat.

        Raises:
            SimulatorError: the simulator refused it (unknown person, the account is not
                logged in) or is in an outage.
        """
        self.control.call("say", self.say_body(friend, text))

    def say_in_group(self, group: int, member: int, text: Text) -> None:
        """``member`` says ``text`` in group ``group`` (its public number)."""
        self.control.call("say", self.say_body(member, text, group=group))

    def say_in_discussion(self, discussion: int, member: int, text: Text) -> None:
        """``member`` says ``text`` in discussion ``discussion`` (its world number)."""
        self.control.call("say", self.say_body(member, text, discussion=discussion))

    # --- the bot answers ------------------------------------------------------------------

    @staticmethod
    def chat(friend: Optional[int] = None, group: Optional[int] = None,
             discussion: Optional[int] = None) -> Chat:
        """The chat named by exactly one of its arguments."""
        given = [(kind, number) for kind, number in (("buddy", friend), ("group", group),
                                                      ("discussion", discussion))
                 if number is not None]
        if len(given) != 1:
            raise TypeError("name one chat: a friend, group= or discussion=")
        return given[0]

    def is_reply(self, event: dict, chat: Optional[Chat] = None) -> bool:
        """Whether a feed event is a message the bot sent (to ``chat``) and the server
        delivered."""
        if event["direction"] != "out" or event["account"] != self.account or event["dropped"]:
            return False
        return chat is None or event_chat(event) == chat

    async def replies(self, friend: Optional[int] = None, *, group: Optional[int] = None,
                      discussion: Optional[int] = None, count: int = 1,
                      timeout: Optional[float] = None) -> List[str]:
        """The texts of the next ``count`` messages the bot sends to a chat.

        Messages already returned by an earlier call are not returned again; one sent
        before this call (even before the ``say``) counts. Faces read ``[face:N]`` in the
        text, as webqq writes them.

        Args:
            friend: the buddy chat with this QQ number; or
            group: the group with this number; or
            discussion: the discussion with this number.
            count: how many messages to wait for.
            timeout: seconds (default: the simulation's, 10).

        Raises:
            NoReply: fewer than ``count`` arrived in time.
        """
        chat = self.chat(friend, group, discussion)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        watcher = await self._watch(deadline)
        found = []

        def look():
            for seen in watcher.seen:
                event = seen.event
                if len(found) < count and event["seq"] not in self._taken \
                        and self.is_reply(event, chat):
                    self._taken.add(event["seq"])
                    found.append(event["text"])
            return found if len(found) >= count else None
        try:
            await watcher.wait(look, max(0.0, deadline - time.monotonic()))
            if len(found) < count:
                raise NoReply(self._no_reply(chat, count, found, timeout, watcher))
        finally:
            await watcher.close()
        return found

    def _no_reply(self, chat: Chat, count: int, found: list, timeout: float,
                  watcher: Watcher) -> str:
        message = "%d of %d repl%s from the bot (%d) to %s within %g s%s" % (
            len(found), count, "y" if count == 1 else "ies", self.account, self.name(chat),
            timeout, ": %r" % found if found else "")
        elsewhere = ["to %s: %r" % (self.name(event_chat(s.event)), s.event["text"])
                     for s in watcher.seen
                     if self.is_reply(s.event) and s.event["seq"] not in self._taken]
        if elsewhere:
            message += "; meanwhile it sent %s" % ", ".join(elsewhere[-5:])
        return message

    async def _watch(self, deadline: float) -> Watcher:
        """A started Watcher; through an outage, once the simulator listens again."""
        if self.outage_ends > time.monotonic():
            await asyncio.sleep(self.outage_ends - time.monotonic())
        while True:
            watcher = Watcher(self.harness.feed_url, self.control.token)
            try:
                await watcher.start()
                return watcher
            except OSError:
                if time.monotonic() > deadline:
                    raise SimulatorError("the simulator's feed cannot be reached") from None
                await asyncio.sleep(0.2)

    # --- faults ---------------------------------------------------------------------------

    def kick(self, notice: bool = False) -> None:
        """The held or next poll answers 121 (after a kick_message item with
        ``notice``, after which webqq stays offline); webqq relinks."""
        self.control.call("kick", {"account": self.account, "kick_message": notice})

    def rotate(self) -> None:
        """The held or next poll answers 116 with a new ptwebqq."""
        self.control.call("rotate", {"account": self.account})

    def captcha(self, code: str) -> None:
        """The next login check of the account requires a captcha showing ``code``."""
        self.control.call("captcha", {"account": self.account, "code": code})

    def outage(self, seconds: float) -> None:
        """Both of the simulator's ports refuse connections for ``seconds``."""
        self.control.call("offline", {"seconds": seconds})
        self.outage_ends = time.monotonic() + seconds

    def fault(self, path: str = "/channel/poll2", kind: str = "status", **options) -> None:
        """Inject a fault on a protocol path: ``kind`` "status" (``status=502``),
        "reset", "delay" (``seconds=``) or "retcode" (``retcode=``), ``count`` times."""
        self.control.call("fault", dict(options, path=path, kind=kind))

    # --- state ----------------------------------------------------------------------------

    def state(self) -> Dict[str, Any]:
        """/_sim/state's entry for the bot's account (state, status, polls, sent…)."""
        return self.control.account_state(self.account)

    def sent(self) -> List[Dict[str, Any]]:
        """Everything the bot's account sent, in order (/_sim/sent)."""
        return self.control.call("sent?account=%d" % self.account)

    async def online(self, timeout: float = 60.0, *, after_polls: Optional[int] = None) -> None:
        """Wait until the account is online and polling (after a kick, a rotation or an
        outage); with ``after_polls``, until its poll count also passed that number (a
        count taken before the fault: a poll since).

        Raises:
            NoReply: it was not back within ``timeout`` seconds (after the outage).
        """
        if self.outage_ends > time.monotonic():
            await asyncio.sleep(self.outage_ends - time.monotonic())
        deadline = time.monotonic() + timeout
        entry = None
        while True:
            try:
                answer = await self.control.call_async("state")
                entry = answer["accounts"][str(self.account)]
            except SimulatorError:
                pass                    # not listening yet
            else:
                if entry["state"] == "online" and entry.get("polling") and (
                        after_polls is None or entry.get("polls", 0) > after_polls):
                    return
            if time.monotonic() > deadline:
                raise NoReply("the bot's account %d was not back online within %g s "
                              "(state: %s)" % (self.account, timeout,
                                               entry["state"] if entry else "unreachable"))
            await asyncio.sleep(STATE_INTERVAL)


def event_chat(event: dict) -> Chat:
    """The chat of a feed event, as ``Simulation.chat`` names it."""
    chat = event["chat"]
    if chat["kind"] == "buddy":
        return ("buddy", chat["peer"])
    return (chat["kind"], chat["number"])
