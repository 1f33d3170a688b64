"""One-click links in messages: signed, expiring, single-purpose, usable without signing in.

A token names one appointment *at one time* (its slot) and one purpose (view, confirm,
cancel): a link from before a move stops working, a "view" link cannot cancel, and a
forwarded email lets its reader do no more than the message itself offers.

An unsubscribe token (RFC 8058 one-click, in reminder emails) names one account and
nothing else, under a salt of its own: it can only turn that account's reminders off, and
no appointment token is ever read as one (nor the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.core.errors import NotFound
from rdv.scheduling.models import Appointment

PURPOSES = ("view", "confirm", "cancel")
# A reminder can sit in an inbox for weeks before someone decides they have had enough;
# the link only ever turns reminders off, so it may live longer than appointment links.
UNSUBSCRIBE_DAYS = 60
_UNSUBSCRIBE_SALT = "rdv.unsubscribe"


@dataclass(frozen=True)
class LinkTarget:
    appointment_id: int
    slot_id: int


def _signer(purpose: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"rdv.appointment-link.{purpose}")


def make_token(appointment: Appointment, purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return _signer(purpose).sign(f"{appointment.pk}.{appointment.slot_id}")


def link_url(appointment: Appointment, purpose: str) -> str:
    path = reverse("appointment_link", args=[purpose, make_token(appointment, purpose)])
    return f"{settings.SITE_URL}{path}"


def read_token(purpose: str, token: str) -> LinkTarget:
    """What a link points at; NotFound for a tampered, expired or foreign-purpose one."""
    dead = NotFound(_("This link does not work (any more)."), code="link_invalid")
    if purpose not in PURPOSES or len(token) > 200:
        raise dead
    try:
        value = _signer(purpose).unsign(token, max_age=settings.APPOINTMENT_LINK_DAYS * 24 * 3600)
        appointment_id, slot_id = (int(part) for part in value.split("."))
    except (signing.BadSignature, ValueError):
        raise dead from None
    return LinkTarget(appointment_id=appointment_id, slot_id=slot_id)


def _unsubscribe_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_UNSUBSCRIBE_SALT)


def make_unsubscribe_token(user: User) -> str:
    return _unsubscribe_signer().sign(str(user.pk))


def unsubscribe_url(user: User) -> str:
    """The absolute address of `user`'s one-click "stop reminders" page."""
    path = reverse("unsubscribe", args=[make_unsubscribe_token(user)])
    return f"{settings.SITE_URL}{path}"


def read_unsubscribe_token(token: str) -> int:
    """The account a link names; NotFound for a tampered, expired or foreign one."""
    dead = NotFound(_("This link does not work (any more)."), code="link_invalid")
    if len(token) > 200:
        raise dead
    try:
        return int(_unsubscribe_signer().unsign(token, max_age=UNSUBSCRIBE_DAYS * 24 * 3600))
    except (signing.BadSignature, ValueError):
        raise dead from None
