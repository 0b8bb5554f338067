"""webqq.config: every way an ini file can be wrong gives one exact line; right files give
typed settings; secrets never show. Files are written under tmp_path; nothing listens."""
import configparser
import logging
import os
from pathlib import Path

import pytest

from webqq.daemon import config
from webqq.daemon.config import (ConfigError, find_config, load, render_effective,
                                 resolve_password)


def password_of(loaded, environ=None):
    """The password of the file's one account."""
    return resolve_password(loaded, loaded.accounts[0], environ)
from webqq.http.redact import redact_url, url_secrets

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED = "[simulator]\nembedded = yes\n"


def write(directory: Path, text: str, name: str = "webqq.ini", mode: int = 0o600) -> Path:
    """An ini file of ``text`` in ``directory``, with ``mode`` (private by default)."""
    file = directory / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    file.chmod(mode)
    return file


def error_of(file: Path) -> str:
    """The one line ``load(file)`` fails with."""
    with pytest.raises(ConfigError) as caught:
        load(file)
    return str(caught.value)


def warnings_of(caplog) -> list:
    return [record.getMessage() for record in caplog.records
            if record.name == "webqq.config" and record.levelno == logging.WARNING]


# The shipped file and the design card's sample.

def test_shipped_ini_loads_cleanly_and_embeds_the_simulator(caplog):
    loaded = load(ROOT / "conf" / "webqq.ini")
    assert warnings_of(caplog) == []
    assert loaded.simulator.embedded is True
    assert loaded.accounts[0].qq == config.SIMULATOR_QQ == 10001
    assert password_of(loaded, environ={}) is None
    assert loaded.daemon.state_dir == ROOT / "run"
    assert loaded.bot.plugins == ("webqq.plugins.builtin",)
    assert loaded.bot.command_prefix == "!"
    assert loaded.api.listen == ("127.0.0.1", 18765)
    assert loaded.hosts == {}


def test_shipped_ini_shows_the_defaults_or_says_where_it_does_not():
    """'A key left out takes the value shown below': a shipped value that differs from
    the default says so in its comment (issue 12, docs)."""
    lines = (ROOT / "conf" / "webqq.ini").read_text(encoding="utf-8").splitlines()
    loaded = load(ROOT / "conf" / "webqq.ini")
    comment, section = [], None
    for line in lines:
        if line.startswith((";", "#")):
            comment.append(line)
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section and hasattr(loaded, section):
            key = line.split("=")[0].strip()
            value = getattr(getattr(loaded, section), key)
            field = {f.name: f for f in config.dataclasses.fields(getattr(loaded, section))}[key]
            if field.default is not config.dataclasses.MISSING and value != field.default:
                assert "Default:" in " ".join(comment), (section, key)
        comment = []
    daemon = lines[lines.index("[daemon]"):lines.index("logfile =")]
    assert any("webqq start" in line and "state_dir/webqq.log" in line for line in daemon)


def test_shipped_ini_routes_every_simulator_host_when_its_hosts_are_uncommented():
    """README's standalone recipe uncomments [hosts]: a host the simulator serves that
    the block leaves out would be looked up in the real DNS (found by a new user:
    the login page and the heartbeat went to qq.com)."""
    from webqq.simulator.app import HTTP_HOSTS, TLS_HOSTS
    shipped = (ROOT / "conf" / "webqq.ini").read_text(encoding="utf-8")
    block = shipped.split("\n[hosts]\n")[1].split("\n[")[0]
    sample = dict(line[1:].split(" = ") for line in block.splitlines()
                  if line.startswith(";") and " = 127.0.0.1:" in line)
    expected = {host: "127.0.0.1:18080" for host in HTTP_HOSTS}
    expected.update({host: "127.0.0.1:18443" for host in TLS_HOSTS})
    assert sample == expected


def test_shipped_ini_documents_every_key():
    shipped = (ROOT / "conf" / "webqq.ini").read_text(encoding="utf-8")
    loaded = load(ROOT / "conf" / "webqq.ini")
    for section in ("daemon", "network", "simulator", "bot", "api", "alert"):
        for field in config.dataclasses.fields(getattr(loaded, section)):
            assert f"\n{field.name} =" in shipped, (section, field.name)
    for field in config.dataclasses.fields(loaded.accounts[0]):
        if field.name not in ("name", "section"):       # the section's header says them
            assert f"\n{field.name} =" in shipped, ("account", field.name)


