"""Health, captcha and alerts of a real ``webqq run`` child: the simulator demands a verify
code (``/_sim/captcha`` + ``/_sim/expire``), a person answers it with the CLI (a wrong
code first: a new image), /readyz and ``webqq status`` follow; a flapping account and a
kick are told once per incident to a webhook and an SMTP server on loopback, each
served from a thread of the test (the daemon is another process)."""
import asyncio
import json
import threading
import urllib.error
import urllib.request
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List

import pytest
from aiosmtpd.smtp import SMTP
from daemon_helpers import DEADLINE, QQ, Daemon, daemon_simulator, wait_for, webqq, \
    write_config
from prometheus_client.parser import text_string_to_metric_families


class WebhookServer:
    """A webhook on loopback, in a thread: ``alerts`` are the JSON bodies POSTed."""

    def __init__(self) -> None:
        self.alerts: List[Dict[str, Any]] = []
        alerts = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                alerts.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/alerts" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> List[str]:
        return [alert["kind"] for alert in self.alerts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """aiosmtpd on its own loop in a thread: ``mails`` as they arrive."""

    def __init__(self) -> None:
        self.mails: List[Any] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        mails = self.mails

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                mails.append(message_from_bytes(envelope.content))
                return "250 OK"

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(self.loop.create_server(
                lambda: SMTP(Handler(), hostname="mail.test"), "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            self.loop.close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait(DEADLINE)

    def subjects(self) -> List[str]:
        return [mail["Subject"] for mail in self.mails]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)


@pytest.fixture
def receivers():
    webhook, smtp = WebhookServer(), SmtpServer()
    yield webhook, smtp
    webhook.close()
    smtp.close()


@pytest.fixture
def daemons():
    started = []

    def start(config):
        daemon = Daemon(config)
        started.append(daemon)
        return daemon
    yield start
    for daemon in started:
        daemon.close()


def config_with_alerts(tmp_path, receivers, **alert):
    webhook, smtp = receivers
    settings = {"webhook_url": webhook.url, "email_to": "ops@example.test",
                "smtp_server": "127.0.0.1:%d" % smtp.port}
    settings.update(alert)
    return write_config(tmp_path, api={"listen": "127.0.0.1:0"}, alert=settings)


def get(url, token=None):
    """``(status, body)`` of a GET on the daemon's API."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_captcha_answered_with_the_cli_after_a_wrong_code(tmp_path, daemons, receivers):
    webhook, smtp = receivers
    config = config_with_alerts(tmp_path, receivers, after="60", settle="0.5")
    daemon = daemons(config)
    api = daemon.wait_online()["api"]["url"]
    assert get(api + "/readyz")[0] == 200 and get(api + "/healthz")[0] == 200
    assert webqq(config, "status").returncode == 0
    assert webqq(config, "captcha").returncode == 1          # nothing waits

    sim = daemon_simulator(daemon)
    sim._call("captcha", {"account": QQ, "code": "ABCD"})
    sim._call("expire", {"account": QQ})
    wait_for(lambda: daemon.status().get("state") == "waiting_captcha", "the captcha")
    status = webqq(config, "status")
    assert status.returncode == 1 and "login: waiting_captcha as 10001" in status.stdout
    code, body = get(api + "/readyz")
    assert code == 503 and json.loads(body)["accounts"]["10001"]["waiting_captcha"]

    shown = webqq(config, "captcha")
    image = tmp_path / "run" / "captcha-10001.jpg"
    assert shown.returncode == 0, shown.stderr
    assert "10001 waits for a verify code (image 1): %s" % image in shown.stdout
    assert "or answer it in a browser: %s/captcha?account=10001&access_token=TOKEN" % api \
        in shown.stdout
    assert image.read_bytes()[:2] == b"\xff\xd8"

    wrong = webqq(config, "captcha", "WXYZ")
    assert wrong.returncode == 1
    assert "the code was refused" in wrong.stderr and str(image) in wrong.stderr
    assert "(image 2)" in webqq(config, "captcha").stdout
    right = webqq(config, "captcha", "ABCD")
    assert (right.returncode, right.stdout) == (0, "verify code accepted: 10001 is online\n")
    assert webqq(config, "status").returncode == 0
    wait_for(lambda: get(api + "/readyz")[0] == 200, "ready again")

    # One incident: the captcha told once (not again for the new image), then all clear.
    wait_for(lambda: webhook.kinds() == ["captcha", "back"] and len(smtp.mails) == 2,
             "the captcha alert and the all-clear")
    captcha = webhook.alerts[0]
    assert captcha["page_url"] == api + "/captcha?account=10001"
    assert smtp.subjects() == ["webqq 10001 needs a verify code", "webqq 10001 is back online"]
    assert "webqq captcha CODE" in smtp.mails[0].get_payload()


def test_flaps_and_a_kick_alert_once_per_incident_and_metrics_count_them(
        tmp_path, daemons, receivers):
    webhook, smtp = receivers
    config = config_with_alerts(tmp_path, receivers, after="60", settle="1")
    daemon = daemons(config)
    api = daemon.wait_online()["api"]["url"]
    token = (tmp_path / "run" / "api-token").read_text().strip()
    assert get(api + "/metrics")[0] == 401

    def relinks():
        code, body = get(api + "/metrics", token)
        assert code == 200
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == "webqq_relinks_total" and \
                        sample.labels == {"account": str(QQ)}:
                    return int(sample.value)
        return None

    sim = daemon_simulator(daemon)
    for flap in range(1, 5):                    # four drops, each relinked at once
        sim._call("kick", {"account": QQ})
        wait_for(lambda: relinks() == flap and get(api + "/readyz")[0] == 200,
                 "relink %d done" % flap)
    wait_for(lambda: webhook.kinds() == ["offline", "back"] and len(smtp.mails) == 2,
             "one alert for the flapping, one all-clear")
    assert webhook.alerts[0]["drops"] == 3 and webhook.alerts[1]["drops"] == 4

    sim.kick()                                  # a login elsewhere: offline for good
    assert daemon.process.wait(timeout=DEADLINE) == 1
    assert webhook.kinds() == ["offline", "back", "kicked"]  # told before it exited
    wait_for(lambda: len(smtp.mails) == 3, "the kick's mail")
    assert smtp.subjects() == ["webqq 10001 is offline", "webqq 10001 is back online",
                               "webqq 10001 was kicked"]
