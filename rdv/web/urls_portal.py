"""The clinic portal, under /clinique/<clinic id>/: one clinic per address, so a member of
several picks one and every page is scoped to it."""

from django.urls import path

from rdv.web import (
    portal_admin_views,
    portal_export_views,
    portal_phone_views,
    portal_settings_views,
    portal_views,
    portal_walkin_views,
)
from rdv.web.urls_portal_callers import urlpatterns as caller_urls
from rdv.web.urls_portal_evening import urlpatterns as evening_urls
from rdv.web.urls_portal_fairness import urlpatterns as fairness_urls
from rdv.web.urls_portal_move import urlpatterns as move_urls
from rdv.web.urls_portal_practitioner import urlpatterns as practitioner_urls
from rdv.web.urls_portal_staff import urlpatterns as staff_urls
from rdv.web.urls_portal_stats import urlpatterns as stats_urls

urlpatterns = [
    path("clinique/", portal_views.clinics, name="portal_clinics"),
    path("clinique/<int:clinic_id>/agenda/", portal_views.agenda, name="portal_agenda"),
    path(
        "clinique/<int:clinic_id>/rendez-vous/<int:appointment_id>/",
        portal_views.appointment,
        name="portal_appointment",
    ),
    path(
        "clinique/<int:clinic_id>/rendez-vous/<int:appointment_id>/presence/",
        portal_views.attendance,
        name="portal_attendance",
    ),
    path(
        "clinique/<int:clinic_id>/rendez-vous/<int:appointment_id>/annuler/",
        portal_views.cancel,
        name="portal_cancel",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/",
        portal_admin_views.practitioners,
        name="portal_practitioners",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/",
        portal_admin_views.practitioner,
        name="portal_practitioner",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/horaires/ajouter/",
        portal_admin_views.rule_add,
        name="portal_rule_add",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/horaires/<int:rule_id>/retirer/",
        portal_admin_views.rule_remove,
        name="portal_rule_remove",
    ),
    path(
        "clinique/<int:clinic_id>/exports/",
        portal_export_views.exports_page,
        name="portal_exports",
    ),
    path(
        "clinique/<int:clinic_id>/feuille-du-jour.pdf",
        portal_export_views.day_sheet,
        name="portal_day_sheet",
    ),
    path(
        "clinique/<int:clinic_id>/export/agenda.csv",
        portal_export_views.agenda_csv,
        name="portal_export_csv",
    ),
    path(
        "clinique/<int:clinic_id>/export/agenda.ics",
        portal_export_views.agenda_ics,
        name="portal_export_ics",
    ),
    path(
        "clinique/<int:clinic_id>/sans-rendez-vous/",
        portal_walkin_views.walkins,
        name="portal_walkins",
    ),
    path(
        "clinique/<int:clinic_id>/sans-rendez-vous/vagues/",
        portal_walkin_views.waves_open,
        name="portal_waves_open",
    ),
    path(
        "clinique/<int:clinic_id>/sans-rendez-vous/<int:wave_id>/",
        portal_walkin_views.wave,
        name="portal_wave",
    ),
    path(
        "clinique/<int:clinic_id>/sans-rendez-vous/<int:wave_id>/ajouter/",
        portal_walkin_views.walk_in_add,
        name="portal_walkin_add",
    ),
    path(
        "clinique/<int:clinic_id>/sans-rendez-vous/<int:wave_id>/appeler/",
        portal_walkin_views.wave_call_next,
        name="portal_wave_call_next",
    ),
    path(
        "clinique/<int:clinic_id>/sans-rendez-vous/personne/<int:walk_in_id>/statut/",
        portal_walkin_views.walk_in_status,
        name="portal_walkin_status",
    ),
    path(
        "clinique/<int:clinic_id>/telephone/", portal_phone_views.find_caller, name="portal_phone"
    ),
    path(
        "clinique/<int:clinic_id>/telephone/choisir/",
        portal_phone_views.choose_caller,
        name="portal_phone_choose",
    ),
    path(
        "clinique/<int:clinic_id>/telephone/creneaux/",
        portal_phone_views.caller_slots,
        name="portal_phone_slots",
    ),
    path(
        "clinique/<int:clinic_id>/telephone/reserver/",
        portal_phone_views.book_for_caller,
        name="portal_phone_book",
    ),
    path(
        "clinique/<int:clinic_id>/fermetures/",
        portal_settings_views.closures,
        name="portal_closures",
    ),
    path(
        "clinique/<int:clinic_id>/fermetures/ajouter/",
        portal_settings_views.closure_add,
        name="portal_closure_add",
    ),
    path(
        "clinique/<int:clinic_id>/fermetures/feries/",
        portal_settings_views.holidays_add,
        name="portal_holidays_add",
    ),
    path(
        "clinique/<int:clinic_id>/fermetures/<int:closure_id>/retirer/",
        portal_settings_views.closure_remove,
        name="portal_closure_remove",
    ),
    path(
        "clinique/<int:clinic_id>/parametres/",
        portal_settings_views.clinic_settings,
        name="portal_settings",
    ),
]
urlpatterns += staff_urls + stats_urls + evening_urls + practitioner_urls + move_urls
urlpatterns += fairness_urls
urlpatterns += caller_urls
