"""Tests of webqq.qq.content: content decode/encode, fonts, faces, splitting; no I/O."""
import json
import time

import pytest

from webqq import qq
from webqq.qq import (Content, Face, Font, Image, MalformedContent, MessageTooLong, Text,
                      UnknownPiece, content_text, split_content)
from webqq.qq import content as qq_content

RECEIVED_FONT = ["font", {"size": 10, "color": "808080", "style": [0, 0, 0],
                          "name": "\u65B0\u5B8B\u4F53"}]


def decode(*pieces):
    return qq.decode_content([RECEIVED_FONT, *pieces])


# --- fonts -------------------------------------------------------------------------------

def test_font_round_trip_and_wire_order():
    font = Font(name="微软雅黑", size=11, color="ff0000", bold=True, underline=True)
    wire = font.to_wire()
    assert wire == ["font", {"name": "微软雅黑", "size": 11, "style": [1, 0, 1],
                             "color": "ff0000"}]
    assert list(wire[1]) == ["name", "size", "style", "color"]  # the §7.1 order
    assert Font.from_wire(wire[1]) == font


def test_font_size_may_be_a_string():
    # the browser sent {"size":"11"} (IQ capture, §7.1)
    attrs = {"name": "微软雅黑", "size": "11", "style": [0, 0, 0], "color": "ff0000"}
    assert Font.from_wire(attrs).size == 11


def test_default_font_is_the_documented_one():
    assert qq.DEFAULT_FONT.to_wire() == [
        "font", {"name": "宋体", "size": 10, "style": [0, 0, 0], "color": "000000"}]


@pytest.mark.parametrize("attrs", [
    None, [], {"name": "a", "size": 10, "color": "00000", "style": [0, 0, 0]},
    {"name": "a", "size": "big", "color": "000000", "style": [0, 0, 0]},
    {"name": "a", "size": 10, "color": "000000", "style": [0, 0]},
    {"name": "a", "size": 10, "color": "000000", "style": [0, 2, 0]},
    {"size": 10, "color": "000000", "style": [0, 0, 0]},
    {"name": "a", "size": True, "color": "000000", "style": [0, 0, 0]},
])
def test_malformed_fonts(attrs):
    with pytest.raises(MalformedContent):
        Font.from_wire(attrs)


# --- received content --------------------------------------------------------------------

def test_decode_documented_buddy_message():
    content = decode("123", ["face", 1], "2343", ["face", 3], " ")
    assert content.font == Font(name="新宋体", size=10, color="808080")
    assert content.pieces == (Text("123"), Face(1), Text("2343"), Face(3), Text(" "))
    assert content.text == "123[face:1]2343[face:3]"
    assert content.raw[0] is RECEIVED_FONT


def test_text_normalises_line_breaks_and_drops_the_trailing_space():
    assert decode("a\r\nb\rc\nd ").text == "a\nb\nc\nd"
    assert decode("two  ").text == "two "


@pytest.mark.parametrize("advert", [
    "\n【提示：此用户正在使用Q+ Web：http://web.qq.com/】",
    "\n【提示：此用户正在使用Q+ Web：http://web3.qq.com/】",
])
def test_text_drops_the_q_web_advert(advert):
    assert decode("hello", advert).text == "hello"
    assert decode("hello" + advert).text == "hello"


def test_pictures_are_marked():
    content = decode(
        "a", ["offpic", {"success": 1, "file_path": "/7acccf74-0fcd-4bbd-b885-03a5cc2f7507"}],
        "b", ["cface", {"name": "{94E8E5BA-9304-043E-F028-93986EEF0450}.jpg",
                        "file_id": 445318646, "key": "PN576E5TyB53muY9",
                        "server": "124.115.11.111:8000"}],
        "c", ["cface", "5E10B9BCA2BDF8489CB3239DFFA745B5.jpg", ""],
        "d", ["pic_id", "5E10B9BC-A2BD-F848-9CB3-239DFFA745B5"], ["image", "jpg", 0],
        "e", ["image", "png", 0])
    assert content.text == "a[image]b[image]c[image]d[image]e[image]"
    assert content.pieces[1] == Image("offpic", "/7acccf74-0fcd-4bbd-b885-03a5cc2f7507")
    assert content.pieces[3] == Image("cface", "{94E8E5BA-9304-043E-F028-93986EEF0450}.jpg",
                                      445318646, "124.115.11.111:8000", "PN576E5TyB53muY9")
    assert content.pieces[5] == Image("cface", "5E10B9BCA2BDF8489CB3239DFFA745B5.jpg")


def test_sent_picture_forms_are_read_too():
    content = qq.decode_content([["offpic", "/27d7", "Beaver.bmp", 14173],
                                 ["cface", "group", "ABC.jPg"]])
    assert content.pieces == (Image("offpic", "/27d7"), Image("cface", "ABC.jPg"))
    assert content.font is None


def test_unknown_pieces_are_kept_but_not_rendered():
    content = decode("x", ["shake", 1], "y")
    assert content.pieces[1] == UnknownPiece(["shake", 1])
    assert content.text == "xy"


