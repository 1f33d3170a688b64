"""Portal routes: the file of a caller without an RDV Santé account, created by the front
desk (see rdv/web/urls_portal.py)."""

from django.urls import URLPattern, path

from rdv.web import portal_phone_views

urlpatterns: list[URLPattern] = [
    path(
        "clinique/<int:clinic_id>/telephone/nouveau/",
        portal_phone_views.create_caller,
        name="portal_phone_new",
    ),
]
