# Health data is encrypted at the field level (DESIGN.md invariant 7).
#
# The date of birth moves to a new encrypted column rather than being converted in place:
# each value goes through Python as a `date` and comes out as a token, with no reliance on
# how the database casts a date to text, and the step can be reversed (with the keys).
# The temporary column carries the final column's encryption context, so its tokens stay
# valid after the rename. Encrypting existing rows needs FIELD_ENCRYPTION_KEYS; an empty
# table needs none.

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import rdv.core.fields

BATCH = 1000


def _copy_dates(apps: StateApps, source: str, target: str) -> None:
    """Copy every patient's date of birth from one column to the other, in pk batches."""
    patient_model = apps.get_model("patients", "Patient")
    manager = patient_model._default_manager
    last_pk = 0
    while True:
        batch = list(manager.filter(pk__gt=last_pk).order_by("pk").only("pk", source)[:BATCH])
        if not batch:
            return
        for patient in batch:
            setattr(patient, target, getattr(patient, source))
        manager.bulk_update(batch, [target])
        last_pk = batch[-1].pk


def encrypt_dates(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _copy_dates(apps, "date_of_birth", "date_of_birth_encrypted")


def decrypt_dates(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _copy_dates(apps, "date_of_birth_encrypted", "date_of_birth")


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="last_name_at_birth",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="patient",
            name="phone",
            field=rdv.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name="patient",
            name="ramq_number",
            field=rdv.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name="patient",
            name="ramq_blind_index",
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.AddField(
            model_name="patient",
            name="card_sequence_number",
            field=rdv.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name="patient",
            name="date_of_birth_encrypted",
            field=rdv.core.fields.EncryptedDateField(
                null=True, context="patients.patient.date_of_birth"
            ),
        ),
        # Nullable for a moment, so that going backwards can re-add it before refilling it.
        migrations.AlterField(
            model_name="patient",
            name="date_of_birth",
            field=models.DateField(null=True),
        ),
        migrations.RunPython(encrypt_dates, decrypt_dates, elidable=False),
        migrations.RemoveField(
            model_name="patient",
            name="date_of_birth",
        ),
        migrations.RenameField(
            model_name="patient",
            old_name="date_of_birth_encrypted",
            new_name="date_of_birth",
        ),
        migrations.AlterField(
            model_name="patient",
            name="date_of_birth",
            field=rdv.core.fields.EncryptedDateField(),
        ),
    ]
