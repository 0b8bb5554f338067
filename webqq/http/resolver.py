"""Host names to socket addresses, never blocking the IOLoop, never cached forever.

The 2013 design resolved with a blocking call and kept the answer for the life
of the process, so a long-running daemon ended in `socket.gaierror` or in
talking to an address that had moved. Here a lookup runs on the loop's
resolver (Tornado's `DefaultLoopResolver`, i.e. the event loop's
`getaddrinfo`), concurrent lookups of one name share one query, answers live
for `ttl` seconds, and an answer whose addresses all refused is dropped at once.
"""
import socket
from typing import Dict, List, Mapping, Optional, Tuple

from tornado import gen
from tornado.concurrent import Future
from tornado.ioloop import IOLoop
from tornado.netutil import DefaultLoopResolver, Resolver, is_valid_ip

from .errors import ResolveError

Address = Tuple[int, tuple]   # (family, sockaddr) as socket.connect takes it
HostsMap = Mapping[str, Tuple[str, Optional[int]]]

#: How long an answer is kept, in seconds: aiohttp keeps 10 s, libcurl 60 s.
#: WebQQ talks to a handful of names; a minute costs nothing and moves traffic
#: within a minute when the records change.
DNS_TTL = 60.0
#: Answers kept at most: the protocol's dozen names and the picture and file hosts a
#: day brings fit; a stream of new names (each picture from another host) cannot grow
#: the cache past it. When full, expired answers go first, then the oldest stored.
DNS_CACHE_MAX = 256


class CachingResolver:
    """Resolves (host, port) to a list of `Address`, with a TTL cache.

    Bounds: an answer lives `ttl` seconds; at most `max_entries` answers are kept
    (expired ones dropped first, then the oldest); a lookup in flight is kept only until
    it answers.

    Args:
        hosts: like /etc/hosts plus a port: ``{"d.web2.qq.com": ("127.0.0.1",
            18080)}``. A mapped name never reaches DNS; a port of None keeps
            the URL's port. The Host header and TLS name stay the URL's.
        resolver: a `tornado.netutil.Resolver`; default `DefaultLoopResolver`.
        ttl: seconds an answer is kept.
        max_entries: answers kept at most (``DNS_CACHE_MAX``).
        io_loop: gives the clock (`IOLoop.time()`).
    """

    def __init__(self, hosts: Optional[HostsMap] = None, resolver: Optional[Resolver] = None,
                 ttl: float = DNS_TTL, io_loop: Optional[IOLoop] = None,
                 max_entries: int = DNS_CACHE_MAX) -> None:
        self._hosts = {name.lower(): target for name, target in (hosts or {}).items()}
        self._resolver = resolver or DefaultLoopResolver()
        self._ttl = ttl
        self._max = max_entries
        self._io_loop = io_loop or IOLoop.current()
        self._cache: Dict[Tuple[str, int], Tuple[float, List[Address]]] = {}
        self._pending: Dict[Tuple[str, int], "Future[List[Address]]"] = {}

    def cached(self, host: str, port: int) -> Optional[List[Address]]:
        """The answer if it is known now (mapped, literal or cached), else None."""
        mapped = self._hosts.get(host)
        if mapped is not None:
            host, port = mapped[0], mapped[1] or port
        if is_valid_ip(host):
            return [_literal(host, port)]
        entry = self._cache.get((host, port))
        if entry is not None:
            if entry[0] > self._io_loop.time():
                return entry[1]
            del self._cache[(host, port)]
        return None

    def resolve(self, host: str, port: int) -> "Future[List[Address]]":
        """A future of the addresses; raises `ResolveError` through it."""
        known = self.cached(host, port)
        if known is not None:
            future: "Future[List[Address]]" = Future()
            future.set_result(known)
            return future
        mapped = self._hosts.get(host)
        if mapped is not None:
            host, port = mapped[0], mapped[1] or port
        key = (host, port)
        pending = self._pending.get(key)
        if pending is None:
            pending = Future()
            self._pending[key] = pending
            lookup = gen.convert_yielded(self._resolver.resolve(host, port, socket.AF_UNSPEC))
            self._io_loop.add_future(lookup, lambda done: self._answered(key, pending, done))
        return pending

    def forget(self, host: str, port: int) -> None:
        """Drop a cached answer (its addresses stopped answering); `host` and
        `port` as the URL has them, so a mapped name drops its target's entry."""
        mapped = self._hosts.get(host)
        if mapped is not None:
            host, port = mapped[0], mapped[1] or port
        self._cache.pop((host, port), None)

    def close(self) -> None:
        """Fail lookups still in flight; the cache is emptied."""
        self._cache.clear()
        for key, pending in list(self._pending.items()):
            if not pending.done():
                pending.set_exception(ResolveError(f"Resolver closed while resolving {key[0]}"))
        self._pending.clear()

    def _answered(self, key: Tuple[str, int], pending: "Future[List[Address]]",
                  done: "Future[list]") -> None:
        if self._pending.get(key) is pending:
            del self._pending[key]
        if pending.done():
            return
        try:
            answer = [(family, address) for family, address in done.result()]
        except socket.gaierror as exc:
            pending.set_exception(ResolveError(
                f"Cannot resolve {key[0]}: {exc.strerror or exc}",
                temporary=exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None))))
            return
        except Exception as exc:  # a custom resolver's own failure
            pending.set_exception(ResolveError(f"Cannot resolve {key[0]}: {exc}"))
            return
        if not answer:
            pending.set_exception(ResolveError(f"No address for {key[0]}", temporary=False))
            return
        self._store(key, answer)
        pending.set_result(answer)

    def _store(self, key: Tuple[str, int], answer: List[Address]) -> None:
        """Keep ``answer``; when the cache is full, drop the expired answers, and then
        the oldest stored if still full (dicts keep insertion order)."""
        now = self._io_loop.time()
        self._cache.pop(key, None)
        if len(self._cache) >= self._max:
            for old in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                del self._cache[old]
            while len(self._cache) >= self._max:
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (now + self._ttl, answer)


def _literal(host: str, port: int) -> Address:
    if ":" in host:
        return socket.AF_INET6, (host, port, 0, 0)
    return socket.AF_INET, (host, port)
