"""webqq.testing's pytest plugin: the ``webqq_sim`` fixture with webqq's own plugins in
this suite, and a bot author's test file (README's) against a real aiocqhttp bot, run
by pytest in a child process as the bot's own CI would."""
import re
import textwrap
from pathlib import Path

import pytest

from webqq.testing import NoReply, SimulatorError

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.rst"


async def test_webqq_sim_talks_to_webqq_s_own_plugins(webqq_sim):
    """No bot configured: the built-in plugins answer. No marker: the plugin runs it."""
    webqq_sim.say(20001, "!ping")
    assert await webqq_sim.replies(20001) == ["pong"]
    webqq_sim.say_in_group(30001, 20002, "!echo one")
    webqq_sim.say_in_group(30001, 20002, "!echo two")
    assert await webqq_sim.replies(group=30001, count=2) == ["one", "two"]
    webqq_sim.say_in_discussion(40001, 20003, ["!echo ", ["face", 14], " hi"])
    assert await webqq_sim.replies(discussion=40001) == ["[face:14] hi"]
    with pytest.raises(NoReply) as silent:
        await webqq_sim.replies(20001, timeout=0.3)
    assert str(silent.value) == "0 of 1 reply from the bot (10001) to Alice (20001) " \
                                "within 0.3 s"
    with pytest.raises(SimulatorError) as refused:
        webqq_sim.say_in_group(39999, 20002, "hi")
    assert str(refused.value) == "/_sim/say: group: no group 39999 in the world (HTTP 400)"
    assert [m["text"] for m in webqq_sim.sent()] == ["pong", "one", "two", "[face:14] hi"]


async def test_webqq_sim_recovers_from_each_fault(webqq_sim):
    polls = webqq_sim.state()["polls"]
    webqq_sim.kick()
    await webqq_sim.online(after_polls=polls)
    webqq_sim.fault("/channel/poll2", "status", status=502, count=1)
    polls = webqq_sim.state()["polls"]
    webqq_sim.outage(1)
    with pytest.raises(SimulatorError, match="cannot be reached"):
        webqq_sim.say(20001, "!ping")
    await webqq_sim.online(after_polls=polls)
    webqq_sim.say(20001, "!ping")
    assert await webqq_sim.replies(20001) == ["pong"]
    # A rotation is answered at once; webqq's next poll follows a few seconds later
    # (after a quick empty answer it waits a tenth of the hold), so no waiting here.
    webqq_sim.rotate()
    assert webqq_sim.state()["state"] == "online"


# A bot author's files: the bot (aiocqhttp's README style), the pytest settings and
# the tests, as README.rst shows them.
BOT = textwrap.dedent("""\
    import sys
    from aiocqhttp import CQHttp

    bot = CQHttp(access_token=sys.argv[2])

    @bot.on_message("private")
    async def echo(event):
        await bot.send(event, "you said: " + event.raw_message)

    @bot.on_message("group")
    async def group(event):
        info = await bot.get_login_info()
        return {"reply": "%s heard you" % info["nickname"]}

    bot.run(host="127.0.0.1", port=int(sys.argv[1]))
    """)

SETTINGS = textwrap.dedent("""\
    [pytest]
    webqq_bot = {python} bot.py {port} {token}
    webqq_bot_url = ws://127.0.0.1:{port}/ws/
    """)

TESTS = textwrap.dedent("""\
    async def test_the_bot_echoes_a_friend(webqq_sim):
        webqq_sim.say(20001, "hello bot")
        assert await webqq_sim.replies(20001) == ["you said: hello bot"]

    async def test_the_bot_answers_in_a_group(webqq_sim):
        webqq_sim.say_in_group(30001, 20002, "anyone?")
        assert await webqq_sim.replies(group=30001) == ["@Bob webqq heard you"]
    """)


def test_readme_shows_the_files_this_test_runs():
    text = README.read_text(encoding="utf-8")
    for block in (SETTINGS, TESTS):
        indented = textwrap.indent(block, "    ")
        assert indented in text, "README.rst lacks:\n" + indented


def test_a_bot_author_tests_an_aiocqhttp_bot_in_a_few_lines(pytester):
    pytest.importorskip("aiocqhttp")
    pytester.makefile(".py", bot=BOT)
    pytester.makeini(SETTINGS)
    pytester.makepyfile(test_bot=TESTS)
    result = pytester.runpytest_subprocess("-p", "webqq.testing.plugin", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(passed=2)


def test_a_wrong_answer_fails_the_bot_s_test_readably(pytester):
    pytest.importorskip("aiocqhttp")
    pytester.makefile(".py", bot=BOT.replace('"you said: "', '"You said: "'))
    pytester.makeini(SETTINGS)
    pytester.makepyfile(test_bot=TESTS.split("\n\n")[0])
    result = pytester.runpytest_subprocess("-p", "webqq.testing.plugin", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(failed=1)
    assert re.search(r"AssertionError: assert \['You said: hello bot'\] == "
                     r"\['you said: hello bot'\]", result.stdout.str())
