"""The authenticator-app page: set up an app (TOTP) and replace one's recovery codes.

The same rules as the API (rdv/api/mfa.py), through the same services in
rdv.accounts.mfa, plus the password typed again, as the passkey page asks: a session left
open must not be enough to plant a new way in. Someone who already has a second factor
must prove it (step-up) to add an authenticator or to get new recovery codes. Clinic staff
with no second factor left (an administrator reset it) are sent to the enrolment code, as
the API requires: their password alone must not enrol a phone.

The secret and the recovery codes appear only in the answers to the POSTs that produced
them (never in a GET), with caching forbidden.
"""

from __future__ import annotations

from base64 import b32encode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts import mfa
from rdv.accounts import services as accounts
from rdv.accounts.models import RecoveryCode, User
from rdv.accounts.queries import has_second_factor, is_staff_member
from rdv.api.limits import enforce
from rdv.core.errors import DomainError, PermissionDenied
from rdv.web.account_views import safe_next_url
from rdv.web.errors import handles_domain_errors, signed_in
from rdv.web.mfa_forms import BeginForm, ConfirmForm, RecoveryCodesForm
from rdv.web.portal import mark_second_factor

# The unconfirmed authenticator this session started (after its password was typed):
# only this session may see its secret again or confirm it.
PENDING_KEY = "totp_pending"
# Both forms of the page ask for the password and a code: distinct field ids.
RENEW_PREFIX = "renew"
# Wrong password or wrong code: shown on the field, the page answers 422.
_FIELD_OF_CODE = {"bad_credentials": "password"}


# --- Reads of the signed-in user's own factors (no id from the request) -------------------


def _authenticators(user: User) -> list[TOTPDevice]:
    return list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"))


