"""Fill the bench database: a catalogue bigger than the demo, ~1.5 M slots, accounts.

Runs after `django.setup()` (see prepare.py) and uses the app's own models and services.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.db import connection

from rdv.accounts.models import User
from rdv.accounts.services import issue_api_token
from rdv.core import clock
from rdv.core.demo import MUNICIPALITY_COUNT, seed
from rdv.patients.models import Patient
from rdv.scheduling.models import Slot

BENCH_EMAIL_DOMAIN = "bench.rdvsante.test"

# A base week of slots (local days 1..7 after today, all made by the app's own rule
# expansion) copied 1..N weeks later. Shifting by whole weeks keeps every copy on its
# rule's weekday; shifting the *local* wall-clock time (not UTC) keeps it at the rule's
# hours across a DST change. Copies land at or after the base week's end, which is also
# the end of the seeded days, so they can meet neither the originals nor each other:
# the exclusion constraint and the unique (practitioner, start) would refuse them.
_EXTEND_SQL = """
    INSERT INTO scheduling_slot
        (clinic_id, practitioner_id, rule_id, start, "end", appointment_type, visibility,
         status, hold_owner_id, hold_expires_at)
    SELECT s.clinic_id, s.practitioner_id, s.rule_id,
           ((s.start AT TIME ZONE %(tz)s) + make_interval(days => 7 * w)) AT TIME ZONE %(tz)s,
           ((s."end" AT TIME ZONE %(tz)s) + make_interval(days => 7 * w)) AT TIME ZONE %(tz)s,
           s.appointment_type, s.visibility, 'free', NULL, NULL
    FROM scheduling_slot s CROSS JOIN generate_series(1, %(weeks)s) AS w
    WHERE s.start >= %(base_from)s AND s.start < %(base_to)s
      AND s.practitioner_id %% %(parts)s = %(part)s
      AND ((s.start AT TIME ZONE %(tz)s) + make_interval(days => 7 * w)) AT TIME ZONE %(tz)s
          < %(horizon_end)s
"""
SEED_DAYS = 8  # today (partly past) + the base week


@dataclass(frozen=True)
class LoadReport:
    clinics: int
    practitioners: int
    seeded_slots: int
    copied_slots: int
    total_slots: int
    seed_seconds: float
    copy_seconds: float
    analyze_seconds: float

    @property
    def seconds(self) -> float:
        return self.seed_seconds + self.copy_seconds + self.analyze_seconds


def load_slots(clinics: int, days: int, scratch: Path) -> LoadReport:
    """Seed the catalogue with the demo generator, then extend the slots set-based in SQL."""
    today = clock.local_today()
    started = time.perf_counter()
    summary = seed(
        scratch / "bench-credentials.json",
        clinic_count=clinics,
        municipality_count=MUNICIPALITY_COUNT,
        days=min(days, SEED_DAYS),
    )
    seeded = time.perf_counter()
    copied = _copy_weeks(today, days) if days > SEED_DAYS else 0
    copy_done = time.perf_counter()
    _vacuum_analyze()
    analyzed = time.perf_counter()
    return LoadReport(
        clinics=summary.clinics,
        practitioners=summary.practitioners,
        seeded_slots=summary.slots,
        copied_slots=copied,
        total_slots=Slot.objects.count(),
        seed_seconds=seeded - started,
        copy_seconds=copy_done - seeded,
        analyze_seconds=analyzed - copy_done,
    )


def _copy_weeks(today: date, days: int) -> int:
    """Fill local days SEED_DAYS..days-1 with copies of the base week.

    One INSERT … SELECT per core, each on its own connection and its own practitioners:
    maintaining the exclusion constraint's GiST index dominates the cost (~80 µs a row),
    and two backends nearly halve it on two cores.
    """
    parts = max(2, os.cpu_count() or 1)
    params: dict[str, str | int | datetime] = {
        "tz": clock.LOCAL_TZ.key,
        "weeks": math.ceil((days - SEED_DAYS) / 7),
        "base_from": clock.local_midnight(today + timedelta(days=1)),
        "base_to": clock.local_midnight(today + timedelta(days=SEED_DAYS)),
        "horizon_end": clock.local_midnight(today + timedelta(days=days)),
        "parts": parts,
    }
    with ThreadPoolExecutor(max_workers=parts) as pool:
        counts = pool.map(lambda part: _copy_part({**params, "part": part}), range(parts))
        return sum(counts)


def _copy_part(params: dict[str, str | int | datetime]) -> int:
    """One share of the copy, in this thread's own database connection (closed after)."""
    try:
        with connection.cursor() as cursor:
            # A throw-away database: losing the last commits on a crash costs nothing.
            cursor.execute("SET synchronous_commit TO off")
            cursor.execute(_EXTEND_SQL, params)
            return int(cursor.rowcount)
    finally:
        connection.close()


def _vacuum_analyze() -> None:
    """Planner statistics and a visibility map, as autovacuum would leave a live database."""
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem TO '256MB'")
        cursor.execute("VACUUM (ANALYZE) scheduling_slot")
        cursor.execute("ANALYZE")


@dataclass(frozen=True)
class BenchAccount:
    user_id: int
    email: str


def create_accounts(count: int) -> tuple[list[BenchAccount], str]:
    """`count` patient accounts with one shared password, hashed once (Argon2 costs ~0.2 s).

    Returns the accounts and the password (random per run, never written anywhere).
    """
    password = secrets.token_urlsafe(18)
    encoded = make_password(password)
    confirmed = clock.now()  # booking needs a confirmed email address
    users = User.objects.bulk_create(
        [
            User(
                email=f"patient{i:05d}@{BENCH_EMAIL_DOMAIN}",
                password=encoded,
                first_name="Bench",
                last_name=f"Patient {i:05d}",
                email_verified_at=confirmed,
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    Patient.objects.bulk_create(
        [
            Patient(
                account=user,
                relationship=Patient.Relationship.SELF,
                first_name="Bench",
                last_name=user.last_name,
                date_of_birth=date(1950, 1, 1) + timedelta(days=97 * i),
            )
            for i, user in enumerate(users)
        ],
        batch_size=1000,
    )
    return [BenchAccount(user_id=u.pk, email=u.email) for u in users], password


def issue_tokens(accounts: list[BenchAccount], password: str) -> list[str]:
    """Bearer tokens through the app's own sign-in (one Argon2 verification each)."""
    return [issue_api_token(email=a.email, password=password) for a in accounts]
