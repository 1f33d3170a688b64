"""The portal's week agenda: seven days, each linking to its day, live like the day view.
(Isolation between clinics is walked in tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.utils.html import strip_tags

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import UserFactory


def book(cast: Cast, user: Any, day: int, hour: int, practitioner: Any = None) -> Appointment:
    slot = make_slot(practitioner or cast.dr_roy, local(2026, 11, day, hour))
    return services.book_appointment(user=user, slot_id=slot.pk)


def week_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/agenda/semaine/"


def text_of(response: Any) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


def test_the_week_of_today_lists_each_days_appointments(cast: Cast) -> None:
    book(cast, cast.marie, 24, 9)
    book(cast, cast.paul, 27, 14, cast.nurse_diane)
    book(cast, cast.paul, 30, 9)  # next Monday: another week
    response = portal_client(cast.sophie).get(week_url(cast))
    assert response.status_code == 200
    text = text_of(response)
    assert "Monday 23 November" in text
    assert "Sunday 29 November" in text
    assert "Monday 30 November" not in text
    tuesday = text.index("Tuesday 24 November")
    friday = text.index("Friday 27 November")
    assert tuesday < text.index("09:00 Patient, Marie") < text.index("Wednesday")
    assert friday < text.index("14:00 Patient, Paul") < text.index("Saturday")
    assert "Dr Jean Roy" in text
    assert "Diane Morin" in text
    page = response.content.decode()
    assert f'href="/clinique/{cast.laval.pk}/agenda/?date=2026-11-24"' in page
    assert "data-live" in page
    assert "/static/web/portal." in page


def test_a_week_from_a_chosen_day_for_one_practitioner(cast: Cast) -> None:
    book(cast, cast.marie, 26, 9)
    book(cast, cast.paul, 26, 10, cast.nurse_diane)
    response = portal_client(cast.sophie).get(
        week_url(cast), {"date": "2026-11-26", "practitioner": str(cast.nurse_diane.pk)}
    )
    text = text_of(response)
    assert text.index("Thursday 26 November") < text.index("Wednesday 2 December")
    assert "Paul" in text
    assert "Marie" not in text
    page = response.content.decode()
    assert f"?date=2026-11-19&amp;practitioner={cast.nurse_diane.pk}" in page  # previous week
    assert f"?date=2026-12-03&amp;practitioner={cast.nurse_diane.pk}" in page  # next week


def test_bad_choices_fall_back_to_this_week_without_an_error(cast: Cast) -> None:
    book(cast, cast.marie, 24, 9)
    client = portal_client(cast.sophie)
    for params in (
        {"date": "2026-02-30"},
        {"date": "9999-12-31"},
        {"practitioner": "abc"},
        {"date": "x" * 500},
    ):
        response = client.get(week_url(cast), params)
        assert response.status_code == 200, params
        assert "Marie" in response.content.decode(), params


def test_the_week_audits_each_patient_once_per_half_hour(cast: Cast) -> None:
    first = book(cast, cast.marie, 24, 9)
    client = portal_client(cast.sophie)
    client.get(week_url(cast))
    client.get(week_url(cast), HTTP_X_LIVE_REFRESH="1")
    seen = AuditEntry.objects.filter(action="agenda.view", actor_id=cast.sophie.pk)
    assert list(seen.values_list("object_id", "patient_id", "clinic_id")) == [
        (str(first.pk), cast.marie_self.pk, cast.laval.pk)
    ]


def test_a_self_refresh_of_the_week_does_not_keep_a_staff_session_alive(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    assert "sessionid" in client.get(week_url(cast)).cookies
    assert "sessionid" not in client.get(week_url(cast), HTTP_X_LIVE_REFRESH="1").cookies


def test_a_practitioner_reads_the_week_without_changing_anything(cast: Cast) -> None:
    book(cast, cast.marie, 24, 9)
    doctor = UserFactory.create(email="roy@example.test")
    Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    response = portal_client(doctor).get(week_url(cast))
    assert response.status_code == 200
    assert "Marie" in response.content.decode()
    assert "/presence/" not in response.content.decode()


def test_day_and_week_switch_between_each_other(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    day = client.get(f"/clinique/{cast.laval.pk}/agenda/", {"date": "2026-11-25"}).content
    assert f'href="{week_url(cast)}?date=2026-11-25"'.encode() in day
    week = client.get(week_url(cast)).content.decode()
    assert f'href="/clinique/{cast.laval.pk}/agenda/?date=2026-11-23"' in week  # today
    assert '<strong aria-current="page">Week</strong>' in week


def test_the_week_in_french(cast: Cast) -> None:
    book(cast, cast.marie, 24, 9)
    text = text_of(portal_client(cast.sophie, "fr").get(week_url(cast)))
    assert "mardi 24 novembre" in text


def test_signed_out_visitors_and_patients_do_not_see_the_week(cast: Cast) -> None:
    signed_out = Client(HTTP_HOST="127.0.0.1").get(week_url(cast))
    assert signed_out.status_code == 302
    assert portal_client(cast.marie).get(week_url(cast)).status_code == 404
