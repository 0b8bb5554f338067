"""status.json: what the daemon tells ``webqq status``, and how the CLI words it.

What it is for: ``Login`` keeps what the file says of the login beyond the client's
state (since when, the last error while it applies, the next attempt, why the client
went offline for good); the daemon feeds it the client's events and writes the whole
status with ``statedir.atomic_write_json``. ``read_status`` is the CLI's side, and
``describe`` turns a status into the lines ``webqq status`` prints, for a daemon that
runs and for one that does not (any more), with a block per account when several run.

What it must never do: hold a secret (the file is for anyone who may run ``webqq
status``), or take the file for proof that a daemon runs: the pidfile lock says that.
"""
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from webqq import statedir
from webqq.daemon.config import Config
from webqq.plugins import format_duration

__all__ = ["Login", "status_path", "read_status", "describe", "describe_stopped",
           "not_online"]


def status_path(config: Config) -> Path:
    return config.daemon.state_dir / statedir.STATUS


def read_status(config: Config) -> Optional[Dict[str, Any]]:
    """What the daemon last wrote to its status file, or None (absent or unreadable)."""
    try:
        with open(status_path(config), encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


class Login:
    """The login as ``webqq status`` tells it. Times are wall-clock seconds (``clock``).

    ``state_since``: when the client entered its state. ``online_since``, ``resumed``:
    the last time it came online, and whether by resuming a saved session.
    ``last_error`` (``{"text", "at"}``): the last failure or refusal; cleared once
    online, since it no longer applies. ``next_attempt`` (``{"step", "attempt",
    "at"}``): the recovery the client has scheduled. ``offline`` (``{"reason",
    "since"}``): why and when it went offline for good (kicked, logged out, refused).
    ``captcha`` (``{"image", "images", "since", "last_code"}``): the verify-code image
    to read, how many the server sent since the client was last online, since when it
    waits; ``last_code`` (``{"outcome", "text", "at", "image"}``): the last code
    entered, ``"checking"`` until the server refuses it (``"refused"``, ``text`` saying
    why), for image number ``image``. None once online: the image has served.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.state_since: Optional[float] = None
        self.online_since: Optional[float] = None
        self.resumed = False
        self.last_error: Optional[Dict[str, Any]] = None
        self.next_attempt: Optional[Dict[str, Any]] = None
        self.offline: Optional[Dict[str, Any]] = None
        self.captcha: Optional[Dict[str, Any]] = None

    def state(self, old: str, new: str, reason: str) -> None:
        """The client moved from state ``old`` to ``new`` (``State`` values) because of
        ``reason``."""
        now = self.clock()
        self.state_since = now
        if old == "waiting_captcha" and new == "logging_in" and self.captcha:  # a code
            self.captcha["last_code"] = {"outcome": "checking", "text": None, "at": now,
                                         "image": self.captcha["images"]}
        if new == "online":
            self.online_since = now
            self.last_error = self.next_attempt = self.offline = self.captcha = None
        elif new == "offline":
            self.offline = {"reason": reason, "since": now}
            self.next_attempt = None
            self.error(reason)

    def online(self, resumed: bool) -> None:
        """How it came online (the client says so just after the state change)."""
        self.resumed = resumed

    def retry(self, step: str, attempt: int, delay: float, reason: str) -> None:
        """Attempt ``attempt`` of ``step`` comes in ``delay`` seconds, after ``reason``."""
        self.error(reason)
        self.next_attempt = {"step": step, "attempt": attempt, "at": self.clock() + delay}

    def error(self, text: str) -> None:
        self.last_error = {"text": text, "at": self.clock()}

    def refused(self, text: str) -> None:
        """A login step was refused (``text`` says why): a code being checked was."""
        self.error(text)
        code = (self.captcha or {}).get("last_code")
        if code and code["outcome"] == "checking":
            code.update(outcome="refused", text=text, at=self.clock())

    def captcha_wanted(self, image: str) -> None:
        """The server wants a verify code; its image is at ``image``."""
        before = self.captcha or {"images": 0, "last_code": None}
        self.captcha = {"image": image, "images": before["images"] + 1,
                        "since": self.clock(), "last_code": before["last_code"]}

    def as_dict(self) -> Dict[str, Any]:
        return {"state_since": self.state_since, "online_since": self.online_since,
                "resumed": self.resumed, "last_error": self.last_error,
                "next_attempt": self.next_attempt, "offline": self.offline,
                "captcha": self.captcha}


def not_online(status: Dict[str, Any], only: Optional[str] = None) -> List[str]:
    """The accounts of a running daemon's status that are not online, as ``"NAME
    (state)"``: each of ``accounts`` (or only ``only``, one of their names)."""
    accounts = status.get("accounts") or {"": status}
    return ["%s (%s)" % (name or status.get("qq"), entry.get("state"))
            for name, entry in accounts.items()
            if only in (None, name) and entry.get("state") != "online"]


def _when(stamp: float, now: float) -> str:
    """``16:47:40 (3m ago)``, with the date when it is not today."""
    moment = time.localtime(stamp)
    shown = time.strftime("%H:%M:%S" if moment[:3] == time.localtime(now)[:3]
                          else "%Y-%m-%d %H:%M:%S", moment)
    return "%s (%s ago)" % (shown, format_duration(max(now - stamp, 0)))


def describe(status: Dict[str, Any], now: float, only: Optional[str] = None) -> List[str]:
    """The lines of ``webqq status`` for a running daemon whose status this is: its
    account's lines, or with several accounts (or ``only``, one of their names) a block
    of lines for each."""
    lines = ["webqq is running, pid %d, up %s" % (
        status["pid"], format_duration(now - status["started_at"]))]
    accounts = status.get("accounts") or {"": status}
    if len(accounts) == 1 and only is None:
        lines += _account_lines(next(iter(accounts.values())), now)
    else:
        shown = {name: entry for name, entry in accounts.items() if only in (None, name)}
        states = [entry.get("state") for entry in accounts.values()]
        lines.append("accounts: %d, %d online" % (len(accounts), states.count("online")))
        for name, entry in shown.items():
            lines.append("account %s (%d):" % (name, entry["qq"]))
            lines += ["  " + line for line in _account_lines(entry, now)]
    if status.get("simulator"):
        lines.append("embedded simulator: %s" % status["simulator"]["control"])
    lines.append("log: %s" % status.get("log"))
    return lines


def _account_lines(status: Dict[str, Any], now: float) -> List[str]:
    """One account's login, messages and plugins."""
    counts = status.get("counts", {})
    lines = ["login: " + _login(status, now)]
    lines.append("messages: %d received, %d sent, %d failed, %d queued" % (
        counts.get("received", 0), counts.get("sent", 0),
        counts.get("send_failed", 0), status.get("queued", 0)))
    if status.get("sending_paused"):
        lines.append("sending paused: the message store cannot be written (%s)"
                     % status["sending_paused"])
    lines.append("plugins: %s; handlers %d ok, %d errors, %d timeouts" % (
        ", ".join(status.get("plugins", [])) or "none", counts.get("handled", 0),
        counts.get("errors", 0), counts.get("timeouts", 0)))
    for problem in status.get("plugin_errors") or ():
        lines.append("plugin not loaded: %s" % problem)
    return lines


def _login(status: Dict[str, Any], now: float) -> str:
    state, qq = status.get("state"), status.get("qq")
    if state == "online" and status.get("online_since"):
        return "online as %d for %s%s" % (qq, format_duration(now - status["online_since"]),
                                          " (resumed)" if status.get("resumed") else "")
    line = "%s as %d" % (state, qq)
    if status.get("state_since"):
        line += " since %s" % _when(status["state_since"], now)
    offline, attempt = status.get("offline"), status.get("next_attempt")
    if offline:
        line += ": %s" % offline["reason"]
    elif attempt:
        left = attempt["at"] - now
        line += "; %s attempt %d %s" % (attempt["step"], attempt["attempt"],
                                        "in %.0f s" % left if left > 0 else "running")
    error = status.get("last_error")
    if error and not offline:
        line += "; last error at %s: %s" % (_when(error["at"], now), error["text"])
    captcha = status.get("captcha")
    if state == "waiting_captcha" and captcha:
        line += "; read %s, then run: webqq captcha CODE" % captcha["image"]
    return line


def describe_stopped(status: Optional[Dict[str, Any]], pid: Optional[int],
                     now: float) -> str:
    """The line of ``webqq status`` when no daemon runs: how the last one ended, from
    its status file (``status``, None when there is none) and the pidfile's ``pid``."""
    if not status:
        return "webqq is not running"
    if status.get("phase") != "stopped":
        # It never wrote its last status: SIGKILL, a crash, a power cut.
        return ("webqq is not running: pid %s did not stop cleanly (killed or crashed; "
                "its last status is from %s); webqq start resumes its saved session"
                % (status.get("pid", pid), _when(status.get("updated_at", now), now)))
    shutdown = status.get("shutdown") or {}
    line = "webqq is not running (last exit code %s)" % shutdown.get("exit_code")
    ended = [(name, entry["offline"]) for name, entry in
             (status.get("accounts") or {}).items() if entry.get("offline")]
    if len(status.get("accounts") or ()) > 1 and ended:
        line += ": " + "; ".join("%s offline since %s: %s" % (
            name, _when(offline["since"], now), offline["reason"])
            for name, offline in ended)
    elif status.get("offline"):
        offline = status["offline"]
        line += ": offline since %s: %s" % (_when(offline["since"], now), offline["reason"])
    elif shutdown.get("forced"):
        line += ": a second %s forced the exit" % shutdown["forced"]
    return line
