"""Everything that must happen before Django is set up: the bench database and its schema.

Django reads DATABASE_URL once, when settings load, so the variable is pointed at the
bench database here, before `django.setup()`; nothing of the app is imported earlier.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import django
import psycopg
from psycopg import sql

from bench.config import ADMIN_URL, BENCH_DATABASE, BENCH_DATABASE_URL, BenchConfig

ROOT = Path(__file__).resolve().parent.parent


def recreate_database(admin_url: str, name: str) -> None:
    """Drop and create the bench database, forcing out any session left by a crashed run."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def migrate(database_url: str) -> None:
    """The schema exactly as a deployment gets it: `manage.py migrate`."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
    )


def prepare() -> BenchConfig:
    """Read the configuration, rebuild the bench database, and set Django up on it."""
    config = BenchConfig.from_env()
    print(
        f"RDV Santé benchmark: {config.clinics} clinics, {config.days} days of slots, "
        f"{config.seconds} s per phase, {os.cpu_count()} cores"
    )
    print(f"\n== database {BENCH_DATABASE}: drop, create, migrate", flush=True)
    started = time.perf_counter()
    recreate_database(ADMIN_URL, BENCH_DATABASE)
    migrate(BENCH_DATABASE_URL)
    print(f"   ({time.perf_counter() - started:.1f} s)")
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ["DJANGO_SETTINGS_MODULE"] = "rdv.settings"
    django.setup()
    return config