def test_design_sample_with_inline_comments_on_headers_and_values(tmp_path, caplog):
    sample = write(tmp_path, """\
[account]
qq = 10001                  ; the account number
password =                  ; or password_file = PATH, or the WEBQQ_PASSWORD variable
[daemon]
state_dir = ./run           ; pidfile, cookies, captcha image, message store live here
logfile =                   ; empty: stderr
loglevel = info
[network]
connect_timeout = 10
request_timeout = 120
retries = 5
ca_file =                   ; extra CA certificates to trust (e.g. the simulator's)
[hosts]                     ; optional: route protocol hosts elsewhere, keep their names
d.web2.qq.com = 127.0.0.1:18080
ssl.ptlogin2.qq.com = 127.0.0.1:18443   ; an https host goes to a TLS port
[simulator]
embedded = yes              ; start the bundled simulator in-process and route every
                            ; protocol host to it: the out-of-the-box default
port = 18080                ; where it listens; its /_sim/ surface is how you talk to the bot
[bot]
plugins = webqq.plugins.builtin
command_prefix = !
[api]                       ; OneBot v11
listen = 127.0.0.1:18765    ; HTTP actions and forward WebSocket
token =                     ; access_token, required for every call; empty: generated
                            ; into state_dir
post_url =                  ; events are POSTed here when set
secret =                    ; HMAC-SHA1 X-Signature of each POST when set
ws_reverse_url =            ; reverse WebSocket to connect to when set
""")
    loaded = load(sample)
    assert loaded.accounts == (config.AccountConfig(qq=10001),)
    assert loaded.daemon.state_dir == tmp_path / "run"
    assert loaded.hosts == {"d.web2.qq.com": ("127.0.0.1", 18080),
                            "ssl.ptlogin2.qq.com": ("127.0.0.1", 18443)}
    assert loaded.simulator == config.SimulatorConfig(embedded=True, port=18080)
    assert loaded.api == config.ApiConfig()
    assert warnings_of(caplog) == [
        f"{sample}: [hosts]: ignored while [simulator] embedded = yes: every protocol "
        f"host goes to the embedded simulator"]


def test_absent_keys_take_their_defaults(tmp_path):
    loaded = load(write(tmp_path, EMBEDDED))
    assert loaded.accounts == (config.AccountConfig(qq=10001, password=None,
                                                  password_file=None),)
    assert loaded.daemon == config.DaemonConfig(state_dir=tmp_path / "run", logfile=None,
                                                loglevel=logging.INFO, log_max_bytes=0,
                                                log_backups=5)
    assert loaded.network == config.NetworkConfig(connect_timeout=10.0,
                                                  request_timeout=120.0, retries=5,
                                                  ca_file=None)
    assert loaded.simulator == config.SimulatorConfig(embedded=True, port=18080,
                                                      tls_port=18443, poll_hold=None,
                                                      world=None)
    assert loaded.bot == config.BotConfig(plugins=("webqq.plugins.builtin",),
                                          command_prefix="!", send_interval=0.5)
    assert loaded.api.listen == ("127.0.0.1", 18765)
    assert loaded.plugin_settings == {}


def test_every_key_set(tmp_path):
    (tmp_path / "ca.pem").write_text("CA")
    (tmp_path / "world.json").write_text("{}")
    loaded = load(write(tmp_path, """\
[account]
qq = 4294967295
password_file = secret/pw
[daemon]
state_dir = /var/lib/webqq
logfile = log/webqq.log
loglevel = DEBUG
log_max_bytes = 10MB
log_backups = 0
[network]
connect_timeout = 2.5
request_timeout = 90
retries = 0
ca_file = ca.pem
[hosts]
D.web2.qq.com = localhost:18080
s.web2.qq.com = [::1]:18080
[simulator]
embedded = off
port = 0
tls_port = 0
poll_hold = 0.2
world = world.json
[bot]
plugins = webqq.plugins.builtin,
    my_plugins.weather
command_prefix = /
send_interval = 0.5
[api]
listen = [::]:0
token = t
post_url = https://example.com:8443/events
secret = s
ws_reverse_url = wss://example.com/onebot
"""))
    assert loaded.accounts == (config.AccountConfig(qq=4294967295,
                                                  password_file=tmp_path / "secret" / "pw"),)
    assert loaded.daemon == config.DaemonConfig(
        state_dir=Path("/var/lib/webqq"), logfile=tmp_path / "log" / "webqq.log",
        loglevel=logging.DEBUG, log_max_bytes=10 * 1024 * 1024, log_backups=0)
    assert loaded.network == config.NetworkConfig(2.5, 90.0, 0, tmp_path / "ca.pem")
    assert loaded.hosts == {"d.web2.qq.com": ("localhost", 18080),
                            "s.web2.qq.com": ("::1", 18080)}
    assert loaded.simulator == config.SimulatorConfig(False, 0, 0, 0.2,
                                                      tmp_path / "world.json")
    assert loaded.bot == config.BotConfig(("webqq.plugins.builtin", "my_plugins.weather"),
                                          "/", 0.5)
    assert loaded.api == config.ApiConfig(("::", 0), "t", "https://example.com:8443/events",
                                          "s", "wss://example.com/onebot")


