"""What /metrics reads at each scrape: the database's backlogs and the backups' status file.

Read at scrape time, not counted in memory, so the figures are the same whichever process
answers and survive restarts. A scrape never fails because the database does: the
database's figures are then left out and rdv_database_up says 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min, QuerySet
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rdv.audit.models import AuditEntry
from rdv.billing.models import Refund, RefundStatus
from rdv.continuity import readonly
from rdv.continuity.status import read_status
from rdv.core import clock, health
from rdv.finder.models import FinderRequest, RequestStatus, SlotEvent
from rdv.notifications.metrics import OutboxCollector

logger = logging.getLogger(__name__)


def _seconds_since(moment: datetime | None) -> float:
    return max(0.0, (clock.now() - moment).total_seconds()) if moment is not None else 0.0


def _timestamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


def _by_status(
    rows: QuerySet[Any], statuses: Iterable[str], name: str, documentation: str
) -> GaugeMetricFamily:
    """A gauge of rows by status, every status present (0 included)."""
    counts = dict.fromkeys(statuses, 0)
    for status, n in rows.values_list("status").annotate(n=Count("id")).order_by():
        counts[status] = n
    gauge = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, n in counts.items():
        gauge.add_metric([status], n)
    return gauge


def _backlog(
    waiting: QuerySet[Any], since: str, count: tuple[str, str], age: tuple[str, str]
) -> Iterator[Metric]:
    """Two gauges of a queue: how many rows wait, and how long the oldest has waited."""
    found = waiting.aggregate(n=Count("id"), oldest=Min(since))
    yield GaugeMetricFamily(*count, value=found["n"])
    yield GaugeMetricFamily(*age, value=_seconds_since(found["oldest"]))


class FinderEventsCollector(Collector):
    """Freed and published slots the finder has not yet looked at (its outbox)."""

    def collect(self) -> Iterator[Metric]:
        yield from _backlog(
            SlotEvent.objects.filter(processed_at__isnull=True),
            "created_at",
            (
                "rdv_finder_pending_events",
                "Slot events (published, freed, released) the finder has not processed yet.",
            ),
            (
                "rdv_finder_oldest_pending_event_seconds",
                "Seconds the oldest unprocessed slot event has waited (0 if none).",
            ),
        )


class FinderRequestsCollector(Collector):
    """Finder requests by status: "booked" counts the finder's bookings wherever its worker
    runs (the processes' booking counter sees them only on a host sharing the web's
    metrics directory)."""

    def collect(self) -> Iterator[Metric]:
        yield _by_status(
            FinderRequest.objects.all(),
            RequestStatus.values,
            "rdv_finder_requests",
            "Appointment-finder requests by status.",
        )


class AuditSealCollector(Collector):
    """Audit entries written but not yet sealed into the hash chain."""

    def collect(self) -> Iterator[Metric]:
        yield from _backlog(
            AuditEntry.objects.filter(seq__isnull=True),
            "occurred_at",
            ("rdv_audit_unsealed_entries", "Audit entries not yet sealed into the chain."),
            (
                "rdv_audit_oldest_unsealed_seconds",
                "Seconds the oldest unsealed audit entry has waited (0 if none).",
            ),
        )


class RefundCollector(Collector):
    """Refunds by status; a failed one gave up and needs a person (the admin lists it)."""

    def collect(self) -> Iterator[Metric]:
        yield _by_status(
            Refund.objects.all(),
            RefundStatus.values,
            "rdv_billing_refunds",
            "Refunds by status (failed: gave up).",
        )


class WorkerCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "rdv_worker_oldest_due_task_seconds",
            "Seconds the oldest due task has waited for the worker (0 if none).",
            value=health.oldest_due_task_seconds(),
        )


class DatabaseCollectors(Collector):
    """Runs collectors that read the database; if it does not answer, reports that alone."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        try:
            # Everything is read before anything is given out: all of it or none.
            families = [family for c in self._collectors for family in c.collect()]
        except DatabaseError:
            logger.warning("metrics: the database did not answer; its figures are left out")
            families = []
            up = 0
        else:
            up = 1
        yield GaugeMetricFamily(
            "rdv_database_up", "1 if the database answered this scrape, else 0.", value=up
        )
        yield from families


class BackupCollector(Collector):
    """The backups' outcome, from their status file (readable with the database down)."""

    def collect(self) -> Iterator[Metric]:
        status = read_status()
        yield CounterMetricFamily(
            "rdv_backup_failures", "Backups that failed.", value=status.failures_total
        )
        yield GaugeMetricFamily(
            "rdv_backup_consecutive_failures",
            "Backups that failed since the last success.",
            value=status.consecutive_failures,
        )
        yield GaugeMetricFamily(
            "rdv_backup_last_success_timestamp_seconds",
            "When the last backup succeeded (Unix time; 0 if never).",
            value=_timestamp(status.last_success_at),
        )
        yield GaugeMetricFamily(
            "rdv_backup_last_failure_timestamp_seconds",
            "When the last backup failed (Unix time; 0 if never).",
            value=_timestamp(status.last_failure_at),
        )
        yield GaugeMetricFamily(
            "rdv_backup_max_age_seconds",
            "How old the last successful backup may get (BACKUP_MAX_AGE_MINUTES).",
            value=settings.BACKUP_MAX_AGE_MINUTES * 60,
        )


class ReadOnlyCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "rdv_read_only",
            "1 while the platform is in read-only mode.",
            value=readonly.is_active(),
        )


def scraped() -> Iterable[Collector]:
    """Every collector /metrics reads (besides the processes' own counters)."""
    return (
        DatabaseCollectors(
            OutboxCollector(),
            FinderEventsCollector(),
            FinderRequestsCollector(),
            AuditSealCollector(),
            RefundCollector(),
            WorkerCollector(),
        ),
        BackupCollector(),
        ReadOnlyCollector(),
    )
