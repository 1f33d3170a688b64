"""Staff now sign in with two factors: tokens they obtained with a password alone end."""

from django.db import migrations
from django.db.models import Q
from django.utils import timezone


def revoke_staff_tokens(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    Membership = apps.get_model("clinics", "Membership")
    staff = Q(user__is_staff=True) | Q(user_id__in=Membership.objects.values("user_id"))
    ApiToken.objects.filter(staff, revoked_at__isnull=True).update(revoked_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_two_factors"),
        ("clinics", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(revoke_staff_tokens, migrations.RunPython.noop),
    ]
