"""A patient's rights over their data (Quebec Law 25): a copy of it, and its deletion.

- `export_account_data`: everything the platform holds about an account and the people it
  manages, decrypted, as a versioned JSON structure (docs/privacy.md describes it).
- `delete_account`: the login identity is destroyed at once; the appointments that have
  taken place (and the patients they name) are kept for PRIVACY_RETENTION_DAYS after the
  last one, then `purge_expired_records` destroys them.

Each public function is one transaction and appends its audit entry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import transaction
from django.db.models import Max, ProtectedError, Q
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts.models import (
    ApiToken,
    EmailVerificationCode,
    EnrolmentCode,
    Passkey,
    RecoveryCode,
    User,
    WebAuthnChallenge,
)
from rdv.accounts.queries import is_staff_member
from rdv.audit import services as audit
from rdv.audit.queries import access_log_for, describe_access
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied, ValidationError
from rdv.finder import services as finder
from rdv.notifications import services as notifications
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment
from rdv.scheduling.queries import appointments_for_user

EXPORT_FORMAT = "rdv-sante/account-export"
EXPORT_VERSION = 1
# RFC 2606 reserves .invalid: an address there can never receive mail or be registered.
DELETED_EMAIL_DOMAIN = "deleted.invalid"
PATIENT_ROLE = "patient"
SYSTEM_ROLE = "system"
PURGE_BATCH = 500


# --- Export (portability) ------------------------------------------------------------------


def _instant(moment: datetime | None) -> str | None:
    """ISO 8601 in Quebec local time, with its UTC offset."""
    return moment.astimezone(clock.LOCAL_TZ).isoformat() if moment is not None else None


def _day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _account(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "preferred_language": user.preferred_language,
        "date_joined": _instant(user.date_joined),
        "email_verified_at": _instant(user.email_verified_at),
    }


def _consents(user: User) -> list[dict[str, Any]]:
    return [
        {
            "document": consent.document,
            "version": consent.version,
            "language": consent.language,
            "accepted_at": _instant(consent.accepted_at),
        }
        for consent in user.consents.order_by("accepted_at", "pk")
    ]


def _patients(user: User) -> list[dict[str, Any]]:
    patients = (
        Patient.objects.filter(account=user).select_related("family_doctor__clinic").order_by("pk")
    )
    return [
        {
            "id": patient.pk,
            "relationship": patient.relationship,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "last_name_at_birth": patient.last_name_at_birth,
            "date_of_birth": _day(patient.date_of_birth),
            "ramq_number": patient.ramq_number,
            "card_sequence_number": patient.card_sequence_number,
            "phone": patient.phone,
            "family_doctor": (
                {
                    "name": patient.family_doctor.display_name,
                    "clinic": patient.family_doctor.clinic.name,
                }
                if patient.family_doctor is not None
                else None
            ),
            "created_at": _instant(patient.created_at),
        }
        for patient in patients
    ]


def _appointments(user: User) -> list[dict[str, Any]]:
    return [
        {
            "id": appointment.pk,
            "patient_id": appointment.patient_id,
            "clinic": {
                "name": appointment.slot.clinic.name,
                "address": appointment.slot.clinic.address,
                "municipality": appointment.slot.clinic.municipality_name,
            },
            "practitioner": appointment.slot.practitioner.display_name,
            "start": _instant(appointment.slot.start),
            "end": _instant(appointment.slot.end),
            "type": appointment.slot.appointment_type,
            "status": appointment.status,
            "reason": appointment.reason,
            "cancellation_reason": appointment.cancellation_reason,
            "booked_at": _instant(appointment.created_at),
            "cancelled_at": _instant(appointment.cancelled_at),
            "cancelled_by": appointment.cancelled_by,
        }
        for appointment in appointments_for_user(user)
    ]


def _access_log(user: User) -> list[dict[str, Any]]:
    records = describe_access(access_log_for(user))
    return [{**asdict(record), "at": _instant(record.at)} for record in records]


def export_account_data(user: User) -> dict[str, Any]:
    """Everything held about the account and the people it manages, ready for json.dumps.

    Health data is decrypted; nothing of another account is included (every part is read
    through the account). Instants are ISO 8601 with their offset, in Quebec time. The
    structure is versioned (`format`, `version`; docs/privacy.md). The export is audited.
    """
    with transaction.atomic():
        data = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "generated_at": _instant(clock.now()),
            "account": _account(user),
            "consents": _consents(user),
            "patients": _patients(user),
            "appointments": _appointments(user),
            "access_log": _access_log(user),
        }
        audit.record(
            "privacy.export", actor=user, role=PATIENT_ROLE, subject=_account_subject(user)
        )
    return data


def _account_subject(user: User) -> audit.Subject:
    return audit.Subject(object_type="account", object_id=str(user.pk))


# --- Deletion --------------------------------------------------------------------------


def check_may_delete(user: User) -> None:
    """Staff accounts are closed by their clinic, never from the patient pages: their
    memberships and second factors belong to the clinic's security, not to a patient."""
    if is_staff_member(user):
        raise PermissionDenied(
            _(
                "A clinic staff account cannot be deleted here. "
                "Ask your clinic administrator to close it."
            ),
            code="staff_account",
        )


