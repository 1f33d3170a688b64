from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="address_index",
            field=models.CharField(db_index=True, default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="message",
            name="provider_status",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["provider_id"], name="message_provider_id_idx"),
        ),
    ]
