"""The email inviting someone to a clinic's staff, through the outbox like every message.

Written in the transaction that creates the invitation (rdv.clinics.staff.invite), with
its text, link included, in the encrypted payload (as account emails are: see
rdv.notifications.account_mail); sent by the worker right after the commit, not after the
invitation has expired, and its text erased once sent. The address may belong to no
account yet, so the message names an address, not a recipient.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from rdv.accounts.models import User
from rdv.clinics.models import StaffInvitation, StaffRole
from rdv.core import clock
from rdv.notifications.models import Channel, Kind, Message, MessageStatus
from rdv.notifications.services import address_index
from rdv.notifications.tasks import deliver_now

# An account-style email (payload rendered as written, dropped once expired); its key,
# "staff_invite:<invitation id>", makes it one email per invitation.
INVITATION_KIND = Kind.STAFF_INVITATION
KEY_PREFIX = "staff_invite"


def _key(invitation: StaffInvitation) -> str:
    return f"{KEY_PREFIX}:{invitation.pk}"


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("staff_invitation", args=[token])


def queue_invitation(invitation: StaffInvitation, *, token: str, language: str) -> Message:
    """Queue the invitation email to the invited address, in `language` (French unless
    "en"): the clinic, the role, the link and until when it works."""
    if language not in User.Language.values:
        language = User.Language.FRENCH
    with translation.override(language):
        subject = _("Invitation to join the staff of %(clinic)s on RDV Santé") % {
            "clinic": invitation.clinic.name
        }
        text = render_to_string(
            "notifications/staff_invitation.txt",
            {
                "invitation": invitation,
                "clinic": invitation.clinic,
                "role": StaffRole(invitation.role).label,
                "practitioner": invitation.practitioner,
                "link": invitation_url(token),
            },
        )
    now = clock.now()
    message = Message.objects.create(
        key=_key(invitation),
        kind=INVITATION_KIND,
        channel=Channel.EMAIL,
        recipient=None,
        address=invitation.email,
        address_index=address_index(invitation.email),
        language=language,
        due_at=now,
        created_at=now,
        payload=json.dumps(
            {
                "subject": str(subject),
                "text": text,
                "expires_at": invitation.expires_at.isoformat(),
            }
        ),
    )
    # Robust: should queueing the task fail, the regular sweep sends the message anyway.
    transaction.on_commit(deliver_now.enqueue, robust=True)
    return message


def withdraw_invitation(invitation: StaffInvitation) -> int:
    """The invitation was withdrawn: its email, if still waiting, is not sent, and its
    text (the link) is erased."""
    return Message.objects.filter(
        key=_key(invitation), status__in=[MessageStatus.PENDING, MessageStatus.SENDING]
    ).update(status=MessageStatus.CANCELLED, lease_until=None, payload="")
