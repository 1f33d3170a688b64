from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from rdv.api.auth import BearerToken, request_user
from rdv.api.schemas import ErrorEnvelope
from rdv.audit.queries import access_log_for, describe_access

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
    entries = access_log_for(request_user(request))[: params.limit]
    return [AccessOut(**asdict(record)) for record in describe_access(entries)]
