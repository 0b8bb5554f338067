"""Captcha images: a verify code drawn into a real baseline JPEG (docs/protocol.rst §3.3).

captcha: pure bytes out. A human running the daemon against the simulator reads the code
from the image, exactly as with Tencent's, so it must be a JPEG any viewer opens. The
encoder is the smallest one that is still a valid JPEG: every 8x8 block is one flat grey,
so each block is a single DC coefficient and an end-of-block, coded with the standard
luminance DC table of ITU T.81 Annex K. No noise, no distortion: this is test material,
not a defence against bots. Never performs I/O.
"""

__all__ = ["ALPHABET", "render_jpeg"]

# 5x7 glyphs, one string per row, "#" = ink. One glyph pixel becomes one 8x8 block.
_GLYPHS = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": (".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}
# A character without a glyph is drawn as a hollow box.
_BOX = ("#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####")

#: Characters random verify codes are drawn from: letters that do not look alike.
ALPHABET = "ABCDEFHJKLMNPRSTUVWXYZ"

_PAPER, _INK = 232, 40          # grey levels of background and strokes
_MARGIN = 1                     # blocks around the text
_JITTER = 1                     # a glyph may sit this many blocks lower

# ITU T.81 Annex K.3, table K.3: code counts per length 1..16 and the symbols
# (the DC "size" categories 0..11) of the standard luminance DC table.
_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_SYMBOLS = tuple(range(12))
# A one-symbol AC table: the only AC symbol we ever write is end-of-block (0x00).
_AC_COUNTS = (1,) + (0,) * 15
_AC_SYMBOLS = (0x00,)


def _canonical_codes(counts, symbols) -> dict:
    """symbol -> (code, length) of a canonical Huffman table (T.81 Annex C)."""
    codes, code, k = {}, 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


_DC_CODES = _canonical_codes(_DC_COUNTS, _DC_SYMBOLS)
_EOB = _canonical_codes(_AC_COUNTS, _AC_SYMBOLS)[0x00]


class _BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.bits = 0

    def write(self, value: int, length: int) -> None:
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.bits += length
        while self.bits >= 8:
            self.bits -= 8
            byte = (self.acc >> self.bits) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0x00)       # T.81 F.1.2.3 byte stuffing
        self.acc &= (1 << self.bits) - 1

    def flush(self) -> bytes:
        if self.bits:
            self.write((1 << (8 - self.bits)) - 1, 8 - self.bits)   # pad with 1-bits
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _blocks(code: str, rng) -> list:
    """Grey level of every 8x8 block, rows of blocks top to bottom."""
    width = 2 * _MARGIN + len(code) * 6 - 1
    height = 2 * _MARGIN + 7 + _JITTER
    grid = [[_PAPER - rng.randrange(0, 12) for _ in range(width)] for _ in range(height)]
    for i, char in enumerate(code.upper()):
        glyph = _GLYPHS.get(char, _BOX)
        top = _MARGIN + rng.randrange(0, _JITTER + 1)
        left = _MARGIN + i * 6
        for y, row in enumerate(glyph):
            for x, pixel in enumerate(row):
                if pixel == "#":
                    grid[top + y][left + x] = _INK + rng.randrange(0, 30)
    return grid


def render_jpeg(code: str, rng) -> bytes:
    """Draw ``code`` (letters and digits, shown upper-case) as a greyscale JPEG.

    Args:
        code: the verify code, e.g. ``"ABCD"``; characters outside A-Z/0-9 show as boxes.
        rng: a ``random.Random`` for the slight grey variation and glyph offsets.

    Returns:
        The JPEG file's bytes (baseline, one component, 8x8 pixels per glyph pixel).
    """
    grid = _blocks(code, rng)
    height, width = len(grid) * 8, len(grid[0]) * 8
    # DC quantiser 8: a flat block of grey v has DC = 8 * (v - 128), so the quantised
    # DC is exactly v - 128 (T.81 A.3.3 with the 1/8 scaling of the 2-D DCT).
    quant = bytes([8] + [16] * 63)
    bits = _BitWriter()
    previous = 0
    for row in grid:
        for grey in row:
            dc = grey - 128
            diff = dc - previous
            previous = dc
            size = abs(diff).bit_length()
            code_bits, length = _DC_CODES[size]
            bits.write(code_bits, length)
            if size:
                bits.write(diff if diff > 0 else diff + (1 << size) - 1, size)
            bits.write(*_EOB)
    return b"".join((
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xDB, b"\x00" + quant),
        _segment(0xC0, b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")
                 + b"\x01\x01\x11\x00"),
        _segment(0xC4, b"\x00" + bytes(_DC_COUNTS) + bytes(_DC_SYMBOLS)),
        _segment(0xC4, b"\x10" + bytes(_AC_COUNTS) + bytes(_AC_SYMBOLS)),
        _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        bits.flush(),
        b"\xff\xd9",
    ))
