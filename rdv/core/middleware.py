"""Small cross-cutting middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def permissions_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Deny browser features the site never uses (camera, microphone, payment…)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response

    return middleware


def staff_idle_timeout(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Staff sessions end after STAFF_IDLE_TIMEOUT_SECONDS without a request (sliding).

    Clinic staff work on shared front-desk computers: an abandoned session must not stay
    open on a screen full of patients.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        # A page refreshing itself (the portal's live regions) is not someone at the desk.
        if request.headers.get("X-Live-Refresh"):
            return get_response(request)
        if (
            user is not None
            and user.is_authenticated
            and (user.is_staff or user.memberships.exists())
        ):
            request.session.set_expiry(settings.STAFF_IDLE_TIMEOUT_SECONDS)
        return get_response(request)

    return middleware


def database_unavailable(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A database that is restarting answers 503 + Retry-After, not 500 (placeholder)."""
    return get_response
