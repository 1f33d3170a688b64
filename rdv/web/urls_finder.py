"""The appointment finder's pages (rdv.web.finder_views), the built-in test payment page,
and the patient's free alerts."""

from django.urls import path

from rdv.web import finder_views

urlpatterns = [
    path("chercheur/", finder_views.requests, name="finder_requests"),
    path("chercheur/nouvelle-demande/", finder_views.new_request, name="finder_new"),
    path(
        "chercheur/demandes/<int:request_id>/", finder_views.request_detail, name="finder_request"
    ),
    path("chercheur/demandes/<int:request_id>/paiement/", finder_views.pay, name="finder_pay"),
    path(
        "chercheur/demandes/<int:request_id>/annuler/",
        finder_views.cancel,
        name="finder_cancel",
    ),
    path(
        "chercheur/demandes/<int:request_id>/recu.pdf",
        finder_views.receipt,
        name="finder_receipt",
    ),
    path("chercheur/offres/<int:offer_id>/accepter/", finder_views.accept, name="finder_accept"),
    path("chercheur/offres/<int:offer_id>/refuser/", finder_views.decline, name="finder_decline"),
    path("chercheur/alertes/", finder_views.alerts, name="finder_alerts"),
    path(
        "chercheur/alertes/<int:alert_id>/supprimer/",
        finder_views.remove_alert,
        name="finder_alert_remove",
    ),
]
