"""/healthz and /readyz for the load balancer and the orchestrator (docs/monitoring.md).

/healthz says the process answers, and nothing else: it touches no database, so a
database outage never gets every app server restarted. /readyz says whether this server
can do its work: the database answers, its schema is the code's, and the worker is
taking the tasks that fall due. Neither answer is cached, and neither names more than
which check failed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from rdv.continuity import readonly
from rdv.continuity.status import read_status
from rdv.core import clock

logger = logging.getLogger(__name__)

OK = "ok"
# Once this process has seen the schema up to date it stays so: migrations are applied
# before new code starts, never while it runs.
_migrations_applied = False


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def migrations_applied() -> bool:
    """No migration of the code's is missing from the database (a positive answer is
    kept for the life of the process: the migration graph is slow to load)."""
    global _migrations_applied  # noqa: PLW0603
    if not _migrations_applied:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        _migrations_applied = not plan
    return _migrations_applied


def oldest_due_task_at() -> datetime | None:
    """When the longest-waiting task that is due and not yet taken fell due, if any.

    A task enqueued to run at once stores the backend's "no date" in run_after: it fell
    due when enqueued."""
    now = clock.now()
    ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    at_once = ready.filter(run_after=get_date_max()).aggregate(at=Min("enqueued_at"))["at"]
    scheduled = (
        ready.exclude(run_after=get_date_max())
        .filter(run_after__lte=now)
        .aggregate(at=Min("run_after"))["at"]
    )
    candidates = [at for at in (at_once, scheduled) if at is not None]
    return min(candidates) if candidates else None


def oldest_due_task_seconds() -> float:
    """Seconds the oldest due task has waited for the worker; 0 when none is waiting."""
    due_at = oldest_due_task_at()
    return max(0.0, (clock.now() - due_at).total_seconds()) if due_at is not None else 0.0


def worker_keeps_up() -> bool:
    return oldest_due_task_seconds() <= settings.WORKER_STALE_SECONDS


def backup_is_recent() -> bool:
    """The last successful backup is younger than BACKUP_MAX_AGE_MINUTES."""
    last = read_status().last_success_at
    max_age = settings.BACKUP_MAX_AGE_MINUTES * 60
    return last is not None and (clock.now() - last).total_seconds() <= max_age


def readiness_checks() -> dict[str, str]:
    """Each check's outcome: "ok", or a word saying what is wrong."""
    if not database_answers():
        return {"database": "unavailable", "migrations": "unknown", "worker": "unknown"}
    checks = {"database": OK}
    try:
        checks["migrations"] = OK if migrations_applied() else "pending"
        # In read-only mode the worker claims nothing on purpose (its queue grows): that
        # must not take every app server out of the load balancer during an incident.
        if readonly.is_active():
            checks["worker"] = "paused"
        else:
            checks["worker"] = OK if worker_keeps_up() else "stalled"
    except DatabaseError:
        # The database went away between two checks.
        logger.warning("readiness: the database stopped answering during the checks")
        checks["database"] = "unavailable"
        checks.setdefault("migrations", "unknown")
        checks.setdefault("worker", "unknown")
    return checks


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every check passes, else 503 naming the failed ones. Read-only mode and an
    old backup are reported, not failures: the server still serves what it can."""
    checks = readiness_checks()
    ready = all(outcome in (OK, "paused") for outcome in checks.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": checks,
        "read_only": readonly.is_active(),
        "backup": "ok" if backup_is_recent() else "stale",
    }
    return JsonResponse(body, status=200 if ready else 503)
