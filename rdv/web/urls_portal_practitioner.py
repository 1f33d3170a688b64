"""Portal routes: practitioner (see rdv/web/urls_portal.py): the week agenda, a
practitioner's own day and registered patients, and registering patients."""

from django.urls import URLPattern, path

from rdv.web import portal_practitioner_views as views

urlpatterns: list[URLPattern] = [
    path("clinique/<int:clinic_id>/agenda/semaine/", views.week, name="portal_agenda_week"),
    path("clinique/<int:clinic_id>/ma-journee/", views.my_day, name="portal_my_day"),
    path("clinique/<int:clinic_id>/mes-patients/", views.my_patients, name="portal_my_patients"),
    path(
        "clinique/<int:clinic_id>/patients-inscrits/",
        views.registered,
        name="portal_registered",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/patients/",
        views.practitioner_patients,
        name="portal_practitioner_patients",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/patients/inscrire/",
        views.register_patient,
        name="portal_register_patient",
    ),
    path(
        "clinique/<int:clinic_id>/praticiens/<int:practitioner_id>/patients/<int:patient_id>/retirer/",
        views.unregister_patient,
        name="portal_unregister_patient",
    ),
]
