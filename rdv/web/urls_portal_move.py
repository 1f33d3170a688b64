"""Portal routes: moving an appointment to another time, and when a reserved weekly time
opens to the public (see rdv/web/urls_portal.py)."""

from django.urls import URLPattern, path

from rdv.web import portal_admin_views, portal_move_views

urlpatterns: list[URLPattern] = [
    path(
        "clinique/<int:clinic_id>/rendez-vous/<int:appointment_id>/deplacer/",
        portal_move_views.move,
        name="portal_move",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/horaires/<int:rule_id>/ouverture/",
        portal_admin_views.rule_release,
        name="portal_rule_release",
    ),
]
