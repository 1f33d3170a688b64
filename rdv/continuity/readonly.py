"""Read-only mode: the platform answers reads and refuses every write.

Two layers. The middleware refuses unsafe methods (503 + Retry-After, in French and
English at once) before any view runs. Underneath, the request's database session itself
refuses writes (PostgreSQL `default_transaction_read_only`, SQLite `PRAGMA query_only`), so
a view that writes on a GET fails in the database; that refusal becomes the same 503.

The few writes a read needs (its audit entry, the session cookie's row) go through
`writable()`. Signing in and out, and the switch itself, run read-write (ALLOWED_VIEWS).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

from rdv.core.logs import request_route

logger = logging.getLogger(__name__)

_cache: tuple[float, bool] | None = None

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Run read-write even in read-only mode: signing in and out (web, passkeys, API tokens),
# the language switch, and the platform admin's switch, so the mode can be lifted.
ALLOWED_VIEWS = frozenset(
    {
        "sign_in",
        "sign_out",
        "switch_language",
        "passkey_sign_in_begin",
        "passkey_sign_in_finish",
        "api-v1:token",
        "api-v1:passkey_sign_in_begin",
        "api-v1:passkey_sign_in_finish",
        "admin:login",
        "admin:logout",
        "admin:continuity_readonlyswitch_add",
        "admin:continuity_readonlyswitch_change",
    }
)
# Shown whatever the interface language: someone who cannot act must understand why.
MESSAGE_FR = (
    "Lecture seule : RDV Santé n’accepte aucune modification pour le moment "
    "(réservation, annulation, changement). Réessayez plus tard."
)
MESSAGE_EN = (
    "Read-only: RDV Santé accepts no changes right now "
    "(booking, cancelling, changing). Please try again later."
)
POSTGRES_READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction

# On the connection object: what the session should be (_WANTED) and what it was last
# set to (_APPLIED), so a request costs a round trip only when the mode changes.
_WANTED = "rdv_read_only_wanted"
_APPLIED = "rdv_read_only_applied"


def is_active() -> bool:
    """On when READ_ONLY is set or the admin switch is on (read at most every
    READ_ONLY_CHECK_SECONDS per process)."""
    global _cache  # noqa: PLW0603
    if settings.READ_ONLY:
        return True
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < settings.READ_ONLY_CHECK_SECONDS:
        return _cache[1]
    from rdv.continuity.models import ReadOnlySwitch  # noqa: PLC0415

    try:
        enabled = ReadOnlySwitch.objects.filter(pk=1, enabled=True).exists()
    except DatabaseError:
        # Unreadable switch (database down): keep the last reading.
        return _cache[1] if _cache is not None else False
    _cache = (now, enabled)
    return enabled


def forget() -> None:
    """Read the switch again at the next check (after changing it, and in tests)."""
    global _cache  # noqa: PLW0603
    _cache = None


# --- The database session ----------------------------------------------------------------


def session_read_only(conn: BaseDatabaseWrapper = connection) -> bool:
    """Whether this connection's session currently refuses writes (as set here)."""
    return conn.connection is not None and bool(getattr(conn, _APPLIED, False))


def session_will_refuse_writes(conn: BaseDatabaseWrapper = connection) -> bool:
    """Whether this connection's session refuses writes, or will as soon as it connects."""
    return session_read_only(conn) or bool(getattr(conn, _WANTED, False))


def set_session_read_only(read_only: bool, conn: BaseDatabaseWrapper = connection) -> None:
    """Make the session refuse (or accept) writes from its next transaction on.

    Not connected yet: applied when it connects (connection_created), so a reconnection
    (CONN_MAX_AGE expiry, a failed health check) never comes back read-write by surprise.
    """
    setattr(conn, _WANTED, read_only)
    if conn.connection is not None and bool(getattr(conn, _APPLIED, False)) != read_only:
        _apply(conn, read_only)


def _apply(conn: BaseDatabaseWrapper, read_only: bool) -> None:
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute(f"SET default_transaction_read_only = {'on' if read_only else 'off'}")
    elif conn.vendor == "sqlite":
        # query_only also refuses BEGIN IMMEDIATE (it asks for the write lock): a read-only
        # session begins its transactions DEFERRED.
        conn.transaction_mode = None if read_only else _configured_sqlite_mode(conn)  # type: ignore[attr-defined]
        with conn.cursor() as cursor:
            cursor.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
    setattr(conn, _APPLIED, read_only)


