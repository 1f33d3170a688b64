"""The key ring, the token format and the blind index (rdv.core.crypto)."""

from __future__ import annotations

import base64
import os
import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from rdv.core import crypto
from rdv.core.crypto import DecryptionError, blind_index, parse_keys

CONTEXT = "patients.patient.ramq_number"
SECRET = "TREM88041211"


def new_key(kid: str) -> str:
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def _flip(token: str, position: int) -> str:
    """The token with one base64url character of its payload changed."""
    head, payload = token.rsplit(".", 1)
    chars = list(payload)
    chars[position] = "A" if chars[position] != "A" else "B"
    return f"{head}.{''.join(chars)}"


def test_round_trip_under_the_primary_key() -> None:
    ring = parse_keys([new_key("k2"), new_key("k1")])
    token = ring.encrypt(SECRET, context=CONTEXT)
    assert re.fullmatch(r"v1\.k2\.[A-Za-z0-9_-]+", token)
    assert ring.decrypt(token, context=CONTEXT) == SECRET
    assert ring.kid_of(token, context=CONTEXT) == "k2"


def test_the_same_value_encrypts_differently_each_time() -> None:
    ring = parse_keys([new_key("k1")])
    assert ring.encrypt(SECRET, context=CONTEXT) != ring.encrypt(SECRET, context=CONTEXT)


def test_every_key_of_the_ring_decrypts() -> None:
    old, new = new_key("k1"), new_key("k2")
    token = parse_keys([old]).encrypt(SECRET, context=CONTEXT)
    assert parse_keys([new, old]).decrypt(token, context=CONTEXT) == SECRET


def test_a_token_with_any_character_changed_is_refused() -> None:
    ring = parse_keys([new_key("k1")])
    token = ring.encrypt(SECRET, context=CONTEXT)
    payload_length = len(token.rsplit(".", 1)[1])
    for position in range(payload_length):
        with pytest.raises(DecryptionError) as caught:
            ring.decrypt(_flip(token, position), context=CONTEXT)
        assert SECRET not in str(caught.value)


def test_token_made_for_another_column_is_refused() -> None:
    ring = parse_keys([new_key("k1")])
    token = ring.encrypt(SECRET, context="patients.patient.phone")
    with pytest.raises(DecryptionError, match="another column"):
        ring.decrypt(token, context=CONTEXT)


def test_token_with_its_key_id_edited_is_refused() -> None:
    k1, k2 = new_key("k1"), new_key("k2")
    token = parse_keys([k1]).encrypt(SECRET, context=CONTEXT)
    # Same key material under another id: the id is authenticated too.
    relabelled = parse_keys([k1, "k2:" + k1.split(":", 1)[1]])
    with pytest.raises(DecryptionError):
        relabelled.decrypt(token.replace("v1.k1.", "v1.k2.", 1), context=CONTEXT)
    with pytest.raises(DecryptionError, match="'k1' is not in"):
        parse_keys([k2]).decrypt(token, context=CONTEXT)


@pytest.mark.parametrize(
    "stored", [SECRET, "v2.k1.abcd", "v1..abcd", "v1.k1.", "v1.k1.@@@@", "v1.k1.AA"]
)
def test_a_value_that_is_not_a_token_is_refused_without_quoting_it(stored: str) -> None:
    ring = parse_keys([new_key("k1")])
    with pytest.raises(DecryptionError) as caught:
        ring.decrypt(stored, context=CONTEXT)
    assert CONTEXT in str(caught.value)
    assert stored not in str(caught.value)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "empty"),
        (["k1"], "entry 1"),
        (["bad.kid:" + "A" * 43], "entry 1"),
        (["k1:" + base64.urlsafe_b64encode(b"short").decode()], "32 bytes, not 5"),
        (["k1:!!!!"], "not base64url"),
        ([new_key("k1"), new_key("k1")], "twice"),
    ],
)
def test_misconfigured_keys_stop_the_process(entries: list[str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        parse_keys(entries)
    for entry in entries:
        secret_part = entry.partition(":")[2]
        if len(secret_part) > 4:
            assert secret_part not in str(caught.value)


def test_key_material_never_shows_in_a_repr() -> None:
    entry = new_key("k1")
    ring = parse_keys([entry])
    assert repr(ring) == "KeyRing(primary='k1', kids=['k1'])"
    assert entry.split(":", 1)[1] not in repr(ring.__dict__)


def test_the_ring_is_parsed_again_when_the_settings_change(settings: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [new_key("first")]
    assert crypto.key_ring().primary_kid == "first"
    settings.FIELD_ENCRYPTION_KEYS = [new_key("second"), new_key("first")]
    assert crypto.key_ring().primary_kid == "second"
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured):
        crypto.key_ring()


def test_blind_index_is_keyed_deterministic_and_separated_by_purpose(settings: Any) -> None:
    settings.BLIND_INDEX_KEY = "a" * 48
    first = blind_index(SECRET, purpose=CONTEXT)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert blind_index(SECRET, purpose=CONTEXT) == first
    assert blind_index(SECRET, purpose="patients.patient.phone") != first
    assert blind_index("TREM88041212", purpose=CONTEXT) != first
    settings.BLIND_INDEX_KEY = "b" * 48
    assert blind_index(SECRET, purpose=CONTEXT) != first


def test_blind_index_refuses_a_short_key(settings: Any) -> None:
    settings.BLIND_INDEX_KEY = "too short"
    with pytest.raises(ImproperlyConfigured, match="BLIND_INDEX_KEY"):
        blind_index(SECRET, purpose=CONTEXT)
