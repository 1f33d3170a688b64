"""Marie keeps her file up to date and manages the family members she books for.

Every change is one service call: all of it is written, encrypted and audited, or nothing
is. Paul, another patient, never reaches Marie's people.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from rdv.accounts.models import User
from rdv.accounts.services import update_preferences
from rdv.audit.models import AuditEntry
from rdv.core import clock, crypto
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.patients import services
from rdv.patients.models import Patient
from rdv.patients.queries import eligible_family_doctors
from rdv.patients.ramq import ramq_blind_index
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, Slot
from tests.conftest import NOW, Cast, local, make_slot
from tests.factories import PractitionerFactory

BORN = date(1988, 4, 12)
RAMQ = "TREM88041211"  # Marie Tremblay, born 1988-04-12


def raw_row(pk: int) -> dict[str, Any]:
    """Marie's patient row as the database stores it, without the ORM's fields."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM patients_patient WHERE id = %s", [pk])
        columns = [column[0] for column in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


def audit_rows(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def marie_as_herself(cast: Cast, **changes: Any) -> Patient:
    """Marie's own file as in the story: Tremblay, born 1988-04-12, with her card."""
    values: dict[str, Any] = {
        "user": cast.marie,
        "patient": cast.marie_self,
        "first_name": "Marie",
        "last_name": "Tremblay",
        "last_name_at_birth": "",
        "date_of_birth": BORN,
        "family_doctor_id": cast.dr_roy.pk,
        "ramq_number": "trem 8804 1211",
        "card_sequence_number": "01",
        "phone": "450 555-0142",
    }
    return services.update_patient(**{**values, **changes})


def verified(user: User) -> User:
    user.email_verified_at = local(2026, 11, 1, 9, 0)
    user.save(update_fields=["email_verified_at"])
    return user


def book(user: User, patient: Patient, slot: Slot, *, at: datetime = NOW) -> Appointment:
    with clock.frozen_now(at):
        return scheduling.book_appointment(
            user=verified(user), slot_id=slot.pk, patient_id=patient.pk
        )


# --- The profile ------------------------------------------------------------------------


def test_updating_the_profile_stores_health_data_encrypted_and_the_phone_in_e164(
    cast: Cast,
) -> None:
    marie = marie_as_herself(cast)
    again = Patient.objects.get(pk=marie.pk)
    assert (again.first_name, again.last_name, again.date_of_birth) == ("Marie", "Tremblay", BORN)
    assert again.phone == "+14505550142"
    assert (again.ramq_number, again.card_sequence_number) == (RAMQ, "01")
    assert again.ramq_blind_index == ramq_blind_index(RAMQ)
    row = raw_row(marie.pk)
    for column in ("date_of_birth", "ramq_number", "card_sequence_number", "phone"):
        assert row[column].startswith(f"v1.{crypto.key_ring().primary_kid}.")
    for secret in (RAMQ, "8804", "1988-04-12", "5550142", "555-0142"):
        assert secret not in repr(row)


def test_the_account_holders_names_are_the_accounts_too(cast: Cast) -> None:
    marie_as_herself(cast)
    cast.marie.refresh_from_db()
    assert (cast.marie.first_name, cast.marie.last_name) == ("Marie", "Tremblay")


def test_a_profile_change_is_audited_without_the_health_data(cast: Cast) -> None:
    marie = marie_as_herself(cast)
    (entry,) = audit_rows("patient.update")
    assert (entry.actor_id, entry.actor_role) == (cast.marie.pk, "patient")
    assert (entry.object_type, entry.object_id, entry.patient_id) == (
        "patient",
        str(marie.pk),
        marie.pk,
    )
    assert len(audit_rows("patient.health_card")) == 1
    stored = repr(list(AuditEntry.objects.values()))
    for secret in (RAMQ, "1988", "5550142"):
        assert secret not in stored


def test_changing_the_date_of_birth_rechecks_the_stored_number_and_writes_nothing_if_wrong(
    cast: Cast,
) -> None:
    marie_as_herself(cast)
    before = raw_row(cast.marie_self.pk)
    audited = AuditEntry.objects.count()
    with pytest.raises(ValidationError) as refused:
        # The form always sends the number back; the service also re-checks a kept one.
        marie_as_herself(cast, date_of_birth=date(1988, 4, 13), ramq_number=None)
    assert refused.value.field == "ramq_number"
    assert refused.value.code == "ramq_day_mismatch"
    assert raw_row(cast.marie_self.pk) == before
    assert AuditEntry.objects.count() == audited


def test_changing_the_name_needs_a_number_that_fits_the_new_name(cast: Cast) -> None:
    marie_as_herself(cast)
    with pytest.raises(ValidationError) as refused:
        marie_as_herself(cast, first_name="Anne")
    assert refused.value.code == "ramq_first_name_mismatch"
    renamed = marie_as_herself(cast, first_name="Anne", ramq_number="TREA 8804 1299")
    assert renamed.ramq_number == "TREA88041299"
    assert renamed.ramq_blind_index == ramq_blind_index("TREA88041299")


def test_the_surname_at_birth_is_what_the_number_is_checked_against(cast: Cast) -> None:
    married = marie_as_herself(
        cast, last_name="Roy", last_name_at_birth="Tremblay", ramq_number=RAMQ
    )
    assert (married.last_name, married.last_name_at_birth) == ("Roy", "Tremblay")


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"phone": "555"}, "phone", "phone_invalid"),
        ({"phone": "not a phone"}, "phone", "phone_invalid"),
        ({"phone": "+1 " + "5" * 40}, "phone", "phone_invalid"),
        ({"date_of_birth": date(2026, 11, 24)}, "date_of_birth", "future"),
        ({"date_of_birth": date(1906, 11, 22)}, "date_of_birth", "too_old"),
        ({"first_name": "   "}, "first_name", "required"),
        ({"ramq_number": "TREM8804"}, "ramq_number", "ramq_format"),
        ({"card_sequence_number": "1"}, "card_sequence_number", "card_sequence_format"),
        ({"ramq_number": "", "card_sequence_number": "02"}, "ramq_number", "ramq_missing"),
        ({"family_doctor_id": 10**9}, "family_doctor", "family_doctor"),
    ],
)
def test_bad_input_is_refused_on_its_field_and_nothing_is_written(
    cast: Cast, changes: dict[str, Any], field: str, code: str
) -> None:
    marie_as_herself(cast)
    before = raw_row(cast.marie_self.pk)
    with pytest.raises(ValidationError) as refused:
        marie_as_herself(cast, **changes)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert raw_row(cast.marie_self.pk) == before


