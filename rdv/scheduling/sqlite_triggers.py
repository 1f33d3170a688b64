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
_CLASH = """
    (SELECT s."end" FROM scheduling_slot s
     WHERE s.practitioner_id = NEW.practitioner_id AND s.start < NEW."end" {exclude_self}
     ORDER BY s.start DESC LIMIT 1) > NEW.start
"""
TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS slot_no_overlap_insert BEFORE INSERT ON scheduling_slot
        WHEN {_CLASH.format(exclude_self="")}
        BEGIN SELECT RAISE(ABORT, 'slot_no_overlap'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS slot_no_overlap_update
        BEFORE UPDATE OF start, "end", practitioner_id ON scheduling_slot
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
        for statement in TRIGGERS:
            cursor.execute(statement)