def delete_account(user: User, password: str) -> None:
    """Destroy the login identity of a patient account, in one transaction.

    The password is asked again: a session left open is not enough. Then every upcoming
    appointment is cancelled and its slot freed (whatever the clinic's cut-off) and the
    account's hold released (rdv.scheduling.services); patients with no appointment are
    deleted; patients with appointments are kept, with what is no longer needed (phone,
    family doctor) removed, until `purge_expired_records`; the account's tokens, second
    factors, codes and sessions are deleted; the User row keeps only its id (appointments
    refer to it), with a placeholder address, no name, no usable password, inactive.
    A wrong password changes nothing.
    """
    check_may_delete(user)
    if not user.check_password(password):
        raise ValidationError(
            _("This is not your password."), field="password", code="wrong_password"
        )
    with transaction.atomic():
        locked = User.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
        if locked is None:
            raise NotFound(_("This account no longer exists."), code="account_not_found")
        # Again under the lock: an invitation accepted since the first check made this a
        # staff account (accepting locks the same row: rdv.clinics.staff.accept_invitation),
        # and an administrator's membership must never outlive their account.
        check_may_delete(locked)
        scheduling.release_bookings_of_closing_account(user=locked)
        finder.close_requests_of_closing_account(user=locked)
        _forget_patients(locked)
        notifications.forget_recipient(locked)
        _forget_credentials(locked)
        _end_sessions(locked)
        _anonymise(locked)
        audit.record(
            "account.delete", actor=locked, role=PATIENT_ROLE, subject=_account_subject(locked)
        )


def _forget_patients(user: User) -> None:
    patients = Patient.objects.filter(account=user)
    with_history = Appointment.objects.filter(patient__account=user).values("patient_id")
    patients.exclude(pk__in=with_history).delete()
    # Kept for the retention period: who was seen, when and where. How to reach them, and
    # whom they are registered with, served the account and go with it.
    patients.update(phone="", family_doctor=None)


def _forget_credentials(user: User) -> None:
    for model in (
        ApiToken,
        TOTPDevice,
        Passkey,
        RecoveryCode,
        EnrolmentCode,
        EmailVerificationCode,
        WebAuthnChallenge,
    ):
        model.objects.filter(user=user).delete()


def _end_sessions(user: User) -> None:
    """Delete the user's stored sessions (there is no index by user: each is read).

    They are dead already (the password hash they carry no longer matches, and the user is
    inactive); this removes them. Sessions kept outside the database (signed cookies, a
    cache) end by the same check.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        return
    user_id = str(user.pk)
    for session in store.get_model_class().objects.iterator():
        if session.get_decoded().get(SESSION_KEY) == user_id:
            store(session_key=session.session_key).delete()


def _anonymise(user: User) -> None:
    user.email = f"deleted-{user.pk}@{DELETED_EMAIL_DOMAIN}"
    user.first_name = ""
    user.last_name = ""
    user.set_unusable_password()
    user.is_active = False
    user.email_verified_at = None
    user.save(
        update_fields=[
            "email",
            "first_name",
            "last_name",
            "password",
            "is_active",
            "email_verified_at",
        ]
    )


# --- Purge after the retention period ---------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    patients: int
    appointments: int
    accounts: int


def _expired_patient_ids(cutoff: datetime) -> list[int]:
    """Patients of deleted accounts whose last appointment ended before `cutoff`."""
    return list(
        Patient.objects.filter(
            account__is_active=False, account__email__endswith=f"@{DELETED_EMAIL_DOMAIN}"
        )
        .annotate(last_end=Max("appointments__slot__end"))
        .filter(Q(last_end__lt=cutoff) | Q(last_end__isnull=True))
        .order_by("pk")
        .values_list("pk", flat=True)[:PURGE_BATCH]
    )


def _purge_batch(cutoff: datetime) -> tuple[int, int]:
    with transaction.atomic():
        ids = _expired_patient_ids(cutoff)
        if not ids:
            return 0, 0
        list(Patient.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        _total, by_model = Appointment.objects.filter(patient_id__in=ids).delete()
        Patient.objects.filter(pk__in=ids).delete()
        for patient_id in ids:
            audit.record(
                "privacy.purge",
                actor=None,
                role=SYSTEM_ROLE,
                subject=audit.Subject(
                    object_type="patient", object_id=str(patient_id), patient_id=patient_id
                ),
            )
    return len(ids), by_model.get(Appointment._meta.label, 0)


def _purge_empty_accounts() -> int:
    """Delete the rows of deleted accounts nothing refers to any more."""
    empty = (
        User.objects.filter(is_active=False, email__endswith=f"@{DELETED_EMAIL_DOMAIN}")
        .filter(patients__isnull=True)
        .exclude(pk__in=Appointment.objects.values("booked_by_id"))
        .values_list("pk", flat=True)
    )
    removed = 0
    for user_id in list(empty):
        try:
            with transaction.atomic():
                User.objects.filter(pk=user_id).delete()
                audit.record(
                    "privacy.purge",
                    actor=None,
                    role=SYSTEM_ROLE,
                    subject=audit.Subject(object_type="account", object_id=str(user_id)),
                )
        except ProtectedError:
            continue  # something added since still needs the row: a later run will retry
        removed += 1
    return removed


def purge_expired_records() -> PurgeResult:
    """Destroy what deleted accounts left behind once the retention period is over.

    A patient of a deleted account goes, with all their appointments, when their last
    appointment ended more than PRIVACY_RETENTION_DAYS ago; then the account row itself,
    once nothing refers to it. Idempotent, in batches (one transaction each), each
    destruction audited. The audit log keeps its entries: they hold ids, which then
    designate nobody.
    """
    cutoff = clock.now() - timedelta(days=settings.PRIVACY_RETENTION_DAYS)
    patients = appointments = 0
    while True:
        purged, removed = _purge_batch(cutoff)
        if not purged:
            break
        patients += purged
        appointments += removed
    return PurgeResult(
        patients=patients, appointments=appointments, accounts=_purge_empty_accounts()
    )
