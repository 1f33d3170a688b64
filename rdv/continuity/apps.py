from django.apps import AppConfig


class ContinuityConfig(AppConfig):
    name = "rdv.continuity"
    label = "continuity"
