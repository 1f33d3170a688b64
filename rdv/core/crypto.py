"""Field-level encryption of health data and keyed blind indexes (DESIGN.md invariant 7).

A value is encrypted with AES-256-GCM under the primary key of the ring and stored as

    v1.<kid>.<base64url(nonce || ciphertext || tag)>

with a fresh random 96-bit nonce per value. The associated data binds the token to its
version, key id and column (e.g. "patients.patient.ramq_number"): a token copied into
another column, or with its key id edited, fails authentication instead of decrypting.

Keys come from settings.FIELD_ENCRYPTION_KEYS ("kid:base64url(32 bytes)", the first one
encrypts, all of them decrypt) and are parsed once per configuration. Error messages
name the column and key id, never a key, a token or a plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MIN_BLIND_INDEX_KEY_BYTES = 32
# Dots separate the parts of a token, so a key id has none.
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class FieldCryptoError(Exception):
    """A stored value could not be encrypted or decrypted (a server fault, not bad input)."""


class DecryptionError(FieldCryptoError):
    """A token is malformed, names an unknown key, or fails authentication."""


@dataclass(frozen=True)
class _Key:
    kid: str
    # repr=False: a key object must never end up in a log line or a traceback.
    aead: AESGCM = field(repr=False)


class KeyRing:
    """The configured encryption keys. The first one encrypts; every one decrypts."""

    def __init__(self, keys: list[_Key]) -> None:
        if not keys:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
        self._keys = {k.kid: k for k in keys}
        self.primary_kid = keys[0].kid

    def __repr__(self) -> str:
        return f"KeyRing(primary={self.primary_kid!r}, kids={list(self._keys)!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """A new token for `plaintext` under the primary key, bound to `context`."""
        key = self._keys[self.primary_kid]
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), _associated_data(key.kid, context))
        return f"{VERSION}.{key.kid}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """The plaintext of `token`, if it was made for `context` by a key of this ring."""
        kid, blob = _split(token, context)
        key = self._keys.get(kid)
        if key is None:
            raise DecryptionError(f"{context}: key {kid!r} is not in FIELD_ENCRYPTION_KEYS.")
        try:
            plaintext = key.aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated_data(kid, context)
            )
            return plaintext.decode()
        except (InvalidTag, UnicodeDecodeError):
            raise DecryptionError(
                f"{context}: a value failed authentication under key {kid!r} "
                "(tampered, or copied from another column)."
            ) from None

    def kid_of(self, token: str, *, context: str) -> str:
        """The key id a token was made with (without decrypting it)."""
        return _split(token, context)[0]


def _associated_data(kid: str, context: str) -> bytes:
    return f"{VERSION}.{kid}.{context}".encode()


def _split(token: str, context: str) -> tuple[str, bytes]:
    """(kid, nonce || ciphertext) of a well-formed token; DecryptionError otherwise.

    The message never quotes the token: a value that is not a token may be plaintext.
    """
    version, _, rest = token.partition(".")
    kid, _, payload = rest.partition(".")
    if version != VERSION or not _KID.match(kid) or not payload:
        raise DecryptionError(f"{context}: the stored value is not a {VERSION} encrypted token.")
    try:
        blob = _b64decode(payload)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"{context}: the stored token is not valid base64url.") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"{context}: the stored token is truncated.")
    # One spelling per token: an edit of the unused bits of the last character is refused too.
    if _b64encode(blob) != payload:
        raise DecryptionError(f"{context}: the stored token is not in canonical form.")
    return kid, blob


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # Strict: a stray character is an error, not something to skip.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def parse_keys(entries: list[str]) -> KeyRing:
    """Build a ring from "kid:base64url(32 bytes)" entries; ImproperlyConfigured if wrong.

    Messages name the entry's position or key id, never its secret part.
    """
    keys: list[_Key] = []
    for position, entry in enumerate(entries, start=1):
        kid, sep, encoded = entry.strip().partition(":")
        if not sep or not _KID.match(kid):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry {position} must be 'kid:base64url-key' "
                "with a key id of letters, digits, '-' or '_'."
            )
        if any(k.kid == kid for k in keys):
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS has key id {kid!r} twice.")
        keys.append(_Key(kid, AESGCM(_key_bytes(kid, encoded))))
    return KeyRing(keys)


def _key_bytes(kid: str, encoded: str) -> bytes:
    try:
        raw = _b64decode(encoded.strip())
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS key {kid!r} is not base64url.") from None
    if len(raw) != KEY_BYTES:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS key {kid!r} must be {KEY_BYTES} bytes, not {len(raw)}."
        )
    return raw


@cache
def key_ring() -> KeyRing:
    """The ring from settings, parsed and validated once (until the settings change)."""
    return parse_keys(list(settings.FIELD_ENCRYPTION_KEYS))


class _BlindIndexKey:
    """The HMAC key, wrapped so that no repr or traceback can show it."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "_BlindIndexKey(<hidden>)"

    def digest(self, purpose: str, value: str) -> str:
        # A purpose-specific subkey: equal values in two columns give unrelated indexes.
        subkey = hmac.new(self._secret, f"rdv.blind-index.{purpose}".encode(), hashlib.sha256)
        return hmac.new(subkey.digest(), value.encode(), hashlib.sha256).hexdigest()


@cache
def _blind_index_key() -> _BlindIndexKey:
    secret = str(settings.BLIND_INDEX_KEY).encode()
    if len(secret) < MIN_BLIND_INDEX_KEY_BYTES:
        raise ImproperlyConfigured(
            f"BLIND_INDEX_KEY must be at least {MIN_BLIND_INDEX_KEY_BYTES} bytes of random data."
        )
    return _BlindIndexKey(secret)


def blind_index(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of `value` (64 hex characters) under a subkey for `purpose`.

    Deterministic, so equal values match; keyed, so nobody without BLIND_INDEX_KEY can
    test guesses. The caller normalises `value` first (e.g. normalise_ramq).
    """
    if not purpose:
        raise ValueError("blind_index needs a purpose")
    return _blind_index_key().digest(purpose, value)


def clear_caches() -> None:
    """Forget the parsed keys (tests, or after the settings change)."""
    key_ring.cache_clear()
    _blind_index_key.cache_clear()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"):
        clear_caches()
