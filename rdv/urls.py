from django.contrib import admin
from django.urls import path
from django_otp.admin import OTPAdminSite

from rdv.api.api import api
from rdv.web import views

# Platform admins sign in with a password and a code from their authenticator.
admin.site.__class__ = OTPAdminSite
admin.site.site_header = "RDV Santé — administration"

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/", api.urls),
    # A non-default address: scanners probing /admin/ find nothing.
    path("gestion-plateforme/", admin.site.urls),
]
