"""Domain errors, each with a stable code and a message people can read in FR and EN.

They are raised by services and mapped to HTTP in one place (rdv.api.errors).
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status = 400
    code = "error"
    default_message: Promise | str = _("The request could not be processed.")

    def __init__(
        self,
        message: Promise | str | None = None,
        *,
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        self.field = field
        if code is not None:
            self.code = code
        super().__init__(str(self.message))


class ValidationError(DomainError):
    status = 422
    code = "invalid"
    default_message = _("Some of the information provided is not valid.")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = _("Not found.")


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = _("You are not allowed to do this.")


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"
    default_message = _("Sign-in required, or your session has expired.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = _("This action conflicts with the current state.")


class SlotUnavailable(Conflict):
    code = "slot_unavailable"
    default_message = _("This slot is no longer available. Please choose another one.")
