"""Every write to patients: health-card data, the profile, the people an account books
for. Each public function is one transaction and appends its audit entry (never the
health data itself)."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.clinics.models import FRONT_DESK_ROLES, Practitioner
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.patients.identity import identity_index
from rdv.patients.models import Patient, reachable_by
from rdv.patients.queries import (
    FAMILY_DOCTOR_PROFESSIONS,
    eligible_family_doctors,
    patients_with_ramq,
)
from rdv.patients.ramq import (
    normalise_ramq,
    ramq_blind_index,
    validate_card_sequence_number,
    validate_ramq,
)


def set_health_card(
    *,
    patient: Patient,
    ramq_number: str,
    card_sequence_number: str,
    actor: User | None = None,
) -> Patient:
    """Record the patient's RAMQ number and card sequence number, or change nothing.

    The number is checked against the patient's names and date of birth as stored (the
    row is locked, so they cannot change meanwhile); the surname at birth is `last_name`
    when none was given. Both values are written encrypted, together with the number's
    blind index, in one transaction: the index always matches the number. The change is
    audited; `actor` is who made it (None: the system, e.g. demo seeding).
    """
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        number = validate_ramq(
            ramq_number,
            last_name_at_birth=locked.last_name_at_birth or locked.last_name,
            first_name=locked.first_name,
            date_of_birth=locked.date_of_birth,
        )
        locked.ramq_number = number
        locked.card_sequence_number = validate_card_sequence_number(card_sequence_number)
        locked.ramq_blind_index = ramq_blind_index(number)
        locked.save(update_fields=["ramq_number", "card_sequence_number", "ramq_blind_index"])
        audit.record(
            "patient.health_card",
            actor=actor,
            role=None if actor is not None else "system",
            subject=audit.Subject(
                object_type="patient", object_id=str(locked.pk), patient_id=locked.pk
            ),
        )
    return locked


# --- The profile and the people an account books for ---------------------------------------

PATIENT_ROLE = "patient"
MAX_DEPENDANTS = 12
MAX_AGE_YEARS = 120
NAME_MAX_LENGTH = 100
PHONE_MAX_LENGTH = 30
# Numbers are read as Canadian unless they start with "+" and a country code.
PHONE_REGION = "CA"
# An appointment still to come, or under way: removing its patient is refused.
UPCOMING_STATUSES = ("booked", "arrived")


def _subject(patient: Patient) -> audit.Subject:
    return audit.Subject(object_type="patient", object_id=str(patient.pk), patient_id=patient.pk)


def normalise_phone(text: str) -> str:
    """The number in E.164 ("+15145550123"), "" when blank; ValidationError when it is not
    a valid phone number. Typed any usual way; read as Canadian without a country code."""
    text = text.strip()
    if not text:
        return ""
    invalid = ValidationError(
        _("Enter a valid phone number, for example 514 555-0123."),
        field="phone",
        code="phone_invalid",
    )
    if len(text) > PHONE_MAX_LENGTH:
        raise invalid
    try:
        number = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise invalid from exc
    if not phonenumbers.is_valid_number(number):
        raise invalid
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_for_display(stored: str) -> str:
    """A stored E.164 number as people write it: national for Canada, else international."""
    try:
        number = phonenumbers.parse(stored, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return stored
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def _checked_family_doctor(doctor_id: int | None, *, current_id: int | None) -> int | None:
    if (
        doctor_id is None
        or eligible_family_doctors(current_id=current_id).filter(pk=doctor_id).exists()
    ):
        return doctor_id
    raise ValidationError(
        _("Choose a family doctor from the list."), field="family_doctor", code="family_doctor"
    )


def _clean_name(value: str, field: str, *, required: bool = True) -> str:
    cleaned = " ".join(value.split())
    if required and not cleaned:
        raise ValidationError(_("This field is required."), field=field, code="required")
    if len(cleaned) > NAME_MAX_LENGTH:
        raise ValidationError(
            _("Ensure this value has at most 100 characters."), field=field, code="too_long"
        )
    return cleaned


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def check_date_of_birth(day: date) -> date:
    """A date of birth that can be someone's: not in the future, at most 120 years ago."""
    today = clock.local_today()
    if day > today:
        raise ValidationError(
            _("The date of birth is in the future."), field="date_of_birth", code="future"
        )
    if day < _years_before(today, MAX_AGE_YEARS):
        raise ValidationError(
            _("The date of birth is more than 120 years ago."),
            field="date_of_birth",
            code="too_old",
        )
    return day


