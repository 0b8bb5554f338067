"""Alerts: notices grouped into incidents, each told once, to a webhook and an SMTP
server that are real servers on loopback (Tornado, and aiosmtpd on the test's loop;
the alerts' mail goes from its own worker thread through smtplib)."""
import asyncio
import json
import socket
from email import message_from_bytes
from typing import Any, Dict, List

import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from api_helpers import eventually
from tornado import netutil, web
from tornado.httpserver import HTTPServer

from webqq.daemon import alerts as alerts_module
from webqq.daemon.alerts import FLAPS, Alerts
from webqq.daemon.config import AlertConfig
from webqq.onebot.health import AccountNotice


class Hook(web.RequestHandler):
    """The webhook: records each alert; answers 500 ``fail`` times first."""

    def initialize(self, record: Dict[str, Any]) -> None:
        self.record = record

    def post(self) -> None:
        if self.record.get("fail", 0) > 0:
            self.record["fail"] -= 1
            self.set_status(500)
            return
        self.record.setdefault("alerts", []).append(json.loads(self.request.body))


class Mailbox:
    """aiosmtpd's handler: keeps each message and who logged in."""

    def __init__(self) -> None:
        self.mails: List[Any] = []
        self.logins: List[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password == b"s3cret")


@pytest.fixture
def servers(io_loop):
    """A webhook and an SMTP server on loopback: ``(record, mailbox, hook_url,
    smtp_port)``."""
    record: Dict[str, Any] = {}
    mailbox = Mailbox()
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    http = HTTPServer(web.Application([(r"/hook", Hook, {"record": record})]))
    http.add_sockets(sockets)
    loop = io_loop.asyncio_loop
    smtp = loop.run_until_complete(loop.create_server(
        lambda: SMTP(mailbox, authenticator=mailbox.authenticate, auth_require_tls=False,
                     hostname="mail.test"), "127.0.0.1", 0))
    yield (record, mailbox, "http://127.0.0.1:%d/hook" % sockets[0].getsockname()[1],
           smtp.sockets[0].getsockname()[1])
    http.stop()
    io_loop.run_sync(http.close_all_connections)
    smtp.close()
    loop.run_until_complete(smtp.wait_closed())


def make(servers, **settings) -> Alerts:
    record, mailbox, url, port = servers
    settings.setdefault("after", 0.2)
    settings.setdefault("settle", 0.3)
    config = AlertConfig(webhook_url=url, email_to=("ops@example.test",),
                         smtp_server=("127.0.0.1", port), **settings)
    return Alerts(config, hostname="bot-host",
                  links=lambda account: {"page": "http://api/captcha?account=%d" % account})


def notice(kind, *, account=10001, **facts) -> AccountNotice:
    reasons = {"offline": "poll stalled", "online": "relinked", "kicked": "kicked: elsewhere",
               "captcha": "verify code required"}
    return AccountNotice(account, kind, reasons[kind], 1000.0, **facts)


def kinds(record) -> List[str]:
    return [alert["kind"] for alert in record.get("alerts", [])]


@pytest.mark.gen_test(timeout=30)
async def test_a_flapping_account_sends_one_alert_and_one_all_clear(servers):
    record, mailbox, _, _ = servers
    alerts = make(servers)
    try:
        for _ in range(10):                      # ten drops, each relinked at once
            alerts.notice(notice("offline"))
            alerts.notice(notice("online"))
        await eventually(lambda: kinds(record) == ["offline", "back"] and
                         len(mailbox.mails) == 2, "one alert, then one all-clear")
        offline, back = record["alerts"]
        assert offline["account"] == 10001 and offline["drops"] == FLAPS
        assert back["drops"] == 10 and back["host"] == "bot-host"
        subjects = [mail["Subject"] for _, mail in mailbox.mails]
        assert subjects == ["webqq 10001 is offline", "webqq 10001 is back online"]
        recipients, first = mailbox.mails[0]
        assert recipients == ["ops@example.test"]
        assert first["From"] == "webqq@bot-host"
        assert "reason: poll stalled" in first.get_payload()
        assert alerts.delivered == {"webhook": 2, "email": 2}
    finally:
        await alerts.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_quick_relink_alerts_nobody_and_a_long_outage_does(servers):
    record, mailbox, _, _ = servers
    alerts = make(servers, after=0.3, settle=0.2)
    try:
        alerts.notice(notice("offline"))
        alerts.notice(notice("online"))
        await eventually(lambda: not alerts._incidents, "the short drop forgotten")
        alerts.notice(notice("offline", account=10002))     # one that stays away
        await eventually(lambda: kinds(record) == ["offline"], "the outage alert")
        assert record["alerts"][0]["account"] == 10002
        alerts.notice(notice("online", account=10002))
        await eventually(lambda: kinds(record) == ["offline", "back"] and
                         len(mailbox.mails) == 2, "all clear")
    finally:
        await alerts.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_captcha_is_told_once_then_the_kick_and_close_waits_for_it(servers):
    record, mailbox, _, _ = servers
    alerts = make(servers)
    alerts.notice(notice("offline"))
    alerts.notice(notice("captcha", attempt=1, image_path="/run/captcha-10001.jpg"))
    alerts.notice(notice("captcha", attempt=2, image_path="/run/captcha-10001.jpg"))
    alerts.notice(notice("kicked", final=True))
    await alerts.close()                       # the daemon stops: what is on its way goes
    assert kinds(record) == ["captcha", "kicked"]
    captcha = record["alerts"][0]
    assert captcha["page_url"] == "http://api/captcha?account=10001"
    assert captcha["image_path"] == "/run/captcha-10001.jpg"
    assert "webqq captcha CODE" in captcha["text"]
    assert [mail["Subject"] for _, mail in mailbox.mails] == [
        "webqq 10001 needs a verify code", "webqq 10001 was kicked"]
    alerts.notice(notice("offline", account=10003))         # closed: nothing more
    assert 10003 not in alerts._incidents