def _unused_recovery_codes(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def _pending(request: HttpRequest, user: User) -> TOTPDevice | None:
    pk = request.session.get(PENDING_KEY)
    if not isinstance(pk, int):
        return None
    device: TOTPDevice | None = TOTPDevice.objects.filter(pk=pk, user=user, confirmed=False).first()
    return device


def _refuse_staff_without_factor(user: User) -> None:
    """Staff with no second factor enrol with their administrator's code (API), never
    with a password alone: a stolen password must not be enough to add a phone."""
    if is_staff_member(user) and not has_second_factor(user):
        raise PermissionDenied(
            gettext_lazy(
                "Clinic staff set up their first second factor with an enrolment code "
                "from their clinic administrator."
            ),
            code="second_factor_enrolment_required",
        )


# --- Pages ------------------------------------------------------------------------------


def _page(
    request: HttpRequest,
    user: User,
    *,
    begin: BeginForm | None = None,
    renew: RecoveryCodesForm | None = None,
    status: int = 200,
) -> HttpResponse:
    needs_code = has_second_factor(user)
    return render(
        request,
        "web/authenticator.html",
        {
            "authenticators": _authenticators(user),
            "has_second_factor": needs_code,
            "unused_codes": _unused_recovery_codes(user),
            "staff_without_factor": is_staff_member(user) and not needs_code,
            "begin": begin or BeginForm(needs_code=needs_code),
            "renew": renew or RecoveryCodesForm(prefix=RENEW_PREFIX),
            "next": safe_next_url(request, ""),
        },
        status=status,
    )


def _grouped(secret: str) -> str:
    """ABCD EFGH …: easier to copy by hand; apps ignore the spaces."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _setup_page(
    request: HttpRequest, device: TOTPDevice, form: ConfirmForm, *, status: int = 200
) -> HttpResponse:
    uri: str = device.config_url
    return render(
        request,
        "web/authenticator_setup.html",
        {
            # segno's SVG: generated here from our own URI, no script and no style attribute.
            "qr_svg": mark_safe(mfa.qr_svg(uri)),  # noqa: S308  # nosec B308 B703
            "secret": _grouped(b32encode(device.bin_key).decode()),
            "form": form,
            "next": safe_next_url(request, ""),
        },
        status=status,
    )


def _codes_page(request: HttpRequest, codes: list[str], *, first_factor: bool) -> HttpResponse:
    return render(
        request,
        "web/recovery_codes.html",
        {"codes": codes, "first_factor": first_factor, "next": safe_next_url(request, "")},
    )


def _form_error(form: BeginForm | RecoveryCodesForm, exc: DomainError) -> None:
    """A wrong password or code goes on its field; anything else (429) is raised."""
    if exc.status not in (401, 403):
        raise exc
    field = _FIELD_OF_CODE.get(exc.code, "otp")
    form.add_error(field if field in form.fields else None, str(exc.message))


@require_GET
@never_cache
@login_required
@handles_domain_errors
def authenticator(request: HttpRequest) -> HttpResponse:
    """Whether an app is set up, and the forms to set one up or renew recovery codes."""
    return _page(request, signed_in(request))


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@handles_domain_errors
def begin(request: HttpRequest) -> HttpResponse:
    """Password (and a current code if there is a factor) → the QR code and the secret."""
    if request.method != "POST":
        return redirect("authenticator")
    user = signed_in(request)
    _refuse_staff_without_factor(user)
    form = BeginForm(request.POST, needs_code=has_second_factor(user))
    if form.is_valid():
        # Each try is a password or code guess: the sign-in limits apply (the services
        # also count it against the account's lockout).
        enforce(request, "signin", account=f"user:{user.pk}")
        try:
            accounts.confirm_password(user=user, password=form.cleaned_data["password"])
            device, _uri, _svg = mfa.start_totp_enrolment(
                user, otp=form.cleaned_data.get("otp") or None
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            request.session[PENDING_KEY] = device.pk
            return _setup_page(request, device, ConfirmForm())
    return _page(request, user, begin=form, status=422)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@handles_domain_errors
def confirm(request: HttpRequest) -> HttpResponse:
    """The app's first code confirms it; the first factor comes with recovery codes."""
    if request.method != "POST":
        return redirect("authenticator")
    user = signed_in(request)
    device = _pending(request, user)
    if device is None:
        messages.error(request, _("No authenticator app is being set up. Please start again."))
        return redirect("authenticator")
    form = ConfirmForm(request.POST)
    if form.is_valid():
        enforce(request, "signin", account=f"user:{user.pk}")
        first_factor = not has_second_factor(user)
        try:
            codes = mfa.confirm_totp(user, form.cleaned_data["code"])
        except DomainError as exc:
            if exc.field != "code":
                raise
            form.add_error("code", str(exc.message))
        else:
            del request.session[PENDING_KEY]
            _count_as_second_factor(request)
            if codes:
                return _codes_page(request, codes, first_factor=first_factor)
            messages.success(request, _("Your authenticator app is set up."))
            return redirect(safe_next_url(request, "") or "authenticator")
    return _setup_page(request, device, form, status=422)


def _count_as_second_factor(request: HttpRequest) -> None:
    """This session now counts as signed in with two factors.

    Why that is right: this session typed the account's password moments ago (begin
    asks for it again, and the pending authenticator is bound to this session), plus a
    current second factor if the account had one; it has just typed a fresh code from the
    now-confirmed authenticator (and a code is accepted only once). That is exactly what
    a sign-in with password and code checks, so asking the person to sign out and in
    again would prove nothing more. It gives nothing to a password thief either: for an
    account with no factor they could set one up here and sign in again with it anyway,
    and clinic staff with no factor cannot get this far (_refuse_staff_without_factor).
    The session key changes, as at any sign-in, since the session gains rights.
    """
    request.session.cycle_key()
    mark_second_factor(request)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@handles_domain_errors
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """Ten new recovery codes (the old ones stop working), for a current second factor."""
    if request.method != "POST":
        return redirect("authenticator")
    user = signed_in(request)
    form = RecoveryCodesForm(request.POST, prefix=RENEW_PREFIX)
    if form.is_valid():
        enforce(request, "signin", account=f"user:{user.pk}")
        try:
            accounts.confirm_password(user=user, password=form.cleaned_data["password"])
            codes = mfa.regenerate_recovery_codes(user, otp=form.cleaned_data["otp"])
        except DomainError as exc:
            _form_error(form, exc)
        else:
            return _codes_page(request, codes, first_factor=False)
    return _page(request, user, renew=form, status=422)
