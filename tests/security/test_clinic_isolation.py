"""Clinic isolation (DESIGN.md invariant 6), checked by walking every route.

Signed in as staff of clinic A, every staff route is requested with clinic B's ids:
each answer must be 404 with no byte of B's data. The routes come from the OpenAPI
schema and Django's URL resolver, so a new staff route is walked automatically, and a new
page that is not classified below fails the test until someone decides what it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, time
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from rdv.api.api import api
from rdv.clinics.models import Clinic, Membership, StaffInvitation
from rdv.clinics.queries import staff_context
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Closure
from rdv.walkin import services as walkin
from rdv.walkin.models import WalkIn
from tests.conftest import Api, Cast, local, make_slot, portal_client
from tests.factories import RuleFactory

STAFF_API = "/api/v1/clinics/{clinic_id}"
# Django routes that are not staff routes, by the start of their path: the API (walked
# through its schema above), the platform admin, and the patients' and public pages.
NOT_STAFF = (
    "api/v1/",
    "chercheur/",  # the finder: a patient's own requests (tests/web/test_finder_pages.py)
    "gestion-plateforme/",
    "static/",
    "compte/",
    "confidentialite/",
    "creneaux/",
    "desabonnement/",
    "feuille-du-jour/",  # the evening email's signed link: tests/clinics/test_evening_sheet.py
    "healthz",  # process up, no data: tests/core/test_health.py
    "invitation-equipe/",  # a staff invitation's link: its invitee is not a member yet
    "langue/",
    "mes-rendez-vous/",
    "metrics",
    "r/",
    "readyz",  # ok/failed per check, no data: tests/core/test_health.py
    "rendez-vous/",
    "visite-familiale/",
    "webhooks/",
)
# What a staff POST sends besides the ids in its path, by the path's last part.
BODIES: dict[str, dict[str, Any]] = {
    "cancel": {"reason": "Le médecin est absent"},
    "attendance": {"status": "arrived"},
}


def staff_operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in api.get_openapi_schema()["paths"].items():
        if path.startswith(STAFF_API):
            for method, operation in item.items():
                yield path, method, operation


def django_routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from django_routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route


def a_walk_in(user: Any, clinic_id: int, first_name: str) -> WalkIn:
    """A walk-in in a wave of the clinic on 2026-11-25 at 09:00 (opened by this staff member)."""
    ctx = staff_context(user, clinic_id)
    (wave,) = walkin.open_waves(
        ctx, day=date(2026, 11, 25), first_start=time(9), last_start=time(9), capacity=4
    )
    return walkin.add_walk_in(ctx, wave.pk, first_name=first_name, last_name="Walk-in")


def a_closure(clinic: Clinic, reason: str) -> int:
    """A whole-clinic closure on Friday 2026-11-27."""
    return Closure.objects.create(
        clinic=clinic, starts_at=local(2026, 11, 27), ends_at=local(2026, 11, 28), reason=reason
    ).pk


def an_invitation(clinic: Clinic, email: str) -> int:
    """An open invitation to the clinic's staff (its link's secret is never needed here)."""
    return StaffInvitation.objects.create(
        clinic=clinic,
        email=email,
        role="receptionist",
        token_hash=email.encode().hex()[:64].ljust(64, "0"),
        created_at=local(2026, 11, 23, 8, 0),
        expires_at=local(2026, 11, 30, 8, 0),
    ).pk


@pytest.fixture
def two_clinics(cast: Cast) -> dict[str, Any]:
    """Each clinic has a booked appointment; B's has data that must never leak to A."""
    a_slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    b_slot = make_slot(cast.montreal_doctor, local(2026, 11, 25, 9, 0))
    a_appointment = services.book_appointment(user=cast.marie, slot_id=a_slot.pk, reason="toux")
    b_appointment = services.book_appointment(
        user=cast.paul, slot_id=b_slot.pk, reason="secret-of-b"
    )
    a_walker = a_walk_in(cast.sophie, cast.laval.pk, "Marie")
    b_walker = a_walk_in(cast.karim, cast.montreal.pk, "Paul")
    return {
        "a": {
            "clinic_id": cast.laval.pk,
            "appointment_id": a_appointment.pk,
            "patient_id": cast.marie_self.pk,
            "practitioner_id": cast.dr_roy.pk,
            "slot_id": a_slot.pk,
            "wave_id": a_walker.wave_id,
            "walk_in_id": a_walker.pk,
            "rule_id": RuleFactory.create(practitioner=cast.dr_roy).pk,
            "closure_id": a_closure(cast.laval, "Formation"),
            # Marc's own: his role change or removal meets "the last administrator" (409).
            "membership_id": Membership.objects.get(user=cast.marc).pk,
            "invitation_id": an_invitation(cast.laval, "invitee-a@example.test"),
            "date": "2026-11-25",
        },
        "b": {
            "clinic_id": cast.montreal.pk,
            "appointment_id": b_appointment.pk,
            "patient_id": cast.paul_self.pk,
            "practitioner_id": cast.montreal_doctor.pk,
            "slot_id": b_slot.pk,
            "wave_id": b_walker.wave_id,
            "walk_in_id": b_walker.pk,
            "rule_id": RuleFactory.create(practitioner=cast.montreal_doctor).pk,
            "closure_id": a_closure(cast.montreal, "secret-of-b"),
            "membership_id": Membership.objects.get(user=cast.karim).pk,
            "invitation_id": an_invitation(cast.montreal, "secret-of-b@example.test"),
            "date": "2026-11-25",
        },
        "b_secrets": ["secret-of-b", cast.montreal.name, "Paul", cast.montreal_doctor.last_name],
    }


