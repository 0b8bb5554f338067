"""SecretMask's matching: overlapping and nested secrets, repeats, the ends of a line,
secrets let go, and text that looks like the mask. Each test runs both ways the mask
finds secrets (searching for each form, with few; looking each position up in its
index, with many), which must agree. Registering and the log filter are tested in
tests/test_daemon.py."""
import random

import pytest

import webqq.daemon.logs as logs
from webqq.daemon.logs import SecretMask
from webqq.http.redact import MASK


@pytest.fixture(params=["search", "scan"])
def mask(request, monkeypatch):
    """A SecretMask that finds secrets only the one way."""
    if request.param == "search":
        monkeypatch.setattr(SecretMask, "_scan", SecretMask._search)
    else:
        monkeypatch.setattr(SecretMask, "_search", SecretMask._scan)
    return SecretMask()


def test_of_overlapping_secrets_the_longest_is_masked(mask):
    mask.add("key-1234")
    mask.add("1234-tail-x")
    # The longer one wins; the shorter one's rest is not a secret on its own.
    assert mask.mask("key-1234-tail-x") == "key-" + MASK
    # A shorter one that still fits beside the longer one is masked too.
    mask.add("wxyz")
    mask.add("wxyz-0000")
    assert mask.mask("wxyzwxyz-0000") == MASK + MASK


def test_of_overlapping_secrets_of_one_length_the_first_in_code_point_order_is_masked(mask):
    mask.add("xxab")
    mask.add("abyy")
    assert mask.mask("xxabyy") == "xx" + MASK
    assert mask.mask("xxab abyy") == MASK + " " + MASK


def test_a_secret_inside_another_is_masked_with_it_and_alone(mask):
    vfwebqq = "0a1b2c3d4e5f"
    psessionid = "8368046764001e" + vfwebqq             # a psessionid ends with vfwebqq
    mask.add(vfwebqq, session="shop")
    mask.add(psessionid, session="shop")
    assert mask.mask("psessionid=%s&vfwebqq=%s" % (psessionid, vfwebqq)) == \
        "psessionid=%s&vfwebqq=%s" % (MASK, MASK)
    mask.add("long")
    assert mask.mask("secret-long-value") == "secret-" + MASK + "-value"
    mask.add("secret-long-value")
    assert mask.mask("secret-long-value long") == MASK + " " + MASK


def test_a_secret_at_either_end_of_the_line_or_cut_off_by_it(mask):
    mask.add("abcd")
    mask.add("efghijkl")
    assert mask.mask("abcd") == MASK
    assert mask.mask("x abcd") == "x " + MASK
    assert mask.mask("abcd x") == MASK + " x"
    assert mask.mask("x efghijkl") == "x " + MASK
    assert mask.mask("x efghijk") == "x efghijk"      # its start, not the secret
    assert mask.mask("abc") == "abc"
    assert mask.mask("") == ""


def test_a_secret_repeated_or_overlapping_itself_is_masked_at_each_whole_occurrence(mask):
    mask.add("abab")
    assert mask.mask("abab x abab") == MASK + " x " + MASK
    assert mask.mask("abababab") == MASK + MASK
    # As str.replace: left to right, the second occurrence began inside the first.
    assert mask.mask("ababab") == MASK + "ab"


def test_a_secret_with_mask_like_text_is_masked_and_the_masks_are_not_searched_again(mask):
    mask.add("pass********word")
    mask.add("****")
    mask.add("topsecret")
    assert mask.mask("pw pass********word") == "pw " + MASK
    # "****" is registered, but the masks put in for topsecret are not searched again.
    assert mask.mask("topsecret and ****") == MASK + " and " + MASK
    assert mask.mask("topsecretx") == MASK + "x"


def test_a_dropped_secret_is_no_longer_masked_and_its_neighbours_still_are(mask, monkeypatch):
    monkeypatch.setattr(logs, "SESSION_SECRETS_MAX", 1)
    # Same first characters and length: one entry of the index for both.
    mask.add("same-start-1", session="shop")
    mask.add("same-start-2", session="support")
    mask.add("same-start-3", session="shop")            # shop's first value goes
    assert mask.mask("same-start-1 same-start-2 same-start-3") == \
        "same-start-1 %s %s" % (MASK, MASK)
    mask.add("other", session="support")
    mask.add("later", session="shop")
    assert mask.mask("same-start-2 same-start-3 other later") == \
        "same-start-2 same-start-3 %s %s" % (MASK, MASK)


def test_a_value_two_owners_registered_is_masked_until_both_let_it_go(mask, monkeypatch):
    monkeypatch.setattr(logs, "SESSION_SECRETS_MAX", 1)
    mask.add("shared-cookie", session="shop")
    mask.add("shared-cookie", session="support")
    mask.add("shop-next", session="shop")
    assert mask.mask("shared-cookie") == MASK
    mask.add("support-next", session="support")
    assert mask.mask("shared-cookie") == "shared-cookie"
    # The configuration's secrets are never let go, whoever else registered them.
    mask.add("the-password")
    mask.add("the-password", session="shop")
    mask.add("shop-after", session="shop")
    assert mask.mask("the-password") == MASK


def test_a_secret_or_a_line_holding_the_blank_is_masked_like_any_other():
    # _search puts "\0" where it found a form until its end: with a form or a line
    # holding one, the mask looks the line up instead, whatever the number of forms.
    mask = SecretMask()
    mask.add("topsecret")
    assert mask.mask("a\0b topsecret") == "a\0b " + MASK
    mask.add("abc\0")
    assert mask.mask("abctopsecret") == "abc" + MASK
    assert mask.mask("abc\0topsecret") == MASK + MASK


def test_masking_equals_replacing_each_secret_in_turn_longest_first(mask):
    # What the mask did before its indexes: str.replace with each secret in turn,
    # longest first, then in code point order. With no "*" in a secret (the masks put
    # in were searched again) the results are equal.
    rng = random.Random(17)
    for _ in range(500):
        mask = type(mask)()
        secrets = {"".join(rng.choice("ab") for _ in range(rng.randint(4, 8)))
                   for _ in range(rng.randint(1, 5))}
        for n, secret in enumerate(sorted(secrets)):
            mask.add(secret, session=n % 2 or None)
        text = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 40)))
        expected = text
        for secret in sorted(secrets, key=lambda secret: (-len(secret), secret)):
            expected = expected.replace(secret, MASK)
        assert mask.mask(text) == expected, (secrets, text)
