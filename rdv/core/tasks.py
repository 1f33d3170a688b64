"""Housekeeping run by the task worker: finished task results are pruned nightly.

The periodic sweeps (outbox every NOTIFICATION_SWEEP_SECONDS, audit sealing every
AUDIT_SEAL_SECONDS) each leave a result row; without pruning that is about 14,000 rows a
day.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.management import call_command
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.core import clock


@task()
def prune_task_results() -> None:
    """Delete finished results older than TASK_RESULT_DAYS (failed ones are kept longer,
    to be read), then queue tomorrow's run."""
    try:
        call_command(
            "prune_db_task_results",
            min_age_days=settings.TASK_RESULT_DAYS,
            failed_min_age_days=settings.TASK_RESULT_FAILED_DAYS,
            queue_name="*",
            verbosity=0,
        )
    finally:
        schedule_pruning()


def schedule_pruning() -> None:
    """Keep exactly one future run queued (safe to call at every start)."""
    queued = DBTaskResult.objects.filter(task_path=prune_task_results.module_path, status="READY")
    if queued.exists():
        return
    prune_task_results.using(run_after=clock.tomorrow_at(time(3, 15))).enqueue()
