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
from webqq.plugins import Context, Plugin, format_duration

#: The chats the built-in commands answer in.
CHATS = ("buddy", "group", "discussion")

#: Keys ``[plugin:builtin]`` understands, with their defaults.
SETTINGS = {"ping_reply": "pong"}


def setup(plugin: Plugin) -> None:
    """Registers the four commands; unknown ``[plugin:builtin]`` keys are an error."""
    unknown = sorted(set(plugin.settings) - set(SETTINGS))
    if unknown:
        raise ValueError("unknown setting %s (known: %s)"
                         % (", ".join(unknown), ", ".join(SETTINGS)))
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
