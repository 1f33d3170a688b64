"""A caller without an RDV Santé account: the clinic they phone creates their file (no
account, `record_clinic`), books them like anyone, and tells them by text message. The
file is that clinic's alone."""

from __future__ import annotations

import re
import threading
from datetime import date
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.clinics import services as clinic_services
from rdv.clinics.models import Membership
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.notifications import services as notifications
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Channel, Kind, Message, MessageStatus
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import create_caller, set_health_card
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, AppointmentStatus, AppointmentType, SlotStatus
from tests.conftest import Cast, local, make_slot, on_postgres
from tests.factories import UserFactory
from tests.notifications import test_sms

twilio = test_sms.twilio
BORN = date(1941, 3, 9)
PHONE = "+14505550177"


def card(first: str, last: str, born: date = BORN) -> str:
    letters = expected_letters(last_name_at_birth=last, first_name=first)
    return f"{letters}{born:%y%m%d}11"


def laval(cast: Cast) -> StaffContext:
    return staff_context(cast.sophie, cast.laval.pk)


def montreal(cast: Cast) -> StaffContext:
    return staff_context(cast.karim, cast.montreal.pk)


def new_caller(ctx: StaffContext, **changes: Any) -> Patient:
    fields: dict[str, Any] = {
        "first_name": "Gisèle",
        "last_name": "Tremblay",
        "last_name_at_birth": "",
        "date_of_birth": BORN,
        "ramq_number": card("Gisèle", "Tremblay"),
        "card_sequence_number": "02",
        "phone": "450 555-0177",
    }
    return create_caller(ctx, **{**fields, **changes})


def test_the_front_desk_creates_the_file_of_a_caller_without_an_account(cast: Cast) -> None:
    gisele = new_caller(laval(cast))
    gisele.refresh_from_db()
    assert (gisele.account_id, gisele.record_clinic_id, gisele.relationship) == (
        None,
        cast.laval.pk,
        Patient.Relationship.SELF,
    )
    assert (gisele.phone, gisele.ramq_number, gisele.card_sequence_number) == (
        PHONE,
        card("Gisèle", "Tremblay"),
        "02",
    )
    assert gisele.ramq_blind_index
    assert gisele.identity_blind_index
    created = AuditEntry.objects.get(action="patient.create_record")
    assert (created.actor_id, created.actor_role, created.patient_id, created.clinic_id) == (
        cast.sophie.pk,
        "receptionist",
        gisele.pk,
        cast.laval.pk,
    )


def test_the_card_is_optional_and_then_no_claim_protects_it(cast: Cast) -> None:
    ctx = laval(cast)
    gisele = new_caller(ctx, ramq_number="", card_sequence_number="", phone="")
    assert (gisele.ramq_number, gisele.ramq_blind_index, gisele.phone) == ("", "", "")
    first = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 12, 1, 9, 0))
    for slot in (first, second):
        scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=slot.pk)
    assert Appointment.objects.filter(patient=gisele, status="booked").count() == 2


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"ramq_number": "TREG 4103 1011"}, "ramq_number", "ramq_day_mismatch"),
        ({"date_of_birth": date(2027, 1, 1)}, "date_of_birth", "future"),
        ({"phone": "555"}, "phone", "phone_invalid"),
        ({"ramq_number": "", "card_sequence_number": "01"}, "ramq_number", "ramq_missing"),
        ({"first_name": "  "}, "first_name", "required"),
    ],
)
def test_bad_details_are_refused_with_nothing_written(
    cast: Cast, changes: dict[str, Any], field: str, code: str
) -> None:
    patients = Patient.objects.count()
    with pytest.raises(ValidationError) as refused:
        new_caller(laval(cast), **changes)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert Patient.objects.count() == patients
    assert not AuditEntry.objects.filter(action__startswith="patient.").exists()


def test_a_practitioner_cannot_create_a_file(cast: Cast) -> None:
    doctor = UserFactory.create()
    Membership.objects.create(user=doctor, clinic=cast.laval, role=Membership.Role.PRACTITIONER)
    with pytest.raises(PermissionDenied):
        new_caller(staff_context(doctor, cast.laval.pk))
    assert not Patient.objects.filter(record_clinic__isnull=False).exists()


def test_a_card_already_on_an_account_is_a_conflict_search_for_them_instead(cast: Cast) -> None:
    number = card("Marie", cast.marie_self.last_name, cast.marie_self.date_of_birth)
    set_health_card(patient=cast.marie_self, ramq_number=number, card_sequence_number="01")
    with pytest.raises(Conflict) as refused:
        new_caller(
            laval(cast),
            first_name="Marie",
            last_name=cast.marie_self.last_name,
            date_of_birth=cast.marie_self.date_of_birth,
            ramq_number=number,
        )
    assert (refused.value.code, refused.value.field) == ("caller_exists", "ramq_number")
    assert not Patient.objects.filter(record_clinic__isnull=False).exists()


