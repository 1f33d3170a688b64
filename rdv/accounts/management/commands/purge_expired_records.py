from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from rdv.accounts.privacy import purge_expired_records


class Command(BaseCommand):
    help = (
        "Destroy the patients and appointments that deleted accounts left behind, once "
        "their last appointment is older than PRIVACY_RETENTION_DAYS, then the account rows "
        "nothing refers to any more (Law 25; docs/privacy.md). Safe to run daily."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = purge_expired_records()
        self.stdout.write(
            f"Purged {result.patients} patient(s), {result.appointments} appointment(s) and "
            f"{result.accounts} account row(s) older than {settings.PRIVACY_RETENTION_DAYS} days."
        )
