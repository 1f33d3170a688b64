"""Forms of the clinic administrator's closures and settings pages.

Forms only parse; the rules (order of the days, length, bounds) are the services'.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import Clinic, Practitioner
from rdv.clinics.sender import SENDER_NAME_MAX
from rdv.core import clock
from rdv.scheduling.services import CLOSURE_REASON_MAX, statutory_holiday_years
from rdv.web.portal_forms import PortalDateField

NUMBER = {"inputmode": "numeric"}


def _day_field(label: Any) -> PortalDateField:
    return PortalDateField(
        label=label, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class ClosureForm(forms.Form):
    practitioner = forms.TypedChoiceField(
        label=_("Who is away"), required=False, coerce=int, empty_value=None
    )
    first_day = _day_field(_("First day"))
    last_day = _day_field(_("Last day"))
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=CLOSURE_REASON_MAX,
        help_text=_("For the clinic's staff, for example “Vacation” or “Training”."),
    )

    def __init__(self, *args: Any, practitioners: list[Practitioner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["practitioner"]
        assert isinstance(field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
        field.choices = [
            ("", _("The whole clinic")),
            *((p.pk, p.display_name) for p in practitioners),
        ]
        self.fields["first_day"].initial = clock.local_today()


class HolidaysForm(forms.Form):
    year = forms.TypedChoiceField(label=_("Year"), coerce=int)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["year"]
        assert isinstance(field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
        field.choices = [(year, str(year)) for year in statutory_holiday_years()]


class ClinicSettingsForm(forms.Form):
    cancellation_cutoff_hours = forms.IntegerField(
        label=_("Online cancellation cut-off (hours before the visit)"),
        help_text=_("Patients cannot cancel or move an appointment online closer than this."),
        widget=forms.NumberInput(attrs=NUMBER),
    )
    first_reminder_days = forms.IntegerField(
        label=_("First reminder (days before the visit)"),
        help_text=_("0: no reminder."),
        widget=forms.NumberInput(attrs=NUMBER),
    )
    second_reminder_days = forms.IntegerField(
        label=_("Second reminder (days before the visit)"),
        help_text=_("0: no reminder."),
        widget=forms.NumberInput(attrs=NUMBER),
    )

    # The rules (no line break, "<", ">" or "@"; a valid address) are
    # rdv.clinics.sender's; the form only bounds the length.
    sender_name = forms.CharField(
        label=_("Sender name"),
        required=False,
        max_length=SENDER_NAME_MAX,
        help_text=_(
            "Shown as the sender of the emails and in the text messages about your "
            "appointments. Empty: the clinic's name."
        ),
    )
    reply_to_email = forms.CharField(
        label=_("Reply-to address"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("Where patients' replies to these emails go. Empty: they cannot reply."),
    )

    @classmethod
    def initial_for(cls, clinic: Clinic) -> dict[str, int | str]:
        return {
            "cancellation_cutoff_hours": clinic.cancellation_cutoff_hours,
            "first_reminder_days": clinic.first_reminder_days,
            "second_reminder_days": clinic.second_reminder_days,
            "sender_name": clinic.sender_name,
            "reply_to_email": clinic.reply_to_email,
        }
