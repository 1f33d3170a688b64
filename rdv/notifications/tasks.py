"""The outbox sweep, run by the task worker every NOTIFICATION_SWEEP_SECONDS."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.core import clock
from rdv.notifications.delivery import deliver_due


@task()
def deliver_notifications() -> int:
    """Send what is due, then queue the next sweep (whatever happened to this one)."""
    try:
        return deliver_due()
    finally:
        schedule_delivery(delay=timedelta(seconds=settings.NOTIFICATION_SWEEP_SECONDS))


@task()
def deliver_now() -> int:
    """Send what is due at once: queued when an account email is written, so a sign-up
    code does not wait for the next sweep."""
    return deliver_due()


def schedule_delivery(*, delay: timedelta = timedelta(0)) -> None:
    """Keep exactly one future sweep queued (safe to call at every start)."""
    queued = DBTaskResult.objects.filter(
        task_path=deliver_notifications.module_path, status="READY"
    )
    if queued.exists():
        return
    deliver_notifications.using(run_after=clock.now() + delay).enqueue()
