"""A new user's first hour, as README tells it (issue 12 #6): every command of its quick
start, of the daemon's and the API's verbs and of the simulator section, run in README's
order in a fresh directory holding a copy of conf/, each step's visible outcome checked
(the bot answered pong, status says online, the captcha verb says the code was taken).

What differs from a person at a terminal, and why:

* ``python3 -m venv``, ``. .venv/bin/activate`` and ``pip install`` are not run: the
  suite already runs on this checkout (.ci/run installs it exactly as README says). So
  ``webqq`` and ``webqq-simulator`` are ``python -m webqq`` and ``python -m
  webqq.simulator.cli`` with this checkout on PYTHONPATH.
* README's fixed ports (18080, 18443, 18765) are rewritten to free ones, in the conf/
  copy and in each command, since a fixed port may be taken where the suite runs.
* ``curl`` is played by urllib's http.client with the same method, headers and body
  (curl's default Content-Type for ``-d`` included), so the suite needs no curl.
* HOME is a directory of the test's own (README writes the CA under ``~``).
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from daemon_helpers import DEADLINE, REPO, environment, wait_for
from readme_helpers import commands, free_port, literal_blocks, on_ports, section

#: The start of a JFIF file: the simulator sniffs a picture's type from its bytes.
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"

CHECK_ANSWER = re.compile(r"ptui_checkVC\('0','!\w{3}','(\\x[0-9a-f]{2}){8}'\);")


class Terminal:
    """The reader's shell: a working directory (the checkout, here only conf/), HOME,
    shell variables (TOKEN), and the programs README names."""

    def __init__(self, root: Path, ports: Dict[int, int]) -> None:
        self.root = root
        self.ports = ports
        self.home = root / "home"
        self.home.mkdir()
        self.variables: Dict[str, str] = {}
        self.background: List[subprocess.Popen] = []
        self.env = environment(runtime=root / "xdg-runtime")
        self.env["HOME"] = str(self.home)

    def words(self, words: List[str]) -> List[str]:
        """What the shell hands the program: $VARIABLES, ~ and the test's ports."""
        def expand(word: str) -> str:
            word = re.sub(r"\$(\w+)", lambda m: self.variables[m.group(1)], word)
            if word.startswith("~/"):
                word = str(self.home) + word[1:]
            return on_ports(word, self.ports)
        return [expand(word) for word in words]

    def program(self, words: List[str]) -> List[str]:
        name, arguments = words[0], words[1:]
        if name == "webqq":
            return [sys.executable, "-m", "webqq", *arguments]
        if name == "webqq-simulator":
            return [sys.executable, "-m", "webqq.simulator.cli", *arguments]
        raise AssertionError("README runs %s, which this walk does not know" % name)

    def run(self, line: List[str]) -> subprocess.CompletedProcess:
        """A command run to its end."""
        words = self.words(line)
        if words[0] == "curl":
            return curl(words[1:])
        if words[0] == "cp" and len(words) == 3:
            shutil.copyfile(self.root / words[1], self.root / words[2])
            return subprocess.CompletedProcess(words, 0, "", "")
        if words[0] == "chmod" and len(words) == 3:
            os.chmod(self.root / words[2], int(words[1], 8))
            return subprocess.CompletedProcess(words, 0, "", "")
        return subprocess.run(self.program(words), capture_output=True, text=True,
                              timeout=DEADLINE * 2, env=self.env, cwd=str(self.root))

    def start(self, line: List[str], output: str) -> subprocess.Popen:
        """A command left running in another terminal; its output goes to ``output``."""
        with open(self.root / output, "w") as sink:
            process = subprocess.Popen(self.program(self.words(line)), stdout=sink,
                                       stderr=subprocess.STDOUT, env=self.env,
                                       cwd=str(self.root), text=True)
        self.background.append(process)
        return process

    def output(self, name: str) -> str:
        return (self.root / name).read_text(encoding="utf-8")

    def close(self) -> None:
        for process in self.background:
            if process.poll() is None:
                process.kill()
                process.wait()


