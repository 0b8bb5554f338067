"""Configuration: the ini file read into typed, validated, frozen settings.

(Over 800 lines on purpose: every section's dataclass sits beside its reader, so a key's
default, converter and error are read in one place; the converters themselves live in
``webqq.daemon.datatypes``.)

What it is for: ``find_config`` picks the file (``-c``, else the first of ``search_path()``),
``load`` turns it into a ``Config`` (one frozen dataclass per section), ``resolve_password``
finds the account password when the daemon is about to log in, and ``render_effective``
writes what was understood, secrets masked, for ``webqq check``. Anything wrong in the file
raises ``ConfigError``, whose ``str`` is the one line the CLI prints before exit status 3::

    conf/webqq.ini: [network] request_timeout: 'abc' is not a number of seconds

Each key goes through a named converter of ``webqq.daemon.datatypes`` (``port``,
``seconds``, ``host_port``, ...); this module knows the sections, their keys and defaults,
and the rules that tie keys together.

What it must never do: open a socket, start anything, create a directory or write a file.
It reads the ini file, looks at the files it names (exists? readable by others?) and reads
the password file only inside ``resolve_password``; the daemon acts on the result.

Rules the ini file follows (conf/webqq.ini repeats them for its readers):

* Relative paths (``state_dir``, ``logfile``, ``password_file``, ``ca_file``, ``world``) are
  relative to the directory holding the configuration file, never to the working directory,
  so ``webqq start`` and a later ``webqq stop`` run from elsewhere agree on the pidfile,
  and systemd (which starts in ``/``) sees the paths a shell does. ``~`` is expanded.
* An absent key takes its default; a present key goes through its converter, so an empty
  value is an error unless the key says what empty means (``logfile =`` is stderr).
* Comments: a line whose first non-blank character is ``#`` or ``;``, and the rest of a line
  from a ``;`` that follows whitespace. A ``#`` after a value belongs to the value, and no
  ``%`` interpolation happens. A value holding " ;" cannot be written in the file: put such
  a password in ``password_file`` or ``WEBQQ_PASSWORD``; write a ``;`` prefix as
  ``command_prefix =;`` (no space before the ``;``).
* Only ``[bot] plugins`` and ``[plugin:NAME]`` values may continue on indented lines.
* ``[account]`` is the one account; ``[account:NAME]`` sections (NAME: letters, digits,
  ``_`` and ``-``) are several, run by one daemon. A file has one or the other, not both;
  no two accounts share a QQ number. Each may set ``era`` and ``plugins`` (instead of
  ``[bot] plugins``) besides its password source; ``Config.accounts`` lists them in file
  order. ``[account]``'s NAME is ``default``.
* Password, highest precedence first: the environment variable when non-empty
  (``WEBQQ_PASSWORD`` for ``[account]``, ``WEBQQ_PASSWORD_NAME`` for ``[account:NAME]``,
  NAME in capitals with ``-`` as ``_``), ``password_file``, ``password``. Setting both
  keys in the file is an error.
  The password is resolved lazily, by ``resolve_password`` when the daemon logs in or
  ``webqq check`` validates, so ``webqq stop`` and ``webqq status`` work for a user who may
  not read the password file.
* ``[simulator] embedded = yes`` makes ``[account]`` optional: ``qq`` defaults to the
  simulator's built-in account (``SIMULATOR_QQ``) and, without a password source,
  ``resolve_password`` returns None: the daemon takes the password from the simulator's
  world, which knows every account it serves (and gains those it did not list). ``[hosts]`` is ignored then (the daemon routes
  every protocol host to the simulator), with a warning if it is not empty.
* ``[api] listen`` on an address other than loopback needs ``[api] token``: a generated
  token would guard a public port with a secret only this machine's state_dir knows.
* The file is UTF-8; a byte order mark at its start (Notepad writes one) is ignored.

``state_dir_hint`` reads ``[daemon] state_dir`` from a file ``load`` refuses, for the
commands that must still find a running daemon after a bad edit (``stop``, ``status``).

Warnings (a file holding a secret that others may read, ignored ``[hosts]``) go to the
``webqq.config`` logger; ``find_config`` logs the file it chose there at INFO, which the
daemon repeats from ``Config.source`` once it has set up logging.
"""
from __future__ import annotations

import configparser
import dataclasses
import difflib
import ipaddress
import logging
import os
import re
import stat
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union

