"""Transport and browser security: headers, production refusals, check --deploy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "SECRET_KEY", "DEBUG", "FIELD_", "BLIND_"))
    }
    env.update(
        RDV_ENV="production",
        RDV_LOCAL_ENV="/nonexistent/local.env",  # nothing filled in from the laptop file
        SECRET_KEY=secrets.token_urlsafe(64),
        FIELD_ENCRYPTION_KEYS="k1:" + "A" * 43 + "=",
        BLIND_INDEX_KEY=secrets.token_urlsafe(48),
        DATABASE_URL="postgres://rdv@db.internal:5432/rdv",
        ALLOWED_HOSTS="rdvsante.example",
        WEBAUTHN_RP_ID="rdvsante.example",
        WEBAUTHN_ORIGIN="https://rdvsante.example",
        PAYMENT_PROVIDER="stripe",
        STRIPE_SECRET_KEY="sk_test_" + "x" * 24,
        STRIPE_WEBHOOK_SECRET="whsec_" + "x" * 32,
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="x" * 32,
        TWILIO_FROM_NUMBER="+15145550000",
        BACKUP_ENCRYPTION_KEYS="b1:" + "B" * 43 + "=",
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"SECRET_KEY": "change-me-" + "x" * 60}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DATABASE_URL": "sqlite:////tmp/prod.sqlite3"}, "PostgreSQL"),
        ({"AUDIT_ENABLED": "false"}, "audit log cannot be disabled"),
        ({"BLIND_INDEX_KEY": ""}, "BLIND_INDEX_KEY"),
        ({"TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_API_BASE": "http://api.twilio.com"}, "TWILIO_API_BASE must be an https"),
        # The console and file backends would write phone numbers into the logs or a file.
        ({"SMS_BACKEND": "console"}, "through Twilio"),
        ({"SMS_BACKEND": "file"}, "through Twilio"),
        # A backup archive and the data's own encryption never share a key.
        ({"BACKUP_ENCRYPTION_KEYS": "b1:" + "A" * 43 + "="}, "must not reuse a field-encryption"),
        # The same key written without padding, after a key that is not reused.
        (
            {"BACKUP_ENCRYPTION_KEYS": "b2:" + "B" * 43 + "=,b1:" + "A" * 43},
            "must not reuse a field-encryption",
        ),
        ({"PAYMENT_PROVIDER": "test"}, "test payment provider cannot run in production"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_API_BASE": "http://api.stripe.com"}, "STRIPE_API_BASE must be an https"),
    ],
)
def test_production_refuses_unsafe_configuration(overrides: dict[str, str], complaint: str) -> None:
    result = manage("check", env=production_env(**overrides))
    assert result.returncode != 0
    assert complaint in result.stderr


def test_production_may_run_on_sqlite_only_when_told_to() -> None:
    env = production_env(
        DATABASE_URL="sqlite:////tmp/prod.sqlite3", ALLOW_SQLITE_IN_PRODUCTION="true"
    )
    assert manage("check", env=env).returncode == 0


def test_every_page_carries_the_security_headers(db: Any) -> None:
    response = Client(HTTP_HOST="127.0.0.1").get("/")
    csp = response["Content-Security-Policy"]
    # A nonce appears only on pages that use one; without it, no inline code runs at all.
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_api_answers_with_the_same_headers(db: Any) -> None:
    response = Client(HTTP_HOST="127.0.0.1").get("/api/v1/municipalities?q=laval")
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Request-Id"]
