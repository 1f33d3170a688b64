"""The outbox as Prometheus gauges: how many messages are in each state, and how long the
oldest due message has been waiting (it grows when the worker has stopped)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rdv.core import clock
from rdv.notifications import services
from rdv.notifications.models import Message, MessageStatus


def oldest_due_seconds() -> float:
    """Seconds since the oldest pending message fell due; 0 when none is waiting."""
    now = clock.now()
    # The outbox's partial index on (due_at, id) over pending and sending rows answers this.
    oldest = (
        Message.objects.filter(status=MessageStatus.PENDING, due_at__lte=now)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    return (now - oldest).total_seconds() if oldest is not None else 0.0


class OutboxCollector(Collector):
    """Read at each scrape, so the figures are the database's, never a process's memory."""

    def collect(self) -> Iterator[Metric]:
        messages = GaugeMetricFamily(
            "rdv_notifications_messages",
            "Notification messages in the outbox, by status.",
            labels=["status"],
        )
        for status, count in services.outbox_counts().items():
            messages.add_metric([status], count)
        yield messages
        yield GaugeMetricFamily(
            "rdv_notifications_oldest_due_seconds",
            "Seconds the oldest due pending message has waited (0 if none).",
            value=oldest_due_seconds(),
        )
