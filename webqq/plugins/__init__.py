"""Plugins: the bot's behaviour, as message and event handlers loaded by module name.

What it is for: a plugin is a module named in ``[bot] plugins`` that defines
``setup(plugin)``; ``setup`` registers handlers on the ``Plugin`` it is given::

    def setup(plugin):
        @plugin.command("ping", help="answers pong")
        def ping(ctx):
            ctx.reply(plugin.settings.get("ping_reply", "pong"))

        @plugin.on_message(kinds=("group",), text=r"^hello")
        async def hello(ctx):          # a handler may be a coroutine
            ctx.reply("hello, %s" % ctx.message.sender_name)
            ctx.stop()                 # no later handler sees this message

``Dispatcher`` loads the plugins (``load``) and hands every received ``Message`` and
every ``Event`` to the matching handlers in order: plugins as listed, handlers as
registered, one after the other (a coroutine handler is awaited before the next one
starts, so it may ``stop()`` after an ``await``); different messages are dispatched
concurrently. Each handler runs isolated: an exception, or a coroutine running past its
``timeout`` (``HANDLER_TIMEOUT`` unless the decorator says otherwise), is logged with the
plugin's name and the next handler runs. A handler sees a ``Context``: the message,
``reply(text)`` (to the chat the message came from), ``send(chat, target, text)``
(anywhere), ``stop()``, the regex ``match``, the command's ``args``, and through
``ctx.plugin.settings`` the keys of its ``[plugin:NAME]`` section.

Pictures, files and requests (issue 14)::

    @plugin.on_message()
    async def save_pictures(ctx):
        for picture in ctx.message.pictures:           # pieces: texts, Faces, pictures
            data = await ctx.fetch_picture(picture)
        ctx.reply(["got it", UploadPicture.from_bytes(data)])   # text and pictures

    @plugin.on_event("friend_request")
    async def friends(ctx):
        await ctx.answer_friend_request(ctx.event.data["qq"] in TRUSTED)

    @plugin.on_event("file")
    async def files(ctx):
        if ctx.event.data["change"] == "offer":
            path = await ctx.accept_file()

The event kinds beyond the client's lifecycle: ``"friend_request"``,
``"friend_change"``, ``"group_member"``, ``"group_request"``,
``"group_request_answer"``, ``"file"`` (``webqq.client.events`` documents each one's
``data``), and ``"notice"`` for any poll event as the server sent it. Those actions go
through ``Actions`` (``ctx.actions``), which the daemon gives the ``Dispatcher``.

What it must never do: talk to the network or the client directly. Replies and sends go
through the ``send`` function the daemon gives the ``Dispatcher``, which puts them in
the daemon's durable queue (a message with pictures goes through ``Actions`` instead:
the store keeps no picture bytes); the plugin layer knows nothing of uins, sockets or
the protocol.
"""
import asyncio
import importlib
import inspect
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import (Any, Awaitable, Callable, Collection, Dict, List, Mapping, Optional,
                    Pattern, Tuple, Union)

from webqq.client.pictures import ReceivedPicture
from webqq.plugins.actions import Actions
from webqq.qq import Face, UploadPicture

__all__ = ["CHATS", "Message", "Event", "Context", "Handler", "Plugin", "PluginError",
           "Dispatcher", "SendFunction", "HANDLER_TIMEOUT", "format_duration", "Actions",
           "Face", "UploadPicture", "ReceivedPicture"]

log = logging.getLogger("webqq.plugins")

#: The chats a message can come from, and the ``chat`` values of ``send``.
CHATS = ("buddy", "group", "discussion", "session")

#: Seconds a handler may run before it is cancelled and reported.
HANDLER_TIMEOUT = 10.0

#: ``send(chat, target, text)``: queue ``text`` for ``target``: a friend's QQ number, a
#: group's number or a discussion's id (session chats can only be replied to).
SendFunction = Callable[[str, int, str], Any]


class PluginError(Exception):
    """Raised when a plugin module cannot be used: it fails to import, has no ``setup``
    or its ``setup`` raises. ``str`` names the module and the cause."""