def test_config_is_frozen(tmp_path):
    loaded = load(write(tmp_path, EMBEDDED))
    with pytest.raises(config.dataclasses.FrozenInstanceError):
        loaded.network.retries = 1
    with pytest.raises(TypeError):
        loaded.hosts["x.qq.com"] = ("127.0.0.1", 1)


# Sections and keys that do not exist, and malformed files.

@pytest.mark.parametrize("header, problem", [
    ("acount", "unknown section (did you mean 'account'?)"),
    ("Network", "unknown section (did you mean 'network'?)"),
    ("DEFAULT", "unknown section (known: account, daemon, network, hosts, simulator, bot, "
                "api, alert)"),
])
def test_unknown_section(tmp_path, header, problem):
    file = write(tmp_path, f"{EMBEDDED}[{header}]\nx = 1\n")
    assert error_of(file) == f"{file}: [{header}]: {problem}"


def test_unknown_key_with_a_suggestion(tmp_path):
    file = write(tmp_path, f"{EMBEDDED}[network]\nretries = 1\nretry = 3\n")
    assert error_of(file) == f"{file}: [network] retry: unknown key (did you mean 'retries'?)"


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path):
    file = write(tmp_path, f"{EMBEDDED}[bot]\ncolour = red\n")
    assert error_of(file) == (f"{file}: [bot] colour: unknown key (known: plugins, "
                              f"command_prefix, send_interval, resend_ambiguous, "
                              f"accept_friends)")


def test_a_misspelt_required_key_is_reported_as_unknown_not_missing(tmp_path):
    file = write(tmp_path, "[account]\nqqq = 12345\n")
    assert error_of(file) == f"{file}: [account] qqq: unknown key (did you mean 'qq'?)"


@pytest.mark.parametrize("text, problem", [
    ("qq = 10001\n", "line 1: 'qq = 10001' comes before any [section]"),
    ("[account\nqq = 10001\n", "line 1: '[account' is a section header without its closing ']'"),
    ("[account]\nqq = 10001\n[bot\n", "line 3: '[bot' is a section header without its closing ']'"),
    ("[bot]\n[bot]\n", "[bot]: line 2: the section appears twice"),
    ("[account]\nqq = 10001\nQQ = 10002\n", "[account] qq: line 3: the key appears twice"),
    ("[account]\nqq: 10001\n", "line 2: 'qq: 10001' is not 'key = value'"),
])
def test_malformed_file(tmp_path, text, problem):
    file = write(tmp_path, text)
    assert error_of(file) == f"{file}: {problem}"


def test_file_not_found(tmp_path):
    assert error_of(tmp_path / "nope.ini") == (f"{tmp_path / 'nope.ini'}: cannot read: "
                                               f"No such file or directory")


def test_a_byte_order_mark_is_not_text(tmp_path):
    # What Notepad writes: UTF-8 with a BOM, here before a comment on line 1.
    file = tmp_path / "webqq.ini"
    file.write_bytes(b"\xef\xbb\xbf; my bot\n[simulator]\nembedded = yes\n"
                     b"[account]\npassword_file = pw\n")
    file.chmod(0o600)
    (tmp_path / "pw").write_bytes(b"\xef\xbb\xbfs3cret\r\n")
    (tmp_path / "pw").chmod(0o600)
    loaded = load(file)
    assert loaded.simulator.embedded is True
    assert password_of(loaded, environ={}) == "s3cret"


def test_file_not_utf8(tmp_path):
    file = tmp_path / "webqq.ini"
    file.write_bytes(b"[account]\nqq = \xff\n")
    assert error_of(file) == f"{file}: not UTF-8 text (byte 15)"


# Bad values: one per converter, plus the checks that span keys.

