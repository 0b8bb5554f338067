"""What the client's actions share: the session they need, and one way to make a call.

calls: ``Calls``, a small helper the picture, file and management parts hold. It never
opens a socket (the client's ``HTTPStream`` does) and never parses bytes (a
``webqq.qq`` parser does): a call is a built request, awaited, its status checked, its
body handed to the parser. Its errors are the ones every action may raise::

    NotOnline       RuntimeError: the action needs the session and the client is not
                    ONLINE (or has no session yet)
    Unavailable     ValueError: the action cannot be done for this thing (a picture no
                    2013 endpoint fetches, a file over the size cap, an event of
                    another kind)
    ProtocolError   the server's answer refused or unusable (webqq.qq)
    HTTPStreamError the network failed (webqq.http)
"""
import time
from typing import Any, Callable, Optional
from urllib.request import Request

from webqq.client.login import Link
from webqq.http.errors import HTTPStreamError
from webqq.http.stream import HTTPStream, Response, RetryPolicy

__all__ = ["Calls", "NotOnline", "Unavailable"]


class NotOnline(RuntimeError):
    """Raised when an action needs the session and the client is not ONLINE."""


class Unavailable(ValueError):
    """Raised when an action cannot be done for what it was given; ``str`` says why."""


class Calls:
    """The stream, the link and the clock of one client, as its actions use them.

    Args:
        stream: the client's ``HTTPStream`` (its cookie jar holds the session).
        link: the client's ``Link``, read at each call.
        online: true while the client is ONLINE.
        clock: wall-clock seconds, for the protocol's ``t`` stamps.
    """

    def __init__(self, stream: HTTPStream, link: Link, *, online: Callable[[], bool],
                 clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.link = link
        self._online = online
        self.clock = clock

    def session(self) -> Link:
        """The link, when there is a session to act in.

        Raises:
            NotOnline: the client is not ONLINE.
        """
        if not self._online() or self.link.psessionid is None or self.link.vfwebqq is None:
            raise NotOnline("the client is not online")
        return self.link

    def seconds(self) -> int:
        """Now, in unix seconds."""
        return int(self.clock())

    def milliseconds(self) -> int:
        """Now, in unix milliseconds."""
        return int(self.clock() * 1000)

    async def response(self, request: Request,
                       retry: Optional[RetryPolicy] = None) -> Response:
        """The response to ``request``, which must be a 200.

        Raises:
            HTTPStreamError: the request failed, or was answered with another status.
        """
        response = await self.stream.fetch(request, retry=retry)
        if response.status != 200:
            path = request.selector.split("?")[0]
            raise HTTPStreamError("HTTP %d %s from %s" % (response.status, response.reason,
                                                           path), request)
        return response

    async def call(self, request: Request, parse: Callable[[bytes], Any],
                   retry: Optional[RetryPolicy] = None) -> Any:
        """``parse`` of the body of ``request``'s 200 response.

        Raises:
            HTTPStreamError: as ``response``. ProtocolError: what ``parse`` raises.
        """
        response = await self.response(request, retry)
        return parse(response.read())
