"""Send what the outbox holds: once (`--once`), or continuously. The task worker started by
`make run` does this already; the command is for operators (drain the outbox now) and for
the crash tests."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rdv.notifications.delivery import deliver_due
from rdv.notifications.services import outbox_counts


class Command(BaseCommand):
    help = "Send due notifications from the outbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then stop")
        parser.add_argument("--batch", type=int, default=50)
        parser.add_argument("--pause", type=float, default=2.0, help="seconds between passes")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            sent = deliver_due(limit=options["batch"])
            if options["once"]:
                self.stdout.write(f"sent {sent}; outbox {outbox_counts()}")
                return
            if not sent:
                time.sleep(options["pause"])
