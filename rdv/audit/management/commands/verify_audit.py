from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rdv.audit.queries import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and its external anchors; exit 1 if broken."

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify_chain()
        if not result.ok:
            where = f" at entry #{result.first_bad_seq}" if result.first_bad_seq else ""
            raise CommandError(
                f"audit log BROKEN{where}: {result.problem} "
                f"({result.checked} entries verified before it)"
            )
        self.stdout.write(
            f"audit log intact: {result.checked} entries verified"
            f" ({result.unsealed} recent ones awaiting their seal)"
        )