def _checked_card(
    ramq_number: str,
    card_sequence_number: str,
    *,
    first_name: str,
    last_name_at_birth: str,
    date_of_birth: date,
) -> tuple[str, str]:
    """The normalised (number, sequence number), ("", "") for none; ValidationError when
    the number does not fit this person or the sequence number has no number."""
    sequence = validate_card_sequence_number(card_sequence_number)
    if not normalise_ramq(ramq_number):
        if sequence:
            raise ValidationError(
                _("Enter the health insurance number that goes with this sequence number."),
                field="ramq_number",
                code="ramq_missing",
            )
        return "", ""
    number = validate_ramq(
        ramq_number,
        last_name_at_birth=last_name_at_birth,
        first_name=first_name,
        date_of_birth=date_of_birth,
    )
    return number, sequence


def remove_health_card(*, patient: Patient, actor: User | None = None) -> Patient:
    """Forget the patient's RAMQ number, sequence number and blind index, together."""
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        locked.ramq_number = ""
        locked.card_sequence_number = ""
        locked.ramq_blind_index = ""
        locked.save(update_fields=["ramq_number", "card_sequence_number", "ramq_blind_index"])
        audit.record(
            "patient.health_card_removed",
            actor=actor,
            role=None if actor is not None else "system",
            subject=_subject(locked),
        )
    return locked


def _store_card(patient: Patient, number: str, sequence: str, actor: User) -> Patient:
    """Write the card through its one write path when it changed; the row as it is now."""
    if (number, sequence) == (patient.ramq_number, patient.card_sequence_number):
        return patient
    if not number:
        return remove_health_card(patient=patient, actor=actor)
    return set_health_card(
        patient=patient, ramq_number=number, card_sequence_number=sequence, actor=actor
    )


def _lock_account(user: User) -> User:
    """The account row, locked: taken before any of its patients' rows (the order
    rdv.accounts.services.update_preferences also follows), so such changes never deadlock."""
    return User.objects.select_for_update().get(pk=user.pk)


def _lock_own_patient(account: User, patient_id: int) -> Patient:
    """The patient row, locked; NotFound unless `account` manages them (and still does)."""
    locked = (
        Patient.objects.select_for_update()
        .filter(pk=patient_id, account=account, archived_at__isnull=True)
        .first()
    )
    if locked is None:
        raise NotFound(_("Patient not found."), code="patient_not_found")
    return locked


def _check_relationship(patient: Patient, relationship: str | None) -> str:
    if relationship is None or relationship == patient.relationship:
        return patient.relationship
    if Patient.Relationship.SELF in (relationship, patient.relationship) or (
        relationship not in Patient.Relationship.values
    ):
        raise ValidationError(
            _("Choose child or other family member."), field="relationship", code="relationship"
        )
    return relationship


def _check_phone_kept_for_sms(user: User, patient: Patient, phone: str) -> None:
    if patient.relationship == Patient.Relationship.SELF and not phone and user.notify_by_sms:
        raise ValidationError(
            _(
                "You receive text messages at this number. Turn text messages off first, "
                "or give another number."
            ),
            field="phone",
            code="phone_needed_for_sms",
        )