@pytest.mark.parametrize("section, key, value, problem", [
    ("simulator", "embedded", "maybe",
     "'maybe' is not a boolean (yes/no, true/false, on/off, 1/0)"),
    ("network", "retries", "-1", "'-1' is not a whole number (0 or more)"),
    ("daemon", "log_backups", "three", "'three' is not a whole number (0 or more)"),
    ("simulator", "port", "70000", "'70000' is not a port (0 to 65535, 0: any free port)"),
    ("simulator", "tls_port", "https", "'https' is not a port (0 to 65535, 0: any free port)"),
    ("network", "request_timeout", "abc", "'abc' is not a number of seconds"),
    ("network", "connect_timeout", "0", "'0' is not more than 0 seconds"),
    ("network", "connect_timeout", "inf", "'inf' is not a number of seconds"),
    ("bot", "send_interval", "-1", "'-1' is not a number of seconds"),
    ("simulator", "poll_hold", "1m", "'1m' is not a number of seconds"),
    ("daemon", "log_max_bytes", "10 parsecs",
     "'10 parsecs' is not a size in bytes (e.g. 0, 512KB, 10MB, 1GB)"),
    ("daemon", "loglevel", "loud",
     "'loud' is not a log level (debug, info, warning, error, critical)"),
    ("daemon", "loglevel", "", "'' is not a log level (debug, info, warning, error, critical)"),
    ("daemon", "state_dir", "", "'' is not a path"),
    ("account", "qq", "9999", "'9999' is not a QQ number (digits, 10000 to 4294967295)"),
    ("account", "qq", "4294967296",
     "'4294967296' is not a QQ number (digits, 10000 to 4294967295)"),
    ("account", "qq", "012345", "'012345' is not a QQ number (digits, 10000 to 4294967295)"),
    ("hosts", "d.web2.qq.com", "::1:18080",
     "'::1:18080' is not HOST:PORT (an IPv6 address in brackets: [::1]:18080)"),
    ("hosts", "d.web2.qq.com", "127.0.0.1",
     "'127.0.0.1' is not HOST:PORT (an IPv6 address in brackets: [::1]:18080)"),
    ("hosts", "d.web2.qq.com", "[::g]:80", "'[::g]:80': '::g' is not an IPv6 address"),
    ("hosts", "d.web2.qq.com", "127.0.0.1:0", "'127.0.0.1:0': 0 is not a port (1 to 65535)"),
    ("hosts", "d.web2.qq.com", "127.0.0.1:65536",
     "'127.0.0.1:65536': 65536 is not a port (1 to 65535)"),
    ("hosts", "d.web2.qq.com", "999.1.1.1:80",
     "'999.1.1.1:80': '999.1.1.1' is neither an IP address nor a host name"),
    ("hosts", "d.web2.qq.com", "bad_name:80",
     "'bad_name:80': 'bad_name' is neither an IP address nor a host name"),
    ("hosts", "bad_host", "127.0.0.1:80", "'bad_host' is not a host name"),
    ("hosts", "-d.qq.com", "127.0.0.1:80", "'-d.qq.com' is not a host name"),
    ("api", "listen", "localhost", "'localhost' is not HOST:PORT (an IPv6 address in "
                                   "brackets: [::1]:18080)"),
    ("api", "listen", "127.0.0.1:99999", "'127.0.0.1:99999': 99999 is not a port (0 to 65535)"),
    ("api", "post_url", "ftp://example.com/",
     "'ftp://example.com/' is not a URL starting with http:// or https://"),
    ("api", "post_url", "http:///events",
     "'http:///events' is not a URL starting with http:// or https://"),
    ("api", "post_url", "http://example.com:99999/", "'http://example.com:99999/' has a bad port"),
    ("api", "ws_reverse_url", "http://example.com/",
     "'http://example.com/' is not a URL starting with ws:// or wss://"),
    ("bot", "plugins", "webqq.plugins.builtin, 2bad", "'2bad' is not a Python module name"),
    ("bot", "plugins", "a.b, a.b", "'a.b' is listed twice"),
    ("bot", "command_prefix", "a b", "'a b' contains blanks"),
    ("bot", "command_prefix", ";",
     "'' is empty (a ';' after a space starts a comment: write command_prefix =;)"),
    ("simulator", "world", "nope.json", "'nope.json' is not a file: {dir}/nope.json does not "
                                         "exist"),
    ("network", "ca_file", "../ca.pem", "'../ca.pem' is not a file: {parent}/ca.pem does not "
                                         "exist"),
])
def test_bad_value(tmp_path, section, key, value, problem):
    simulator = "" if section == "simulator" else EMBEDDED
    file = write(tmp_path, f"{simulator}[{section}]\n{key} = {value}\n")
    problem = problem.format(dir=tmp_path, parent=tmp_path.parent)
    assert error_of(file) == f"{file}: [{section}] {key}: {problem}"


def test_an_indented_line_does_not_silently_join_a_single_line_value(tmp_path):
    file = write(tmp_path, f"{EMBEDDED}[daemon]\nlogfile = webqq.log\n  loglevel = debug\n")
    assert error_of(file) == (f"{file}: [daemon] logfile: 'webqq.log\\nloglevel = debug' "
                              f"spans lines (an indented line continues the value above it)")


