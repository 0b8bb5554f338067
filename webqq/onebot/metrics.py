"""``/metrics``: the daemon's numbers in the Prometheus text format.

metrics: ``Metrics`` owns one ``prometheus_client.CollectorRegistry`` per daemon (never
the library's global one, so that two daemons in a process, or the tests, never mix).
Two kinds of numbers go in it:

* read when scraped, from each account's ``AccountWatch`` (``webqq.onebot.health``),
  labelled ``account`` (the QQ number): the state, readiness, polls answered, relinks,
  relogins, messages received / sent / failed / ambiguous / dropped, captcha images,
  the outbox's depth and oldest age, the store's size;
* counted as they happen: each request of the WebQQ client (``HTTPStream``'s
  ``observer``: ``http_observer``) and of the API (``observe_api``), by endpoint and
  status, with latency histograms, kept as plain numbers (``_Requests``: a few hundred
  bytes per account and endpoint, where prometheus_client's own classes took kilobytes).

The names, all ``webqq_``: ``account_state{state}`` (1 for the current one),
``account_ready``, ``last_poll_age_seconds``, ``polls_answered_total``,
``relinks_total``, ``relogins_total``, ``messages_received_total``,
``messages_sent_total``, ``messages_failed_total``, ``messages_ambiguous_total``,
``messages_dropped_total`` (their time to live passed while they waited for their turn;
not in ``failed``), ``captchas_total``, ``outbox_depth``, ``outbox_oldest_seconds``,
``store_bytes``, ``store_messages{status}``, ``http_requests_total{endpoint,status}``,
``http_request_seconds{endpoint}`` (WebQQ requests: endpoint is the URL's path, status
the HTTP status or the error's class), ``api_requests_total{endpoint,status}`` and
``api_request_seconds{endpoint}`` (endpoint: the action, or the route's first part:
``/readyz``, ``/captcha``, ``/images``).

What it must never do: cost the HTTP engine more than two dict lookups and a bisect per
request, let label values grow without bound (``MAX_ENDPOINTS``), or block
the IOLoop (a scrape reads a few SQLite counts).
"""
import math
import os
from array import array
from bisect import bisect_left
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.utils import floatToGoString
from tornado import web

from webqq.client.client import State
from webqq.onebot.handlers import ActionHandler, check_token
from webqq.onebot.health import Health
from webqq.onebot.store import StoreUnavailable

__all__ = ["Metrics", "MetricsHandler", "MAX_ENDPOINTS", "HTTP_BUCKETS", "API_BUCKETS"]

#: Distinct endpoint labels per request counter; beyond, requests count as ``other``
#: (WebQQ has a few dozen paths; a path with an id in it must not grow the registry).
MAX_ENDPOINTS = 64
#: Latency buckets (seconds) of WebQQ requests: a long poll is held up to 60 s, and the
#: engine's request timeout is 120 s.
HTTP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 90.0, 120.0)
#: Latency buckets (seconds) of API requests: a send waits up to 5 s for its outcome.
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# AccountWatch.counts key -> (metric name, help), each a counter.
_COUNTERS = (
    ("relinks", "webqq_relinks", "Moves to RELINKING (login2 again with the same cookies)."),
    ("relogins", "webqq_relogins", "Moves to RELOGGING (the session was gone)."),
    ("received", "webqq_messages_received", "Messages received."),
    ("sent", "webqq_messages_sent", "Messages sent (every part answered ok)."),
    ("failed", "webqq_messages_failed", "Messages refused by the server or not sendable."),
    ("ambiguous", "webqq_messages_ambiguous",
     "Messages that left but whose answer was lost (not resent)."),
    ("dropped", "webqq_messages_dropped",
     "Messages dropped by the pacing: their time to live passed before their turn."),
    ("captchas", "webqq_captchas", "Verify-code images the logins asked a person to read."),
)