def update_patient(
    *,
    user: User,
    patient: Patient,
    first_name: str,
    last_name: str,
    last_name_at_birth: str,
    date_of_birth: date,
    family_doctor_id: int | None,
    ramq_number: str | None = None,
    card_sequence_number: str | None = None,
    phone: str | None = None,
    relationship: str | None = None,
) -> Patient:
    """Change a patient `user` manages (themself or a dependant), all or nothing.

    `None` for the health card, phone or relationship keeps what is stored; "" removes the
    card or the phone. The RAMQ number, given or kept, is checked against the new names and
    date of birth: one that no longer matches refuses the whole change (field
    `ramq_number`). The phone is stored in E.164. The account holder's own names are also
    the account's. Someone else's or a removed patient answers NotFound. Audited as
    `patient.update` (and `patient.health_card` when the card changed).
    """
    with transaction.atomic():
        account = _lock_account(user)
        locked = _lock_own_patient(account, patient.pk)
        first = _clean_name(first_name, "first_name")
        last = _clean_name(last_name, "last_name")
        at_birth = _clean_name(last_name_at_birth, "last_name_at_birth", required=False)
        born = check_date_of_birth(date_of_birth)
        kind = _check_relationship(locked, relationship)
        number, sequence = _checked_card(
            locked.ramq_number if ramq_number is None else ramq_number,
            locked.card_sequence_number if card_sequence_number is None else card_sequence_number,
            first_name=first,
            last_name_at_birth=at_birth or last,
            date_of_birth=born,
        )
        new_phone = locked.phone if phone is None else normalise_phone(phone)
        _check_phone_kept_for_sms(account, locked, new_phone)
        doctor_id = _checked_family_doctor(family_doctor_id, current_id=locked.family_doctor_id)
        locked.first_name, locked.last_name, locked.last_name_at_birth = first, last, at_birth
        locked.date_of_birth, locked.phone, locked.relationship = born, new_phone, kind
        locked.family_doctor_id = doctor_id
        locked.save(
            update_fields=[
                "first_name",
                "last_name",
                "last_name_at_birth",
                "date_of_birth",
                "phone",
                "relationship",
                "family_doctor",
            ]
        )
        if kind == Patient.Relationship.SELF:
            account.first_name, account.last_name = first, last
            account.save(update_fields=["first_name", "last_name"])
            user.first_name, user.last_name = first, last
        locked = _store_card(locked, number, sequence, user)
        audit.record("patient.update", actor=user, role=PATIENT_ROLE, subject=_subject(locked))
    return locked


def dependants_of(user: User) -> QuerySet[Patient]:
    """The people `user` books for besides themself, oldest first (removed ones hidden)."""
    return (
        Patient.objects.filter(account=user, archived_at__isnull=True)
        .exclude(relationship=Patient.Relationship.SELF)
        .select_related("family_doctor__clinic")
        .order_by("pk")
    )


class NewPerson(NamedTuple):
    first_name: str
    last_name: str
    last_name_at_birth: str
    date_of_birth: date
    ramq_number: str
    card_sequence_number: str


def _checked_new_person(
    *,
    first_name: str,
    last_name: str,
    last_name_at_birth: str,
    date_of_birth: date,
    ramq_number: str,
    card_sequence_number: str,
) -> NewPerson:
    """A new patient's names, date of birth and health card, checked together as on a
    profile (the card must fit the names and the date): a dependant or a caller's file."""
    first = _clean_name(first_name, "first_name")
    last = _clean_name(last_name, "last_name")
    at_birth = _clean_name(last_name_at_birth, "last_name_at_birth", required=False)
    born = check_date_of_birth(date_of_birth)
    number, sequence = _checked_card(
        ramq_number,
        card_sequence_number,
        first_name=first,
        last_name_at_birth=at_birth or last,
        date_of_birth=born,
    )
    return NewPerson(first, last, at_birth, born, number, sequence)


def add_dependant(
    *,
    user: User,
    relationship: str,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    last_name_at_birth: str = "",
    ramq_number: str = "",
    card_sequence_number: str = "",
    family_doctor_id: int | None = None,
) -> Patient:
    """Add a child or other family member `user` books for, all or nothing.

    At most MAX_DEPENDANTS at a time (the account row is locked while counting, so two
    requests cannot both take the last place). The health card, if given, must fit the
    names and date of birth. Audited as `patient.create` (and `patient.health_card`).
    """
    if relationship not in (Patient.Relationship.CHILD, Patient.Relationship.OTHER):
        raise ValidationError(
            _("Choose child or other family member."), field="relationship", code="relationship"
        )
    first, last, at_birth, born, number, sequence = _checked_new_person(
        first_name=first_name,
        last_name=last_name,
        last_name_at_birth=last_name_at_birth,
        date_of_birth=date_of_birth,
        ramq_number=ramq_number,
        card_sequence_number=card_sequence_number,
    )
    with transaction.atomic():
        _lock_account(user)
        if dependants_of(user).count() >= MAX_DEPENDANTS:
            raise ValidationError(
                _("You can book for at most 12 family members. Remove one to add another."),
                code="too_many_dependants",
            )
        patient = Patient.objects.create(
            account=user,
            relationship=relationship,
            first_name=first,
            last_name=last,
            last_name_at_birth=at_birth,
            date_of_birth=born,
            family_doctor_id=_checked_family_doctor(family_doctor_id, current_id=None),
        )
        audit.record("patient.create", actor=user, role=PATIENT_ROLE, subject=_subject(patient))
        patient = _store_card(patient, number, sequence, user)
    return patient


