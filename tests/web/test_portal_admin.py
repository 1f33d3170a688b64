"""The clinic administrator's pages: Marc adds practitioners and their weekly times, and
the slots follow. Sophie, a receptionist, may not. (Another clinic's ids are walked in
tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.clinics import services as clinics
from rdv.clinics.models import Practitioner
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied, ValidationError
from rdv.scheduling import services
from rdv.scheduling.models import AvailabilityRule, Slot
from tests.conftest import Cast, local, portal_client

WEDNESDAY = 2
# Wednesdays 13:00–15:00 in 30-minute appointments, the two weeks after NOW (Monday
# 23 November 2026, three weeks after the clocks fell back): 25 November and 2 December.
RULE = {
    "weekday": WEDNESDAY,
    "start_time": "13:00",
    "end_time": "15:00",
    "slot_minutes": "30",
    "appointment_type": "periodic",
    "visibility": "public",
    "valid_from": "2026-11-23",
    "valid_until": "2026-12-06",
}


@pytest.fixture(autouse=True)
def horizon(settings: Any) -> None:
    """The production horizon, whatever the local environment says."""
    settings.SLOT_HORIZON_DAYS = 60


def staff(user: Any, language: str = "en") -> Client:
    return portal_client(user, language)


def practitioners_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/praticiens/"


def practitioner_url(cast: Cast, practitioner: Practitioner | int) -> str:
    pk = practitioner if isinstance(practitioner, int) else practitioner.pk
    return f"{practitioners_url(cast)}{pk}/"


def add_rule_url(cast: Cast, practitioner: Practitioner) -> str:
    return f"{practitioner_url(cast, practitioner)}horaires/ajouter/"


def remove_rule_url(cast: Cast, practitioner: Practitioner, rule: AvailabilityRule) -> str:
    return f"{practitioner_url(cast, practitioner)}horaires/{rule.pk}/retirer/"


def add_gagnon(client: Client, cast: Cast) -> Practitioner:
    response = client.post(
        practitioners_url(cast),
        {
            "first_name": " Alice ",
            "last_name": "Gagnon",
            "profession": "family_doctor",
            "languages": ["fr", "en"],
            "accepting_new_patients": "on",
        },
    )
    added = Practitioner.objects.get(last_name="Gagnon")
    assert response.status_code == 302
    assert response["Location"] == practitioner_url(cast, added)
    return added


def free_starts(practitioner: Practitioner) -> list[tuple[date, time]]:
    """The free slots' local days and wall-clock times, in order."""
    starts = Slot.objects.filter(practitioner=practitioner, status="free").order_by("start")
    return [
        (s.start.astimezone(clock.LOCAL_TZ).date(), s.start.astimezone(clock.LOCAL_TZ).time())
        for s in starts
    ]


def test_an_admin_adds_a_practitioner_then_a_weekly_time_and_the_slots_appear(
    cast: Cast,
) -> None:
    client = staff(cast.marc)
    gagnon = add_gagnon(client, cast)
    assert (gagnon.clinic, gagnon.first_name, gagnon.is_active) == (cast.laval, "Alice", True)
    assert gagnon.accepting_new_patients
    assert sorted(gagnon.languages.values_list("code", flat=True)) == ["en", "fr"]
    assert not Slot.objects.filter(practitioner=gagnon).exists()

    response = client.post(add_rule_url(cast, gagnon), RULE)
    assert response.status_code == 302
    assert response["Location"] == practitioner_url(cast, gagnon)
    hours = [time(13, 0), time(13, 30), time(14, 0), time(14, 30)]
    assert free_starts(gagnon) == [
        (day, hour) for day in (date(2026, 11, 25), date(2026, 12, 2)) for hour in hours
    ]
    slot = Slot.objects.filter(practitioner=gagnon).earliest("start")
    assert slot.end - slot.start == local(2026, 11, 25, 13, 30) - local(2026, 11, 25, 13, 0)
    assert (slot.clinic, slot.appointment_type, slot.visibility) == (
        cast.laval,
        "periodic",
        "public",
    )

    page = client.get(response["Location"]).content.decode()
    assert "The weekly time is added" in page
    assert "13:00–15:00" in page
    listing = client.get(practitioners_url(cast)).content.decode()
    assert "Dr Alice Gagnon" in listing
    assert "Roy" in listing


