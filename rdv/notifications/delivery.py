"""The worker's side of the outbox: claim what is due, send it, record every attempt.

A message is claimed by compare-and-set (pending → sending, with a lease) in a short
transaction of its own, sent outside any transaction, then marked sent in another. A
worker killed after claiming leaves the message "sending" until its lease ends; another
run then takes it again. The only window for a duplicate is between the provider taking
the message and our commit a millisecond later; email carries the same Message-ID on
every try, which mail systems use to drop a copy.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from rdv.accounts.models import User
from rdv.clinics import evening
from rdv.core import clock
from rdv.notifications.models import (
    ACCOUNT_KINDS,
    FINDER_KINDS,
    Attempt,
    Channel,
    Kind,
    Message,
    MessageStatus,
)
from rdv.notifications.render import render
from rdv.notifications.senders import DeliveryError, send_email, send_sms
from rdv.notifications.services import (
    TWILIO_UNSUBSCRIBED,
    after_quiet_hours,
    stop_sms_for,
    tell_clinic_of_failure,
)
from rdv.scheduling.models import AppointmentStatus

logger = logging.getLogger(__name__)

BATCH = 50


def deliver_due(*, limit: int = BATCH) -> int:
    """Send what is due now, oldest first; the number of messages sent."""
    sent = 0
    for pk in claim_due(now=clock.now(), limit=limit):
        sent += deliver_one(pk)
    return sent


def claim_due(*, now: datetime, limit: int) -> list[int]:
    """Take up to `limit` due messages for this worker (pending, or abandoned by a worker
    whose lease ran out). Concurrent workers never take the same message."""
    lease = now + timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS)
    with transaction.atomic():
        due = Message.objects.filter(
            Q(status=MessageStatus.PENDING) | Q(status=MessageStatus.SENDING, lease_until__lte=now),
            due_at__lte=now,
        ).order_by("due_at", "id")
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            Message.objects.filter(pk__in=ids).update(
                status=MessageStatus.SENDING, lease_until=lease
            )
    return ids


def deliver_one(pk: int) -> int:
    """Send one claimed message; 1 if it went out."""
    message = (
        Message.objects.select_related(
            "recipient",
            "appointment__slot__clinic",
            "appointment__slot__practitioner",
            "appointment__patient",
        )
        .filter(pk=pk, status=MessageStatus.SENDING)
        .first()
    )
    if message is None:
        return 0  # withdrawn (cancelled or moved) since it was claimed
    now = clock.now()
    if _outdated(message, now):
        _finish(message, MessageStatus.CANCELLED)
        return 0
    if message.channel == Channel.SMS and after_quiet_hours(now) != now:
        # Quiet hours began while it waited: deferred to 08:00, not counted as a try.
        Message.objects.filter(pk=pk, status=MessageStatus.SENDING).update(
            status=MessageStatus.PENDING, lease_until=None, due_at=after_quiet_hours(now)
        )
        return 0
    try:
        content = render(message)
        send = send_email if message.channel == Channel.EMAIL else send_sms
        provider_id = send(message, content)
    except DeliveryError as exc:
        _failed(message, exc.reason, now, permanent=exc.permanent)
        if exc.code == TWILIO_UNSUBSCRIBED:
            stop_sms_for(message.address_index)  # the number answered STOP at some point
        return 0
    with transaction.atomic():
        Message.objects.filter(pk=pk).update(
            status=MessageStatus.SENT,
            payload="",
            sent_at=now,
            provider_id=provider_id,
            attempts=F("attempts") + 1,
            lease_until=None,
            last_error="",
        )
        Attempt.objects.create(message_id=pk, at=now, ok=True, provider_id=provider_id)
    return 1


def _outdated(message: Message, now: datetime) -> bool:
    """Not worth sending any more: a reminder whose appointment was cancelled, moved or
    has passed, or whose recipient turned reminders (or that channel) off since; a
    missed-visit notice for a patient checked in after all; an account email whose code
    or link has expired; an evening day-sheet email whose day is over or whose recipient
    is no longer an administrator of the clinic."""
    if message.kind in ACCOUNT_KINDS or message.kind in FINDER_KINDS:
        # Finder messages too: an offer after its answer time, an alert after its slot.
        expires_at = json.loads(message.payload or "{}").get("expires_at")
        return expires_at is not None and datetime.fromisoformat(expires_at) <= now
    if message.kind == Kind.DAY_SHEET:
        return not evening.still_wanted(message, now)
    if message.kind == Kind.MISSED:
        # The patient was checked in after all (late) since the notice was written.
        return message.appointment is None or message.appointment.status != AppointmentStatus.NOSHOW
    if message.kind != Kind.REMINDER:
        return False
    appointment = message.appointment
    return (
        appointment is None
        or (message.recipient is not None and not _reminders_wanted(message.recipient, message))
        or appointment.status != AppointmentStatus.BOOKED
        or appointment.slot.start <= now
        or _reminded_slot(message.key) != str(appointment.slot_id)
    )


def _reminders_wanted(user: User, message: Message) -> bool:
    """The recipient still wants reminders, on this message's channel."""
    on_channel = user.notify_by_email if message.channel == Channel.EMAIL else user.notify_by_sms
    return user.reminders and on_channel


def _reminded_slot(key: str) -> str:
    """The slot a reminder was written for: keys are reminder:<appointment>:<slot>:…"""
    parts = key.split(":")
    return parts[2] if len(parts) > 2 else ""


def _finish(message: Message, status: str) -> None:
    Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
        status=status, lease_until=None, payload=""
    )


def _failed(message: Message, reason: str, now: datetime, *, permanent: bool) -> None:
    """Record the failed try; retry later with exponential back-off, or give up."""
    attempts = message.attempts + 1
    gave_up = permanent or attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
    delay = timedelta(seconds=settings.NOTIFICATION_RETRY_SECONDS * 2 ** (attempts - 1))
    changes = {"status": MessageStatus.PENDING, "due_at": now + delay}
    if gave_up:
        changes = {"status": MessageStatus.FAILED, "payload": ""}
    with transaction.atomic():
        # Only while this worker still holds it: one withdrawn meanwhile stays withdrawn.
        still_ours = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
            attempts=attempts, lease_until=None, last_error=reason, **changes
        )
        Attempt.objects.create(message_id=message.pk, at=now, ok=False, error=reason)
        gave_up = gave_up and still_ours == 1
        if gave_up:
            tell_clinic_of_failure(message, now=now)
    if gave_up:
        # Only the kind of error: a provider's words may quote the address ("SMTP…: {email}").
        logger.warning(
            "message %s failed for good after %s tries: %s",
            message.pk,
            attempts,
            reason.split(":", 1)[0],
        )
