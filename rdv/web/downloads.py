"""A file the browser saves rather than shows (CSV, PDF, iCalendar): one place for the
headers every such answer carries."""

from __future__ import annotations

from django.http import HttpResponse


def download(body: str | bytes, content_type: str, filename: str) -> HttpResponse:
    """`filename` is built by the view from ids and dates only (never user text), so it
    needs no quoting beyond the header's own. No cache keeps a copy: these files hold
    patient or payment data."""
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