def test_a_weekly_time_without_an_end_fills_the_horizon(cast: Cast, settings: Any) -> None:
    settings.SLOT_HORIZON_DAYS = 14  # Monday 23 November to Sunday 6 December
    client = staff(cast.marc)
    gagnon = add_gagnon(client, cast)
    client.post(add_rule_url(cast, gagnon), {**RULE, "valid_until": ""})
    assert len(free_starts(gagnon)) == 8


def test_removing_a_weekly_time_withdraws_its_free_slots_and_keeps_a_booked_one(
    cast: Cast,
) -> None:
    client = staff(cast.marc)
    gagnon = add_gagnon(client, cast)
    client.post(add_rule_url(cast, gagnon), RULE)
    rule = AvailabilityRule.objects.get(practitioner=gagnon)
    taken = Slot.objects.filter(practitioner=gagnon).earliest("start")
    appointment = services.book_appointment(user=cast.paul, slot_id=taken.pk)

    response = client.post(remove_rule_url(cast, gagnon, rule))
    assert response.status_code == 302
    assert not AvailabilityRule.objects.filter(pk=rule.pk).exists()
    left = Slot.objects.filter(practitioner=gagnon)
    assert list(left.values_list("pk", "status")) == [(taken.pk, "booked")]
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    page = client.get(response["Location"]).content.decode()
    assert "1 booked appointment at those times is kept" in page
    assert client.post(remove_rule_url(cast, gagnon, rule)).status_code == 404


def test_deactivating_a_practitioner_withdraws_their_free_slots(cast: Cast) -> None:
    client = staff(cast.marc)
    gagnon = add_gagnon(client, cast)
    client.post(add_rule_url(cast, gagnon), RULE)
    taken = Slot.objects.filter(practitioner=gagnon).earliest("start")
    services.book_appointment(user=cast.paul, slot_id=taken.pk)

    response = client.post(
        practitioner_url(cast, gagnon), {"languages": ["fr"], "accepting_new_patients": ""}
    )
    assert response.status_code == 302
    gagnon.refresh_from_db()
    assert (gagnon.is_active, gagnon.accepting_new_patients) == (False, False)
    assert list(gagnon.languages.values_list("code", flat=True)) == ["fr"]
    assert list(Slot.objects.filter(practitioner=gagnon).values_list("pk", flat=True)) == [taken.pk]
    page = client.get(response["Location"]).content.decode()
    assert "1 upcoming appointment remains booked with them" in page

    client.post(practitioner_url(cast, gagnon), {"languages": ["fr"], "is_active": "on"})
    assert len(free_starts(gagnon)) == 7  # the weekly time is offered again, less the booked


def test_a_receptionist_gets_403_and_nothing_is_written(cast: Cast) -> None:
    client = staff(cast.sophie)
    rules, slots, audited = (
        AvailabilityRule.objects.count(),
        Slot.objects.count(),
        AuditEntry.objects.count(),
    )
    assert client.get(practitioners_url(cast)).status_code == 403
    assert client.get(practitioner_url(cast, cast.dr_roy)).status_code == 403
    added = client.post(
        practitioners_url(cast),
        {"first_name": "Eve", "last_name": "Intrus", "profession": "nurse", "languages": "fr"},
    )
    assert added.status_code == 403
    assert client.post(add_rule_url(cast, cast.dr_roy), RULE).status_code == 403
    assert client.post(practitioner_url(cast, cast.dr_roy), {"languages": "fr"}).status_code == 403
    assert not Practitioner.objects.filter(last_name="Intrus").exists()
    cast.dr_roy.refresh_from_db()
    assert cast.dr_roy.is_active
    assert (AvailabilityRule.objects.count(), Slot.objects.count()) == (rules, slots)
    assert AuditEntry.objects.count() == audited