def test_one_file_per_card_per_clinic_but_another_clinic_keeps_its_own(cast: Cast) -> None:
    new_caller(laval(cast))
    with pytest.raises(Conflict):
        new_caller(laval(cast))
    # Montréal cannot see Laval's file, so it keeps one of its own for the same person.
    theirs = new_caller(montreal(cast))
    assert theirs.record_clinic_id == cast.montreal.pk
    assert Patient.objects.filter(record_clinic__isnull=False).count() == 2


def test_the_unique_card_per_clinic_is_the_databases(cast: Cast) -> None:
    mine = new_caller(laval(cast))
    twin = Patient.objects.create(
        record_clinic=cast.laval,
        relationship="self",
        first_name="Guy",
        last_name="Tremblay",
        date_of_birth=date(1950, 1, 1),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.filter(pk=twin.pk).update(ramq_blind_index=mine.ramq_blind_index)


def test_without_a_card_the_same_name_and_birth_date_is_a_conflict(cast: Cast) -> None:
    new_caller(laval(cast), ramq_number="", card_sequence_number="")
    with pytest.raises(Conflict):
        new_caller(laval(cast), ramq_number="", card_sequence_number="", first_name="gisèle")
    new_caller(laval(cast), ramq_number="", card_sequence_number="", first_name="Gilles")
    assert Patient.objects.filter(record_clinic=cast.laval).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_receptionists_creating_one_card_at_once_make_one_file(cast: Cast) -> None:
    if not on_postgres():
        pytest.skip("concurrent transactions: PostgreSQL")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(ctx: StaffContext) -> None:
        barrier.wait()
        try:
            new_caller(ctx)
            outcomes.append("created")
        except Conflict:
            outcomes.append("refused")
        except BaseException as exc:  # anything else fails the test below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    contexts = [laval(cast), staff_context(cast.marc, cast.laval.pk)]
    threads = [threading.Thread(target=create, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a creation hung"
    assert sorted(outcomes) == ["created", "refused"], outcomes
    assert Patient.objects.filter(record_clinic=cast.laval).count() == 1
    assert AuditEntry.objects.filter(action="patient.create_record").count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"account_id": None, "record_clinic_id": None},
        {"account_id": "marie", "record_clinic_id": "laval"},
    ],
    ids=["neither", "both"],
)
def test_a_file_has_an_account_or_a_clinic_never_both_nor_neither(
    cast: Cast, fields: dict[str, Any]
) -> None:
    ids = {"marie": cast.marie.pk, "laval": cast.laval.pk, None: None}
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.create(
            account_id=ids[fields["account_id"]],
            record_clinic_id=ids[fields["record_clinic_id"]],
            relationship="self" if fields["account_id"] is None else "other",
            first_name="X",
            last_name="Y",
            date_of_birth=BORN,
        )


def test_a_clinic_file_is_always_the_person_themself(cast: Cast) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.create(
            record_clinic=cast.laval,
            relationship="child",
            first_name="X",
            last_name="Y",
            date_of_birth=BORN,
        )


# --- Only the clinic that created a file reaches it -----------------------------------------


def test_the_clinic_finds_its_own_file_by_number_and_by_name(cast: Cast) -> None:
    ctx = laval(cast)
    gisele = new_caller(ctx)
    assert clinic_services.find_callers(ctx, card("Gisèle", "Tremblay")) == [gisele]
    by_name = clinic_services.find_callers_by_identity(
        ctx, last_name="tremblay", date_of_birth=BORN, first_name="gis"
    )
    assert by_name == [gisele]
    assert clinic_services.view_caller(ctx, gisele.pk) == gisele


def test_another_clinic_cannot_find_view_or_book_the_file(cast: Cast) -> None:
    gisele = new_caller(laval(cast))
    other = montreal(cast)
    assert clinic_services.find_callers(other, card("Gisèle", "Tremblay")) == []
    assert (
        clinic_services.find_callers_by_identity(other, last_name="Tremblay", date_of_birth=BORN)
        == []
    )
    with pytest.raises(NotFound):
        clinic_services.view_caller(other, gisele.pk)
    slot = make_slot(cast.montreal_doctor, local(2026, 11, 30, 9, 0))
    with pytest.raises(NotFound):
        scheduling.book_for_caller(other, patient_id=gisele.pk, slot_id=slot.pk)
    slot.refresh_from_db()
    assert slot.status == SlotStatus.FREE
    assert not AuditEntry.objects.filter(clinic_id=cast.montreal.pk, patient_id=gisele.pk).exists()


# --- Booking, the clinic's pages' services, and the messages --------------------------------


def test_booking_a_file_with_a_card_claims_the_card(cast: Cast) -> None:
    ctx = laval(cast)
    gisele = new_caller(ctx)
    first = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 12, 1, 9, 0))
    booked = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=first.pk, reason="suivi")
    assert (booked.patient_id, booked.booked_by_id) == (gisele.pk, cast.sophie.pk)
    with pytest.raises(Conflict) as refused:
        scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=second.pk)
    assert refused.value.code == "card_already_booked"
    second.refresh_from_db()
    assert second.status == SlotStatus.FREE


