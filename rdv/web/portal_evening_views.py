"""The evening email's link to tomorrow's day sheet (rdv.clinics.evening), opened without
signing in: read the token, let the service check the holder and build the sheet, send
the file. Nothing of it may be kept: not by a cache, a search engine or another site's
logs (the token is in the address)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from rdv.clinics import evening
from rdv.core.errors import DomainError
from rdv.web.errors import error_page


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def evening_sheet(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link, pdf = evening.open_sheet(token)
    except DomainError as exc:
        return _private(error_page(request, exc))
    response = HttpResponse(pdf, content_type="application/pdf")
    name = f"clinique-{link.clinic_id}-feuille-du-jour-{link.day.isoformat()}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return _private(response)
