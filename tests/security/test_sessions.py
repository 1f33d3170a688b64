from __future__ import annotations

from django.conf import settings
from django.test import Client

from tests.conftest import Cast


def test_staff_sessions_expire_after_thirty_idle_minutes(cast: Cast) -> None:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(cast.sophie)
    client.get("/")
    assert client.session.get_expiry_age() == 30 * 60
    assert settings.STAFF_IDLE_TIMEOUT_SECONDS == 30 * 60


def test_patient_sessions_keep_the_default_length(cast: Cast) -> None:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(cast.marie)
    client.get("/")
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
