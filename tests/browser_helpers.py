"""Real-browser helpers: Debian's Chromium, headless, driven over the DevTools protocol (a
WebSocket; no WebDriver, no new dependency). ``Browser.launch`` starts it, ``open`` gives a
``Page`` (evaluate script, wait for text without polling, click, type, screenshot);
``artifacts`` is where screenshots are kept (``$WEBQQ_ARTIFACTS`` when set); the
``browser_path`` fixture skips, saying so, where no Chromium is installed.
"""
import asyncio
import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from tornado import websocket

#: Seconds any one wait of the browser test may take.
WAIT = 20.0


def chromium() -> "str | None":
    """The Chromium to drive: ``$WEBQQ_CHROMIUM``, else the first on PATH."""
    named = os.environ.get("WEBQQ_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class DevToolsError(Exception):
    """A DevTools command failed, or the page threw."""


class Browser:
    """A headless Chromium child process and its DevTools connection.

    ``await Browser.launch(executable, profile)`` starts it with a fresh profile and no
    network of its own (no sync, no component updates, no QUIC); ``await close()``
    ends it. ``send(method, params, session)`` runs one DevTools command.
    """

    def __init__(self, process, connection) -> None:
        self.process = process
        self.connection = connection
        self.stderr_tail = []           # the browser's last lines, for a failure message
        self._ids = 0
        self._pending = {}              # command id -> Future
        self._waiters = []              # (method, session, Future) of awaited events
        self._reader = asyncio.ensure_future(self._read())
        self._drainer = asyncio.ensure_future(self._drain())

    @classmethod
    async def launch(cls, executable: str, profile: Path, size=(1280, 800)) -> "Browser":
        process = await asyncio.create_subprocess_exec(
            executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--remote-debugging-port=0", "--user-data-dir=%s" % profile,
            "--window-size=%d,%d" % size, "about:blank",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        lines = []
        try:
            while True:
                line = await asyncio.wait_for(process.stderr.readline(), WAIT)
                if not line:
                    raise DevToolsError("Chromium exited: %s" % b"".join(lines[-10:]).decode())
                lines.append(line)
                text = line.decode("utf-8", "replace")
                if text.startswith("DevTools listening on "):
                    url = text.split(" on ", 1)[1].strip()
                    break
            connection = await websocket.websocket_connect(url, max_message_size=64 << 20)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        return cls(process, connection)

    async def _drain(self) -> None:
        # Chromium writes to stderr all along: keep the pipe empty, remember the end.
        while True:
            line = await self.process.stderr.readline()
            if not line:
                return
            self.stderr_tail = (self.stderr_tail + [line.decode("utf-8", "replace")])[-20:]

    async def _read(self) -> None:
        while True:
            frame = await self.connection.read_message()
            if frame is None:
                break
            message = json.loads(frame)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    if "error" in message:
                        future.set_exception(DevToolsError(message["error"].get("message")))
                    else:
                        future.set_result(message.get("result", {}))
                continue
            for waiter in list(self._waiters):
                method, session, future = waiter
                if message.get("method") == method and message.get("sessionId") == session:
                    self._waiters.remove(waiter)
                    if not future.done():
                        future.set_result(message.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DevToolsError("the browser closed the connection"))

    def expect(self, method: str, session=None) -> asyncio.Future:
        """A Future of the next event ``method`` (of ``session``); ask before causing it."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session, future))
        return future

    async def send(self, method: str, params=None, session=None) -> dict:
        self._ids += 1
        message = {"id": self._ids, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        await self.connection.write_message(json.dumps(message))
        return await asyncio.wait_for(future, WAIT)

    async def open(self, url: str) -> "Page":
        """A new tab showing ``url``, once its load event fired."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        loaded = self.expect("Page.loadEventFired", page.session)
        await page.send("Page.navigate", {"url": url})
        await asyncio.wait_for(loaded, WAIT)
        return page

    async def close(self) -> None:
        try:
            await self.send("Browser.close")
        except (DevToolsError, asyncio.TimeoutError, websocket.WebSocketClosedError):
            self.process.kill()
        await self.process.wait()
        self.connection.close()
        await asyncio.gather(self._reader, self._drainer, return_exceptions=True)


class Page:
    """One tab: evaluate script, wait for the DOM, type, click, take screenshots."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, params=None) -> dict:
        return await self.browser.send(method, params, self.session)

    async def evaluate(self, expression: str):
        """The value of ``expression`` (a Promise is awaited); raises if it throws."""
        answer = await self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description")
                                or details.get("text"))
        return answer["result"].get("value")

    async def wait_for_text(self, selector: str, text: str, timeout: float = WAIT) -> str:
        """The text of the first ``selector`` element containing ``text``, once there.

        The page itself waits (a MutationObserver), so nothing is polled.
        """
        script = """new Promise((resolve, reject) => {
            const find = () => Array.from(document.querySelectorAll(%(selector)s))
                .find((node) => node.textContent.includes(%(text)s));
            const done = (node) => { observer.disconnect(); clearTimeout(timer);
                                     resolve(node.textContent); };
            const observer = new MutationObserver(() => { const node = find();
                                                          if (node) done(node); });
            const timer = setTimeout(() => { observer.disconnect();
                reject(new Error("no " + %(selector)s + " containing " + %(text)s)); }, %(ms)d);
            const now = find();
            if (now) done(now);
            else observer.observe(document.body, {childList: true, subtree: true,
                                                  characterData: true, attributes: true});
        })""" % {"selector": json.dumps(selector), "text": json.dumps(text),
                 "ms": timeout * 1000}
        return await self.evaluate(script)

    async def click(self, selector: str, text: str = "") -> None:
        """A real mouse click in the middle of the first ``selector`` holding ``text``."""
        await self.wait_for_text(selector, text)
        box = await self.evaluate("""(() => {
            const node = Array.from(document.querySelectorAll(%s))
                .find((n) => n.textContent.includes(%s));
            node.scrollIntoView({block: "center"});
            const r = node.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        })()""" % (json.dumps(selector), json.dumps(text)))
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {
                "type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    async def type(self, text: str) -> None:
        """Types ``text`` into the focused element, then presses Enter."""
        await self.send("Input.insertText", {"text": text})
        for kind in ("keyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", {
                "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                "nativeVirtualKeyCode": 13, **({"text": "\r"} if kind == "keyDown" else {})})

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def artifacts(tmp_path: Path) -> Path:
    """Where screenshots are kept: ``$WEBQQ_ARTIFACTS`` (CI uploads it) or tmp_path."""
    directory = Path(os.environ.get("WEBQQ_ARTIFACTS") or tmp_path / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser_path():
    found = chromium()
    if found is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (Debian) runs "
                    "the browser test; .ci/run installs it")
    return found
