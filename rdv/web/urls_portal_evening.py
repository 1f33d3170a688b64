"""Portal routes: evening (see rdv/web/urls_portal.py).

The evening email's link to tomorrow's day sheet lives outside /clinique/<id>/: it is
opened without a session, and its signed token names the clinic (rdv.clinics.evening)."""

from django.urls import URLPattern, path

from rdv.web import portal_evening_views

urlpatterns: list[URLPattern] = [
    path(
        "feuille-du-jour/<str:token>/",
        portal_evening_views.evening_sheet,
        name="evening_sheet",
    ),
]
