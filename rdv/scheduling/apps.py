from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "rdv.scheduling"
    label = "scheduling"
