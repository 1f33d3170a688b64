from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SchedulingConfig(AppConfig):
    name = "rdv.scheduling"
    label = "scheduling"

    def ready(self) -> None:
        from rdv.scheduling.sqlite_triggers import ensure_triggers  # noqa: PLC0415 (app registry must be ready)

        post_migrate.connect(ensure_triggers, sender=self, dispatch_uid="slot_no_overlap_sqlite")
