"""The captcha page: a person answers a login's verify code from a browser.

captcha: three routes on the API, each needing the access token (``?access_token=`` or
``Authorization: Bearer``), the token compared as the actions compare it:

    GET  /captcha                the page: each account waiting for a code, its image,
                                 a field to answer; without a token, a field for it
    POST /captcha                form fields account, code, access_token: the code is
                                 entered (the page again, saying so)
    GET  /captcha/image?account=QQ   the image (image/jpeg), the file the client saved
    GET  /captcha/state?account=QQ   JSON: state, waiting, attempt, reason

The page asks ``/captcha/state`` every ``REFRESH`` seconds: after a wrong code the login
starts again and the server draws a new image (``attempt`` grows), which the page then
shows with the reason; once online it says so. The token travels in the form and the
page's requests as it came in; the page is never cached, sends no Referer and may not
be framed.

What it must never do: log the token or a code, show a page without the token, or
answer for an account that does not wait for a code.
"""
import html
import json
import secrets
from typing import Any, Dict, Optional

from tornado import web

from webqq.client.client import State
from webqq.onebot.handlers import check_token
from webqq.onebot.health import AccountWatch, Health

__all__ = ["CaptchaPage", "CaptchaImage", "CaptchaState", "REFRESH", "routes"]

#: Seconds between two questions of the page to /captcha/state.
REFRESH = 1.0


def routes(health: Health, token: str) -> list:
    """The Tornado routes of the captcha page (before the actions' catch-all)."""
    options = {"health": health, "token": token}
    return [(r"/captcha/?", CaptchaPage, options),
            (r"/captcha/image/?", CaptchaImage, options),
            (r"/captcha/state/?", CaptchaState, options)]


class _Guarded(web.RequestHandler):
    """The token check and the headers every captcha route sends."""

    def initialize(self, health: Health, token: str) -> None:
        self.health = health
        self.token = token

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("X-Content-Type-Options", "nosniff")

    def compute_etag(self) -> Optional[str]:
        return None

    def given_token(self) -> Optional[str]:
        return self.get_argument("access_token", None)

    def refused(self) -> int:
        """0 when the request carries the token, else 401 (none) or 403 (wrong)."""
        return check_token(self.token, self.request.headers.get("Authorization"),
                           self.given_token())

    def watch(self) -> Optional[AccountWatch]:
        """The watch named by ``account`` (the only one when there is one), or None."""
        account = self.get_argument("account", "")
        if account.isdigit():
            return self.health.watches.get(int(account))
        if not account and len(self.health.watches) == 1:
            return next(iter(self.health.watches.values()))
        return None


class CaptchaImage(_Guarded):
    def get(self) -> None:
        if self.refused():
            raise web.HTTPError(self.refused())
        watch = self.watch()
        if watch is None or watch.captcha is None:
            raise web.HTTPError(404)
        try:
            with open(watch.captcha[0], "rb") as image:
                data = image.read()
        except OSError:
            raise web.HTTPError(404) from None
        self.set_header("Content-Type", "image/jpeg")
        self.finish(data)


def describe(watch: AccountWatch) -> Dict[str, Any]:
    """What the page shows of an account, as ``/captcha/state`` answers."""
    captcha = watch.captcha
    return {"account": watch.account, "state": watch.state.value,
            "waiting": captcha is not None, "attempt": captcha[1] if captcha else 0,
            "reason": watch.last_error}


class CaptchaState(_Guarded):
    def get(self) -> None:
        if self.refused():
            raise web.HTTPError(self.refused())
        watch = self.watch()
        if watch is None:
            raise web.HTTPError(404)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(describe(watch)))