from webqq.daemon.datatypes import (access_token, bind_port, boolean, byte_size,
                                    command_prefix, count, email_addresses, era,
                                    existing_directory, existing_file, friend_policy,
                                    host_name, host_port, http_url, listen_address,
                                    loglevel, module_names, optional, path,
                                    positive_seconds, qq_number, seconds, smtp_security,
                                    send_interval, text, ws_url)
from webqq.http.redact import MASK, redact_url

logger = logging.getLogger("webqq.config")

#: The simulator's built-in account, the default ``[account] qq`` when it is embedded.
SIMULATOR_QQ = 10001
#: The environment variable that overrides the password keys of the file.
PASSWORD_ENV = "WEBQQ_PASSWORD"
#: The last place ``find_config`` looks (a module constant so tests can move it).
SYSTEM_CONFIG = Path("/etc/webqq/webqq.ini")
#: Default ``[daemon] state_dir``, relative to the configuration file's directory.
DEFAULT_STATE_DIR = "run"
#: The NAME of ``[account]``, the one account of a file without ``[account:NAME]``.
DEFAULT_ACCOUNT = "default"

_SECRET_FIELDS = frozenset({"password", "token", "secret", "smtp_password"})
# URLs whose userinfo and query are shown masked (``redact_url``).
_URL_FIELDS = frozenset({"post_url", "ws_reverse_url", "webhook_url"})
# Words that make a [plugin:NAME] key a secret: api_key, bot-token, password, ...
_SECRET_WORDS = frozenset({"password", "passwd", "pass", "token", "secret", "key", "apikey"})

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


class ConfigError(Exception):
    """Raised when the configuration cannot be used: the file is missing or unreadable, a
    section or key is unknown, a value is bad or a required key is missing.

    ``file``, ``section`` and ``key`` say where (``section`` and ``key`` may be None);
    ``problem`` says what is wrong, quoting the bad value. ``str(error)`` is the one line
    the CLI prints before exit status 3.
    """

    def __init__(self, file: Optional[PathLike], section: Optional[str],
                 key: Optional[str], problem: str) -> None:
        self.file = None if file is None else str(file)
        self.section = section
        self.key = key
        self.problem = problem
        where = _where(self.file, section, key)
        super().__init__(f"{where}: {problem}" if where else problem)


def _where(file: Optional[str], section: Optional[str], key: Optional[str]) -> str:
    """``'conf/webqq.ini: [network] retries'``, leaving out what is None."""
    place = None
    if section is not None:
        place = f"[{section}] {key}" if key is not None else f"[{section}]"
    return ": ".join(part for part in (file, place) if part)


# The sections. Each field is the key of the same name, converted; defaults are the
# values an absent key takes.

class _MaskedRepr:
    """A dataclass repr that shows secrets (password, token, secret, and secret-looking
    keys of plugin settings) as ``********``."""

    def __repr__(self) -> str:
        shown = ", ".join(f"{field.name}={_masked(field.name, getattr(self, field.name))!r}"
                          for field in dataclasses.fields(self))
        return f"{type(self).__name__}({shown})"


def _masked(name: str, value: object) -> object:
    """The value of field ``name`` as it may be shown: secrets replaced by ``MASK``."""
    if value is None:
        return None
    if name in _SECRET_FIELDS:
        return MASK
    if name in _URL_FIELDS:
        return redact_url(value)
    if name == "plugin_settings":
        return {module: _masked_settings(settings) for module, settings in value.items()}
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _masked_settings(settings: Mapping[str, str]) -> Dict[str, str]:
    """A plugin's settings as they may be shown: secret-looking keys masked."""
    return {key: MASK if looks_secret(key) else value for key, value in settings.items()}


def looks_secret(key: str) -> bool:
    """Whether a free-form key (``[plugin:NAME]``) names a secret: ``api_key``, ``token``."""
    return not _SECRET_WORDS.isdisjoint(re.split(r"[_.\-]", key.lower()))


@dataclass(frozen=True, repr=False)
class AccountConfig(_MaskedRepr):
    """``[account]`` or ``[account:NAME]``: an account the daemon logs in as. See
    ``resolve_password`` for the password.

    ``qq`` is required unless the simulator is embedded and the section is ``[account]``
    (then: ``SIMULATOR_QQ``). ``password`` is the literal from the file, None when empty
    or absent. ``password_file`` names a file whose first line is the password; None
    when unset. ``era``: ``auto`` (the login page decides), ``A`` (spring 2013) or ``B`` (late 2013).
    ``plugins``: the module names this account loads; None: ``[bot] plugins``.
    ``name``: NAME, ``DEFAULT_ACCOUNT`` for ``[account]``; ``section`` is the section.
    """

    qq: int
    password: Optional[str] = None
    password_file: Optional[Path] = None
    era: str = "auto"
    plugins: Optional[Tuple[str, ...]] = None
    name: str = DEFAULT_ACCOUNT
    section: str = "account"


