from django.db import migrations, models
from django.db.models import Q


def patients_cancelled_until_now(apps, schema_editor):
    # Before this field only the patient's side could cancel.
    Appointment = apps.get_model("scheduling", "Appointment")
    Appointment.objects.filter(status="cancelled").update(cancelled_by="patient")


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0009_appointment_confirmed_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="appointment",
            name="cancelled_by",
            field=models.CharField(
                blank=True,
                choices=[("patient", "The patient"), ("clinic", "The clinic")],
                max_length=10,
            ),
        ),
        migrations.RunPython(patients_cancelled_until_now, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="appointment",
            constraint=models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_by__in=["patient", "clinic"])
                | (~Q(status="cancelled") & Q(cancelled_by="")),
                name="appointment_cancelled_by_iff_cancelled",
            ),
        ),
    ]
