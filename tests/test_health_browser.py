"""The captcha page in a real browser (Debian's Chromium, headless, over DevTools:
``browser_helpers``). A ``webqq run`` child with its API on loopback; the simulator
demands a verify code; a person opens ``/captcha``, gives the token in the form the page
asks for it with, sees the image, types a wrong code (the page shows the new image and
why), then the right one, and the page says online. Screenshots are kept as artifacts.
"""
import asyncio

import pytest
from browser_helpers import WAIT, Browser, DevToolsError, artifacts, browser_path  # noqa: F401
from daemon_helpers import QQ, Daemon, daemon_simulator, wait_for, write_config

#: The image's width once loaded: the simulator draws 4 glyphs of 6 blocks of 8 pixels.
IMAGE_LOADED = "document.querySelector('img.captcha').naturalWidth"


async def submit(page, text: str) -> None:
    """Type ``text`` and Enter into the focused field, and wait for the next page."""
    loaded = page.browser.expect("Page.loadEventFired", page.session)
    await page.type(text)
    await asyncio.wait_for(loaded, WAIT)


async def wait_across_loads(page, selector: str, text: str) -> str:
    """``page.wait_for_text``, again when the page itself loads another (as it does for
    a new image) while it waits."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        try:
            return await page.wait_for_text(selector, text)
        except DevToolsError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            try:        # the next page, unless it has loaded already
                await asyncio.wait_for(page.browser.expect("Page.loadEventFired",
                                                           page.session), 1.0)
            except asyncio.TimeoutError:
                pass


@pytest.fixture
def daemon(tmp_path):
    running = Daemon(write_config(tmp_path, api={"listen": "127.0.0.1:0"}))
    yield running
    running.stop()


@pytest.mark.gen_test(timeout=120)
async def test_a_person_answers_the_captcha_in_the_browser(browser_path, daemon, tmp_path):
    api = daemon.wait_online()["api"]["url"]
    token = (tmp_path / "run" / "api-token").read_text().strip()
    sim = daemon_simulator(daemon)
    sim._call("captcha", {"account": QQ, "code": "ABCD"})
    sim._call("expire", {"account": QQ})
    wait_for(lambda: daemon.status().get("state") == "waiting_captcha", "the captcha")
    wait_for(lambda: "or at %s/captcha?account=10001 (with the API's token)" % api
             in daemon.log_text(), "the log line that names the page")

    browser = await Browser.launch(browser_path, tmp_path / "profile")
    keep = artifacts(tmp_path)
    page = None
    try:
        page = await browser.open(api + "/captcha")
        await page.wait_for_text(".problem", "needs the API's access token")
        await page.click("input[name=access_token]")
        await submit(page, token)
        await page.wait_for_text("section.account .state", "waiting for a verify code "
                                                           "(image 1)")
        assert await page.evaluate(IMAGE_LOADED) > 0
        await page.screenshot(keep / "captcha-image-1.png")

        await page.click("input.code")
        await submit(page, "WXYZ")
        await page.wait_for_text("#message", "verify code entered for 10001")
        # The login starts over; the page finds the new image by itself.
        shown = await wait_across_loads(page, "section.account .state", "(image 2)")
        assert "the last one failed" in shown and "wrong" in shown.lower()
        assert await page.evaluate(IMAGE_LOADED) > 0
        await page.screenshot(keep / "captcha-image-2.png")

        await page.click("input.code")
        await submit(page, "ABCD")
        await wait_across_loads(page, "section.account .state", "online")
        assert await page.evaluate("document.querySelectorAll('form').length") == 0
        await page.screenshot(keep / "captcha-online.png")
        print("screenshots kept in %s" % keep)
    except Exception:
        if page is not None:
            await page.screenshot(keep / "captcha-failure.png")
        raise
    finally:
        await browser.close()
    wait_for(lambda: daemon.status().get("state") == "online", "the daemon online")
