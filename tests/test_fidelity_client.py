"""The client against worlds as strict as the 2013 server (issue 13): the era of the
login, the discussion list's two URLs, the friend-list hash, lazy QQ-number lookups and
sends that keep clear of the server's silent drops."""
import contextlib
import logging

import pytest
from client_helpers import Recorder, RecordingStream, World
from simulator_helpers import default_world

from webqq.qq import Era


@contextlib.asynccontextmanager
async def world_of(io_loop, tmp_path, **options):
    """A simulator whose world is the built-in one with ``options``."""
    w = World(io_loop, tmp_path)
    w.start_sim(world=default_world(**options))
    try:
        yield w
    finally:
        await w.aclose()


async def online_client(world, **kwargs):
    client = world.client(**kwargs)
    events = Recorder(client)
    client.start()
    await events.online()
    return client, events


# --- 1. the era of the login -------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("era", ["A", "B"])
async def test_auto_era_logs_in_the_way_the_login_page_shows(io_loop, tmp_path, caplog,
                                                              era):
    caplog.set_level(logging.INFO, "webqq.client")
    async with world_of(io_loop, tmp_path, era=era) as w:
        stream = RecordingStream(hosts=w.sim.hosts, ca_file=w.sim.ca_file)
        client, events = await online_client(w, stream=stream, era=None)
        assert client._flow.login_era is Era(era)
        assert stream.paths[:3] == ["/cgi-bin/login", "/check", "/login"]
        assert ("/check_sig" in stream.paths) == (era == "B")
        assert ("logging in the %s way (Era %s)" % (
            "late-2013" if era == "B" else "spring-2013", era)) in caplog.text
        await w.control.say(**{"from": 20001, "text": "which era?"})
        message = await events.wait("message")
        assert (await client.reply(message, "era %s" % era).done).status.value == "sent"


@pytest.mark.gen_test(timeout=30)
async def test_auto_era_logs_in_the_era_a_way_when_the_login_page_fails(io_loop, tmp_path):
    async with world_of(io_loop, tmp_path) as w:
        await w.control.call("fault", {"path": "/cgi-bin/login", "kind": "status",
                                       "status": 404})
        client, _events = await online_client(w, era=None)
        assert client._flow.login_era is Era.A
