"""What the API accepts and what it answers. Outgoing schemas name every field they send:
no model is ever serialised whole."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.conf import settings
from ninja import Field, Schema
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from rdv.core.clock import LOCAL_TZ


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def local(moment: datetime) -> datetime:
    """Instants go out in Quebec local time with their UTC offset."""
    return moment.astimezone(LOCAL_TZ)


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, str]


class ErrorEnvelope(Schema):
    error: ErrorOut


class TokenIn(Schema):
    email: Text = Field(..., max_length=254)
    password: Text = Field(..., max_length=1024)
    # Required for staff (and anyone with a second factor): an authenticator code or a
    # recovery code.
    otp: Text | None = Field(None, max_length=64)


class TokenOut(Schema):
    token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in_days: int


class EnrolmentTokenIn(Schema):
    email: Text = Field(..., max_length=254)
    password: Text = Field(..., max_length=1024)
    enrolment_code: Text = Field(..., max_length=64)


class EnrolmentTokenOut(Schema):
    token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in_minutes: int


class StepUpIn(Schema):
    """A current second factor, needed to change factors once one is set up."""

    otp: Text | None = Field(None, max_length=64)


class TotpEnrolmentOut(Schema):
    device_id: int
    provisioning_uri: str
    secret: str
    qr_svg: str


class TotpConfirmIn(Schema):
    code: Text = Field(..., max_length=16)


class RecoveryCodesOut(Schema):
    recovery_codes: list[str]


class WebAuthnOptionsOut(Schema):
    challenge_id: str
    options: dict[str, Any]


class PasskeyRegistrationIn(Schema):
    challenge_id: Text = Field(..., max_length=100)
    credential: dict[str, Any]
    name: Text = Field("", max_length=100)


class PasskeyOut(Schema):
    id: int
    name: str
    created_at: datetime
    recovery_codes: list[str]


class PasskeySignInIn(Schema):
    challenge_id: Text = Field(..., max_length=100)
    credential: dict[str, Any]


class MunicipalityOut(Schema):
    id: int
    name: str
    latitude: float
    longitude: float
    population: int


class ClinicOut(Schema):
    id: int
    name: str
    kind: str
    municipality: str
    address: str
    phone: str
    latitude: float
    longitude: float
    distance_km: float


class MunicipalityQuery(Schema):
    q: Text = Field("", max_length=100)
    limit: int = Field(10, ge=1, le=50)


class ClinicsQuery(Schema):
    near: Text = Field(..., min_length=1, max_length=100)
    radius_km: float = Field(25, gt=0, le=settings.SEARCH_MAX_RADIUS_KM)
    limit: int = Field(50, ge=1, le=300)


class AvailabilityParams(Schema):
    near: Text = Field(..., min_length=1, max_length=100)
    radius_km: float = Field(25, gt=0, le=settings.SEARCH_MAX_RADIUS_KM)
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to")
    type: Text | None = Field(None, max_length=20)
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    family_doctor: bool = False
    patient_id: int | None = Field(None, ge=1)
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1000)


class SlotClinicOut(Schema):
    id: int
    name: str
    municipality: str
    address: str
    distance_km: float


class PractitionerOut(Schema):
    id: int
    display_name: str
    profession: str
    languages: list[str]


class SlotOut(Schema):
    id: int
    start: datetime
    end: datetime
    type: str
    clinic: SlotClinicOut
    practitioner: PractitionerOut


class AvailabilityOut(Schema):
    place: str
    results: list[SlotOut]
    has_more: bool
    next_offset: int | None


class HoldOut(Schema):
    slot_id: int
    expires_at: datetime


class BookIn(Schema):
    slot_id: int = Field(..., ge=1)
    patient_id: int | None = Field(None, ge=1)
    reason: Text = Field("", max_length=1000)


class CancelIn(Schema):
    reason: Text = Field("", max_length=500)


class RescheduleIn(Schema):
    slot_id: int = Field(..., ge=1)


class AppointmentClinicOut(Schema):
    id: int
    name: str
    municipality: str
    address: str
    phone: str


class AppointmentPatientOut(Schema):
    id: int
    first_name: str


class AppointmentOut(Schema):
    id: int
    status: str
    start: datetime
    end: datetime
    type: str
    slot_id: int
    reason: str
    clinic: AppointmentClinicOut
    practitioner: PractitionerOut
    patient: AppointmentPatientOut
    changeable_until: datetime
