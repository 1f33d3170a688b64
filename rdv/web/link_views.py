"""The page a one-click link in a message opens, without signing in.

GET only shows the appointment and a button: mail scanners and link previews open links,
and must not cancel anything. The button POSTs, and the service decides.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from rdv.api.limits import enforce
from rdv.notifications.links import read_token
from rdv.scheduling import services
from rdv.web.errors import handles_domain_errors


@require_http_methods(["GET", "POST"])
@handles_domain_errors
def appointment_link(request: HttpRequest, purpose: str, token: str) -> HttpResponse:
    target = read_token(purpose, token)
    done = ""
    if request.method == "POST" and purpose != "view":
        enforce(request, "book")
        if purpose == "confirm":
            services.confirm_by_link(appointment_id=target.appointment_id, slot_id=target.slot_id)
            done = _("Thank you: the clinic knows you will come.")
        else:
            services.cancel_by_link(appointment_id=target.appointment_id, slot_id=target.slot_id)
            done = _("Your appointment is cancelled.")
    appointment = services.appointment_for_link(
        appointment_id=target.appointment_id, slot_id=target.slot_id
    )
    response = render(
        request,
        "web/appointment_link.html",
        {"appointment": appointment, "purpose": purpose, "done": done},
    )
    # The token is in the address: keep it out of other sites' logs and of caches.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response
