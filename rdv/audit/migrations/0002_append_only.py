"""Audit entries are never updated or deleted: the database refuses it.

PostgreSQL: a trigger rejects UPDATE and DELETE on every row. (TRUNCATE needs table
ownership, which the application's role does not have in production: docs/security.md.)
SQLite: a trigger rejects UPDATE. DELETE is left to the hash chain to detect, because
Django's test runner empties tables with DELETE on SQLite; the embedded database is not
the production store.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES_UP = [
    """CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
           USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
    """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_auditentry
       FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS audit_append_only ON audit_auditentry",
    "DROP FUNCTION IF EXISTS audit_refuse_change()",
]
SQLITE_UP = [
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_auditentry
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_no_update"]


def _run(statements: dict[str, list[str]], schema_editor: BaseDatabaseSchemaEditor) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        # No parameters: the PL/pgSQL body's "%" is RAISE's placeholder, not psycopg's.
        schema_editor.execute(statement, params=None)


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}, schema_editor)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
