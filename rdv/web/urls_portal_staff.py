"""Portal routes: staff (see rdv/web/urls_portal.py), and the invitation's link, which is
outside the portal (the invitee is not a member yet)."""

from django.urls import URLPattern, path

from rdv.web import portal_staff_views as views

urlpatterns: list[URLPattern] = [
    path("clinique/<int:clinic_id>/equipe/", views.staff_page, name="portal_staff"),
    path("clinique/<int:clinic_id>/equipe/inviter/", views.invite, name="portal_staff_invite"),
    path(
        "clinique/<int:clinic_id>/equipe/invitations/<int:invitation_id>/retirer/",
        views.invitation_revoke,
        name="portal_invitation_revoke",
    ),
    path(
        "clinique/<int:clinic_id>/equipe/<int:membership_id>/role/",
        views.member_role,
        name="portal_member_role",
    ),
    path(
        "clinique/<int:clinic_id>/equipe/<int:membership_id>/praticien/",
        views.member_practitioner,
        name="portal_member_practitioner",
    ),
    path(
        "clinique/<int:clinic_id>/equipe/<int:membership_id>/retirer/",
        views.member_remove,
        name="portal_member_remove",
    ),
    path("invitation-equipe/<str:token>/", views.invitation, name="staff_invitation"),
]
