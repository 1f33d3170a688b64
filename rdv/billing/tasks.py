"""The refund worker: carries out due refunds every minute or so, and at once when one
is requested (queued at commit by services.request_refund)."""

from __future__ import annotations

from datetime import timedelta

from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.billing.services import process_due_refunds
from rdv.core import clock

# Refunds retried after a failure wait at least a minute (services.REFUND_RETRY_SECONDS).
SWEEP_SECONDS = 60


@task()
def process_refunds() -> int:
    """Carry out what is due, then keep the next sweep queued (whatever happened)."""
    try:
        return process_due_refunds()
    finally:
        schedule_refunds(delay=timedelta(seconds=SWEEP_SECONDS))


def schedule_refunds(*, delay: timedelta = timedelta(0)) -> None:
    """Keep exactly one future sweep queued (safe to call at every start)."""
    queued = DBTaskResult.objects.filter(task_path=process_refunds.module_path, status="READY")
    if queued.exists():
        return
    process_refunds.using(run_after=clock.now() + delay).enqueue()
