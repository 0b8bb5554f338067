"""One cookie session on a shared ``HTTPStream``: what each account of a daemon talks
through.

What it is for: ``CookieScope(stream, jar)`` looks like the stream to its user
(``add_request``, ``fetch``, ``cookiejar``, ``io_loop``, ``observer``) but every request
it sends, its redirects and the rest of its chain carry ``jar``'s cookies and fill
``jar``, not the stream's. Many accounts then share one engine: one connection pool and
limit, one deadline timer, one resolver cache, one TLS context (loading the system's CA
certificates costs megabytes; one per account would not scale to a thousand accounts),
while each keeps its own login.

What it must never do: own the stream (``close`` is the stream owner's), or let a
request go out with another scope's cookies.
"""
from http.cookiejar import CookieJar
from typing import Optional
from urllib.request import Request

from tornado.ioloop import IOLoop

from webqq.http.cookies import CachingCookieJar
from webqq.http.retry import RetryPolicy
from webqq.http.stream import Errback, HTTPStream, Observer, Readback, Response

__all__ = ["CookieScope"]


class CookieScope:
    """The shared ``stream`` with cookie jar ``cookiejar`` (default: a new
    ``CachingCookieJar``).

    Args:
        stream: the ``HTTPStream`` every request goes through (its owner closes it).
        cookiejar: the cookies of this scope alone.

    Attribute ``observer``: None (the stream's), or what ``HTTPStream.observer`` is for
    this scope's requests alone (each account's requests counted under its name).
    """

    def __init__(self, stream: HTTPStream, cookiejar: Optional[CookieJar] = None) -> None:
        self.stream = stream
        self.cookiejar = cookiejar if cookiejar is not None else CachingCookieJar()
        self.observer: Optional[Observer] = None

    @property
    def io_loop(self) -> IOLoop:
        return self.stream.io_loop

    def add_request(self, request: Request, readback: Optional[Readback] = None,
                    delay: float = 0, errback: Optional[Errback] = None,
                    retry: Optional[RetryPolicy] = None) -> None:
        """``HTTPStream.add_request`` with this scope's cookies."""
        self.stream.add_request(request, readback, delay, errback=errback, retry=retry,
                                cookiejar=self.cookiejar, observer=self.observer)

    async def fetch(self, request: Request, retry: Optional[RetryPolicy] = None) -> Response:
        """``HTTPStream.fetch`` with this scope's cookies."""
        return await self.stream.fetch(request, retry=retry, cookiejar=self.cookiejar,
                                       observer=self.observer)
