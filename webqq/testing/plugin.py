"""The pytest plugin of webqq.testing (entry point ``webqq.testing.plugin``).

plugin: gives a bot's tests the ``webqq_sim`` fixture, a ``Simulation`` with a fresh
simulator and webqq daemon per test, wired to the bot, and runs ``async def`` tests that
use it when no other plugin claims them (pytest-asyncio, anyio and pytest-tornado's
``gen_test`` still run theirs). Where the bot is comes from pytest's ini file or command
line::

    [pytest]
    webqq_bot = {python} bot.py {port}                ; started once per session, or
    webqq_bot_url = ws://127.0.0.1:{port}/ws/         ; a bot already running elsewhere
    webqq_token = change-me                           ; the OneBot access token

``webqq_bot`` is a command (``{port}``: a free port for the bot to listen on,
``{token}``: the access token, ``{api_url}``: webqq's OneBot HTTP API, ``{python}``: the
Python running pytest; the first three also in the environment as WEBQQ_BOT_PORT,
WEBQQ_TOKEN and WEBQQ_API_URL); ``webqq_bot_url`` is its
reverse WebSocket (``ws://``) or event POST (``http://``) URL. Without either, webqq
answers with its built-in plugins (``webqq_plugins`` overrides the plugins).
``webqq_world`` names a world file; ``webqq_timeout`` the seconds ``replies`` waits.

It never starts anything for a test that does not ask for ``webqq_sim``.
"""
import asyncio
import inspect
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional, Tuple

import pytest

from .harness import CHECK_INTERVAL, STARTUP_TIMEOUT, STOP_TIMEOUT, Harness, HarnessError, \
    free_port
from .simulation import DEFAULT_TIMEOUT, Simulation

# Markers of the plugins that run coroutine tests themselves.
_ASYNC_MARKERS = ("asyncio", "anyio", "trio", "gen_test")

_SETTINGS = (
    ("webqq_bot", "a command starting the bot: {port}, {token}, {api_url} and {python} "
                  "are filled in"),
    ("webqq_bot_url", "the bot's reverse WebSocket (ws://) or event POST (http://) URL; "
                      "{port} is webqq_bot's port"),
    ("webqq_token", "the OneBot access token (default: a new one per session)"),
    ("webqq_plugins", "webqq plugins to load, comma-separated (default: none with a bot, "
                      "else webqq.plugins.builtin)"),
    ("webqq_world", "a world file for the simulator (default: the built-in world)"),
    ("webqq_timeout", "seconds replies() waits (default: %g)" % DEFAULT_TIMEOUT),
)


def pytest_addoption(parser) -> None:
    group = parser.getgroup("webqq", "webqq: test a QQ bot against the WebQQ simulator")
    for name, text in _SETTINGS:
        parser.addini(name, text)
        group.addoption("--" + name.replace("_", "-"), dest=name, help=text)


@dataclass(frozen=True)
class Settings:
    """The plugin's settings, from the command line or else the ini file."""

    bot: Optional[str]
    bot_url: Optional[str]
    token: str
    plugins: Optional[Tuple[str, ...]]
    world: Optional[str]
    timeout: float
    api_port: int


