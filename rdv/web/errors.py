"""Domain errors that escape a page view become a readable error page, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from rdv.accounts.models import User
from rdv.core.errors import DomainError, PermissionDenied

View = Callable[..., HttpResponse]


def error_page(request: HttpRequest, error: DomainError) -> HttpResponse:
    response = render(
        request,
        "web/error.html",
        {"message": error.message, "status": error.status},
        status=error.status,
    )
    retry_after = getattr(error, "retry_after", None)  # RateLimited, sign-in lockout
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def handles_domain_errors(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return error_page(request, exc)

    return wrapped


def signed_in(request: HttpRequest) -> User:
    """The user of a view behind login_required."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied(code="sign_in_required")
    return user


def posted(request: HttpRequest) -> QueryDict | None:
    """The POST data to bind a form to (even when empty), or None for a GET."""
    return request.POST if request.method == "POST" else None
