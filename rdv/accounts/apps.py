from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "rdv.accounts"
    label = "accounts"
