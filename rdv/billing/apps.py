from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "rdv.billing"
    label = "billing"
