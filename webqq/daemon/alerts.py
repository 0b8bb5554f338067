"""Alerts: a person hears, by webhook and e-mail, when an account needs them.

alerts: ``Alerts`` listens to the accounts' notices (``webqq.onebot.health``: offline,
kicked, captcha, online) and groups them into incidents, so that a flapping account
sends one alert, not a hundred. Per account:

* an outage (it left ONLINE and relinks or logs in again by itself) becomes an incident
  once it has lasted ``[alert] after`` seconds, or on its ``FLAPS``-th drop before the
  account settled: a quick relink alone alerts nobody;
* a kick, a verify code to read, or a refusal for good is an incident at once;
* within an incident each kind is told once (``offline``, then ``captcha`` if a login
  comes to need one, ...); going offline again does not open a new one;
* the incident ends when the account has stayed online ``[alert] settle`` seconds: one
  last alert, ``back``, says so, with how long it lasted and how often it dropped.

Each alert goes to ``webhook_url`` (a JSON POST, tried ``WEBHOOK_ATTEMPTS`` times) and/or
by e-mail to ``email_to`` through ``smtp_server`` (``smtplib``, which blocks, runs in one
worker thread of our own: the IOLoop never waits for the mail server). ``close()`` waits
up to a bound for alerts still on their way, so a kick that stops the daemon is still
told.

What it must never do: block the IOLoop, send an alert for every flap, put a secret
(the SMTP password, a token) in an alert or a log line, or let a failed delivery stop
the daemon.
"""
import asyncio
import concurrent.futures
import email.message
import email.utils
import json
import logging
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Set
from urllib.request import Request

from tornado.ioloop import IOLoop

import webqq
from webqq.daemon.config import AlertConfig
from webqq.http.redact import redact_url
from webqq.http.retry import backoff_delay
from webqq.http.stream import HTTPStream, HTTPStreamError, RetryPolicy
from webqq.onebot.health import AccountNotice

__all__ = ["Alerts", "Alert", "WEBHOOK_ATTEMPTS", "SEND_TIMEOUT", "CLOSE_TIMEOUT", "FLAPS"]

log = logging.getLogger("webqq.alerts")

#: Tries of one webhook POST; the delay before try n+1 is 1, 2, 4 ... s.
WEBHOOK_ATTEMPTS = 3
#: Seconds a webhook POST or an SMTP exchange may take.
SEND_TIMEOUT = 10.0
#: Seconds ``close()`` waits for alerts still on their way by default.
CLOSE_TIMEOUT = 10.0
#: Drops within one incident that make it one, however short each was: a flapping
#: account is told of (once), even when it never stays away ``[alert] after`` seconds.
FLAPS = 3


@dataclass(frozen=True)
class Alert:
    """One alert, as the webhook receives it (``as_dict``) and the mail tells it.

    ``kind``: ``offline``, ``kicked``, ``captcha`` or ``back``. ``down_since``: when the
    incident's outage began; ``drops``: how often the account went offline within it;
    ``links``: the captcha's ``image`` and ``page`` on the API, when it listens.
    """
    account: int
    kind: str
    reason: str
    time: float
    down_since: Optional[float]
    drops: int
    host: str
    attempt: int = 0
    image_path: Optional[str] = None
    links: Dict[str, str] = field(default_factory=dict)

    def subject(self) -> str:
        what = {"offline": "is offline", "kicked": "was kicked",
                "captcha": "needs a verify code", "back": "is back online"}[self.kind]
        return "webqq %d %s" % (self.account, what)

    def text(self) -> str:
        """The mail's body: each fact on a line."""
        lines = ["%s (on %s)." % (self.subject(), self.host), "", "reason: %s" % self.reason]
        if self.down_since is not None:
            lines.append("down since: %s (%.0f s)" % (_clock(self.down_since),
                                                      self.time - self.down_since))
        if self.drops > 1:
            lines.append("went offline %d times in this incident" % self.drops)
        if self.kind == "captcha":
            lines.append("image %d: %s" % (self.attempt, self.image_path))
            if self.links.get("page"):
                lines.append("answer it at %s (with the API's access token), or run: "
                             "webqq captcha CODE" % self.links["page"])
            else:
                lines.append("answer it with: webqq captcha CODE")
        elif self.kind == "kicked":
            lines.append("the daemon stopped; webqq start logs in again")
        return "\n".join(lines) + "\n"

    def as_dict(self) -> Dict[str, Any]:
        return {"account": self.account, "kind": self.kind, "subject": self.subject(),
                "reason": self.reason, "time": self.time, "down_since": self.down_since,
                "drops": self.drops, "host": self.host, "attempt": self.attempt,
                "image_path": self.image_path, "image_url": self.links.get("image"),
                "page_url": self.links.get("page"), "text": self.text()}


