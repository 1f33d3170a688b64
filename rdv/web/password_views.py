"""Forgotten password: ask for a link by email, follow it, choose a new password.

Asking answers with the same page whether or not the address has an account. The link's
token is moved from the address into the session at once, so it is neither kept in the
browser's history nor sent on (as a Referer) with the page's own requests.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from rdv.accounts import password_reset
from rdv.accounts.password_reset import ResetLinkInvalid
from rdv.api.limits import enforce
from rdv.core.errors import DomainError, ValidationError
from rdv.web.errors import handles_domain_errors, posted
from rdv.web.password_forms import NewPasswordForm, PasswordResetRequestForm

# Stands for the token in the address once the token sits in the session; a real token
# always holds a "-", so it can never be this.
LINK_IN_SESSION = "choisir"
SESSION_KEY = "rdv.password_reset_token"


@require_http_methods(["GET", "POST"])
@handles_domain_errors
def request_reset(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(posted(request))
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        enforce(request, "password_reset", account=email.lower())
        password_reset.request_password_reset(email=email)
        return redirect("password_reset_sent")
    status = 422 if form.errors else 200
    return render(request, "web/password_reset_request.html", {"form": form}, status=status)


@require_GET
def reset_sent(request: HttpRequest) -> HttpResponse:
    return render(
        request, "web/password_reset_sent.html", {"minutes": password_reset.link_minutes()}
    )


def _invalid_link(request: HttpRequest, error: DomainError) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    return render(
        request, "web/password_reset_invalid.html", {"message": error.message}, status=400
    )


@require_http_methods(["GET", "POST"])
@handles_domain_errors
def choose_password(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    if token != LINK_IN_SESSION:
        try:
            password_reset.check_reset_link(uidb64=uidb64, token=token)
        except ResetLinkInvalid as exc:
            return _invalid_link(request, exc)
        request.session[SESSION_KEY] = token
        return redirect("password_reset_confirm", uidb64=uidb64, token=LINK_IN_SESSION)
    token = str(request.session.get(SESSION_KEY, ""))
    form = NewPasswordForm(posted(request))
    if request.method == "POST" and form.is_valid():
        enforce(request, "signin")
        try:
            password_reset.reset_password(
                uidb64=uidb64, token=token, new_password=form.cleaned_data["new_password"]
            )
        except ResetLinkInvalid as exc:
            return _invalid_link(request, exc)
        except ValidationError as exc:  # the password rules
            form.add_error("new_password", str(exc.message))
        else:
            request.session.pop(SESSION_KEY, None)
            messages.success(
                request, _("Your password has been changed. Sign in with your new password.")
            )
            return redirect("sign_in")
    try:
        user = password_reset.check_reset_link(uidb64=uidb64, token=token)
    except ResetLinkInvalid as exc:
        return _invalid_link(request, exc)
    status = 422 if form.errors else 200
    return render(
        request,
        "web/password_reset_confirm.html",
        {"form": form, "email": user.email},
        status=status,
    )