def test_the_receptionist_has_no_practitioners_link_and_the_admin_has(cast: Cast) -> None:
    agenda = f"/clinique/{cast.laval.pk}/agenda/"
    assert practitioners_url(cast) not in staff(cast.sophie).get(agenda).content.decode()
    assert practitioners_url(cast) in staff(cast.marc).get(agenda).content.decode()


def test_another_clinics_practitioner_is_not_found_even_for_an_admin(cast: Cast) -> None:
    client = staff(cast.marc)
    other = cast.montreal_doctor
    assert client.get(practitioner_url(cast, other)).status_code == 404
    assert client.post(add_rule_url(cast, other), RULE).status_code == 404
    assert client.post(practitioner_url(cast, other), {"languages": "fr"}).status_code == 404
    other.refresh_from_db()
    assert other.is_active
    assert not AvailabilityRule.objects.filter(practitioner=other).exists()


def test_a_missing_name_is_refused_in_french_and_in_english(cast: Cast) -> None:
    for language, message in (
        ("fr", "Ce champ est obligatoire."),
        ("en", "This field is required."),
    ):
        response = staff(cast.marc, language).post(
            practitioners_url(cast),
            {"first_name": "", "last_name": "Gagnon", "profession": "nurse", "languages": "fr"},
        )
        assert response.status_code == 422
        assert message in response.content.decode()
    assert not Practitioner.objects.filter(last_name="Gagnon").exists()


def test_a_weekly_time_ending_before_it_starts_is_refused(cast: Cast) -> None:
    client = staff(cast.marc)
    url = add_rule_url(cast, cast.dr_roy)
    english = client.post(url, {**RULE, "start_time": "15:00", "end_time": "13:00"})
    assert english.status_code == 422
    assert "The end must be after the start." in english.content.decode()
    french = staff(cast.marc, "fr").post(url, {**RULE, "start_time": "15:00", "end_time": "13:00"})
    assert french.status_code == 422
    assert 'lang="fr-CA"' in french.content.decode()
    assert not AvailabilityRule.objects.filter(practitioner=cast.dr_roy).exists()
    assert not Slot.objects.filter(practitioner=cast.dr_roy).exists()


def test_bad_weekly_times_are_refused_with_readable_messages(cast: Cast) -> None:
    client = staff(cast.marc)
    url = add_rule_url(cast, cast.dr_roy)
    refusals = [
        ({"slot_minutes": "3"}, "between 5 and 480 minutes"),
        ({"slot_minutes": "481"}, "between 5 and 480 minutes"),
        ({"end_time": "13:20"}, "shorter than one appointment"),
        ({"valid_until": "2026-11-22", "valid_from": "2026-11-30"}, "cannot be before the first"),
        ({"valid_until": "2026-11-22", "valid_from": "2026-11-01"}, "already passed"),
        ({"weekday": "7"}, "Select a valid choice"),
        ({"start_time": "25:00"}, "Enter a valid time"),
    ]
    for change, message in refusals:
        response = client.post(url, {**RULE, **change})
        assert response.status_code == 422, change
        assert message in response.content.decode(), change
    nurse = add_rule_url(cast, cast.nurse_diane)
    reserved = client.post(nurse, {**RULE, "visibility": "registered"})
    assert reserved.status_code == 422
    assert "have registered patients" in reserved.content.decode()
    assert not AvailabilityRule.objects.exists()