@pytest.mark.parametrize("text, problem", [
    ("[account]\npassword webqq-demo\n",
     "line 2: the line of 'password' (not shown: a secret) is not 'key = value'"),
    ("password = webqq-demo\n",
     "line 1: the line of 'password' (not shown: a secret) comes before any [section]"),
    (f"{EMBEDDED}[plugin:builtin]\napi_key: webqq-demo\n",
     "line 4: the line of 'api_key' (not shown: a secret) is not 'key = value'"),
    (f"{EMBEDDED}[api]\ntoken = webqq-demo\n  more\n",
     "[api] token: the value spans lines (an indented line continues the value above it)"),
    (f"{EMBEDDED}[api]\npost_url = http://h/\nsecret = webqq-demo\n  more\n",
     "[api] secret: the value spans lines (an indented line continues the value above "
     "it)"),
    (f"{EMBEDDED}[account]\npassword = webqq-demo\n  more\n",
     "[account] password: the value spans lines (an indented line continues the value "
     "above it)"),
])
def test_a_config_error_never_quotes_a_secret(tmp_path, text, problem):
    file = write(tmp_path, text)
    assert error_of(file) == f"{file}: {problem}"


@pytest.mark.parametrize("token", ["密码-secret-token", "two words", "tab\there", "é-latin1"])
def test_an_api_token_must_be_printable_ascii(tmp_path, token):
    file = write(tmp_path, f"{EMBEDDED}[api]\ntoken = {token}\n")
    assert error_of(file) == (f"{file}: [api] token: must be printable ASCII without "
                              f"spaces (the value is not shown: a secret)")
    assert load(write(tmp_path, f"{EMBEDDED}[api]\ntoken = a-Z_0.9~!#$%&*+/=?^\n")
                ).api.token == "a-Z_0.9~!#$%&*+/=?^"


@pytest.mark.parametrize("listen", ["0.0.0.0:18765", "[::]:18765", "192.0.2.7:1",
                                    "bot.example.com:18765"])
def test_a_listen_address_beyond_loopback_needs_a_token(tmp_path, listen):
    file = write(tmp_path, f"{EMBEDDED}[api]\nlisten = {listen}\n")
    assert error_of(file) == (f"{file}: [api] token: listen = {listen} is not a loopback "
                              f"address: set [api] token")
    assert load(write(tmp_path, f"{EMBEDDED}[api]\nlisten = {listen}\ntoken = t0ken\n")
                ).api.token == "t0ken"


@pytest.mark.parametrize("listen", ["127.0.0.1:18765", "[::1]:0", "localhost:1", "127.8.9.1:2"])
def test_a_loopback_listen_address_does_without_a_token(tmp_path, listen):
    assert load(write(tmp_path, f"{EMBEDDED}[api]\nlisten = {listen}\n")).api.token is None


def test_the_state_dir_of_a_broken_file_is_read_leniently(tmp_path):
    broken = "[daemon]\nstate_dir = ../var  ; where it lives\n[bot]\nretries = 3\nno equals\n"
    assert config.state_dir_hint(write(tmp_path, broken)) == tmp_path.parent / "var"
    assert config.state_dir_hint(write(tmp_path, "garbage\n")) == tmp_path / "run"
    assert config.state_dir_hint(write(tmp_path, "[daemon]\nstate_dir =\n")) is None
    assert config.state_dir_hint(tmp_path / "absent.ini") is None


def test_secret_without_post_url(tmp_path):
    file = write(tmp_path, f"{EMBEDDED}[api]\nsecret = s\n")
    assert error_of(file) == (f"{file}: [api] secret: set, but post_url is not: the secret "
                              f"only signs POSTed events")


def test_empty_values_that_mean_off(tmp_path):
    loaded = load(write(tmp_path, f"{EMBEDDED}[api]\nlisten =\n[bot]\nplugins =\n"))
    assert loaded.api.listen is None
    assert loaded.bot.plugins == ()


def test_comment_rules_keep_hash_percent_and_glued_semicolons(tmp_path):
    loaded = load(write(tmp_path, "[account]\nqq = 12345\n"
                                  "password = a;b#c%(x)s  ; a comment\n"
                                  "[bot]\ncommand_prefix =;\n"
                                  "# a comment line\n; another\n"))
    assert loaded.accounts[0].password == "a;b#c%(x)s"
    assert loaded.bot.command_prefix == ";"


# Required keys.

def test_missing_qq_when_the_simulator_is_not_embedded(tmp_path):
    file = write(tmp_path, "[daemon]\nloglevel = info\n")
    assert error_of(file) == (f"{file}: [account] qq: missing (required unless [simulator] "
                              f"embedded = yes)")


def test_an_embedded_simulator_may_use_another_of_its_accounts(tmp_path):
    loaded = load(write(tmp_path, f"{EMBEDDED}[account]\nqq = 20001\n"))
    assert loaded.accounts[0].qq == 20001
    assert password_of(loaded, environ={}) is None


# The password: sources, precedence, failures, warnings.

def account(directory: Path, keys: str, embedded: bool = False) -> config.Config:
    return load(write(directory, (EMBEDDED if embedded else "") + "[account]\nqq = 12345\n"
                      + keys))