@dataclass(frozen=True, repr=False)
class DaemonConfig(_MaskedRepr):
    """``[daemon]``: where the daemon keeps its state and writes its log.

    ``state_dir``: pidfile, cookies, captcha image and message store (created by the
    daemon); default ``run`` beside the configuration file. ``logfile``: None for stderr.
    ``loglevel``: a ``logging`` level number. ``log_max_bytes``: rotate the logfile at this
    size keeping ``log_backups`` old files; 0 means never rotate but reopen the file when
    logrotate moves it (``WatchedFileHandler``).
    """

    state_dir: Path
    logfile: Optional[Path] = None
    loglevel: int = logging.INFO
    log_max_bytes: int = 0
    log_backups: int = 5


@dataclass(frozen=True, repr=False)
class NetworkConfig(_MaskedRepr):
    """``[network]``: HTTPStream's knobs. Timeouts in seconds; ``retries`` is how many
    times a failed request is tried again; ``ca_file`` adds CA certificates to trust."""

    connect_timeout: float = 10.0
    request_timeout: float = 120.0
    retries: int = 5
    ca_file: Optional[Path] = None


@dataclass(frozen=True, repr=False)
class SimulatorConfig(_MaskedRepr):
    """``[simulator]``: the bundled WebQQ server, started in the daemon's IOLoop when
    ``embedded``. ``port`` serves plain HTTP and ``/_sim/``, ``tls_port`` the https hosts
    (0: any free port). ``poll_hold`` (seconds) and ``world`` (a world file): None for the
    simulator's own defaults."""

    embedded: bool = False
    port: int = 18080
    tls_port: int = 18443
    poll_hold: Optional[float] = None
    world: Optional[Path] = None


@dataclass(frozen=True, repr=False)
class BotConfig(_MaskedRepr):
    """``[bot]``: ``plugins`` are module names, loaded in order; ``command_prefix`` starts
    a command (``!ping``); ``send_interval`` is the least time in seconds between two
    messages the daemon sends; ``resend_ambiguous`` sends again a message whose fate is
    unknown (at least once) instead of reporting it ambiguous (at most once);
    ``accept_friends`` is False (no friend request accepted unattended), True (all) or
    the QQ numbers whose requests are accepted."""

    plugins: Tuple[str, ...] = ("webqq.plugins.builtin",)
    command_prefix: str = "!"
    send_interval: float = 0.5
    resend_ambiguous: bool = False
    accept_friends: Union[bool, Tuple[int, ...]] = False


@dataclass(frozen=True, repr=False)
class ApiConfig(_MaskedRepr):
    """``[api]``: the OneBot v11 control API.

    ``listen``: ``(host, port)`` of the HTTP and forward WebSocket server; None: no server.
    ``token``: the access_token; None: the daemon generates one into state_dir.
    ``post_url``: where events are POSTed; None: not posted. ``secret``: signs each POST
    (HMAC-SHA1 ``X-Signature``); None: unsigned. ``ws_reverse_url``: a reverse WebSocket
    to connect to; None: none. ``media_dir``: the directory whose files an ``image``
    segment may name (``file=PATH``); None: no file may be named. ``fetch_urls``: an
    ``image`` segment may name an http(s) URL, which webqq then fetches.
    ``metrics_public``: ``/metrics`` without the token.
    """

    listen: Optional[Tuple[str, int]] = ("127.0.0.1", 18765)
    token: Optional[str] = None
    post_url: Optional[str] = None
    secret: Optional[str] = None
    ws_reverse_url: Optional[str] = None
    media_dir: Optional[Path] = None
    fetch_urls: bool = False
    metrics_public: bool = False


@dataclass(frozen=True, repr=False)
class AlertConfig(_MaskedRepr):
    """``[alert]``: tell a person when an account goes offline, needs a verify code or
    is kicked, and when it is back: a POST to ``webhook_url`` and/or a mail to
    ``email_to`` through ``smtp_server`` (``smtp_security``: starttls, tls or none;
    ``smtp_user`` and ``smtp_password`` to log in). ``after``: seconds an account may be
    offline (relinking, logging in again) before that is an incident (a kick, a verify
    code or a refusal for good are incidents at once); ``settle``: seconds it must then
    stay online for the incident to end; going offline before is the same incident."""

    webhook_url: Optional[str] = None
    email_to: Tuple[str, ...] = ()
    email_from: Optional[str] = None
    smtp_server: Tuple[str, int] = ("127.0.0.1", 25)
    smtp_security: str = "none"
    smtp_user: Optional[str] = None
    smtp_password: Optional[str] = None
    after: float = 30.0
    settle: float = 300.0