def test_the_oldest_accepted_date_of_birth_is_120_years_ago_today(cast: Cast) -> None:
    oldest = date(1906, 11, 23)
    kept = marie_as_herself(cast, date_of_birth=oldest, ramq_number="", card_sequence_number="")
    assert kept.date_of_birth == oldest


def test_phone_numbers_are_read_as_canadian_unless_they_say_otherwise(cast: Cast) -> None:
    assert marie_as_herself(cast, phone="(514) 555-0123").phone == "+15145550123"
    assert marie_as_herself(cast, phone="1-514-555-0123").phone == "+15145550123"
    assert marie_as_herself(cast, phone="+33 6 12 34 56 78").phone == "+33612345678"
    assert marie_as_herself(cast, phone="").phone == ""


def test_removing_the_number_forgets_the_card_and_its_index(cast: Cast) -> None:
    marie_as_herself(cast)
    cleared = marie_as_herself(cast, ramq_number="", card_sequence_number="")
    assert (cleared.ramq_number, cleared.card_sequence_number, cleared.ramq_blind_index) == (
        "",
        "",
        "",
    )
    assert len(audit_rows("patient.health_card_removed")) == 1


def test_a_patient_keeps_or_removes_a_family_doctor_but_cannot_name_one(cast: Cast) -> None:
    """A family doctor's reserved slots open to their registered patients: registration is
    the clinic's to record, so a patient naming a doctor themself must be refused."""
    accepting = PractitionerFactory.create(clinic=cast.laval, accepting_new_patients=True)
    assert marie_as_herself(cast).family_doctor_id == cast.dr_roy.pk  # kept
    with pytest.raises(ValidationError) as refused:
        marie_as_herself(cast, family_doctor_id=accepting.pk)
    assert refused.value.field == "family_doctor"
    assert Patient.objects.get(pk=cast.marie_self.pk).family_doctor_id == cast.dr_roy.pk
    assert marie_as_herself(cast, family_doctor_id=None).family_doctor_id is None  # removed
    with pytest.raises(ValidationError):
        marie_as_herself(cast, family_doctor_id=cast.dr_roy.pk)  # no longer hers to name
    assert not eligible_family_doctors().exists()
    assert list(eligible_family_doctors(current_id=cast.dr_roy.pk)) == [cast.dr_roy]
    retired = PractitionerFactory.create(clinic=cast.laval, is_active=False)
    assert not eligible_family_doctors(current_id=retired.pk).exists()


