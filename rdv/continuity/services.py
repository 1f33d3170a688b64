"""Continuity: turning read-only mode on and off."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.continuity import readonly
from rdv.continuity.models import ReadOnlySwitch
from rdv.core import clock
from rdv.core.errors import ValidationError

logger = logging.getLogger(__name__)

REASON_MAX_LENGTH = 300
ACTION_ON = "read_only.on"
ACTION_OFF = "read_only.off"


def set_read_only(
    enabled: bool, *, reason: str, actor: User | None, role: str | None = None
) -> ReadOnlySwitch:
    """Turn the admin switch on or off, with who and why: the switch row keeps the latest
    reason, the audit log one entry per change (who, on or off), the log the reason too.

    Works while the mode is on (the switch must be able to lift it): the write runs on a
    read-write session. The READ_ONLY environment setting still forces the mode on.
    """
    reason = reason.strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            _("Too long: at most %(limit)s characters.") % {"limit": REASON_MAX_LENGTH},
            field="reason",
            code="too_long",
        )
    with readonly.writable(), transaction.atomic():
        switch, _created = ReadOnlySwitch.objects.select_for_update().get_or_create(pk=1)
        switch.enabled = enabled
        switch.reason = reason
        switch.changed_at = clock.now()
        switch.changed_by = actor
        switch.save()
        audit.record(
            ACTION_ON if enabled else ACTION_OFF,
            actor=actor,
            role=role,
            subject=audit.Subject(object_type="read_only_switch", object_id=str(switch.pk)),
        )
    readonly.forget()
    logger.warning(
        "read-only mode switched %s by %s: %s",
        "on" if enabled else "off",
        f"user {actor.pk}" if actor is not None else role or "anonymous",
        reason or "(no reason given)",
    )
    if not enabled and settings.READ_ONLY:
        logger.warning("READ_ONLY is set in the environment: the platform stays read-only")
    return switch