class _Accounts:
    """The collector of the per-account numbers, read from the watches when scraped."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        watches = list(self.health.watches.values())
        state = GaugeMetricFamily("webqq_account_state", "1 for the client's current "
                                  "state.", labels=["account", "state"])
        ready = GaugeMetricFamily("webqq_account_ready", "1 while online and a poll was "
                                  "answered within the stall window.", labels=["account"])
        age = GaugeMetricFamily("webqq_last_poll_age_seconds", "Seconds since the last "
                                "poll answer (online accounts only).", labels=["account"])
        polls = CounterMetricFamily("webqq_polls_answered", "Poll answers received.",
                                    labels=["account"])
        counters = {key: CounterMetricFamily(name, text, labels=["account"])
                    for key, name, text in _COUNTERS}
        depth = GaugeMetricFamily("webqq_outbox_depth", "Messages waiting to be sent.",
                                  labels=["account"])
        oldest = GaugeMetricFamily("webqq_outbox_oldest_seconds", "Seconds the oldest "
                                   "waiting message has waited.", labels=["account"])
        size = GaugeMetricFamily("webqq_store_bytes", "Size of the message store (with "
                                 "its write-ahead log).", labels=["account"])
        rows = GaugeMetricFamily("webqq_store_messages", "Stored messages by status.",
                                 labels=["account", "status"])
        for watch in watches:
            account = str(watch.account)
            for member in State:
                state.add_metric([account, member.value],
                                 1.0 if watch.state is member else 0.0)
            ready.add_metric([account], 1.0 if watch.ready() else 0.0)
            seconds = watch.poll_age()
            if seconds is not None:
                age.add_metric([account], seconds)
            polls.add_metric([account], watch.client.polls_answered)
            for key, _name, _text in _COUNTERS:
                counters[key].add_metric([account], watch.counts[key])
            waiting, waited = watch.outbox()
            depth.add_metric([account], waiting)
            if waited is not None:
                oldest.add_metric([account], waited)
            if watch.outbound is not None:
                store = watch.outbound.store
                size.add_metric([account], _file_size(store.path))
                try:
                    counts = store.counts()
                except StoreUnavailable:
                    counts = {}
                for status, count in sorted(counts.items()):
                    rows.add_metric([account, status], count)
        yield from [state, ready, age, polls, *counters.values(), depth, oldest, size, rows]


def _file_size(path: Any) -> int:
    total = 0
    for name in (str(path), str(path) + "-wal"):
        try:
            total += os.path.getsize(name)
        except OSError:
            pass
    return total


class _Requests:
    """A request counter and a latency histogram by labels, as plain numbers, written out
    when scraped (a collector of the registry).

    Not prometheus_client's ``Counter`` and ``Histogram``: their children keep an object
    and a lock for every number (a histogram child: its buckets, its sum), which for a
    dozen WebQQ endpoints came to 30 KB per account, a quarter of what an account cost a
    daemon of a thousand (issue 17). Here a count is one dict entry and a histogram one
    ``array`` of doubles: the buckets' own counts (not cumulative), the sum.

    The series are the ones those classes write, but without ``_created``: in the text
    format a Prometheus reads it as one more gauge per series, which nobody asked for.
    """

    def __init__(self, name: str, what: str, labels: Tuple[str, ...],
                 buckets: Tuple[float, ...]) -> None:
        self.name, self.what = name, what
        self.labels = labels
        self.bounds = tuple(float(bound) for bound in buckets)
        # The ``le`` labels as prometheus_client writes them ("0.05", "1.0", "+Inf").
        self._le = [floatToGoString(bound) for bound in self.bounds + (math.inf,)]
        self._counts: Dict[Tuple[str, ...], int] = {}       # labels, endpoint, status
        self._times: Dict[Tuple[str, ...], array] = {}      # labels, endpoint
        self._endpoints: set = set()

    def observe(self, labels: Tuple[str, ...], endpoint: str, status: str,
                seconds: float) -> None:
        if endpoint not in self._endpoints:
            if len(self._endpoints) >= MAX_ENDPOINTS:
                endpoint = "other"
            self._endpoints.add(endpoint)
        key = labels + (endpoint, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        key = labels + (endpoint,)
        row = self._times.get(key)
        if row is None:
            row = self._times[key] = array("d", [0.0]) * (len(self.bounds) + 2)
        # The first bucket whose bound is at least the value ("le"), else +Inf's.
        row[bisect_left(self.bounds, seconds)] += 1
        row[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(self.name + "_requests",
                                      "%s by endpoint and status." % self.what,
                                      labels=self.labels + ("endpoint", "status"))
        for key, count in self._counts.items():
            counter.add_metric(key, count)
        histogram = HistogramMetricFamily(self.name + "_request_seconds",
                                          "%s: seconds." % self.what,
                                          labels=self.labels + ("endpoint",))
        for key, row in self._times.items():
            buckets, total = [], 0.0
            for le, count in zip(self._le, row):
                total += count
                buckets.append((le, total))
            histogram.add_metric(key, buckets, row[-1])
        yield counter
        yield histogram


class Metrics:
    """The numbers of one daemon (see the module doc).

    Args:
        health: the daemon's ``Health`` (its watches are read at each scrape).
    """

    def __init__(self, health: Health) -> None:
        self.health = health
        self.registry = CollectorRegistry()
        self.registry.register(_Accounts(health))
        self._http = _Requests("webqq_http", "WebQQ requests", ("account",), HTTP_BUCKETS)
        self._api = _Requests("webqq_api", "API requests", (), API_BUCKETS)
        self.registry.register(self._http)
        self.registry.register(self._api)

    def http_observer(self, account: int) -> Callable[[Any, Any, float], None]:
        """The ``HTTPStream.observer`` of ``account``'s stream."""
        labels = (str(account),)
        observe = self._http.observe

        def observer(request: Any, outcome: Any, seconds: float) -> None:
            status = str(outcome) if isinstance(outcome, int) else type(outcome).__name__
            observe(labels, request.selector.split("?", 1)[0], status, seconds)
        return observer

    def observe_api(self, handler: web.RequestHandler, known: Callable[[str], bool]
                    ) -> None:
        """Count one finished API request (Tornado's ``log_function``); ``known(name)``
        says whether ``/name`` is an action."""
        path = handler.request.path.rstrip("/") or "/"
        if isinstance(handler, ActionHandler):
            endpoint = path[1:] if known(path[1:]) else "unknown"
        elif isinstance(handler, web.ErrorHandler) or \
                not type(handler).__module__.startswith("webqq."):
            endpoint = "unknown"
        else:                   # the route: /ws, /readyz, /captcha, /images ...
            endpoint = "/" + path.split("/")[1]
        self._api.observe((), endpoint, str(handler.get_status()),
                          handler.request.request_time())

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsHandler(web.RequestHandler):
    """``GET /metrics``: the access token is needed unless ``public``."""

    def initialize(self, metrics: Metrics, token: str, public: bool) -> None:
        self.metrics = metrics
        self.token = token
        self.public = public

    def compute_etag(self) -> Optional[str]:
        return None

    def get(self) -> None:
        if not self.public:
            refused = check_token(self.token, self.request.headers.get("Authorization"),
                                  self.get_query_argument("access_token", None))
            if refused:
                self.set_status(refused)
                self.finish("access token %s\n" % ("missing" if refused == 401
                                                   else "wrong"))
                return
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(self.metrics.exposition())
