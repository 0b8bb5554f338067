"""The login flow: from a password (or a saved session) to a live link on d.web2.

login: the requests of a login, in wire order, and what each answer leads to next. It
builds every request with ``webqq.qq``, sends it through the client's
``HTTPStream`` as a readback chain, and reads every answer with a protocol parser. It
never decides what a failure leads to (the client's recovery ladder does), never
changes the client's state, never opens a socket, and never logs the password or a
token.

A login, one method per answer (era A, spring 2013; era B adds the two bracketed hops;
with the era left to the server, "auto", the login page decides which it is)::

    begin()            [GET the login page -> _on_login_page: login_sig]
                       GET check           -> _on_check: salt, verify code needed?
    (a code needed)    GET getimage        -> _on_captcha_image: saved, captcha(path)
    enter_code(code)   GET login           -> _on_login: nick [, check_sig URL]; image removed
                       [GET check_sig      -> _after_check_sig: p_skey set]
                       POST login2         -> _on_login2: psessionid, vfwebqq; linked()
    relink(step)       POST login2 with the cookies and link held (relink, resume)

How it meets the client (the way Tornado's ``_HTTPConnection`` meets its client: a few
callables, no reference back)::

    flow = LoginFlow(qq, password, stream, state_dir, era=era, rng=rng,
                     epoch=lambda: client._epoch,    # tags each chain when it starts
                     failed=client._failed,          # failed(step, error): once per chain
                     captcha=client._on_captcha,     # captcha(path): a human must read it
                     linked=client._go_online)       # linked(): login2 accepted

A chain started under one epoch drops every answer that arrives after the epoch moved
on (the client bumps it to end running chains). A transport error, a non-200 status, a
parser's ``ProtocolError``, an ``OSError`` writing the image, even a bug in a readback:
each reaches ``failed(step, error)`` exactly once, ``step`` being ``"login"`` for the
whole login and the name given to ``relink`` (``"relink"``, ``"resume"``) otherwise.
"""
import logging
import os
import urllib.parse
from dataclasses import dataclass
from random import Random
from typing import Any, Callable, Optional

from webqq import statedir
from webqq.client.session import (SavedSession, cookie_value, cookies_from_data,
                                  cookies_to_data)
from webqq.http.errors import HTTPStreamError
from webqq.http.stream import HTTPStream, Response, RetryPolicy
from webqq.qq import (CheckResult, Era, ProtocolError, build_captcha, build_check,
                      build_check_sig, build_login, build_login2, build_login_page,
                      encrypt_password, parse_check, parse_login, parse_login2,
                      parse_login_sig)

__all__ = ["Link", "LoginFlow"]

log = logging.getLogger("webqq.client")

# A login step is not retried by HTTPStream: the client's own ladder tries the login
# again, with a Reconnecting event and one log line per attempt.
_LOGIN_RETRY = RetryPolicy(attempts=1)


@dataclass
class Link:
    """The ids of the current login that every d.web2 and s.web2 request repeats. One
    per client, changed in place by ``LoginFlow``; the poll chain, the ``Transmitter``
    and the contact loader read it when they build a request.

    Attributes:
        clientid: the client's 8-digit id, drawn once and kept across logins, as
            pual_bot and twqq kept theirs ("random, fixed"); ``new_clientid()`` draws
            another.
        psessionid: the d.web2 session token; None before login2 and after the client
            gave the session up (nothing left to save or resume).
        vfwebqq: the s.web2 token; None before login2.
    """
    clientid: int = 0
    psessionid: Optional[str] = None
    vfwebqq: Optional[str] = None

    def __repr__(self) -> str:
        return "Link(clientid=%d, psessionid=%s, vfwebqq=%s)" % (
            self.clientid, "***" if self.psessionid else None,
            "***" if self.vfwebqq else None)


