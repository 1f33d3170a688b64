"""Background work for scheduling, run by the task worker (`manage.py db_worker`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.core import clock
from rdv.scheduling import services


def _next_night_run() -> datetime:
    tomorrow = clock.local_today() + timedelta(days=1)
    return datetime.combine(tomorrow, time(2, 30), tzinfo=clock.LOCAL_TZ)


@task()
def extend_slot_horizon() -> dict[str, int]:
    """Keep every practitioner's slots materialised over the rolling horizon, nightly."""
    try:
        result = services.generate_horizon()
    finally:
        # Whatever happened tonight, tomorrow's run is queued.
        schedule_horizon_extension()
    return {"created": result.created, "deleted": result.deleted}


def schedule_horizon_extension(*, immediately: bool = False) -> None:
    """Make sure exactly one future run is queued (safe to call at every start)."""
    pending = DBTaskResult.objects.filter(task_path=extend_slot_horizon.module_path, status="READY")
    if pending.exists():
        return
    run_after = clock.now() if immediately else _next_night_run()
    extend_slot_horizon.using(run_after=run_after).enqueue()
