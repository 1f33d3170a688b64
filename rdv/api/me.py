from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from rdv.accounts.models import User
from rdv.api.auth import BearerToken, request_user
from rdv.api.schemas import ErrorEnvelope, local
from rdv.audit.queries import access_log_for
from rdv.clinics.models import Clinic
from rdv.patients.models import Patient

router = Router(tags=["me"], auth=BearerToken())


class AccessOut(Schema):
    at: datetime
    action: str
    outcome: str
    staff_name: str
    staff_role: str
    clinic: str | None
    patient_id: int | None
    patient_first_name: str | None


class AccessLogQuery(Schema):
    limit: int = Field(100, ge=1, le=500)


@router.get(
    "/me/access-log", response={200: list[AccessOut], 401: ErrorEnvelope, 422: ErrorEnvelope}
)
def access_log(request: HttpRequest, params: Query[AccessLogQuery]) -> list[AccessOut]:
    """Who, at which clinic, viewed or changed the files of the people I manage (Law 25)."""
    entries = list(access_log_for(request_user(request))[: params.limit])
    staff = User.objects.in_bulk({e.actor_id for e in entries if e.actor_id is not None})
    clinics = Clinic.objects.in_bulk({e.clinic_id for e in entries if e.clinic_id is not None})
    patients = Patient.objects.in_bulk({e.patient_id for e in entries if e.patient_id is not None})
    out = []
    for entry in entries:
        person = staff.get(entry.actor_id) if entry.actor_id is not None else None
        clinic = clinics.get(entry.clinic_id) if entry.clinic_id is not None else None
        patient = patients.get(entry.patient_id) if entry.patient_id is not None else None
        out.append(
            AccessOut(
                at=local(entry.occurred_at),
                action=entry.action,
                outcome=entry.outcome,
                staff_name=f"{person.first_name} {person.last_name}".strip() if person else "",
                staff_role=entry.actor_role,
                clinic=clinic.name if clinic else None,
                patient_id=entry.patient_id,
                patient_first_name=patient.first_name if patient else None,
            )
        )
    return out
