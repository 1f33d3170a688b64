"""Reads of finder requests, offers and alerts that more than one caller needs.

Every lookup by a user-supplied id goes through a "for this user" helper: someone else's
request answers NotFound exactly like one that does not exist.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.core.errors import NotFound
from rdv.finder.models import Alert, FinderRequest, Offer, OfferStatus


def requests_for_user(user: User) -> QuerySet[FinderRequest]:
    """The account's finder requests, newest first."""
    return (
        FinderRequest.objects.filter(account=user)
        .select_related("patient", "payment", "appointment__slot__clinic")
        .order_by("-created_at", "-pk")
    )


def request_for_user(user: User, request_id: int) -> FinderRequest:
    """One of the account's requests; anyone else's answers NotFound."""
    found = requests_for_user(user).filter(pk=request_id).first()
    if found is None:
        raise NotFound(_("Request not found."), code="finder_request_not_found")
    return found


def offers_for(request: FinderRequest) -> list[Offer]:
    """What the finder offered this request, newest first, with the slot, its clinic and
    practitioner (for showing what was offered, and when it expires)."""
    return list(
        Offer.objects.filter(request=request)
        .select_related("slot", "slot__clinic", "slot__practitioner")
        .order_by("-offered_at", "-pk")
    )


def pending_offer(request: FinderRequest) -> Offer | None:
    """The offer waiting for the patient's answer, if any (at most one: a unique index)."""
    return (
        Offer.objects.filter(request=request, status=OfferStatus.PENDING)
        .select_related("slot", "slot__clinic", "slot__practitioner")
        .first()
    )


def offer_for_user(user: User, offer_id: int) -> Offer:
    """One of the account's offers; anyone else's answers NotFound."""
    found = (
        Offer.objects.filter(pk=offer_id, request__account=user)
        .select_related("request", "slot", "slot__clinic", "slot__practitioner")
        .first()
    )
    if found is None:
        raise NotFound(_("Offer not found."), code="finder_offer_not_found")
    return found


def alerts_for_user(user: User) -> QuerySet[Alert]:
    """The account's active alerts, newest first."""
    return (
        Alert.objects.filter(account=user, is_active=True)
        .select_related("clinic", "practitioner", "practitioner__clinic")
        .order_by("-created_at", "-pk")
    )
