from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "rdv.web"
    label = "web"
