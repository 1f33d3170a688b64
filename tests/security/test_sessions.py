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


def test_the_admin_site_requires_a_second_factor(cast: Cast) -> None:
    from rdv.accounts.mfa import provision_confirmed_totp  # noqa: PLC0415

    cast.marc.is_staff = True
    cast.marc.is_superuser = True
    cast.marc.save()
    provision_confirmed_totp(cast.marc)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(cast.marc)  # password checked, no second factor yet
    response = client.get("/gestion-plateforme/")
    assert response.status_code == 302
    assert "/gestion-plateforme/login/" in response["Location"]
    login_page = client.get("/gestion-plateforme/login/")
    assert b'name="otp_token"' in login_page.content


def test_a_platform_admin_signs_in_to_the_admin_with_a_code(cast: Cast) -> None:
    from django_otp.oath import totp  # noqa: PLC0415

    from rdv.accounts.mfa import provision_confirmed_totp  # noqa: PLC0415

    cast.marc.is_staff = True
    cast.marc.is_superuser = True
    cast.marc.save()
    device = provision_confirmed_totp(cast.marc)
    client = Client(HTTP_HOST="127.0.0.1")
    wrong = client.post(
        "/gestion-plateforme/login/",
        {"username": cast.marc.email, "password": "correct horse battery", "otp_token": "000000"},
    )
    assert wrong.status_code == 200  # the form again, not the admin
    right = client.post(
        "/gestion-plateforme/login/",
        {
            "username": cast.marc.email,
            "password": "correct horse battery",
            "otp_device": device.persistent_id,
            "otp_token": f"{totp(device.bin_key):06d}",
        },
    )
    assert right.status_code == 302
    assert client.get("/gestion-plateforme/").status_code == 200
