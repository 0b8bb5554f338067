"""The command line, ``webqq [-c CONFIG] COMMAND``: where a newcomer starts reading.

What it is for: parse the command line, find and load the configuration
(``webqq.daemon.config``), and do one thing with it:

    check (-t)  validate the configuration and print it, secrets masked
    run         the daemon in the foreground (systemd, containers): ``Daemon.run``
    start       the daemon detached: ``Daemon.start`` (double fork, pidfile); prints
                each step of the login as it happens
    stop        SIGTERM, wait for a clean exit, SIGKILL after --timeout seconds
    restart     stop, then start
    status      running or not, pid, uptime, each account's login state and counts
                (from status.json, and the API's get_status when it listens); how the
                last one ended; exit 1 unless every account (or --account's) is online
    reload      SIGHUP: the daemon reads its configuration and plugins again; prints
                what it applied and what waits for a restart
    send        send buddy|group|discussion TARGET TEXT: the API's send_msg
    captcha     where the verify-code image is (file, page); captcha CODE answers it
    friends     the friend list (QQ number, nick, remark)
    groups      the groups (public number, name) and discussions (did, name)

From here, the path to a message sent: ``run`` -> ``webqq.daemon.Daemon.run`` (pidfile,
logging, simulator, ``WebQQClient``, plugins) -> ``WebQQClient.start`` logs in and polls
-> a ``"message"`` event -> ``webqq.plugins.Dispatcher.dispatch`` -> a handler's
``ctx.reply`` -> a row of the durable queue (``webqq.onebot.outbound``) ->
``WebQQClient.send_buddy`` (its send queue) -> ``build_send_buddy``.

``send``, ``captcha``, ``friends``, ``groups`` (and a part of ``status``) call the
daemon's OneBot API (``webqq.onebot``) on ``[api] listen`` with its token (configured, or
generated into state_dir); they print lines for people, or the API's ``data`` as JSON with
``--json``. A daemon of several accounts (``[account:NAME]``) needs ``--account NAME|QQ``
for them (its ``self_id``); ``status --account`` shows one account, ``restart --account``
restarts one account's session (the API's ``set_restart``), leaving the others alone.

A configuration file a bad edit has broken does not lock the operator out: ``stop``,
``status`` and the API verbs print its error, then find the daemon that runs from it
(``find_running``) and act on it; the others exit 3 and leave it running.

Exit codes (``webqq.daemon.process.ExitCode``): 0 ok, 1 failure (including "not running" for
``status``, ``reload``), 2 usage, 3 configuration error (one line naming file, section
and key), 4 login refused.

What it must never do: run the IOLoop itself, or talk to the daemon other than through
its pidfile, signals, status file and API (blocking ``urllib``: the CLI has no loop).
Waiting for another process is the one place a ``time.sleep`` belongs
(``System.sleep``).
"""
import argparse
import json
import logging
import os
import signal
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from webqq import statedir
from webqq.daemon import config as configuration
from webqq.daemon.config import (AccountConfig, ApiConfig, BotConfig, Config, ConfigError,
                                 DaemonConfig, NetworkConfig, SimulatorConfig)
from webqq.daemon.daemon import Daemon
from webqq.daemon.pidfile import Pidfile, Pointer, pidfile_path
from webqq.daemon.process import ExitCode, System
from webqq.daemon.status import describe, describe_stopped, not_online, read_status
from webqq.onebot.token import api_token
from webqq.plugins import Dispatcher

__all__ = ["main", "build_parser", "Commands"]

#: Seconds ``stop`` waits for a clean exit before SIGKILL (``--timeout``).
STOP_TIMEOUT = 30.0
#: Seconds ``start`` waits for the daemon to be up and logged in (``--wait``).
START_WAIT = 30.0
#: Seconds ``reload`` waits for the daemon to report the reload.
RELOAD_WAIT = 10.0
#: Seconds ``captcha`` waits for the server's verdict on the code (``--wait``).
CAPTCHA_WAIT = 30.0
#: How often the CLI looks again while it waits for the daemon.
POLL_INTERVAL = 0.05

