"""The clinic administrator's closures and settings: Marc closes a day for the whole clinic
or for Dr Roy, closes on Quebec's statutory holidays, and sets the reminder days; the
slots and the reminders follow. Sophie, a receptionist, may not; Montréal's staff find
nothing. (Another clinic's ids are walked in tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.clinics import services as clinics
from rdv.clinics.models import Clinic, Practitioner
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied, ValidationError
from rdv.notifications.models import Kind, Message
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Closure, Slot
from tests.conftest import Cast, local, portal_client

WEDNESDAY = 2
CLOSED_DAY = date(2026, 11, 25)  # the Wednesday after NOW (Monday 23 November 2026)
NEXT_WEEK = date(2026, 12, 2)


@pytest.fixture(autouse=True)
def horizon(settings: Any) -> None:
    settings.SLOT_HORIZON_DAYS = 60


@pytest.fixture
def wednesdays(cast: Cast) -> None:
    """Dr Roy and Diane Morin see patients on Wednesdays 13:00–15:00 (30 min) for two
    weeks: four slots each on 25 November and on 2 December."""
    ctx = staff_context(cast.marc, cast.laval.pk)
    for practitioner in (cast.dr_roy, cast.nurse_diane):
        services.add_weekly_rule(
            ctx,
            practitioner.pk,
            weekday=WEDNESDAY,
            start_time=time(13),
            end_time=time(15),
            slot_minutes=30,
            appointment_type="periodic",
            visibility="public",
            valid_from=date(2026, 11, 23),
            valid_until=date(2026, 12, 6),
        )


def staff(user: Any, language: str = "en") -> Client:
    return portal_client(user, language)


def closures_url(clinic: Clinic) -> str:
    return f"/clinique/{clinic.pk}/fermetures/"


def add_url(clinic: Clinic) -> str:
    return f"{closures_url(clinic)}ajouter/"


def holidays_url(clinic: Clinic) -> str:
    return f"{closures_url(clinic)}feries/"


def remove_url(clinic: Clinic, closure: Closure) -> str:
    return f"{closures_url(clinic)}{closure.pk}/retirer/"


def settings_url(clinic: Clinic) -> str:
    return f"/clinique/{clinic.pk}/parametres/"


def close(practitioner: Practitioner | None = None, **change: str) -> dict[str, str]:
    return {
        "practitioner": str(practitioner.pk) if practitioner else "",
        "first_day": CLOSED_DAY.isoformat(),
        "last_day": CLOSED_DAY.isoformat(),
        "reason": "Formation",
        **change,
    }


def free_on(practitioner: Practitioner, day: date) -> int:
    start, end = clock.local_day_bounds(day, day)
    return Slot.objects.filter(
        practitioner=practitioner, status="free", start__gte=start, start__lt=end
    ).count()


def closed_days(clinic: Clinic) -> dict[date, str]:
    return {
        c.starts_at.astimezone(clock.LOCAL_TZ).date(): c.reason
        for c in Closure.objects.filter(clinic=clinic, practitioner=None)
    }


def test_a_whole_clinic_closure_withdraws_every_free_slot_and_keeps_a_booked_one(
    cast: Cast, wednesdays: None
) -> None:
    taken = Slot.objects.filter(practitioner=cast.dr_roy).earliest("start")
    appointment = services.book_appointment(user=cast.paul, slot_id=taken.pk)
    client = staff(cast.marc)

    response = client.post(add_url(cast.laval), close())
    assert response.status_code == 302
    assert response["Location"] == closures_url(cast.laval)
    closure = Closure.objects.get(clinic=cast.laval)
    assert (closure.practitioner, closure.reason) == (None, "Formation")
    assert (closure.starts_at, closure.ends_at) == (local(2026, 11, 25), local(2026, 11, 26))
    assert (free_on(cast.dr_roy, CLOSED_DAY), free_on(cast.nurse_diane, CLOSED_DAY)) == (0, 0)
    assert (free_on(cast.dr_roy, NEXT_WEEK), free_on(cast.nurse_diane, NEXT_WEEK)) == (4, 4)
    taken.refresh_from_db()
    appointment.refresh_from_db()
    assert (taken.status, appointment.status) == ("booked", "booked")

    page = client.get(response["Location"]).content.decode()
    assert "1 appointment remains booked during it" in page
    assert "Formation" in page
    assert "The whole clinic" in page


def test_a_practitioner_closure_withdraws_only_theirs_and_removing_it_brings_them_back(
    cast: Cast, wednesdays: None
) -> None:
    client = staff(cast.marc)
    response = client.post(add_url(cast.laval), close(cast.dr_roy))
    assert response.status_code == 302
    assert "no time is offered during it" in client.get(response["Location"]).content.decode()
    closure = Closure.objects.get(practitioner=cast.dr_roy)
    assert (free_on(cast.dr_roy, CLOSED_DAY), free_on(cast.nurse_diane, CLOSED_DAY)) == (0, 4)
    assert free_on(cast.dr_roy, NEXT_WEEK) == 4

    removed = client.post(remove_url(cast.laval, closure))
    assert removed.status_code == 302
    assert not Closure.objects.exists()
    assert free_on(cast.dr_roy, CLOSED_DAY) == 4
    assert "offered again" in client.get(removed["Location"]).content.decode()
    assert client.post(remove_url(cast.laval, closure)).status_code == 404


def test_the_statutory_holidays_still_ahead_are_closed_once(cast: Cast) -> None:
    client = staff(cast.marc, "fr")
    assert client.post(holidays_url(cast.laval), {"year": "2026"}).status_code == 302
    # Christmas (a Friday) is the only Quebec statutory holiday left after 23 November.
    assert closed_days(cast.laval) == {date(2026, 12, 25): "Jour de Noël"}

    assert client.post(holidays_url(cast.laval), {"year": "2027"}).status_code == 302
    days = closed_days(cast.laval)
    assert days[date(2027, 6, 24)] == "Fête nationale du Québec"
    assert days[date(2027, 7, 1)] == "Fête du Canada"
    assert {date(2027, 1, 1), date(2027, 3, 26), date(2027, 5, 24), date(2027, 12, 25)} <= set(days)
    assert date(2027, 11, 11) not in days  # Remembrance Day is not a holiday in Quebec
    count = Closure.objects.count()

    again = client.post(holidays_url(cast.laval), {"year": "2027"})
    assert again.status_code == 302
    assert Closure.objects.count() == count
    assert "2027" in client.get(again["Location"]).content.decode()
    for closure in Closure.objects.all():
        assert closure.ends_at - closure.starts_at == local(2027, 1, 2) - local(2027, 1, 1)


def test_statutory_holidays_are_named_in_english_for_an_english_page(cast: Cast) -> None:
    staff(cast.marc, "en").post(holidays_url(cast.laval), {"year": "2026"})
    assert closed_days(cast.laval) == {date(2026, 12, 25): "Christmas Day"}


def test_a_statutory_holiday_on_a_closed_day_is_skipped(cast: Cast) -> None:
    client = staff(cast.marc)
    client.post(
        add_url(cast.laval), close(first_day="2026-12-24", last_day="2027-01-04", reason="Fêtes")
    )
    assert client.post(holidays_url(cast.laval), {"year": "2026"}).status_code == 302
    assert list(Closure.objects.values_list("reason", flat=True)) == ["Fêtes"]


def test_bad_closures_are_refused_in_french_and_in_english(cast: Cast) -> None:
    backwards = close(first_day="2026-11-27", last_day="2026-11-25")
    for language, message in (
        ("fr", "Le dernier jour ne peut pas précéder le premier."),
        ("en", "The last day cannot be before the first day."),
    ):
        response = staff(cast.marc, language).post(add_url(cast.laval), backwards)
        assert response.status_code == 422
        assert message in response.content.decode()
    client = staff(cast.marc)
    for change, message in (
        ({"first_day": "2026-11-01", "last_day": "2026-11-20"}, "entirely in the past"),
        ({"last_day": "2028-01-01"}, "within a year of today"),
        ({"last_day": "25/11/2026"}, "Enter a valid date"),
        ({"reason": "x" * 201}, "at most 200 characters"),
        ({"practitioner": str(999_999)}, "Select a valid choice"),
    ):
        response = client.post(add_url(cast.laval), {**close(), **change})
        assert response.status_code == 422, change
        assert message in response.content.decode(), change
    year = client.post(holidays_url(cast.laval), {"year": "2030"})
    assert year.status_code == 422
    assert not Closure.objects.exists()


def test_the_services_refuse_what_the_forms_cannot_catch(cast: Cast) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    for first, last, reason, field in (
        (date(2026, 11, 23), date(2027, 11, 24), "", "last_day"),  # 367 days
        (CLOSED_DAY, CLOSED_DAY, "x" * 201, "reason"),
    ):
        with pytest.raises(ValidationError) as refused:
            services.add_closure(
                ctx, practitioner_id=None, first_day=first, last_day=last, reason=reason
            )
        assert refused.value.field == field
    with pytest.raises(ValidationError):
        services.add_statutory_holidays(ctx, 2025)
    assert (
        services.add_closure(
            ctx, practitioner_id=None, first_day=date(2026, 11, 1), last_day=CLOSED_DAY, reason=""
        )[1]
        == 0
    )  # begun already, but not over: allowed
    assert Closure.objects.count() == 1


def test_a_receptionist_gets_403_and_nothing_is_written(cast: Cast, wednesdays: None) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    closure, _booked = services.add_closure(
        ctx, practitioner_id=None, first_day=NEXT_WEEK, last_day=NEXT_WEEK, reason="Congé"
    )
    counts = (Closure.objects.count(), Slot.objects.count(), AuditEntry.objects.count())
    client = staff(cast.sophie)
    assert client.get(closures_url(cast.laval)).status_code == 403
    assert client.get(settings_url(cast.laval)).status_code == 403
    assert client.post(add_url(cast.laval), close()).status_code == 403
    assert client.post(add_url(cast.laval), close(cast.dr_roy)).status_code == 403
    assert client.post(holidays_url(cast.laval), {"year": "2026"}).status_code == 403
    assert client.post(remove_url(cast.laval, closure)).status_code == 403
    posted = {"cancellation_cutoff_hours": "0", "first_reminder_days": "0"}
    assert client.post(settings_url(cast.laval), posted).status_code == 403
    assert (Closure.objects.count(), Slot.objects.count(), AuditEntry.objects.count()) == counts
    cast.laval.refresh_from_db()
    assert (cast.laval.cancellation_cutoff_hours, cast.laval.first_reminder_days) == (24, 3)
    agenda = staff(cast.sophie).get(f"/clinique/{cast.laval.pk}/agenda/").content.decode()
    assert closures_url(cast.laval) not in agenda
    assert settings_url(cast.laval) not in agenda
    sophie = staff_context(cast.sophie, cast.laval.pk)
    for attempt in (
        lambda: services.add_statutory_holidays(sophie, 2026),
        lambda: services.remove_closure(sophie, closure.pk),
        lambda: clinics.update_clinic_settings(
            sophie, cancellation_cutoff_hours=0, first_reminder_days=0, second_reminder_days=0
        ),
    ):
        with pytest.raises(PermissionDenied):
            attempt()


def test_montreal_staff_find_nothing_of_laval(cast: Cast) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    closure, _booked = services.add_closure(
        ctx, practitioner_id=None, first_day=CLOSED_DAY, last_day=CLOSED_DAY, reason="Formation"
    )
    karim = staff(cast.karim)
    assert karim.get(closures_url(cast.laval)).status_code == 404
    assert karim.get(settings_url(cast.laval)).status_code == 404
    assert karim.post(add_url(cast.laval), close()).status_code == 404
    assert karim.post(holidays_url(cast.laval), {"year": "2026"}).status_code == 404
    assert karim.post(remove_url(cast.laval, closure)).status_code == 404
    # In his own clinic's address, Laval's closure and practitioner are "not found" too.
    assert karim.post(remove_url(cast.montreal, closure)).status_code == 404
    montreal = staff_context(cast.karim, cast.montreal.pk)
    with pytest.raises(NotFound):
        services.remove_closure(montreal, closure.pk)
    with pytest.raises(NotFound):
        services.add_closure(
            montreal,
            practitioner_id=cast.dr_roy.pk,
            first_day=CLOSED_DAY,
            last_day=CLOSED_DAY,
            reason="",
        )
    assert list(Closure.objects.values_list("pk", flat=True)) == [closure.pk]


def test_new_reminder_days_apply_to_the_next_booking(cast: Cast, wednesdays: None) -> None:
    before = Slot.objects.filter(practitioner=cast.dr_roy, status="free").earliest("start")
    services.book_appointment(user=cast.marie, slot_id=before.pk)  # 25 November, 13:00
    client = staff(cast.marc)
    page = client.get(settings_url(cast.laval))
    assert page.status_code == 200
    assert 'value="24"' in page.content.decode()

    saved = client.post(
        settings_url(cast.laval),
        {
            "cancellation_cutoff_hours": "48",
            "first_reminder_days": "7",
            "second_reminder_days": "0",
        },
    )
    assert saved.status_code == 302
    assert "booked from now on" in client.get(saved["Location"]).content.decode()
    cast.laval.refresh_from_db()
    assert (
        cast.laval.cancellation_cutoff_hours,
        cast.laval.first_reminder_days,
        cast.laval.second_reminder_days,
    ) == (48, 7, 0)

    after = Slot.objects.get(practitioner=cast.dr_roy, start=local(2026, 12, 2, 13, 0))
    appointment = services.book_appointment(user=cast.paul, slot_id=after.pk)
    reminders = Message.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    assert {m.due_at for m in reminders} == {local(2026, 11, 25, 13, 0)}
    # The reminders queued before the change keep their time (1 day before, at 13:00).
    earlier = Message.objects.filter(appointment__slot=before, kind=Kind.REMINDER)
    assert {m.due_at for m in earlier} == {local(2026, 11, 24, 13, 0)}


def test_bad_settings_are_refused_in_french_and_in_english(cast: Cast) -> None:
    bad = {
        "cancellation_cutoff_hours": "24",
        "first_reminder_days": "15",
        "second_reminder_days": "1",
    }
    for language, message in (
        ("fr", "Choisissez un nombre de jours de 0 à 14."),
        ("en", "Choose a number of days from 0 to 14."),
    ):
        response = staff(cast.marc, language).post(settings_url(cast.laval), bad)
        assert response.status_code == 422
        assert message in response.content.decode()
    for change in ({"cancellation_cutoff_hours": "169"}, {"second_reminder_days": "-1"}):
        response = staff(cast.marc).post(
            settings_url(cast.laval), {**bad, "first_reminder_days": "3", **change}
        )
        assert response.status_code == 422, change
    cast.laval.refresh_from_db()
    assert (cast.laval.cancellation_cutoff_hours, cast.laval.first_reminder_days) == (24, 3)


def test_every_change_is_audited(cast: Cast) -> None:
    client = staff(cast.marc)
    client.post(add_url(cast.laval), close())
    closure = Closure.objects.get()
    client.post(remove_url(cast.laval, closure))
    client.post(holidays_url(cast.laval), {"year": "2026"})
    christmas = Closure.objects.get()
    client.post(
        settings_url(cast.laval),
        {
            "cancellation_cutoff_hours": "12",
            "first_reminder_days": "2",
            "second_reminder_days": "1",
        },
    )
    entries = AuditEntry.objects.filter(actor_id=cast.marc.pk).order_by("id")
    laval = cast.laval.pk
    assert list(
        entries.values_list("action", "actor_role", "clinic_id", "object_type", "object_id")
    ) == [
        ("closure.add", "clinic_admin", laval, "closure", str(closure.pk)),
        ("closure.remove", "clinic_admin", laval, "closure", str(closure.pk)),
        ("closure.add", "clinic_admin", laval, "closure", str(christmas.pk)),
        ("clinic.settings", "clinic_admin", laval, "clinic", str(laval)),
    ]
    assert not entries.exclude(patient_id=None).exists()
    assert not Appointment.objects.exists()
