"""Forms of the portal's "move an appointment" page (the day shown is the agenda's
DayForm)."""

from __future__ import annotations

from django import forms


class MoveForm(forms.Form):
    """The free time chosen."""

    slot_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
