"""The built-in commands: ping, uptime, help and echo, in buddy, group and discussion chats.

builtin: a plugin like any other (it only uses the ``Plugin`` API), so it doubles as the
example to copy. Commands start with ``[bot] command_prefix`` (default ``!``):

* ``!ping``: answers ``pong`` (or ``[plugin:builtin] ping_reply``);
* ``!uptime``: how long the bot has been running;
* ``!help``: the commands the loaded plugins answer;
* ``!echo TEXT``: answers TEXT.

It never answers temporary-session messages (strangers) and never sends anything
unasked.
"""
import logging

from webqq.plugins import Context, Plugin, format_duration

log = logging.getLogger("webqq.plugins.builtin")

#: The chats the built-in commands answer in.
CHATS = ("buddy", "group", "discussion")

#: Keys ``[plugin:builtin]`` understands, with their defaults.
SETTINGS = {"ping_reply": "pong"}


def setup(plugin: Plugin) -> None:
    """Registers the four commands. An unknown ``[plugin:builtin]`` key is logged and
    ignored: a typo there must not leave the bot without its basic commands."""
    unknown = sorted(set(plugin.settings) - set(SETTINGS))
    if unknown:
        log.warning("[plugin:builtin]: unknown setting %s ignored (known: %s)",
                    ", ".join(unknown), ", ".join(SETTINGS))
    ping_reply = plugin.settings.get("ping_reply", SETTINGS["ping_reply"])

    @plugin.command("ping", kinds=CHATS, help="answers %s" % ping_reply)
    def ping(ctx: Context) -> None:
        ctx.reply(ping_reply)

    @plugin.command("uptime", kinds=CHATS, help="how long the bot has been running")
    def uptime(ctx: Context) -> None:
        ctx.reply("up %s" % format_duration(ctx.dispatcher.uptime()))

    @plugin.command("help", kinds=CHATS, help="this list")
    def help_(ctx: Context) -> None:
        lines = ["%s - %s" % (word, text) if word and text else word or text
                 for word, text in ctx.dispatcher.commands()]
        ctx.reply("\n".join(lines))

    @plugin.command("echo", kinds=CHATS, help="answers the TEXT that follows it")
    def echo(ctx: Context) -> None:
        if ctx.args:
            ctx.reply(ctx.args)
