"""Forms of the portal's phone booking: find the caller, then give them a time."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.web.portal_forms import PortalDateField


class CallerForm(forms.Form):
    ramq_number = forms.CharField(
        label=_("Caller's health insurance number"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ChooseCallerForm(forms.Form):
    caller = forms.CharField(max_length=300)


class CallerSlotsForm(forms.Form):
    """Which days of free times to offer the caller, and whose."""

    date = PortalDateField(label=_("From"), required=False)
    practitioner = forms.TypedChoiceField(
        label=_("Practitioner"), required=False, coerce=int, empty_value=None
    )

    def __init__(
        self, *args: object, practitioners: list[tuple[int, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["practitioner"].choices = [("", _("All practitioners")), *practitioners]  # type: ignore[attr-defined]


class PhoneBookForm(forms.Form):
    patient_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    slot_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    reason = forms.CharField(max_length=1000, required=False)
