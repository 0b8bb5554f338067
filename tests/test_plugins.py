"""Plugin dispatch, in process: filters, commands, isolation, timeouts, loading, builtin."""
import asyncio
import logging
import sys
import textwrap

import pytest

from webqq.plugins import Dispatcher, Event, Message, Plugin, PluginError, format_duration


class Outbox:
    """Stands in for the daemon's send: records (chat, target, text)."""

    def __init__(self):
        self.sent = []

    def __call__(self, chat, target, text):
        self.sent.append((chat, target, text))


def buddy(text, sender=20001):
    return Message(chat="buddy", text=text, sender=sender, reply_to=sender)


def group(text, number=30001, sender=20002):
    return Message(chat="group", text=text, sender=sender, group=number, reply_to=number)


def dispatcher_with(*plugins, **options):
    outbox = Outbox()
    dispatcher = Dispatcher(outbox, **options)
    dispatcher.plugins = list(plugins)
    return dispatcher, outbox


@pytest.fixture
def run(io_loop):
    """``run(coroutine)``: its result, on the test's IOLoop."""
    return lambda coroutine: io_loop.run_sync(lambda: coroutine)


def test_filters_by_kind_group_sender_and_text(run):
    plugin = Plugin("p")
    seen = []

    @plugin.on_message(kinds="group", group=30001, sender=(20002, 20003), text=r"^hi (\w+)")
    def greet(ctx):
        seen.append(ctx.match.group(1))
        ctx.reply("hello " + ctx.match.group(1))

    dispatcher, outbox = dispatcher_with(plugin)
    run(dispatcher.dispatch(group("hi bob")))
    run(dispatcher.dispatch(group("hi eve", number=30002)))     # another group
    run(dispatcher.dispatch(group("hi joe", sender=20001)))     # another sender
    run(dispatcher.dispatch(buddy("hi amy", sender=20002)))     # another chat
    run(dispatcher.dispatch(group("oh hi zed")))                # pattern not found
    assert seen == ["bob"]
    assert outbox.sent == [("group", 30001, "hello bob")]


def test_commands_need_the_prefix_and_a_word_boundary(run):
    plugin = Plugin("p")

    @plugin.command("echo")
    def echo(ctx):
        ctx.reply("[%s]" % ctx.args)

    dispatcher, outbox = dispatcher_with(plugin, prefix="#")
    for text in ("#echo  a b ", "#echo", "  #echo x", "#echoes", "!echo x", "echo x"):
        run(dispatcher.dispatch(buddy(text)))
    assert [text for _, _, text in outbox.sent] == ["[a b]", "[]", "[x]"]


def test_stop_ends_the_run_and_order_is_plugins_then_registration(run):
    first, second = Plugin("first"), Plugin("second")
    calls = []

    @first.on_message()
    def a(ctx):
        calls.append("a")

    @first.on_message(text="stop")
    def b(ctx):
        calls.append("b")
        ctx.stop()

    @second.on_message()
    def c(ctx):
        calls.append("c")

    dispatcher, _ = dispatcher_with(first, second)
    assert run(dispatcher.dispatch(buddy("go"))) == 2
    assert run(dispatcher.dispatch(buddy("stop"))) == 2
    assert calls == ["a", "c", "a", "b"]


def test_a_raising_handler_is_logged_and_the_next_one_runs(caplog, run):
    plugin = Plugin("bad")

    @plugin.on_message()
    def explode(ctx):
        raise ValueError("boom")

    good = Plugin("good")

    @good.on_message()
    def answer(ctx):
        ctx.reply("still here")

    dispatcher, outbox = dispatcher_with(plugin, good)
    with caplog.at_level(logging.ERROR, logger="webqq.plugins"):
        assert run(dispatcher.dispatch(buddy("x"))) == 2
    assert outbox.sent == [("buddy", 20001, "still here")]
    record, = caplog.records
    assert record.getMessage() == "plugin bad: handler test_a_raising_handler_is_logged_" \
                                  "and_the_next_one_runs.<locals>.explode failed"
    assert record.exc_info[0] is ValueError
    assert dispatcher.counts["errors"] == 1 and dispatcher.counts["handled"] == 1


