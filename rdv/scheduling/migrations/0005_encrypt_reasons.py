# The reasons patients give are health data: encrypted at the field level (DESIGN.md
# invariant 7).
#
# Each reason moves to a new encrypted column (added empty, filled through Python, the old
# column dropped, the new one renamed): no plaintext is ever read back through an
# encrypted field, and the step can be reversed (with the keys). The temporary columns
# carry the final columns' encryption contexts, so their tokens stay valid after the
# rename. Encrypting existing rows needs FIELD_ENCRYPTION_KEYS; empty reasons need none.

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import rdv.core.fields

BATCH = 1000
FIELDS = ("reason", "cancellation_reason")


def _copy_reasons(apps: StateApps, suffix_from: str, suffix_to: str) -> None:
    """Copy both reasons of every appointment, in pk batches (an empty one stays empty)."""
    appointment_model = apps.get_model("scheduling", "Appointment")
    manager = appointment_model._default_manager
    sources = [f"{name}{suffix_from}" for name in FIELDS]
    targets = [f"{name}{suffix_to}" for name in FIELDS]
    last_pk = 0
    while True:
        batch = list(manager.filter(pk__gt=last_pk).order_by("pk").only("pk", *sources)[:BATCH])
        if not batch:
            return
        for appointment in batch:
            for source, target in zip(sources, targets, strict=True):
                setattr(appointment, target, getattr(appointment, source))
        manager.bulk_update(batch, targets)
        last_pk = batch[-1].pk


def encrypt_reasons(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _copy_reasons(apps, "", "_encrypted")


def decrypt_reasons(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _copy_reasons(apps, "_encrypted", "")


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0004_withdrawn_slots"),
    ]

    operations = [
        migrations.AddField(
            model_name="appointment",
            name="reason_encrypted",
            field=rdv.core.fields.EncryptedTextField(
                blank=True, context="scheduling.appointment.reason"
            ),
        ),
        migrations.AddField(
            model_name="appointment",
            name="cancellation_reason_encrypted",
            field=rdv.core.fields.EncryptedTextField(
                blank=True, max_length=500, context="scheduling.appointment.cancellation_reason"
            ),
        ),
        migrations.RunPython(encrypt_reasons, decrypt_reasons, elidable=False),
        migrations.RemoveField(model_name="appointment", name="reason"),
        migrations.RemoveField(model_name="appointment", name="cancellation_reason"),
        migrations.RenameField(
            model_name="appointment", old_name="reason_encrypted", new_name="reason"
        ),
        migrations.RenameField(
            model_name="appointment",
            old_name="cancellation_reason_encrypted",
            new_name="cancellation_reason",
        ),
        migrations.AlterField(
            model_name="appointment",
            name="reason",
            field=rdv.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="appointment",
            name="cancellation_reason",
            field=rdv.core.fields.EncryptedTextField(blank=True, max_length=500),
        ),
    ]
