"""The clinic portal's one door: every portal view turns (user, clinic id) into a
StaffContext here, so a clinic the user does not belong to is "not found" on every page,
exactly as in the staff API (rdv.clinics.queries.staff_context)."""

from __future__ import annotations

from collections.abc import Callable

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import FRONT_DESK_ROLES, Membership
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied
from rdv.scheduling.models import Appointment
from rdv.web.errors import signed_in

# Set in the session by a sign-in that proved a second factor (an authenticator code or a
# passkey). Membership alone is not enough: a session opened with a password before the
# user joined a clinic must not reach its patients.
SECOND_FACTOR_KEY = "second_factor"

PORTAL_PREFIX = "/clinique/"
ADMIN = (Membership.Role.CLINIC_ADMIN,)
FRONT_DESK = FRONT_DESK_ROLES


def agenda_url(clinic_id: int, appointment: Appointment) -> str:
    """The portal's agenda on the day of this appointment (where a change returns to)."""
    day = clock.local_date(appointment.slot.start)
    return f"{reverse('portal_agenda', args=[clinic_id])}?{urlencode({'date': day.isoformat()})}"


def patient_token(ctx: StaffContext, patient_id: int, *, salt: str) -> str:
    """What a "choose this person" button posts: the patient's id signed and bound to this
    clinic and this staff member, so a page never carries a bare patient id to act on."""
    return signing.dumps({"p": patient_id, "c": ctx.clinic.pk, "u": ctx.user.pk}, salt=salt)


def read_patient_token(
    ctx: StaffContext, token: str, *, salt: str, minutes: int, lost: NotFound
) -> int:
    """The patient id of a patient_token made for this clinic and staff member less than
    `minutes` ago; `lost` (telling them to search again) otherwise."""
    try:
        found = signing.loads(token, salt=salt, max_age=minutes * 60)
    except signing.BadSignature:
        raise lost from None
    if not isinstance(found, dict) or (found.get("c"), found.get("u")) != (
        ctx.clinic.pk,
        ctx.user.pk,
    ):
        raise lost
    return int(found["p"])


def mark_second_factor(request: HttpRequest) -> None:
    request.session[SECOND_FACTOR_KEY] = True


def clinic_for(request: HttpRequest, clinic_id: int) -> StaffContext:
    """The signed-in user acting for this clinic (NotFound for another clinic), in a
    session opened with two factors (PermissionDenied otherwise)."""
    ctx = staff_context(signed_in(request), clinic_id)
    if not request.session.get(SECOND_FACTOR_KEY):
        raise PermissionDenied(
            _("To use the clinic portal, sign out and sign in again with your code."),
            code="second_factor_required",
        )
    return ctx


def require_role(ctx: StaffContext, roles: tuple[str, ...]) -> None:
    """Refuse (403) a member of this clinic whose role does not cover the page."""
    if ctx.role not in roles:
        raise PermissionDenied(
            _("Your role at this clinic does not give access to this page."), code="role"
        )


def no_store_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Portal pages show patients: never kept by the browser's cache or a shared proxy
    (the front-desk computer's next user cannot bring them back with "back")."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if request.path.startswith(PORTAL_PREFIX):
            patch_cache_control(response, no_store=True, private=True)
        return response

    return middleware