def request(
    client: Api, path: str, method: str, operation: dict[str, Any], ids: dict[str, Any]
) -> Any:
    names = re.findall(r"{(\w+)}", path)
    unknown = [n for n in names if n not in ids]
    assert not unknown, f"{path}: teach the isolation walk what {unknown} are"
    url = path.removeprefix("/api/v1").format(**{n: ids[n] for n in names})
    query = {
        p["name"]: ids[p["name"]]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required") and p["name"] in ids
    }
    if method == "get":
        return client.get(url, **query)
    body = BODIES.get(path.rsplit("/", 1)[-1])
    assert body is not None, f"{path}: teach the isolation walk what this POST sends"
    return client.post(url, body)


def test_the_walk_finds_the_staff_routes() -> None:
    assert len(list(staff_operations())) >= 4


def test_staff_of_a_get_404_and_nothing_of_b_on_every_staff_route(
    cast: Cast, two_clinics: dict[str, Any]
) -> None:
    sophie = Api(cast.sophie, language="en")
    a, b = two_clinics["a"], two_clinics["b"]
    for path, method, operation in staff_operations():
        # B's clinic altogether, then A's clinic with B's objects inside it.
        for ids in (b, {**b, "clinic_id": a["clinic_id"]}):
            if ids["clinic_id"] == a["clinic_id"] and "{" not in path.removeprefix(STAFF_API):
                continue  # a route about the clinic itself: A's own data, not B's
            response = request(sophie, path, method, operation, ids)
            assert response.status_code == 404, (path, ids, response.content)
            for secret in two_clinics["b_secrets"]:
                assert secret.encode() not in response.content, (path, secret)
    b_appointment = Appointment.objects.get(pk=b["appointment_id"])
    assert (b_appointment.status, b_appointment.cancelled_at) == ("booked", None)


def test_staff_of_a_reach_their_own_clinic_on_every_staff_route(
    cast: Cast, two_clinics: dict[str, Any]
) -> None:
    """The positive control: the walk is not passing because the routes are broken. A
    change may meet a rule of A's own appointment (409: checking in two days early, or
    after the walk cancelled it), which proves the route reached it."""
    sophie = Api(cast.sophie)
    for path, method, operation in staff_operations():
        response = request(sophie, path, method, operation, two_clinics["a"])
        expected = (200,) if method == "get" else (200, 409)
        assert response.status_code in expected, (path, response.content)


def test_patients_cannot_use_staff_routes(cast: Cast, two_clinics: dict[str, Any]) -> None:
    marie = Api(cast.marie)
    for path, method, operation in staff_operations():
        assert request(marie, path, method, operation, two_clinics["a"]).status_code == 404


PORTAL = "clinique/<int:clinic_id>/"
# The search page, and the portal's clinic picker (it lists the user's own memberships).
NOT_STAFF_PAGES = ("", "clinique/")
# What a portal form posts, whatever the page (each view reads only its own fields).
PORTAL_POST = {
    "status": "arrived",
    "reason": "Le médecin est absent",
    # Walk-ins: open waves, add a person, mark one called.
    "date": "2026-11-25",
    "first_start": "10:00",
    "last_start": "10:00",
    "minutes": "30",
    "capacity": "4",
    "first_name": "Ana",
    "last_name": "Walk-in",
    "walk_in_status": "called",
    # Weekly times: Wednesdays 13:00-15:00 (the fixture's rule is another day).
    "weekday": "2",
    "start_time": "13:00",
    "end_time": "15:00",
    "slot_minutes": "30",
    "appointment_type": "periodic",
    "visibility": "public",
    "valid_from": "2026-11-23",
    # Closures: the whole clinic for one day, and Quebec's statutory holidays of a year.
    "practitioner": "",
    "first_day": "2026-11-25",
    "last_day": "2026-11-25",
    "year": "2026",
    # Staff: invite someone, change a member's role.
    "email": "nouvelle@example.test",
    "role": "receptionist",
}


