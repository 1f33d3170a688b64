"""What a benchmark run does, read from BENCH_* environment variables.

Kept free of Django imports: the configuration decides which database Django will use,
so it has to be known before Django is set up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "rdv_bench"
BENCH_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE}"

# The most populous municipalities: where searches concentrate in real life, and where
# the most clinics fall inside a 25 km radius (the expensive case for the search).
CITIES = (
    "Montréal",
    "Laval",
    "Québec",
    "Gatineau",
    "Longueuil",
    "Sherbrooke",
    "Lévis",
    "Trois-Rivières",
    "Saguenay",
    "Terrebonne",
    "Saint-Jean-sur-Richelieu",
    "Repentigny",
    "Brossard",
    "Drummondville",
    "Saint-Jérôme",
    "Granby",
)


def _env_int(name: str, default: int, minimum: int) -> int:
    """An integer setting; a bad value stops the run instead of silently using a default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum} (got {value})")
    return value


@dataclass(frozen=True)
class BenchConfig:
    clinics: int  # BENCH_CLINICS: the demo has 378
    days: int  # BENCH_DAYS: the slot horizon; slots ≈ clinics × 34 × days
    seconds: int  # BENCH_SECONDS: duration of each timed phase
    accounts: int  # BENCH_ACCOUNTS: bench patient accounts created in bulk
    search_clients: int
    booking_clients: int
    contention_threads: int
    contention_accounts: int
    contention_slots: int

    @classmethod
    def from_env(cls) -> BenchConfig:
        config = cls(
            clinics=_env_int("BENCH_CLINICS", 600, minimum=157),
            days=_env_int("BENCH_DAYS", 60, minimum=1),
            seconds=_env_int("BENCH_SECONDS", 15, minimum=1),
            accounts=_env_int("BENCH_ACCOUNTS", 300, minimum=2),
            search_clients=_env_int("BENCH_SEARCH_CLIENTS", 16, minimum=1),
            booking_clients=_env_int("BENCH_BOOKING_CLIENTS", 16, minimum=1),
            contention_threads=_env_int("BENCH_CONTENTION_THREADS", 32, minimum=1),
            contention_accounts=_env_int("BENCH_CONTENTION_ACCOUNTS", 100, minimum=1),
            contention_slots=_env_int("BENCH_CONTENTION_SLOTS", 10, minimum=1),
        )
        if config.booking_clients + config.contention_accounts > config.accounts:
            raise SystemExit(
                "BENCH_ACCOUNTS must cover the booking clients and the contention accounts "
                f"({config.booking_clients} + {config.contention_accounts} > {config.accounts})"
            )
        return config
