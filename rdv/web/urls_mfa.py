"""The authenticator-app page (French paths, as everywhere on the patient pages)."""

from django.urls import URLPattern, path

from rdv.web import mfa_views

urlpatterns: list[URLPattern] = [
    path("compte/authentificateur/", mfa_views.authenticator, name="authenticator"),
    path("compte/authentificateur/debut/", mfa_views.begin, name="authenticator_begin"),
    path("compte/authentificateur/confirmer/", mfa_views.confirm, name="authenticator_confirm"),
    path(
        "compte/authentificateur/codes-de-secours/",
        mfa_views.recovery_codes,
        name="authenticator_recovery_codes",
    ),
]
