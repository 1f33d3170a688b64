"""The agenda beyond one day (rdv.clinics.agenda) and registering patients with a family
doctor (rdv.patients.services.set_family_doctor)."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection

from rdv.audit.models import AuditEntry
from rdv.clinics import agenda
from rdv.clinics.models import Membership, Practitioner
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied
from rdv.patients.models import Patient
from rdv.patients.services import set_family_doctor
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Visibility
from rdv.scheduling.queries import visible_slot
from tests.conftest import Cast, local, make_slot, on_postgres
from tests.factories import PatientFactory, PractitionerFactory, UserFactory


def book(cast: Cast, user: Any, when: Any, practitioner: Practitioner | None = None) -> Appointment:
    slot = make_slot(practitioner or cast.dr_roy, when)
    return services.book_appointment(user=user, slot_id=slot.pk)


def reception(cast: Cast) -> StaffContext:
    return staff_context(cast.sophie, cast.laval.pk)


def doctor_account(cast: Cast, practitioner: Practitioner | None) -> StaffContext:
    user = UserFactory.create(email="roy@example.test")
    Membership.objects.create(
        user=user, clinic=cast.laval, role="practitioner", practitioner=practitioner
    )
    return staff_context(user, cast.laval.pk)


# --- The week --------------------------------------------------------------------------------


def test_monday_of_a_day() -> None:
    assert agenda.monday_of(date(2026, 11, 29)) == date(2026, 11, 23)  # a Sunday
    assert agenda.monday_of(date(2026, 11, 23)) == date(2026, 11, 23)


def test_a_week_is_seven_days_each_with_its_appointments(cast: Cast) -> None:
    monday = book(cast, cast.marie, local(2026, 11, 23, 9))
    sunday_night = book(cast, cast.paul, local(2026, 11, 29, 23, 30))
    book(cast, cast.paul, local(2026, 11, 30, 0, 0))  # the next week
    week = agenda.view_week(reception(cast), date(2026, 11, 23))
    assert [d.day for d in week] == [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]
    assert [a.pk for a in week[0].appointments] == [monday.pk]
    assert [a.pk for a in week[6].appointments] == [sunday_night.pk]
    assert all(not d.appointments for d in week[1:6])


def test_a_week_across_the_end_of_daylight_saving_time_keeps_local_days(cast: Cast) -> None:
    """Quebec falls back on Sunday 2026-11-01: the evening visit stays on its local day."""
    with clock.frozen_now(local(2026, 10, 26, 8)):
        late = book(cast, cast.marie, local(2026, 11, 1, 23, 0))
        week = agenda.view_week(reception(cast), date(2026, 10, 26))
    assert [a.pk for a in week[6].appointments] == [late.pk]


def test_a_week_of_one_practitioner(cast: Cast) -> None:
    book(cast, cast.marie, local(2026, 11, 24, 9))
    nurse = book(cast, cast.paul, local(2026, 11, 24, 10), cast.nurse_diane)
    week = agenda.view_week(
        reception(cast), date(2026, 11, 23), practitioner_id=cast.nurse_diane.pk
    )
    assert [a.pk for d in week for a in d.appointments] == [nurse.pk]


def test_each_patient_of_the_week_is_audited_once_per_half_hour_like_the_day(cast: Cast) -> None:
    first = book(cast, cast.marie, local(2026, 11, 24, 9))
    second = book(cast, cast.paul, local(2026, 11, 26, 9))
    ctx = reception(cast)
    agenda.view_week(ctx, date(2026, 11, 23))
    agenda.view_week(ctx, date(2026, 11, 23))  # the page refreshing itself
    viewed = AuditEntry.objects.filter(action="agenda.view", actor_id=cast.sophie.pk)
    assert sorted(viewed.values_list("object_id", flat=True)) == sorted(
        [str(first.pk), str(second.pk)]
    )
    assert {e.clinic_id for e in viewed} == {cast.laval.pk}


def test_a_week_never_shows_another_clinics_appointments(cast: Cast) -> None:
    book(cast, cast.paul, local(2026, 11, 24, 9), cast.montreal_doctor)
    week = agenda.view_week(reception(cast), date(2026, 11, 23))
    assert not [a for d in week for a in d.appointments]
    foreign = agenda.view_week(
        reception(cast), date(2026, 11, 23), practitioner_id=cast.montreal_doctor.pk
    )
    assert not [a for d in foreign for a in d.appointments]


# --- A practitioner's account and registered patients ----------------------------------------


def test_the_linked_practitioner_is_the_members_own(cast: Cast) -> None:
    assert agenda.linked_practitioner(doctor_account(cast, cast.dr_roy)) == cast.dr_roy
    assert agenda.linked_practitioner(reception(cast)) is None


def test_an_unlinked_practitioner_account_has_no_practitioner(cast: Cast) -> None:
    assert agenda.linked_practitioner(doctor_account(cast, None)) is None


def test_registered_patients_show_age_phone_and_visits_at_this_clinic_only(cast: Cast) -> None:
    marie = cast.marie_self
    marie.phone = "+14505550123"
    marie.save(update_fields=["phone"])
    with clock.frozen_now(local(2026, 11, 2, 8)):
        past = book(cast, cast.marie, local(2026, 11, 2, 9))
    with clock.frozen_now(local(2026, 11, 2, 9)):
        services.record_attendance(reception(cast), appointment_id=past.pk, status="arrived")
    with clock.frozen_now(local(2026, 11, 3, 8)):
        missed = book(cast, cast.marie, local(2026, 11, 3, 9))
    with clock.frozen_now(local(2026, 11, 3, 9, 30)):
        services.record_attendance(reception(cast), appointment_id=missed.pk, status="noshow")
    upcoming = book(cast, cast.marie, local(2026, 12, 1, 10))
    book(cast, cast.marie, local(2026, 11, 25, 10), cast.montreal_doctor)  # elsewhere
    listed = agenda.registered_patients(reception(cast), cast.dr_roy.pk)
    rows = {row.patient.pk: row for row in listed.rows}
    assert set(rows) == {cast.marie_self.pk, cast.lea.pk}
    row = rows[cast.marie_self.pk]
    born = cast.marie_self.date_of_birth
    expected_age = 2026 - born.year - ((born.month, born.day) > (11, 23))
    assert (row.age, row.phone) == (expected_age, "(450) 555-0123")
    assert row.last_visit == past.slot.start
    assert row.next_visit == upcoming.slot.start
    assert rows[cast.lea.pk].age == 3
    assert (rows[cast.lea.pk].last_visit, rows[cast.lea.pk].next_visit) == (None, None)


def test_each_registered_patient_shown_is_audited(cast: Cast) -> None:
    agenda.registered_patients(reception(cast), cast.dr_roy.pk)
    seen = AuditEntry.objects.filter(action="registered_patients.view", actor_id=cast.sophie.pk)
    assert set(seen.values_list("patient_id", flat=True)) == {cast.marie_self.pk, cast.lea.pk}
    assert seen.count() == 2


def test_registered_patients_are_paginated(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agenda, "REGISTERED_PAGE_SIZE", 1)
    first = agenda.registered_patients(reception(cast), cast.dr_roy.pk)
    second = agenda.registered_patients(reception(cast), cast.dr_roy.pk, page="2")
    assert first.page.paginator.num_pages == 2
    assert [len(first.rows), len(second.rows)] == [1, 1]
    assert first.rows[0].patient.pk != second.rows[0].patient.pk
    beyond = agenda.registered_patients(reception(cast), cast.dr_roy.pk, page="99")
    assert beyond.page.number == 2  # the last page, never an error
    assert AuditEntry.objects.filter(action="registered_patients.view").count() == 3


def test_an_archived_dependant_is_not_listed(cast: Cast) -> None:
    cast.lea.archived_at = clock.now()
    cast.lea.save(update_fields=["archived_at"])
    listed = agenda.registered_patients(reception(cast), cast.dr_roy.pk)
    assert [r.patient.pk for r in listed.rows] == [cast.marie_self.pk]


def test_another_clinics_practitioner_has_no_list_here(cast: Cast) -> None:
    with pytest.raises(NotFound):
        agenda.registered_patients(reception(cast), cast.montreal_doctor.pk)
    assert not AuditEntry.objects.filter(action="registered_patients.view").exists()


def test_a_practitioner_sees_their_own_list_only(cast: Cast) -> None:
    ctx = doctor_account(cast, cast.nurse_diane)
    assert agenda.registered_patients(ctx, cast.nurse_diane.pk).rows == []
    with pytest.raises(PermissionDenied):
        agenda.registered_patients(ctx, cast.dr_roy.pk)
    with pytest.raises(PermissionDenied):
        agenda.family_doctors(ctx)


def test_the_clinics_family_doctors_with_their_numbers(cast: Cast) -> None:
    ips = PractitionerFactory.create(
        clinic=cast.laval, profession=Practitioner.Profession.NURSE_PRACTITIONER
    )
    found = agenda.family_doctors(reception(cast))
    assert (cast.dr_roy, 2) in found
    assert (ips, 0) in found
    assert cast.nurse_diane not in [doctor for doctor, _ in found]  # no registered patients


# --- Registering a patient --------------------------------------------------------------------


def test_the_front_desk_registers_a_patient_who_then_sees_the_reserved_times(cast: Cast) -> None:
    reserved = make_slot(cast.dr_roy, local(2026, 11, 24, 9), visibility=Visibility.REGISTERED)
    with pytest.raises(NotFound):
        visible_slot(cast.paul, reserved.pk)
    patient = set_family_doctor(
        reception(cast),
        patient_id=cast.paul_self.pk,
        practitioner_id=cast.dr_roy.pk,
        registered=True,
    )
    assert patient.family_doctor_id == cast.dr_roy.pk
    assert visible_slot(cast.paul, reserved.pk) == reserved
    entry = AuditEntry.objects.get(action="patient.family_doctor")
    assert (entry.actor_id, entry.actor_role, entry.patient_id, entry.clinic_id) == (
        cast.sophie.pk,
        "receptionist",
        cast.paul_self.pk,
        cast.laval.pk,
    )


def test_registering_again_with_the_same_doctor_changes_nothing(cast: Cast) -> None:
    set_family_doctor(
        reception(cast),
        patient_id=cast.marie_self.pk,
        practitioner_id=cast.dr_roy.pk,
        registered=True,
    )
    assert not AuditEntry.objects.filter(action="patient.family_doctor").exists()


def test_a_patient_moves_between_this_clinics_doctors(cast: Cast) -> None:
    ips = PractitionerFactory.create(
        clinic=cast.laval, profession=Practitioner.Profession.NURSE_PRACTITIONER
    )
    moved = set_family_doctor(
        reception(cast), patient_id=cast.marie_self.pk, practitioner_id=ips.pk, registered=True
    )
    assert moved.family_doctor_id == ips.pk


@pytest.mark.parametrize("change", ["inactive", "nurse"])
def test_only_an_active_family_doctor_or_nurse_practitioner_takes_patients(
    cast: Cast, change: str
) -> None:
    target = cast.nurse_diane
    if change == "inactive":
        target = cast.dr_roy
        Practitioner.objects.filter(pk=target.pk).update(is_active=False)
    with pytest.raises(Conflict):
        set_family_doctor(
            reception(cast),
            patient_id=cast.paul_self.pk,
            practitioner_id=target.pk,
            registered=True,
        )
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id is None


def test_a_patient_registered_at_another_clinic_is_not_taken_from_it(cast: Cast) -> None:
    Patient.objects.filter(pk=cast.paul_self.pk).update(family_doctor=cast.montreal_doctor)
    with pytest.raises(Conflict) as refused:
        set_family_doctor(
            reception(cast),
            patient_id=cast.paul_self.pk,
            practitioner_id=cast.dr_roy.pk,
            registered=True,
        )
    assert cast.montreal.name not in str(refused.value.message)
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id == cast.montreal_doctor.pk


def test_another_clinics_practitioner_is_not_found_whatever_the_change(cast: Cast) -> None:
    for registered in (True, False):
        with pytest.raises(NotFound):
            set_family_doctor(
                reception(cast),
                patient_id=cast.paul_self.pk,
                practitioner_id=cast.montreal_doctor.pk,
                registered=registered,
            )
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id is None


def test_unregistering_ends_only_a_registration_with_this_doctor(cast: Cast) -> None:
    ctx = reception(cast)
    with pytest.raises(NotFound):  # Paul is nobody's patient here
        set_family_doctor(
            ctx, patient_id=cast.paul_self.pk, practitioner_id=cast.dr_roy.pk, registered=False
        )
    with pytest.raises(NotFound):  # Marie is Dr Roy's, not the nurse's
        set_family_doctor(
            ctx,
            patient_id=cast.marie_self.pk,
            practitioner_id=cast.nurse_diane.pk,
            registered=False,
        )
    ended = set_family_doctor(
        ctx, patient_id=cast.marie_self.pk, practitioner_id=cast.dr_roy.pk, registered=False
    )
    assert ended.family_doctor_id is None
    assert AuditEntry.objects.filter(
        action="patient.family_doctor_removed", patient_id=cast.marie_self.pk
    ).exists()


def test_a_practitioner_does_not_register_patients(cast: Cast) -> None:
    ctx = doctor_account(cast, cast.dr_roy)
    with pytest.raises(PermissionDenied):
        set_family_doctor(
            ctx, patient_id=cast.paul_self.pk, practitioner_id=cast.dr_roy.pk, registered=True
        )
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id is None


def test_a_removed_dependant_or_closed_account_cannot_be_registered(cast: Cast) -> None:
    removed = PatientFactory.create(
        account=cast.paul, relationship=Patient.Relationship.CHILD, archived_at=clock.now()
    )
    for patient_id in (removed.pk, 987654321):
        with pytest.raises(NotFound):
            set_family_doctor(
                reception(cast),
                patient_id=patient_id,
                practitioner_id=cast.dr_roy.pk,
                registered=True,
            )


@pytest.mark.django_db(transaction=True)
def test_two_desks_registering_one_patient_at_once_leave_one_registration(cast: Cast) -> None:
    """Two receptionists register Paul at the same moment, with two doctors: both
    transactions finish (no deadlock), and he ends with one of them, audited twice."""
    if not on_postgres():
        pytest.skip("row locks: PostgreSQL")
    ips = PractitionerFactory.create(
        clinic=cast.laval, profession=Practitioner.Profession.NURSE_PRACTITIONER
    )
    contexts = [reception(cast), staff_context(cast.marc, cast.laval.pk)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def register(ctx: StaffContext, practitioner_id: int) -> None:
        try:
            barrier.wait()
            set_family_doctor(
                ctx, patient_id=cast.paul_self.pk, practitioner_id=practitioner_id, registered=True
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=register, args=(ctx, doctor))
        for ctx, doctor in zip(contexts, [cast.dr_roy.pk, ips.pk], strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id
    assert final in (cast.dr_roy.pk, ips.pk)
    assert AuditEntry.objects.filter(action="patient.family_doctor").count() == 2
