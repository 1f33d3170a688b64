"""One-click links in messages: signed, expiring, single-purpose, usable without signing in.

A token names one appointment *at one time* (its slot) and one purpose (view, confirm,
cancel): a link from before a move stops working, a "view" link cannot cancel, and a
forwarded email lets its reader do no more than the message itself offers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from rdv.core.errors import NotFound
from rdv.scheduling.models import Appointment

PURPOSES = ("view", "confirm", "cancel")


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
