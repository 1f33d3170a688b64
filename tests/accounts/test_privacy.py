"""Law 25 rights, at the service level: a copy of my data, and deleting my account.

Marie manages herself and Léa; Paul is another account. Sophie (receptionist at the Laval
clinic) views Léa's file. Deleting Marie's account must free her upcoming time for Paul,
keep the visit that took place, make signing in impossible, and be audited; a wrong
password changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts import services as accounts
from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import ApiToken, Consent, User
from rdv.accounts.privacy import (
    DELETED_EMAIL_DOMAIN,
    EXPORT_VERSION,
    delete_account,
    export_account_data,
    purge_expired_records,
)
from rdv.audit import services as audit
from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.core.errors import Conflict, NotAuthenticated, PermissionDenied, ValidationError
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus
from tests.conftest import NOW, PASSWORD, Cast, local, make_slot, signed_in_token


def verified(user: User) -> User:
    user.email_verified_at = local(2026, 11, 1, 9, 0)
    user.save(update_fields=["email_verified_at"])
    return user


def book(user: User, patient: Patient, slot: Slot, *, at: datetime = NOW, reason: str = "") -> int:
    """Book as the patient would have, at that moment."""
    with clock.frozen_now(at):
        appointment = scheduling.book_appointment(
            user=verified(user), slot_id=slot.pk, patient_id=patient.pk, reason=reason
        )
    return appointment.pk


def give_health_card(patient: Patient) -> str:
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    number = f"{letters}{patient.date_of_birth:%y%m%d}11"
    set_health_card(patient=patient, ramq_number=number, card_sequence_number="01", actor=None)
    return number


def staff_viewed(cast: Cast, patient: Patient) -> None:
    audit.record(
        "patient.view",
        actor=cast.sophie,
        role="receptionist",
        subject=audit.Subject(
            object_type="patient",
            object_id=str(patient.pk),
            patient_id=patient.pk,
            clinic_id=cast.laval.pk,
        ),
    )


# --- Export ---------------------------------------------------------------------------------


def test_the_export_holds_every_one_of_my_people_decrypted_and_nothing_of_others(
    cast: Cast,
) -> None:
    lea_card = give_health_card(cast.lea)
    cast.lea.phone = "+1 450 555-0199"
    cast.lea.save(update_fields=["phone"])
    give_health_card(cast.paul_self)
    tomorrow = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))
    book(cast.marie, cast.lea, tomorrow, reason="Otite")
    book(
        cast.paul, cast.paul_self, make_slot(cast.dr_roy, local(2026, 11, 24, 10, 0)), reason="Dos"
    )
    staff_viewed(cast, cast.lea)
    staff_viewed(cast, cast.paul_self)

    data = export_account_data(cast.marie)

    assert (data["format"], data["version"]) == ("rdv-sante/account-export", EXPORT_VERSION)
    assert data["account"]["email"] == "marie@example.test"
    patients = {p["first_name"]: p for p in data["patients"]}
    assert set(patients) == {"Marie", "Léa"}
    assert patients["Léa"]["ramq_number"] == lea_card
    assert patients["Léa"]["card_sequence_number"] == "01"
    assert patients["Léa"]["phone"] == "+1 450 555-0199"
    assert patients["Léa"]["date_of_birth"] == "2023-06-01"
    assert patients["Léa"]["family_doctor"] == {"name": "Dr Jean Roy", "clinic": "GMF Laval"}
    [appointment] = data["appointments"]
    assert appointment["reason"] == "Otite"
    assert appointment["start"] == "2026-11-24T09:00:00-05:00"
    assert appointment["clinic"]["name"] == "GMF Laval"
    assert (appointment["status"], appointment["type"]) == ("booked", "urgent")
    assert [(e["action"], e["patient_first_name"]) for e in data["access_log"]] == [
        ("patient.view", "Léa")
    ]
    text = json.dumps(data, ensure_ascii=False)
    assert "Paul" not in text
    assert "Dos" not in text
    assert "paul@example.test" not in text


def test_an_export_is_audited(cast: Cast) -> None:
    export_account_data(cast.marie)
    entry = AuditEntry.objects.get(action="privacy.export")
    assert (entry.actor_id, entry.actor_role, entry.object_id) == (
        cast.marie.pk,
        "patient",
        str(cast.marie.pk),
    )


# --- Deletion ---------------------------------------------------------------------------


@pytest.fixture
def marie_history(cast: Cast) -> dict[str, int]:
    """A visit Léa had (booked weeks ago), and one Marie has tomorrow, booked two days ago
    (so it is within the clinic's 24-hour cut-off and past the grace period)."""
    past = book(
        cast.marie,
        cast.lea,
        make_slot(cast.dr_roy, local(2026, 11, 10, 9, 0)),
        at=local(2026, 11, 2, 8, 0),
        reason="Vaccin",
    )
    upcoming_slot = make_slot(cast.dr_roy, local(2026, 11, 23, 16, 0))
    upcoming = book(cast.marie, cast.marie_self, upcoming_slot, at=local(2026, 11, 21, 8, 0))
    return {"past": past, "upcoming": upcoming, "upcoming_slot": upcoming_slot.pk}


def test_deleting_frees_an_upcoming_time_even_within_the_cutoff(
    cast: Cast, marie_history: dict[str, int]
) -> None:
    with pytest.raises(Conflict) as too_late:
        scheduling.cancel_appointment(user=cast.marie, appointment_id=marie_history["upcoming"])
    assert too_late.value.code == "cutoff_passed"

    delete_account(cast.marie, PASSWORD)

    upcoming = Appointment.objects.get(pk=marie_history["upcoming"])
    assert upcoming.status == AppointmentStatus.CANCELLED
    assert Slot.objects.get(pk=marie_history["upcoming_slot"]).status == SlotStatus.FREE
    paul_booking = book(cast.paul, cast.paul_self, upcoming.slot)
    assert Appointment.objects.get(pk=paul_booking).slot_id == marie_history["upcoming_slot"]


def test_deleting_keeps_past_visits_and_their_patient_but_not_what_they_no_longer_need(
    cast: Cast, marie_history: dict[str, int]
) -> None:
    cast.lea.phone = "+1 450 555-0199"
    cast.lea.save(update_fields=["phone"])

    delete_account(cast.marie, PASSWORD)

    past = Appointment.objects.get(pk=marie_history["past"])
    assert (past.status, past.reason) == (AppointmentStatus.BOOKED, "Vaccin")
    lea = Patient.objects.get(pk=cast.lea.pk)
    assert (lea.first_name, lea.date_of_birth.isoformat()) == ("Léa", "2023-06-01")
    assert (lea.phone, lea.family_doctor_id) == ("", None)
    # Marie herself keeps a row only because of her (cancelled) booking.
    assert Patient.objects.filter(pk=cast.marie_self.pk).exists()


def test_people_who_never_had_an_appointment_are_erased(cast: Cast) -> None:
    delete_account(cast.marie, PASSWORD)
    assert not Patient.objects.filter(account=cast.marie).exists()
    assert Patient.objects.filter(pk=cast.paul_self.pk).exists()


def test_after_deletion_nobody_can_sign_in_and_the_identity_is_gone(cast: Cast) -> None:
    signed_in_token(cast.marie)
    provision_confirmed_totp(cast.marie)
    client = Client()
    client.force_login(cast.marie)

    delete_account(cast.marie, PASSWORD)

    with pytest.raises(NotAuthenticated):
        accounts.sign_in(email="marie@example.test", password=PASSWORD)
    marie = User.objects.get(pk=cast.marie.pk)
    assert marie.email == f"deleted-{marie.pk}@{DELETED_EMAIL_DOMAIN}"
    assert (marie.first_name, marie.last_name, marie.is_active) == ("", "", False)
    assert not marie.has_usable_password()
    assert not ApiToken.objects.filter(user=marie).exists()
    assert not TOTPDevice.objects.filter(user=marie).exists()
    assert not any(s.get_decoded().get(SESSION_KEY) == str(marie.pk) for s in Session.objects.all())
    assert client.get("/mes-rendez-vous/").status_code == 302  # to the sign-in page
    # Another person may now use the address.
    assert not User.objects.filter(email="marie@example.test").exists()


def test_deleting_releases_the_time_the_account_was_holding(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    scheduling.hold_slot(user=cast.marie, slot_id=slot.pk, patient_id=cast.marie_self.pk)
    delete_account(cast.marie, PASSWORD)
    slot.refresh_from_db()
    assert (slot.hold_owner_id, slot.hold_expires_at) == (None, None)


def test_deletion_is_audited(cast: Cast, marie_history: dict[str, int]) -> None:
    delete_account(cast.marie, PASSWORD)
    deletion = AuditEntry.objects.get(action="account.delete")
    assert (deletion.actor_id, deletion.actor_role, deletion.outcome) == (
        cast.marie.pk,
        "patient",
        "success",
    )
    cancel = AuditEntry.objects.get(action="appointment.cancel")
    assert cancel.object_id == str(marie_history["upcoming"])


def test_a_wrong_password_changes_nothing(cast: Cast, marie_history: dict[str, int]) -> None:
    entries = AuditEntry.objects.count()
    with pytest.raises(ValidationError) as refused:
        delete_account(cast.marie, "not my password")
    assert refused.value.field == "password"
    marie = User.objects.get(pk=cast.marie.pk)
    assert (marie.email, marie.is_active, marie.check_password(PASSWORD)) == (
        "marie@example.test",
        True,
        True,
    )
    assert Appointment.objects.get(pk=marie_history["upcoming"]).status == "booked"
    assert Patient.objects.filter(account=marie).count() == 2
    assert AuditEntry.objects.count() == entries


def test_clinic_staff_cannot_delete_their_account_here(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        delete_account(cast.sophie, PASSWORD)
    assert User.objects.get(pk=cast.sophie.pk).is_active


# --- Purge after the retention period ---------------------------------------------------


def test_the_purge_waits_for_the_retention_period_then_destroys_what_is_left(
    cast: Cast, marie_history: dict[str, int]
) -> None:
    paul_past = book(
        cast.paul,
        cast.paul_self,
        make_slot(cast.dr_roy, local(2026, 11, 12, 9, 0)),
        at=local(2026, 11, 2, 8, 0),
    )
    delete_account(cast.marie, PASSWORD)

    assert purge_expired_records().patients == 0
    assert Appointment.objects.filter(pk=marie_history["past"]).exists()

    # Marie's cancelled booking was the last one (23 November 2026, 16:30): 1096 days on.
    with clock.frozen_now(local(2029, 11, 24, 17, 0)):
        result = purge_expired_records()
        assert (result.patients, result.appointments, result.accounts) == (2, 2, 1)
        assert purge_expired_records().patients == 0  # idempotent

    assert not Patient.objects.filter(pk__in=[cast.lea.pk, cast.marie_self.pk]).exists()
    assert not Appointment.objects.filter(patient__account_id=cast.marie.pk).exists()
    assert not User.objects.filter(pk=cast.marie.pk).exists()
    assert not Consent.objects.filter(user_id=cast.marie.pk).exists()
    # An active account's history is not touched, however old.
    assert Appointment.objects.filter(pk=paul_past).exists()
    assert AuditEntry.objects.filter(action="privacy.purge").count() == 3


def test_the_purge_command_reports_what_it_did(
    cast: Cast, capsys: pytest.CaptureFixture[str]
) -> None:
    delete_account(cast.marie, PASSWORD)  # no appointment: nothing left but the account row
    call_command("purge_expired_records")
    assert "0 patient(s), 0 appointment(s) and 1 account row(s)" in capsys.readouterr().out
    assert not User.objects.filter(pk=cast.marie.pk).exists()


def test_the_retention_is_counted_from_the_last_appointment(
    cast: Cast, marie_history: dict[str, int]
) -> None:
    delete_account(cast.marie, PASSWORD)
    just_before = local(2026, 11, 23, 16, 30) + timedelta(days=3 * 365 + 1) - timedelta(hours=1)
    with clock.frozen_now(just_before):
        assert purge_expired_records().patients == 1  # Léa's last visit was on 10 November
    assert Patient.objects.filter(pk=cast.marie_self.pk).exists()
    assert not Patient.objects.filter(pk=cast.lea.pk).exists()
