"""Every write to patients' health-card data. Each function is one transaction."""

from __future__ import annotations

from django.db import transaction

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.patients.models import Patient
from rdv.patients.ramq import (
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