def remove_dependant(*, user: User, patient: Patient) -> None:
    """Stop booking for a dependant. Refused for the account holder themself, and while
    they have an appointment to come (cancel it first). Someone never seen is deleted;
    someone with past appointments is kept for the clinics' records (retention) but
    archived: hidden from the account, with their phone and family doctor, which served
    only the account, forgotten. Audited as `patient.remove`."""
    with transaction.atomic():
        locked = _lock_own_patient(_lock_account(user), patient.pk)
        if locked.relationship == Patient.Relationship.SELF:
            raise PermissionDenied(
                _("You cannot remove yourself from your own account."), code="cannot_remove_self"
            )
        appointments = locked.appointments.all()
        if appointments.filter(status__in=UPCOMING_STATUSES, slot__end__gt=clock.now()).exists():
            raise Conflict(
                _(
                    "This person has an upcoming appointment. Cancel it first, then remove "
                    "them from your account."
                ),
                code="dependant_has_upcoming_appointment",
            )
        audit.record("patient.remove", actor=user, role=PATIENT_ROLE, subject=_subject(locked))
        # Their appointment-finder requests end here, a paid one refunded (deleting the
        # person would delete the request and keep the money).
        from rdv.finder.services import close_requests_of_patient  # noqa: PLC0415 (cycle)

        close_requests_of_patient(user=user, patient_id=locked.pk)
        if not appointments.exists():
            locked.delete()
            return
        locked.archived_at = clock.now()
        locked.phone = ""
        locked.family_doctor = None
        locked.save(update_fields=["archived_at", "phone", "family_doctor"])


# --- Registration with a family doctor (the clinic's front desk) ---------------------------


def set_family_doctor(
    ctx: StaffContext, *, patient_id: int, practitioner_id: int, registered: bool
) -> Patient:
    """Register a patient with one of the clinic's family doctors or nurse practitioners
    (`registered=True`), or end that registration (`registered=False`).

    The practitioner must be this clinic's (NotFound otherwise, whatever the role). To
    register, they must be active and take registered patients, and the patient must not be
    registered with a practitioner of another clinic: that registration is the patient's to
    end, from their profile. Unregistering ends only a registration with this practitioner
    (NotFound otherwise). The patient's row is locked after the practitioner's, the order
    rdv.clinics.services.update_practitioner locks them in; one transaction with its audit
    entry. Registering again with the same practitioner changes nothing.
    """
    with transaction.atomic():
        practitioner = (
            Practitioner.objects.select_for_update()
            .filter(pk=practitioner_id, clinic=ctx.clinic)
            .first()
        )
        if practitioner is None:
            raise NotFound(_("Practitioner not found."), code="practitioner_not_found")
        if ctx.role not in FRONT_DESK_ROLES:
            raise PermissionDenied(
                _("Only the front desk records the patients registered with a practitioner."),
                code="role",
            )
        # Only the patient's row: its account's is taken first by the patient's own
        # changes (_lock_account), so locking both here could deadlock with them.
        patient = (
            Patient.objects.select_for_update(of=("self",))
            .filter(reachable_by(ctx.clinic), pk=patient_id, archived_at__isnull=True)
            .first()
        )
        if patient is None or (not registered and patient.family_doctor_id != practitioner.pk):
            raise NotFound(_("Patient not found."), code="patient_not_found")
        if registered:
            if patient.family_doctor_id == practitioner.pk:
                return patient
            _check_may_register(practitioner, patient, ctx)
        patient.family_doctor = practitioner if registered else None
        patient.save(update_fields=["family_doctor"])
        audit.record(
            "patient.family_doctor" if registered else "patient.family_doctor_removed",
            actor=ctx.user,
            role=ctx.role,
            subject=audit.Subject(
                object_type="patient",
                object_id=str(patient.pk),
                patient_id=patient.pk,
                clinic_id=ctx.clinic.pk,
            ),
        )
    return patient


