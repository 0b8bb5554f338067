"""The ptwebqq rotation (poll retcode 116) against faults, in-process: the episode the
60-minute soak lost 39 messages in (bench/README.md, "60 minutes, with tracemalloc").

There, rotations came while the client held no poll, the poll that was to carry the
last 116 met a 502 instead, the relink with the ptwebqq the client had was refused 103
and the daemon logged in anew, and what was said to the account meanwhile never came.
"""
import logging

import pytest
from client_helpers import RecordingStream, World, online_client
from tornado.locks import Condition

from webqq.client.client import State
from webqq.client.session import cookie_value
from webqq.http_stream import RetryPolicy
from webqq.simulator.events import EventSpec

QQ = 10001


def say(world, text: str) -> None:
    """Friend 20001 says ``text`` to the account, straight into the simulator."""
    world.sim.backend.chat.push_event(QQ, EventSpec("message", sender=20001, text=text))


@pytest.mark.gen_test(timeout=30)
async def test_a_rotation_no_poll_carried_yet_neither_breaks_the_relink_nor_loses_messages(
        world):
    stream = RecordingStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file)
    # One attempt per poll, so that the one 502 below is the daemon's "poll failed".
    client, events = await online_client(world, stream=stream,
                                         poll_retry=RetryPolicy(idempotent=True, attempts=1))
    before = cookie_value(client.stream.cookiejar, "ptwebqq")
    texts = ["said during the episode %d" % n for n in range(6)]

    def while_no_poll_is_held(event) -> None:
        # The poll failed and the relink waits for its delay: the server owes the next
        # poll a 116 (as /_sim/rotate does), and messages keep coming.
        if event.kind == "state" and event.new is State.RELINKING and not said:
            said.append(True)
            world.sim.backend.sessions.rotate(QQ)
            for text in texts[:3]:
                say(world, text)
    said = []
    client.add_listener(while_no_poll_is_held)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "status",
                                       "status": 502})
    await events.wait("state", lambda e: e.new is State.RELINKING)
    await events.online()
    for text in texts[3:]:
        say(world, text)
    got = [(await events.wait("message")).text for _ in texts]
    assert got == texts
    # The relink carried the ptwebqq the client knew, and it was the right one: no login.
    assert "relogging" not in events.states(), events.states()
    assert stream.paths.count("/login") == 1
    # The 116 came after the relink, and the client keeps its value.
    after = cookie_value(client.stream.cookiejar, "ptwebqq")
    assert after != before
    assert after == world.sim.backend.login.grant_of(QQ).ptwebqq


class PollLog(RecordingStream):
    """Also remembers, for every poll2, its delay and the client's ptwebqq then."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.polls = []
        self.added = Condition()

    def add_request(self, request, readback=None, delay=0, **kwargs):
        if request.selector.split("?")[0] == "/channel/poll2":
            self.polls.append((delay, cookie_value(self.cookiejar, "ptwebqq")))
            self.added.notify_all()
        return super().add_request(request, readback, delay, **kwargs)

    async def poll_with(self, ptwebqq: str) -> float:
        """The delay of the first poll sent with cookie ``ptwebqq``, once there is one."""
        while True:
            for delay, value in self.polls:
                if value == ptwebqq:
                    return delay
            assert await self.added.wait(timeout=self.io_loop.time() + 10), self.polls


@pytest.mark.gen_test(timeout=30)
async def test_the_poll_after_a_116_goes_at_once_but_a_second_fast_116_waits(io_loop,
                                                                             tmp_path):
    # In the soak each 116 came fast and the next poll waited a tenth of the hold time,
    # so three rotations kept the account's messages queued for 18 s.
    w = World(io_loop, tmp_path)
    w.start_sim(poll_hold=2.0)
    try:
        # Every answer comes within a tenth of the client's hold time: all are "fast".
        stream = PollLog(hosts=w.sim.hosts, ca_file=w.sim.ca_file, request_timeout=10)
        client, events = await online_client(w, stream=stream, poll_hold=30.0)
        sessions = w.sim.backend.sessions

        def rotate() -> str:
            """/_sim/rotate; the new ptwebqq, owed to a poll or already answered."""
            sessions.rotate(QQ)
            return sessions.get(QQ).rotation or sessions.get(QQ).ptwebqq
        assert await stream.poll_with(rotate()) == 0.0
        # Two fast 116s in a row: a server stuck on 116 must not make us spin.
        assert await stream.poll_with(rotate()) == client.poll_hold / 10
        assert [delay for delay, _ in stream.polls] == [0.0, 0.0, 3.0]
    finally:
        await w.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_a_new_client_id_after_122_is_reported_as_a_possible_loss(world, caplog):
    # The one relogin that leaves the session (and its queue) behind on purpose says so.
    caplog.set_level(logging.INFO, "webqq.client")
    client, events = await online_client(world)
    await world.control.call("fault", {"path": "/channel/poll2", "kind": "retcode",
                                       "retcode": 122})
    await events.wait("state", lambda e: e.new is State.RELOGGING)
    await events.online()
    [record] = [r for r in caplog.records if "another client" in r.getMessage()]
    assert record.levelno == logging.WARNING and "may never come" in record.getMessage()
