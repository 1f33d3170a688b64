"""The privacy pages (Quebec Law 25): the policy, who viewed my file, my data."""

from django.urls import URLPattern, path

from rdv.web import privacy_views

urlpatterns: list[URLPattern] = [
    path("confidentialite/", privacy_views.policy, name="privacy"),
    path("compte/acces-a-mon-dossier/", privacy_views.access_log, name="access_log"),
    path("compte/mes-donnees/", privacy_views.my_data, name="my_data"),
    path("compte/mes-donnees/export.json", privacy_views.data_export, name="data_export"),
    path("compte/mes-donnees/supprimer/", privacy_views.delete_account, name="delete_account"),
    path("compte/supprime/", privacy_views.account_deleted, name="account_deleted"),
]
