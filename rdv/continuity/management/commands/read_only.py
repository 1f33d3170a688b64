"""`manage.py read_only on --reason "…" | off | status`: the operator's read-only switch."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rdv.continuity import readonly
from rdv.continuity.models import ReadOnlySwitch
from rdv.continuity.services import set_read_only
from rdv.core import clock
from rdv.core.errors import DomainError

ENVIRONMENT_NOTE = (
    "READ_ONLY is set in the environment: the platform stays read-only whatever the switch says."
)


class Command(BaseCommand):
    help = (
        "Turn read-only mode on (with --reason) or off, or show its state. Audited as the "
        "operator. The READ_ONLY environment setting forces the mode on whatever the switch says."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("state", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="", help="Why (required to turn it on).")

    def handle(self, *args: Any, **options: Any) -> None:
        state = options["state"]
        if state == "status":
            self._status()
            return
        reason = options["reason"].strip()
        if state == "on" and not reason:
            raise CommandError('Say why: read_only on --reason "…"')
        try:
            set_read_only(state == "on", reason=reason, actor=None, role="operator")
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        self._status()

    def _status(self) -> None:
        switch = ReadOnlySwitch.objects.filter(pk=1).first()
        readonly.forget()
        self.stdout.write(f"read-only mode: {'on' if readonly.is_active() else 'off'}")
        if switch is None or switch.changed_at is None:
            self.stdout.write("switch: off (never changed)")
        else:
            who = f"user {switch.changed_by_id}" if switch.changed_by_id else "the operator"
            when = switch.changed_at.astimezone(clock.LOCAL_TZ)
            self.stdout.write(
                f"switch: {'on' if switch.enabled else 'off'}, changed {when:%Y-%m-%d %H:%M} "
                f"by {who}: {switch.reason or '-'}"
            )
        if settings.READ_ONLY:
            self.stdout.write(ENVIRONMENT_NOTE)
