"""manage.py backup: one encrypted, checksummed archive of the database (docs/backups.md)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rdv.continuity.backup import BackupError, BackupResult, backup_with_alerts, exit_on_sigterm


class Command(BaseCommand):
    help = (
        "Back up the database into BACKUP_DIR (encrypted, checksummed, with a manifest), "
        "copy it to BACKUP_COPY_DIR and apply retention. Exits non-zero on any failure."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print a JSON summary (used by the drill)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exit_on_sigterm()
        try:
            result = backup_with_alerts()
        except BackupError as exc:
            raise CommandError(f"Backup failed: {exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(summary(result)))
            return
        manifest = result.manifest
        head = manifest["audit_head"]
        self.stdout.write(
            f"Backup written: {result.archive} ({result.size:,} bytes; "
            f"{len(manifest['tables'])} tables, {manifest['total_rows']:,} rows; "
            f"audit head {head['seq'] if head else 'none'}; snapshot {manifest['created_at']})."
        )
        if result.copy is not None:
            self.stdout.write(f"Copied and verified: {result.copy}")
        for path in result.pruned:
            self.stdout.write(f"Retention removed: {path}")


def summary(result: BackupResult) -> dict[str, Any]:
    return {
        "archive": str(result.archive),
        "sha256": result.sha256,
        "size": result.size,
        "copy": str(result.copy) if result.copy else None,
        "created_at": result.manifest["created_at"],
        "tables": len(result.manifest["tables"]),
        "total_rows": result.manifest["total_rows"],
        "audit_head": result.manifest["audit_head"],
    }
