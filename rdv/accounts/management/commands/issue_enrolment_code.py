from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rdv.accounts import mfa
from rdv.accounts.models import User, normalise_email


class Command(BaseCommand):
    help = (
        "Give a person a single-use code to set up (or reset) their second factor. "
        "Removes their current authenticators, passkeys and recovery codes, and signs "
        "them out everywhere. Hand the code over in person or by phone, never by email "
        "alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=normalise_email(options["email"])).first()
        if user is None:
            raise CommandError("No account has this email.")
        code = mfa.issue_enrolment_code(user=user, issued_by=None)
        hours = settings.MFA_ENROLMENT_CODE_HOURS
        self.stdout.write(f"Enrolment code for {user.email}: {code} (valid {hours} h, once)")
