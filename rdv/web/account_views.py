"""Sign up, confirm the email, sign in and out, switch language.

A visitor who chose a slot before signing in comes back to it: the slot id rides along
in `next`, and its page offers to hold it at once.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from rdv.accounts import registration
from rdv.accounts import services as accounts
from rdv.accounts.models import User
from rdv.accounts.queries import has_second_factor
from rdv.api.limits import enforce
from rdv.core.errors import DomainError
from rdv.web.errors import handles_domain_errors, posted, signed_in
from rdv.web.forms import CodeForm, SignInForm, SignUpForm
from rdv.web.portal import mark_second_factor

BACKEND = "django.contrib.auth.backends.ModelBackend"


def safe_next_url(request: HttpRequest, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def remember_language(response: HttpResponse, language: str) -> HttpResponse:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


@require_http_methods(["GET", "POST"])
@handles_domain_errors
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(posted(request))
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        enforce(request, "signin", account=email.lower())
        try:
            user = accounts.sign_in(
                email=email,
                password=form.cleaned_data["password"],
                otp=form.cleaned_data["otp"] or None,
            )
        except DomainError as exc:
            if exc.status == 429:
                raise
            form.add_error(None, str(exc.message))
        else:
            login(request, user, backend=BACKEND)
            if has_second_factor(user):  # sign_in checked its code
                mark_second_factor(request)
            translation.activate(user.preferred_language)
            return remember_language(redirect(safe_next_url(request)), user.preferred_language)
    status = 401 if form.errors and request.method == "POST" else 200
    return render(
        request,
        "web/sign_in.html",
        {"form": form, "next": safe_next_url(request, "")},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@handles_domain_errors
def sign_up(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(posted(request))
    if request.method == "POST" and form.is_valid():
        enforce(request, "signup")
        data = form.cleaned_data
        try:
            user = registration.sign_up(
                email=data["email"],
                password=data["password"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                date_of_birth=data["date_of_birth"],
                language=translation.get_language() or "fr",
                accepted_terms_version=data["terms_version"],
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
        else:
            login(request, user, backend=BACKEND)
            next_url = safe_next_url(request, "")
            query = f"?{urlencode({'next': next_url})}" if next_url else ""
            return redirect(f"{reverse('verify_email')}{query}")
    status = 422 if form.errors else 200
    return render(
        request,
        "web/sign_up.html",
        {
            "form": form,
            "next": safe_next_url(request, ""),
            "terms_version": registration.TERMS_VERSION,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def verify_email(request: HttpRequest) -> HttpResponse:
    """Type the code we mailed; then carry on where the visitor was going."""
    user = signed_in(request)
    form = CodeForm(posted(request))
    if request.method == "POST" and "resend" in request.POST:
        enforce(request, "signup", account=f"user:{user.pk}")
        registration.resend_code(user=user)
        messages.info(request, _("A new code is on its way."))
        form = CodeForm()
    elif request.method == "POST" and form.is_valid():
        try:
            registration.verify_email(user=user, code=form.cleaned_data["code"])
        except DomainError as exc:
            form.add_error("code", str(exc.message))
        else:
            messages.success(request, _("Your email address is confirmed."))
            return redirect(safe_next_url(request))
    status = 422 if form.errors else 200
    return render(
        request,
        "web/verify_email.html",
        {"form": form, "next": safe_next_url(request, ""), "email": user.email},
        status=status,
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("search")


@require_POST
def switch_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language; remembered in a cookie and on the account."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    user = request.user
    if isinstance(user, User) and user.is_authenticated:
        accounts.set_preferred_language(user=user, language=language)
    return remember_language(HttpResponseRedirect(safe_next_url(request)), language)
