"""webqq.testing: test a QQ bot against the WebQQ simulator, from pytest or a CI job.

A bot speaks OneBot v11 (NoneBot, aiocqhttp, Koishi…) to webqq, which logs in to the
simulator; a test makes the simulator's people speak and reads what the bot answered,
as the simulator saw it::

    async def test_ping(webqq_sim):                     # the pytest plugin's fixture
        webqq_sim.say(20001, "!ping")
        assert await webqq_sim.replies(20001) == ["pong"]

Modules: ``harness`` (the simulator and ``webqq run`` as child processes, wired to the
bot; /_sim/ with its token), ``feed`` (the simulator's live feed of messages),
``simulation`` (say, replies, faults), ``plugin`` (the pytest plugin), ``scenario``
(the scenario file format), ``runner`` and ``junit`` (running scenarios, reporting
them), ``cli`` (``webqq-simulator test``), ``simulator_child``.

It stands on the simulator's side: it runs webqq as a user would, as a program, and
never imports the client or the daemon.
"""
from .harness import Control, Harness, HarnessError, SimulatorError
from .simulation import NoReply, Simulation

__all__ = ["Control", "Harness", "HarnessError", "NoReply", "Simulation", "SimulatorError"]