def test_password_from_the_file(tmp_path):
    assert password_of(account(tmp_path, "password = s3cret\n"), environ={}) == "s3cret"


@pytest.mark.parametrize("content", ["s3cret", "s3cret\n", "s3cret\r\n"])
def test_password_from_password_file_without_its_final_newline(tmp_path, content):
    write(tmp_path, content, name="pw")
    loaded = account(tmp_path, "password_file = pw\n")
    assert password_of(loaded, environ={}) == "s3cret"


def test_password_keeps_inner_and_leading_blanks(tmp_path):
    write(tmp_path, " s3 cret \n", name="pw")
    assert password_of(account(tmp_path, "password_file = pw\n"), environ={}) == " s3 cret "


def test_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBQQ_PASSWORD", "from-env")
    assert password_of(account(tmp_path, "")) == "from-env"


def test_the_environment_beats_password_file_and_password(tmp_path):
    write(tmp_path, "from-file", name="pw")
    environ = {"WEBQQ_PASSWORD": "from-env"}
    assert password_of(account(tmp_path, "password_file = pw\n"), environ) == "from-env"
    assert password_of(account(tmp_path, "password = inline\n"), environ) == "from-env"


def test_an_empty_environment_variable_is_unset(tmp_path):
    loaded = account(tmp_path, "password = inline\n")
    assert password_of(loaded, environ={"WEBQQ_PASSWORD": ""}) == "inline"


def test_password_and_password_file_together_are_an_error(tmp_path):
    file = write(tmp_path, "[account]\nqq = 12345\npassword = a\npassword_file = pw\n")
    assert error_of(file) == (f"{file}: [account] password_file: password is set too; "
                              f"keep one of them")


def test_no_password_source(tmp_path):
    loaded = account(tmp_path, "password =\n")
    with pytest.raises(ConfigError) as caught:
        password_of(loaded, environ={})
    assert str(caught.value) == (f"{loaded.source}: [account] password: missing: set "
                                 f"password or password_file, or WEBQQ_PASSWORD in the "
                                 f"environment")


@pytest.mark.parametrize("make, problem", [
    (lambda pw: None, "cannot read: No such file or directory"),
    (lambda pw: pw.mkdir(), "cannot read: Is a directory"),
    (lambda pw: pw.write_text(""), "empty"),
    (lambda pw: pw.write_text("\n"), "empty"),
    (lambda pw: pw.write_text("one\ntwo\n"), "holds more than one line"),
    (lambda pw: pw.write_bytes(b"\xff\n"), "not UTF-8 text"),
])
def test_unusable_password_file(tmp_path, make, problem):
    make(tmp_path / "pw")
    loaded = account(tmp_path, "password_file = pw\n")
    with pytest.raises(ConfigError) as caught:
        password_of(loaded, environ={})
    assert str(caught.value) == (f"{loaded.source}: [account] password_file: "
                                 f"{tmp_path / 'pw'}: {problem}")


def test_password_file_that_cannot_be_read(tmp_path):
    # A directory cannot be read as a file even by root, who reads any mode 000 file.
    (tmp_path / "pw").mkdir()
    loaded = account(tmp_path, "password_file = pw\n")
    with pytest.raises(ConfigError) as caught:
        password_of(loaded, environ={})
    assert str(caught.value).endswith(f"{tmp_path / 'pw'}: cannot read: Is a directory")


def test_loading_never_reads_the_password_file(tmp_path):
    loaded = account(tmp_path, "password_file = missing\n")
    assert loaded.accounts[0].password_file == tmp_path / "missing"


def test_a_config_file_with_a_password_readable_by_others_is_warned_about(tmp_path, caplog):
    file = write(tmp_path, "[account]\nqq = 12345\npassword = s3cret\n", mode=0o644)
    load(file)
    assert warnings_of(caplog) == [
        f"{file}: [account] password: {file} is readable by others (mode 0644) and holds a "
        f"secret; chmod o-r {file}"]


def test_an_api_token_counts_as_a_secret(tmp_path, caplog):
    file = write(tmp_path, f"{EMBEDDED}[api]\ntoken = t\n", mode=0o604)
    load(file)
    assert warnings_of(caplog) == [
        f"{file}: [api] token: {file} is readable by others (mode 0604) and holds a secret; "
        f"chmod o-r {file}"]


@pytest.mark.parametrize("text, mode", [
    ("[account]\nqq = 12345\npassword = s3cret\n", 0o640),
    ("[account]\nqq = 12345\npassword =\n", 0o644),
])
def test_no_warning_for_a_private_file_or_one_without_secrets(tmp_path, caplog, text, mode):
    load(write(tmp_path, text, mode=mode))
    assert warnings_of(caplog) == []


