from django.urls import include, path

from rdv.web import account_views, family_views, link_views, unsubscribe_views, views

# French paths first: they are what a patient in Quebec sees in the address bar.
urlpatterns = [
    path("", views.search, name="search"),
    path("creneaux/<int:slot_id>/", views.slot_detail, name="slot"),
    path("creneaux/<int:slot_id>/retenir/", views.hold, name="hold"),
    path("creneaux/reserver/", views.book, name="book"),
    path("visite-familiale/", family_views.family_search, name="family_search"),
    path("visite-familiale/reserver/", family_views.family_book, name="family_book"),
    path("mes-rendez-vous/", views.my_appointments, name="appointments"),
    path("rendez-vous/<int:appointment_id>/", views.appointment_detail, name="appointment"),
    path(
        "rendez-vous/<int:appointment_id>/calendrier.ics",
        views.appointment_ics,
        name="appointment_ics",
    ),
    path("rendez-vous/<int:appointment_id>/annuler/", views.cancel, name="cancel"),
    path("rendez-vous/<int:appointment_id>/deplacer/", views.move, name="move"),
    path("r/<str:purpose>/<str:token>/", link_views.appointment_link, name="appointment_link"),
    path("desabonnement/<str:token>/", unsubscribe_views.unsubscribe, name="unsubscribe"),
    path("compte/connexion/", account_views.sign_in, name="sign_in"),
    path("compte/inscription/", account_views.sign_up, name="sign_up"),
    path("compte/confirmation/", account_views.verify_email, name="verify_email"),
    path("compte/deconnexion/", account_views.sign_out, name="sign_out"),
    path("langue/", account_views.switch_language, name="switch_language"),
    path("", include("rdv.web.urls_profile")),
    path("", include("rdv.web.urls_password")),
    path("", include("rdv.web.urls_mfa")),
    path("", include("rdv.web.urls_privacy")),
    path("", include("rdv.web.urls_portal")),
    path("", include("rdv.web.urls_finder")),
]
