"""What a message says, rendered when it is sent (so a reminder shows the current time of
its appointment), in the recipient's language, dates in Quebec time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from rdv.clinics import evening
from rdv.clinics.models import Clinic
from rdv.clinics.sender import reply_to, sender_name
from rdv.notifications.links import link_url, unsubscribe_url
from rdv.notifications.models import ACCOUNT_KINDS, FINDER_KINDS, Channel, Kind, Message
from rdv.scheduling.ics import appointment_calendar

# Marked for translation here, translated when rendered, in the recipient's language.
SUBJECTS = {
    Kind.BOOKED: gettext_noop("Your appointment is booked"),
    Kind.REMINDER: gettext_noop("Reminder: your appointment"),
    Kind.CANCELLED: gettext_noop("Your appointment is cancelled"),
    Kind.MOVED: gettext_noop("Your appointment has been moved"),
    Kind.MISSED: gettext_noop("You missed your appointment"),
    Kind.UNDELIVERED: gettext_noop("A message to a patient could not be delivered"),
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str  # empty: text only
    sms: str
    calendar: str | None  # an .ics file to attach, or None
    # A reminder email's "stop reminders" link: the same in its footer and its
    # List-Unsubscribe header (a signed link differs from one second to the next).
    unsubscribe_url: str = ""
    # A message from a clinic to its patient goes out under the clinic's sender name
    # (beside our own sending address) and, if it has one, with its Reply-To address.
    from_name: str = ""
    reply_to: str = ""


def _links(message: Message) -> dict[str, str]:
    """The one-click links this message offers (none once there is nothing left to do)."""
    appointment = message.appointment
    if appointment is None or message.kind in (Kind.CANCELLED, Kind.MISSED, Kind.UNDELIVERED):
        return {}
    purposes = ["view", "cancel"] + (["confirm"] if message.kind == Kind.REMINDER else [])
    return {purpose: link_url(appointment, purpose) for purpose in purposes}


def _unsubscribe_url(message: Message) -> str:
    """The "stop reminders" link in a reminder email's footer (text messages have STOP)."""
    if message.kind != Kind.REMINDER or message.channel != Channel.EMAIL:
        return ""
    return unsubscribe_url(message.recipient) if message.recipient is not None else ""


def _account_message(message: Message) -> Rendered:
    """An account email's text was written when it was queued (rdv.notifications.account_mail):
    plain text only, no calendar."""
    written = json.loads(message.payload)
    return Rendered(
        subject=written["subject"], text=written["text"], html="", sms="", calendar=None
    )


def _finder_message(message: Message) -> Rendered:
    """The finder's messages were written when queued (rdv.notifications.finder_mail), in
    the recipient's language, with their text-message version: rendered as written."""
    written = json.loads(message.payload)
    return Rendered(
        subject=written["subject"],
        text=written["text"],
        html="",
        sms=written.get("sms", ""),
        calendar=None,
    )


def render(message: Message) -> Rendered:
    if message.kind in ACCOUNT_KINDS:
        return _account_message(message)
    if message.kind in FINDER_KINDS:
        return _finder_message(message)
    if message.kind == Kind.DAY_SHEET:
        return _day_sheet_message(message)
    appointment = message.appointment
    if appointment is None:
        raise ValueError(f"{message} has no appointment")
    slot = appointment.slot
    stop_url = _unsubscribe_url(message)
    # To the clinic's own administrators (UNDELIVERED): from us, not from the clinic.
    from_clinic = message.kind != Kind.UNDELIVERED
    context = {
        "kind": message.kind,
        "appointment": appointment,
        "patient": appointment.patient,
        "slot": slot,
        "clinic": slot.clinic,
        "sender": sender_name(slot.clinic),
        "practitioner": slot.practitioner,
        "site_url": settings.SITE_URL,
        "links": _links(message),
        "unsubscribe_url": stop_url,
    }
    with translation.override(message.language):
        subject = _(SUBJECTS[Kind(message.kind)])
        text = render_to_string("notifications/message.txt", context)
        html = render_to_string("notifications/message.html", context)
        sms = " ".join(render_to_string("notifications/message.sms.txt", context).split())
        host = settings.SITE_URL.split("://")[-1]
        calendar = (
            appointment_calendar(appointment, host=host, cancelled=message.kind == Kind.CANCELLED)
            if message.kind not in (Kind.MISSED, Kind.UNDELIVERED)
            else None
        )
    return Rendered(
        subject=str(subject),
        text=text,
        html=html,
        sms=sms,
        calendar=calendar,
        unsubscribe_url=stop_url,
        from_name=sender_name(slot.clinic) if from_clinic else "",
        reply_to=reply_to(slot.clinic) if from_clinic else "",
    )


def _day_sheet_message(message: Message) -> Rendered:
    """The evening email to a clinic administrator (rdv.clinics.evening): the link to
    tomorrow's day sheet, no patient data. The link is made now, the same on every try."""
    if message.recipient is None:
        raise ValueError(f"{message} has no recipient")
    written = json.loads(message.payload)
    clinic = Clinic.objects.get(pk=written["clinic_id"])
    day = date.fromisoformat(written["day"])
    context = {
        "clinic": clinic,
        "day": day,
        "url": evening.sheet_url(clinic_id=clinic.pk, user_id=message.recipient.pk, day=day),
        "LANGUAGE_CODE": message.language,
    }
    with translation.override(message.language):
        subject = _("Tomorrow's day sheet — %(clinic)s") % {"clinic": clinic.name}
        text = render_to_string("notifications/day_sheet.txt", context)
        html = render_to_string("notifications/day_sheet.html", context)
    return Rendered(subject=subject, text=text, html=html, sms="", calendar=None)
