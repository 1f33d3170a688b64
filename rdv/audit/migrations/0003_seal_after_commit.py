"""Entries are sealed after their transaction commits; the seal is written once.

Before, each entry was chained inside the transaction it recorded, under a lock held
until that transaction's commit: every auditing transaction committed one after the
other. Now an entry is written without `seq`, `prev_hash` and `hash`; the sealer fills
them in, in commit order. The triggers change accordingly: an UPDATE is allowed only if
it seals an unsealed entry and leaves every other column as it was.

PostgreSQL compares the whole row (as JSON) minus the three seal columns, so a column
added later is covered without touching the trigger. SQLite names each column; a test
updates every content column of an unsealed entry and expects a refusal, so a column
added without updating this list fails CI.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES_UP = [
    """CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
            AND (to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash')
                = (to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash') THEN
           RETURN NEW;
         END IF;
         RAISE EXCEPTION 'audit entries are append-only (% refused; only sealing, once)', TG_OP
           USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
]
POSTGRES_DOWN = [
    """CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
           USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
]
CONTENT_COLUMNS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_role",
    "clinic_id",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "ip",
    "user_agent",
    "request_id",
    "outcome",
)
_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT_COLUMNS)
SQLITE_UP = [
    # The table was rebuilt by the AlterField operations above, without its old trigger.
    "DROP TRIGGER IF EXISTS audit_no_update",
    f"""CREATE TRIGGER audit_seal_once BEFORE UPDATE ON audit_auditentry
        WHEN OLD.seq IS NOT NULL OR NEW.seq IS NULL OR {_CHANGED}
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only (only sealing, once)'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_seal_once",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_auditentry
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
]


def _run(statements: dict[str, list[str]], schema_editor: BaseDatabaseSchemaEditor) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        # No parameters: the PL/pgSQL body's "%" is RAISE's placeholder, not psycopg's.
        schema_editor.execute(statement, params=None)


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}, schema_editor)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="auditentry",
            name="audit_patient_idx",
        ),
        migrations.RemoveIndex(
            model_name="auditentry",
            name="audit_actor_idx",
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["patient_id", "id"], name="audit_patient_id_idx"),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["actor_id", "id"], name="audit_actor_id_idx"),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                condition=models.Q(("seq__isnull", True)), fields=["id"], name="audit_unsealed_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("hash__isnull", True), ("prev_hash__isnull", True), ("seq__isnull", True)
                    ),
                    models.Q(
                        ("hash__isnull", False),
                        ("prev_hash__isnull", False),
                        ("seq__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="audit_seal_whole",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