def test_nobody_changes_a_patient_of_another_account(cast: Cast) -> None:
    with pytest.raises(NotFound):
        marie_as_herself(cast, user=cast.paul, patient=cast.lea)
    with pytest.raises(NotFound):
        marie_as_herself(cast, patient=cast.paul_self)
    assert not audit_rows("patient.update")


# --- Preferences ------------------------------------------------------------------------


def preferences(user: User, **changes: Any) -> User:
    values: dict[str, Any] = {
        "language": "fr",
        "notify_by_email": True,
        "notify_by_sms": False,
        "reminders": True,
    }
    return update_preferences(user=user, **{**values, **changes})


def test_text_messages_need_a_phone_number(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        preferences(cast.marie, notify_by_sms=True)
    assert (refused.value.field, refused.value.code) == ("notify_by_sms", "sms_needs_phone")
    marie_as_herself(cast)
    saved = preferences(cast.marie, language="en", notify_by_sms=True, reminders=False)
    again = User.objects.get(pk=cast.marie.pk)
    assert (again.preferred_language, again.notify_by_sms, again.reminders) == ("en", True, False)
    assert saved.notify_by_email
    (entry,) = audit_rows("account.preferences")
    assert (entry.actor_id, entry.actor_role, entry.object_id) == (
        cast.marie.pk,
        "patient",
        str(cast.marie.pk),
    )


def test_the_phone_that_receives_text_messages_cannot_just_be_removed(cast: Cast) -> None:
    marie_as_herself(cast)
    preferences(cast.marie, notify_by_sms=True)
    with pytest.raises(ValidationError) as refused:
        marie_as_herself(cast, phone="")
    assert refused.value.field == "phone"
    assert Patient.objects.get(pk=cast.marie_self.pk).phone == "+14505550142"


def test_someone_can_always_be_reached(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        preferences(cast.marie, notify_by_email=False)
    assert refused.value.field == "notify_by_email"
    with pytest.raises(ValidationError):
        preferences(cast.marie, language="de")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=cast.marie.pk).update(notify_by_email=False, notify_by_sms=False)


# --- Dependants -------------------------------------------------------------------------


def add_child(cast: Cast, **changes: Any) -> Patient:
    values: dict[str, Any] = {
        "user": cast.marie,
        "relationship": Patient.Relationship.CHILD,
        "first_name": "Noé",
        "last_name": "Tremblay",
        "date_of_birth": date(2021, 3, 9),
    }
    return services.add_dependant(**{**values, **changes})


def test_a_parent_adds_a_child_with_a_health_card(cast: Cast) -> None:
    noe = add_child(cast, ramq_number="TREN 2103 0912", card_sequence_number="01")
    again = Patient.objects.get(pk=noe.pk)
    assert (again.account_id, again.relationship) == (cast.marie.pk, "child")
    assert (again.ramq_number, again.ramq_blind_index) == (
        "TREN21030912",
        ramq_blind_index("TREN21030912"),
    )
    assert again.family_doctor_id is None
    assert "2021" not in repr(raw_row(noe.pk))
    (entry,) = audit_rows("patient.create")
    assert (entry.actor_id, entry.actor_role, entry.patient_id) == (
        cast.marie.pk,
        "patient",
        noe.pk,
    )
    assert [p.pk for p in services.dependants_of(cast.marie)] == [cast.lea.pk, noe.pk]


def test_a_child_whose_card_does_not_fit_is_not_added(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        add_child(cast, ramq_number="TREN 2103 1012")
    assert refused.value.field == "ramq_number"
    assert not Patient.objects.filter(first_name="Noé").exists()
    assert not audit_rows("patient.create")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"relationship": "self"}, "relationship"),
        ({"date_of_birth": date(2027, 1, 1)}, "date_of_birth"),
        ({"last_name": ""}, "last_name"),
        ({"family_doctor_id": 10**9}, "family_doctor"),
    ],
)
def test_a_dependant_with_bad_details_is_not_added(
    cast: Cast, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        add_child(cast, **changes)
    assert refused.value.field == field
    assert not Patient.objects.filter(first_name="Noé").exists()


def test_an_account_books_for_at_most_twelve_family_members(cast: Cast) -> None:
    for n in range(services.MAX_DEPENDANTS - 1):  # Léa is the first
        add_child(cast, first_name=f"Enfant{n}")
    with pytest.raises(ValidationError) as refused:
        add_child(cast)
    assert refused.value.code == "too_many_dependants"
    assert services.dependants_of(cast.marie).count() == services.MAX_DEPENDANTS


def test_a_dependant_is_edited_and_may_change_relationship_but_not_become_the_holder(
    cast: Cast,
) -> None:
    edited = services.update_patient(
        user=cast.marie,
        patient=cast.lea,
        first_name="Léa",
        last_name="Tremblay",
        last_name_at_birth="",
        date_of_birth=date(2023, 6, 1),
        family_doctor_id=None,
        relationship="other",
    )
    assert (edited.relationship, edited.family_doctor_id) == ("other", None)
    with pytest.raises(ValidationError) as refused:
        services.update_patient(
            user=cast.marie,
            patient=cast.lea,
            first_name="Léa",
            last_name="Tremblay",
            last_name_at_birth="",
            date_of_birth=date(2023, 6, 1),
            family_doctor_id=None,
            relationship="self",
        )
    assert refused.value.field == "relationship"
    assert Patient.objects.get(pk=cast.lea.pk).relationship == "other"
    # A dependant's names are theirs alone, never the account's.
    assert User.objects.get(pk=cast.marie.pk).last_name == cast.marie.last_name


def test_a_dependant_with_an_upcoming_appointment_cannot_be_removed(cast: Cast) -> None:
    book(cast.marie, cast.lea, make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0)))
    with pytest.raises(Conflict) as refused:
        services.remove_dependant(user=cast.marie, patient=cast.lea)
    assert refused.value.code == "dependant_has_upcoming_appointment"
    again = Patient.objects.get(pk=cast.lea.pk)
    assert again.archived_at is None
    assert again.family_doctor_id == cast.dr_roy.pk
    assert not audit_rows("patient.remove")


