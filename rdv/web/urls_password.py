"""Forgotten password and passkeys (French paths, as everywhere on the patient pages)."""

from django.urls import URLPattern, path

from rdv.web import passkey_views, password_views

urlpatterns: list[URLPattern] = [
    path("compte/mot-de-passe/oublie/", password_views.request_reset, name="password_reset"),
    path("compte/mot-de-passe/envoye/", password_views.reset_sent, name="password_reset_sent"),
    path(
        "compte/mot-de-passe/nouveau/<str:uidb64>/<str:token>/",
        password_views.choose_password,
        name="password_reset_confirm",
    ),
    path("compte/cles-d-acces/", passkey_views.passkey_list, name="passkeys"),
    path(
        "compte/cles-d-acces/<int:passkey_id>/supprimer/",
        passkey_views.remove,
        name="passkey_remove",
    ),
    path(
        "compte/cles-d-acces/ajout/debut/",
        passkey_views.register_begin,
        name="passkey_register_begin",
    ),
    path(
        "compte/cles-d-acces/ajout/fin/",
        passkey_views.register_finish,
        name="passkey_register_finish",
    ),
    path(
        "compte/cles-d-acces/connexion/debut/",
        passkey_views.sign_in_begin,
        name="passkey_sign_in_begin",
    ),
    path(
        "compte/cles-d-acces/connexion/fin/",
        passkey_views.sign_in_finish,
        name="passkey_sign_in_finish",
    ),
]
