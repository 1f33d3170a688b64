"""The account holder's profile and the family members they book for."""

from django.urls import URLPattern, path

from rdv.web import profile_views

urlpatterns: list[URLPattern] = [
    path("compte/profil/", profile_views.profile, name="profile"),
    path("compte/proches/", profile_views.dependants, name="dependants"),
    path("compte/proches/ajouter/", profile_views.dependant_add, name="dependant_add"),
    path("compte/proches/<int:patient_id>/", profile_views.dependant_edit, name="dependant_edit"),
    path(
        "compte/proches/<int:patient_id>/retirer/",
        profile_views.dependant_remove,
        name="dependant_remove",
    ),
]
