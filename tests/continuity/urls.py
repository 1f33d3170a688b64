"""The site's addresses plus two that only tests use: a view that books on a GET (as a
view that forgot read-only mode would), and one that says what the database session is."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from rdv.scheduling import services
from rdv.urls import urlpatterns as site
from rdv.web.errors import signed_in


def book_on_get(request: HttpRequest) -> HttpResponse:
    appointment = services.book_appointment(
        user=signed_in(request), slot_id=int(request.GET["slot"])
    )
    return HttpResponse(f"booked {appointment.pk}")


def session_state(request: HttpRequest) -> HttpResponse:
    query = (
        "SHOW default_transaction_read_only"
        if connection.vendor == "postgresql"
        else "PRAGMA query_only"
    )
    with connection.cursor() as cursor:
        cursor.execute(query)
        row = cursor.fetchone()
    return HttpResponse(str(row[0] if row else ""))


urlpatterns = [
    path("test-only/book-on-get/", book_on_get),
    path("test-only/session/", session_state),
    *site,
]