def test_a_coroutine_handler_is_awaited_and_a_slow_one_times_out(caplog, run):
    plugin = Plugin("slow")
    finished = []

    @plugin.on_message(timeout=0.05)
    async def hang(ctx):
        await asyncio.sleep(3600)

    @plugin.on_message()
    async def quick(ctx):
        await asyncio.sleep(0)
        finished.append(ctx.message.text)
        ctx.reply("done")

    dispatcher, outbox = dispatcher_with(plugin)
    with caplog.at_level(logging.ERROR, logger="webqq.plugins"):
        run(dispatcher.dispatch(buddy("x")))
    assert finished == ["x"] and outbox.sent == [("buddy", 20001, "done")]
    assert caplog.records[0].getMessage().endswith(".hang timed out after 0.05 s")
    assert dispatcher.counts["timeouts"] == 1


def test_the_default_timeout_is_the_dispatchers(run):
    plugin = Plugin("slow")

    @plugin.on_message()
    async def hang(ctx):
        await asyncio.sleep(3600)

    dispatcher, _ = dispatcher_with(plugin, handler_timeout=0.01)
    run(dispatcher.dispatch(buddy("x")))
    assert dispatcher.counts["timeouts"] == 1


def test_send_goes_anywhere_and_reply_prefers_the_reply_hook(run):
    plugin = Plugin("p")

    @plugin.on_message()
    def fan_out(ctx):
        ctx.send("group", 30001, "to the group")
        ctx.reply("back")

    replies = []
    dispatcher, outbox = dispatcher_with(plugin,
                                         reply=lambda m, text: replies.append((m, text)))
    message = buddy("x")
    run(dispatcher.dispatch(message))
    assert outbox.sent == [("group", 30001, "to the group")]
    assert replies == [(message, "back")]
    assert dispatcher.counts["replies"] == 2


def test_event_handlers_get_their_kinds_only_and_cannot_reply(run):
    plugin = Plugin("p")
    seen = []

    @plugin.on_event("state")
    def state(ctx):
        seen.append(ctx.event.data["new"])
        ctx.reply("no")

    @plugin.on_event()
    def every(ctx):
        seen.append(ctx.event.kind)

    dispatcher, outbox = dispatcher_with(plugin)
    run(dispatcher.dispatch_event(Event("state", {"new": "online"})))
    run(dispatcher.dispatch_event(Event("sent")))
    assert seen == ["online", "state", "sent"]
    assert dispatcher.counts["errors"] == 1          # reply() on an event raised
    assert run(dispatcher.dispatch(buddy("x"))) == 0  # event handlers see no messages


def test_registration_mistakes_raise():
    plugin = Plugin("p")
    with pytest.raises(ValueError, match="not chats"):
        plugin.on_message(kinds=("buddy", "email"))
    with pytest.raises(ValueError, match="one word"):
        plugin.command("two words")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path for plugin modules written by the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written = []

    def write(name, source):
        (tmp_path / (name + ".py")).write_text(textwrap.dedent(source))
        written.append(name)
    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_load_skips_and_reports_a_plugin_that_fails(plugin_dir, caplog):
    plugin_dir("wq_fails_import", "raise ImportError('missing dependency')\n")
    plugin_dir("wq_no_setup", "X = 1\n")
    plugin_dir("wq_setup_raises", "def setup(plugin):\n    raise KeyError('token')\n")
    plugin_dir("wq_fine", "def setup(plugin):\n    plugin.command('hi')(lambda c: None)\n")
    dispatcher = Dispatcher(Outbox())
    with caplog.at_level(logging.ERROR, logger="webqq.plugins"):
        problems = dispatcher.load(["wq_fails_import", "wq_no_setup", "wq_setup_raises",
                                    "wq_fine", "wq_absent_module"])
    assert problems == [
        "wq_fails_import: failed to import: ImportError: missing dependency",
        "wq_no_setup: has no setup(plugin) function",
        "wq_setup_raises: setup failed: KeyError: 'token'",
        "wq_absent_module: failed to import: ModuleNotFoundError: No module named "
        "'wq_absent_module'",
    ]
    assert [plugin.name for plugin in dispatcher.plugins] == ["wq_fine"]
    assert len(caplog.records) == 4


