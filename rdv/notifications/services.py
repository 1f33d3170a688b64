"""Writing messages to the outbox. Called inside the transaction of the change that causes
them (a booking, a cancellation, a move), so a message exists exactly when its cause does.

Nothing here sends anything: `delivery.deliver_due` does, in the worker.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db import transaction
from django.db.models import Count

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.clinics.models import Membership
from rdv.core import clock
from rdv.core.crypto import blind_index
from rdv.notifications.models import Channel, Kind, Message, MessageStatus
from rdv.patients.models import Patient
from rdv.patients.queries import own_patient
from rdv.scheduling.models import Appointment

ADDRESS_INDEX_PURPOSE = "notification-address"
TWILIO_UNSUBSCRIBED = "21610"  # "Attempt to send to unsubscribed recipient"
# What people answer to stop text messages, in English and French (Twilio's list, plus
# ARRET/ARRÊT as Quebec carriers honour them).
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRÊT", "ARRETER"}
)
# A clinic's file of a caller without an account has no language preference yet: Quebec's.
RECORD_LANGUAGE = "fr"
QUIET_START = time(21, 0)
QUIET_END = time(8, 0)


def after_quiet_hours(moment: datetime) -> datetime:
    """The moment itself, or 08:00 local time if it falls between 21:00 and 08:00: text
    messages are deferred, never dropped."""
    local = moment.astimezone(clock.LOCAL_TZ)
    if QUIET_END <= local.time() < QUIET_START:
        return moment
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=clock.LOCAL_TZ)


def address_index(address: str) -> str:
    return blind_index(address.strip().lower(), purpose=ADDRESS_INDEX_PURPOSE)


def reminder_time(start: datetime, days_before: int) -> datetime:
    """`days_before` days before `start`, at the same local time of day: a 9:00 visit is
    reminded at 9:00, on either side of a daylight-saving change."""
    local = start.astimezone(clock.LOCAL_TZ)
    day = local.date() - timedelta(days=days_before)
    return datetime.combine(day, local.time(), tzinfo=clock.LOCAL_TZ)


def _channels(patient: Patient) -> list[tuple[str, str]]:
    """(channel, address) pairs the account holder asked for; for a clinic's file of a
    caller without an account, a text to the file's phone (none without one, or once the
    number answered STOP)."""
    user = patient.account
    if user is None:
        sms = patient.phone and not patient.sms_stopped
        return [(Channel.SMS, patient.phone)] if sms else []
    wanted: list[tuple[str, str]] = []
    if user.notify_by_email and user.email:
        wanted.append((Channel.EMAIL, user.email))
    if user.notify_by_sms:
        me = own_patient(user)
        if me is not None and me.phone:
            wanted.append((Channel.SMS, me.phone))
    return wanted


def _message(
    appointment: Appointment,
    *,
    key: str,
    kind: str,
    channel: str,
    address: str,
    due_at: datetime,
    now: datetime,
) -> Message:
    user = appointment.patient.account
    return Message(
        key=key,
        kind=kind,
        channel=channel,
        recipient=user,
        appointment=appointment,
        address=address,
        address_index=address_index(address),
        language=user.preferred_language if user is not None else RECORD_LANGUAGE,
        due_at=after_quiet_hours(due_at) if channel == Channel.SMS else due_at,
        created_at=now,
    )


def _save(messages: list[Message]) -> None:
    """One INSERT; a key already there (the same change written twice) is left as it was."""
    if messages:
        Message.objects.bulk_create(messages, ignore_conflicts=True)


def _now_messages(appointment: Appointment, kind: str, suffix: str, now: datetime) -> list[Message]:
    return [
        _message(
            appointment,
            key=f"{kind}:{appointment.pk}:{suffix}:{channel}",
            kind=kind,
            channel=channel,
            address=address,
            due_at=now,
            now=now,
        )
        for channel, address in _channels(appointment.patient)
    ]


def _reminders(appointment: Appointment, now: datetime) -> list[Message]:
    user = appointment.patient.account
    if user is not None and not user.reminders:
        return []
    slot = appointment.slot
    clinic = slot.clinic
    channels = _channels(appointment.patient)
    messages: list[Message] = []
    for days in sorted({clinic.first_reminder_days, clinic.second_reminder_days}, reverse=True):
        due = reminder_time(slot.start, days)
        if days <= 0 or due <= now:
            continue  # none asked for, or booked too late for this one
        messages.extend(
            _message(
                appointment,
                key=f"reminder:{appointment.pk}:{slot.pk}:{days}:{channel}",
                kind=Kind.REMINDER,
                channel=channel,
                address=address,
                due_at=due,
                now=now,
            )
            for channel, address in channels
        )
    return messages


def withdraw_waiting(appointment: Appointment, *, kinds: tuple[str, ...] = (Kind.REMINDER,)) -> int:
    """Pending reminders of an appointment that was cancelled or moved are never sent (nor
    a missed-visit notice once the patient is checked in after all)."""
    return Message.objects.filter(
        appointment=appointment,
        kind__in=kinds,
        status__in=[MessageStatus.PENDING, MessageStatus.SENDING],
    ).update(status=MessageStatus.CANCELLED, lease_until=None)


def withdraw_reminders_to(user: User) -> int:
    """Reminders off for an account: every reminder waiting for it, whoever the patient
    (withdraw_waiting is per appointment)."""
    return Message.objects.filter(
        recipient=user,
        kind=Kind.REMINDER,
        status__in=[MessageStatus.PENDING, MessageStatus.SENDING],
    ).update(status=MessageStatus.CANCELLED, lease_until=None)


def appointment_booked(appointment: Appointment, *, now: datetime) -> None:
    """The confirmation now, the reminders at their times."""
    _save(_now_messages(appointment, Kind.BOOKED, "", now) + _reminders(appointment, now))


def appointment_cancelled(appointment: Appointment, *, now: datetime) -> None:
    withdraw_waiting(appointment)
    _save(_now_messages(appointment, Kind.CANCELLED, "", now))


def appointment_moved(appointment: Appointment, *, now: datetime) -> None:
    """The old time's reminders are withdrawn, the new time confirmed and reminded."""
    withdraw_waiting(appointment)
    moved = _now_messages(appointment, Kind.MOVED, str(appointment.slot_id), now)
    _save(moved + _reminders(appointment, now))


