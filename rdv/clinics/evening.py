"""The evening email: at 18:00 every clinic administrator gets a link to tomorrow's day
sheet, so the clinic can print it tonight and work from paper should the platform be
unreachable tomorrow.

The email itself holds no patient data, only a signed link. The link names one clinic,
one administrator and one day, under a salt of its own (no other token of the project is
ever read as one), and works until that day ends (local time): about 30 hours. It needs no
sign-in, since it is opened on a phone at home; but each use checks again that the person
is still an active administrator of that clinic (removed or demoted: the link is dead),
and each use is the same audited read as the portal's download, with that person as the
actor. The link is deterministic: a retried email carries the same one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.clinics import exports
from rdv.clinics.models import Membership
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import DomainError, NotFound
from rdv.notifications.models import Channel, Kind, Message
from rdv.notifications.services import address_index
from rdv.scheduling.models import Slot, SlotStatus

SEND_AT = time(18, 0)  # local time
_SALT = "rdv.evening-day-sheet"
TOKEN_MAX = 200


class LinkGone(DomainError):
    """A genuine link that no longer works: its day is over, or its holder is no longer an
    administrator of the clinic (HTTP 410)."""

    status = 410
    code = "link_gone"
    default_message = _(
        "This link no longer works: it ends with its day, and only the clinic's current "
        "administrators can use it. Sign in to the portal to download the day sheet."
    )


@dataclass(frozen=True)
class SheetLink:
    clinic_id: int
    user_id: int
    day: date


# --- The link ----------------------------------------------------------------------------


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT)


def make_token(*, clinic_id: int, user_id: int, day: date) -> str:
    return _signer().sign(f"{clinic_id}.{user_id}.{day.isoformat()}")


def sheet_url(*, clinic_id: int, user_id: int, day: date) -> str:
    token = make_token(clinic_id=clinic_id, user_id=user_id, day=day)
    return f"{settings.SITE_URL}{reverse('evening_sheet', args=[token])}"


def link_expiry(day: date) -> datetime:
    """The link to `day`'s sheet works until that day ends (local midnight)."""
    return clock.local_midnight(day + timedelta(days=1))


def read_token(token: str) -> SheetLink:
    """What a link names; NotFound if it was not made here (tampered, truncated, another
    kind of token)."""
    dead = NotFound(_("This link does not work. Check that it was copied whole."), code="link")
    if len(token) > TOKEN_MAX:
        raise dead
    try:
        clinic_id, user_id, day = _signer().unsign(token).split(".")
        return SheetLink(
            clinic_id=int(clinic_id), user_id=int(user_id), day=date.fromisoformat(day)
        )
    except (signing.BadSignature, ValueError):
        raise dead from None


def _admin_membership(clinic_id: int, user_id: int) -> Membership | None:
    return (
        Membership.objects.select_related("user", "clinic")
        .filter(
            clinic_id=clinic_id,
            user_id=user_id,
            role=Membership.Role.CLINIC_ADMIN,
            user__is_active=True,
            clinic__is_active=True,
        )
        .first()
    )


def open_sheet(token: str) -> tuple[SheetLink, bytes]:
    """The day sheet a link names, as a PDF in its holder's language: an audited read
    (one `agenda.export` entry per appointment, the holder as actor), exactly as if they
    had downloaded it from the portal. NotFound for a forged link, LinkGone for an
    expired one or one whose holder is no longer an active administrator of the clinic."""
    link = read_token(token)
    if clock.now() >= link_expiry(link.day):
        raise LinkGone()
    with transaction.atomic():
        membership = _admin_membership(link.clinic_id, link.user_id)
        if membership is None:
            raise LinkGone()
        ctx = StaffContext(user=membership.user, clinic=membership.clinic, role=membership.role)
        with translation.override(membership.user.preferred_language):
            pdf = exports.day_sheet_pdf(ctx, link.day)
    return link, pdf


# --- The evening email -------------------------------------------------------------------


def next_evening(now: datetime) -> datetime:
    """The next 18:00 (local) strictly after `now`."""
    local = now.astimezone(clock.LOCAL_TZ)
    evening = datetime.combine(local.date(), SEND_AT, tzinfo=clock.LOCAL_TZ)
    return evening if local < evening else evening + timedelta(days=1)


def _working_clinics(day: date) -> Q:
    """Clinics with at least one time (free or booked) that day: a closed clinic gets no
    email about an empty sheet."""
    start, end = clock.local_day_bounds(day, day)
    working = Slot.objects.filter(
        start__gte=start, start__lt=end, status__in=[SlotStatus.FREE, SlotStatus.BOOKED]
    ).values("clinic_id")
    return Q(clinic_id__in=working)


def _message(admin: User, clinic_id: int, day: date, now: datetime) -> Message:
    return Message(
        # The outbox's unique key: one email per clinic, administrator and day, however
        # many times the task runs.
        key=f"{Kind.DAY_SHEET}:{clinic_id}:{admin.pk}:{day.isoformat()}",
        kind=Kind.DAY_SHEET,
        channel=Channel.EMAIL,
        recipient=admin,
        address=admin.email,
        address_index=address_index(admin.email),
        language=admin.preferred_language,
        due_at=now,
        created_at=now,
        payload=json.dumps({"clinic_id": clinic_id, "day": day.isoformat()}),
    )


def queue_evening_sheets(*, day: date, now: datetime) -> int:
    """Write one email per (active clinic working on `day`, active administrator with an
    address) to the outbox; the number of new ones. Idempotent: the message key is unique
    (the database refuses a second row), so a second run the same evening, even a
    concurrent one, writes nothing, and neither does a run after the day has ended. One
    transaction per email: a failure for one leaves the others written."""
    if now >= link_expiry(day):
        return 0
    admins = (
        Membership.objects.filter(
            _working_clinics(day),
            role=Membership.Role.CLINIC_ADMIN,
            clinic__is_active=True,
            user__is_active=True,
        )
        .exclude(user__email="")
        .select_related("user")
        .order_by("clinic_id", "user_id")
    )
    written = 0
    for membership in admins:
        try:
            with transaction.atomic():
                _message(membership.user, membership.clinic_id, day, now).save()
        except IntegrityError:
            continue  # already written by an earlier (or a concurrent) run
        written += 1
    return written


def still_wanted(message: Message, now: datetime) -> bool:
    """Whether an evening email is still worth sending: its day has not ended, and its
    recipient is still an active administrator of the clinic."""
    written = json.loads(message.payload or "{}")
    if "day" not in written or message.recipient_id is None:
        return False
    if now >= link_expiry(date.fromisoformat(written["day"])):
        return False
    return _admin_membership(written["clinic_id"], message.recipient_id) is not None
