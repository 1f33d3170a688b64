from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rdv.audit.anchors import anchor_path, write_anchor
from rdv.audit.services import seal_pending


class Command(BaseCommand):
    help = "Seal pending audit entries, then write the chain's head outside the database."

    def handle(self, *args: Any, **options: Any) -> None:
        seal_pending()
        anchor = write_anchor()
        if anchor is None:
            self.stdout.write("audit log is empty: nothing to anchor")
            return
        self.stdout.write(f"anchored #{anchor.seq} {anchor.hash} in {anchor_path()}")
