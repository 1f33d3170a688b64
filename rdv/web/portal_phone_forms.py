"""Forms of the portal's phone booking: find the caller, then give them a time."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.web.portal_forms import DayForm, PortalDateField


class CallerForm(forms.Form):
    ramq_number = forms.CharField(
        label=_("Caller's health insurance number"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ChooseCallerForm(forms.Form):
    caller = forms.CharField(max_length=300)


class CallerSlotsForm(DayForm):
    """Which days of free times to offer the caller (from this one), and whose."""

    date = PortalDateField(label=_("From"), required=False)


class PhoneBookForm(forms.Form):
    patient_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    slot_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    reason = forms.CharField(max_length=1000, required=False)
