"""The task worker: django_tasks_db's db_worker, made to outlive a database outage.

django_tasks_db's loop re-raises any OperationalError but "database is locked", so a
PostgreSQL restart would end the worker, and `manage.py serve` would then stop the whole
system. Here a lost database is waited out instead: connections are closed, one warning is
logged, and the worker retries with a capped backoff. A task cut by the outage is marked
failed once the database is back, and every periodic task is given its next run again
(their own `finally: schedule_*()` may have failed with the database).

While read-only mode is on (rdv.continuity.readonly), the worker claims nothing: the
finder's bookings and the notifications it would write wait until the mode is off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
)
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from rdv.audit.tasks import schedule_anchoring, schedule_sealing
from rdv.billing.tasks import schedule_refunds
from rdv.clinics.tasks import schedule_evening_sheets
from rdv.continuity import readonly
from rdv.core.middleware import is_database_unavailable
from rdv.core.tasks import schedule_pruning
from rdv.finder.tasks import schedule_sweep
from rdv.notifications.tasks import schedule_delivery
from rdv.scheduling.tasks import schedule_horizon_extension

logger = logging.getLogger("rdv.worker")

# Seconds between attempts to reach a lost database: doubling, capped.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 10.0
# Each keeps exactly one future run of its periodic task queued (the list `serve` calls at
# start). Safe to call again at any time.
PERIODIC_SCHEDULES: tuple[Callable[[], None], ...] = (
    schedule_horizon_extension,
    schedule_anchoring,
    schedule_sealing,
    schedule_delivery,
    schedule_pruning,
    schedule_evening_sheets,
    schedule_sweep,
    schedule_refunds,
)
# A task that failed with one of these may have lost its own rescheduling with it.
_DATABASE_ERROR_PATHS = frozenset(
    f"{cls.__module__}.{cls.__qualname__}" for cls in (OperationalError, InterfaceError)
)


class RunInterrupted(Exception):
    """Recorded as the failure of a task whose run the database outage cut short."""


class ResilientWorker(Worker):
    """db_worker's Worker, with an outage-proof loop and a read-only pause."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.periodic_schedules: tuple[Callable[[], None], ...] = PERIODIC_SCHEDULES
        self.outage_started: float | None = None
        self.backoff = FIRST_BACKOFF
        self.paused = False
        # At start too: under systemd no `serve` has queued the periodic tasks.
        self.reschedule_needed = True
        self.interrupted = 0  # tasks cut by the current outage, marked failed
        # An outage happened and what it cut is not settled yet (waits out read-only mode).
        self.settle_needed = False

    def run(self) -> None:
        logger.info("Starting worker worker_id=%s queues=%s", self.worker_id, self.queue_names)
        if self.startup_delay and self.interval:
            # Not a secret: only spreads the workers' first polls apart.
            time.sleep(random.random())  # noqa: S311  # nosec B311
        while self.running:
            try:
                done = self.step()
            except (OperationalError, InterfaceError) as exc:
                if not is_database_unavailable(exc):
                    raise
                self.wait_for_database(exc)
                continue
            if self.outage_started is not None:
                self.log_recovery()
            if done:
                return

    def step(self) -> bool:
        """One turn of the loop: claim and run at most one task. True when the worker is
        done (batch finished, or --max-tasks reached)."""
        close_old_connections()
        # Before settling an outage or rescheduling: a read-only database (a replica)
        # would refuse those writes.
        if self.paused_for_read_only():
            if self.batch:
                logger.info("Read-only mode: nothing run by worker_id=%s.", self.worker_id)
                return True
            time.sleep(self.interval)
            return False
        if self.settle_needed:
            self.settle_outage()
        if self.reschedule_needed:
            self.reschedule_periodic_tasks()
        task_result, retrieved = self.claim()
        if task_result is not None:
            self.run_task(task_result)
        if self.batch and retrieved and task_result is None:
            logger.info("No more tasks to run for worker_id=%s - exiting.", self.worker_id)
            return True
        if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
            logger.info("Ran %d tasks on worker_id=%s - exiting.", self._run_tasks, self.worker_id)
            return True
        close_old_connections()
        if self.running and task_result is None:
            time.sleep(self.interval)
        return False

    def claim(self) -> tuple[DBTaskResult[Any, Any] | None, bool]:
        """The next ready task, claimed for this worker (None if there is none, or if the
        database is locked: the bool says whether the queue was really read)."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        with exclusive_transaction(tasks.db):
            try:
                task_result = tasks.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)
            except OperationalError as exc:
                if not is_locked_database_exception(exc):
                    raise
                return None, False
        return task_result, True

    def run_task(self, db_task_result: DBTaskResult[Any, Any]) -> None:
        super().run_task(db_task_result)
        if db_task_result.exception_class_path in _DATABASE_ERROR_PATHS:
            self.reschedule_needed = True

    def paused_for_read_only(self) -> bool:
        active = readonly.is_active()
        if active != self.paused:
            self.paused = active
            if active:
                logger.warning("Read-only mode: the worker pauses (claims no task).")
            else:
                logger.warning("Read-only mode is off: the worker resumes.")
        return active

    def wait_for_database(self, exc: Exception) -> None:
        """Drop every connection (each may be broken), warn once per outage, back off."""
        self.settle_needed = True
        if self.outage_started is None:
            self.outage_started = time.monotonic()
            self.backoff = FIRST_BACKOFF
            logger.warning(
                "Database unreachable (%s: %s); the worker retries every %g to %g s.",
                type(exc.__cause__ or exc).__name__,
                str(exc).strip().partition("\n")[0][:200],
                FIRST_BACKOFF,
                MAX_BACKOFF,
            )
        for connection in connections.all(initialized_only=True):
            with contextlib.suppress(DatabaseError):
                connection.close()
        time.sleep(self.backoff)
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def settle_outage(self) -> None:
        """Once the database answers again and read-only mode is off (a step may run again
        after a new outage: both are safe to repeat): what the outage cut is marked
        failed, periodic tasks get their next run."""
        self.interrupted += self.fail_interrupted_tasks()
        self.reschedule_periodic_tasks()
        self.settle_needed = False

    def log_recovery(self) -> None:
        started = self.outage_started or time.monotonic()
        logger.warning(
            "Database reachable again after %.0f s; %d interrupted task(s) marked failed.",
            time.monotonic() - started,
            self.interrupted,
        )
        self.outage_started = None
        self.backoff = FIRST_BACKOFF
        self.interrupted = 0

    def fail_interrupted_tasks(self) -> int:
        """Tasks still RUNNING under this worker's id: this worker runs one task at a time
        and runs none now, so their run was cut (or its outcome could not be recorded)."""
        running = DBTaskResult.objects.running().filter(backend_name=self.backend_name)
        cut = [r for r in running if r.worker_ids and r.worker_ids[-1] == self.worker_id]
        for result in cut:
            result.set_failed(RunInterrupted("The database was lost while this task ran."))
        return len(cut)

    def reschedule_periodic_tasks(self) -> None:
        for schedule in self.periodic_schedules:
            schedule()
        self.reschedule_needed = False


class Command(DBWorkerCommand):
    help = "Run the task worker (waits out database outages; pauses in read-only mode)."

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options: Any,
    ) -> None:
        # db_worker's handle, building this module's Worker.
        self.configure_logging(verbosity)
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = ResilientWorker(
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        if reload and not batch:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()  # only the reloaded child
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
