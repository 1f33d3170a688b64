from django.apps import AppConfig


class WalkinConfig(AppConfig):
    name = "rdv.walkin"
    label = "walkin"
