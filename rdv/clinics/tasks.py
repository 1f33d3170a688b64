"""Background work for clinics, run by the task worker: the evening email with the link
to tomorrow's day sheet (rdv.clinics.evening), every day at 18:00 Quebec time."""

from __future__ import annotations

from datetime import date, timedelta

from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.clinics import evening
from rdv.core import clock


@task()
def send_evening_sheets(day: str) -> int:
    """Queue the emails about `day`'s sheet (ISO date: the run knows its day even if the
    worker only gets to it after midnight), then queue the next evening's run."""
    try:
        return evening.queue_evening_sheets(day=date.fromisoformat(day), now=clock.now())
    finally:
        schedule_evening_sheets()


def schedule_evening_sheets() -> None:
    """Keep exactly one future run queued (safe to call at every start)."""
    queued = DBTaskResult.objects.filter(task_path=send_evening_sheets.module_path, status="READY")
    if queued.exists():
        return
    run_at = evening.next_evening(clock.now())
    tomorrow = clock.local_date(run_at) + timedelta(days=1)
    send_evening_sheets.using(run_after=run_at).enqueue(tomorrow.isoformat())