def test_empty_content():
    assert qq.decode_content([]) == Content((), None, [])
    assert qq.decode_content([]).text == ""


@pytest.mark.parametrize("content, problem", [
    ("hello", "content is not an array"),
    ({"a": 1}, "content is not an array"),
    ([7], "neither text nor"),
    ([[]], "neither text nor"),
    ([[1, 2]], "neither text nor"),
    ([["face", "1"]], "malformed face piece"),
    ([["face", -1]], "malformed face piece"),
    ([["face"]], "malformed face piece"),
    ([["offpic", {"success": 1}]], "malformed offpic piece"),
    ([["cface"]], "malformed cface piece"),
    ([["font", {"name": 1}]], "malformed font"),
    ([["font"]], "malformed font piece"),
])
def test_malformed_content(content, problem):
    with pytest.raises(MalformedContent, match=problem):
        qq.decode_content(content)


# --- sent content ------------------------------------------------------------------------

def test_encode_content_is_the_documented_array():
    encoded = qq.encode_content(["hello 你好", Face(14), "\n"])
    assert json.loads(encoded) == [
        "hello 你好", ["face", 14], "\n",
        ["font", {"name": "宋体", "size": 10, "style": [0, 0, 0], "color": "000000"}]]
    assert encoded.isascii()  # non-ASCII as \uXXXX, as PB sent it


def test_encode_content_of_a_plain_text():
    font = Font(name="Monospace")
    assert qq.encode_content("hello", font) == (
        '["hello",["font",{"name":"Monospace","size":10,"style":[0,0,0],'
        '"color":"000000"}]]')


def test_encode_content_refuses_other_pieces():
    with pytest.raises(TypeError, match="a str, Face, OffPic or CFace"):
        qq.encode_content(["a", 14])


def test_sent_content_decodes_back():
    encoded = qq.encode_content(["hi ", Face(50), " there"], Font(bold=True))
    content = qq.decode_sent_content(encoded)
    assert content.pieces == (Text("hi "), Face(50), Text(" there"))
    assert content.font == Font(bold=True)
    assert content.text == "hi [face:50] there"


def test_decode_sent_content_of_the_documented_example():
    sent = ('["hello 你好",["face",14],"\\n",["font",{"name":"宋体","size":10,'
            '"style":[0,0,0],"color":"000000"}]]')
    assert qq.decode_sent_content(sent).text == "hello 你好[face:14]\n"


@pytest.mark.parametrize("sent", ["", "[", "hello", '{"a":1}', '[["face"]]'])
def test_decode_sent_content_refuses_garbage(sent):
    with pytest.raises(MalformedContent):
        qq.decode_sent_content(sent)


# --- splitting ---------------------------------------------------------------------------

def test_split_short_and_empty_texts():
    assert qq.split_text("hello") == ["hello"]
    assert qq.split_text("x" * qq.MAX_TEXT_CHARS) == ["x" * 300]
    assert qq.split_text("") == []


def test_split_counts_code_points_not_bytes():
    text = "你" * 301
    assert qq.split_text(text) == ["你" * 300, "你"]


def test_split_prefers_line_breaks_then_spaces():
    assert qq.split_text("aaaa bb\ncc dddd", 10) == ["aaaa bb\n", "cc dddd"]
    assert qq.split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb ", "cccc"]
    # a break in the first half of the window would leave a tiny part: cut hard instead
    assert qq.split_text("a bbbbbbbbbbbbbb", 10) == ["a bbbbbbbb", "bbbbbb"]