class LoginFlow:
    """The requests of one account's logins, relinks and resumes (see the module doc).

    Args:
        qq: the account's QQ number.
        password: its password, held here only, to encrypt it with each check's salt.
        stream: the client's ``HTTPStream``; its cookie jar holds the login's cookies.
        state_dir: where the captcha image is written.
        era: ``Era.A``, ``Era.B`` (login page and ``login_sig`` first, ``check_sig``
            after ``login``), or None ("auto"): load the login page at each login and
            log in the Era B way when it carries a ``login_sig``, else the Era A way.
        rng: the client's randomness (client id, check nonces).
        epoch: the client's current epoch.
        failed: ``failed(step, error)``, when a chain of this flow fails for good.
        captcha: ``captcha(path)``, when a verify code is needed; answer with
            ``enter_code``.
        linked: ``linked()``, when login2 accepted and ``link`` holds its tokens.

    Attributes:
        link: the ``Link`` the flow fills.
        nick: the account's nickname, as the last login answered it ("" before).
        login_era: the era of the current or last login (None before the first one).
    """

    def __init__(self, qq: int, password: str, stream: HTTPStream, state_dir: str, *,
                 era: Optional[Era], rng: Random, epoch: Callable[[], int],
                 failed: Callable[[str, Exception], None],
                 captcha: Callable[[str], None], linked: Callable[[], None],
                 progress: Callable[[str], None] = lambda step: None) -> None:
        self.qq = qq
        self._password = password
        self.stream = stream
        self.state_dir = state_dir
        self.era = era
        self.rng = rng
        self.link = Link()
        self.nick = ""
        self._epoch = epoch
        self._failed = failed
        self._captcha = captcha
        self._linked = linked
        self._progress = progress
        self.login_era: Optional[Era] = None
        self._check: Optional[CheckResult] = None   # the salt of this login
        self._login_sig: Optional[str] = None       # era B's login page token

    # -- what the client asks for --------------------------------------------------------

    def begin(self) -> None:
        """Log in from the start (``check``, or the login page in era B) with the
        client id (drawn at the first login); the link's tokens are forgotten."""
        if not self.link.clientid:
            self.new_clientid()
        self.link.psessionid = self.link.vfwebqq = None
        self._check = self._login_sig = None
        self.login_era = self.era
        epoch = self._epoch()
        self._progress("checking the account")
        if self.era is None:                    # auto: the login page says which era
            self.stream.add_request(build_login_page(), self._probe(epoch),
                                    errback=self._probe_failed(epoch), retry=_LOGIN_RETRY)
            return
        if self.era is Era.B:                   # late 2013: the login page's login_sig first
            request, readback = build_login_page(), self._on_login_page
        else:
            request, readback = self._check_request(), self._on_check
        self.stream.add_request(request, self._step(epoch, "login", readback),
                                errback=self._errback(epoch, "login"), retry=_LOGIN_RETRY)

    def new_clientid(self) -> None:
        """Draw another client id for the next ``begin()``: the server called this one
        a wrong web client (122). Otherwise a login keeps it, so that to the server a
        relogin is the same client coming back, whose session (and what was queued for
        it) it may keep."""
        self.link.clientid = self.rng.randrange(10_000_000, 100_000_000)

    @property
    def waiting_code(self) -> bool:
        """True once a check answered: ``enter_code`` has a salt to work with."""
        return self._check is not None

    def enter_code(self, code: str) -> None:
        """Log in with the verify code a human read from the ``captcha(path)`` image.

        Raises:
            RuntimeError: no check has answered yet.
        """
        if self._check is None:
            raise RuntimeError("no check answered: there is no captcha to answer")
        request, readback = self._login_request(code, after_captcha=True)
        self.stream.add_request(request, readback,
                                errback=self._errback(self._epoch(), "login"),
                                retry=_LOGIN_RETRY)

    def relink(self, step: str) -> None:
        """``login2`` again with the cookies and the link held: after a kick, a stall or
        a network failure (``step`` ``"relink"``), or with a restored session
        (``"resume"``). Not retried by the stream: the client's ladder decides."""
        epoch = self._epoch()
        request, readback = self._login2_request(step)
        self.stream.add_request(request, readback, errback=self._errback(epoch, step),
                                retry=_LOGIN_RETRY)

    def restore(self, saved: SavedSession) -> None:
        """Put a saved session's cookies and link back, for ``relink("resume")``."""
        cookies_from_data(self.stream.cookiejar, saved.cookies)
        self.link.clientid, self.link.psessionid = saved.clientid, saved.psessionid
        self.link.vfwebqq = saved.vfwebqq

    def saved(self, msg_id: int) -> SavedSession:
        """What ``save_session`` writes to resume this login: its link, its cookies and
        ``msg_id``, the message counter a resumed session starts from."""
        return SavedSession(qq=self.qq, clientid=self.link.clientid,
                            psessionid=self.link.psessionid, vfwebqq=self.link.vfwebqq,
                            msg_id=msg_id, cookies=cookies_to_data(self.stream.cookiejar))

    # -- the answers, in wire order ------------------------------------------------------

    def _on_login_page(self, response: Response):
        self._login_sig = parse_login_sig(response.read())
        return self._check_request(), self._step(self._epoch(), "login", self._on_check)

    def _probe(self, epoch: int):
        """The readback of an "auto" login's page: a ``login_sig`` makes it an Era B
        login, any other answer an Era A one; then ``check``."""
        def decide(response: Response):
            if response.status != 200:
                return self._era_decided(Era.A, "the login page answered HTTP %d"
                                         % response.status)
            try:
                self._login_sig = parse_login_sig(response.read())
            except ProtocolError as exc:
                # The page itself only at DEBUG: a spring-2013 page is the normal case.
                log.debug("the login page: %s", exc)
                return self._era_decided(Era.A, "the login page has no login_sig")
            return self._era_decided(Era.B, "the login page has a login_sig")

        def readback(response: Response):
            if epoch != self._epoch():
                return None
            try:
                return decide(response)
            except Exception as exc:            # a bug: log it, and recover all the same
                log.exception("login step failed unexpectedly")
                self._failed("login", exc)
            return None
        return readback

    def _probe_failed(self, epoch: int):
        def errback(request, error: HTTPStreamError) -> None:
            if epoch != self._epoch():
                return
            # The error's words only at DEBUG: when the network is down the check fails
            # too and says them, one line per attempt.
            log.debug("the login page did not load: %s: %s", error.__class__.__name__,
                      error)
            request, readback = self._era_decided(
                Era.A, "the login page did not load (%s)" % error.__class__.__name__)
            self.stream.add_request(request, readback, errback=self._errback(epoch, "login"),
                                    retry=_LOGIN_RETRY)
        return errback

    def _era_decided(self, era: Era, why: str):
        """An "auto" login goes on as ``era``: its ``check`` request and readback."""
        self.login_era = era
        log.info("Login: %s: logging in the %s way (Era %s)", why,
                 "late-2013" if era is Era.B else "spring-2013", era.value)
        return self._check_request(), self._step(self._epoch(), "login", self._on_check)

    def _check_request(self):
        return build_check(self.qq, self.rng.random(), era=self.login_era,
                           login_sig=self._login_sig)

    def _on_check(self, response: Response):
        self._check = parse_check(response.read())
        if self._check.captcha_required:
            request = build_captcha(self.qq, self.rng.random())
            return request, self._step(self._epoch(), "login", self._on_captcha_image)
        return self._login_request(self._check.code, after_captcha=False)

    def _on_captcha_image(self, response: Response) -> None:
        path = os.path.join(self.state_dir, statedir.captcha_file(self.qq))
        statedir.ensure_dir(self.state_dir)
        statedir.atomic_write(path, response.read(), durable=False)
        self._captcha(path)

    def _login_request(self, verifycode: str, after_captcha: bool):
        encrypted = encrypt_password(self._password, self._check.uin_bytes,
                                     verifycode)
        request = build_login(self.qq, encrypted, verifycode, era=self.login_era,
                              login_sig=self._login_sig, after_captcha=after_captcha)
        self._progress("logging in")
        return request, self._step(self._epoch(), "login", self._on_login)

    def _on_login(self, response: Response):
        result = parse_login(response.read())
        self._remove_captcha_image()
        self.nick = result.nick
        if result.check_sig_url:                # era B: the hop that sets p_skey (§3.5)
            epoch = self._epoch()
            self.stream.add_request(
                build_check_sig(result.check_sig_url),
                self._step(epoch, "login", self._after_check_sig),
                errback=lambda _r, error: self._check_sig_failed(epoch, error))
            return None
        return self._login2_request("login")

    def _remove_captcha_image(self) -> None:
        """The login was accepted: a verify-code image (of this login or one left by an
        earlier run) has served. Not removing it is logged, not a failed login."""
        try:
            os.unlink(os.path.join(self.state_dir, statedir.captcha_file(self.qq)))
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("cannot remove the verify-code image: %s", error)

    def _after_check_sig(self, response: Response):
        return self._login2_request("login")

    def _check_sig_failed(self, epoch: int, error: HTTPStreamError) -> None:
        """Only the hop's cookies matter, not the page it redirects to (PB@87beb87 did
        not even follow it): with ``p_skey`` set, go on to login2 whatever happened."""
        if epoch != self._epoch():
            return
        if cookie_value(self.stream.cookiejar, "p_skey") is None:
            self._failed("login", error)
            return
        request, readback = self._login2_request("login")
        self.stream.add_request(request, readback, errback=self._errback(epoch, "login"))

    def _login2_request(self, step: str):
        ptwebqq = cookie_value(self.stream.cookiejar, "ptwebqq") or ""
        request = build_login2(ptwebqq, clientid=self.link.clientid,
                               psessionid=self.link.psessionid)
        return request, self._step(self._epoch(), step, self._on_login2)

    def _on_login2(self, response: Response) -> None:
        result = parse_login2(response.read())
        self.link.psessionid, self.link.vfwebqq = result.psessionid, result.vfwebqq
        self._linked()

    # -- chain plumbing: every readback and errback of the flow goes through these -------

    def _step(self, epoch: int, step: str, handler: Callable[[Response], Any]):
        """A readback that ignores answers of an ended chain, refuses non-200 statuses
        and turns any failure into ``failed(step, error)``."""
        def readback(response: Response):
            if epoch != self._epoch():
                return None
            if response.status != 200:
                where = urllib.parse.urlsplit(response.url).path   # the query has tokens
                self._failed(step, HTTPStreamError("HTTP %d %s from %s" % (
                    response.status, response.reason, where)))
                return None
            try:
                return handler(response)
            except (ProtocolError, OSError) as exc:
                self._failed(step, exc)
            except Exception as exc:            # a bug: log it, and recover all the same
                log.exception("%s step failed unexpectedly", step)
                self._failed(step, exc)
            return None
        readback.__name__ = handler.__name__
        return readback

    def _errback(self, epoch: int, step: str):
        def errback(request, error: HTTPStreamError) -> None:
            if epoch == self._epoch():
                self._failed(step, error)
        return errback
