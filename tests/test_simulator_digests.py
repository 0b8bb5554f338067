"""The simulator's own password digest and friend-list hashes, pinned to fixed vectors.

The simulator checks a client's ``p`` and ``hash`` with webqq.simulator.digests, written
apart from the client's code; these vectors keep it honest. Each row names what it rests
on:

* NOTES: the worked examples of the project's protocol notes (§4.2, §4.3), computed
  there with Python's hashlib and checked against pual_bot's and twqq's code.
* LQ: xiehuc/lwqq lib/utility.c at 0431e09 (2013-12-05), lwqq_util_hashN/O/P/Q,
  compiled with gcc and run, the ptwebqq handed over in a zero-padded buffer so that
  reading past its end yields 0, as the 2013 JavaScript did.
* PB: coldnight/pual_bot at ce65a04 (2013-08-15), webqq.py ``_hash`` (N) and
  ``handle_pwd`` (the password, fed the upper-cased code), and pual_bot's _hash.py (Q),
  run under Python 3 with only bytes/str adapted.
* TW: coldnight/twqq twqq/_hash.py at 0ce3b02 (P), run the same way; also the P test
  vector published in its JavaScript source's comment (uin 398565080).

Those programs were run outside this repository to produce the numbers; none of their
code is here.
"""
import pytest

from webqq.simulator.digests import FRIEND_HASH_VARIANTS, friend_list_hash, login_p

PTWEBQQ_2013 = "2c0d8375e6c09f2af3ce60c6e081bdf4db271a14d0d85060"
COUNTING = "0123456789abcdef0123456789abcdef0123456789abcdef"
SHA_TEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"
LONG_2015 = "3d2a1d96e3c119ee6074807abcb4f13d6dd7db591a2988108c926ef62ca0fcee"
REPEATS = "b0b0b0b0c1c1c1c1a2a2a2a2e3e3e3e3f4f4f4f4d5d5d5d5"

# (password, QQ number, verify code as the client typed it, p, sources)
PASSWORD_VECTORS = [
    ("password", 1685359365, "!PTH", "8B861F6C749FD12FA8D03A0B1BB3A414", "NOTES PB"),
    ("password", 1685359365, "abcd", "F0C288A57361621135A9E73D8FE2989A", "NOTES"),
    ("123456", 1685359365, "!IJG", "C5157F52D163706FD27E2BB292537CA8", "NOTES"),
    ("webqq-demo", 10001, "!ABC", "3DE590FE5BB0D2F699B2C990600E6F24", "PB"),
    ("密码123", 4294967295, "xyzw", "56F8404DB89AE17F4CE4F12A959833C2", "PB"),
    ("", 20001, "!ZZZ", "1CE9440537E5502FC58907A42D41CE34", "PB"),
]

# (variant, QQ number, ptwebqq, hash, sources)
HASH_VECTORS = [
    ("N", 1685359365, PTWEBQQ_2013, "FDF4FAF5", "NOTES LQ PB"),
    ("O", 1685359365, PTWEBQQ_2013,
     "035508510B060E0653035206015301545F00555007065B0356050102545157025C5701020852070155065C"
     "0D06050F03465442454F5A4151195644475E44", "NOTES LQ"),
    ("P", 1685359365, PTWEBQQ_2013, "0521543759C45D4E", "NOTES LQ TW"),
    ("Q", 1685359365, PTWEBQQ_2013, "3EB2FEEA", "NOTES LQ PB"),
    ("P", 398565080, LONG_2015, "5D52018255D15093", "NOTES TW"),
    ("N", 10001, COUNTING, "CDCCCBCA", "LQ PB"),
    ("O", 10001, COUNTING,
     "01010203050406070808505253545457000102020505060709085152535554560001030204050606090951"
     "525255555640504243475F4355105542435E42", "LQ"),
    ("P", 10001, COUNTING, "5F4559430068005A", "LQ TW"),
    ("Q", 10001, COUNTING, "13DE5246", "LQ PB"),
    ("N", 4294967295, SHA_TEST, "AAF8F1FA", "LQ PB"),
    ("O", 4294967295, SHA_TEST,
     "0D5401025D060F03010D00510E500F030E530B53515358045A0302535D05050758075B50035408570650"
     "095601040551495447414E5B4B5217574B475B40", "LQ"),
    ("P", 4294967295, SHA_TEST, "56BA0ABC04B056B4", "LQ TW"),
    ("Q", 4294967295, SHA_TEST, "138C1E88", "LQ PB"),
    ("N", 123456789, LONG_2015, "CF98C9CD", "LQ PB"),
    ("O", 123456789, LONG_2015,
     "0256015504520E0E5C025102050C53520E0906060B040257555B5B055402075100535C0E5550060D0457"
     "0501010903030C560F050E5C570401575406515B5C544252474641584A5D115741465A44", "LQ"),
    ("P", 123456789, LONG_2015, "5D4201185582505E", "LQ TW"),
    ("Q", 123456789, LONG_2015, "2F68290D", "LQ PB"),
    ("N", 20001, REPEATS, "CF9DCF9D", "LQ PB"),
    ("O", 20001, REPEATS,
     "50005200530252005300510153015203510251035302510254015503550257035604570656045605560554"
     "055507540540504143475F4356105542435D42", "LQ"),
    ("P", 20001, REPEATS, "004500430001006A", "LQ TW"),
    ("Q", 20001, REPEATS, "F9F34679", "LQ PB"),
    # N's wrap-around corner: the walk stops on the last character, so the window reads
    # past the end (0s) before restarting at the front. PB raises IndexError here.
    ("N", 999992, PTWEBQQ_2013, "AAC8CFA6", "LQ"),
    ("N", 9999921, PTWEBQQ_2013, "98ABFFC2", "LQ"),
    # The window running off the end by one and two characters.
    ("N", 99999999, PTWEBQQ_2013, "A9ABA1F0", "LQ PB"),
    ("N", 1999999994, PTWEBQQ_2013, "A8A4A2F1", "LQ PB"),
]


@pytest.mark.parametrize("password, qq, code, expected, sources", PASSWORD_VECTORS)
def test_login_p_vectors(password, qq, code, expected, sources):
    assert login_p(password, qq.to_bytes(8, "big"), code) == expected, sources


@pytest.mark.parametrize("variant, qq, ptwebqq, expected, sources", HASH_VECTORS)
def test_friend_list_hash_vectors(variant, qq, ptwebqq, expected, sources):
    assert friend_list_hash(qq, ptwebqq, variant) == expected, sources


def test_every_variant_has_vectors():
    assert {v for v, *_ in HASH_VECTORS} == set(FRIEND_HASH_VARIANTS) == set("NOPQ")


def test_the_verify_code_counts_upper_cased():
    uin = (1685359365).to_bytes(8, "big")
    assert login_p("password", uin, "abcd") == login_p("password", uin, "ABCD")