def portal_routes() -> list[str]:
    return [r for r in django_routes() if r.startswith(PORTAL)]


def portal_request(client: Client, route: str, ids: dict[str, Any]) -> Any:
    names = re.findall(r"<int:(\w+)>", route)
    unknown = [n for n in names if n not in ids]
    assert not unknown, f"{route}: teach the isolation walk what {unknown} are"
    path = "/" + re.sub(r"<int:(\w+)>", lambda m: str(ids[m.group(1)]), route)
    response = client.get(path, {"date": ids["date"]})
    if response.status_code == 405:
        response = client.post(path, PORTAL_POST)
    return response


def test_the_portal_walk_finds_the_portal_pages() -> None:
    assert len(portal_routes()) >= 4


@pytest.mark.parametrize("who", ["sophie", "marc"], ids=["receptionist", "clinic_admin"])
def test_staff_of_a_get_404_and_nothing_of_b_on_every_portal_page(
    cast: Cast, two_clinics: dict[str, Any], who: str
) -> None:
    client = portal_client(getattr(cast, who))
    a, b = two_clinics["a"], two_clinics["b"]
    for route in portal_routes():
        for ids in (b, {**b, "clinic_id": a["clinic_id"]}):
            if ids["clinic_id"] == a["clinic_id"] and "<" not in route.removeprefix(PORTAL):
                continue  # a page about the clinic itself: A's own
            response = portal_request(client, route, ids)
            assert response.status_code == 404, (route, ids, response.status_code)
            for secret in two_clinics["b_secrets"]:
                assert secret.encode() not in response.content, (route, secret)
    b_appointment = Appointment.objects.get(pk=b["appointment_id"])
    assert (b_appointment.status, b_appointment.cancelled_at) == ("booked", None)


def test_staff_of_a_reach_their_own_clinic_on_every_portal_page(
    cast: Cast, two_clinics: dict[str, Any]
) -> None:
    """The positive control, as A's administrator (every page is theirs): 200, a redirect
    after a change, or a rule of A's own data."""
    client = portal_client(cast.marc)
    # Removals last: the routes about a removed object (a weekly time's release) still
    # find it.
    for route in sorted(portal_routes(), key=lambda r: r.endswith("/retirer/")):
        response = portal_request(client, route, two_clinics["a"])
        assert response.status_code in (200, 302, 409), (route, response.status_code)


def test_patients_have_no_portal(cast: Cast, two_clinics: dict[str, Any]) -> None:
    client = portal_client(cast.marie)  # even a session with a second factor
    assert client.get("/clinique/").status_code == 404
    for route in portal_routes():
        assert portal_request(client, route, two_clinics["a"]).status_code == 404, route


def test_every_django_route_is_classified() -> None:
    unclassified = [
        r
        for r in django_routes()
        if not r.startswith(NOT_STAFF) and not r.startswith(PORTAL) and r not in NOT_STAFF_PAGES
    ]
    assert unclassified == [], "classify these routes: staff routes must join the walk"


def test_staff_reads_of_patient_data_are_audited(cast: Cast, two_clinics: dict[str, Any]) -> None:
    from rdv.audit.models import AuditEntry  # noqa: PLC0415

    sophie = Api(cast.sophie)
    a = two_clinics["a"]
    sophie.get(f"/clinics/{a['clinic_id']}/appointments/{a['appointment_id']}")
    sophie.get(f"/clinics/{a['clinic_id']}/agenda", date=a["date"])
    views = AuditEntry.objects.filter(
        actor_id=cast.sophie.pk, action__endswith=".view"
    ).values_list("action", "actor_role", "patient_id", "clinic_id")
    assert list(views) == [
        ("appointment.view", "receptionist", cast.marie_self.pk, cast.laval.pk),
        ("agenda.view", "receptionist", cast.marie_self.pk, cast.laval.pk),
    ]
    seen_by_marie = Api(cast.marie).get("/me/access-log").json()
    assert {e["staff_role"] for e in seen_by_marie} == {"receptionist"}
    assert Appointment.objects.count() == 2