def test_reload_imports_the_source_again_with_new_settings(plugin_dir, run):
    plugin_dir("wq_greeter", """
        def setup(plugin):
            @plugin.command("greet")
            def greet(ctx):
                ctx.reply("v1 " + plugin.settings.get("name", "?"))
    """)
    dispatcher = Dispatcher(Outbox())
    dispatcher.load(["wq_greeter"], {"wq_greeter": {"name": "ann"}})
    run(dispatcher.dispatch(buddy("!greet")))
    plugin_dir("wq_greeter", """
        def setup(plugin):
            @plugin.command("greet")
            def greet(ctx):
                ctx.reply("version 2 " + plugin.settings.get("name", "?"))
    """)
    # (A different size: the cached bytecode of a same-size file written within the same
    # second would be taken for current.)
    dispatcher.load(["wq_greeter"], {"wq_greeter": {"name": "bob"}}, reload=True)
    run(dispatcher.dispatch(buddy("!greet")))
    assert [text for _, _, text in dispatcher.send.sent] == ["v1 ann", "version 2 bob"]


# -- the builtin plugin -----------------------------------------------------------------

def builtin(prefix="!", settings=None, clock=None):
    outbox = Outbox()
    options = {"clock": clock} if clock else {}
    dispatcher = Dispatcher(outbox, prefix=prefix, **options)
    assert dispatcher.load(["webqq.plugins.builtin"],
                           {"webqq.plugins.builtin": settings or {}}) == []
    return dispatcher, outbox


def test_builtin_answers_in_buddy_group_and_discussion_chats_not_sessions(run):
    dispatcher, outbox = builtin()
    discussion = Message(chat="discussion", text="!ping", sender=20003, discussion=77,
                         reply_to=77)
    session = Message(chat="session", text="!ping", sender=20003, reply_to=20003)
    for message in (buddy("!ping"), group("!ping"), discussion, session):
        run(dispatcher.dispatch(message))
    assert outbox.sent == [("buddy", 20001, "pong"), ("group", 30001, "pong"),
                           ("discussion", 77, "pong")]


def test_builtin_echo_uptime_help_and_prefix(run):
    now = [1000.0]
    dispatcher, outbox = builtin(prefix="%%", clock=lambda: now[0])
    now[0] += 3725
    for text in ("%%echo  hello  world", "%%echo", "%%uptime", "%%help", "!ping"):
        run(dispatcher.dispatch(buddy(text)))
    assert [text for _, _, text in outbox.sent] == [
        "hello  world", "up 1h 2m 5s",
        "%%ping - answers pong\n%%uptime - how long the bot has been running\n"
        "%%help - this list\n%%echo - answers the TEXT that follows it"]


def test_builtin_help_lists_other_plugins_too(plugin_dir, run):
    plugin_dir("wq_weather", """
        def setup(plugin):
            plugin.command("weather", help="today's weather")(lambda ctx: None)
            plugin.on_message(text="rain", help="mention rain: an umbrella")(lambda c: None)
    """)
    outbox = Outbox()
    dispatcher = Dispatcher(outbox)
    dispatcher.load(["webqq.plugins.builtin", "wq_weather"])
    run(dispatcher.dispatch(buddy("!help")))
    assert outbox.sent[0][2].endswith("\n!weather - today's weather\n"
                                      "mention rain: an umbrella")


def test_builtin_ping_reply_setting_and_unknown_settings(run, caplog):
    with caplog.at_level(logging.WARNING, logger="webqq.plugins.builtin"):
        dispatcher, outbox = builtin(settings={"ping_reply": "PONG", "greeting": "hi"})
    run(dispatcher.dispatch(buddy("!ping")))
    assert outbox.sent == [("buddy", 20001, "PONG")]
    assert [r.getMessage() for r in caplog.records] == [
        "[plugin:builtin]: unknown setting greeting ignored (known: ping_reply)"]


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.9, 61, 3725, 2 * 86400 + 1)] == [
        "0s", "59s", "1m 1s", "1h 2m 5s", "2d 0h 0m 1s"]


def test_reply_without_a_target_raises(run):
    plugin = Plugin("p")

    @plugin.on_message()
    def answer(ctx):
        ctx.reply("x")

    dispatcher, outbox = dispatcher_with(plugin)
    run(dispatcher.dispatch(Message(chat="session", text="x")))
    assert outbox.sent == [] and dispatcher.counts["errors"] == 1
    with pytest.raises(PluginError):
        from webqq.plugins import Context
        Context(dispatcher, plugin).reply("nothing to reply to")