#: Seconds ``captcha CODE`` waits for the login to go through or to show a new image.
CAPTCHA_WAIT = 20.0
#: Seconds a call to the daemon's API may take (a send waits up to api.SEND_WAIT).
API_TIMEOUT = 15.0
#: ``webqq send`` chat -> (OneBot message_type, the id parameter).
_SEND_KINDS = {"buddy": ("private", "user_id"), "group": ("group", "group_id"),
               "discussion": ("discuss", "discuss_id")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webqq", description="A WebQQ (2013 protocol) client daemon.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration error, "
               "4 login refused. Without -c: ./conf/webqq.ini, "
               "~/.config/webqq/webqq.ini, /etc/webqq/webqq.ini.")
    parser.add_argument("-c", "--config", metavar="CONFIG",
                        help="the ini file (default: the first found, see below); may "
                             "also follow the command")
    parser.add_argument("-t", "--test", action="store_true",
                        help="same as the check command")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     title="commands")
    verbs = {}

    def verb(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        verbs[name] = commands.add_parser(name, help=summary,
                                          description=summary + ". " + details)
        # After the command too (webqq status -c FILE); SUPPRESS keeps the one given
        # before it when this one is absent.
        verbs[name].add_argument("-c", "--config", metavar="CONFIG",
                                 default=argparse.SUPPRESS, help="the ini file")
        return verbs[name]

    verb("check", "validate the configuration, print it (secrets masked)",
         "Exit 3 and one line naming file, section and key when it is not valid.")
    verb("run", "run in the foreground (systemd, containers)",
         "Logs to stderr unless [daemon] logfile is set; stops on SIGTERM or Ctrl-C "
         "(twice: at once).")
    start = verb("start", "start detached; pidfile in state_dir",
                 "Prints each step of the login as it happens and exits 0 once online "
                 "(or waiting for a verify code), 1 when not online by --wait.")
    start.add_argument("--wait", type=float, default=START_WAIT, metavar="SECONDS",
                       help="wait this long for the login (default %(default)g)")
    stop = verb("stop", "stop the daemon cleanly",
                "SIGTERM; queued messages are sent or saved for the next start, the "
                "session is saved. Works with a broken configuration file too.")
    stop.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="SECONDS",
                      help="SIGKILL after this long (default %(default)g)")
    restart = verb("restart", "stop, then start",
                   "Stops the running daemon as stop does, then starts it as start "
                   "does; refused, with the daemon left running, when the configuration "
                   "file is not valid.")
    restart.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="SECONDS",
                         help="SIGKILL the old daemon after this long (default "
                              "%(default)g)")
    restart.add_argument("--wait", type=float, default=START_WAIT, metavar="SECONDS",
                         help="wait this long for the new daemon's login (default "
                              "%(default)g)")
    status = verb("status", "is it running, logged in, busy?",
                  "Exit 0 when it runs and every account (or --account's) is online, 1 "
                  "when not (with how the last one ended).")
    status.add_argument("--json", action="store_true", help="print the status file")
    restart.add_argument("--account", metavar="NAME|QQ",
                         help="restart only this account's session (through the API)")
    verb("reload", "re-read the configuration and plugins (SIGHUP)",
         "Applies what can change while running and prints what waits for a restart.")
    send = verb("send", "send a message through the daemon's API")
    send.add_argument("chat", choices=sorted(_SEND_KINDS), help="who gets it")
    send.add_argument("target", help="a QQ number, a group number or a discussion id "
                                     "(or a nick, remark or name)")
    send.add_argument("text", nargs="+", help="the text (words are joined by spaces)")
    captcha = verb("captcha", "show where the verify-code image is, or answer it",
                   "Without CODE: the image the login waits on (captcha-QQ.jpg in "
                   "state_dir) and the API's /captcha page, where a browser can answer "
                   "it. With CODE: enter it, then wait up to --wait seconds to say "
                   "whether the login went through or a new image came.")
    captcha.add_argument("code", nargs="?", help="the characters the image shows")
    captcha.add_argument("--wait", type=float, default=CAPTCHA_WAIT, metavar="SECONDS",
                         help="wait this long for the outcome (default %(default)g)")
    verb("friends", "list the friends")
    verb("groups", "list the groups and discussions")
    for name in ("send", "captcha", "friends", "groups"):
        verbs[name].add_argument("--json", action="store_true",
                                 help="print the API's answer as JSON")
    for name in ("status", "send", "captcha", "friends", "groups"):
        verbs[name].add_argument("--account", metavar="NAME|QQ",
                                 help="the account (needed when several run): its "
                                      "[account:NAME] NAME or its QQ number")
    return parser