def curl(arguments: List[str]) -> subprocess.CompletedProcess:
    """curl's options README uses (-s, -H, -d, --cacert, --resolve), with http.client:
    the body is the output, whatever the status, as curl without -f prints it."""
    headers: Dict[str, str] = {}
    body: Optional[bytes] = None
    cafile, url = None, None
    resolved: Dict[Tuple[str, int], str] = {}
    arguments = list(arguments)
    while arguments:
        option = arguments.pop(0)
        if option == "-s":
            continue
        if option == "-H":
            name, value = arguments.pop(0).split(":", 1)
            headers[name.strip()] = value.strip()
        elif option == "-d":
            body = arguments.pop(0).encode()
        elif option == "--cacert":
            cafile = arguments.pop(0)
        elif option == "--resolve":
            host, port, address = arguments.pop(0).split(":")
            resolved[(host, int(port))] = address
        elif option.startswith("-"):
            raise AssertionError("README's curl uses %s, which this walk does not know"
                                 % option)
        else:
            url = urllib.parse.urlsplit(option)
    if body is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    port = url.port or (443 if url.scheme == "https" else 80)
    sock = socket.create_connection((resolved.get((url.hostname, port), url.hostname),
                                     port), timeout=10)
    if url.scheme == "https":
        sock = ssl.create_default_context(cafile=cafile).wrap_socket(
            sock, server_hostname=url.hostname)
    connection = http.client.HTTPConnection(url.hostname, port, timeout=10)
    connection.sock = sock
    try:
        path = url.path + ("?" + url.query if url.query else "")
        connection.request("POST" if body is not None else "GET", path, body, headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    return subprocess.CompletedProcess(["curl"], 0, text, "HTTP %d" % response.status)


def answer(result: subprocess.CompletedProcess) -> object:
    """The JSON a curl line printed, once it answered 200."""
    assert (result.returncode, result.stderr) == (0, "HTTP 200"), result
    return json.loads(result.stdout)


def succeeds(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def in_prose(text: str, pattern: str) -> List[str]:
    """The ``literal`` commands of README's prose that match ``pattern``, whitespace
    joined (a literal may break across lines)."""
    return [re.sub(r"\s+", " ", found) for found in re.findall(r"``([^`]+)``", text)
            if re.fullmatch(pattern, re.sub(r"\s+", " ", found))]


def test_a_new_user_walks_through_readme(tmp_path):
    ports = {18080: free_port(), 18443: free_port(), 18765: free_port()}
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    conf = tmp_path / "conf" / "webqq.ini"
    conf.write_text(on_ports(conf.read_text(encoding="utf-8"), ports), encoding="utf-8")
    terminal = Terminal(tmp_path, ports)
    try:
        walk_the_quick_start(terminal)
        walk_the_simulator_section(terminal)
    finally:
        terminal.close()


def walk_the_quick_start(terminal: Terminal) -> None:
    quick = section("Quick start")
    install_and_run, install_and_test, talk = literal_blocks(quick)
    setup = commands(install_and_run)
    assert [words[0] for words in setup[:-1]] == ["python3", ".", "pip"]    # not run
    daemon = terminal.start(setup[-1], "daemon.out")

    # "the daemon logs its control token (``embedded simulator listening on ...; /_sim/
    # control token TOKEN``)", then "``online as 10001``".
    logged = in_prose(quick, r"embedded simulator listening on .*TOKEN")[0]
    token_line = re.escape(logged).replace(re.escape("..."), ".*").replace("TOKEN", r"(\S+)")

    def up() -> bool:
        assert daemon.poll() is None, terminal.output("daemon.out")
        return in_prose(quick, r"online as \d+")[0] in terminal.output("daemon.out")
    wait_for(up, "the daemon to log that it is online")
    terminal.variables["TOKEN"] = re.search(token_line, terminal.output("daemon.out")).group(1)

    say, sent = commands(talk)
    assert answer(terminal.run(say))["ok"] is True
    # "# [{"kind": "buddy", "text": "pong", ...}]": once the bot has answered.
    wait_for(lambda: answer(terminal.run(sent)), "the bot's answer")
    assert answer(terminal.run(sent))[0]["kind"] == "buddy"
    assert answer(terminal.run(sent))[0]["text"] == "pong"

    # The daemon's verbs, and those of the API, on the daemon of the quick start.
    config = ["-c", "conf/webqq.ini"]
    assert "login: online as 10001 for " in succeeds(
        terminal.run(["webqq", *config, "status"]))
    assert succeeds(terminal.run(["webqq", *config, "reload"])) == \
        "webqq reloaded (pid %d)\nwebqq reload: nothing changed\n" % daemon.pid
    assert "[account]\nqq = 10001\n" in succeeds(terminal.run(["webqq", *config, "check"]))
    verbs = in_prose(section("OneBot v11 API"), r"webqq (send|friends|groups)\b.*")
    assert len(verbs) == 3
    outputs = [succeeds(terminal.run(["webqq", *config, *verb.split()[1:]]))
               for verb in verbs]
    assert re.fullmatch(r"sent to buddy 20001 \(message_id \d+\)\n", outputs[0])
    assert outputs[1].endswith("3 friend(s)\n") and outputs[2].startswith("group ")
    assert "webqq stopped (pid %d)" % daemon.pid in succeeds(
        terminal.run(["webqq", *config, "stop"]))
    assert daemon.wait(timeout=DEADLINE) == 0
    assert " WARNING " not in terminal.output("daemon.out")


def walk_the_simulator_section(terminal: Terminal) -> None:
    text = section("The WebQQ simulator")
    start, talk, copying, keys, control, captcha, media = literal_blocks(text)
    (start_simulator,) = commands(start)
    simulator = terminal.start(start_simulator, "simulator.out")

    def banner() -> Optional[re.Match]:
        assert simulator.poll() is None, terminal.output("simulator.out")
        return re.search(r"control token: (\S+)", terminal.output("simulator.out"))
    terminal.variables["TOKEN"] = wait_for(banner, "the simulator's banner").group(1)
    ca_line = "CA certificate (TEST MATERIAL): %s/.config/webqq/simulator-ca.pem\n" \
              % terminal.home
    assert ca_line in terminal.output("simulator.out")

    for check in commands(talk):                # plain Host-routed, then TLS verified
        assert CHECK_ANSWER.fullmatch(terminal.run(check).stdout)

    # The recipe: a private copy of conf/webqq.ini, README's keys set in it, its [hosts]
    # lines uncommented.
    for line in commands(copying):
        succeeds(terminal.run(line))
    (run,) = in_prose(text, r"webqq -c \S+ run")
    config = run.split()[1:3]
    standalone = terminal.root / config[1]
    standalone.write_text(set_keys(standalone.read_text(encoding="utf-8"), keys),
                          encoding="utf-8")
    daemon = terminal.start(run.split(), "standalone.out")
    status = terminal.root / "run" / "status.json"

    def state() -> Optional[str]:
        assert daemon.poll() is None, terminal.output("standalone.out")
        try:
            return json.loads(status.read_text(encoding="utf-8")).get("state")
        except (OSError, ValueError):
            return None
    wait_for(lambda: state() == "online", "the daemon online on the standalone simulator")

    results: Dict[str, List[object]] = {}
    sent = next(line for line in commands(control) if "/_sim/sent" in line[-1])
    for line in commands(control):
        if re.fullmatch(r"\w+=.*", line[0]):     # TOKEN=...: the banner gave it above
            continue
        verb = line[-1].rsplit("/", 1)[1].split("?")[0]
        results.setdefault(verb, []).append(answer(terminal.run(line)))
        if verb == "say" and "!ping" in " ".join(line):
            wait_for(lambda: '"pong"' in terminal.run(sent).stdout, "the bot's pong")
    assert results["state"][0]["accounts"]["10001"]["state"] == "online"
    assert [said["ok"] for said in results["say"]] == [True, True]
    assert [sent["text"] for sent in results["sent"][0]] == ["pong"]
    assert results["kick"] == [{"ok": True}] and results["fault"][0]["ok"] is True

    # The pictures and requests block: a friend's picture (the shell's $(base64 -w0
    # cat.jpg) played here with a JPEG the walk writes) and a stranger's friend request.
    picture = JPEG_HEAD + bytes(range(256)) * 4
    substitution = "$(base64 -w0 cat.jpg)"
    for line in commands(media):
        line = [word.replace(substitution, base64.b64encode(picture).decode())
                for word in line]
        assert answer(terminal.run(line)).get("ok") is True, line

    for line in commands(captcha):              # demand a code, then expire the login
        assert answer(terminal.run(line)) == {"ok": True}

    def image_named() -> Optional[str]:
        shown = terminal.run(["webqq", *config, "status"]).stdout
        return re.search(r"; read (\S+), then run: webqq captcha CODE", shown)
    image = Path(wait_for(image_named, "webqq status to name the image").group(1))
    assert image.read_bytes().startswith(b"\xff\xd8")
    (enter,) = in_prose(text, r"webqq -c \S+ captcha \w+")
    assert succeeds(terminal.run(enter.split())) == "verify code accepted: 10001 is online\n"
    assert not image.exists()
    succeeds(terminal.run(["webqq", *config, "stop"]))
    assert daemon.wait(timeout=DEADLINE) == 0
    simulator.send_signal(signal.SIGINT)        # Ctrl-C
    assert simulator.wait(timeout=DEADLINE) == 0
    assert "readable by others" not in terminal.output("standalone.out")


def set_keys(ini: str, block: str) -> str:
    """``ini`` with README's ``[section]`` / ``key = value`` lines set in it, and its
    ``[hosts]`` lines uncommented."""
    section_name = None
    wanted: Dict[Tuple[str, str], str] = {}
    for line in block.splitlines():
        if re.fullmatch(r"\[\w+\]", line.strip()):
            section_name = line.strip()[1:-1]
        elif "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            wanted[(section_name, key)] = value
    out, current = [], None
    for line in ini.splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = header.group(1)
        key = line.split("=", 1)[0].strip()
        if (current, key) in wanted:
            line = "%s = %s" % (key, wanted.pop((current, key)))
        elif current == "hosts" and re.fullmatch(r";[\w.]+ = .*", line):
            line = line[1:]
        out.append(line)
    assert wanted == {}, "README sets keys conf/webqq.ini does not have: %s" % wanted
    return "\n".join(out) + "\n"
