"""Small cross-cutting middleware."""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from rdv.audit import context
from rdv.core.logs import request_route

logger = logging.getLogger(__name__)


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


# Seconds a client is asked to wait: a restart or a failover takes a few.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = gettext_lazy(
    "RDV Santé cannot reach its database for a moment. Please try again in a few seconds. "
    "If you were booking, check your appointments first: the booking may have been saved."
)
# PostgreSQL SQLSTATEs meaning "cannot serve right now" rather than "this query is wrong":
# connection exceptions (class 08), the server shutting down, crashing or still starting
# (57P01-57P03), and insufficient resources such as too many connections (class 53).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53")
# SQLite: the file busy or locked past the timeout, unopenable, unreadable or full. Not
# SQLITE_READONLY: read-only mode answers that one (rdv.continuity.readonly).
_UNAVAILABLE_SQLITE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
)
# Set on a request answered with this 503 (its warning already written).
_ANSWERED = "_database_unavailable"


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached right now (lost connection,
    server restarting, out of connections), as opposed to a query that is wrong, which
    must stay a loud error."""
    if isinstance(exc, InterfaceError):
        return True  # a connection that is already closed or unusable
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__  # Django chains the driver's own exception
    if isinstance(cause, psycopg.Error):
        # No SQLSTATE: the client library lost (or never got) its connection.
        return cause.sqlstate is None or cause.sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    if isinstance(cause, sqlite3.Error):
        return cause.sqlite_errorname.startswith(_UNAVAILABLE_SQLITE)
    return False


def _in_both_languages(text: Promise) -> tuple[str, str]:
    with translation.override("fr"):
        french = str(text)
    with translation.override("en"):
        english = str(text)
    return french, english


def _bilingual(text: Promise) -> str:
    french, english = _in_both_languages(text)
    return french if french == english else f"{french} / {english}"


def _page() -> str:
    # No request context: the site's base template reads the session and the user, which
    # live in the database that is missing.
    try:
        return render_to_string("web/unavailable.html")
    except Exception:  # the last-resort page must always answer something
        return _bilingual(UNAVAILABLE_MESSAGE)


def _log(request: HttpRequest, exc: BaseException) -> None:
    # One line, no traceback: an outage is expected, and each request would repeat it.
    reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    request_id = context.current().request_id or request.META.get("HTTP_X_REQUEST_ID", "")
    logger.warning(
        "database unavailable, answered 503 to %s %s: %s: %s",
        request.method,
        request_route(request),
        type(exc.__cause__ or exc).__name__,
        reason,
        extra={"request_id": request_id or "-"},
    )


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 + Retry-After, in French and English: the API's error shape under /api/, a
    page elsewhere. Logged once, at WARNING."""
    setattr(request, _ANSWERED, True)
    _log(request, exc)
    return _answer(request)


def _answer(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path_info.startswith("/api/"):
        # The API's error shape (rdv.api.errors.error_body).
        body = {
            "error": {
                "code": "unavailable",
                "message": _bilingual(UNAVAILABLE_MESSAGE),
                "fields": {},
            }
        }
        response = JsonResponse(body, status=503)
    else:
        response = HttpResponse(_page(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _remember_unavailable(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """got_request_exception: a middleware further in (the session, the user, the staff
    timeout) failed on the database; Django turns that into a 500 before it reaches us."""
    exc = sys.exc_info()[1]
    if request is None or exc is None or not is_database_unavailable(exc):
        return
    setattr(request, _ANSWERED, True)
    _log(request, exc)


class _SkipAnsweredOutages(logging.Filter):
    """Drops Django's records for a request this middleware answered: "Internal Server
    Error" with its traceback, then "Service Unavailable" at ERROR. Its own warning says
    it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(getattr(record, "request", None), _ANSWERED, False)


class DatabaseUnavailableMiddleware:
    """A database that is restarting or failing over answers 503 + Retry-After, never
    500. Placed early (outer), so it also sees failures of the middleware after it;
    read-only refusals are answered first by rdv.continuity.readonly (inner)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(
            _remember_unavailable, dispatch_uid="rdv.core.middleware.database_unavailable"
        )
        django_request = logging.getLogger("django.request")
        if not any(isinstance(f, _SkipAnsweredOutages) for f in django_request.filters):
            django_request.addFilter(_SkipAnsweredOutages())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _ANSWERED, False) and response.status_code == 500:
            # Already logged (_remember_unavailable); keep the id the 500 carried.
            replaced = _answer(request)
            if "X-Request-Id" in response:
                replaced["X-Request-Id"] = response["X-Request-Id"]
            return replaced
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None  # not ours: read-only refusals, real bugs
        return unavailable_response(request, exception)


database_unavailable = DatabaseUnavailableMiddleware
