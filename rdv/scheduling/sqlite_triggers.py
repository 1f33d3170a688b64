"""SQLite's stand-in for PostgreSQL's exclusion constraint `slot_no_overlap`.

Django rebuilds a SQLite table (copy, drop, rename) for many schema changes, and the
triggers on the old table go with it. So they are (re)created after every `migrate`, by a
post_migrate handler, not only by migration 0002.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

# Existing slots never overlap, so only the practitioner's latest slot starting before the
# new one ends can collide: an index lookup, not a scan.
# Withdrawn slots (kept for history) do not count, as in PostgreSQL's constraint.
_CLASH = """
    NEW.status <> 'withdrawn' AND
    (SELECT s."end" FROM scheduling_slot s
     WHERE s.practitioner_id = NEW.practitioner_id AND s.status <> 'withdrawn'
       AND s.start < NEW."end" {exclude_self}
     ORDER BY s.start DESC LIMIT 1) > NEW.start
"""
NAMES = ("slot_no_overlap_insert", "slot_no_overlap_update")
TRIGGERS = [
    f"""CREATE TRIGGER slot_no_overlap_insert BEFORE INSERT ON scheduling_slot
        WHEN {_CLASH.format(exclude_self="")}
        BEGIN SELECT RAISE(ABORT, 'slot_no_overlap'); END""",
    f"""CREATE TRIGGER slot_no_overlap_update
        BEFORE UPDATE OF start, "end", practitioner_id, status ON scheduling_slot
        WHEN {_CLASH.format(exclude_self="AND s.id <> NEW.id")}
        BEGIN SELECT RAISE(ABORT, 'slot_no_overlap'); END""",
]


def ensure_triggers(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        if "scheduling_slot" not in tables:
            return
        # Dropped and created again, so a changed definition replaces the old one.
        for name in NAMES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in TRIGGERS:
            cursor.execute(statement)
