"""The appointment finder's background work, run by the task worker.

- process_slot_events: queued after the commit of any change that wrote slot events
  (rdv.finder.events), so a freed slot is offered within moments;
- match_new_request: queued when a request's payment succeeds;
- sweep_finder: every FINDER_SWEEP_SECONDS, what time alone changes (expired offers and
  holds, passed deadlines, released reservations), then any event still pending (a lost
  task is thus made up for by the next sweep).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rdv.core import clock
from rdv.finder import engine


@task()
def process_slot_events() -> int:
    return engine.process_events()


@task()
def match_new_request(request_id: int) -> bool:
    return engine.match_request(request_id) is not None


@task()
def sweep_finder(since: str | None = None) -> dict[str, int]:
    """One sweep, then the next one queued, carrying this run's time: reserved slots
    released in between are found without scanning every slot."""
    started = clock.now()
    try:
        result = engine.sweep(since=datetime.fromisoformat(since) if since else None)
    finally:
        schedule_sweep(delay=timedelta(seconds=settings.FINDER_SWEEP_SECONDS), since=started)
    return {
        "offers_expired": result.offers_expired,
        "requests_expired": result.requests_expired,
        "holds_expired": result.holds_expired,
        "released": result.released,
        "decisions": result.decisions,
    }


def schedule_sweep(*, delay: timedelta = timedelta(0), since: datetime | None = None) -> None:
    """Keep exactly one future sweep queued (safe to call at every start). A sweep with no
    `since` (the first after a start) looks back over the longest release rule."""
    queued = DBTaskResult.objects.filter(task_path=sweep_finder.module_path, status="READY")
    if queued.exists():
        return
    # A minute of overlap: a slot released while the previous sweep ran is not missed
    # (one already evented is skipped).
    since_text = (since - timedelta(minutes=1)).isoformat() if since else None
    sweep_finder.using(run_after=clock.now() + delay).enqueue(since_text)