def _check_may_register(practitioner: Practitioner, patient: Patient, ctx: StaffContext) -> None:
    if not practitioner.is_active:
        raise Conflict(
            _("This practitioner is inactive: they cannot take registered patients."),
            code="practitioner_inactive",
        )
    if practitioner.profession not in FAMILY_DOCTOR_PROFESSIONS:
        raise Conflict(
            _("Only family doctors and nurse practitioners take registered patients."),
            code="not_a_family_doctor",
        )
    current = patient.family_doctor
    if current is not None and current.clinic_id != ctx.clinic.pk:
        raise Conflict(
            _(
                "This patient is registered with a family doctor at another clinic. They can "
                "end that registration from their profile; then register them here."
            ),
            code="registered_elsewhere",
        )


# --- Files the front desk creates for callers without an account ---------------------------


def _check_no_file_yet(ctx: StaffContext, number: str, first: str, last: str, born: date) -> None:
    """A caller the clinic can already find gets no second file: search for them instead."""
    people = Patient.objects.filter(reachable_by(ctx.clinic), archived_at__isnull=True)
    if number and people.filter(pk__in=patients_with_ramq(number).values("pk")).exists():
        raise Conflict(
            _(
                "Someone with this health insurance number is already on RDV Santé: find "
                "them by their number instead."
            ),
            field="ramq_number",
            code="caller_exists",
        )
    same = people.filter(identity_blind_index=identity_index(last, born))
    if not number and any(p.first_name.casefold() == first.casefold() for p in same):
        raise Conflict(
            _(
                "Someone with this name and date of birth is already on RDV Santé: find "
                "them by name and date of birth instead."
            ),
            code="caller_exists",
        )


def create_caller(
    ctx: StaffContext,
    *,
    first_name: str,
    last_name: str,
    last_name_at_birth: str,
    date_of_birth: date,
    ramq_number: str,
    card_sequence_number: str,
    phone: str,
) -> Patient:
    """The front desk creates the file of a caller who has no RDV Santé account: theirs
    to book, this clinic's alone (record_clinic), all or nothing.

    The same checks as a patient's own profile: names, a date of birth that can be
    someone's, a RAMQ number (optional: the caller may not have it at hand) that fits the
    names and date of birth, a phone stored in E.164 (their confirmations and reminders go
    there by text; none without one). Without a number, the one-upcoming-appointment-per-
    card rule cannot apply to them. Someone the clinic can already find (the card on an
    open account or on one of this clinic's files, or with no card the same names and
    date of birth) is a Conflict: find them instead; the unique (clinic, card) constraint
    settles two receptionists racing. Audited as `patient.create_record`.
    """
    if ctx.role not in FRONT_DESK_ROLES:
        raise PermissionDenied(_("Only the front desk books for patients."), code="role")
    first, last, at_birth, born, number, sequence = _checked_new_person(
        first_name=first_name,
        last_name=last_name,
        last_name_at_birth=last_name_at_birth,
        date_of_birth=date_of_birth,
        ramq_number=ramq_number,
        card_sequence_number=card_sequence_number,
    )
    phone_number = normalise_phone(phone)
    _check_no_file_yet(ctx, number, first, last, born)
    try:
        with transaction.atomic():
            patient = Patient.objects.create(
                record_clinic=ctx.clinic,
                relationship=Patient.Relationship.SELF,
                first_name=first,
                last_name=last,
                last_name_at_birth=at_birth,
                date_of_birth=born,
                phone=phone_number,
            )
            audit.record(
                "patient.create_record",
                actor=ctx.user,
                role=ctx.role,
                subject=audit.Subject(
                    object_type="patient",
                    object_id=str(patient.pk),
                    patient_id=patient.pk,
                    clinic_id=ctx.clinic.pk,
                ),
            )
            return _store_card(patient, number, sequence, ctx.user)
    except IntegrityError as exc:
        raise Conflict(
            _(
                "This clinic already has a file for this health insurance number: find "
                "the caller by their number instead."
            ),
            field="ramq_number",
            code="caller_exists",
        ) from exc
