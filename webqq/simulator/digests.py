"""The two digests the 2013 servers checked: the login ``p`` and the friend-list ``hash``.

digests: the simulator's own implementation of the password scheme and the four
friend-list hash variants (§4), written from the algorithms' description and
pinned to fixed vectors in tests/test_simulator_digests.py. The simulator must not check
a client with the client's own code (a shared mistake would pass both), so nothing here
comes from webqq.qq. Plain functions: values in, text out; no I/O, no clock, no state.
"""
import hashlib

__all__ = ["FRIEND_HASH_VARIANTS", "friend_list_hash", "login_p"]


def login_p(password: str, uin_bytes: bytes, verify_code: str) -> str:
    """The ``p`` of /login (§4.1, the "webqq3" scheme), 32 upper-case hex digits.

    md5 of the password (16 raw bytes), then md5 of those bytes followed by the 8 bytes
    /check gave (the QQ number, big-endian) written as upper-case hex, then md5 of that
    text followed by the upper-cased verify code, as upper-case hex.

    Args:
        password: the account's password (hashed as UTF-8).
        uin_bytes: the 8 raw bytes of ``ptui_checkVC``'s third argument.
        verify_code: the ``!XYZ`` code or the captcha answer (any case).
    """
    secret = hashlib.md5(password.encode("utf-8")).digest()
    salted = hashlib.md5(secret + uin_bytes).hexdigest().upper()
    return hashlib.md5((salted + verify_code.upper()).encode("utf-8")).hexdigest().upper()


def _hex(values) -> str:
    return "".join("%02X" % (v & 0xFF) for v in values)


def _uin_bytes(uin: int) -> list:
    return [(uin >> shift) & 0xFF for shift in (24, 16, 8, 0)]


def _hash_n(uin: int, ptwebqq: str) -> str:
    """Variant N: walk ``ptwebqq`` by the QQ number's digits, XOR-ing 4-byte windows.

    A window that runs off the end wraps the way the 2013 JavaScript did: its first
    part keeps reading past the end (where a missing character counts as 0), its last
    part restarts at the beginning.
    """
    codes = [ord(c) for c in ptwebqq]
    length = len(codes)

    def code(index: int) -> int:
        return codes[index] if index < length else 0

    position, k = 0, 0xFFFFFFFF
    for digit in str(uin):
        position = (position + int(digit)) % length
        over = position + 4 - length
        word = 0
        for h in range(4):
            index = position + h if over <= 0 or h < over else h - over
            word |= code(index) << (24 - 8 * h)
        k ^= word
    return _hex(_uin_bytes(k))


def _hash_o(uin: int, ptwebqq: str) -> str:
    """Variant O: ``ptwebqq + "password error"`` XOR the QQ number's digits, repeated."""
    text = ptwebqq + "password error"
    digits = str(uin)
    key = (digits * (len(text) // len(digits) + 1))[:len(text)]
    return _hex(ord(a) ^ ord(b) for a, b in zip(key, text))


def _hash_p(uin: int, ptwebqq: str) -> str:
    """Variant P: ptwebqq folded into 4 bytes, interleaved with the QQ number XOR "ECOK"."""
    folded = [0, 0, 0, 0]
    for index, char in enumerate(ptwebqq):
        folded[index % 4] ^= ord(char)
    masked = [b ^ ord(c) for b, c in zip(_uin_bytes(uin), "ECOK")]
    return _hex(v for pair in zip(folded, masked) for v in pair)


def _hash_q(uin: int, ptwebqq: str) -> str:
    """Variant Q: four counters, seeded with the QQ number's bytes, that count the moves
    of a quicksort of ptwebqq's character codes.

    The sort takes ranges from a stack (left range pushed before the right one, so the
    right one is sorted first), partitions around the range's first element by moving
    elements into the hole it leaves, and swaps two-element ranges directly.
    """
    counters = _uin_bytes(uin)
    values = [ord(c) for c in ptwebqq]
    ranges = [(0, len(values) - 1)]
    while ranges:
        start, end = ranges.pop()
        if start >= end:
            continue
        if end - start == 1:
            if values[start] > values[end]:
                values[start], values[end] = values[end], values[start]
            continue
        left, right, pivot = start, end, values[start]
        while left < right:
            while left < right and values[right] >= pivot:
                right -= 1
                counters[0] = (counters[0] + 3) & 0xFF
            if left < right:
                values[left] = values[right]
                left += 1
                counters[1] = (counters[1] * 13 + 43) & 0xFF
            while left < right and values[left] <= pivot:
                left += 1
                counters[2] = (counters[2] - 3) & 0xFF
            if left < right:
                values[right] = values[left]
                right -= 1
                counters[3] = (counters[0] ^ counters[1] ^ counters[2] ^ (counters[3] + 1)) & 0xFF
        values[left] = pivot
        ranges.append((start, left - 1))
        ranges.append((left + 1, end))
    return _hex(counters)


_VARIANTS = {"N": _hash_n, "O": _hash_o, "P": _hash_p, "Q": _hash_q}

#: The friend-list hash variants of 2013 (§4.3), in the order they first appeared.
FRIEND_HASH_VARIANTS = tuple(_VARIANTS)


def friend_list_hash(uin: int, ptwebqq: str, variant: str) -> str:
    """The ``hash`` of get_user_friends2 (§3.7, §4.3), upper-case hex.

    Args:
        uin: the logged-in account's QQ number.
        ptwebqq: the session's current ptwebqq cookie value.
        variant: one of ``FRIEND_HASH_VARIANTS``.

    Raises:
        KeyError: an unknown variant.
    """
    return _VARIANTS[variant](uin, ptwebqq)
