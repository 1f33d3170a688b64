# Ending every web session of one person at once (rdv.accounts.models.User
# .get_session_auth_hash, raised by rdv.accounts.mfa.issue_enrolment_code). Existing
# accounts start at 0, where the session hash is Django's default: no one is signed out.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_notification_preferences"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="session_epoch",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
