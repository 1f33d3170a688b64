"""Portal routes: stats (see rdv/web/urls_portal.py)."""

from django.urls import URLPattern, path

from rdv.web import portal_stats_views

urlpatterns: list[URLPattern] = [
    path(
        "clinique/<int:clinic_id>/statistiques/",
        portal_stats_views.stats_page,
        name="portal_stats",
    ),
    path(
        "clinique/<int:clinic_id>/statistiques.csv",
        portal_stats_views.stats_csv,
        name="portal_stats_csv",
    ),
    path(
        "clinique/<int:clinic_id>/export/tout.zip",
        portal_stats_views.export_all,
        name="portal_export_all",
    ),
]