@pytest.mark.parametrize("cluster", [
    "e\u0301",                           # e + combining acute
    "\U0001F468\u200D\U0001F469\u200D\U0001F467",  # family: ZWJ sequence
    "\U0001F1E8\U0001F1F3",              # flag CN: two regional indicators
    "\U0001F44D\U0001F3FD",              # thumbs up, skin tone
    "\u2764\uFE0F",                      # heart + variation selector
    "\r\n",
])
def test_split_never_cuts_a_character(cluster):
    for prefix in range(1, 8):
        text = "x" * prefix + cluster * 5
        for limit in range(len(cluster), 9):
            parts = qq.split_text(text, limit)
            assert "".join(parts) == text
            assert all(len(part) <= limit for part in parts)
            for part in parts:  # after the x's, every part holds whole clusters only
                clusters = part.lstrip("x")
                assert clusters == cluster * (len(clusters) // len(cluster)), (limit, parts)


def test_split_cuts_a_character_only_when_it_is_longer_than_the_limit():
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # 5 code points
    assert qq.split_text(family, 3) == [family[:3], family[3:]]


def test_split_flags_pair_from_the_start_of_a_run():
    flags = "\U0001F1E8\U0001F1F3\U0001F1EF\U0001F1F5\U0001F1FA\U0001F1F8"  # CN JP US
    parts = qq.split_text(flags, 3)
    assert parts == [flags[0:2], flags[2:4], flags[4:6]]


def test_split_joins_back_to_the_original():
    text = ("第一行 with words\r\n" + "长" * 400 + " tail e\u0301 \U0001F1E8\U0001F1F3 ") * 3
    for limit in (1, 2, 7, 50, 300):
        parts = qq.split_text(text, limit)
        assert "".join(parts) == text
        assert all(0 < len(part) <= limit for part in parts)


def test_split_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        qq.split_text("x", 0)


def test_split_content_counts_a_face_as_one_and_never_cuts_it():
    pieces = ["ab", Face(1), "cdefg", Face(2)]
    parts = split_content(pieces, 3)
    assert parts == [["ab", Face(1)], ["cde"], ["fg", Face(2)]]
    assert "".join(content_text(part) for part in parts) == content_text(pieces)
    assert split_content("hello world", 6) == ["hello ", "world"]
    assert split_content([], 5) == []
    with pytest.raises(ValueError):
        split_content(["a", 7], 5)


def test_split_content_ends_a_part_where_it_cuts_a_text():
    # a cut at a space ends the part: the rest of the text starts the next one whole,
    # instead of topping the part up with the next word's first letters
    assert split_content(["hello world foo", Face(1)], 8) == [
        ["hello "], ["world "], ["foo", Face(1)]]


def test_split_content_moves_a_character_that_does_not_fit_to_the_next_part():
    flag = "\U0001F1E8\U0001F1F3"
    assert split_content(["ab", flag + "c"], 3) == [["ab"], [flag + "c"]]
    assert split_content([Face(1), "e\u0301", Face(2)], 2) == [[Face(1)], ["e\u0301"], [Face(2)]]


# --- the cost of splitting (issue 11 #3: one long message froze the daemon) ------------

def mixed_text(length):
    """Chat-like text of exactly ``length`` code points: words, line breaks, a flag run,
    combining marks, CJK."""
    unit = "word " * 40 + "\n" + "\U0001F1E8\U0001F1F3" * 30 + "e\u0301" * 20 + "你" * 50
    return (unit * (length // len(unit) + 1))[:length]


@pytest.fixture
def count_checks(monkeypatch):
    """Count the per-character checks splitting makes: its unit of work."""
    counts = {"checks": 0}
    for name in ("_can_break_before", "_is_extender", "_is_regional_indicator"):
        original = getattr(qq_content, name)

        def counted(*args, _original=original):
            counts["checks"] += 1
            return _original(*args)
        monkeypatch.setattr(qq_content, name, counted)
    return counts


@pytest.mark.parametrize("make", [
    lambda n: "a" * n,
    lambda n: ["a" * n, Face(1)],                  # was quadratic: the rest re-split per part
    lambda n: "\U0001F1E8" * n,                    # was quadratic: the flag run recounted
    lambda n: [mixed_text(n), Face(1), mixed_text(n)],
], ids=["text", "pieces", "flags", "mixed"])
def test_splitting_work_grows_linearly_with_the_length(count_checks, make):
    work = []
    for n in (20_000, 200_000):
        count_checks["checks"] = 0
        split_content(make(n), max_parts=None)
        work.append(count_checks["checks"])
    assert work[1] <= 11 * work[0], work       # 10x the text, ~10x the work (not 100x)


def test_splitting_time_grows_linearly_with_the_length():
    """The same on the clock, as a ratio on this machine: 10x the text costs ~10x the
    time when splitting is linear, ~100x when quadratic; 30 leaves room for noise."""
    def best_time(value):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            split_content(value, max_parts=None)
            times.append(time.perf_counter() - start)
        return min(times)
    short, long = ([mixed_text(n), Face(1)] for n in (20_000, 200_000))
    assert best_time(long) < 30 * best_time(short)


def test_a_million_characters_are_refused_at_once_or_split_whole():
    text = mixed_text(1_000_000)
    with pytest.raises(MessageTooLong) as caught:
        split_content(text)
    assert (caught.value.length, caught.value.limit, caught.value.max_parts) == (
        1_000_000, qq.MAX_TEXT_CHARS, qq.MAX_PARTS)
    assert str(caught.value) == (
        "the message is too long: 1000000 characters would take more than 100 messages "
        "of at most 300 characters each")
    assert isinstance(caught.value, ValueError)  # the API's "failed: <reason>"
    parts = split_content(text, max_parts=None)
    assert "".join(parts) == text and max(map(len, parts)) <= qq.MAX_TEXT_CHARS


def test_the_cap_counts_parts_faces_included():
    assert len(split_content("a" * 300 * qq.MAX_PARTS)) == qq.MAX_PARTS
    with pytest.raises(MessageTooLong):
        split_content("a" * (300 * qq.MAX_PARTS + 1))
    assert len(split_content([Face(1)] * 10, 2, max_parts=5)) == 5
    with pytest.raises(MessageTooLong, match="11 characters"):
        split_content([Face(1)] * 10 + ["x"], 2, max_parts=5)
