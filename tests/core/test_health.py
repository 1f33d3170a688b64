"""/healthz and /readyz, as a load balancer and an orchestrator see them.

/healthz only says the process answers; /readyz says whether it can work: database,
migrations, worker. Each failure is named, and only named.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.test import Client
from django_tasks_db.models import DBTaskResult

from rdv.continuity import status as backup_status
from rdv.core import clock, health
from rdv.scheduling.tasks import extend_slot_horizon
from tests.smtp import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def forget_migrations_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test asks the migration graph afresh (a process keeps a positive answer)."""
    monkeypatch.setattr(health, "_migrations_applied", False)


@pytest.fixture(autouse=True)
def backups(settings: Any, tmp_path: Path) -> Path:
    settings.BACKUP_DIR = tmp_path / "backups"
    return Path(settings.BACKUP_DIR)


def readyz() -> Any:
    return Client().get("/readyz")


def test_healthz_answers_without_asking_the_database(
    django_assert_num_queries: Any, settings: Any
) -> None:
    # The read-only middleware reads its switch now and then: let it have read it.
    settings.READ_ONLY_CHECK_SECONDS = 3600
    Client().get("/healthz")
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]


def test_a_working_server_is_ready(settings: Any) -> None:
    response = readyz()
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "worker": "ok"},
        "read_only": False,
        "backup": "stale",  # none yet: said, but not a reason to take the server out
    }


def test_read_only_mode_and_a_recent_backup_are_reported_and_still_ready(
    settings: Any,
) -> None:
    settings.READ_ONLY = True
    backup_status.record_success(clock.now() - timedelta(minutes=30), "rdv-1.tar.enc")
    response = readyz()
    assert response.status_code == 200
    assert response.json()["read_only"] is True
    assert response.json()["backup"] == "ok"
    settings.BACKUP_MAX_AGE_MINUTES = 20
    assert readyz().json()["backup"] == "stale"
    settings.READ_ONLY = False
    assert readyz().json()["read_only"] is False


def due_task(*, run_after: Any = None) -> DBTaskResult[..., Any]:
    """A task queued as the application queues them, and its stored row."""
    task = (
        extend_slot_horizon if run_after is None else extend_slot_horizon.using(run_after=run_after)
    )
    result = task.enqueue()
    return DBTaskResult.objects.get(pk=result.id)


def test_a_task_due_and_not_taken_for_too_long_means_the_worker_is_stalled(
    settings: Any,
) -> None:
    settings.WORKER_STALE_SECONDS = 120
    row = due_task()  # to run at once: due since it was queued
    with clock.frozen_now(row.enqueued_at + timedelta(seconds=120), all_threads=True):
        assert readyz().status_code == 200
    with clock.frozen_now(row.enqueued_at + timedelta(seconds=121), all_threads=True):
        response = readyz()
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert response.json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "worker": "stalled",
        }
        # In read-only mode the worker claims nothing on purpose: paused, still ready.
        settings.READ_ONLY = True
        response = readyz()
        assert response.status_code == 200
        assert response.json()["checks"]["worker"] == "paused"
        settings.READ_ONLY = False
    # The worker takes it: ready again.
    DBTaskResult.objects.filter(pk=row.pk).update(status="SUCCESSFUL")
    with clock.frozen_now(row.enqueued_at + timedelta(hours=1), all_threads=True):
        assert readyz().status_code == 200


def test_a_task_scheduled_for_later_is_not_late_until_its_time(settings: Any) -> None:
    settings.WORKER_STALE_SECONDS = 60
    run_after = clock.now() + timedelta(hours=1)
    due_task(run_after=run_after)
    assert readyz().status_code == 200  # queued, but not due
    with clock.frozen_now(run_after + timedelta(seconds=60), all_threads=True):
        assert readyz().status_code == 200
    with clock.frozen_now(run_after + timedelta(seconds=61), all_threads=True):
        assert readyz().json()["checks"]["worker"] == "stalled"


def test_a_migration_not_applied_makes_the_server_unready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A migration the code has and the database has not (as when new code starts before
    # `migrate` has run).
    missing = Migration("9999_not_yet", "scheduling")
    monkeypatch.setattr(
        MigrationExecutor, "migration_plan", lambda self, targets: [(missing, False)]
    )
    response = readyz()
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending"
    assert "9999" not in response.text  # which check failed, not the details


def test_a_positive_migration_answer_is_kept_by_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert readyz().status_code == 200
    monkeypatch.setattr(MigrationExecutor, "__init__", _graph_must_not_load)
    assert readyz().json()["checks"]["migrations"] == "ok"


def _graph_must_not_load(self: Any, *args: Any, **kwargs: Any) -> None:
    raise AssertionError("the migration graph was loaded again")


@pytest.fixture
def unreachable_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The readiness checks' connection points at a database nobody serves: a closed port
    for PostgreSQL, a file in a missing directory for SQLite."""
    settings = dict(connection.settings_dict)
    if connection.vendor == "sqlite":
        settings["NAME"] = str(tmp_path / "missing" / "db.sqlite3")
    else:
        settings.update(HOST="127.0.0.1", PORT=str(free_port()))
    broken = type(connections["default"])(settings, alias="unreachable")
    monkeypatch.setattr(health, "connection", broken)
    yield
    broken.close()


def test_an_unreachable_database_is_named_without_details(unreachable_database: None) -> None:
    response = readyz()
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "unavailable",
        "migrations": "unknown",
        "worker": "unknown",
    }
    assert "127.0.0.1" not in response.text
    assert "Traceback" not in response.text


def test_healthz_stays_up_when_the_database_is_down(unreachable_database: None) -> None:
    assert Client().get("/healthz").status_code == 200
