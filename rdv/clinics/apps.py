from django.apps import AppConfig


class ClinicsConfig(AppConfig):
    name = "rdv.clinics"
    label = "clinics"
