"""Several accounts in one daemon (issue 15), piece by piece: cookie scopes on one
HTTPStream, one account's rows of the shared store, the embedded simulator's generated
accounts, and the configuration's ``[account:NAME]`` sections."""
import asyncio
from urllib.request import Request

import pytest

from test_http_stream import app_server, stream  # noqa: F401 (fixtures)
from webqq.http.scope import CookieScope


# -- one HTTPStream, a cookie jar per account ------------------------------------------

@pytest.mark.gen_test
async def test_cookie_scopes_share_a_stream_but_not_their_cookies(io_loop, no_leaks,
                                                                   app_server, stream):
    http = stream()
    alice, bob = CookieScope(http), CookieScope(http)
    await alice.fetch(Request(app_server + "/set-cookie"))
    assert (await alice.fetch(Request(app_server + "/echo"))).json()["cookie"]
    assert (await bob.fetch(Request(app_server + "/echo"))).json()["cookie"] == ""
    assert {c.name for c in alice.cookiejar} == {"session", "other"}
    assert list(bob.cookiejar) == [] and list(http.cookiejar) == []
    # A redirect that sets the cookie, and the next request of a chain, keep the scope.
    done = asyncio.get_running_loop().create_future()

    def after_redirect(response):
        return Request(app_server + "/echo"), lambda echoed: done.set_result(echoed)
    bob.add_request(Request(app_server + "/redirect/_set-cookie"), after_redirect)
    echoed = await done
    assert "session=abc123" in echoed.json()["cookie"]
    assert {c.name for c in bob.cookiejar} == {"session", "other"}
    assert list(http.cookiejar) == []
    assert bob.io_loop is http.io_loop
