from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "rdv.audit"
    label = "audit"
