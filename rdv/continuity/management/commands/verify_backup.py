"""manage.py verify_backup: check an archive end to end without restoring it."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rdv.continuity.backup import exit_on_sigterm
from rdv.continuity.management.commands.restore import choose_archive
from rdv.continuity.restore import describe, read_manifest


class Command(BaseCommand):
    help = (
        "Verify a backup archive (checksum, decryption, manifest, the dump's SHA-256) "
        "without touching any database."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("archive", nargs="?", help="The .rdvbak file or its name.")
        parser.add_argument("--latest", action="store_true", help="The newest in BACKUP_DIR.")

    def handle(self, *args: Any, **options: Any) -> None:
        exit_on_sigterm()
        archive = choose_archive(options["archive"], latest=options["latest"])
        try:
            manifest = read_manifest(archive)
        except Exception as exc:
            raise CommandError(f"Archive refused: {describe(exc)}") from exc
        self.stdout.write(
            f"{archive.name} is sound: {manifest['vendor']} snapshot of "
            f"{manifest['created_at']}, {len(manifest['tables'])} tables, "
            f"{manifest['total_rows']:,} rows."
        )