def _configured_sqlite_mode(conn: BaseDatabaseWrapper) -> str | None:
    mode = conn.settings_dict.get("OPTIONS", {}).get("transaction_mode")
    return str(mode).upper() if mode else None


def _on_connect(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    setattr(connection, _APPLIED, False)  # a new session starts read-write
    if getattr(connection, _WANTED, False):
        _apply(connection, True)


connection_created.connect(_on_connect, dispatch_uid="rdv.continuity.readonly")


@contextmanager
def writable(conn: BaseDatabaseWrapper = connection) -> Iterator[None]:
    """Run the block on a read-write session, then give the session back as it was.

    For the few writes a read cannot do without (its audit entry, the session's row).
    PostgreSQL applies it to transactions that start inside the block: call it outside any
    transaction (rdv.audit.services.record handles the case where it cannot).
    """
    wanted = bool(getattr(conn, _WANTED, False))
    if not wanted and not session_read_only(conn):
        yield
        return
    set_session_read_only(False, conn)
    try:
        yield
    finally:
        set_session_read_only(wanted, conn)


def in_read_only_transaction(conn: BaseDatabaseWrapper = connection) -> bool:
    """Whether the transaction under way already refuses writes (PostgreSQL only decides
    read-only at its start; one that began read-write stays so)."""
    if conn.vendor != "postgresql":
        return False  # SQLite's query_only is a switch, read at each statement
    with conn.cursor() as cursor:
        cursor.execute("SHOW transaction_read_only")
        row = cursor.fetchone()
    return bool(row and row[0] == "on")


def is_refusal(error: BaseException) -> bool:
    """Whether a database error is the database refusing a write in a read-only session."""
    if not isinstance(error, DatabaseError):
        return False
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if sqlstate == POSTGRES_READ_ONLY_SQLSTATE:
        return True
    code = getattr(cause, "sqlite_errorcode", None)
    # Extended codes keep the primary one in their low byte.
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_READONLY


# --- Requests ----------------------------------------------------------------------------


def _allowed(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.view_name in ALLOWED_VIEWS


def refusal(request: HttpRequest) -> HttpResponse:
    """The 503 a write gets in read-only mode: JSON in the API's error shape under /api/,
    a page elsewhere; both languages at once."""
    message = f"{MESSAGE_FR} / {MESSAGE_EN}"
    response: HttpResponse
    if request.path_info.startswith("/api/"):
        from rdv.api.errors import error_body  # noqa: PLC0415 (the API loads late)

        response = JsonResponse(error_body("read_only", message), status=503)
    else:
        html = render_to_string(
            "web/read_only.html",
            {"message_fr": MESSAGE_FR, "message_en": MESSAGE_EN},
            request=request,
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(settings.READ_ONLY_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    # An expected answer, not a server error: Django would log every one at ERROR, and an
    # incident's log would drown in them. The metrics still count each 503.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class ReadOnlyMiddleware:
    """Refuses writes while the mode is on, and keeps the database session in step."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        active = is_active()
        allowed = active and _allowed(request)
        if active and not allowed and request.method not in SAFE_METHODS:
            return refusal(request)
        read_only = active and not allowed
        try:
            set_session_read_only(read_only)
        except DatabaseError:
            # A broken connection: the view's own queries fail and are answered as such;
            # the next connection is made read-only when it opens (_on_connect).
            logger.warning("could not set the database session's read-only mode", exc_info=True)
        try:
            return self.get_response(request)
        finally:
            if read_only:
                # Handed back read-write: whatever this thread does next outside a request
                # (a test, a management command's code) meets the database as it expects.
                with contextlib.suppress(DatabaseError):
                    set_session_read_only(False)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_refusal(exception):
            return None
        # The route, never the path: paths carry one-click tokens.
        logger.warning("the database refused a write in read-only mode: %s", request_route(request))
        return refusal(request)


middleware = ReadOnlyMiddleware


def context(request: HttpRequest) -> dict[str, Any]:
    return {"read_only_mode": is_active()}
