"""A visitor's hold that survives signing in; family visits booked all at once or not at all;
booking needs a confirmed email address."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction

from rdv.accounts.models import User
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied, SlotUnavailable, ValidationError
from rdv.patients.models import Patient
from rdv.scheduling import services
from rdv.scheduling.family import family_groups
from rdv.scheduling.models import (
    Appointment,
    AppointmentType,
    Slot,
    SlotStatus,
    Visibility,
)
from rdv.scheduling.search import SearchRequest, availability_query
from tests.conftest import Cast, local, make_slot
from tests.factories import PatientFactory


def token() -> str:
    return secrets.token_urlsafe(32)


# --- Visitor holds -------------------------------------------------------------------------


def test_a_visitor_holds_a_public_slot_and_the_table_keeps_only_a_digest(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    secret = token()
    hold = services.hold_slot_for_visitor(visitor_token=secret, slot_id=slot.pk)
    slot.refresh_from_db()
    assert slot.hold_owner_id is None
    assert slot.hold_visitor == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in slot.hold_visitor
    assert slot.hold_expires_at == hold.expires_at


def test_a_held_slot_is_not_takeable_by_anyone_else(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    services.hold_slot_for_visitor(visitor_token=token(), slot_id=slot.pk)
    with pytest.raises(SlotUnavailable) as lost:
        services.book_appointment(user=cast.paul, slot_id=slot.pk)
    assert lost.value.code == "slot_held"
    with pytest.raises(SlotUnavailable):
        services.hold_slot_for_visitor(visitor_token=token(), slot_id=slot.pk)


def test_a_visitor_cannot_hold_a_reserved_slot(cast: Cast) -> None:
    reserved = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0), visibility=Visibility.REGISTERED)
    with pytest.raises(NotFound):
        services.hold_slot_for_visitor(visitor_token=token(), slot_id=reserved.pk)


def test_a_visitor_holds_one_slot_at_a_time(cast: Cast) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    secret = token()
    services.hold_slot_for_visitor(visitor_token=secret, slot_id=first.pk)
    services.hold_slot_for_visitor(visitor_token=secret, slot_id=second.pk)
    first.refresh_from_db()
    assert (first.hold_visitor, first.hold_expires_at) == (None, None)


def test_signing_in_hands_the_hold_to_the_account_with_the_same_expiry(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    elsewhere = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    services.hold_slot(user=cast.paul, slot_id=elsewhere.pk)
    secret = token()
    hold = services.hold_slot_for_visitor(visitor_token=secret, slot_id=slot.pk)
    claimed = services.claim_visitor_hold(user=cast.paul, visitor_token=secret)
    assert claimed == hold
    slot.refresh_from_db()
    elsewhere.refresh_from_db()
    assert (slot.hold_owner_id, slot.hold_visitor) == (cast.paul.pk, None)
    assert slot.hold_expires_at == hold.expires_at
    assert elsewhere.hold_owner_id is None  # an account holds one slot
    appointment = services.book_appointment(user=cast.paul, slot_id=slot.pk)
    assert appointment.slot_id == slot.pk


def test_an_expired_visitor_hold_is_not_claimed(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    secret = token()
    services.hold_slot_for_visitor(visitor_token=secret, slot_id=slot.pk)
    with clock.frozen_now(clock.now() + timedelta(minutes=6)):
        assert services.claim_visitor_hold(user=cast.paul, visitor_token=secret) is None
        # ...and anyone may take the slot again.
        services.book_appointment(user=cast.marie, slot_id=slot.pk)


def test_the_database_refuses_a_hold_by_an_account_and_a_visitor_at_once(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(
            hold_owner=cast.paul, hold_visitor="a" * 64, hold_expires_at=clock.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(hold_visitor="a" * 64)  # no expiry


# --- A confirmed email is needed to book ---------------------------------------------------


def test_an_unconfirmed_account_may_hold_but_not_book(cast: Cast) -> None:
    User.objects.filter(pk=cast.paul.pk).update(email_verified_at=None)
    paul = User.objects.get(pk=cast.paul.pk)
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    services.hold_slot(user=paul, slot_id=slot.pk)
    with pytest.raises(PermissionDenied) as refused:
        services.book_appointment(user=paul, slot_id=slot.pk)
    assert refused.value.code == "email_unverified"
    assert not Appointment.objects.exists()
    assert Slot.objects.get(pk=slot.pk).status == SlotStatus.FREE


# --- Family visits -------------------------------------------------------------------------


@pytest.fixture
def noah(cast: Cast) -> Patient:
    return PatientFactory.create(
        account=cast.marie,
        relationship=Patient.Relationship.CHILD,
        first_name="Noah",
        date_of_birth=date(2018, 3, 4),
    )


def test_a_family_visit_books_everyone_or_no_one(cast: Cast, noah: Patient) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))
    booked = services.book_family_visit(
        user=cast.marie,
        choices=[
            services.FamilyChoice(patient_id=cast.lea.pk, slot_id=first.pk, reason="Otite"),
            services.FamilyChoice(patient_id=noah.pk, slot_id=second.pk),
        ],
    )
    assert [(a.patient_id, a.slot_id) for a in booked] == [
        (cast.lea.pk, first.pk),
        (noah.pk, second.pk),
    ]
    assert booked[0].reason == "Otite"
    assert set(Slot.objects.values_list("status", flat=True)) == {SlotStatus.BOOKED}


def test_when_one_slot_of_a_family_visit_is_lost_nothing_is_booked(
    cast: Cast, noah: Patient
) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))
    services.book_appointment(user=cast.paul, slot_id=second.pk)
    with pytest.raises(SlotUnavailable):
        services.book_family_visit(
            user=cast.marie,
            choices=[
                services.FamilyChoice(patient_id=cast.lea.pk, slot_id=first.pk),
                services.FamilyChoice(patient_id=noah.pk, slot_id=second.pk),
            ],
        )
    assert Slot.objects.get(pk=first.pk).status == SlotStatus.FREE
    assert not Appointment.objects.filter(patient__account=cast.marie).exists()


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ([("lea", 0)], ValidationError),  # one person is not a family visit
        ([("lea", 0), ("lea", 1)], ValidationError),  # the same person twice
        ([("lea", 0), ("noah", 0)], ValidationError),  # one time for two people
        ([("lea", 0), ("paul", 1)], NotFound),  # someone else's patient
    ],
)
def test_a_family_visit_is_checked_before_anything_is_written(
    cast: Cast, noah: Patient, pairs: list[tuple[str, int]], error: type[Exception]
) -> None:
    slots = [make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30 * i)) for i in range(2)]
    people = {"lea": cast.lea, "noah": noah, "paul": cast.paul_self}
    with pytest.raises(error):
        services.book_family_visit(
            user=cast.marie,
            choices=[
                services.FamilyChoice(patient_id=people[name].pk, slot_id=slots[i].pk)
                for name, i in pairs
            ],
        )
    assert not Appointment.objects.exists()


def test_a_child_only_time_is_never_given_to_an_older_person(cast: Cast, noah: Patient) -> None:
    young_only = make_slot(
        cast.nurse_diane,
        local(2026, 11, 25, 9, 0),
        appointment_type=AppointmentType.CHILD_0_5,
    )
    with pytest.raises(ValidationError):
        services.book_family_visit(
            user=cast.marie,
            choices=[
                services.FamilyChoice(patient_id=noah.pk, slot_id=young_only.pk),
                services.FamilyChoice(
                    patient_id=cast.lea.pk,
                    slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30)).pk,
                ),
            ],
        )


def test_family_groups_are_back_to_back_times_at_one_clinic(cast: Cast, noah: Patient) -> None:
    lone = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))  # nothing follows it
    make_slot(cast.dr_roy, local(2026, 11, 24, 11, 0))  # two hours later: too far
    pair_a = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    pair_b = make_slot(cast.nurse_diane, local(2026, 11, 25, 9, 40))  # 10 min after
    query = availability_query(SearchRequest(near="Laval", radius_km=25), cast.marie)
    groups = family_groups(query, [cast.lea, noah])
    assert groups, "the 9:00 and 9:40 times follow each other"
    first = groups[0]
    assert [t.slot.slot_id for t in first.times] == [pair_a.pk, pair_b.pk]
    assert {t.patient.pk for t in first.times} == {cast.lea.pk, noah.pk}
    assert all(lone.pk not in [t.slot.slot_id for t in g.times] for g in groups)


def test_family_groups_give_child_only_times_to_young_children(cast: Cast, noah: Patient) -> None:
    make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    make_slot(
        cast.nurse_diane, local(2026, 11, 25, 9, 30), appointment_type=AppointmentType.CHILD_0_5
    )
    query = availability_query(SearchRequest(near="Laval", radius_km=25), cast.marie)
    (group,) = family_groups(query, [cast.lea, noah])
    by_type = {t.slot.appointment_type: t.patient.pk for t in group.times}
    assert by_type[AppointmentType.CHILD_0_5] == cast.lea.pk  # Léa is 3, Noah 8
    # Two people over six cannot share these times.
    assert family_groups(query, [cast.marie_self, noah]) == []


def test_an_expired_visitor_hold_does_not_stop_an_account_holding_the_slot(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    services.hold_slot_for_visitor(visitor_token=token(), slot_id=slot.pk)
    with clock.frozen_now(clock.now() + timedelta(minutes=6)):
        services.hold_slot(user=cast.paul, slot_id=slot.pk)
    slot.refresh_from_db()
    assert (slot.hold_owner_id, slot.hold_visitor) == (cast.paul.pk, None)


@pytest.mark.parametrize("expired", [False, True])
def test_deleting_an_account_clears_its_hold_whole(cast: Cast, expired: bool) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    services.hold_slot(user=cast.paul, slot_id=slot.pk)
    later = clock.now() + timedelta(minutes=6 if expired else 0)
    with clock.frozen_now(later):
        User.objects.filter(pk=cast.paul.pk).delete()
    slot.refresh_from_db()
    assert (slot.hold_owner_id, slot.hold_visitor, slot.hold_expires_at) == (None, None, None)


def test_a_closed_account_cannot_book(cast: Cast, noah: Patient) -> None:
    slots = [make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30 * i)) for i in range(2)]
    User.objects.filter(pk=cast.marie.pk).update(is_active=False)
    with pytest.raises(PermissionDenied) as closed:
        services.book_appointment(user=cast.marie, slot_id=slots[0].pk)
    assert closed.value.code == "account_closed"
    with pytest.raises(PermissionDenied):
        services.book_family_visit(
            user=cast.marie,
            choices=[
                services.FamilyChoice(patient_id=cast.lea.pk, slot_id=slots[0].pk),
                services.FamilyChoice(patient_id=noah.pk, slot_id=slots[1].pk),
            ],
        )
    assert not Appointment.objects.exists()
    assert set(Slot.objects.values_list("status", flat=True)) == {SlotStatus.FREE}