def _setting(config, name: str) -> Optional[str]:
    value = config.getoption(name) or config.getini(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


@pytest.fixture(scope="session")
def webqq_settings(pytestconfig) -> Settings:
    """The webqq_* settings of this run."""
    plugins = _setting(pytestconfig, "webqq_plugins")
    world = _setting(pytestconfig, "webqq_world")
    timeout = _setting(pytestconfig, "webqq_timeout")
    try:
        timeout = float(timeout) if timeout else DEFAULT_TIMEOUT
    except ValueError:
        raise pytest.UsageError("webqq_timeout: a number of seconds, not %r" % timeout)
    return Settings(
        bot=_setting(pytestconfig, "webqq_bot"),
        bot_url=_setting(pytestconfig, "webqq_bot_url"),
        token=_setting(pytestconfig, "webqq_token") or secrets.token_urlsafe(16),
        plugins=None if plugins is None else tuple(
            p.strip() for p in plugins.split(",") if p.strip()),
        world=None if world is None else str(pytestconfig.rootpath / world),
        timeout=timeout, api_port=free_port())


class BotProcess:
    """The bot's command, started with its port, and stopped at the end of the session."""

    def __init__(self, command: str, settings: Settings, directory, cwd) -> None:
        self.port = free_port()
        values = {"port": self.port, "token": settings.token, "python": sys.executable,
                  "api_url": "http://127.0.0.1:%d" % settings.api_port}
        try:
            self.argv = [part.format(**values) for part in shlex.split(command)]
        except (KeyError, ValueError, IndexError) as error:
            raise pytest.UsageError("webqq_bot: cannot fill in %r: %s" % (command, error))
        env = dict(os.environ, WEBQQ_BOT_PORT=str(self.port), WEBQQ_TOKEN=settings.token,
                   WEBQQ_API_URL=values["api_url"])
        self.output = directory / "bot.log"
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, env=env, cwd=str(cwd))

    def wait_listening(self) -> None:
        """Until the bot accepts connections on its port, tried every CHECK_INTERVAL; the
        bot exiting ends the wait at once (HarnessError), as does STARTUP_TIMEOUT."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            try:
                self.process.wait(CHECK_INTERVAL)
            except subprocess.TimeoutExpired:
                pass
            else:
                raise HarnessError("the bot (%s) exited with status %d:\n%s" % (
                    " ".join(self.argv), self.process.returncode, self.tail()))
            if time.monotonic() > deadline:
                raise HarnessError("the bot (%s) did not listen on port %d within %g s:\n%s"
                                   % (" ".join(self.argv), self.port, STARTUP_TIMEOUT,
                                      self.tail()))

    def tail(self) -> str:
        return "\n".join(self.output.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def webqq_bot_url(webqq_settings, tmp_path_factory, pytestconfig) -> Optional[str]:
    """The bot's URL: ``webqq_bot`` started (once) on a free port, or ``webqq_bot_url``,
    or None (webqq's own plugins answer). Override it to start a bot your own way."""
    settings = webqq_settings
    if settings.bot is None:
        if settings.bot_url and "{port}" in settings.bot_url:
            raise pytest.UsageError("webqq_bot_url has {port} but no webqq_bot command "
                                    "gives it one")
        yield settings.bot_url
        return
    if settings.bot_url is None:
        raise pytest.UsageError("webqq_bot is set: set webqq_bot_url too (for example "
                                "ws://127.0.0.1:{port}/ws/)")
    bot = BotProcess(settings.bot, settings, tmp_path_factory.mktemp("webqq-bot"),
                     pytestconfig.rootpath)
    try:
        bot.wait_listening()
        yield settings.bot_url.format(port=bot.port)
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        bot.stop()


@pytest.fixture
def webqq_sim(webqq_bot_url, webqq_settings, tmp_path) -> Simulation:
    """A simulator and webqq, logged in and wired to the bot, for this test.

    ``webqq_sim.say(20001, "!ping")``, ``await webqq_sim.replies(20001)``; see
    ``webqq.testing.Simulation``. Logs and the ini file stay in ``tmp_path/webqq``.
    """
    settings = webqq_settings
    try:
        harness = Harness(tmp_path / "webqq", bot_url=webqq_bot_url, plugins=settings.plugins,
                          token=settings.token, api_listen="127.0.0.1:%d" % settings.api_port,
                          world=settings.world)
        harness.start()
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield Simulation(harness, timeout=settings.timeout)
    finally:
        harness.stop()


def pytest_pyfunc_call(pyfuncitem):
    """Run an ``async def`` test that uses ``webqq_sim`` on an event loop of its own,
    unless an async plugin's marker claims it."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function) or "webqq_sim" not in pyfuncitem.fixturenames:
        return None
    if any(pyfuncitem.get_closest_marker(marker) for marker in _ASYNC_MARKERS):
        return None
    arguments = {name: pyfuncitem.funcargs[name]
                 for name in inspect.signature(function).parameters}
    asyncio.run(function(**arguments))
    return True
