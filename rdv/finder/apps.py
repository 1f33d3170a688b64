from django.apps import AppConfig


class FinderConfig(AppConfig):
    name = "rdv.finder"
    label = "finder"
