"""The appointment finder's messages (an offer to answer, a free alert, a refund), through
the outbox like every message.

Written in the engine's (or the service's) transaction, so a message exists exactly when
the offer, alert or refund it announces does. Their subject, text and SMS text are written
now, in the recipient's language, into the encrypted payload (like account emails:
rdv.notifications.account_mail) and erased once sent; the worker renders them as written
(rdv.notifications.render) and drops an offer whose answer time has passed. Text messages
wait for the end of quiet hours (21:00–08:00) like every text message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from rdv.accounts.models import User
from rdv.core import clock
from rdv.core.money import format_cad
from rdv.notifications.models import FINDER_KINDS, Channel, Kind, Message, MessageStatus
from rdv.notifications.services import address_index, after_quiet_hours
from rdv.notifications.tasks import deliver_now
from rdv.patients.queries import own_patient
from rdv.scheduling.models import AppointmentType, Slot


def queue(
    user: User,
    *,
    kind: str,
    key: str,
    subject: str,
    text: str,
    sms: str,
    channels: Iterable[str],
    expires_at: datetime | None = None,
) -> int:
    """One message per channel asked for (email to the account's address, SMS to its own
    file's phone), keyed `<key>:<channel>`: writing the same message twice writes it once.
    Returns how many rows were written."""
    if kind not in FINDER_KINDS:
        raise ValueError(kind)
    now = clock.now()
    payload = json.dumps(
        {
            "subject": subject,
            "text": text,
            "sms": sms,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
    )
    messages = []
    for channel in channels:
        address = _address(user, channel)
        if not address:
            continue
        messages.append(
            Message(
                key=f"{key}:{channel}"[:120],
                kind=kind,
                channel=channel,
                recipient=user,
                address=address,
                address_index=address_index(address),
                language=user.preferred_language,
                due_at=after_quiet_hours(now) if channel == Channel.SMS else now,
                created_at=now,
                payload=payload,
            )
        )
    if not messages:
        return 0
    written = Message.objects.bulk_create(messages, ignore_conflicts=True)
    # Robust: should queueing the task fail, the regular sweep sends the messages anyway.
    transaction.on_commit(deliver_now.enqueue, robust=True)
    return len(written)


def _address(user: User, channel: str) -> str:
    if channel == Channel.EMAIL:
        return user.email
    me = own_patient(user)
    return me.phone if me is not None and me.phone else ""


def withdraw(key_prefix: str) -> int:
    """Messages not sent yet under this key (e.g. an offer answered or withdrawn before
    its message went out) are not sent, and their text is erased."""
    return Message.objects.filter(
        key__startswith=f"{key_prefix}:",
        status__in=[MessageStatus.PENDING, MessageStatus.SENDING],
    ).update(status=MessageStatus.CANCELLED, lease_until=None, payload="")


def request_url(request_id: int) -> str:
    return settings.SITE_URL + reverse("finder_request", args=[request_id])


def _local(moment: datetime, fmt: str) -> str:
    return moment.astimezone(clock.LOCAL_TZ).strftime(fmt)


def _when(slot: Slot) -> str:
    """The slot's local date and time, e.g. "2026-11-25 09:00"."""
    return _local(slot.start, "%Y-%m-%d %H:%M")


def offer_key(offer_id: int) -> str:
    return f"{Kind.FINDER_OFFER}:{offer_id}"


def queue_offer(
    user: User,
    *,
    offer_id: int,
    request_id: int,
    slot: Slot,
    expires_at: datetime,
    channels: Iterable[str],
) -> int:
    """ "A time is held for you: answer before HH:MM", with the link to the request."""
    link = request_url(request_id)
    with translation.override(user.preferred_language):
        answer_by = _local(expires_at, "%H:%M")
        facts = {
            "clinic": slot.clinic.name,
            "practitioner": slot.practitioner.display_name,
            "when": _when(slot),
            "deadline": answer_by,
            "link": link,
        }
        subject = _("An appointment is held for you: answer before %(deadline)s") % facts
        text = (
            _(
                "The appointment finder found a time that fits your request:\n\n"
                "%(when)s, %(practitioner)s, %(clinic)s\n\n"
                "It is held for you until %(deadline)s. Accept or decline it here:\n"
                "%(link)s\n\n"
                "Without an answer by then, it goes to the next person in line and we keep "
                "searching for you."
            )
            % facts
        )
        sms = (
            _("RDV Santé: %(when)s, %(clinic)s, held for you until %(deadline)s. Answer: %(link)s")
            % facts
        )
    return queue(
        user,
        kind=Kind.FINDER_OFFER,
        key=offer_key(offer_id),
        subject=subject,
        text=text,
        sms=sms,
        channels=channels,
        expires_at=expires_at,
    )


def queue_alert(user: User, *, alert_id: int, slot: Slot, channels: Iterable[str]) -> int:
    """A free alert: a time opened; not held, whoever books first gets it. Not sent once
    the slot has started."""
    link = settings.SITE_URL + reverse("slot", args=[slot.pk])
    with translation.override(user.preferred_language):
        facts = {
            "clinic": slot.clinic.name,
            "practitioner": slot.practitioner.display_name,
            "when": _when(slot),
            "type": str(AppointmentType(slot.appointment_type).label),
            "link": link,
        }
        subject = _("A time just opened: %(when)s, %(clinic)s") % facts
        text = (
            _(
                "A time matching your alert just opened:\n\n"
                "%(when)s, %(practitioner)s, %(clinic)s (%(type)s)\n\n"
                "It is not held for you: the first person to book it gets it.\n%(link)s"
            )
            % facts
        )
        sms = _("RDV Santé: a time opened, %(when)s, %(clinic)s. %(link)s") % facts
    return queue(
        user,
        kind=Kind.FINDER_ALERT,
        key=f"{Kind.FINDER_ALERT}:{alert_id}:{slot.pk}:{int(clock.now().timestamp())}",
        subject=subject,
        text=text,
        sms=sms,
        channels=channels,
        expires_at=slot.start,
    )


def queue_refunded(user: User, *, request_id: int, amount_cents: int, reason: str) -> int:
    """The request ended without a booking (deadline) or was cancelled: the full amount is
    being refunded. One message per request and channel, whatever calls it again."""
    with translation.override(user.preferred_language):
        facts = {
            "amount": format_cad(amount_cents, user.preferred_language),
            "link": request_url(request_id),
        }
        if reason == "deadline":
            why = _("No appointment was found for your request before its deadline.")
        else:
            why = _("Your request was cancelled.")
        subject = _("Your appointment finder request is refunded")
        text = (
            why
            + "\n\n"
            + _(
                "We are refunding %(amount)s to your card; it may take a few days to "
                "appear.\n\nDetails and receipt: %(link)s"
            )
            % facts
        )
        sms = why + " " + _("RDV Santé refunds %(amount)s to your card.") % facts
    return queue(
        user,
        kind=Kind.REFUNDED,
        key=f"{Kind.REFUNDED}:{request_id}",
        subject=str(subject),
        text=text,
        sms=sms,
        channels=[Channel.EMAIL, Channel.SMS] if _wants_sms(user) else [Channel.EMAIL],
    )


def _wants_sms(user: User) -> bool:
    return bool(user.notify_by_sms and _address(user, Channel.SMS))