@dataclass(frozen=True)
class Message:
    """A received chat message, named the way people name things (QQ numbers).

    Attributes:
        chat: one of ``CHATS``.
        text: the message's text (faces and pictures left out).
        sender: the sender's QQ number, None when the server did not say.
        sender_name: a name to address the sender by ("" when unknown).
        group: the group number for a group message, else None.
        discussion: the discussion's id (``did``) for a discussion message, else None
            (WebQQ gives discussions no public number).
        reply_to: where ``Context.reply`` sends: the sender for buddy and session chats,
            the group or discussion otherwise. None: cannot be answered.
        time: when it was sent, unix seconds (0 when unknown).
        pieces: the content in order: texts, ``Face`` pieces and ``ReceivedPicture``
            pieces (``ctx.fetch_picture`` gives a picture's bytes).
        raw: the client's own event object, for plugins that need more.
    """
    chat: str
    text: str
    sender: Optional[int] = None
    sender_name: str = ""
    group: Optional[int] = None
    discussion: Optional[int] = None
    reply_to: Optional[int] = None
    time: float = 0
    pieces: Tuple[Any, ...] = field(default=(), repr=False)
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def pictures(self) -> Tuple[ReceivedPicture, ...]:
        """The pictures among ``pieces``, in order."""
        return tuple(p for p in self.pieces if isinstance(p, ReceivedPicture))


@dataclass(frozen=True)
class Event:
    """Something else the client reported. ``kind`` is one of the client's event kinds
    (``"state"``, ``"online"``, ``"login_failed"``, ``"reconnect"``, ``"contacts"``,
    ``"notice"``, ``"sent"``, ``"captcha"``, ``"friend_request"``, ``"friend_change"``,
    ``"group_member"``, ``"group_request"``, ``"group_request_answer"``, ``"file"``: see
    ``webqq.client``) and ``data`` holds the fields of its event object (``data["new"]``
    of a ``"state"`` event, ``data["qq"]`` of a ``"friend_request"``)."""
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


class Context:
    """What a handler gets: the message or event and the ways to act on it.

    Attributes:
        plugin: the ``Plugin`` the handler belongs to (``.settings``, ``.name``).
        message: the ``Message`` (None for an event handler).
        event: the ``Event`` (None for a message handler).
        match: the ``re.Match`` of the handler's text pattern, or None.
        args: for a command, the text after the command word, stripped ("" if none).
        dispatcher: the ``Dispatcher``, for ``uptime()``, ``commands()`` and the prefix.
    """

    def __init__(self, dispatcher: "Dispatcher", plugin: "Plugin",
                 message: Optional[Message] = None, event: Optional[Event] = None,
                 match: Optional["re.Match"] = None, args: str = "") -> None:
        self.dispatcher = dispatcher
        self.plugin = plugin
        self.message = message
        self.event = event
        self.match = match
        self.args = args
        self.stopped = False

    def reply(self, text: Any) -> Any:
        """Answers in the chat the message came from. Returns what ``send`` returns.

        ``text`` is a text, or pieces: texts, ``Face`` and ``UploadPicture`` pieces
        (those go through ``actions``).

        Raises PluginError when there is no message to answer or it cannot be answered;
        ``PictureError`` (a ValueError) for a picture the chat cannot carry.
        """
        if self.message is None:
            raise PluginError("%s: an event cannot be replied to" % self.plugin.name)
        if not isinstance(text, str):
            self.dispatcher.counts["replies"] += 1
            return self.actions.reply(self.message, text)
        if self.dispatcher.reply is not None:
            self.dispatcher.counts["replies"] += 1
            return self.dispatcher.reply(self.message, text)
        if self.message.reply_to is None:
            raise PluginError("%s: cannot tell where to reply" % self.plugin.name)
        return self.send(self.message.chat, self.message.reply_to, text)

    def send(self, chat: str, target: int, text: Any) -> Any:
        """Sends ``text`` to ``target`` in ``chat``: a friend's QQ number (``"buddy"``),
        a group's number (``"group"``) or a discussion's id (``"discussion"``).
        ``text`` may be pieces, as for ``reply``.
        Returns what ``send`` returns (the daemon: the message_id of its queued row)."""
        if chat not in CHATS:
            raise ValueError("chat %r is not one of %s" % (chat, ", ".join(CHATS)))
        self.dispatcher.counts["replies"] += 1
        if not isinstance(text, str):
            return self.actions.send(chat, target, text)
        return self.dispatcher.send(chat, target, text)

    @property
    def actions(self) -> Actions:
        """The account's other actions (``Actions``).

        Raises PluginError when the dispatcher was made without them.
        """
        if self.dispatcher.actions is None:
            raise PluginError("%s: no account actions here (the Dispatcher has none)"
                              % self.plugin.name)
        return self.dispatcher.actions

    async def fetch_picture(self, picture: ReceivedPicture) -> bytes:
        """The bytes of one of ``message.pictures`` (fetched once, then cached)."""
        return await self.actions.fetch_picture(picture)

    def _event_of(self, *kinds: str) -> "Event":
        if self.event is None or self.event.kind not in kinds:
            raise PluginError("%s: this needs a %s event" % (self.plugin.name,
                                                             " or ".join(kinds)))
        return self.event

    async def accept_file(self) -> Any:
        """Take the file this ``"file"`` event offers; returns where it was written."""
        return await self.actions.accept_file(self._event_of("file"))

    async def refuse_file(self) -> None:
        """Decline the file this ``"file"`` event offers."""
        await self.actions.refuse_file(self._event_of("file"))

    async def download_file(self) -> Any:
        """Fetch the offline file of this ``"file"`` event; returns where it went."""
        return await self.actions.download_file(self._event_of("file"))

    async def answer_friend_request(self, accept: bool, *, markname: str = "",
                                    reason: str = "") -> Any:
        """Accept (and add back) or refuse this ``"friend_request"``."""
        return await self.actions.answer_friend_request(
            self._event_of("friend_request"), accept, markname=markname, reason=reason)

    async def answer_group_request(self, accept: bool, *, reason: str = "") -> Any:
        """Let in or refuse the requester of this ``"group_request"``."""
        return await self.actions.answer_group_request(
            self._event_of("group_request"), accept, reason=reason)

    def stop(self) -> None:
        """No later handler sees this message or event."""
        self.stopped = True


