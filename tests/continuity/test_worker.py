"""The task worker (`manage.py worker`): it waits out a lost database instead of dying, and
claims nothing while read-only mode is on.

The database outage is simulated here (the claim raises what psycopg raises when the
server goes away); tests/continuity/test_postgres_restart.py crashes a real server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connections
from django_tasks import task
from django_tasks_db.models import DBTaskResult, DBTaskResultQuerySet

from rdv.continuity import readonly
from rdv.continuity.management.commands import worker as worker_module
from rdv.continuity.management.commands.worker import PERIODIC_SCHEDULES, ResilientWorker
from rdv.continuity.models import ReadOnlySwitch

pytestmark = pytest.mark.django_db(transaction=True)


@task()
def echo(text: str) -> str:
    return text


@task()
def lose_the_database() -> None:
    raise lost_connection()


def lost_connection() -> OperationalError:
    """What Django raises when PostgreSQL goes away under a query."""
    error = OperationalError("server closed the connection unexpectedly")
    error.__cause__ = psycopg.OperationalError("server closed the connection unexpectedly")
    return error


def make_worker(**options: Any) -> ResilientWorker:
    defaults: dict[str, Any] = {
        "queue_names": ["default"],
        "interval": 0.01,
        "batch": False,
        "backend_name": "default",
        "startup_delay": False,
        "max_tasks": None,
        "worker_id": "test-worker",
        "excluded_queue_names": [],
    }
    return ResilientWorker(**{**defaults, **options})


def status_of(result_id: str) -> str:
    return str(DBTaskResult.objects.get(pk=result_id).status)


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The worker's sleeps, recorded instead of slept."""
    sleeps: list[float] = []
    fake = SimpleNamespace(sleep=sleeps.append, monotonic=time.monotonic)
    monkeypatch.setattr(worker_module, "time", fake)
    return sleeps


