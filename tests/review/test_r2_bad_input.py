"""Review R2: odd query strings and form values on the week, my-day, registered-patients,
move, statistics and release-time pages answer a page (never a 500) and write nothing."""

from __future__ import annotations

import pytest

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, AvailabilityRule, Visibility
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import UserFactory

ODD = ["0001-01-01", "9999-12-31", "-1", "9" * 30, "abc", "2026-02-30", "\x00", "é"]


@pytest.fixture
def setup(cast: Cast) -> tuple[Appointment, AvailabilityRule]:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    booked = services.book_appointment(user=cast.marie, slot_id=slot.pk, reason="")
    rule = AvailabilityRule.objects.create(
        practitioner=cast.dr_roy,
        weekday=2,
        start_time="13:00",
        end_time="14:00",
        slot_minutes=30,
        appointment_type=slot.appointment_type,
        visibility=Visibility.REGISTERED,
        valid_from=local(2026, 11, 23).date(),
    )
    return booked, rule


def test_odd_query_strings_never_give_a_server_error(
    cast: Cast, setup: tuple[Appointment, AvailabilityRule]
) -> None:
    booked, _rule = setup
    doctor = UserFactory.create()
    Membership.objects.create(
        user=doctor,
        clinic=cast.laval,
        role=Membership.Role.PRACTITIONER,
        practitioner=cast.dr_roy,
    )
    base = f"/clinique/{cast.laval.pk}"
    pages = [
        "/agenda/semaine/",
        "/ma-journee/",
        "/mes-patients/",
        f"/praticiens/{cast.dr_roy.pk}/patients/",
        f"/rendez-vous/{booked.pk}/deplacer/",
        "/statistiques/",
        "/statistiques.csv",
    ]
    failures = []
    for user in (cast.marc, doctor):
        client = portal_client(user)
        for page in pages:
            for value in ODD:
                for query in (
                    {"date": value, "practitioner": value, "page": value},
                    {"from": value, "to": value},
                    {"from": "2026-11-01", "to": value},
                ):
                    status = client.get(base + page, query).status_code
                    if status >= 500 or status not in (200, 403, 422):
                        failures.append((user.email, page, query, status))
    assert failures == []


def test_odd_posted_values_are_refused_without_a_write(
    cast: Cast, setup: tuple[Appointment, AvailabilityRule]
) -> None:
    booked, rule = setup
    client = portal_client(cast.marc)
    base = f"/clinique/{cast.laval.pk}"
    posts = [
        (f"/rendez-vous/{booked.pk}/deplacer/", "slot_id"),
        (f"/praticiens/{cast.dr_roy.pk}/patients/inscrire/", "patient"),
        (f"/praticiens/{cast.dr_roy.pk}/horaires/{rule.pk}/ouverture/", "release_hours"),
    ]
    entries = AuditEntry.objects.exclude(action__endswith=".view").count()
    failures = []
    for page, field in posts:
        for value in [*ODD, "0", "337", "2147483648", "1e3"]:
            status = client.post(base + page, {field: value}).status_code
            if status >= 500:
                failures.append((page, value, status))
    assert failures == []
    booked.refresh_from_db()
    rule.refresh_from_db()
    assert (booked.status, booked.slot.start) == ("booked", local(2026, 11, 25, 10, 0))
    assert rule.release_hours is None
    assert AuditEntry.objects.exclude(action__endswith=".view").count() == entries