HandlerFunction = Callable[[Context], Union[None, Awaitable[None]]]


def _as_set(value: Union[None, int, str, Collection]) -> Optional[frozenset]:
    if value is None:
        return None
    if isinstance(value, (int, str)):
        return frozenset((value,))
    return frozenset(value)


@dataclass
class Handler:
    """One registered handler and its filters; None means "any".

    Attributes:
        function: called with a ``Context``; may be a coroutine function.
        kinds: message chats (``CHATS``) or event kinds it wants.
        groups: group numbers it wants (messages from other chats never match).
        senders: sender QQ numbers it wants.
        pattern: a regex searched in the message text.
        command: the command word (without prefix) for a command handler.
        help: one line for ``!help``; commands without one are still listed.
        timeout: seconds a coroutine handler may run; None: the dispatcher's default.
        is_event: an event handler rather than a message handler.
    """
    function: HandlerFunction
    kinds: Optional[frozenset] = None
    groups: Optional[frozenset] = None
    senders: Optional[frozenset] = None
    pattern: Optional[Pattern] = None
    command: Optional[str] = None
    help: str = ""
    timeout: Optional[float] = None
    is_event: bool = False

    @property
    def name(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))

    def matches_message(self, message: Message, prefix: str) -> Tuple[bool, Any, str]:
        """``(matched, regex match, command args)`` for ``message``."""
        if self.is_event:
            return False, None, ""
        if self.kinds is not None and message.chat not in self.kinds:
            return False, None, ""
        if self.groups is not None and message.group not in self.groups:
            return False, None, ""
        if self.senders is not None and message.sender not in self.senders:
            return False, None, ""
        args = ""
        if self.command is not None:
            text = message.text.strip()
            word = prefix + self.command
            if text != word and not (text.startswith(word) and text[len(word)].isspace()):
                return False, None, ""
            args = text[len(word):].strip()
        match = None
        if self.pattern is not None:
            match = self.pattern.search(message.text)
            if match is None:
                return False, None, ""
        return True, match, args