def test_a_password_file_readable_by_others_is_warned_about(tmp_path, caplog):
    password_file = write(tmp_path, "s3cret", name="pw", mode=0o644)
    loaded = account(tmp_path, "password_file = pw\n")
    assert password_of(loaded, environ={}) == "s3cret"
    assert warnings_of(caplog) == [
        f"{loaded.source}: [account] password_file: {password_file} is readable by others "
        f"(mode 0644) and holds a secret; chmod o-r {password_file}"]


# Finding the file.

@pytest.fixture
def places(tmp_path, monkeypatch):
    """A working directory, a HOME and a system file, none of them holding a config yet."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "etc" / "webqq" / "webqq.ini")
    return {"cwd": Path("conf", "webqq.ini"),
            "home": home / ".config" / "webqq" / "webqq.ini",
            "system": tmp_path / "etc" / "webqq" / "webqq.ini"}


def test_lookup_order_working_directory_then_home_then_system(places, caplog):
    caplog.set_level(logging.INFO, logger="webqq.config")
    for place in ("system", "home", "cwd"):
        write(places[place].parent, EMBEDDED, name=places[place].name)
        assert find_config() == places[place]
    assert caplog.messages[-1] == "using configuration conf/webqq.ini"


def test_lookup_honours_xdg_config_home(places, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    write(places["home"].parent, EMBEDDED)
    write(tmp_path / "xdg" / "webqq", EMBEDDED)
    assert find_config() == tmp_path / "xdg" / "webqq" / "webqq.ini"


def test_lookup_finds_nothing(places):
    with pytest.raises(ConfigError) as caught:
        find_config()
    assert str(caught.value) == (f"no configuration file: tried conf/webqq.ini, "
                                 f"{places['home']}, {places['system']}; pass -c FILE")


def test_an_explicit_file_wins_and_is_loaded_as_given(places, tmp_path):
    write(places["cwd"].parent, EMBEDDED, name="webqq.ini")
    assert find_config("other.ini") == Path("other.ini")


# Relative paths: from the configuration file's directory, whatever the working directory.

def test_relative_paths_are_taken_from_the_config_files_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "ca.pem").write_text("CA")
    file = write(tmp_path / "conf", "[account]\nqq = 12345\npassword_file = ../secret\n"
                                    "[daemon]\nstate_dir = ../run\nlogfile = log/webqq.log\n"
                                    "[network]\nca_file = ../ca.pem\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load(Path(os.path.relpath(file)))
    assert loaded.daemon.state_dir == tmp_path / "run"
    assert loaded.daemon.logfile == tmp_path / "conf" / "log" / "webqq.log"
    assert loaded.accounts[0].password_file == tmp_path / "secret"
    assert loaded.network.ca_file == tmp_path / "ca.pem"


def test_home_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    loaded = load(write(tmp_path, f"{EMBEDDED}[daemon]\nstate_dir = ~/webqq\n"
                                  f"logfile = /var/log/webqq.log\n"))
    assert loaded.daemon.state_dir == tmp_path / "home" / "webqq"
    assert loaded.daemon.logfile == Path("/var/log/webqq.log")


# Plugin sections.

PLUGINS = "[bot]\nplugins = webqq.plugins.builtin, acme.weather, other.weather\n"


def test_plugin_sections_by_full_or_short_name(tmp_path):
    loaded = load(write(tmp_path, f"{EMBEDDED}{PLUGINS}[plugin:builtin]\ngreeting = hi\n"
                                  f"[plugin:acme.weather]\ncity = Beijing\nAPI_KEY = k\n"))
    assert loaded.plugin_settings == {"webqq.plugins.builtin": {"greeting": "hi"},
                                      "acme.weather": {"city": "Beijing", "api_key": "k"}}


@pytest.mark.parametrize("section, problem", [
    ("plugin:nope", "no such plugin in [bot] plugins (webqq.plugins.builtin, acme.weather, "
                    "other.weather)"),
    ("plugin:weather", "matches several plugins in [bot] plugins (webqq.plugins.builtin, "
                       "acme.weather, other.weather)"),
    ("plugin:webqq.plugins.builtin", "a second section for webqq.plugins.builtin"),
])
def test_bad_plugin_section(tmp_path, section, problem):
    file = write(tmp_path, f"{EMBEDDED}{PLUGINS}[plugin:builtin]\nx = 1\n[{section}]\nx = 2\n")
    assert error_of(file) == f"{file}: [{section}]: {problem}"


# What `webqq check` shows: secrets never.

SECRETS = ("pw-s3cret", "tok-s3cret", "sig-s3cret", "key-s3cret")


def secret_laden(directory: Path) -> config.Config:
    return load(write(directory, f"""\
