"""The one door to a user's patients: every lookup by id goes through here."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.clinics.models import Practitioner
from rdv.core.errors import NotFound
from rdv.patients.models import Patient
from rdv.patients.ramq import normalise_ramq, ramq_blind_index


def patient_for_user(user: User, patient_id: int | None = None) -> Patient:
    """The patient `user` manages with this id, or the user themself when id is None.

    Someone else's patient answers NotFound, exactly like an id that does not exist, and
    so does a family member the account removed (kept only for the clinics' records).
    """
    patients = bookable_patients(user)
    if patient_id is None:
        found = patients.filter(relationship=Patient.Relationship.SELF).first()
    else:
        found = patients.filter(pk=patient_id).first()
    if found is None:
        raise NotFound(_("Patient not found."), code="patient_not_found")
    return found


def bookable_patients(user: User) -> QuerySet[Patient]:
    """The people this account books for now: itself and the family members not removed."""
    return Patient.objects.filter(account=user, archived_at__isnull=True).order_by("pk")


def own_patient(user: User) -> Patient | None:
    """The user's own patient record, if they have one (clinic staff may not)."""
    return Patient.objects.filter(account=user, relationship=Patient.Relationship.SELF).first()


def patients_with_ramq(number: str) -> QuerySet[Patient]:
    """Every patient record holding this RAMQ number (several accounts may book for one
    person), found through the blind index. Not scoped: a caller acting for clinic staff
    must scope the result to its clinic."""
    normalised = normalise_ramq(number)
    if not normalised:
        return Patient.objects.none()
    return Patient.objects.filter(ramq_blind_index=ramq_blind_index(normalised))


# Who takes patients on their list (GAMF): family doctors and nurse practitioners (IPS).
FAMILY_DOCTOR_PROFESSIONS = (
    Practitioner.Profession.FAMILY_DOCTOR,
    Practitioner.Profession.NURSE_PRACTITIONER,
)


def eligible_family_doctors(*, current_id: int | None = None) -> QuerySet[Practitioner]:
    """The family doctor a patient may keep: only their present one, while active.

    A patient cannot name a new family doctor themself: a family doctor's reserved slots are
    visible to their registered patients, so registration is recorded by the doctor's
    clinic (the clinic portal), never self-declared. A patient may keep or remove theirs.
    """
    if current_id is None:
        return Practitioner.objects.none()
    return Practitioner.objects.filter(
        pk=current_id,
        is_active=True,
        clinic__is_active=True,
        profession__in=FAMILY_DOCTOR_PROFESSIONS,
    ).select_related("clinic")
