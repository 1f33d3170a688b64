"""Abuse limits answer 429 with Retry-After, per IP and per account, on local or Redis."""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.test import override_settings

from tests.conftest import Api, Cast, local, make_slot

pytestmark = pytest.mark.rate_limits
REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def tight(settings: Any) -> None:
    settings.RATE_LIMITS = {"search": "3/m", "book": "2/m", "hold": "2/m"}


def test_search_beyond_the_limit_is_429_with_retry_after(cast: Cast, tight: None) -> None:
    api = Api(language="en")
    assert [api.get("/availability", near="Laval").status_code for _ in range(3)] == [200] * 3
    refused = api.get("/availability", near="Laval")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"] == {
        "code": "rate_limited",
        "message": "Too many requests. Please wait a moment and try again.",
        "fields": {},
    }
    french = Api(language="fr").get("/availability", near="Laval").json()["error"]["message"]
    assert french.startswith("Trop de requêtes")


def test_another_ip_has_its_own_count(cast: Cast, tight: None) -> None:
    api = Api()
    for _ in range(3):
        api.get("/availability", near="Laval")
    assert api.get("/availability", near="Laval").status_code == 429
    api.headers["REMOTE_ADDR"] = "203.0.113.9"
    assert api.get("/availability", near="Laval").status_code == 200


def test_one_account_is_limited_across_ips(cast: Cast, tight: None) -> None:
    slots = [make_slot(cast.dr_roy, local(2026, 11, 25, 9 + i, 0)) for i in range(3)]
    marie = Api(cast.marie)
    answers = []
    for i, slot in enumerate(slots):
        marie.headers["REMOTE_ADDR"] = f"203.0.113.{i + 1}"  # a bot rotating addresses
        answers.append(marie.post(f"/slots/{slot.pk}/hold").status_code)
    assert answers == [200, 200, 429]


def redis_cache(location: str) -> dict[str, dict[str, str]]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}
    }


def test_limits_work_with_redis(cast: Cast, tight: None) -> None:
    with override_settings(CACHES=redis_cache(REDIS_TEST_URL)):
        shared = caches["default"]
        shared.clear()
        try:
            api = Api()
            statuses = [api.get("/availability", near="Laval").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            # The counters are in Redis, where every app server sees them.
            client = redis.Redis.from_url(REDIS_TEST_URL)
            assert any(b":rl:" in key for key in client.keys("*"))
        finally:
            shared.clear()


def test_an_unreachable_cache_fails_open(cast: Cast, tight: None) -> None:
    with override_settings(CACHES=redis_cache("redis://127.0.0.1:1/0")):
        with pytest.raises(redis.exceptions.ConnectionError):
            caches["default"].get("x")
        assert Api().get("/availability", near="Laval").status_code == 200


def test_sign_in_is_limited_per_email_across_ips(cast: Cast, settings: Any) -> None:
    settings.RATE_LIMITS = {"token": "2/m"}
    answers = []
    for i in range(3):
        api = Api(language="en")
        api.headers["REMOTE_ADDR"] = f"198.51.100.{i + 1}"
        answers.append(
            api.post("/auth/token", {"email": "MARIE@example.test ", "password": "nope"})
        )
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[2]["Retry-After"]