def appointment_missed(appointment: Appointment, *, now: datetime) -> None:
    """The clinic marked the patient absent: tell them, and how to avoid it next time."""
    withdraw_waiting(appointment)
    _save(_now_messages(appointment, Kind.MISSED, "", now))


def outbox_counts() -> dict[str, int]:
    """Messages by status, for the platform admin and the metrics."""
    counts = dict.fromkeys(MessageStatus.values, 0)
    grouped = Message.objects.values("status").annotate(n=Count("id")).values_list("status", "n")
    for status, count in grouped:
        counts[status] = count
    return counts


def record_provider_status(*, provider_id: str, status: str, error_code: str = "") -> bool:
    """What the SMS provider reports about a message it took; False for an unknown id.

    Error 21610 means the number answered STOP: text messages are turned off for the
    accounts that used it (email stays on, so they still hear from us)."""
    message = Message.objects.filter(provider_id=provider_id, channel=Channel.SMS).first()
    if message is None:
        return False
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            provider_status=status[:20],
            last_error=f"provider error {error_code}"[:300] if error_code else message.last_error,
        )
        if error_code == TWILIO_UNSUBSCRIBED:
            stop_sms_for(message.address_index)
    return True


def stop_requested(*, number: str, body: str) -> bool:
    """An incoming text: STOP (or ARRET…) turns text messages off for that number."""
    if body.strip().upper().rstrip(".!") not in STOP_WORDS:
        return False
    with transaction.atomic():
        stop_sms_for(address_index(number))
    return True


def stop_sms_for(index: str) -> None:
    """Text messages off for every account that used this number, as the account's own
    preference change would do, audited the same way (by the system, on the number's
    request); and for every clinic's file of a caller without an account that did."""
    accounts = list(
        Message.objects.filter(address_index=index, channel=Channel.SMS, recipient__isnull=False)
        .values_list("recipient", flat=True)
        .distinct()
    )
    User.objects.filter(pk__in=accounts).update(notify_by_sms=False, notify_by_email=True)
    for account_id in accounts:
        audit.record(
            "account.preferences",
            actor=None,
            role="system",
            subject=audit.Subject(object_type="account", object_id=str(account_id)),
        )
    _stop_sms_for_records(index)
    Message.objects.filter(
        address_index=index, channel=Channel.SMS, status=MessageStatus.PENDING
    ).update(status=MessageStatus.CANCELLED)


def _stop_sms_for_records(index: str) -> None:
    records = list(
        Patient.objects.filter(
            account__isnull=True,
            sms_stopped=False,
            appointments__messages__address_index=index,
            appointments__messages__channel=Channel.SMS,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    Patient.objects.filter(pk__in=records).update(sms_stopped=True)
    for patient_id in records:
        audit.record(
            "patient.sms_stopped",
            actor=None,
            role="system",
            subject=audit.Subject(
                object_type="patient", object_id=str(patient_id), patient_id=patient_id
            ),
        )


def forget_recipient(user: User) -> None:
    """An account is deleted: nothing more goes out to it, and its addresses are erased
    from the outbox (the delivery records stay, addressed to no one)."""
    Message.objects.filter(
        recipient=user, status__in=[MessageStatus.PENDING, MessageStatus.SENDING]
    ).update(status=MessageStatus.CANCELLED, lease_until=None)
    Message.objects.filter(recipient=user).update(
        address="", address_index="", payload="", recipient=None
    )


def tell_clinic_of_failure(message: Message, *, now: datetime) -> None:
    """A message to a patient failed for good: the clinic's administrators are told by
    email, so that someone calls the patient. Written in the caller's transaction."""
    appointment = message.appointment
    if appointment is None or message.kind == Kind.UNDELIVERED:
        return
    admins = User.objects.filter(
        memberships__clinic_id=appointment.slot.clinic_id,
        memberships__role=Membership.Role.CLINIC_ADMIN,
        is_active=True,
    ).distinct()
    _save(
        [
            Message(
                key=f"{Kind.UNDELIVERED}:{message.pk}:{admin.pk}",
                kind=Kind.UNDELIVERED,
                channel=Channel.EMAIL,
                recipient=admin,
                appointment=appointment,
                address=admin.email,
                address_index=address_index(admin.email),
                language=admin.preferred_language,
                due_at=now,
                created_at=now,
            )
            for admin in admins
        ]
    )
