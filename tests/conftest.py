"""The story every test tells: a few named people around two clinics.

- Marie, a patient, registered with Dr Roy at the Laval clinic; Léa, her 3-year-old child;
- Paul, another patient, with no family doctor;
- Sophie (receptionist) and Marc (clinic admin) of the Laval clinic;
- Karim, receptionist of a Montréal clinic.

The clock is frozen at Monday 2026-11-23 08:00 in Quebec unless a test says otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import django_ratelimit.core  # type: ignore[import-untyped]
import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, settings

from rdv.accounts.models import TokenScope, User
from rdv.accounts.services import issue_api_token
from rdv.accounts.tokens import create_token
from rdv.clinics.models import Clinic, Membership, Practitioner
from rdv.core import clock
from rdv.notifications.delivery import deliver_due
from rdv.patients.models import Patient
from rdv.scheduling.models import Slot
from tests.factories import (
    ClinicFactory,
    PatientFactory,
    PractitionerFactory,
    SlotFactory,
    UserFactory,
)

# Deterministic property tests: the same examples on every run and every machine.
settings.register_profile(
    "rdv", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("rdv")

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=clock.LOCAL_TZ)  # a Monday


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Quebec wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=clock.LOCAL_TZ)


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[datetime]:
    with clock.frozen_now(NOW, all_threads=True):
        yield NOW


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Argon2 is deliberately slow; the suite creates hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def rate_limits(
    request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh cache per test; limits only where a test is about them (marker).

    django-ratelimit counts in fixed windows of the real clock, so a test straddling the
    end of a window would see its count reset: where limits apply, its clock (its own
    only, the rest of the process keeps real time) stands still.
    """
    cache.clear()
    enabled = request.node.get_closest_marker("rate_limits") is not None
    settings.RATELIMIT_ENABLE = enabled
    if enabled:
        standing = float(int(time.time()))
        monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: standing))


@pytest.fixture(autouse=True)
def audit_anchors(settings: Any, tmp_path: Path) -> Path:
    """Each test anchors the audit chain in its own file, never the repository's var/."""
    path = tmp_path / "audit-anchors.log"
    settings.AUDIT_ANCHOR_PATH = str(path)
    return path


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@dataclass
class Cast:
    laval: Clinic
    montreal: Clinic
    dr_roy: Practitioner
    nurse_diane: Practitioner
    montreal_doctor: Practitioner
    marie: User
    marie_self: Patient
    lea: Patient
    paul: User
    paul_self: Patient
    sophie: User
    marc: User
    karim: User


@pytest.fixture
def cast(db: Any) -> Cast:
    laval = ClinicFactory.create(name="GMF Laval", cancellation_cutoff_hours=24)
    montreal = ClinicFactory.create(
        name="CLSC Montréal",
        municipality_geonameid=6077243,
        municipality_name="Montréal",
        latitude=45.5088,
        longitude=-73.5878,
    )
    dr_roy = PractitionerFactory.create(
        clinic=laval, first_name="Jean", last_name="Roy", languages=["fr", "en"]
    )
    nurse_diane = PractitionerFactory.create(
        clinic=laval,
        first_name="Diane",
        last_name="Morin",
        profession=Practitioner.Profession.NURSE,
        languages=["fr"],
    )
    montreal_doctor = PractitionerFactory.create(clinic=montreal, languages=["fr", "es"])
    marie = UserFactory.create(email="marie@example.test", first_name="Marie")
    marie_self = PatientFactory.create(account=marie, first_name="Marie", family_doctor=dr_roy)
    lea = PatientFactory.create(
        account=marie,
        relationship=Patient.Relationship.CHILD,
        first_name="Léa",
        date_of_birth=date(2023, 6, 1),
        family_doctor=dr_roy,
    )
    paul = UserFactory.create(email="paul@example.test", first_name="Paul")
    paul_self = PatientFactory.create(account=paul, first_name="Paul")
    sophie = UserFactory.create(email="sophie@example.test")
    marc = UserFactory.create(email="marc@example.test")
    karim = UserFactory.create(email="karim@example.test")
    Membership.objects.create(user=sophie, clinic=laval, role=Membership.Role.RECEPTIONIST)
    Membership.objects.create(user=marc, clinic=laval, role=Membership.Role.CLINIC_ADMIN)
    Membership.objects.create(user=karim, clinic=montreal, role=Membership.Role.RECEPTIONIST)
    return Cast(
        laval,
        montreal,
        dr_roy,
        nurse_diane,
        montreal_doctor,
        marie,
        marie_self,
        lea,
        paul,
        paul_self,
        sophie,
        marc,
        karim,
    )


def make_slot(practitioner: Practitioner, start: datetime, minutes: int = 30, **extra: Any) -> Slot:
    slot: Slot = SlotFactory.create(
        practitioner=practitioner, start=start, end=start + timedelta(minutes=minutes), **extra
    )
    return slot


def signed_in_token(user: User) -> str:
    """A full API token. Staff must pass a second factor to get one: that path is tested in
    tests/accounts; elsewhere staff are simply "signed in with both factors"."""
    if user.is_staff or user.memberships.exists():
        return create_token(user=user, scope=TokenScope.API, lifetime=timedelta(hours=8))
    return issue_api_token(email=user.email, password=PASSWORD)


class Api:
    """A JSON client for /api/v1 with a language and, optionally, a signed-in user."""

    def __init__(self, user: User | None = None, language: str = "fr") -> None:
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.headers: dict[str, str] = {"HTTP_ACCEPT_LANGUAGE": language}
        if user is not None:
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {signed_in_token(user)}"

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, **self.headers)  # type: ignore[arg-type]

    def post(self, path: str, body: dict[str, Any] | None = None, raw: str | None = None) -> Any:
        payload = raw if raw is not None else json.dumps(body or {})
        return self.client.post(
            f"/api/v1{path}",
            payload,
            content_type="application/json",
            **self.headers,  # type: ignore[arg-type]
        )


@pytest.fixture
def api_as() -> Any:
    return Api


def sent_mail() -> list[mail.EmailMessage]:
    """Django's test mailbox once the worker has sent what is due: account emails (codes,
    reset links) go through the outbox like every message, never from the request."""
    deliver_due()
    return mail.outbox


def portal_client(user: User, language: str = "en") -> Client:
    """A browser signed in as clinic staff with both factors (the sign-in itself, code
    included, is tested in tests/accounts and tests/e2e)."""
    from rdv.web.portal import SECOND_FACTOR_KEY  # noqa: PLC0415 (web views load late)

    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    session = client.session
    session[SECOND_FACTOR_KEY] = True
    session.save()
    return client
