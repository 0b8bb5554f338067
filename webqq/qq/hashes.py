"""The two secrets of a 2013 login: the encrypted password and the friend-list hash (§4).

hashes: plain functions of their arguments; no I/O, no clock, no randomness. Each
algorithm is our own reading of the page's script, checked against the worked examples
in the tests.
"""
import hashlib

__all__ = ["encrypt_password", "friends_hash", "HASH_VARIANTS"]


def encrypt_password(password: str, uin_bytes: bytes, verifycode: str) -> str:
    """Encrypt a password for ``/login`` with the spring-2013 scheme (§4.1).

    Args:
        password: the account password as typed.
        uin_bytes: the 8 raw bytes of ``ptui_checkVC`` argument 3 (``CheckResult.uin_bytes``).
        verifycode: the code of ``ptui_checkVC`` (``!PTH``) or the captcha answer; it is
            upper-cased before hashing, as the browser does.

    Returns:
        The ``p`` parameter: 32 upper-case hex digits.

    Raises:
        ValueError: ``uin_bytes`` is not exactly 8 bytes.
    """
    if len(uin_bytes) != 8:
        raise ValueError("uin_bytes must be 8 bytes, got %d" % len(uin_bytes))
    inner = hashlib.md5(password.encode("utf-8")).digest()
    h1 = hashlib.md5(inner + uin_bytes).hexdigest().upper()
    return hashlib.md5((h1 + verifycode.upper()).encode("ascii")).hexdigest().upper()


def _hex(values) -> str:
    """Two upper-case hex digits per byte value."""
    return "".join("%02X" % (v & 0xFF) for v in values)


def _hash_n(qq: int, ptwebqq: str) -> str:
    # The "digit walk": for each decimal digit of the QQ number step through ptwebqq and
    # XOR four of its character codes into a 32-bit word. Past the end reads as 0 (JS).
    codes = [ord(c) for c in ptwebqq]
    size = len(codes)

    def code_at(i):
        return codes[i] if i < size else 0

    pos = 0
    k = 0xFFFFFFFF
    for digit in str(qq):
        pos = (pos + int(digit)) % size
        word = 0
        if pos + 4 > size:
            wrap = pos + 4 - size
            for h in range(4):
                word |= code_at(pos + h if h < wrap else h - wrap) << (24 - 8 * h)
        else:
            for h in range(4):
                word |= code_at(pos + h) << (24 - 8 * h)
        k ^= word
    return _hex([k >> 24, k >> 16, k >> 8, k])


def _hash_o(qq: int, ptwebqq: str) -> str:
    # XOR of "ptwebqq + 'password error'" with the QQ number's digits repeated.
    text = ptwebqq + "password error"
    digits = str(qq)
    repeated = (digits * (len(text) // len(digits) + 1))[: len(text)]
    return _hex(ord(a) ^ ord(b) for a, b in zip(repeated, text))


def _hash_p(qq: int, ptwebqq: str) -> str:
    # Four XOR accumulators over ptwebqq interleaved with the QQ number XOR "ECOK".
    acc = [0, 0, 0, 0]
    for i, c in enumerate(ptwebqq):
        acc[i % 4] ^= ord(c)
    mixed = [(qq >> 24) ^ ord("E"), (qq >> 16) ^ ord("C"), (qq >> 8) ^ ord("O"), qq ^ ord("K")]
    return _hex([acc[0], mixed[0], acc[1], mixed[1], acc[2], mixed[2], acc[3], mixed[3]])


def _hash_q(qq: int, ptwebqq: str) -> str:
    # Sort ptwebqq's character codes with the page's iterative quicksort and count its
    # moves into four bytes seeded with the QQ number. Only the counters matter.
    n = [(qq >> 24) & 0xFF, (qq >> 16) & 0xFF, (qq >> 8) & 0xFF, qq & 0xFF]
    codes = [ord(c) for c in ptwebqq]
    ranges = [(0, len(codes) - 1)]
    while ranges:
        left, right = ranges.pop()
        if left >= right or left < 0 or right >= len(codes):
            continue
        if left + 1 == right:
            if codes[left] > codes[right]:
                codes[left], codes[right] = codes[right], codes[left]
            continue
        start, end, pivot = left, right, codes[left]
        while left < right:
            while left < right and codes[right] >= pivot:
                right -= 1
                n[0] = (n[0] + 3) & 0xFF
            if left < right:
                codes[left] = codes[right]
                left += 1
                n[1] = (n[1] * 13 + 43) & 0xFF
            while left < right and codes[left] <= pivot:
                left += 1
                n[2] = (n[2] - 3) & 0xFF
            if left < right:
                codes[right] = codes[left]
                right -= 1
                n[3] = (n[0] ^ n[1] ^ n[2] ^ (n[3] + 1)) & 0xFF
        codes[left] = pivot
        ranges.append((start, left - 1))
        ranges.append((left + 1, end))
    return _hex(n)


# Name -> function of the friend-list hash algorithms of §4.3, in the order they appeared.
_HASHES = {"N": _hash_n, "O": _hash_o, "P": _hash_p, "Q": _hash_q}
HASH_VARIANTS = tuple(_HASHES)


def friends_hash(qq: int, ptwebqq: str, variant: str = "O") -> str:
    """Compute the ``hash`` field of ``get_user_friends2`` (§4.3).

    Args:
        qq: the logged-in account's QQ number.
        ptwebqq: the current ``ptwebqq`` cookie (after any poll 116 rotation).
        variant: which algorithm of 2013 to use: ``"N"`` (from 2013-04-16 and again
            2013-07-25), ``"O"`` (2013-04-19, the spring-2013 server: the default),
            ``"P"`` (2013-07-17 and 2013-12), ``"Q"`` (2013-09-13).

    Returns:
        The hash as upper-case hex.

    Raises:
        ValueError: unknown ``variant``, or an empty ``ptwebqq``.
    """
    try:
        algorithm = _HASHES[variant]
    except KeyError:
        raise ValueError("unknown hash variant %r; expected one of %s"
                         % (variant, ", ".join(HASH_VARIANTS))) from None
    if not ptwebqq:
        raise ValueError("ptwebqq must not be empty")
    return algorithm(int(qq), ptwebqq)