def test_a_dependant_seen_before_is_archived_and_hidden_but_kept(cast: Cast) -> None:
    Patient.objects.filter(pk=cast.lea.pk).update(phone="+14505550199")
    past = make_slot(cast.dr_roy, local(2026, 11, 10, 9, 0))
    visit = book(cast.marie, cast.lea, past, at=local(2026, 11, 1, 9, 0))
    services.remove_dependant(user=cast.marie, patient=cast.lea)
    kept = Patient.objects.get(pk=cast.lea.pk)
    assert kept.archived_at == NOW
    assert (kept.phone, kept.family_doctor_id) == ("", None)
    assert Appointment.objects.get(pk=visit.pk).patient_id == cast.lea.pk
    assert cast.lea.pk not in [p.pk for p in services.dependants_of(cast.marie)]
    (entry,) = audit_rows("patient.remove")
    assert (entry.actor_id, entry.patient_id) == (cast.marie.pk, cast.lea.pk)
    with pytest.raises(NotFound):
        services.remove_dependant(user=cast.marie, patient=cast.lea)
    with pytest.raises(NotFound):
        marie_as_herself(cast, patient=cast.lea)


def test_a_cancelled_appointment_is_history_too(cast: Cast) -> None:
    appointment = book(cast.marie, cast.lea, make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0)))
    scheduling.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    services.remove_dependant(user=cast.marie, patient=cast.lea)
    assert Patient.objects.get(pk=cast.lea.pk).archived_at is not None


def test_a_dependant_never_seen_is_deleted(cast: Cast) -> None:
    noe = add_child(cast)
    services.remove_dependant(user=cast.marie, patient=noe)
    assert not Patient.objects.filter(pk=noe.pk).exists()
    assert audit_rows("patient.remove")[0].patient_id == noe.pk


def test_the_holder_cannot_remove_themself_nor_another_accounts_people(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        services.remove_dependant(user=cast.marie, patient=cast.marie_self)
    with pytest.raises(NotFound):
        services.remove_dependant(user=cast.paul, patient=cast.lea)
    assert Patient.objects.filter(pk__in=[cast.marie_self.pk, cast.lea.pk]).count() == 2
    assert not audit_rows("patient.remove")


def test_the_database_never_archives_an_account_holder(cast: Cast) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.filter(pk=cast.marie_self.pk).update(archived_at=NOW)
