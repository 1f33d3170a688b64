"""The API's authenticator confirmation is limited like the web page's: each try is a code
guess, counted under the sign-in limit, per IP and per account."""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.helpers import totp_code
from tests.conftest import Api, Cast

pytestmark = pytest.mark.rate_limits


@pytest.fixture
def tight(settings: Any) -> None:
    settings.RATE_LIMITS = {"signin": "3/m"}


def test_confirming_beyond_the_limit_is_429_and_confirms_nothing(cast: Cast, tight: None) -> None:
    marie = Api(cast.marie, language="en")
    begun = marie.post("/mfa/totp/begin", {})
    assert begun.status_code == 200
    device = TOTPDevice.objects.get(pk=begun.json()["device_id"])
    wrong = [marie.post("/mfa/totp/confirm", {"code": "12345"}).status_code for _ in range(3)]
    assert wrong == [422, 422, 422]

    # Even the right code is refused now: the guesses ran out.
    refused = marie.post("/mfa/totp/confirm", {"code": totp_code(device)})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    device.refresh_from_db()
    assert not device.confirmed


def test_the_account_is_limited_across_ips(cast: Cast, tight: None) -> None:
    marie = Api(cast.marie)
    marie.post("/mfa/totp/begin", {})
    answers = []
    for i in range(4):
        marie.headers["REMOTE_ADDR"] = f"203.0.113.{i + 1}"  # a bot rotating addresses
        answers.append(marie.post("/mfa/totp/confirm", {"code": "12345"}).status_code)
    assert answers == [422, 422, 422, 429]
