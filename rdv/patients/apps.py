from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "rdv.patients"
    label = "patients"
