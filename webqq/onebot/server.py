"""The OneBot v11 API of one daemon: its server, serving every account of the daemon.

server: ``OneBotApi`` owns the HTTP and forward WebSocket server (actions, the media
route, /healthz, /readyz, /metrics, the captcha page; the timeouts, connection cap
and accept loop of ``webqq.onebot.listener``) and the accounts it serves
(``webqq.onebot.bot.AccountApi``: actions, events, deliveries of one account):
``api.add(...)`` and ``await api.remove(self_id)`` while it runs, ``await api.start()``
listens, ``await api.close()`` stops (a queued message stays queued in the store; each
account's queue, ``Outbound``, belongs to the daemon). ``account_for(request)`` is the
one rule that picks the account a request is for (``self_id``, ``X-Self-ID``, or the
only one), for every route.

What it must never do: log the token; block the IOLoop; start a thread or a timer per
account (one heartbeat timer serves them all).
"""
import logging
from typing import Any, Dict, Mapping, Optional

from tornado import netutil, web
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import PeriodicCallback

from webqq.http.stream import HTTPStream, RetryPolicy
from webqq.onebot import captcha
from webqq.onebot.bot import AccountApi
from webqq.onebot.handlers import (MAX_BODY, ActionHandler, EventSocket, MediaHandler,
                                   UnknownAccount, log_request)
from webqq.onebot.health import AccountNotice, Health, HealthHandler, notice_event
from webqq.onebot.listener import ApiServer
from webqq.onebot.media import PICTURE_MAX
from webqq.onebot.metrics import Metrics, MetricsHandler
from webqq.onebot.outbound import Outbound

__all__ = ["OneBotApi", "ApiError", "UnknownAccount"]

log = logging.getLogger("webqq.api")

#: Seconds between two heartbeat meta events (a future ``[api]`` key).
HEARTBEAT_INTERVAL = 15.0
#: Seconds a picture given by URL may take to fetch (connect included).
FETCH_TIMEOUT = 30.0


class ApiError(Exception):
    """Raised when the API cannot start: its address cannot be bound."""


