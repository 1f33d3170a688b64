"""Reads about accounts that more than one caller needs."""

from __future__ import annotations

from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts.models import Passkey, User


def is_staff_member(user: User) -> bool:
    """Clinic staff (a membership at any clinic) or a platform admin (`is_staff`)."""
    if user.is_staff:
        return True
    return user.pk is not None and user.memberships.exists()


def has_second_factor(user: User) -> bool:
    """A confirmed authenticator app or a passkey."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or Passkey.objects.filter(user=user).exists()
    )


def requires_second_factor(user: User) -> bool:
    """Staff always; anyone else once they have set one up."""
    return is_staff_member(user) or has_second_factor(user)
