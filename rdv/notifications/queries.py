"""Reads of the outbox that more than one caller needs."""

from __future__ import annotations

from django.db.models import QuerySet

from rdv.notifications.models import Message
from rdv.scheduling.models import Appointment


def messages_for(appointment: Appointment) -> QuerySet[Message]:
    """An appointment's messages, in the order they were (or will be) sent."""
    return Message.objects.filter(appointment=appointment).order_by("due_at", "id")