#: The commands that only need the running daemon's state_dir, so that a broken
#: configuration file does not lock the operator out of the daemon that runs.
_NEED_NO_VALID_FILE = ("stop", "status", "send", "captcha", "friends", "groups")


def main(argv: Optional[List[str]] = None) -> int:
    """``webqq``: returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)          # usage errors exit 2 here
    command = "check" if args.test else args.command
    if command is None:
        parser.print_help(sys.stderr)
        print("\nwebqq: error: a COMMAND is required", file=sys.stderr)
        return ExitCode.USAGE
    cli_log = _log_warnings_to_stderr()
    try:
        path = configuration.find_config(args.config)
        try:
            config = configuration.load(path)
        except ConfigError as error:
            return _broken_file(command, path, error, args)
        commands = Commands(config, account=getattr(args, "account", None))
        if command in ("run", "start", "restart"):
            # From here the daemon's own logging takes over.
            logging.getLogger().removeHandler(cli_log)
        return int(getattr(commands, command)(args))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return ExitCode.CONFIG
    except BrokenPipeError:
        # Whoever read our output left early (webqq status | head): no traceback;
        # stdout goes to /dev/null so that Python's own flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.FAILURE
    finally:
        logging.getLogger().removeHandler(cli_log)


def _broken_file(command: str, path: Path, error: ConfigError,
                 args: argparse.Namespace) -> int:
    """The configuration file is not valid: say so (the one line), then act on the
    daemon that runs with it when the command needs no more than its state_dir."""
    print(error, file=sys.stderr)
    state_dir = find_running(path) if command != "check" else None
    if state_dir is None:
        return ExitCode.CONFIG
    if command not in _NEED_NO_VALID_FILE:
        print("webqq: the daemon running from %s is left as it is; fix the file first"
              % path, file=sys.stderr)
        return ExitCode.CONFIG
    print("webqq %s: the file is not valid; acting on the daemon running from it "
          "(state_dir %s)" % (command, state_dir), file=sys.stderr)
    return int(getattr(Commands(_stand_in(path, state_dir), broken=error,
                                account=getattr(args, "account", None)), command)(args))


def find_running(path: Path) -> Optional[Path]:
    """The state_dir of the daemon running from configuration file ``path``, found
    without loading it: the note the daemon left (``Pointer``), else the state_dir the
    file seems to name, if a daemon started from this file holds the pidfile lock there.
    None when no such daemon runs."""
    state_dir = Pointer(path).state_dir()
    if state_dir is not None:
        return state_dir
    hint = configuration.state_dir_hint(path)
    if hint is None or not Pidfile.probe(hint / statedir.PIDFILE)[0]:
        return None
    status = read_status(_stand_in(path, hint)) or {}
    same = os.path.realpath(status.get("config") or "") == os.path.realpath(path)
    return hint if same else None


def _stand_in(path: Path, state_dir: Path) -> Config:
    """A configuration that knows only where the running daemon keeps its state: what
    ``stop``, ``status`` and the API verbs need (the rest are defaults, unused)."""
    return Config(source=path, accounts=(AccountConfig(qq=configuration.SIMULATOR_QQ),),
                  daemon=DaemonConfig(state_dir=state_dir), network=NetworkConfig(),
                  hosts=types.MappingProxyType({}), simulator=SimulatorConfig(),
                  bot=BotConfig(), api=ApiConfig(listen=None),
                  plugin_settings=types.MappingProxyType({}))


def _log_warnings_to_stderr() -> logging.Handler:
    """Configuration warnings (a secret readable by others) reach the user's terminal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("webqq: %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    return handler


