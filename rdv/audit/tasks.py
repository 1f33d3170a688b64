"""Sealing and anchoring the audit chain periodically, run by the task worker."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.audit.anchors import write_anchor
from rdv.audit.services import seal_pending
from rdv.core import clock


@task()
def seal_audit_log() -> int:
    """Seal what the after-commit sealing left behind, then queue the next run.

    Each auditing request seals right after its commit unless another sealer is busy; this
    periodic run bounds how long an entry can wait when no request follows it.
    """
    try:
        return seal_pending()
    finally:
        schedule_sealing(delay=timedelta(seconds=settings.AUDIT_SEAL_SECONDS))


def schedule_sealing(*, delay: timedelta = timedelta(0)) -> None:
    """Keep exactly one future run queued (safe to call at every start)."""
    pending = DBTaskResult.objects.filter(task_path=seal_audit_log.module_path, status="READY")
    if pending.exists():
        return
    seal_audit_log.using(run_after=clock.now() + delay).enqueue()


@task()
def anchor_audit_head() -> int | None:
    """Seal, write the chain head outside the database, then queue the next run."""
    try:
        seal_pending()
        anchor = write_anchor()
    finally:
        schedule_anchoring(delay=timedelta(minutes=settings.AUDIT_ANCHOR_MINUTES))
    return anchor.seq if anchor else None


def schedule_anchoring(*, delay: timedelta = timedelta(0)) -> None:
    """Keep exactly one future run queued (safe to call at every start)."""
    pending = DBTaskResult.objects.filter(task_path=anchor_audit_head.module_path, status="READY")
    if pending.exists():
        return
    anchor_audit_head.using(run_after=clock.now() + delay).enqueue()
