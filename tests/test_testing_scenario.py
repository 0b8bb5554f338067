"""Scenario files: the format read into steps, and every mistake refused with one line
naming the file, the step and the key; the packaged examples are valid."""
from pathlib import Path

import pytest

from webqq.simulator import load_world
from webqq.testing.runner import check_against, describe
from webqq.testing.scenario import DEFAULT_RECOVER, ScenarioError, Step, load_scenario, \
    parse_scenario

EXAMPLES = Path(__file__).resolve().parent.parent / "webqq" / "testing" / "scenarios"

EVERY_STEP = """
name = "all of it"
account = 10001
timeout = 7

[[step]]
say = "!ping"
from = 20001

[[step]]
expect = "pong"

[[step]]
say = ["hi ", ["face", 14]]
from = 20002
group = 30001

[[step]]
expect_match = "^hi"
within = 3

[[step]]
silence = 1.5
to = 20001

[[step]]
kick = true

[[step]]
rotate = true
recover = 0

[[step]]
outage = 2
recover = 30

[[step]]
fault = {path = "/channel/poll2", kind = "status", status = 502, count = 2}

[[step]]
pause = 0.5
"""


def test_every_action_reads_into_its_step():
    scenario = parse_scenario(EVERY_STEP, "all.toml")
    assert (scenario.name, scenario.account, scenario.timeout) == ("all of it", 10001, 7.0)
    assert list(scenario.steps) == [
        Step(1, "say", text="!ping", sender=20001, chat=("buddy", 20001)),
        Step(2, "expect", text="pong", seconds=7.0),
        Step(3, "say", text=["hi ", ["face", 14]], sender=20002, chat=("group", 30001)),
        Step(4, "expect_match", pattern="^hi", seconds=3.0),
        Step(5, "silence", chat=("buddy", 20001), seconds=1.5),
        Step(6, "kick", recover=DEFAULT_RECOVER),
        Step(7, "rotate", recover=0.0),
        Step(8, "outage", seconds=2.0, recover=30.0),
        Step(9, "fault", fault={"path": "/channel/poll2", "kind": "status", "status": 502,
                                "count": 2}),
        Step(10, "pause", seconds=0.5)]
    check_against(scenario, load_world())


def test_the_name_defaults_to_the_file_and_steps_read_in_words():
    scenario = parse_scenario('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nexpect = "yo"\n',
                              "dir/greet.toml")
    assert scenario.name == "greet"
    assert describe(scenario.steps[1], chat=("buddy", 20001)) == \
        'expect "yo" from the bot to buddy 20001 within 10 s'


@pytest.mark.parametrize("text, message", [
    ('say = "hi"\nfrom = @\n', "x.toml: not TOML: Invalid value (at line 2, column 8)"),
    ('name = "n"\n', "x.toml: no steps: add [[step]] tables"),
    ('nam = "n"\n[[step]]\nsay = "hi"\nfrom = 1\n', "x.toml: unknown key 'nam'"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\nwithin = 3\n', "x.toml: step 1: unknown key "
                                                         "'within' (known here: discussion, "
                                                         "from, group, say)"),
    ('[[step]]\nsay = "hi"\n', "x.toml: step 1: say: who says it? add from = QQ"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nexpect = "a"\nkick = true\n',
     "x.toml: step 2: one action per step, not expect and kick"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nwithin = 3\n',
     "x.toml: step 2: no action: one of say, expect"),
    ('[[step]]\nexpect = "pong"\n[[step]]\nsay = "hi"\nfrom = 20001\n',
     "x.toml: step 1: expect: which chat?"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nexpect_match = "(("\n',
     "x.toml: step 2: expect_match: not a regular expression: missing ), unterminated "
     "subpattern"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nexpect = "a"\nwithin = -1\n',
     "x.toml: step 2: within: a number of seconds, more than 0"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nkick = false\n',
     "x.toml: step 2: kick: write kick = true"),
    ('[[step]]\nsay = "hi"\nfrom = true\n', "x.toml: step 1: from: a QQ, group or "
                                           "discussion number, not True"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\ngroup = 30001\ndiscussion = 40001\n',
     "x.toml: step 1: one chat: group or discussion"),
    ('[[step]]\nsay = ["hi", ["shake"]]\nfrom = 20001\n', "x.toml: step 1: say: a string, "
                                                         "or a list of strings"),
    ('[[step]]\nsay = "hi"\nfrom = 20001\n[[step]]\nfault = {path = "/x", kind = "boom"}\n',
     "x.toml: step 2: fault: kind: one of status, reset, delay, retcode"),
    ('[[step]]\nkick = true\n', "x.toml: nobody says anything"),
])
def test_mistakes_are_refused_naming_file_step_and_key(text, message):
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(text, "x.toml")
    assert str(refused.value).startswith(message), str(refused.value)


@pytest.mark.parametrize("step, message", [
    ('say = "hi"\nfrom = 55555\n', "x.toml: step 1: from: nobody 55555 in the world"),
    ('say = "hi"\nfrom = 20001\ngroup = 39999\n', "x.toml: step 1: no group 39999 in the world"),
])
def test_names_the_world_lacks_are_refused_before_a_run(step, message):
    scenario = parse_scenario("[[step]]\n" + step, "x.toml")
    with pytest.raises(ScenarioError) as refused:
        check_against(scenario, load_world())
    assert str(refused.value) == message


def test_an_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(ScenarioError) as missing:
        load_scenario(tmp_path / "none.toml")
    assert str(missing.value) == "%s: cannot be read: No such file or directory" % (
        tmp_path / "none.toml")
    (tmp_path / "latin.toml").write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="latin.toml: not UTF-8 text"):
        load_scenario(tmp_path / "latin.toml")


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_the_packaged_examples_are_valid(name):
    check_against(load_scenario(EXAMPLES / name), load_world())
