"""The chat page in a real browser: Debian's Chromium, headless, driven over the DevTools
protocol (a WebSocket; no WebDriver, no new dependency).

A ``webqq run`` child process embeds the simulator, as a new user's daemon does; the
test opens its page, picks friend 20001, types ``!ping`` with real key events and waits
for ``pong`` to appear, then talks in a group, checks that markup in a message stays
text, kicks the account from the operator panel, and keeps screenshots as artifacts
(``$WEBQQ_ARTIFACTS`` when set, else the test's tmp dir; the path is printed).
Skipped, saying so, where no Chromium is installed (``apt-get install chromium``).
"""
import pytest
from browser_helpers import Browser, artifacts, browser_path  # noqa: F401 (a fixture)
from daemon_helpers import Daemon, wait_for, write_config


@pytest.fixture
def daemon(tmp_path):
    """``webqq run`` with the embedded simulator and the built-in plugins (!ping)."""
    running = Daemon(write_config(tmp_path, bot={"plugins": "webqq.plugins.builtin",
                                                 "send_interval": "0.5"}))
    yield running
    running.stop()


@pytest.mark.gen_test(timeout=120)
async def test_a_person_chats_with_the_bot_in_the_browser(browser_path, daemon, tmp_path):
    port = daemon.wait_online()["simulator"]["port"]
    # The line comes just after the status file says online: wait for it, not assume it.
    wait_for(lambda: "chat with the bot in a browser: http://127.0.0.1:%d/" % port
             in daemon.log_text(), "the chat page's log line")
    browser = await Browser.launch(browser_path, tmp_path / "profile")
    keep = artifacts(tmp_path)
    page = None
    try:
        page = await browser.open("http://127.0.0.1:%d/" % port)
        await page.wait_for_text("#link", "live")

        # Who am I: friend 20001. Then the bot's chat, and type.
        await page.click(".tab", "Who am I")
        await page.click("#list-people li", "(20001)")
        await page.click("#list-bots li", "(10001)")
        await page.click("#input")
        await page.type("!ping")
        await page.wait_for_text(".msg.mine .body", "!ping")
        assert await page.wait_for_text('.msg[data-direction="out"] .body', "pong") == "pong"
        await page.screenshot(keep / "chat-buddy.png")

        # The group: what Alice says and what the bot answers, markup kept as text.
        await page.click("#list-groups li", "测试群")
        await page.click("#input")
        await page.type("!echo <b>bold</b> & [face:14]")
        echoed = await page.wait_for_text('.msg[data-direction="out"] .body', "<b>bold</b>")
        assert echoed == "<b>bold</b> & [face:14]"  # the bot echoes the face as text
        assert await page.evaluate("document.querySelectorAll('#messages b').length") == 0
        assert await page.evaluate(
            "document.querySelectorAll('#messages .msg.mine svg.face').length") == 1
        assert await page.wait_for_text(".msg.mine .head", "Alice@work")
        await page.screenshot(keep / "chat-group.png")

        # The operator panel drives /_sim/ (with the page's token): kick, and webqq relinks.
        await page.click("#op-kick")
        await page.wait_for_text("#op-log li", "kick 10001: done")
        await page.click("#list-bots li", "(10001)")
        await page.click("#input")
        await page.type("!echo back after the kick")
        await page.wait_for_text('.msg[data-direction="out"] .body', "back after the kick")
        await page.screenshot(keep / "operator-kick.png")
        print("screenshots kept in %s" % keep)
    except Exception:
        if page is not None:
            await page.screenshot(keep / "failure.png")
        raise
    finally:
        await browser.close()
