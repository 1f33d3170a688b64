from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

from rdv.api.api import api
from rdv.billing.webhooks import stripe_webhook
from rdv.core import collectors, health
from rdv.core.metrics import metrics_endpoint
from rdv.notifications import webhooks

# Platform admins sign in with a password and a code from their authenticator.
admin.site.__class__ = OTPAdminSite
admin.site.site_header = "RDV Santé — administration"

urlpatterns = [
    path("", include("rdv.web.urls")),
    path("api/v1/", api.urls),
    path("webhooks/twilio/status/", webhooks.twilio_status, name="twilio_status"),
    path("webhooks/twilio/inbound/", webhooks.twilio_inbound, name="twilio_inbound"),
    path("webhooks/stripe/", stripe_webhook, name="stripe_webhook"),
    # For the load balancer and the orchestrator (docs/operations.md, "Health").
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # For the operator's Prometheus, behind METRICS_TOKEN (docs/monitoring.md).
    path("metrics", metrics_endpoint(*collectors.scraped()), name="metrics"),
    # A non-default address: scanners probing /admin/ find nothing.
    path("gestion-plateforme/", admin.site.urls),
]