def _clock(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


@dataclass
class _Incident:
    """An account's trouble, from its first drop until it has settled online."""
    down_since: float
    reason: str
    drops: int = 1
    opened: bool = False                    # alerted: past ``after``, or at once
    told: Set[str] = field(default_factory=set)
    timer: Optional[object] = None          # the ``after`` or the ``settle`` timer


class Alerts:
    """The alerts of one daemon (see the module doc).

    Args:
        config: ``[alert]`` (``AlertConfig``); ``configure`` replaces it on reload.
        links: ``links(account)``: the captcha's ``image`` and ``page`` URLs on the API.
        hostname: named in every alert (default: this machine's).
        clock: wall-clock seconds.
    """

    def __init__(self, config: AlertConfig, *,
                 links: Callable[[int], Dict[str, str]] = lambda account: {},
                 hostname: Optional[str] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.links = links
        self.hostname = hostname or socket.gethostname()
        self.clock = clock
        self.io_loop = IOLoop.current()
        self.delivered: Dict[str, int] = {"webhook": 0, "email": 0}
        self._incidents: Dict[int, _Incident] = {}
        self._pending: Set[asyncio.Future] = set()
        self._stream: Optional[HTTPStream] = None
        self._mailer: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return bool(self.config.webhook_url or self.config.email_to)

    def configure(self, config: AlertConfig) -> None:
        """A reload: the new settings take the next alert; open incidents go on."""
        self.config = config

    # -- notices into incidents ----------------------------------------------------------

    def notice(self, notice: AccountNotice) -> None:
        """``Health``'s listener: every notice of every account."""
        if self._closed:
            return
        account = notice.account
        incident = self._incidents.get(account)
        if notice.kind == "online":
            if incident is not None:            # over once it has settled
                self._cancel(incident)
                incident.timer = self.io_loop.call_later(self.config.settle,
                                                         self._settled, account)
            return
        if incident is None:
            incident = self._incidents[account] = _Incident(notice.time, notice.reason)
        elif notice.kind == "offline":
            incident.drops += 1
        incident.reason = notice.reason
        self._cancel(incident)
        if notice.kind == "offline" and not notice.final and not incident.opened \
                and incident.drops < FLAPS:
            incident.timer = self.io_loop.call_later(self.config.after, self._outlasted,
                                                     notice)
            return
        self._open(incident, notice, notice.kind)

    def _outlasted(self, notice: AccountNotice) -> None:
        incident = self._incidents.get(notice.account)
        if incident is not None:
            incident.timer = None
            self._open(incident, notice, "offline")

    def _open(self, incident: _Incident, notice: AccountNotice, kind: str) -> None:
        incident.opened = True
        if kind in incident.told:
            return
        incident.told.add(kind)
        self._send(Alert(notice.account, kind, notice.reason, self.clock(),
                         incident.down_since, incident.drops, self.hostname,
                         attempt=notice.attempt, image_path=notice.image_path,
                         links=self.links(notice.account) if kind == "captcha" else {}))

    def _settled(self, account: int) -> None:
        incident = self._incidents.pop(account, None)
        if incident is None or not incident.opened:
            return                              # short drops, too few to tell
        self._send(Alert(account, "back", "online for %g s" % self.config.settle,
                         self.clock(), incident.down_since, incident.drops, self.hostname))

    def _cancel(self, incident: _Incident) -> None:
        if incident.timer is not None:
            self.io_loop.remove_timeout(incident.timer)
            incident.timer = None

    # -- delivery ------------------------------------------------------------------------

    def _send(self, alert: Alert) -> None:
        log.warning("alert: %s: %s", alert.subject(), alert.reason)
        if not self.enabled:
            return
        task = asyncio.ensure_future(self._deliver(alert))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, alert: Alert) -> None:
        jobs = []
        if self.config.webhook_url:
            jobs.append(self._post(alert, self.config.webhook_url))
        if self.config.email_to:
            jobs.append(self._mail(alert, self.config))
        await asyncio.gather(*jobs)

    async def _post(self, alert: Alert, url: str) -> None:
        if self._stream is None:
            self._stream = HTTPStream(retry=RetryPolicy(attempts=1),
                                      connect_timeout=SEND_TIMEOUT,
                                      request_timeout=SEND_TIMEOUT)
        body = json.dumps(alert.as_dict(), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json",
                   "User-Agent": "webqq/%s" % webqq.__version__}
        problem = ""
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                response = await self._stream.fetch(Request(url, data=body, headers=headers,
                                                            method="POST"))
            except HTTPStreamError as error:
                problem = "%s: %s" % (type(error).__name__, error)
            else:
                if 200 <= response.status < 300:
                    self.delivered["webhook"] += 1
                    log.info("alert posted to %s", redact_url(url))
                    return
                problem = "HTTP %d" % response.status
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(backoff_delay(attempt, 1.0, 10.0))
        log.error("alert %r not posted to %s (%d tries): %s", alert.subject(),
                  redact_url(url), WEBHOOK_ATTEMPTS, problem)

    async def _mail(self, alert: Alert, config: AlertConfig) -> None:
        message = mail_of(alert, config, self.hostname)
        if self._mailer is None:
            self._mailer = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="webqq-smtp")
        try:
            await self.io_loop.run_in_executor(self._mailer, send_mail, config, message)
        except (OSError, smtplib.SMTPException) as error:
            log.error("alert %r not mailed through %s:%d: %s", alert.subject(),
                      *config.smtp_server, error)
            return
        self.delivered["email"] += 1
        log.info("alert mailed to %s", ", ".join(config.email_to))

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop: no new alert; wait up to ``timeout`` for those on their way."""
        self._closed = True
        for incident in self._incidents.values():
            self._cancel(incident)
        if self._pending:
            done, late = await asyncio.wait(list(self._pending), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d alert(s) still on their way were given up", len(late))
        if self._stream is not None:
            self._stream.close()
        if self._mailer is not None:
            self._mailer.shutdown(wait=False)


def mail_of(alert: Alert, config: AlertConfig, hostname: str) -> email.message.EmailMessage:
    """The mail of ``alert``: From ``email_from`` (default ``webqq@HOST``), To every
    ``email_to``, the subject, the text."""
    message = email.message.EmailMessage()
    message["From"] = config.email_from or "webqq@%s" % hostname
    message["To"] = ", ".join(config.email_to)
    message["Subject"] = alert.subject()
    message["Date"] = email.utils.formatdate(alert.time, localtime=True)
    message["Message-ID"] = email.utils.make_msgid("webqq")
    message.set_content(alert.text())
    return message


def send_mail(config: AlertConfig, message: email.message.EmailMessage) -> None:
    """One SMTP exchange (blocking: run it off the IOLoop): connect, TLS as
    ``smtp_security`` says, log in when ``smtp_user`` is set, send.

    Raises:
        OSError, smtplib.SMTPException: the server could not be reached or refused.
    """
    host, port = config.smtp_server
    context = ssl.create_default_context()
    if config.smtp_security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=SEND_TIMEOUT,
                                              context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=SEND_TIMEOUT)
    with smtp:
        if config.smtp_security == "starttls":
            smtp.starttls(context=context)
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password or "")
        smtp.send_message(message)