@dataclass(frozen=True, repr=False)
class Config(_MaskedRepr):
    """The whole configuration, as ``load`` read it from ``source``.

    ``source`` is the path as given to ``load``, relative if it was: a daemon that changes
    its working directory keeps an absolute copy to load again on SIGHUP. ``accounts``:
    the ``[account]`` section, or each ``[account:NAME]``, in file order. ``hosts`` maps a
    protocol host name to the ``(host, port)`` to connect to instead
    (``HTTPStream(hosts=)``). ``plugin_settings`` maps a plugin's module name, as listed in
    ``[bot] plugins``, to the keys of its ``[plugin:NAME]`` section (str to str); a plugin
    without a section is absent. Both mappings are read-only.
    """

    source: Path
    accounts: Tuple[AccountConfig, ...]
    daemon: DaemonConfig
    network: NetworkConfig
    hosts: Mapping[str, Tuple[str, int]]
    simulator: SimulatorConfig
    bot: BotConfig
    api: ApiConfig
    plugin_settings: Mapping[str, Mapping[str, str]]
    alert: AlertConfig = AlertConfig()


_SECTIONS = ("account", "daemon", "network", "hosts", "simulator", "bot", "api", "alert")
_PLUGIN_PREFIX = "plugin:"
_ACCOUNT_PREFIX = "account:"
#: What NAME of ``[account:NAME]`` may be: it names the account on the command line,
#: in the status file and in the environment variable of its password.
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


# Finding and loading the file.

