"""What a person's phone and security key do, done in the test.

`totp_code` is the authenticator app (RFC 6238 at the project's frozen clock).
`SoftAuthenticator` is a platform authenticator holding one ES256 passkey: it builds the
WebAuthn structures a browser would return (W3C WebAuthn Level 2, §6.1 authenticator
data, §6.5.1 attested credential data, §8.7 "none" attestation, §5.8.1 client data),
with no library of our own code in between.

authenticatorData = SHA-256(rpId) ‖ flags (1 byte) ‖ signCount (4 bytes, big-endian)
                    [‖ AAGUID (16) ‖ credentialId length (2) ‖ credentialId ‖ COSE key]
signature         = ECDSA-P256-SHA256(authenticatorData ‖ SHA-256(clientDataJSON)), DER
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import User
from rdv.core import clock

# Authenticator data flags.
USER_PRESENT = 0x01
USER_VERIFIED = 0x04
ATTESTED_DATA = 0x40


def totp_code(device: TOTPDevice, *, steps: int = 0) -> str:
    """The device's code at the current (frozen) time, or `steps` steps away."""
    step = (int(clock.now().timestamp()) - device.t0) // device.step + steps
    return f"{hotp(device.bin_key, step, digits=device.digits):0{device.digits}d}"


def enrol(user: User) -> TOTPDevice:
    """A confirmed authenticator, as the demo seeding gives staff."""
    return provision_confirmed_totp(user)


class SoftAuthenticator:
    """One discoverable ES256 credential, with user verification (like a phone's)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.user_handle = b""

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # COSE_Key (RFC 9053): kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def authenticator_data(self, *, rp_id: str, flags: int, attested: bool) -> bytes:
        data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + self.sign_count.to_bytes(4, "big")
        )
        if attested:
            data += (
                bytes(16)  # AAGUID: all zero for a "none" attestation
                + len(self.credential_id).to_bytes(2, "big")
                + self.credential_id
                + self.cose_public_key()
            )
        return data

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
    ) -> dict[str, Any]:
        """navigator.credentials.create(), as the JSON a browser library posts back."""
        self.user_handle = base64url_to_bytes(options["user"]["id"])
        client_data = self.client_data(
            "webauthn.create", options["challenge"], origin or settings.WEBAUTHN_ORIGIN
        )
        flags = USER_PRESENT | ATTESTED_DATA | (USER_VERIFIED if user_verified else 0)
        auth_data = self.authenticator_data(
            rp_id=rp_id or options["rp"]["id"], flags=flags, attested=True
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        raw_id = bytes_to_base64url(self.credential_id)
        return {
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "attestationObject": bytes_to_base64url(attestation),
                "transports": ["internal", "hybrid"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        tamper: bool = False,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): a signed assertion (the counter moves on)."""
        self.sign_count += 1
        client_data = self.client_data(
            "webauthn.get", options["challenge"], origin or settings.WEBAUTHN_ORIGIN
        )
        flags = USER_PRESENT | (USER_VERIFIED if user_verified else 0)
        auth_data = self.authenticator_data(
            rp_id=rp_id or options["rpId"], flags=flags, attested=False
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        if tamper:
            # A valid signature, but over other data: what a forged or altered answer gives.
            signature = self.key.sign(signed + b"x", ec.ECDSA(hashes.SHA256()))
        raw_id = bytes_to_base64url(self.credential_id)
        return {
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
                "userHandle": bytes_to_base64url(self.user_handle),
            },
        }