class CaptchaPage(_Guarded):
    def get(self) -> None:
        refused = self.refused()
        if refused:
            self._ask_token(refused)
            return
        self._page()

    def post(self) -> None:
        refused = self.refused()
        if refused:
            self._ask_token(refused)
            return
        watch = self.watch()
        code = self.get_argument("code", "").strip()
        if watch is None:
            self._page("no such account", status=404)
        elif not code:
            self._page("type the characters the image shows", status=400)
        elif watch.state is not State.WAITING_CAPTCHA or watch.captcha is None:
            self._page("%d does not wait for a verify code (it is %s)" % (
                watch.account, watch.state.value), status=409)
        else:
            watch.client.enter_verify_code(code)
            self._page("verify code entered for %d: logging in" % watch.account)

    def _ask_token(self, status: int) -> None:
        self.set_status(status)
        problem = "the access token is wrong" if status == 403 else \
            "this page needs the API's access token ([api] token, or api-token in " \
            "state_dir)"
        self._render("<p class=problem>%s</p><form method=get action=/captcha>"
                     "<label>access token <input type=password name=access_token "
                     "autofocus></label> <button>open</button></form>"
                     % html.escape(problem), "")

    def _page(self, message: str = "", status: int = 200) -> None:
        self.set_status(status)
        token = html.escape(self.given_token() or "", quote=True)
        parts = []
        if message:
            parts.append("<p id=message>%s</p>" % html.escape(message))
        for watch in sorted(self.health.watches.values(), key=lambda w: w.account):
            parts.append(self._account(watch, token))
        if not self.health.watches:
            parts.append("<p>No account.</p>")
        nonce = secrets.token_urlsafe(12)
        self.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self'; "
                        "script-src 'nonce-%s'; style-src 'unsafe-inline'" % nonce)
        self._render("".join(parts), _SCRIPT % {
            "nonce": nonce, "token": json.dumps(self.given_token() or ""),
            "ms": int(REFRESH * 1000)})

    @staticmethod
    def _account(watch: AccountWatch, token: str) -> str:
        state = describe(watch)
        query = "account=%d&amp;access_token=%s" % (watch.account, token)
        body = ["<section class=account data-account=%d data-attempt=%d>" % (
            watch.account, state["attempt"]), "<h2>%d</h2>" % watch.account,
            "<p class=state>%s</p>" % html.escape(_state_line(state))]
        if state["waiting"]:
            body.append("<img class=captcha alt='verify code' src='/captcha/image?%s&amp;"
                        "n=%d'>" % (query, state["attempt"]))
            body.append(
                "<form method=post action=/captcha><input type=hidden name=account "
                "value=%d><input type=hidden name=access_token value='%s'>"
                "<label>code <input name=code class=code autocomplete=off autofocus "
                "required></label> <button>answer</button></form>" % (watch.account,
                                                                       token))
        body.append("</section>")
        return "".join(body)

    def _render(self, body: str, script: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(_PAGE % {"body": body, "script": script})


def _state_line(state: Dict[str, Any]) -> str:
    """The line under an account's number: what it waits for, or its state."""
    if state["waiting"]:
        line = "waiting for a verify code (image %d)" % state["attempt"]
        if state["attempt"] > 1 and state["reason"]:
            line += ": the last one failed (%s)" % state["reason"]
        return line
    if state["state"] == State.ONLINE.value:
        return "online"
    return state["state"].replace("_", " ")


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>webqq: verify code</title>
<meta name=viewport content="width=device-width">
<style>body{font-family:sans-serif;margin:2em;max-width:40em}
img.captcha{image-rendering:pixelated;height:96px;border:1px solid #888;display:block;
margin:.5em 0}.problem{color:#a00}section{margin-bottom:2em}</style></head>
<body><h1>webqq: verify code</h1>%(body)s%(script)s</body></html>
"""

# Asks /captcha/state for each account shown; a new attempt or a new state reloads the
# page (a new image, or the form gone once online). Built with DOM calls: no markup from
# the answer is ever parsed.
_SCRIPT = """<script nonce="%(nonce)s">
const token = %(token)s;
for (const section of document.querySelectorAll("section.account")) {
  const account = section.dataset.account;
  const shown = section.querySelector(".state").textContent;
  const ask = async () => {
    try {
      const answer = await fetch("/captcha/state?account=" + account,
        {headers: {"Authorization": "Bearer " + token}, cache: "no-store"});
      if (answer.ok) {
        const state = await answer.json();
        if (String(state.attempt) !== section.dataset.attempt && state.waiting) {
          location.replace("/captcha?account=" + account + "&access_token="
                           + encodeURIComponent(token));
          return;
        }
        const line = state.waiting ? null : (state.state === "online" ? "online"
                                             : state.state.replace(/_/g, " "));
        if (line !== null && line !== shown) {
          section.querySelector(".state").textContent = line;
          const form = section.querySelector("form");
          if (form && line === "online") form.remove();
        }
      }
    } catch (error) { /* the daemon restarts: ask again */ }
    setTimeout(ask, %(ms)d);
  };
  setTimeout(ask, %(ms)d);
}
</script>"""
