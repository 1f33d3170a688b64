"""Demo staff can sign in with an authenticator app from day one."""

from __future__ import annotations

import json
from base64 import b32decode
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from django_otp.oath import hotp

from rdv.accounts.services import issue_api_token
from rdv.core import clock, demo

STAFF = ("receptionist", "clinic_admin", "other_clinic_staff", "platform_admin")


def app_code(base32_secret: str) -> str:
    """What an authenticator app shows now (the frozen now), from the secret alone."""
    step = int(clock.now().timestamp()) // 30
    return f"{hotp(b32decode(base32_secret), step, digits=6):06d}"


def test_every_demo_staff_account_gets_an_authenticator_secret(db: None, tmp_path: Path) -> None:
    path = tmp_path / "demo-credentials.json"
    demo.seed(path, clinic_count=12, municipality_count=4, days=1)
    credentials = json.loads(path.read_text())

    assert "totp_secret" not in credentials["patient"]
    for key in STAFF:
        account = credentials[key]
        assert {"email", "password", "totp_secret", "otpauth_uri"} <= set(account)
        assert parse_qs(urlparse(account["otpauth_uri"]).query)["secret"] == [
            account["totp_secret"]
        ]
        token = issue_api_token(
            email=account["email"],
            password=account["password"],
            otp=app_code(account["totp_secret"]),
        )
        assert token.startswith("rdv_")
