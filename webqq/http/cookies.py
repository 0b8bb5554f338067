"""A cookie jar that works out a URL's Cookie header once, not before every request.

What it is for: ``http.cookiejar.CookieJar.add_cookie_header`` runs the policy's checks
on every cookie of every domain and then walks the jar again to drop expired cookies:
about 50 µs a request with the eleven cookies of a 2013 WebQQ login (bench/README.md,
cookie_bench.py), a tenth of a thousand-account daemon's idle CPU and paid again for
every message sent. ``CachingCookieJar`` keeps the header the standard library worked
out for a URL and sends it again while nothing it depends on has changed.

What it must never do: send anything other than what the standard library's
``add_cookie_header`` would send at that moment, or compute a header itself (every
header it sends, the stdlib computed under its own policy checks).
"""
import http.cookiejar
import math
import time
from typing import Any, Dict, Optional, Tuple
from urllib.request import Request

__all__ = ["CachingCookieJar", "MAX_CACHED_URLS"]

#: URLs (less their query) whose header one jar keeps; the oldest goes first. A WebQQ
#: session calls about twenty (poll, heartbeat, contacts, sending), so this only bounds
#: a jar that is fed arbitrary URLs.
MAX_CACHED_URLS = 64

_Key = Tuple[str, str, str, Optional[str], Any]
_Entry = Tuple[Optional[str], bool]    # (the Cookie header or None, send Cookie2?)


def _cache_key(request: Request) -> _Key:
    """Everything of ``request`` that the stdlib's checks read: the URL up to its query
    (host, port, path), the scheme and host the request goes to (``set_proxy`` may
    change them), the Host header (read when the URL has no host) and, for an
    unverifiable request, the origin that makes it third-party."""
    url = request.full_url
    query = url.find("?")
    return (url if query < 0 else url[:query], request.type, request.host,
            request.get_header("Host"), request.unverifiable and request.origin_req_host)


class CachingCookieJar(http.cookiejar.CookieJar):
    """An ``http.cookiejar.CookieJar`` whose ``add_cookie_header`` is a dictionary look-up
    while the jar is unchanged.

    The header the stdlib computed for a URL (less its query, see ``_cache_key``) is sent
    again until the first of: a cookie is set (``extract_cookies`` and
    ``set_cookie_if_ok`` set through ``set_cookie``), a cookie is cleared (``clear_*``
    clear through ``clear``), ``set_policy`` or a change to the policy's attributes, or
    the earliest expiry of any cookie in the jar; then the stdlib computes it again and
    drops the expired cookies, as it does on every call. Only a ``DefaultCookiePolicy``
    is trusted this way: a subclass may decide by anything, so its headers are computed
    each time.

    Change a cookie by setting a new one: a ``Cookie`` edited in place inside the jar is
    not seen. Everything runs under the jar's lock, as in the stdlib.

    Bounds: ``MAX_CACHED_URLS`` headers; equal headers share one string.
    """

    def __init__(self, policy: Optional[http.cookiejar.CookiePolicy] = None) -> None:
        super().__init__(policy)
        self._headers: Dict[_Key, _Entry] = {}
        self._valid_until = math.inf    # time.time() of the jar's earliest expiry
        self._policy_seen: Dict[str, Any] = {}

    def add_cookie_header(self, request: Request) -> None:
        """Add the Cookie header the stdlib would add now (and Cookie2 where it would)."""
        if type(self._policy) is not http.cookiejar.DefaultCookiePolicy:
            super().add_cookie_header(request)
            return
        key = _cache_key(request)
        with self._cookies_lock:
            now = time.time()
            # The stdlib sets the clock of its checks first; the policy's settings are
            # then those its headers were computed under, or they are all stale.
            self._policy_seen["_now"] = self._policy._now = self._now = int(now)
            entry = None
            if now < self._valid_until and vars(self._policy) == self._policy_seen:
                entry = self._headers.get(key)
            elif self._headers:
                self._headers.clear()
            if entry is None:
                self._compute(request, key)
                return
            header, cookie2 = entry
            if header is not None and not request.has_header("Cookie"):
                request.add_unredirected_header("Cookie", header)
            if cookie2 and not request.has_header("Cookie2"):
                request.add_unredirected_header("Cookie2", '$Version="1"')

    def _compute(self, request: Request, key: _Key) -> None:
        """The stdlib's ``add_cookie_header``, its result kept unless the request already
        had the headers it adds (then it tells nothing). The expired cookies it drops
        were not in the header: a ``Cookie`` keeps its expiry in whole seconds, and the
        header left out those expired by the whole second."""
        had_headers = request.has_header("Cookie") or request.has_header("Cookie2")
        super().add_cookie_header(request)
        if had_headers:
            return
        if not self._headers:
            self._valid_until = min((cookie.expires for cookie in self
                                     if cookie.expires is not None), default=math.inf)
            self._policy_seen = dict(vars(self._policy))
        elif len(self._headers) >= MAX_CACHED_URLS:
            del self._headers[next(iter(self._headers))]
        header = request.get_header("Cookie")
        if header is not None:
            header = next((text for text, _ in self._headers.values() if text == header),
                          header)
        self._headers[key] = (header, request.has_header("Cookie2"))

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        """Set ``cookie`` (the stdlib's) and forget every header worked out so far."""
        with self._cookies_lock:
            try:
                super().set_cookie(cookie)
            finally:
                self._headers.clear()

    def clear(self, domain: Optional[str] = None, path: Optional[str] = None,
              name: Optional[str] = None) -> None:
        """Clear cookies (the stdlib's) and forget every header worked out so far."""
        with self._cookies_lock:
            try:
                super().clear(domain, path, name)
            finally:
                self._headers.clear()

    def set_policy(self, policy: http.cookiejar.CookiePolicy) -> None:
        """Use ``policy`` (the stdlib's) and forget every header worked out so far."""
        with self._cookies_lock:
            super().set_policy(policy)
            self._headers.clear()
