"""manage.py drill: a restore drill on a scratch database, measuring RTO and RPO.

Every step runs as its own `manage.py` process with DATABASE_URL set to the scratch
database, BACKUP_DIR and the audit anchors under VAR_DIR/drill/: the drill never touches
the main database or its backups. Steps: (re)create the scratch database, migrate, load
the demo data, back up, make one real booking after the backup (so the data lost is
measurable), destroy the database, then restore and verify it, timed from the disaster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # nosec B404
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from rdv.accounts.models import User
from rdv.continuity.backup import postgres_connect, read_snapshot
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.scheduling.models import Slot, SlotStatus
from rdv.scheduling.queries import open_to_public
from rdv.scheduling.services import book_appointment


class Command(BaseCommand):
    help = (
        "Restore drill on a scratch database: load the demo data, back up, write once "
        "more, destroy the database, restore and verify it; print RTO and RPO."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--database-url",
            required=True,
            help="The scratch database (dropped and recreated!), postgres://… or sqlite:///…",
        )
        # Internal: what the drill runs inside the scratch database's own process.
        parser.add_argument("--step", choices=["write", "counts"], help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["step"] == "write":
            self.stdout.write(json.dumps(post_backup_write()))
        elif options["step"] == "counts":
            with connection.cursor() as cursor:
                self.stdout.write(json.dumps(read_snapshot(cursor).tables))
        else:
            Drill(options["database_url"], self.stdout.write).run()


def post_backup_write() -> dict[str, Any]:
    """The demo patient books the first slot open to them: a real write through the
    booking service (appointment, audit entry, outbox rows) the backup does not hold."""
    credentials = json.loads(
        (Path(settings.VAR_DIR) / "demo-credentials.json").read_text(encoding="utf-8")
    )
    user = User.objects.get(email=credentials["patient"]["email"])
    now = clock.now()
    candidates = (
        Slot.objects.filter(open_to_public(now), status=SlotStatus.FREE)
        .filter(start__gt=now + timedelta(hours=2))
        .order_by("start", "pk")
        .values_list("pk", flat=True)[:50]
    )
    for slot_id in candidates:
        try:
            appointment = book_appointment(user=user, slot_id=slot_id)
        except DomainError:
            continue  # e.g. a type for young children only: try the next one
        return {"appointment": appointment.pk, "slot": slot_id}
    raise CommandError("No slot the demo patient could book after the backup.")


class Drill:
    def __init__(self, url: str, say: Callable[[str], Any]) -> None:
        self.url = url
        self.db = dj_database_url.parse(url)
        self.say = say
        self.home = Path(settings.VAR_DIR) / "drill"
        self.backups = self.home / "backups"
        # A NAME_FILE variant wins over NAME (rdv.core.env): left in place, a credential
        # file would point the drill's steps at the real database.
        overridden = {
            f"{name}_FILE"
            for name in (
                "DATABASE_URL",
                "RDV_VAR_DIR",
                "BACKUP_DIR",
                "BACKUP_COPY_DIR",
                "AUDIT_ANCHOR_PATH",
                "OPERATOR_EMAILS",
            )
        }
        self.env = {k: v for k, v in os.environ.items() if k not in overridden}
        self.env.update(
            DATABASE_URL=url,
            RDV_VAR_DIR=str(self.home),
            BACKUP_DIR=str(self.backups),
            BACKUP_COPY_DIR="",
            AUDIT_ANCHOR_PATH=str(self.home / "audit-anchors.log"),
            # A failed drill fails loudly here; it must not page the operators.
            OPERATOR_EMAILS="",
        )

    @property
    def postgres(self) -> bool:
        return self.db["ENGINE"] != "django.db.backends.sqlite3"

    def run(self) -> None:
        self._refuse_main_database()
        shutil.rmtree(self.home, ignore_errors=True)
        self.backups.mkdir(parents=True, mode=0o700)
        self.say(f"Restore drill on {self._where()} (work files in {self.home})")
        self._step("create the scratch database", self._recreate)
        self._step("migrate", lambda: self._manage("migrate", "--noinput"))
        self._step("load the demo data", lambda: self._manage("seed_demo"))
        started = time.monotonic()
        backup = json.loads(self._step("back up", lambda: self._manage("backup", "--json")))
        backup_seconds = time.monotonic() - started
        write = json.loads(self._step("book once more after the backup", self._step_write))
        before = json.loads(self._step("count rows", lambda: self._drill_step("counts")))

        disaster_at = clock.now()
        started = time.monotonic()
        self._step("DISASTER: drop the database", self._destroy)
        self._step("create an empty database", self._create_empty)
        self._step("restore and verify", lambda: self._manage("restore", "--latest"))
        rto = time.monotonic() - started
        after = json.loads(self._step("count rows", lambda: self._drill_step("counts")))

        rpo = disaster_at - datetime.fromisoformat(backup["created_at"])
        lost = {t: before.get(t, 0) - after.get(t, 0) for t in sorted(set(before) | set(after))}
        self._report(
            backup,
            timings=(backup_seconds, rto, rpo),
            write=write,
            lost={t: n for t, n in lost.items() if n},
        )

    def _refuse_main_database(self) -> None:
        """The drill drops its database: it must never be the one this settings serve.

        Decided by what the servers say, not by comparing URLs ("localhost" and
        "127.0.0.1", a port left out or written): the same cluster (system identifier)
        and the same database name, or the same SQLite file.
        """
        if settings.PRODUCTION:
            raise CommandError("Refused: the drill does not run with RDV_ENV=production.")
        main = settings.DATABASES["default"]
        refused = CommandError("Refused: --database-url is the main database; use a scratch one.")
        if main["ENGINE"] != self.db["ENGINE"]:
            return
        if not self.postgres:
            if Path(main["NAME"]).resolve() == Path(self.db["NAME"]).resolve():
                raise refused
            return
        identity = "SELECT system_identifier FROM pg_control_system()"
        try:
            with connection.cursor() as cursor:
                cursor.execute(identity)
                main_cluster = cursor.fetchone()[0]
            with postgres_connect(self.db, dbname="postgres") as conn:
                row = conn.execute(identity.encode()).fetchone()
        except (DatabaseError, psycopg.Error) as exc:
            raise CommandError(
                f"Refused: could not tell whether --database-url is the main database ({exc})."
            ) from exc
        if row is not None and row[0] == main_cluster and self.db["NAME"] == main["NAME"]:
            raise refused

    def _where(self) -> str:
        if self.postgres:
            return f"PostgreSQL database {self.db['NAME']} on {self.db.get('HOST') or 'localhost'}"
        return f"SQLite file {self.db['NAME']}"

    def _step(self, label: str, action: Callable[[], Any]) -> str:
        started = time.monotonic()
        try:
            output = action()
        except subprocess.CalledProcessError as exc:
            tail = " | ".join((exc.stderr or "").strip().splitlines()[-3:])
            raise CommandError(f"Drill failed at '{label}': {tail}") from exc
        except (OSError, psycopg.Error) as exc:
            raise CommandError(f"Drill failed at '{label}': {exc}") from exc
        self.say(f"  {label:<34} {time.monotonic() - started:6.1f} s")
        return output if isinstance(output, str) else ""

    def _manage(self, *argv: str) -> str:
        result = subprocess.run(  # noqa: S603  # nosec B603
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *argv],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        # Only the last line: seed_demo prints the demo accounts' passwords.
        lines = result.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def _drill_step(self, step: str) -> str:
        return self._manage("drill", "--database-url", self.url, "--step", step)

    def _step_write(self) -> str:
        return self._drill_step("write")

    def _maintenance(self, *statements: str) -> None:
        with postgres_connect(self.db, dbname="postgres") as conn:
            conn.autocommit = True
            for statement in statements:
                conn.execute(statement.encode())

    def _quoted_name(self) -> str:
        return '"' + str(self.db["NAME"]).replace('"', '""') + '"'

    def _recreate(self) -> None:
        self._destroy()
        self._create_empty()

    def _destroy(self) -> None:
        if self.postgres:
            self._maintenance(f"DROP DATABASE IF EXISTS {self._quoted_name()} WITH (FORCE)")
            return
        path = Path(self.db["NAME"])
        for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)

    def _create_empty(self) -> None:
        if self.postgres:
            self._maintenance(f"CREATE DATABASE {self._quoted_name()}")
        else:
            Path(self.db["NAME"]).parent.mkdir(parents=True, exist_ok=True)

    def _report(
        self,
        backup: dict[str, Any],
        *,
        timings: tuple[float, float, timedelta],
        write: dict[str, Any],
        lost: dict[str, int],
    ) -> None:
        backup_seconds, rto, rpo = timings
        lost_text = ", ".join(f"{table} {count:+d}" for table, count in lost.items()) or "nothing"
        rows = [
            ("database", self._where()),
            ("demo data", f"{backup['total_rows']:,} rows in {backup['tables']} tables"),
            ("archive", f"{backup['size'] / 1e6:.1f} MB (encrypted, compressed)"),
            ("backup time", f"{backup_seconds:.1f} s"),
            ("restore + verify (RTO)", f"{rto:.1f} s from the disaster to a verified database"),
            (
                "data lost (RPO)",
                f"{rpo.total_seconds():.1f} s between the snapshot and the disaster",
            ),
            ("lost rows", lost_text),
            ("lost change", f"appointment {write['appointment']} (slot {write['slot']} booked)"),
        ]
        self.say("")
        for label, value in rows:
            self.say(f"  {label:<24} {value}")
        self.say(
            "  In production the data lost is at most the time since the last backup "
            "(the backup interval), plus the backup's own duration."
        )
