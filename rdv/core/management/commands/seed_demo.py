from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from rdv.clinics.models import Clinic
from rdv.core import demo


class Command(BaseCommand):
    help = "Load the demo data set once (clinics, practitioners, slots, demo accounts)."

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        if Clinic.objects.exists():
            self.stdout.write("Demo data already loaded.")
        else:
            started = time.monotonic()
            summary = demo.seed(path)
            self.stdout.write(
                f"Loaded {summary.clinics} clinics, {summary.practitioners} practitioners and "
                f"{summary.slots} slots in {time.monotonic() - started:.1f} s."
            )
        if path.exists():
            credentials = json.loads(path.read_text(encoding="utf-8"))
            self.stdout.write(f"Demo accounts ({path}):")
            for role, entry in credentials.items():
                self.stdout.write(f"  {role:20} {entry['email']:40} {entry['password']}")
                if "totp_secret" in entry:
                    # Staff sign in with two factors: add this key to an authenticator app.
                    self.stdout.write(f"  {'':20} TOTP key {entry['totp_secret']}")