def test_an_overlapping_weekly_time_is_a_conflict(cast: Cast) -> None:
    client = staff(cast.marc)
    url = add_rule_url(cast, cast.dr_roy)
    assert client.post(url, RULE).status_code == 302
    slots = Slot.objects.count()
    overlap = client.post(url, {**RULE, "start_time": "14:30", "end_time": "16:00"})
    assert overlap.status_code == 409
    assert "overlaps another weekly time of this practitioner (13:00–15:00)" in (
        overlap.content.decode()
    )
    later = client.post(url, {**RULE, "valid_from": "2026-12-07", "valid_until": ""})
    assert later.status_code == 302  # the same hours after the first one ends
    assert AvailabilityRule.objects.filter(practitioner=cast.dr_roy).count() == 2
    assert Slot.objects.count() > slots


def test_bad_practitioners_are_refused_and_nothing_is_written(cast: Cast) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    good = {
        "first_name": "Alice",
        "last_name": "Gagnon",
        "profession": "family_doctor",
        "languages": ["fr"],
        "accepting_new_patients": False,
    }
    for change, field in (
        ({"languages": []}, "languages"),
        ({"languages": ["fr", "xx"]}, "languages"),
        ({"profession": "surgeon"}, "profession"),
        ({"last_name": "   "}, "last_name"),
        ({"first_name": "A" * 101}, "first_name"),
    ):
        with pytest.raises(ValidationError) as refused:
            clinics.add_practitioner(ctx, **{**good, **change})  # type: ignore[arg-type]
        assert refused.value.field == field, change
    assert not Practitioner.objects.filter(last_name="Gagnon").exists()
    response = staff(cast.marc).post(practitioner_url(cast, cast.dr_roy), {"is_active": "on"})
    assert response.status_code == 422
    assert sorted(cast.dr_roy.languages.values_list("code", flat=True)) == ["en", "fr"]


def test_every_change_is_audited(cast: Cast) -> None:
    client = staff(cast.marc)
    gagnon = add_gagnon(client, cast)
    client.post(add_rule_url(cast, gagnon), RULE)
    rule = AvailabilityRule.objects.get(practitioner=gagnon)
    client.post(remove_rule_url(cast, gagnon, rule))
    client.post(practitioner_url(cast, gagnon), {"languages": "fr"})
    entries = AuditEntry.objects.filter(actor_id=cast.marc.pk).order_by("id")
    assert list(
        entries.values_list("action", "actor_role", "clinic_id", "object_type", "object_id")
    ) == [
        ("practitioner.add", "clinic_admin", cast.laval.pk, "practitioner", str(gagnon.pk)),
        ("availability_rule.add", "clinic_admin", cast.laval.pk, "availability_rule", str(rule.pk)),
        (
            "availability_rule.remove",
            "clinic_admin",
            cast.laval.pk,
            "availability_rule",
            str(rule.pk),
        ),
        ("practitioner.update", "clinic_admin", cast.laval.pk, "practitioner", str(gagnon.pk)),
    ]
    assert not entries.exclude(patient_id=None).exists()


def test_a_receptionist_is_refused_by_the_services_too(cast: Cast) -> None:
    ctx = staff_context(cast.sophie, cast.laval.pk)
    for attempt in (
        lambda: clinics.add_practitioner(
            ctx,
            first_name="Eve",
            last_name="Intrus",
            profession="nurse",
            languages=["fr"],
            accepting_new_patients=False,
        ),
        lambda: clinics.update_practitioner(
            ctx, cast.dr_roy.pk, is_active=False, accepting_new_patients=False, languages=["fr"]
        ),
        lambda: services.add_weekly_rule(
            ctx,
            cast.dr_roy.pk,
            weekday=WEDNESDAY,
            start_time=time(13),
            end_time=time(15),
            slot_minutes=30,
            appointment_type="periodic",
            visibility="public",
            valid_from=date(2026, 11, 23),
            valid_until=None,
        ),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    # Another clinic's practitioner is "not found" before the role is even considered.
    with pytest.raises(NotFound):
        clinics.practitioner_details(ctx, cast.montreal_doctor.pk)
    assert not AvailabilityRule.objects.exists()
    cast.dr_roy.refresh_from_db()
    assert cast.dr_roy.is_active