@pytest.mark.gen_test(timeout=30)
async def test_a_failing_webhook_is_tried_again_and_the_smtp_login_is_used(servers,
                                                                          monkeypatch):
    record, mailbox, _, _ = servers
    monkeypatch.setattr(alerts_module, "backoff_delay", lambda *args: 0.01)
    record["fail"] = 2
    alerts = make(servers, smtp_user="bot", smtp_password="s3cret")
    try:
        alerts.notice(notice("kicked", final=True))
        await eventually(lambda: kinds(record) == ["kicked"] and mailbox.mails, "delivered")
        assert mailbox.logins == ["bot"]
    finally:
        await alerts.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_unreachable_mail_server_is_logged_not_raised(servers, caplog):
    record, _, url, _ = servers
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    alerts = Alerts(AlertConfig(webhook_url=url, email_to=("ops@example.test",),
                                smtp_server=("127.0.0.1", closed), smtp_password=None),
                    hostname="bot-host")
    alerts.notice(notice("kicked", final=True))
    await alerts.close()
    assert kinds(record) == ["kicked"]
    assert alerts.delivered == {"webhook": 1, "email": 0}
    assert "not mailed through 127.0.0.1:%d" % closed in caplog.text


@pytest.mark.gen_test(timeout=10)
async def test_without_a_destination_an_alert_is_only_logged(caplog):
    alerts = Alerts(AlertConfig(), hostname="h")
    alerts.notice(notice("kicked", final=True))
    await alerts.close()
    assert "alert: webqq 10001 was kicked: kicked: elsewhere" in caplog.text
    await asyncio.sleep(0)


# -- [alert] in the ini file ---------------------------------------------------------------

def _ini(tmp_path, alert: str):
    file = tmp_path / "webqq.ini"
    file.write_text("[simulator]\nembedded = yes\n[alert]\n" + alert, encoding="utf-8")
    file.chmod(0o600)
    return file


@pytest.mark.parametrize("alert, problem", [
    ("email_to = ops@example.test, not-an-address\n",
     "[alert] email_to: 'not-an-address' is not an e-mail address (name@host)"),
    ("smtp_security = ssl\n", "[alert] smtp_security: 'ssl' is not starttls, tls or none"),
    ("smtp_user = bot\n", "[alert] smtp_password: smtp_user and smtp_password go together"),
    ("email_from = a@b.c d@e.f\n", "[alert] email_from: one address, not several"),
    ("webhook_url = ftp://x/\n", "[alert] webhook_url: 'ftp://x/' is not a URL starting "
                                 "with http:// or https://"),
    ("settle = soon\n", "[alert] settle: 'soon' is not a number of seconds"),
])
def test_a_bad_alert_key_is_one_line_naming_it(tmp_path, alert, problem):
    from webqq.daemon.config import ConfigError, load
    with pytest.raises(ConfigError) as caught:
        load(_ini(tmp_path, alert))
    assert str(caught.value) == "%s: %s" % (tmp_path / "webqq.ini", problem)


def test_the_alert_section_is_read_shown_masked_and_applied_live(tmp_path):
    from webqq.daemon import reload
    from webqq.daemon.config import load, render_effective
    loaded = load(_ini(tmp_path, "webhook_url = https://hooks.example/x?key=hush\n"
                                 "email_to = a@example.test b@example.test\n"
                                 "smtp_server = mail.example:587\nsmtp_security = STARTTLS\n"
                                 "smtp_user = bot\nsmtp_password = hush-hush\nafter = 5\n"))
    alert = loaded.alert
    assert alert.email_to == ("a@example.test", "b@example.test")
    assert (alert.smtp_server, alert.smtp_security, alert.after, alert.settle) == (
        ("mail.example", 587), "starttls", 5.0, 300.0)
    shown = render_effective(loaded)
    assert "hush" not in shown and "smtp_password = ********" in shown
    assert "\n[alert]\n" in shown and "email_to = a@example.test, b@example.test" in shown
    assert "hush" not in repr(alert)
    again = load(_ini(tmp_path, "after = 9\n"))
    live, at_restart = reload.compare(loaded, again)
    assert "[alert] after" in live and not [k for k in at_restart if "alert" in k]
