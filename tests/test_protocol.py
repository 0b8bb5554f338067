"""Tests of webqq.protocol: literal bytes in, values out; no I/O."""
import pytest

from webqq import protocol

UIN_BYTES = b"\x00\x00\x00\x00\x64\x74\x8b\x05"  # QQ 1685359365, PROTOCOL.md §3.2
PTWEBQQ = "2c0d8375e6c09f2af3ce60c6e081bdf4db271a14d0d85060"


# --- §3 password and friend-list hash ----------------------------------------------------

@pytest.mark.parametrize("password, vcode, expected", [
    ("password", "!PTH", "8B861F6C749FD12FA8D03A0B1BB3A414"),
    ("password", "abcd", "F0C288A57361621135A9E73D8FE2989A"),
    ("password", "ABCD", "F0C288A57361621135A9E73D8FE2989A"),
    ("123456", "!IJG", "C5157F52D163706FD27E2BB292537CA8"),
])
def test_encrypt_password_worked_examples(password, vcode, expected):
    assert protocol.encrypt_password(password, UIN_BYTES, vcode) == expected


def test_encrypt_password_needs_eight_bytes():
    with pytest.raises(ValueError, match="8 bytes"):
        protocol.encrypt_password("password", UIN_BYTES[1:], "!PTH")


@pytest.mark.parametrize("variant, expected", [
    ("N", "FDF4FAF5"),
    ("O", "035508510B060E0653035206015301545F00555007065B0356050102545157025C5701020852"
          "070155065C0D06050F03465442454F5A4151195644475E44"),
    ("P", "0521543759C45D4E"),
    ("Q", "3EB2FEEA"),
])
def test_friends_hash_worked_examples(variant, expected):
    assert protocol.friends_hash(1685359365, PTWEBQQ, variant) == expected


def test_friends_hash_published_p_vector():
    ptwebqq = "3d2a1d96e3c119ee6074807abcb4f13d6dd7db591a2988108c926ef62ca0fcee"
    assert protocol.friends_hash(398565080, ptwebqq, "P") == "5D52018255D15093"


def test_friends_hash_defaults_to_spring_2013_variant_o():
    assert protocol.friends_hash(1685359365, PTWEBQQ) == protocol.friends_hash(
        1685359365, PTWEBQQ, "O")


def test_friends_hash_n_reads_zero_past_the_end():
    # pos 9 of 10: the word is 'j', byte(10) = 0, byte(11) = 0, 'a' = 0x6A000061,
    # and 0xFFFFFFFF ^ 0x6A000061 = 0x95FFFF9E. (PB's Python raised IndexError here.)
    assert protocol.friends_hash(9, "abcdefghij", "N") == "95FFFF9E"


def test_friends_hash_rejects_unknown_variant_and_empty_ptwebqq():
    with pytest.raises(ValueError, match="unknown hash variant 'Z'"):
        protocol.friends_hash(1685359365, PTWEBQQ, "Z")
    with pytest.raises(ValueError, match="ptwebqq"):
        protocol.friends_hash(1685359365, "", "N")
