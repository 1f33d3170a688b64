"""A practitioner's slots never overlap (DESIGN.md invariant 3), enforced by the database.

PostgreSQL: an exclusion constraint on the slot's time range. SQLite has none, so two
triggers refuse an insert or update that would overlap. Because existing slots never
overlap, only the practitioner's latest slot starting before the new one ends can collide,
which keeps the trigger an index lookup.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """ALTER TABLE scheduling_slot ADD CONSTRAINT slot_no_overlap
       EXCLUDE USING gist (practitioner_id WITH =, tstzrange(start, "end", '[)') WITH &&)""",
]
POSTGRES_DOWN = ["ALTER TABLE scheduling_slot DROP CONSTRAINT slot_no_overlap"]

_SQLITE_CLASH = """
    (SELECT s."end" FROM scheduling_slot s
     WHERE s.practitioner_id = NEW.practitioner_id AND s.start < NEW."end" {exclude_self}
     ORDER BY s.start DESC LIMIT 1) > NEW.start
"""
SQLITE_UP = [
    f"""CREATE TRIGGER slot_no_overlap_insert BEFORE INSERT ON scheduling_slot
        WHEN {_SQLITE_CLASH.format(exclude_self="")}
        BEGIN SELECT RAISE(ABORT, 'slot_no_overlap'); END""",
    f"""CREATE TRIGGER slot_no_overlap_update
        BEFORE UPDATE OF start, "end", practitioner_id ON scheduling_slot
        WHEN {_SQLITE_CLASH.format(exclude_self="AND s.id <> NEW.id")}
        BEGIN SELECT RAISE(ABORT, 'slot_no_overlap'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS slot_no_overlap_insert",
    "DROP TRIGGER IF EXISTS slot_no_overlap_update",
]


def _run(statements: dict[str, list[str]], schema_editor: BaseDatabaseSchemaEditor) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}, schema_editor)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
