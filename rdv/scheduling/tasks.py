"""Background work for scheduling, run by the task worker (`manage.py worker`)."""

from __future__ import annotations

from datetime import time

from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.core import clock
from rdv.scheduling import services


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
    run_after = clock.now() if immediately else clock.tomorrow_at(time(2, 30))
    extend_slot_horizon.using(run_after=run_after).enqueue()
