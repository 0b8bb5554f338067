#!/usr/bin/env python3
"""Cookie bench: µs per ``add_cookie_header`` for the requests of a WebQQ session.

The jar holds what a 2013 login leaves (docs/protocol.rst §2.3), taken from the
simulator's own Set-Cookie lines by ``extract_cookies``: ``ptvfsession`` for
ptlogin2.qq.com; ``uin``, ``skey``, ``ptwebqq``, ``ptisp``, ``RK``, ``ptcz``,
``pt2gguin`` for qq.com; Era B's ``p_uin``, ``p_skey``, ``pt4_token`` for web2.qq.com.
The requests are the client's builders': the long poll, the heartbeat, the friend list
and the online friends (the idle traffic), and a message sent. Each is timed as
HTTPStream's ``_send`` does it: drop the Cookie header of the last attempt, add the
jar's. Both jars must give the same headers, or the bench exits 1.

    python bench/cookie_bench.py              # the stdlib's CookieJar and CachingCookieJar
    python bench/cookie_bench.py --profile    # per call under cProfile, as a daemon profile
"""
import argparse
import cProfile
import email.message
import http.cookiejar
import os
import pstats
import sys
import timeit
from urllib.request import Request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from webqq.http.cookies import CachingCookieJar  # noqa: E402
from webqq.qq import builders  # noqa: E402
from webqq.simulator.wire import set_cookie  # noqa: E402

UIN = "o0000010001"
GRANTS = [   # (the URL that set them, the Set-Cookie lines), as the simulator sends them
    ("http://check.ptlogin2.qq.com/check?uin=10001",
     [set_cookie("ptvfsession", "5f" * 32, "ptlogin2.qq.com")]),
    ("https://ssl.ptlogin2.qq.com/login?u=10001",
     [set_cookie("uin", UIN, "qq.com"), set_cookie("skey", "@FgMFRXQ6I", "qq.com"),
      set_cookie("ptwebqq", "a3" * 24, "qq.com"), set_cookie("ptisp", "ctc", "qq.com"),
      set_cookie("RK", "Ab3dEf9hIj", "qq.com"),
      set_cookie("ptcz", "c7" * 32, "qq.com", long_lived=True),
      set_cookie("pt2gguin", UIN, "qq.com", long_lived=True)]),
    ("http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=10001",
     [set_cookie("p_uin", UIN, "web2.qq.com"), set_cookie("p_skey", "Xy" * 22, "web2.qq.com"),
      set_cookie("pt4_token", "9e" * 16, "web2.qq.com")]),
]
SESSION = dict(clientid=53999199, psessionid="8368046764001d636f6e6e7365727665725f77656271")
REQUESTS = {
    "poll2": builders.build_poll(**SESSION),
    "get_msg_tip": builders.build_heartbeat(rc=7, t=1365000000000),
    "get_user_friends2": builders.build_friends(vfwebqq="f" * 64, hash_value="0A1B2C3D"),
    "get_online_buddies2": builders.build_online_buddies(t=1365000000000, **SESSION),
    "send_buddy_msg2": builders.build_send_buddy(2001, "hello", msg_id=1, **SESSION),
}


class _Grant:
    """The part of a response ``extract_cookies`` reads."""

    def __init__(self, lines):
        self.headers = email.message.Message()
        for line in lines:
            self.headers["Set-Cookie"] = line

    def info(self):
        return self.headers


def logged_in(jar):
    for url, lines in GRANTS:
        jar.extract_cookies(_Grant(lines), Request(url))
    return jar


def send(jar, request):
    request.unredirected_hdrs.pop("Cookie", None)
    jar.add_cookie_header(request)


def per_call(jar, request, number):
    """µs per call, the best of five runs."""
    return min(timeit.repeat(lambda: send(jar, request), number=number, repeat=5)) / number * 1e6


def profiled(jar, request, number):
    """µs per call of ``add_cookie_header`` as cProfile reports it (cumulative)."""
    profile = cProfile.Profile()
    profile.runcall(lambda: [send(jar, request) for _ in range(number)])
    stats = pstats.Stats(profile).stats
    return next(cumulative for (_, _, name), (_, calls, _, cumulative, _) in stats.items()
                if name == "add_cookie_header" and calls == number) / number * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per run")
    parser.add_argument("--profile", action="store_true", help="measure under cProfile")
    args = parser.parse_args(argv)
    jars = {"CookieJar": logged_in(http.cookiejar.CookieJar()),
            "CachingCookieJar": logged_in(CachingCookieJar())}
    measure = profiled if args.profile else per_call
    print("%-20s %6s %12s %18s" % ("request", "bytes", "CookieJar µs", "CachingCookieJar µs"))
    for name, request in REQUESTS.items():
        headers = set()
        for jar in jars.values():
            send(jar, request)
            headers.add(request.get_header("Cookie"))
        if len(headers) != 1:
            print("%s: the jars sent different headers: %s" % (name, headers))
            return 1
        print("%-20s %6d %12.1f %18.1f" % (name, len(headers.pop()), *(
            measure(jar, request, args.number) for jar in jars.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
