from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in


class WebConfig(AppConfig):
    name = "rdv.web"
    label = "web"

    def ready(self) -> None:
        from rdv.web.holds import claim_on_login  # noqa: PLC0415 (app registry must be ready)

        user_logged_in.connect(claim_on_login, dispatch_uid="rdv.web.claim_visitor_hold")
