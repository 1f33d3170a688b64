"""Password rules in the spirit of NIST SP 800-63B: length matters, composition rules do not.

Used with Django's CommonPasswordValidator and UserAttributeSimilarityValidator (settings).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from rdv.accounts.models import User
from rdv.accounts.queries import is_staff_member


class PasswordLengthValidator:
    """At least `patient_min` characters (`staff_min` for clinic staff and platform
    admins), at most `max_length` (hashing megabytes of text is a denial of service)."""

    def __init__(self, patient_min: int = 10, staff_min: int = 12, max_length: int = 256) -> None:
        self.patient_min = patient_min
        self.staff_min = staff_min
        self.max_length = max_length

    def minimum_for(self, user: User | None) -> int:
        if isinstance(user, User) and is_staff_member(user):
            return self.staff_min
        return self.patient_min

    def validate(self, password: str, user: User | None = None) -> None:
        minimum = self.minimum_for(user)
        if len(password) < minimum:
            raise ValidationError(
                ngettext(
                    "This password is too short. It must contain at least %(min_length)d "
                    "character.",
                    "This password is too short. It must contain at least %(min_length)d "
                    "characters.",
                    minimum,
                ),
                code="password_too_short",
                params={"min_length": minimum},
            )
        if len(password) > self.max_length:
            raise ValidationError(
                _("This password is too long. It must contain at most %(max_length)d characters."),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return _(
            "Your password must contain at least %(patient_min)d characters "
            "(%(staff_min)d for clinic staff) and at most %(max_length)d. "
            "A few unrelated words make a good one."
        ) % {
            "patient_min": self.patient_min,
            "staff_min": self.staff_min,
            "max_length": self.max_length,
        }