class Plugin:
    """What a plugin module's ``setup`` registers its handlers on.

    Attributes:
        name: the module name as listed in ``[bot] plugins``.
        settings: the keys of its ``[plugin:NAME]`` section (str to str, maybe empty).
        handlers: the registered ``Handler`` objects, in order.
    """

    def __init__(self, name: str, settings: Optional[Mapping[str, str]] = None) -> None:
        self.name = name
        self.settings: Mapping[str, str] = dict(settings or {})
        self.handlers: List[Handler] = []

    def on_message(self, *, kinds: Union[None, str, Collection[str]] = None,
                   group: Union[None, int, Collection[int]] = None,
                   sender: Union[None, int, Collection[int]] = None,
                   text: Union[None, str, Pattern] = None, help: str = "",
                   timeout: Optional[float] = None
                   ) -> Callable[[HandlerFunction], HandlerFunction]:
        """Decorator: call the function for each message that passes every filter.

        Args:
            kinds: chats to accept (``"buddy"``, ``"group"``, ...); None: all.
            group: a group number or several; None: any chat.
            sender: a sender QQ number or several; None: anyone.
            text: a regex (string or compiled) searched in the text; None: any text.
            help: one line that ``!help`` shows.
            timeout: seconds a coroutine handler may run before it is cancelled and
                reported (the next handler then runs); None: ``HANDLER_TIMEOUT``.
        """
        kinds_set = _as_set(kinds)
        if kinds_set is not None and not kinds_set <= set(CHATS):
            raise ValueError("kinds %s: not chats (%s)" % (sorted(kinds_set), ", ".join(CHATS)))
        pattern = re.compile(text) if isinstance(text, str) else text

        def register(function: HandlerFunction) -> HandlerFunction:
            self.handlers.append(Handler(function, kinds=kinds_set, groups=_as_set(group),
                                         senders=_as_set(sender), pattern=pattern,
                                         help=help, timeout=timeout))
            return function
        return register

    def command(self, word: str, *, kinds: Union[None, str, Collection[str]] = None,
                group: Union[None, int, Collection[int]] = None,
                sender: Union[None, int, Collection[int]] = None, help: str = "",
                timeout: Optional[float] = None
                ) -> Callable[[HandlerFunction], HandlerFunction]:
        """Decorator: call the function for a message that is the command prefix plus
        ``word``, alone or followed by blanks and arguments (``ctx.args``). Filters and
        ``timeout`` as in ``on_message``; ``help`` is the line ``!help`` shows."""
        if not word or re.search(r"\s", word):
            raise ValueError("command %r: one word, no blanks" % word)
        register_message = self.on_message(kinds=kinds, group=group, sender=sender,
                                           help=help, timeout=timeout)

        def register(function: HandlerFunction) -> HandlerFunction:
            register_message(function)
            self.handlers[-1].command = word
            return function
        return register

    def on_event(self, *kinds: str, timeout: Optional[float] = None
                 ) -> Callable[[HandlerFunction], HandlerFunction]:
        """Decorator: call the function for events of these kinds (none given: all);
        ``timeout`` as in ``on_message``."""
        def register(function: HandlerFunction) -> HandlerFunction:
            self.handlers.append(Handler(function, kinds=frozenset(kinds) or None,
                                         timeout=timeout, is_event=True))
            return function
        return register


