"""Nightly pruning of finished task results: old ones go, recent and failed ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from rdv.core.tasks import prune_task_results
from rdv.notifications.tasks import deliver_notifications


def finished(status: str, days_ago: float) -> str:
    result = deliver_notifications.enqueue()
    when = timezone.now() - timedelta(days=days_ago)
    DBTaskResult.objects.filter(pk=result.id).update(
        status=status, started_at=when, finished_at=when
    )
    return str(result.id)


def test_old_finished_results_are_pruned_and_the_next_run_queued(db: Any) -> None:
    old = finished("SUCCESSFUL", 3)
    recent = finished("SUCCESSFUL", 1)
    failed = finished("FAILED", 3)
    prune_task_results.call()
    left = {str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)}
    assert old not in left
    assert {recent, failed} <= left
    queued = DBTaskResult.objects.filter(task_path=prune_task_results.module_path, status="READY")
    assert queued.count() == 1
    prune_task_results.call()
    assert queued.count() == 1  # still exactly one
