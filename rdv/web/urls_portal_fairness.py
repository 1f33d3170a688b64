"""Portal routes: the finder's fairness report (see rdv/web/urls_portal.py)."""

from django.urls import URLPattern, path

from rdv.web import portal_fairness_views

urlpatterns: list[URLPattern] = [
    path(
        "clinique/<int:clinic_id>/equite/",
        portal_fairness_views.fairness_page,
        name="portal_fairness",
    ),
    path(
        "clinique/<int:clinic_id>/equite.csv",
        portal_fairness_views.fairness_csv,
        name="portal_fairness_csv",
    ),
]
