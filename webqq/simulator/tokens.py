"""The random tokens the 2013 servers handed out: hex strings, codes, sigs, psessionid.

tokens: plain functions of the simulator's seeded ``random.Random``, so one seed gives one
run. They hold no state, never perform I/O and never log what they draw: every value is
a secret of a login or a session.
"""
__all__ = ["ALNUM", "UPPER", "hex_token", "letters", "psessionid"]

#: Letters and digits: skey, RK, login sigs (the sigs add "-", "_" or "*").
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#: The three letters of a ``!XYZ`` verify code (§3.2).
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# §3.6: the node atom inside every observed psessionid.
_CONNSERVER_NODE = b"connserver_webqq@10.133.41.202"


def hex_token(rng, chars: int) -> str:
    """``chars`` lower-case hex digits (ptwebqq 48, vfwebqq 80, cookies 64…)."""
    return "%0*x" % (chars, rng.getrandbits(chars * 4))


def letters(rng, count: int, alphabet: str) -> str:
    """``count`` characters drawn from ``alphabet``."""
    return "".join(rng.choice(alphabet) for _ in range(count))


def psessionid(rng, qq: int, skey: str, vfwebqq: str) -> str:
    """The hex of the Erlang term ``{Pid, Uin, Skey, Vfwebqq}`` the real server issued
    (§3.6): a pid on the connection server's node, the QQ number little-endian, the skey,
    then the 40 raw bytes of vfwebqq (so the hex ends with vfwebqq itself)."""
    node = _CONNSERVER_NODE
    pid = (b"\x67\x64" + len(node).to_bytes(2, "big") + node
           + rng.randrange(1 << 16).to_bytes(4, "big")
           + rng.randrange(1 << 13).to_bytes(4, "big") + b"\x01")
    term = (b"\x83\x68\x04" + pid + b"\x6e\x04\x00" + (qq & 0xFFFFFFFF).to_bytes(4, "little")
            + b"\x6d" + len(skey).to_bytes(4, "big") + skey.encode("ascii")
            + b"\x6d" + (len(vfwebqq) // 2).to_bytes(4, "big") + bytes.fromhex(vfwebqq))
    return term.hex()
