"""manage.py restore: an archive into an empty database, verified (docs/backups.md)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from rdv.continuity import retention
from rdv.continuity.backup import exit_on_sigterm
from rdv.continuity.restore import describe, run_restore


class Command(BaseCommand):
    help = (
        "Restore a backup archive into the (empty) database of DATABASE_URL, then verify "
        "row counts, migrations and the audit chain against its manifest."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "archive",
            nargs="?",
            help="The .rdvbak file (a bare name is looked up in BACKUP_DIR).",
        )
        parser.add_argument(
            "--latest", action="store_true", help="Restore the newest archive in BACKUP_DIR."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exit_on_sigterm()
        archive = choose_archive(options["archive"], latest=options["latest"])
        target = connection.settings_dict["NAME"]
        host = connection.settings_dict.get("HOST") or "local"
        self.stdout.write(f"Restoring {archive.name} into {target} ({connection.vendor}, {host}).")
        try:
            result = run_restore(archive)
        except Exception as exc:
            raise CommandError(f"Restore refused: {describe(exc)}") from exc
        manifest = result.manifest
        head = manifest["audit_head"]
        self.stdout.write(
            f"Restored {archive.name} into {target} and verified it: "
            f"{len(manifest['tables'])} tables and {manifest['total_rows']:,} rows as in the "
            f"manifest, migrations match, audit chain verified up to entry "
            f"{head['seq'] if head else 0}; snapshot of {manifest['created_at']}; "
            f"{result.seconds:.1f} s."
        )
        if result.chain_note:
            self.stdout.write(f"Note (entries after the backup are lost): {result.chain_note}")
        self.stdout.write(
            "The field-encryption keys (FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY) are not in "
            "backups: this database is readable only with the keys it was written with."
        )


def choose_archive(given: str | None, *, latest: bool) -> Path:
    if latest == bool(given):
        raise CommandError("Give an archive or --latest (one of them).")
    if latest:
        archives = retention.list_archives(Path(settings.BACKUP_DIR))
        if not archives:
            raise CommandError(f"No archive in {settings.BACKUP_DIR}.")
        return archives[max(archives)]
    path = Path(str(given))
    if not path.exists() and path.name == str(given):
        path = Path(settings.BACKUP_DIR) / path.name
    if not path.is_file():
        raise CommandError(f"Restore refused: {given} does not exist.")
    return path