def test_the_clinic_cancels_and_records_attendance_for_a_file(cast: Cast) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    gisele = new_caller(ctx)
    today = make_slot(cast.dr_roy, local(2026, 11, 23, 10, 0), appointment_type="periodic")
    later = make_slot(cast.dr_roy, local(2026, 11, 30, 10, 0), appointment_type="follow_up")
    seen = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=today.pk)
    moved_on = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=later.pk)
    arrived = scheduling.record_attendance(ctx, appointment_id=seen.pk, status="arrived")
    assert arrived.status == AppointmentStatus.ARRIVED
    cancelled = scheduling.cancel_for_clinic(ctx, appointment_id=moved_on.pk, reason="Absent")
    assert cancelled.status == AppointmentStatus.CANCELLED
    assert clinic_services.view_patient(ctx, gisele.pk) == gisele


def test_a_file_gets_its_texts_in_french_at_its_phone_with_the_clinics_reminders(
    cast: Cast,
) -> None:
    ctx = laval(cast)
    gisele = new_caller(ctx)
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=slot.pk)
    messages = Message.objects.filter(appointment=appointment).order_by("due_at")
    assert {(m.kind, m.channel, m.recipient_id, m.address, m.language) for m in messages} == {
        (Kind.BOOKED, Channel.SMS, None, PHONE, "fr"),
        (Kind.REMINDER, Channel.SMS, None, PHONE, "fr"),
    }
    # Laval's reminders: 3 days and 1 day before, at the visit's time of day.
    assert [m.due_at for m in messages if m.kind == Kind.REMINDER] == [
        local(2026, 11, 27, 9, 0),
        local(2026, 11, 29, 9, 0),
    ]


def test_a_file_without_a_phone_gets_no_message(cast: Cast) -> None:
    ctx = laval(cast)
    gisele = new_caller(ctx, phone="")
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=slot.pk)
    scheduling.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="Fermé")
    assert not Message.objects.filter(appointment=appointment).exists()


def test_the_text_goes_out_and_its_link_cancels_without_an_account(
    cast: Cast, twilio: test_sms.FakeTwilio
) -> None:
    twilio.answers = [test_sms.created("SM" + "7" * 32)]
    ctx = laval(cast)
    gisele = new_caller(ctx)
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=slot.pk)
    assert deliver_due() == 1
    sent = twilio.received[-1]["form"]
    assert sent["To"] == [PHONE]
    body = sent["Body"][0]
    assert "Gisèle" in body
    link = re.search(rf"{test_sms.SITE}(/r/cancel/[^ ]+/)", body)
    assert link is not None, body
    browser = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    shown = browser.get(link.group(1))
    assert shown.status_code == 200
    assert "Sign in to see all your appointments" not in shown.content.decode()  # no account
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED  # a GET (a link preview) changes nothing
    response = browser.post(link.group(1))
    assert response.status_code == 200
    appointment.refresh_from_db()
    slot.refresh_from_db()
    assert (appointment.status, appointment.cancelled_by, slot.status) == (
        AppointmentStatus.CANCELLED,
        "patient",
        SlotStatus.FREE,
    )
    entry = AuditEntry.objects.get(action="appointment.cancel")
    assert (entry.actor_id, entry.actor_role, entry.patient_id) == (
        None,
        scheduling.LINK_ROLE,
        gisele.pk,
    )
    cancelled = Message.objects.get(appointment=appointment, kind=Kind.CANCELLED)
    assert (cancelled.channel, cancelled.address) == (Channel.SMS, PHONE)
    assert not Message.objects.filter(
        appointment=appointment, kind=Kind.REMINDER, status=MessageStatus.PENDING
    ).exists()


def test_stop_from_a_files_number_stops_its_texts(cast: Cast) -> None:
    ctx = laval(cast)
    gisele = new_caller(ctx)
    first = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0), appointment_type="periodic")
    scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=first.pk)
    assert notifications.stop_requested(number=PHONE, body="ARRÊT")
    gisele.refresh_from_db()
    assert gisele.sms_stopped
    assert (
        not Message.objects.filter(status=MessageStatus.PENDING, address_index__gt="")
        .filter(appointment__patient=gisele)
        .exists()
    )
    assert AuditEntry.objects.filter(action="patient.sms_stopped", patient_id=gisele.pk).exists()
    second = make_slot(cast.dr_roy, local(2026, 12, 2, 9, 0), appointment_type="follow_up")
    later = scheduling.book_for_caller(ctx, patient_id=gisele.pk, slot_id=second.pk)
    assert not Message.objects.filter(appointment=later).exists()


def test_patient_paths_never_reach_a_file(cast: Cast) -> None:
    gisele = new_caller(laval(cast))
    slot = make_slot(
        cast.dr_roy, local(2026, 11, 30, 9, 0), appointment_type=AppointmentType.URGENT
    )
    with pytest.raises(NotFound):
        scheduling.book_appointment(user=cast.marie, slot_id=slot.pk, patient_id=gisele.pk)
    assert clock.now() < slot.start
