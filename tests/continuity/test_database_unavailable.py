"""A database that cannot be reached answers 503 + Retry-After (API and pages), never a
500 and never a traceback; errors that are not an outage are left alone.

The outage is simulated (what Django raises when psycopg loses its server);
tests/continuity/test_postgres_restart.py does it to a real server.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import path

from rdv.core.middleware import (
    RETRY_AFTER_SECONDS,
    DatabaseUnavailableMiddleware,
    is_database_unavailable,
)
from tests.conftest import Api, Cast

pytestmark = pytest.mark.django_db
ENGLISH = "cannot reach its database for a moment"


def wrapped(cause: BaseException, kind: type[Exception] = OperationalError) -> Exception:
    """The Django exception for a driver error, chained as Django chains it."""
    error = kind(str(cause))
    error.__cause__ = cause
    return error


def lost_connection() -> Exception:
    return wrapped(psycopg.OperationalError("server closed the connection unexpectedly"))


def sqlite_error(tmp_path: Path, kind: str) -> sqlite3.Error:
    """A real SQLite error of the given kind."""
    file = tmp_path / f"{kind}.sqlite3"
    sqlite3.connect(file).execute("CREATE TABLE IF NOT EXISTS t (x)").connection.commit()
    if kind == "readonly":
        db = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        statement = "INSERT INTO t VALUES (1)"
    elif kind == "locked":
        holder = sqlite3.connect(file, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        db = sqlite3.connect(file, timeout=0)
        statement = "INSERT INTO t VALUES (1)"
    else:
        db = sqlite3.connect(file)
        statement = "SELECT * FROM missing"
    try:
        db.execute(statement)
    except sqlite3.Error as error:
        return error
    raise AssertionError("no error")


@pytest.mark.parametrize(
    "cause",
    [
        psycopg.OperationalError("connection failed: Connection refused"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CrashShutdown("terminating connection because of crash of another"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        psycopg.errors.TooManyConnections("sorry, too many clients already"),
    ],
)
def test_a_lost_or_restarting_postgresql_is_an_outage(cause: psycopg.Error) -> None:
    assert is_database_unavailable(wrapped(cause))


def test_a_closed_connection_is_an_outage() -> None:
    assert is_database_unavailable(InterfaceError("connection already closed"))


@pytest.mark.parametrize(
    "error",
    [
        wrapped(psycopg.errors.SerializationFailure("could not serialize access")),
        wrapped(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")),
        wrapped(psycopg.errors.UndefinedTable("relation does not exist"), ProgrammingError),
        OperationalError("raised without a driver error"),
        ValueError("not a database error"),
    ],
)
def test_other_errors_are_not_an_outage(error: Exception) -> None:
    assert not is_database_unavailable(error)


def test_sqlite_busy_is_an_outage_but_not_read_only_or_a_missing_table(tmp_path: Path) -> None:
    assert is_database_unavailable(wrapped(sqlite_error(tmp_path, "locked")))
    # Read-only mode's refusal: rdv.continuity.readonly answers it, not this middleware.
    assert not is_database_unavailable(wrapped(sqlite_error(tmp_path, "readonly")))
    assert not is_database_unavailable(wrapped(sqlite_error(tmp_path, "missing")))


def test_the_middleware_leaves_a_read_only_refusal_to_the_read_only_middleware(
    tmp_path: Path,
) -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().post("/rendez-vous/")
    refusal = wrapped(sqlite_error(tmp_path, "readonly"))
    assert middleware.process_exception(request, refusal) is None
    assert middleware.process_exception(request, ValueError("a bug")) is None


def _database_gone(request: HttpRequest) -> HttpResponse:
    raise lost_connection()


def _bug(request: HttpRequest) -> HttpResponse:
    raise ValueError("a real bug")


urlpatterns = [path("gone/", _database_gone), path("bug/", _bug)]


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response["Cache-Control"] == "no-store"


def warnings_and_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("debug", [False, True])
def test_api_booking_answers_503_in_the_api_shape(
    cast: Cast,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    debug: bool,
) -> None:
    marie = Api(cast.marie, language="en")
    settings.DEBUG = debug  # under DEBUG, Ninja would answer a traceback itself

    def book_appointment(**kwargs: Any) -> None:
        raise lost_connection()

    monkeypatch.setattr("rdv.scheduling.services.book_appointment", book_appointment)
    marie.headers["HTTP_X_REQUEST_ID"] = "req-restart-1"
    with caplog.at_level(logging.WARNING):
        response = marie.post("/appointments", {"slot_id": 1})
    assert_unavailable(response)
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert ENGLISH in error["message"]
    assert error["fields"] == {}
    [record] = warnings_and_errors(caplog)  # one warning, no error, no traceback
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert getattr(record, "request_id", "") == "req-restart-1"
    assert "database unavailable" in record.getMessage()


def test_a_page_answers_503_with_a_page_in_both_languages(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ROOT_URLCONF = __name__
    with caplog.at_level(logging.WARNING):
        response = Client().get("/gone/", HTTP_ACCEPT_LANGUAGE="en")
    assert_unavailable(response)
    page = response.content.decode()
    assert 'lang="fr-CA"' in page
    assert 'lang="en-CA"' in page
    assert ENGLISH in page
    assert "Traceback" not in page
    assert [r.levelno for r in warnings_and_errors(caplog)] == [logging.WARNING]


def test_a_failure_in_a_middleware_answers_503_too(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed-in person's session and user are read by middleware, before any view."""
    client = Client(raise_request_exception=False)
    client.force_login(cast.marie)

    def get_user(request: HttpRequest) -> None:
        raise lost_connection()

    monkeypatch.setattr("django.contrib.auth.get_user", get_user)
    with caplog.at_level(logging.WARNING):
        response = client.get("/", HTTP_ACCEPT_LANGUAGE="fr")
    assert_unavailable(response)
    assert ENGLISH in response.content.decode()
    assert response.has_header("X-Request-Id")
    # Django's "Internal Server Error" record (with its traceback) is not written.
    assert [r.levelno for r in warnings_and_errors(caplog)] == [logging.WARNING]


def test_other_errors_are_not_swallowed(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/bug/")
    assert response.status_code == 500
    assert not response.has_header("Retry-After")
