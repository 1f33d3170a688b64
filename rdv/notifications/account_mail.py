"""Emails about an account (a confirmation code, a password reset link, a notice) go
through the outbox like every other message.

Written in the caller's transaction, so the mail exists exactly when what it announces
does; sent by the worker right after the commit (a task is queued then, so a code does
not wait for the next sweep), retried like any message. The request itself never talks
to the mail server: an unreachable server cannot fail a sign-up, and answering "if an
account has this address, a link is on its way" waits on no mail server either way (a
known address costs two small inserts more).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from django.db import transaction

from rdv.accounts.models import User
from rdv.core import clock
from rdv.notifications.models import ACCOUNT_KINDS, Channel, Message, MessageStatus
from rdv.notifications.services import address_index
from rdv.notifications.tasks import deliver_now


def queue(
    user: User, *, kind: str, subject: str, text: str, expires_at: datetime | None = None
) -> None:
    """Queue one email to the account's address. `expires_at`: not sent after then (a
    code that no longer works is not worth delivering)."""
    if kind not in ACCOUNT_KINDS:
        raise ValueError(kind)
    now = clock.now()
    payload = {
        "subject": subject,
        "text": text,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    Message.objects.create(
        key=f"{kind}:{user.pk}:{secrets.token_hex(8)}",
        kind=kind,
        channel=Channel.EMAIL,
        recipient=user,
        address=user.email,
        address_index=address_index(user.email),
        language=user.preferred_language,
        due_at=now,
        created_at=now,
        payload=json.dumps(payload),
    )
    # Robust: should queueing the task fail, the request has done its work and the
    # regular sweep sends the message anyway.
    transaction.on_commit(deliver_now.enqueue, robust=True)


def withdraw(user: User, *, kind: str) -> int:
    """Waiting emails of this kind to the account are not sent (a code replaced by a new
    one), and their text is erased."""
    return Message.objects.filter(
        recipient=user, kind=kind, status__in=[MessageStatus.PENDING, MessageStatus.SENDING]
    ).update(status=MessageStatus.CANCELLED, lease_until=None, payload="")
