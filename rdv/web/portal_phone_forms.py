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


class CallerIdentityForm(forms.Form):
    """A caller without their card: surname and date of birth (first name to narrow)."""

    PREFIX = "who"

    last_name = forms.CharField(label=_("Surname"), max_length=100)
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    date_of_birth = forms.DateField(
        label=_("Date of birth"), widget=forms.DateInput(attrs={"type": "date"})
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


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date", "autocomplete": "off"}, format="%Y-%m-%d")


class CallerRecordForm(forms.Form):
    """The file of a caller without an RDV Santé account (rdv.patients.services.create_caller
    decides; its field errors land on the field of the same name)."""

    PREFIX = "new"

    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    last_name_at_birth = forms.CharField(
        label=_("Surname at birth"),
        help_text=_("If it differs from the last name: the health insurance number uses it."),
        max_length=100,
        required=False,
    )
    date_of_birth = forms.DateField(label=_("Date of birth"), widget=_date_input())
    ramq_number = forms.CharField(
        label=_("Health insurance number (RAMQ)"),
        help_text=_("4 letters and 8 digits, as on the card, e.g. TREM 8804 1211."),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    card_sequence_number = forms.CharField(
        label=_("Card sequence number"),
        help_text=_("The 2 digits printed after the number on the card."),
        max_length=4,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    phone = forms.CharField(
        label=_("Phone"),
        help_text=_(
            "Their confirmation and reminders go there by text message; none without a number."
        ),
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