class Dispatcher:
    """Loads plugins and runs their handlers for each message and event.

    Args:
        send: ``send(chat, target, text)``, how messages leave (see ``SendFunction``).
        reply: ``reply(message, text)``, how answers leave; None: ``send`` to the
            message's ``reply_to``.
        actions: the account's other actions (``Actions``), for ``ctx.actions``;
            None: handlers that ask for them get a ``PluginError``.
        prefix: what starts a command (``[bot] command_prefix``).
        handler_timeout: seconds a handler may run before it is cancelled.
        clock: returns seconds for ``uptime()`` (default ``time.monotonic``).

    ``counts`` holds what happened: messages, events, handled, replies, errors, timeouts.
    """

    def __init__(self, send: SendFunction, *,
                 reply: Optional[Callable[[Message, str], Any]] = None, prefix: str = "!",
                 handler_timeout: float = HANDLER_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic,
                 actions: Optional[Actions] = None) -> None:
        self.send = send
        self.reply = reply
        self.actions = actions
        self.prefix = prefix
        self.handler_timeout = handler_timeout
        self.plugins: List[Plugin] = []
        self.counts: Dict[str, int] = dict.fromkeys(
            ("messages", "events", "handled", "replies", "errors", "timeouts"), 0)
        self._clock = clock
        self._started = clock()

    def uptime(self) -> float:
        """Seconds since the dispatcher was made (the daemon makes it at start)."""
        return self._clock() - self._started

    # Loading.

    def load(self, names: Collection[str],
             settings: Optional[Mapping[str, Mapping[str, str]]] = None, *,
             reload: bool = False) -> List[str]:
        """Imports each named module (again from source when ``reload``) and calls its
        ``setup`` with a fresh ``Plugin``; the loaded plugins replace the current ones.

        A module that fails is logged with its traceback and skipped; the others load.
        Returns the problems, one line per failed module ("" entries never).
        """
        settings = settings or {}
        plugins, problems = [], []
        for name in names:
            try:
                plugins.append(self._load_one(name, settings.get(name, {}), reload))
            except PluginError as error:
                log.error("plugin %s", error, exc_info=error.__cause__ is not None)
                problems.append(str(error))
        self.plugins = plugins
        log.info("plugins loaded: %s", ", ".join(p.name for p in plugins) or "none")
        return problems

    @staticmethod
    def _load_one(name: str, settings: Mapping[str, str], reload: bool) -> Plugin:
        try:
            if reload and name in sys.modules:
                module = importlib.reload(sys.modules[name])
            else:
                module = importlib.import_module(name)
        except Exception as error:
            raise PluginError("%s: failed to import: %s: %s"
                              % (name, type(error).__name__, error)) from error
        setup = getattr(module, "setup", None)
        if not callable(setup):
            raise PluginError("%s: has no setup(plugin) function" % name)
        plugin = Plugin(name, settings)
        try:
            setup(plugin)
        except Exception as error:
            raise PluginError("%s: setup failed: %s: %s"
                              % (name, type(error).__name__, error)) from error
        return plugin

    def commands(self) -> List[Tuple[str, str]]:
        """``(prefixed command, help)`` of every loaded command, in order; then the
        help lines of pattern handlers that have one, as ``("", help)``."""
        listed = []
        for plugin in self.plugins:
            for handler in plugin.handlers:
                if handler.command is not None:
                    listed.append((self.prefix + handler.command, handler.help))
                elif handler.help:
                    listed.append(("", handler.help))
        return listed

    # Dispatching.

    async def dispatch(self, message: Message) -> int:
        """Runs every matching message handler in order until one calls ``stop()``.

        Returns how many handlers ran (a failed one counts).
        """
        self.counts["messages"] += 1
        ran = 0
        for plugin in self.plugins:
            for handler in plugin.handlers:
                matched, match, args = handler.matches_message(message, self.prefix)
                if not matched:
                    continue
                context = Context(self, plugin, message=message, match=match, args=args)
                ran += 1
                await self._run(plugin, handler, context)
                if context.stopped:
                    return ran
        return ran

    async def dispatch_event(self, event: Event) -> int:
        """Runs every event handler that wants ``event.kind``; returns how many ran."""
        self.counts["events"] += 1
        ran = 0
        for plugin in self.plugins:
            for handler in plugin.handlers:
                if not handler.is_event or (handler.kinds is not None
                                            and event.kind not in handler.kinds):
                    continue
                context = Context(self, plugin, event=event)
                ran += 1
                await self._run(plugin, handler, context)
                if context.stopped:
                    return ran
        return ran

    async def _run(self, plugin: Plugin, handler: Handler, context: Context) -> None:
        """Runs one handler; its exception or timeout is logged and goes no further."""
        timeout = handler.timeout if handler.timeout is not None else self.handler_timeout
        try:
            result = handler.function(context)
            if inspect.isawaitable(result):
                await asyncio.wait_for(_awaited(result), timeout)
        except asyncio.TimeoutError:
            self.counts["timeouts"] += 1
            log.error("plugin %s: handler %s timed out after %g s", plugin.name,
                      handler.name, timeout)
        except Exception:
            self.counts["errors"] += 1
            log.exception("plugin %s: handler %s failed", plugin.name, handler.name)
        else:
            self.counts["handled"] += 1


async def _awaited(awaitable: Awaitable) -> Any:
    """``asyncio.wait_for`` wants a coroutine or future; a handler may return either."""
    return await awaitable


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h 2m 5s"``; days when there are any (``"2d 0h 0m 1s"``)."""
    whole = int(seconds)
    days, whole = divmod(whole, 86400)
    hours, whole = divmod(whole, 3600)
    minutes, secs = divmod(whole, 60)
    if days:
        return "%dd %dh %dm %ds" % (days, hours, minutes, secs)
    if hours:
        return "%dh %dm %ds" % (hours, minutes, secs)
    if minutes:
        return "%dm %ds" % (minutes, secs)
    return "%ds" % secs