@pytest.fixture
def flaky_claims(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """The next `n` claims find the database gone."""
    real = DBTaskResultQuerySet.get_locked
    remaining = [0]

    def get_locked(self: DBTaskResultQuerySet) -> DBTaskResult[Any, Any] | None:
        if remaining[0]:
            remaining[0] -= 1
            raise lost_connection()
        return real(self)

    monkeypatch.setattr(DBTaskResultQuerySet, "get_locked", get_locked)

    def fail_next(n: int) -> None:
        remaining[0] = n

    return fail_next


@pytest.fixture
def schedules_called() -> list[str]:
    return []


def recording_worker(calls: list[str], **options: Any) -> ResilientWorker:
    """A worker whose periodic scheduling is recorded; its start-up scheduling is already
    done, so what the calls record is what an outage caused."""
    worker = make_worker(**options)
    worker.periodic_schedules = (lambda: calls.append("rescheduled"),)
    worker.reschedule_needed = False
    return worker


def test_a_starting_worker_queues_every_periodic_task() -> None:
    """Under systemd no `serve` queues them: the worker's first turn does."""
    assert not DBTaskResult.objects.filter(status="READY").exists()
    make_worker(batch=True).run()
    ready = set(DBTaskResult.objects.filter(status="READY").values_list("task_path", flat=True))
    assert len(ready) == len(PERIODIC_SCHEDULES)


def worker_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rdv.worker"]


def test_a_lost_database_is_waited_out_with_a_capped_backoff(
    flaky_claims: Callable[[int], None],
    no_sleep: list[float],
    schedules_called: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = echo.enqueue("after the outage")
    flaky_claims(6)
    worker = recording_worker(schedules_called, max_tasks=1)
    with caplog.at_level(logging.INFO, logger="rdv.worker"):
        worker.run()  # returns after one task, instead of dying at the first error
    assert status_of(result.id) == "SUCCESSFUL"
    assert no_sleep[:6] == [1, 2, 4, 8, 10, 10]
    messages = worker_messages(caplog)
    assert sum("Database unreachable" in m for m in messages) == 1  # once, not per attempt
    assert sum("Database reachable again" in m for m in messages) == 1
    # Their own rescheduling may have been lost with the database: every periodic task
    # gets its next run again.
    assert "rescheduled" in schedules_called


def test_an_error_that_is_not_an_outage_still_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    def broken(self: DBTaskResultQuerySet) -> None:
        raise OperationalError("no such column: oops")

    monkeypatch.setattr(DBTaskResultQuerySet, "get_locked", broken)
    echo.enqueue("never")
    with pytest.raises(OperationalError, match="no such column"):
        make_worker(max_tasks=1).run()
    assert no_sleep == []


def test_a_task_cut_by_the_outage_ends_failed_and_nothing_stays_running(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float], schedules_called: list[str]
) -> None:
    cut = echo.enqueue("cut")
    real_successful = DBTaskResult.set_successful
    real_failed = DBTaskResult.set_failed
    outage = {"set_successful": 1, "set_failed": 1}

    def down_once(name: str, real: Callable[..., None]) -> Callable[..., None]:
        def method(self: DBTaskResult[Any, Any], value: Any) -> None:
            if outage[name]:
                outage[name] -= 1
                raise lost_connection()
            real(self, value)

        return method

    # The task ran, then the database vanished before its outcome could be written.
    monkeypatch.setattr(
        DBTaskResult, "set_successful", down_once("set_successful", real_successful)
    )
    monkeypatch.setattr(DBTaskResult, "set_failed", down_once("set_failed", real_failed))
    later = echo.enqueue("later")
    worker = recording_worker(schedules_called, max_tasks=2)
    worker.run()

    interrupted = DBTaskResult.objects.get(pk=cut.id)
    assert interrupted.status == "FAILED"
    assert interrupted.exception_class_path.endswith("worker.RunInterrupted")
    assert status_of(later.id) == "SUCCESSFUL"
    assert not DBTaskResult.objects.running().exists()
    assert schedules_called == ["rescheduled"]


def test_a_task_that_failed_on_the_database_gets_periodic_runs_rescheduled(
    schedules_called: list[str],
) -> None:
    failed = lose_the_database.enqueue()
    worker = recording_worker(schedules_called, batch=True)
    worker.run()
    assert status_of(failed.id) == "FAILED"
    assert schedules_called == ["rescheduled"]


def test_rescheduling_keeps_exactly_one_future_run_of_each_periodic_task() -> None:
    worker = make_worker()
    worker.reschedule_periodic_tasks()
    worker.reschedule_periodic_tasks()
    ready = list(DBTaskResult.objects.filter(status="READY").values_list("task_path", flat=True))
    assert len(ready) == len(PERIODIC_SCHEDULES) == len(set(ready))


def turn_read_only(enabled: bool) -> None:
    ReadOnlySwitch.objects.update_or_create(pk=1, defaults={"enabled": enabled})
    readonly.forget()


def test_read_only_mode_pauses_the_worker_until_it_is_off(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.READ_ONLY_CHECK_SECONDS = 0
    turn_read_only(True)
    result = echo.enqueue("after read-only")
    worker = make_worker(max_tasks=1)
    paused_turns = [0]
    check = worker.paused_for_read_only

    def counted() -> bool:
        paused = check()
        paused_turns[0] += paused
        return paused

    worker.paused_for_read_only = counted  # type: ignore[method-assign]

    def run() -> None:
        try:
            worker.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    with caplog.at_level(logging.INFO, logger="rdv.worker"):
        thread.start()
        try:
            # Several turns of the loop with the switch on: a claim would have happened.
            assert wait_for(lambda: paused_turns[0] >= 5)
            assert status_of(result.id) == "READY"
            turn_read_only(False)
            thread.join(timeout=30)
            assert not thread.is_alive()
        finally:
            worker.running = False
            thread.join(timeout=30)
    assert status_of(result.id) == "SUCCESSFUL"
    messages = worker_messages(caplog)
    assert sum("worker pauses" in m for m in messages) == 1
    assert sum("worker resumes" in m for m in messages) == 1


def test_a_batch_run_in_read_only_mode_runs_nothing(settings: Any) -> None:
    settings.READ_ONLY = True
    result = echo.enqueue("not now")
    make_worker(batch=True).run()
    assert status_of(result.id) == "READY"
    settings.READ_ONLY = False
    make_worker(batch=True).run()
    assert status_of(result.id) == "SUCCESSFUL"
