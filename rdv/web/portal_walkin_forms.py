"""Forms of the clinic portal's walk-in pages. They check shapes only; the rules (past
days, overlaps, a full wave) are the services' (rdv.walkin.services)."""

from __future__ import annotations

from datetime import time

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.patients.services import PHONE_MAX_LENGTH
from rdv.walkin.models import CAPACITY_MAX, WalkInStatus
from rdv.walkin.services import NAME_MAX, STATUS_FROM
from rdv.web.portal_forms import PortalDateField

WAVE_MINUTES = (15, 20, 30, 45, 60)


class WalkInDayForm(forms.Form):
    """Which day's waves and queue (`?date=`)."""

    date = PortalDateField(
        label=_("Day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class OpenWavesForm(forms.Form):
    date = PortalDateField(
        label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    first_start = forms.TimeField(
        label=_("First wave at"),
        initial=time(8),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    last_start = forms.TimeField(
        label=_("Last wave at"),
        initial=time(11, 30),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    minutes = forms.TypedChoiceField(
        label=_("Length of each wave"),
        coerce=int,
        initial=30,
    )
    capacity = forms.IntegerField(
        label=_("Patients per wave"), min_value=1, max_value=CAPACITY_MAX, initial=6
    )
    practitioner = forms.TypedChoiceField(
        label=_("Practitioner"), required=False, coerce=int, empty_value=None
    )

    def __init__(
        self, *args: object, practitioners: list[tuple[int, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["practitioner"].choices = [("", _("Any practitioner")), *practitioners]  # type: ignore[attr-defined]
        # Built per form, so the label is in the language of the request.
        self.fields["minutes"].choices = [  # type: ignore[attr-defined]
            (m, _("%(minutes)d minutes") % {"minutes": m}) for m in WAVE_MINUTES
        ]


class AddWalkInForm(forms.Form):
    first_name = forms.CharField(
        label=_("First name"),
        max_length=NAME_MAX,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=NAME_MAX,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    phone = forms.CharField(
        label=_("Phone"),
        required=False,
        max_length=PHONE_MAX_LENGTH,
        help_text=_("To call the person back if they step out."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )


class WalkInStatusForm(forms.Form):
    # Named apart from the agenda's "status" (appointment statuses): one request body can
    # then fill every portal form, as the clinic-isolation walk posts.
    walk_in_status = forms.ChoiceField(choices=[(s, WalkInStatus(s).label) for s in STATUS_FROM])