def search_path() -> Tuple[Path, ...]:
    """Where ``find_config`` looks without ``-c``, in order: ``conf/webqq.ini`` under the
    working directory, ``webqq/webqq.ini`` under ``$XDG_CONFIG_HOME`` (default
    ``~/.config``), then ``SYSTEM_CONFIG`` (``/etc/webqq/webqq.ini``)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return (Path("conf", "webqq.ini"), Path(config_home, "webqq", "webqq.ini"),
            SYSTEM_CONFIG)


def find_config(explicit: Optional[PathLike] = None) -> Path:
    """The configuration file to load, logged at INFO on ``webqq.config``.

    Args:
        explicit: the ``-c`` argument; when given it is returned as is (``load`` reports
            it if it cannot be read).

    Returns the path, relative when found relative to the working directory.
    Raises ConfigError when ``explicit`` is None and no file of ``search_path()`` exists.
    """
    if explicit is not None:
        chosen = Path(explicit)
    else:
        candidates = search_path()
        found = [candidate for candidate in candidates if candidate.is_file()]
        if not found:
            tried = ", ".join(str(candidate) for candidate in candidates)
            raise ConfigError(None, None, None,
                              f"no configuration file: tried {tried}; pass -c FILE")
        chosen = found[0]
    logger.info("using configuration %s", chosen)
    return chosen


def state_dir_hint(file: PathLike) -> Optional[Path]:
    """Where the configuration ``file`` keeps its state, read leniently: the last
    ``state_dir =`` line under ``[daemon]`` (the default, ``run`` beside the file, when
    there is none), for a file ``load`` refuses.

    Only a hint: a caller checks that a daemon does run there (its pidfile lock) before
    acting. Returns None when the file cannot be read or the value is no path.
    """
    source = Path(file)
    try:
        with open(source, encoding="utf-8-sig", errors="replace") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return None
    section, value = None, DEFAULT_STATE_DIR
    for line in lines:
        header = re.match(r"\s*\[([^\]]*)\]", line)
        if header:
            section = header.group(1).strip().lower()
            continue
        found = re.match(r"state_dir\s*=(.*)", line.strip())
        if section == "daemon" and found:
            value = re.sub(r"\s;.*", "", found.group(1)).strip()
    try:
        return path(value, Path(os.path.abspath(source)).parent)
    except ValueError:
        return None


def load(file: PathLike) -> Config:
    """Reads and validates the configuration file.

    Args:
        file: the ini file; relative paths inside it are taken from its directory.

    Returns the frozen ``Config``. Logs a warning on ``webqq.config`` when the file holds
    a secret and others may read it, or when ``[hosts]`` is set but ignored.
    Raises ConfigError naming file, section and key for an unreadable or malformed file,
    an unknown section or key, a bad value or a missing required key. The password is not
    resolved here: see ``resolve_password``.
    """
    source = Path(file)
    parser = _parse(source)
    base = Path(os.path.abspath(source)).parent

    def section(name: str) -> _Section:
        values = dict(parser[name]) if parser.has_section(name) else {}
        return _Section(source, name, values, base)

    for name in parser.sections():
        _check_section_name(source, name)
    simulator = _read_simulator(section("simulator"))
    bot = _read_bot(section("bot"))
    accounts = _read_accounts(source, parser, section, simulator.embedded)
    plugins = tuple(dict.fromkeys(bot.plugins + tuple(
        module for account in accounts for module in account.plugins or ())))
    config = Config(
        source=source,
        accounts=accounts,
        daemon=_read_daemon(section("daemon")),
        network=_read_network(section("network")),
        hosts=_read_hosts(section("hosts")),
        simulator=simulator,
        bot=bot,
        api=_read_api(section("api")),
        plugin_settings=_read_plugin_settings(source, parser, plugins),
        alert=_read_alert(section("alert")),
    )
    if config.hosts and simulator.embedded:
        logger.warning("%s: [hosts]: ignored while [simulator] embedded = yes: every "
                       "protocol host goes to the embedded simulator", source)
    secret = _first_secret(config)
    if secret is not None:
        _warn_if_readable_by_others(source, source, *secret)
    return config


def _parse(source: Path) -> configparser.ConfigParser:
    """The ini text, parsed under the rules of the module docstring."""
    parser = configparser.ConfigParser(
        delimiters=("=",),
        comment_prefixes=("#", ";"),
        inline_comment_prefixes=(";",),
        interpolation=None,
        # No header can be "", so a [DEFAULT] section is an ordinary (unknown) section
        # instead of keys silently copied into every section.
        default_section="",
    )
    try:
        # utf-8-sig: Notepad starts a UTF-8 file with a byte order mark; it is not text.
        with open(source, encoding="utf-8-sig") as stream:
            text = stream.read()
    except OSError as error:
        raise ConfigError(source, None, None,
                          f"cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(source, None, None,
                          f"not UTF-8 text (byte {error.start})") from None
    try:
        parser.read_string(text, source=str(source))
    except configparser.MissingSectionHeaderError as error:
        problem = _UNCLOSED if _unclosed(error.line) else "comes before any [section]"
        raise ConfigError(source, None, None, f"line {error.lineno}: "
                          f"{_quote_line(error.line)} {problem}") from None
    except configparser.DuplicateSectionError as error:
        raise ConfigError(source, error.section, None,
                          f"line {error.lineno}: the section appears twice") from None
    except configparser.DuplicateOptionError as error:
        raise ConfigError(source, error.section, error.option,
                          f"line {error.lineno}: the key appears twice") from None
    except configparser.ParsingError as error:
        lineno = error.errors[0][0]
        line = text.splitlines()[lineno - 1]
        problem = _UNCLOSED if _unclosed(line) else "is not 'key = value'"
        raise ConfigError(source, None, None,
                          f"line {lineno}: {_quote_line(line)} {problem}") from None
    return parser


_UNCLOSED = "is a section header without its closing ']'"


def _unclosed(line: str) -> bool:
    """A section header with its ']' left out: ``[account``."""
    return line.lstrip().startswith("[") and "]" not in line


def _quote_line(line: str) -> str:
    """A raw line as an error may quote it: not at all when it seems to set a secret
    (its first word is ``password``, ``api_key``, ...), since the value would follow."""
    line = line.strip()
    key = re.split(r"[\s=:]", line, maxsplit=1)[0]
    if looks_secret(key):
        return f"the line of {key!r} (not shown: a secret)"
    return repr(line)


def _check_section_name(source: Path, name: str) -> None:
    if name.startswith(_ACCOUNT_PREFIX):
        if not _ACCOUNT_NAME.fullmatch(name[len(_ACCOUNT_PREFIX):]):
            raise ConfigError(source, name, None, "NAME of [account:NAME] must be 1 to 32 "
                                                  "letters, digits, '_' or '-'")
        return
    if name in _SECTIONS or name.startswith(_PLUGIN_PREFIX):
        return
    raise ConfigError(source, name, None, "unknown section" + _suggestion(name, _SECTIONS))


def _suggestion(word: str, choices: Tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(choices)})"


class _Section:
    """The raw values of one section and the conversion of each into a typed value."""

    def __init__(self, source: Path, name: str, values: Dict[str, str], base: Path) -> None:
        self.source = source
        self.name = name
        self.values = values
        self.base = base

    def read(self, multiline: Tuple[str, ...] = (), **converters: Callable) -> Dict:
        """Converts the keys that are present; the caller's defaults cover the rest.

        Raises ConfigError for the first key (in file order) that has no converter, then
        for the first value that spans lines without being in ``multiline`` or that its
        converter refuses.
        """
        for key in self.values:
            if key not in converters:
                raise ConfigError(self.source, self.name, key,
                                  "unknown key" + _suggestion(key, tuple(converters)))
        return {key: self.convert(key, self.values[key], convert, key in multiline)
                for key, convert in converters.items() if key in self.values}

    def convert(self, key: str, value: str, convert: Callable[[str], T],
                multiline: bool = False) -> T:
        """``convert(value)``, its ValueError turned into a ConfigError for ``key``; the
        value of a secret (password, token, secret) is never quoted."""
        secret = key in _SECRET_FIELDS
        try:
            if "\n" in value and not multiline:
                raise ValueError(f"{'the value' if secret else repr(value)} spans lines "
                                 f"(an indented line continues the value above it)")
            return convert(value)
        except ValueError as error:
            problem = str(error)
            if secret and any(part and part in problem for part in (value, repr(value))):
                problem = "not a valid value (not shown: a secret)"
            raise ConfigError(self.source, self.name, key, problem) from None

    def path(self, value: str) -> Path:
        return path(value, self.base)

    def existing_file(self, value: str) -> Path:
        return existing_file(value, self.base)

    def existing_directory(self, value: str) -> Path:
        return existing_directory(value, self.base)

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.name, key, problem)


def _read_accounts(source: Path, parser: configparser.ConfigParser,
                   section: Callable[[str], "_Section"],
                   embedded: bool) -> Tuple[AccountConfig, ...]:
    """``[account]``, or every ``[account:NAME]`` in file order."""
    named = [name for name in parser.sections() if name.startswith(_ACCOUNT_PREFIX)]
    if not named:
        return (_read_account(section("account"), embedded, DEFAULT_ACCOUNT),)
    if parser.has_section("account"):
        raise ConfigError(source, "account", None, "[%s] is there too: name this one as "
                          "well ([account:NAME]), or keep only [account]" % named[0])
    accounts: Dict[int, AccountConfig] = {}
    for name in named:
        account = _read_account(section(name), False, name[len(_ACCOUNT_PREFIX):])
        if account.qq in accounts:
            raise ConfigError(source, name, "qq", "%d is [%s]'s already" % (
                account.qq, accounts[account.qq].section))
        accounts[account.qq] = account
    return tuple(accounts.values())


def _read_account(section: _Section, embedded: bool, name: str) -> AccountConfig:
    values = section.read(
        multiline=("plugins",),
        qq=qq_number,
        password=optional(text),
        password_file=optional(section.path),
        era=optional(era),
        plugins=optional(module_names),
    )
    if values.get("era") is None:
        values.pop("era", None)                 # empty: the default, auto
    if "qq" not in values:
        if not embedded:
            raise section.error("qq", "missing" + (" (required unless [simulator] "
                                                   "embedded = yes)"
                                                   if section.name == "account" else ""))
        values["qq"] = SIMULATOR_QQ
    if values.get("password") is not None and values.get("password_file") is not None:
        raise section.error("password_file", "password is set too; keep one of them")
    return AccountConfig(name=name, section=section.name, **values)


def _read_daemon(section: _Section) -> DaemonConfig:
    values = section.read(
        state_dir=section.path,
        logfile=optional(section.path),
        loglevel=loglevel,
        log_max_bytes=byte_size,
        log_backups=count,
    )
    values.setdefault("state_dir", section.path(DEFAULT_STATE_DIR))
    return DaemonConfig(**values)


def _read_network(section: _Section) -> NetworkConfig:
    return NetworkConfig(**section.read(
        connect_timeout=positive_seconds,
        request_timeout=positive_seconds,
        retries=count,
        ca_file=optional(section.existing_file),
    ))


def _read_hosts(section: _Section) -> Mapping[str, Tuple[str, int]]:
    hosts = {}
    for key, value in section.values.items():
        hosts[section.convert(key, key, host_name)] = section.convert(key, value, host_port)
    return types.MappingProxyType(hosts)


def _read_simulator(section: _Section) -> SimulatorConfig:
    return SimulatorConfig(**section.read(
        embedded=boolean,
        port=bind_port,
        tls_port=bind_port,
        poll_hold=optional(positive_seconds),
        world=optional(section.existing_file),
    ))


def _read_bot(section: _Section) -> BotConfig:
    return BotConfig(**section.read(
        multiline=("plugins",),
        plugins=module_names,
        command_prefix=command_prefix,
        send_interval=send_interval,
        resend_ambiguous=boolean,
        accept_friends=friend_policy,
    ))


def _read_api(section: _Section) -> ApiConfig:
    values = section.read(
        listen=optional(listen_address),
        token=optional(access_token),
        post_url=optional(http_url),
        secret=optional(text),
        ws_reverse_url=optional(ws_url),
        media_dir=optional(section.existing_directory),
        fetch_urls=boolean,
        metrics_public=boolean,
    )
    if values.get("secret") is not None and values.get("post_url") is None:
        raise section.error("secret", "set, but post_url is not: the secret only "
                                      "signs POSTed events")
    listen = values.get("listen", ApiConfig.listen)
    if listen is not None and not _is_loopback(listen[0]) and values.get("token") is None:
        # A generated token would guard a public port with a secret that only this
        # machine's state_dir knows: the clients elsewhere could not have it.
        raise section.error("token", f"listen = {_format(listen)} is not a loopback "
                                     f"address: set [api] token")
    return ApiConfig(**values)


def _read_alert(section: _Section) -> AlertConfig:
    values = section.read(
        webhook_url=optional(http_url), email_to=optional(email_addresses),
        email_from=optional(email_addresses), smtp_server=host_port,
        smtp_security=smtp_security, smtp_user=optional(text),
        smtp_password=optional(text), after=seconds, settle=seconds)
    values["email_to"] = values.get("email_to") or ()
    if values.get("email_from") is not None:
        if len(values["email_from"]) > 1:
            raise section.error("email_from", "one address, not several")
        values["email_from"] = values["email_from"][0]
    if (values.get("smtp_password") is None) != (values.get("smtp_user") is None):
        raise section.error("smtp_password" if values.get("smtp_user") else "smtp_user",
                            "smtp_user and smtp_password go together")
    return AlertConfig(**values)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (as ``listen_address`` returns it) only accepts this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_plugin_settings(source: Path, parser: configparser.ConfigParser,
                          plugins: Tuple[str, ...]) -> Mapping[str, Mapping[str, str]]:
    """``[plugin:NAME]`` sections keyed by module name. NAME is a module of ``[bot]
    plugins`` or, when only one listed module has it, the last part of its name
    (``[plugin:builtin]`` for ``webqq.plugins.builtin``)."""
    settings: Dict[str, Mapping[str, str]] = {}
    for name in parser.sections():
        if not name.startswith(_PLUGIN_PREFIX):
            continue
        short = name[len(_PLUGIN_PREFIX):]
        if short in plugins:
            matches = [short]
        else:
            matches = [module for module in plugins if module.rsplit(".", 1)[-1] == short]
        if len(matches) != 1:
            listed = ", ".join(plugins) or "none"
            problem = "matches several plugins" if matches else "no such plugin"
            raise ConfigError(source, name, None, f"{problem} in [bot] plugins ({listed})")
        module = matches[0]
        if module in settings:
            raise ConfigError(source, name, None, f"a second section for {module}")
        settings[module] = types.MappingProxyType(dict(parser[name]))
    return types.MappingProxyType(settings)


def _first_secret(config: Config) -> Optional[Tuple[str, str]]:
    """``(section, key)`` of the first secret the file itself holds, if any."""
    for account in config.accounts:
        if account.password is not None:
            return account.section, "password"
    for key in ("token", "secret"):
        if getattr(config.api, key) is not None:
            return "api", key
    if config.alert.smtp_password is not None:
        return "alert", "smtp_password"
    for module, values in config.plugin_settings.items():
        for key in values:
            if looks_secret(key):
                return _PLUGIN_PREFIX + module, key
    return None


def _warn_if_readable_by_others(source: Path, file: Path, section: str, key: str) -> None:
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & stat.S_IROTH:
        logger.warning("%s: %s is readable by others (mode %04o) and holds a secret; "
                       "chmod o-r %s", _where(str(source), section, key),
                       file, mode, file)


# The password and the effective configuration.

def password_variable(account: AccountConfig) -> str:
    """The environment variable that overrides ``account``'s password keys:
    ``WEBQQ_PASSWORD`` for ``[account]``, ``WEBQQ_PASSWORD_NAME`` for ``[account:NAME]``
    (``[account:shop-2]``: ``WEBQQ_PASSWORD_SHOP_2``)."""
    if account.section == "account":
        return PASSWORD_ENV
    return "%s_%s" % (PASSWORD_ENV, account.name.upper().replace("-", "_"))


def _password_source(account: AccountConfig, environ: Mapping[str, str]) -> str:
    """Which source ``resolve_password`` uses: the precedence, in one place."""
    if environ.get(password_variable(account)):
        return password_variable(account)
    if account.password_file is not None:
        return "password_file"
    if account.password is not None:
        return "password"
    return ""


def resolve_password(config: Config, account: AccountConfig,
                     environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """``account``'s password, from the first source set: its environment variable
    (``password_variable``, non-empty), ``password_file``, ``password``.

    Args:
        config: what ``load`` returned.
        account: one of ``config.accounts``.
        environ: the environment to read the variable from; default ``os.environ``.

    Returns the password, or None when none is set and the simulator is embedded (the
    daemon then asks the simulator's world for the password of ``account.qq``).
    Logs a warning when the password file is readable by others.
    Raises ConfigError when no source is set (and the simulator is not embedded), or the
    password file cannot be read, is empty or holds more than one line.
    """
    environ = os.environ if environ is None else environ
    source = _password_source(account, environ)
    if source == "password_file":
        return _read_password_file(config.source, account.section, account.password_file)
    if source == "password":
        return account.password
    if source:
        return environ[source]
    if config.simulator.embedded:
        return None
    raise ConfigError(config.source, account.section, "password",
                      f"missing: set password or password_file, or "
                      f"{password_variable(account)} in the environment")


def _read_password_file(source: Path, section: str, file: Path) -> str:
    """The first line of ``file``, which must be its only line (a final newline is fine)."""
    def error(problem: str) -> ConfigError:
        return ConfigError(source, section, "password_file", f"{file}: {problem}")

    try:
        with open(file, encoding="utf-8-sig") as stream:
            content = stream.read()
    except OSError as failure:
        raise error(f"cannot read: {failure.strerror or failure}") from None
    except UnicodeDecodeError:
        raise error("not UTF-8 text") from None
    _warn_if_readable_by_others(source, file, section, "password_file")
    password = content[:-1] if content.endswith("\n") else content
    password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise error("empty")
    if "\n" in password or "\r" in password:
        raise error("holds more than one line")
    return password


def render_effective(config: Config, environ: Optional[Mapping[str, str]] = None) -> str:
    """The configuration as ``webqq check`` prints it: ini text with every key, defaults
    filled in, paths absolute and secrets shown as ``********`` (in URLs: the userinfo
    and the query values, ``redact_url``).

    Loading the text again (from any directory) gives the same settings, except that a
    secret reads back as ``********``. A comment under ``[account]`` says where the password
    comes from; ``environ`` is read only for that (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    lines = [f"; effective configuration of {config.source} (secrets masked)"]
    for account in config.accounts:
        lines += ["", f"[{account.section}]"]
        for field in dataclasses.fields(account):
            value = getattr(account, field.name)
            if value is not None and field.name not in ("name", "section", "era"):
                lines.append(_render_line(field.name, _format(_masked(field.name, value))))
        source = _password_source(account, environ)
        if source:
            lines.append(f"; the password comes from {source}")
        elif config.simulator.embedded:
            lines.append("; no password is set: the embedded simulator supplies it")
        else:
            lines.append("; no password is set")
        lines.append(_render_line("era", account.era))
    for name in ("daemon", "network", "simulator", "bot", "api", "alert"):
        section = getattr(config, name)
        lines += ["", f"[{name}]"]
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            shown = (logging.getLevelName(value).lower() if field.name == "loglevel"
                     else _format(_masked(field.name, value)))
            lines.append(_render_line(field.name, shown))
    lines += ["", "[hosts]"]
    lines += [_render_line(name, _format(address)) for name, address in config.hosts.items()]
    for module, values in config.plugin_settings.items():
        lines += ["", f"[{_PLUGIN_PREFIX}{module}]"]
        lines += [_render_line(key, _format(value))
                  for key, value in _masked_settings(values).items()]
    return "\n".join(lines) + "\n"


def _format(value: object) -> str:
    """A typed value as the ini text its converter reads back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) \
            and isinstance(value[1], int):
        host, number = value
        return f"[{host}]:{number}" if ":" in host else f"{host}:{number}"
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value)
    return str(value).replace("\n", "\n    ")


def _render_line(key: str, shown: str) -> str:
    # "key = ;" would read back as an empty value: a ";" after a blank starts a comment.
    if not shown or shown.startswith(";"):
        return f"{key} ={shown}"
    return f"{key} = {shown}"
