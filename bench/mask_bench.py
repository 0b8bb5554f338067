#!/usr/bin/env python3
"""Log mask bench: what ``SecretMask.mask`` costs a log line with many accounts' secrets.

Registers ``--accounts`` accounts' session values the way a daemon does (each account an
owner: skey, p_skey, ptwebqq, ptcz, RK, pt4_token, ptvfsession, vfwebqq, psessionid;
10 forms an account, the skey's URL-encoded one counted), then times ``mask()`` on two
lines: a debug line of a request whose URL carries one account's values, and a line with
no secret. It prints µs per line (best of 5 runs of ``timeit``) and the seconds the adds
took. A benchmark, not a test.
"""
import argparse
import random
import sys
import time
import timeit
import urllib.parse

from webqq.daemon.logs import SecretMask
from webqq.simulator.tokens import ALNUM, hex_token, letters, psessionid


def account_values(rng, qq):
    skey = "@" + letters(rng, 9, ALNUM)
    vfwebqq = hex_token(rng, 80)
    return {"skey": skey, "p_skey": letters(rng, 44, ALNUM), "ptwebqq": hex_token(rng, 48),
            "ptcz": hex_token(rng, 64), "RK": letters(rng, 10, ALNUM),
            "pt4_token": hex_token(rng, 32), "ptvfsession": hex_token(rng, 64),
            "vfwebqq": vfwebqq, "psessionid": psessionid(rng, qq, skey, vfwebqq)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--number", type=int, default=2000, help="mask() calls a run")
    args = parser.parse_args(argv)
    rng = random.Random(17)
    mask = SecretMask()
    mask.add("the-daemon-password")
    values = [("account%d" % n, value) for n in range(args.accounts)
              for value in account_values(rng, 10001 + n).values()]
    start = time.perf_counter()
    for owner, value in values:
        mask.add(value, session=owner)
    added = time.perf_counter() - start
    forms = {form for _, value in values
             for form in (value, urllib.parse.quote(value, safe=""))}
    last = account_values(random.Random(17), 10001)     # the first account's, registered
    lines = {
        "URL with secrets": (
            "2026-12-05 19:11:02,123 DEBUG webqq.http.stream: GET http://s.web2.qq.com/api/"
            "get_friend_info2?tuin=20001&vfwebqq=%s&clientid=53999199&psessionid=%s"
            "&skey=%s&t=1386000000000 (attempt 1)"
            % (last["vfwebqq"], last["psessionid"], last["skey"].replace("@", "%40"))),
        "no secret": (
            "2026-12-05 19:11:02,124 INFO webqq.daemon.account: account1: message from "
            "20001 to 10001 (friend): hello there, how are things going today?"),
    }
    print("%d accounts, %d forms, adds took %.3f s" % (args.accounts, len(forms), added))
    for name, line in lines.items():
        masked = mask.mask(line)
        assert ("psessionid=%s" % last["psessionid"]) not in masked
        best = min(timeit.repeat(lambda: mask.mask(line), number=args.number, repeat=5))
        print("%-17s %4d chars %8.1f µs a line" % (name, len(line), best / args.number * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