[account]
qq = 12345
password = {SECRETS[0]}
[api]
token = {SECRETS[1]}
post_url = http://127.0.0.1:5700/
secret = {SECRETS[2]}
[bot]
plugins = acme.weather
[plugin:weather]
api_key = {SECRETS[3]}
city = Beijing
"""))


def test_render_effective_masks_every_secret(tmp_path):
    shown = render_effective(secret_laden(tmp_path), environ={})
    assert not [secret for secret in SECRETS if secret in shown]
    assert "password = ********\n; the password comes from password\n" in shown
    assert "token = ********\n" in shown
    assert "secret = ********\n" in shown
    assert "[plugin:acme.weather]\napi_key = ********\ncity = Beijing\n" in shown


def test_credentials_in_urls_are_masked_where_shown_and_known_to_the_log_mask(tmp_path):
    loaded = load(write(tmp_path, f"""{EMBEDDED}[api]
post_url = http://user:UrlPass-777@127.0.0.1:9/hook?key=QueryKey-555&x=1
ws_reverse_url = ws://127.0.0.1:9/ws?access_token=WsTok%2B444
"""))
    for shown in (render_effective(loaded, environ={}), repr(loaded)):
        assert not [part for part in ("UrlPass", "QueryKey", "WsTok") if part in shown]
    shown = render_effective(loaded, environ={})
    assert "post_url = http://********@127.0.0.1:9/hook?key=********&x=********\n" in shown
    assert "ws_reverse_url = ws://127.0.0.1:9/ws?access_token=********\n" in shown
    assert redact_url("https://TOKEN-1@h/p") == "https://********@h/p"
    assert redact_url("http://h:1/p") == "http://h:1/p"
    assert url_secrets(loaded.api.post_url) == ("UrlPass-777", "QueryKey-555", "1")
    assert url_secrets(loaded.api.ws_reverse_url) == ("WsTok%2B444", "WsTok+444")
    assert url_secrets("https://TOKEN-1@h/p") == ("TOKEN-1",)
    assert url_secrets(None) == ()


def test_repr_masks_every_secret(tmp_path):
    shown = repr(secret_laden(tmp_path))
    assert not [secret for secret in SECRETS if secret in shown]
    assert "password='********'" in shown


def test_render_effective_names_the_password_source(tmp_path):
    loaded = secret_laden(tmp_path)
    shown = render_effective(loaded, environ={"WEBQQ_PASSWORD": "env-s3cret"})
    assert "; the password comes from WEBQQ_PASSWORD\n" in shown
    assert "env-s3cret" not in shown
    embedded = render_effective(load(write(tmp_path, EMBEDDED)), environ={})
    assert "; no password is set: the embedded simulator supplies it\n" in embedded


def test_render_effective_reads_back_as_the_same_settings(tmp_path):
    (tmp_path / "ca.pem").write_text("CA")
    original = load(write(tmp_path, """\
[account]
qq = 12345
password_file = pw
[daemon]
loglevel = warning
log_max_bytes = 1KB
[network]
connect_timeout = 0.25
ca_file = ca.pem
[hosts]
d.web2.qq.com = [::1]:18080
s.web2.qq.com = 127.0.0.1:18080
[simulator]
poll_hold = 3
[bot]
plugins = a.b
    c
command_prefix =;
[api]
listen =
ws_reverse_url = ws://127.0.0.1:8080/ws
[plugin:c]
lines = one
    two
"""))
    copy = write(tmp_path / "elsewhere", render_effective(original, environ={}))
    reloaded = load(copy)
    assert reloaded.source == copy
    assert config.dataclasses.replace(reloaded, source=original.source) == original


# The systemd unit agrees with the exit codes and the system configuration path.

def test_systemd_unit():
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read(ROOT / "conf" / "webqq.service", encoding="utf-8")
    service = unit["Service"]
    assert service["Type"] == "simple"
    assert service["ExecStart"].endswith(f"webqq -c {config.SYSTEM_CONFIG} run")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"].split() == ["3", "4"]
    assert service["User"] == "webqq"


def test_systemd_template_unit_is_the_unit_per_shard():
    def read(name):
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.optionxform = str
        unit.read(ROOT / "conf" / name, encoding="utf-8")
        return {(section, key): value for section in unit.sections()
                for key, value in unit[section].items()}
    single, template = read("webqq.service"), read("webqq@.service")
    per_shard = {("Unit", "Description"), ("Service", "ExecStart"),
                 ("Service", "EnvironmentFile"), ("Service", "StateDirectory")}
    assert set(single) == set(template)
    assert {k: v for k, v in template.items() if k not in per_shard} == \
        {k: v for k, v in single.items() if k not in per_shard}     # hardening and all
    assert template[("Service", "ExecStart")].endswith("webqq -c /etc/webqq/%i.ini run")
    assert template[("Service", "StateDirectory")] == "webqq/%i"
    assert template[("Service", "EnvironmentFile")] == "-/etc/webqq/%i.env"
