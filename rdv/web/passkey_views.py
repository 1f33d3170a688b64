"""Passkeys on the patient pages: list, add and remove one's own; sign in with one.

The list and the removal are plain pages and forms. The WebAuthn ceremony itself needs the
browser's API, so static/web/passkeys.js drives it through the small JSON endpoints below,
under the page's session and CSRF token. They reuse rdv.accounts.passkeys as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rdv.accounts import passkeys
from rdv.accounts import services as accounts
from rdv.accounts.models import User
from rdv.accounts.queries import has_second_factor, is_staff_member
from rdv.api.limits import enforce
from rdv.core.errors import Conflict, DomainError, NotAuthenticated
from rdv.web.account_views import BACKEND, remember_language, safe_next_url
from rdv.web.errors import handles_domain_errors, signed_in
from rdv.web.password_forms import (
    PasskeyNameForm,
    RegistrationBeginForm,
    RegistrationFinishForm,
    SignInFinishForm,
)
from rdv.web.portal import mark_second_factor

JsonView = Callable[..., JsonResponse]


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def json_errors(view: JsonView) -> JsonView:
    """Domain errors as {"error": {code, message}} with their status, for the script."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            response = _error(exc.code, str(exc.message), exc.status)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                response["Retry-After"] = str(retry_after)
            return response

    return wrapped


def _invalid(form: forms.Form) -> JsonResponse:
    message = next(iter(form.errors.values()))[0] if form.errors else ""
    return _error("invalid", str(message), 422)


def _account(request: HttpRequest) -> User:
    """The signed-in user; a script's request gets a 401, not a redirect to a page."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise NotAuthenticated()
    return user


# --- The page ---------------------------------------------------------------------------


@require_GET
@login_required
@handles_domain_errors
def passkey_list(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    needs_code = has_second_factor(user)
    return render(
        request,
        "web/passkeys.html",
        {
            "passkeys": passkeys.passkeys_of(user),
            "form": PasskeyNameForm(needs_code=needs_code),
            "needs_code": needs_code,
            "staff": is_staff_member(user),
        },
    )


@require_POST
@login_required
@handles_domain_errors
def remove(request: HttpRequest, passkey_id: int) -> HttpResponse:
    try:
        passkeys.remove_passkey(signed_in(request), passkey_id=passkey_id)
    except Conflict as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("The passkey was removed."))
    return redirect("passkeys")


# --- The ceremonies (JSON, for passkeys.js) ---------------------------------------------


@require_POST
@json_errors
def register_begin(request: HttpRequest) -> JsonResponse:
    user = _account(request)
    form = RegistrationBeginForm(request.POST)
    if not form.is_valid():
        return _invalid(form)
    accounts.confirm_password(user=user, password=form.cleaned_data["password"])
    handle, options = passkeys.begin_registration(user, otp=form.cleaned_data["otp"] or None)
    return JsonResponse({"challenge_id": handle, "options": options})


@require_POST
@json_errors
def register_finish(request: HttpRequest) -> JsonResponse:
    user = _account(request)
    form = RegistrationFinishForm(request.POST)
    if not form.is_valid():
        return _invalid(form)
    _passkey, codes = passkeys.finish_registration(
        user,
        challenge_id=form.cleaned_data["challenge_id"],
        credential=form.cleaned_data["credential"],
        name=form.cleaned_data["name"],
    )
    messages.success(request, _("Your passkey was added."))
    return JsonResponse({"recovery_codes": codes, "redirect": reverse("passkeys")})


@require_POST
@json_errors
def sign_in_begin(request: HttpRequest) -> JsonResponse:
    enforce(request, "signin")
    handle, options = passkeys.begin_authentication()
    return JsonResponse({"challenge_id": handle, "options": options})


@require_POST
@json_errors
def sign_in_finish(request: HttpRequest) -> JsonResponse:
    """Start a session for whoever proves a passkey, then go where they were going."""
    enforce(request, "signin")
    form = SignInFinishForm(request.POST)
    if not form.is_valid():
        return _invalid(form)
    user = passkeys.sign_in_session(
        challenge_id=form.cleaned_data["challenge_id"],
        credential=form.cleaned_data["credential"],
    )
    login(request, user, backend=BACKEND)
    mark_second_factor(request)  # a passkey is something held and unlocked: two factors
    translation.activate(user.preferred_language)
    response = JsonResponse({"redirect": safe_next_url(request)})
    remember_language(response, user.preferred_language)
    return response
