from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rdv.audit.anchors import anchor_path, write_anchor


class Command(BaseCommand):
    help = "Write the audit chain's head to the anchor file outside the database."

    def handle(self, *args: Any, **options: Any) -> None:
        anchor = write_anchor()
        if anchor is None:
            self.stdout.write("audit log is empty: nothing to anchor")
            return
        self.stdout.write(f"anchored #{anchor.seq} {anchor.hash} in {anchor_path()}")