def _accepted(status: Dict[str, Any]) -> bool:
    """Whether the login a code was entered for came online: the status keeps no
    captcha once it did, even when a poll failure has already sent it relinking."""
    return "captcha" in status and status["captcha"] is None \
        and status.get("online_since") is not None \
        and status.get("state") not in ("offline", "stopped")


def _new_image(status: Dict[str, Any]) -> Optional[str]:
    """The path of the image the server sent after refusing the last code entered,
    while the login waits for its code; else None."""
    captcha = status.get("captcha") or {}
    last_code = captcha.get("last_code") or {}
    if status.get("state") == "waiting_captcha" and last_code.get("outcome") == "refused" \
            and captcha["images"] > last_code["image"]:
        return captcha["image"]
    return None


class ApiUnavailable(Exception):
    """Raised when the daemon's API cannot answer a CLI verb (the message says why)."""


class Commands:
    """One method per command: takes the parsed arguments, prints, returns the exit
    code. ``system`` holds the OS effects (kill, sleep, clock) so tests can swap them;
    ``broken`` is the error of a configuration file that is not valid, when ``config``
    only stands in for it (``find_running``); ``account`` is ``--account NAME|QQ``."""

    def __init__(self, config: Config, system: Optional[System] = None,
                 broken: Optional[ConfigError] = None,
                 account: Optional[str] = None) -> None:
        self.config = config
        self.system = system or System()
        self.broken = broken
        self.account = account

    def check(self, args: argparse.Namespace) -> int:
        for account in self.config.accounts:
            configuration.resolve_password(self.config, account)     # ConfigError: exit 3
        sys.stdout.write(configuration.render_effective(self.config))
        logging.disable(logging.ERROR)                   # the problems are printed below
        try:
            modules = tuple(dict.fromkeys(self.config.bot.plugins + tuple(
                module for account in self.config.accounts for module in
                account.plugins or ())))
            problems = Dispatcher(lambda *_: None).load(modules, self.config.plugin_settings)
        finally:
            logging.disable(logging.NOTSET)
        for problem in problems:
            print("webqq check: plugin %s" % problem, file=sys.stderr)
        if problems:
            return ExitCode.FAILURE
        print("webqq check: %s is valid" % self.config.source, file=sys.stderr)
        return ExitCode.OK

    def run(self, args: argparse.Namespace) -> int:
        return Daemon(self.config, system=self.system).run()

    def start(self, args: argparse.Namespace) -> int:
        running, pid = Pidfile.probe(pidfile_path(self.config))
        if running:
            print("webqq is already running (pid %s)" % (pid or "starting"),
                  file=sys.stderr)
            return ExitCode.FAILURE
        code, line = Daemon(self.config, system=self.system).start(
            wait=args.wait, progress=lambda step: print(step, flush=True))
        print(line, file=sys.stdout if code == ExitCode.OK else sys.stderr)
        return code

    def stop(self, args: argparse.Namespace) -> int:
        code, line = self._stop(args.timeout)
        print("webqq %s" % line, file=sys.stdout if code == ExitCode.OK else sys.stderr)
        return code

    def _stop(self, timeout: float) -> Tuple[int, str]:
        """SIGTERM the daemon and wait for its lock to go; SIGKILL after ``timeout``."""
        path = pidfile_path(self.config)
        running, pid = self._wait_for_pid(path)
        if not running:
            return ExitCode.OK, "is not running"
        if pid is None:
            return ExitCode.FAILURE, "is starting and has not written its pid; try again"
        began = self.system.monotonic()
        self.system.kill(pid, signal.SIGTERM)
        if self._wait(lambda: not Pidfile.probe(path)[0], timeout):
            status = read_status(self.config) or {}
            report = status.get("shutdown") or {}
            return ExitCode.OK, ("stopped (pid %d) in %.1f s: outbox %s, session %s"
                                 % (pid, self.system.monotonic() - began,
                                    report.get("outbox", "?"), report.get("session", "?")))
        try:
            self.system.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._wait(lambda: not Pidfile.probe(path)[0], 5.0)
        return ExitCode.FAILURE, ("did not stop within %g s: killed (SIGKILL, pid %d); "
                                  "unsent messages may be lost" % (timeout, pid))

    def restart(self, args: argparse.Namespace) -> int:
        if self.account is not None:
            try:
                self._call("set_restart", {})
            except ApiUnavailable as error:
                return self._unavailable("restart", error)
            print("webqq restart: the session of account %s restarts; the other accounts "
                  "go on (webqq status tells how)" % self.account)
            return ExitCode.OK
        code, line = self._stop(args.timeout)
        print("webqq %s" % line, file=sys.stdout if code == ExitCode.OK else sys.stderr)
        if code != ExitCode.OK:
            return code
        return self.start(args)

    def status(self, args: argparse.Namespace) -> int:
        running, pid = Pidfile.probe(pidfile_path(self.config))
        status = read_status(self.config)
        if args.json:
            print(json.dumps(dict(status or {}, running=running), indent=1, sort_keys=True))
            return ExitCode.OK if running else ExitCode.FAILURE
        if not running:
            print(describe_stopped(status, pid, time.time()))
            return ExitCode.FAILURE
        if not status or status.get("pid") != pid:
            print("webqq is starting (pid %s)" % (pid or "not written yet"))
            return ExitCode.FAILURE
        try:
            chosen = self._chosen(status) if self.account is not None else None
        except ApiUnavailable as error:
            return self._unavailable("status", error)
        print("\n".join(describe(status, time.time(), only=chosen)))
        if status.get("api"):
            if len(status.get("accounts") or ()) > 1 and chosen is None:
                print("api: %s (webqq status --account NAME adds its store)"
                      % status["api"]["url"])
            else:
                print(self._describe_api(status["api"]["url"]))
        return ExitCode.FAILURE if not_online(status, only=chosen) else ExitCode.OK

    def _describe_api(self, url: str) -> str:
        try:
            data = self._call("get_status", {})
        except ApiUnavailable as error:
            return "api: %s (%s)" % (url, error)
        stat = data.get("stat", {})
        return "api: %s; store: %d received, %d sent, %d queued, %d failed; %d events " \
               "undelivered" % (url, stat.get("message_received", 0),
                                stat.get("message_sent", 0), stat.get("message_queued", 0),
                                stat.get("message_failed", 0),
                                stat.get("events_undelivered", 0))

    def reload(self, args: argparse.Namespace) -> int:
        running, pid = Pidfile.probe(pidfile_path(self.config))
        if not running:
            print("webqq is not running", file=sys.stderr)
            return ExitCode.FAILURE
        if pid is None:
            # Locked but empty: a daemon is starting; it reads the config as it comes up.
            print("webqq is starting and has not written its pid; try again",
                  file=sys.stderr)
            return ExitCode.FAILURE
        before = (read_status(self.config) or {}).get("reloads", 0)
        self.system.kill(pid, signal.SIGHUP)

        def reported() -> bool:
            return (read_status(self.config) or {}).get("reloads", 0) > before
        if not self._wait(reported, RELOAD_WAIT):
            print("webqq did not report the reload within %g s; see its log"
                  % RELOAD_WAIT, file=sys.stderr)
            return ExitCode.FAILURE
        result = read_status(self.config)["last_reload"]
        if not result["ok"]:
            print("webqq refused the new configuration: %s" % result["error"],
                  file=sys.stderr)
            return ExitCode.CONFIG
        print("webqq reloaded (pid %d)" % pid)
        if result["applied"]:
            print("webqq reload: applied %s" % ", ".join(result["applied"]))
        if result["at_restart"]:
            print("webqq reload: %s changed; that takes effect at the next restart "
                  "(webqq restart)" % ", ".join(result["at_restart"]))
        if not result["applied"] and not result["at_restart"]:
            print("webqq reload: nothing changed")
        problems = ["plugin %s" % problem for problem in result["plugin_errors"]]
        problems += ["account not started, the running one kept: %s" % problem
                     for problem in result.get("account_errors") or ()]
        if result["api_error"]:
            problems.append("[api] not applied, the API keeps its old settings: %s"
                            % result["api_error"])
        for problem in problems:
            print("webqq reload: %s" % problem, file=sys.stderr)
        return ExitCode.FAILURE if problems else ExitCode.OK

    # -- the API verbs -----------------------------------------------------------------

    def send(self, args: argparse.Namespace) -> int:
        message_type, key = _SEND_KINDS[args.chat]
        text = " ".join(args.text)
        try:
            target = self._target(args.chat, args.target)
            answer = self._call("send_msg", {"message_type": message_type, key: target,
                                             "message": text, "auto_escape": True},
                                check=False)
            message_id = (answer.get("data") or {}).get("message_id")
            stored = self._call("get_msg", {"message_id": message_id}) \
                if message_id else {}
        except ApiUnavailable as error:
            return self._unavailable("send", error)
        if args.json:
            print(json.dumps(dict(answer, stored=stored), indent=1, ensure_ascii=False))
        elif answer.get("status") == "failed":
            print("webqq send: %s" % answer.get("msg", "failed"), file=sys.stderr)
        else:
            state = stored.get("send_status", "queued")
            print("%s to %s %s (message_id %d)%s" % (
                state, args.chat, target, message_id,
                "; it goes out once the client is online" if state in ("queued", "sending")
                else ""))
        return ExitCode.OK if answer.get("status") == "ok" else ExitCode.FAILURE

    def _target(self, chat: str, target: str) -> int:
        """A number as is; a name looked up in the lists (nick, remark, group name)."""
        if target.isdigit():
            return int(target)
        if chat == "buddy":
            found = [f["user_id"] for f in self._call("get_friend_list", {})
                     if target in (f["nickname"], f["remark"])]
        elif chat == "group":
            found = [g["group_id"] for g in self._call("get_group_list", {})
                     if g["group_name"] == target]
        else:
            found = [d["discuss_id"] for d in self._call("get_discuss_list", {})
                     if d["discuss_name"] == target]
        if len(found) != 1:
            raise ApiUnavailable("%s %r: %s" % (chat, target, "no such name" if not found
                                                  else "the name is not unique"))
        return found[0]

    def captcha(self, args: argparse.Namespace) -> int:
        try:
            accounts = self._call("get_captcha", {})
            if args.code is None:
                return self._show_captcha(accounts, args.json)
            answer = self._call("enter_verify_code", {"code": args.code}, check=False)
            if args.json or answer.get("status") != "ok":
                print(json.dumps(answer, indent=1, ensure_ascii=False) if args.json else
                      "webqq captcha: %s" % answer.get("msg"),
                      file=sys.stdout if args.json else sys.stderr)
                return ExitCode.OK if answer.get("status") == "ok" else ExitCode.FAILURE
            return self._captcha_outcome(accounts, args.wait)
        except ApiUnavailable as error:
            return self._unavailable("captcha", error)

    def _show_captcha(self, accounts: List[Dict], as_json: bool) -> int:
        """Where each waiting image is: the file, and the page a browser answers on."""
        waiting = [account for account in accounts if account["waiting"]]
        if as_json:
            print(json.dumps(accounts, indent=1, ensure_ascii=False))
        elif not waiting:
            print("no account waits for a verify code (%s)" % ", ".join(
                "%d is %s" % (a["user_id"], a["state"]) for a in accounts))
        for account in waiting if not as_json else ():
            print("%d waits for a verify code (image %d): %s" % (
                account["user_id"], account["attempt"], account["image_path"]))
            if account["attempt"] > 1 and account["last_error"]:
                print("  the last code failed: %s" % account["last_error"])
            if account["page_url"]:
                print("  or answer it in a browser: %s&access_token=TOKEN (the API's "
                      "token: [api] token, or %s in state_dir)" % (account["page_url"],
                                                                   statedir.TOKEN))
        if waiting and not as_json:
            print("read it, then: webqq captcha CODE")
        return ExitCode.OK if waiting else ExitCode.FAILURE

    def _captcha_outcome(self, before: List[Dict], wait: float) -> int:
        """After a code was entered: wait for the login to go through (exit 0) or for
        a new image (the code was refused: exit 1)."""
        attempts = {a["user_id"]: a["attempt"] for a in before if a["waiting"]}
        outcome: List[str] = []

        def settled() -> bool:
            for account in self._call("get_captcha", {}):
                if account["user_id"] not in attempts:
                    continue
                if account["state"] == "online":
                    outcome[:] = ["ok", "verify code accepted: %d is online"
                                  % account["user_id"]]
                elif account["waiting"] and account["attempt"] > attempts[
                        account["user_id"]]:
                    outcome[:] = ["refused", "the code was refused (%s); a new image: %s"
                                  % (account["last_error"], account["image_path"])]
            return bool(outcome)
        if not self._wait(settled, wait):
            print("verify code entered; still logging in (webqq status tells how it goes)")
            return ExitCode.OK
        print(outcome[1], file=sys.stdout if outcome[0] == "ok" else sys.stderr)
        return ExitCode.OK if outcome[0] == "ok" else ExitCode.FAILURE

    def friends(self, args: argparse.Namespace) -> int:
        try:
            friends = self._call("get_friend_list", {})
        except ApiUnavailable as error:
            return self._unavailable("friends", error)
        if args.json:
            print(json.dumps(friends, indent=1, ensure_ascii=False))
            return ExitCode.OK
        for friend in sorted(friends, key=lambda f: f["user_id"]):
            remark = " (%s)" % friend["remark"] if friend["remark"] else ""
            print("%-12d %s%s" % (friend["user_id"], friend["nickname"], remark))
        print("%d friend(s)" % len(friends))
        return ExitCode.OK

    def groups(self, args: argparse.Namespace) -> int:
        try:
            groups = self._call("get_group_list", {})
            discussions = self._call("get_discuss_list", {})
        except ApiUnavailable as error:
            return self._unavailable("groups", error)
        if args.json:
            print(json.dumps({"groups": groups, "discussions": discussions}, indent=1,
                             ensure_ascii=False))
            return ExitCode.OK
        for group in sorted(groups, key=lambda g: g["group_id"]):
            print("group      %-12d %s (%d members)" % (group["group_id"],
                                                         group["group_name"],
                                                         group["member_count"]))
        for discussion in sorted(discussions, key=lambda d: d["discuss_id"]):
            print("discussion %-12d %s (%d members)" % (
                discussion["discuss_id"], discussion["discuss_name"],
                discussion["member_count"]))
        return ExitCode.OK

    def _unavailable(self, verb: str, error: Exception) -> int:
        print("webqq %s: %s" % (verb, error), file=sys.stderr)
        return ExitCode.FAILURE

    def _api_url(self) -> str:
        """The running daemon's API (its status file knows the bound port), else
        ``[api] listen``."""
        status = read_status(self.config) or {}
        if status.get("api") and Pidfile.probe(pidfile_path(self.config))[0]:
            return status["api"]["url"]
        if self.config.api.listen is None:
            raise ApiUnavailable("the API is off ([api] listen is empty)")
        host, port = self.config.api.listen
        host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, port)

    def _known_accounts(self, status: Optional[Dict] = None) -> List[Tuple[str, int]]:
        """``(name, qq)`` of each account: the running daemon's (its status file), else
        the configuration's."""
        status = read_status(self.config) if status is None else status
        running = (status or {}).get("accounts")
        if running and Pidfile.probe(pidfile_path(self.config))[0]:
            return [(name, entry["qq"]) for name, entry in running.items()]
        return [(account.name, account.qq) for account in self.config.accounts]

    def _chosen(self, status: Optional[Dict] = None) -> Optional[str]:
        """The name of the account ``--account`` names (None when not given).

        Raises ApiUnavailable: no such account."""
        if self.account is None:
            return None
        known = self._known_accounts(status)
        for name, qq in known:
            if self.account in (name, str(qq)):
                return name
        raise ApiUnavailable("no account %r (accounts: %s)" % (self.account, ", ".join(
            "%s (%d)" % pair for pair in known)))

    def _self_id(self) -> Optional[int]:
        """The ``self_id`` of the account an API verb is for: ``--account``'s, or None
        for the daemon's only account.

        Raises ApiUnavailable: no such account, or several run and none was chosen."""
        known = self._known_accounts()
        chosen = self._chosen()
        if chosen is None:
            if len(known) > 1:
                raise ApiUnavailable("%d accounts run (%s): choose one with --account "
                                     "NAME|QQ" % (len(known), ", ".join(
                                         "%s (%d)" % pair for pair in known)))
            return None
        return dict(known)[chosen]

    def _call(self, action: str, params: Dict, check: bool = True):
        """POST one action (for ``--account``'s account: its ``self_id``); returns its
        ``data`` (or, unchecked, the whole envelope).

        Raises ApiUnavailable: not running, refused, no such account or several to
        choose from, or (checked) the action failed.
        """
        self_id = self._self_id()
        if self_id is not None:
            params = dict(params, self_id=self_id)
        url = self._api_url()
        status = read_status(self.config) or {}
        if self.broken is not None and (status.get("api") or {}).get("token") != "generated":
            raise ApiUnavailable("its access token is in the configuration file, which is "
                                 "not valid")
        token = api_token(self.config)
        if token is None:
            raise ApiUnavailable("no access token: set [api] token, or start the daemon "
                                 "once to generate one")
        request = urllib.request.Request(
            "%s/%s" % (url, action), data=json.dumps(params).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ApiUnavailable("the API at %s answered %d %s" % (url, error.code,
                                                                    error.reason)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiUnavailable("webqq is not running, or its API at %s is not "
                                 "answering (%s)" % (url, reason)) from None
        if not check:
            return answer
        if answer.get("status") != "ok":
            raise ApiUnavailable("%s failed: %s" % (action, answer.get("msg")))
        return answer.get("data")

    # -- waiting for another process (the one place for sleeps) ------------------------

    def _wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Whether ``condition()`` became true within ``timeout`` seconds."""
        deadline = self.system.monotonic() + timeout
        while not condition():
            if self.system.monotonic() >= deadline:
                return False
            self.system.sleep(POLL_INTERVAL)
        return True

    def _wait_for_pid(self, path) -> Tuple[bool, Optional[int]]:
        """``Pidfile.probe``, waiting a little for a starting daemon to write its pid."""
        found: List[Tuple[bool, Optional[int]]] = []

        def known() -> bool:
            found[:] = [Pidfile.probe(path)]
            running, pid = found[0]
            return not running or pid is not None
        self._wait(known, 5.0)
        return found[0]


if __name__ == "__main__":
    sys.exit(main())
