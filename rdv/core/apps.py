from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "rdv.core"
    label = "core"
