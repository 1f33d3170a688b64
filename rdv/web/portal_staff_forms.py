"""Forms of the clinic administrator's staff page: invite, change a role, link a
practitioner. Forms only parse; the rules (one open invitation per address, the last
administrator, one account per practitioner) are rdv.clinics.staff's.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import Practitioner, StaffRole
from rdv.clinics.staff import EMAIL_MAX_LENGTH


def _practitioner_field(label: Any, help_text: Any = "") -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label, required=False, coerce=int, empty_value=None, help_text=help_text
    )


def _set_practitioners(form: forms.Form, practitioners: list[Practitioner], empty: Any) -> None:
    field = form.fields["practitioner"]
    assert isinstance(field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
    field.choices = [("", empty), *((p.pk, p.display_name) for p in practitioners)]


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(
        label=_("Role"), choices=StaffRole.choices, initial=StaffRole.RECEPTIONIST
    )
    practitioner = _practitioner_field(
        _("Practitioner"),
        help_text=_(
            "Only for the practitioner role: which of the clinic's practitioners this person is."
        ),
    )

    def __init__(self, *args: Any, practitioners: list[Practitioner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_practitioners(self, practitioners, _("Not specified"))


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=StaffRole.choices)


class LinkForm(forms.Form):
    practitioner = _practitioner_field(_("Practitioner"))

    def __init__(self, *args: Any, practitioners: list[Practitioner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_practitioners(self, practitioners, _("None"))