class OneBotApi:
    """The OneBot v11 API of one daemon, for each of its accounts.

    Args:
        config: ``Config.api`` (``ApiConfig``).
        token: the access token (configured or generated: ``api_token``); one for the
            whole API.
        heartbeat_interval: seconds between heartbeat meta events (0: none).
        health: the daemon's ``Health`` (its accounts' notices become OneBot notices of
            the account's bot; /healthz, /readyz, /captcha read it); None: one of the
            API's own, watching each account ``add`` is given.
        metrics: the daemon's ``Metrics`` (/metrics); None: one of the API's own.
    """

    def __init__(self, config: Any, *, token: str,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL,
                 health: Optional[Health] = None, metrics: Optional[Metrics] = None
                 ) -> None:
        if not token or not token.strip():
            raise ValueError("the API needs a token (api_token(create=True) makes one)")
        self.config = config
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        #: QQ number -> AccountApi, in the order they were added.
        self.accounts: Dict[int, AccountApi] = {}
        self.server: Optional[ApiServer] = None
        self.port: Optional[int] = None
        self._started = False
        self._heartbeat: Optional[PeriodicCallback] = None
        #: Fetches pictures given by URL (``[api] fetch_urls``) for every account, capped
        #: at the 2013 limit.
        self.fetcher = HTTPStream(retry=RetryPolicy(attempts=1), max_body_size=PICTURE_MAX,
                                  connect_timeout=FETCH_TIMEOUT,
                                  request_timeout=FETCH_TIMEOUT) \
            if config.fetch_urls else None
        #: None: the API's own, which watches each account it is given.
        self._own_health = health is None
        self.health = health if health is not None else Health()
        self.metrics = metrics or Metrics(self.health)

    @property
    def url(self) -> Optional[str]:
        """``http://HOST:PORT`` of the listening server (loopback for a wildcard)."""
        if self.port is None:
            return None
        host = self.config.listen[0]
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, self.port)

    # -- the accounts ------------------------------------------------------------------

    def add(self, client: Any, *, self_id: int, outbound: Outbound) -> AccountApi:
        """Serve account ``self_id`` (its client and its started ``Outbound``); its
        deliveries start now if the API runs, else with ``start()``. Returns it."""
        if self_id in self.accounts:
            raise ValueError("account %d is served already" % self_id)
        account = AccountApi(self, client, self_id=self_id, outbound=outbound)
        self.accounts[self_id] = account
        if self._own_health:
            self.health.watch(self_id, client, outbound)
        if self._started:
            account.start()
        return account

    async def remove(self, self_id: int) -> None:
        """Stop serving account ``self_id``: its deliveries stop and its WebSockets
        close; the others are not touched."""
        account = self.accounts.pop(self_id, None)
        if account is not None:
            await account.close()
        if self._own_health:
            self.health.forget(self_id)

    def account_for(self, request: HTTPServerRequest,
                    params: Optional[Mapping[str, Any]] = None) -> AccountApi:
        """The account ``request`` is for: the ``self_id`` of ``params`` (an action's
        parameters, query and body), else of the query, else the ``X-Self-ID`` header;
        without any, the only account (several: an error).

        Raises UnknownAccount: no such account here (404), a ``self_id`` that is no
        number, or none while several accounts are served (400).
        """
        given: Any = None
        if params is not None:
            given = params.get("self_id")
        if given in (None, ""):
            given = request.query_arguments.get("self_id", [b""])[-1].decode("latin-1")
        if given in (None, ""):
            given = request.headers.get("X-Self-ID", "")
        served = ", ".join(str(qq) for qq in self.accounts) or "none"
        if given in (None, ""):
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            raise UnknownAccount(400, "self_id is required (a parameter or the X-Self-ID "
                                      "header): this daemon serves %s" % served)
        try:
            self_id = int(str(given).strip())
        except ValueError:
            raise UnknownAccount(400, "self_id %r is not a QQ number" % (given,)) from None
        account = self.accounts.get(self_id)
        if account is None:
            raise UnknownAccount(404, "self_id %d is not an account of this daemon "
                                      "(it serves %s)" % (self_id, served))
        return account

    # -- the server --------------------------------------------------------------------

    def application(self) -> web.Application:
        sockets = [(r"/%s/?" % path, EventSocket, {"api": self, "role": role})
                   for path, role in (("ws", "universal"), ("api", "api"),
                                      ("event", "event"))]
        media = [(r"/(images|files)/([A-Za-z0-9_.]+)", MediaHandler, {"api": self})]
        guarded = {"health": self.health, "token": self.token}
        watching = [(r"/healthz/?", HealthHandler, dict(guarded, readiness=False)),
                    (r"/readyz(?:/([0-9]+))?/?", HealthHandler, dict(guarded, readiness=True)),
                    (r"/metrics/?", MetricsHandler, {
                        "metrics": self.metrics, "token": self.token,
                        "public": self.config.metrics_public})]
        watching += captcha.routes(self.health, self.token)
        return web.Application(sockets + media + watching + [
                                   (r"/([A-Za-z0-9_.]+)/?", ActionHandler, {"api": self})],
                               log_function=self._log_request,
                               websocket_max_message_size=MAX_BODY)

    async def start(self) -> None:
        """Listen (when ``listen`` is set), start every account's deliveries and the
        heartbeat.

        Raises:
            ApiError: the address cannot be bound.
        """
        self.health.add_listener(self._on_account)
        if self.config.listen is not None:
            host, port = self.config.listen
            try:
                sockets = netutil.bind_sockets(port, host)
            except OSError as error:
                raise ApiError("cannot listen on %s:%d: %s" % (host, port,
                                                                error.strerror or error))
            self.server = ApiServer(self.application(), max_body_size=MAX_BODY,
                                    xheaders=False)
            self.server.listen_on(sockets)
            self.port = sockets[0].getsockname()[1]
            log.info("OneBot v11 API listening on %s (HTTP /:action, WebSocket /ws /api "
                     "/event)", self.url)
        self._started = True
        for account in self.accounts.values():
            account.start()
        if self.heartbeat_interval:
            self._heartbeat = PeriodicCallback(self._beat, self.heartbeat_interval * 1000)
            self._heartbeat.start()

    def _beat(self) -> None:
        for account in list(self.accounts.values()):
            account.heartbeat(self.heartbeat_interval)

    async def close(self) -> None:
        """Stop everything; queued messages and undelivered events stay in the store
        (which the daemon closes, after the queues)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self.health.remove_listener(self._on_account)
        if self.server is not None:
            self.server.stop()
        for account in list(self.accounts.values()):
            await account.close()
        if self.fetcher is not None:
            self.fetcher.close()
        self._started = False
        if self.server is not None:
            await self.server.close_all_connections()
        if self._own_health:
            self.health.close()

    def _log_request(self, handler: web.RequestHandler) -> None:
        log_request(handler)
        self.metrics.observe_api(handler, self._known)

    def _known(self, name: str) -> bool:
        """Whether ``name`` is an action (every account has the same ones)."""
        return any(account.actions.known(name) for account in self.accounts.values())

    def captcha_urls(self, account: int) -> Dict[str, str]:
        """The captcha image and page of ``account`` on this API (none without a
        listening server); the access token is needed for both."""
        if self.url is None:
            return {}
        return {"image": "%s/captcha/image?account=%d" % (self.url, account),
                "page": "%s/captcha?account=%d" % (self.url, account)}

    def _on_account(self, notice: AccountNotice) -> None:
        """An account went offline, came back, needs a captcha, was kicked: its bot
        hears it (an account this API does not serve is no bot's)."""
        account = self.accounts.get(notice.account)
        if account is not None:
            account.publish(notice_event(notice, self_id=notice.account,
                                         urls=self.captcha_urls(notice.account)))
