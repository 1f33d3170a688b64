"""The staff page and the invitation's link: Marc (Laval's administrator) sees his staff,
invites Julie, changes roles, links and removes; Sophie, a receptionist, may not; Julie
follows the link and is told exactly what to do until she can join. (Another clinic's
ids are walked in tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import User
from rdv.clinics import staff
from rdv.clinics.models import Clinic, Membership, StaffInvitation
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.notifications.models import Message
from tests.conftest import NOW, Cast, portal_client, sent_mail
from tests.factories import UserFactory

LINK = re.compile(r"https?://[^/\s]+(/invitation-equipe/[\w-]+/)")


def staff_url(clinic: Clinic, rest: str = "") -> str:
    return f"/clinique/{clinic.pk}/equipe/{rest}"


def member_url(cast: Cast, user: User, action: str) -> str:
    member = Membership.objects.get(user=user, clinic=cast.laval)
    return staff_url(cast.laval, f"{member.pk}/{action}/")


def page(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def julie(db: Any) -> User:
    user: User = UserFactory.create(email="julie@example.test", first_name="Julie")
    provision_confirmed_totp(user)
    return user


def invitation_path(cast: Cast, email: str = "julie@example.test", **data: str) -> str:
    """Marc invites `email` through the page; the path the emailed link opens."""
    mail.outbox.clear()
    form = {"email": email, "role": "receptionist", "practitioner": "", **data}
    assert portal_client(cast.marc).post(staff_url(cast.laval, "inviter/"), form).status_code == 302
    (message,) = sent_mail()
    found = LINK.search(str(message.body))
    assert found is not None
    return found.group(1)


def signed_in(user: User, *, second_factor: bool, language: str = "en") -> Client:
    """A browser signed in as `user`, with or without a second factor proved."""
    if second_factor:
        return portal_client(user, language)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


# --- The staff page -------------------------------------------------------------------------


def test_the_administrator_sees_members_and_open_invitations(cast: Cast) -> None:
    staff.invite(
        staff_context(cast.marc, cast.laval.pk),
        email="julie@example.test",
        role="practitioner",
        practitioner_id=cast.dr_roy.pk,
    )
    response = portal_client(cast.marc).get(staff_url(cast.laval))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = page(response)
    for text in (
        "marc@example.test",
        "sophie@example.test",
        "Clinic administrator",
        "Receptionist",
        "julie@example.test",
        "Dr Jean Roy",
        "30 November 2026, 08:00",
    ):
        assert text in html, text
    assert "karim@example.test" not in html


def test_receptionists_and_patients_have_no_staff_page(cast: Cast) -> None:
    assert portal_client(cast.sophie).get(staff_url(cast.laval)).status_code == 403
    assert portal_client(cast.marie).get(staff_url(cast.laval)).status_code == 404
    assert portal_client(cast.marc).get(staff_url(cast.montreal)).status_code == 404
    anonymous = Client(HTTP_HOST="127.0.0.1")
    assert anonymous.get(staff_url(cast.laval)).status_code == 302
    posted = portal_client(cast.sophie).post(
        staff_url(cast.laval, "inviter/"), {"email": "x@example.test", "role": "clinic_admin"}
    )
    assert posted.status_code == 403
    assert not StaffInvitation.objects.exists()


def test_inviting_from_the_page_sends_the_email_and_says_so(cast: Cast) -> None:
    client = portal_client(cast.marc)
    response = client.post(
        staff_url(cast.laval, "inviter/"),
        {"email": "Julie@Example.test", "role": "practitioner", "practitioner": cast.dr_roy.pk},
    )
    assert response.status_code == 302
    assert response["Location"] == staff_url(cast.laval)
    assert "on its way to julie@example.test" in page(client.get(staff_url(cast.laval)))
    invitation = StaffInvitation.objects.get()
    assert (invitation.role, invitation.practitioner) == ("practitioner", cast.dr_roy)
    assert Message.objects.get().language == "en"

    again = client.post(
        staff_url(cast.laval, "inviter/"), {"email": "julie@example.test", "role": "receptionist"}
    )
    assert "replaces the earlier invitation" in page(client.get(again["Location"]))
    assert StaffInvitation.objects.filter(revoked_at__isnull=True).get().role == "receptionist"


@pytest.mark.parametrize(
    ("language", "data", "message"),
    [
        ("en", {"email": "julie"}, "Enter a valid email address."),
        ("fr", {"email": "julie"}, "Saisissez une adresse de courriel valide."),
        ("en", {"role": "owner"}, "Select a valid choice."),
        ("fr", {"role": "owner"}, "Sélectionnez un choix valide."),
        ("en", {"email": "Sophie@example.test"}, "already a member of the clinic"),
        (
            "en",
            {"role": "receptionist", "practitioner": "dr_roy"},
            "Only a person invited as a practitioner",
        ),
        (
            "en",
            {"role": "practitioner", "practitioner": "montreal_doctor"},
            "Select a valid choice.",
        ),
    ],
)
def test_bad_invitations_are_explained_in_the_page(
    cast: Cast, language: str, data: dict[str, str], message: str
) -> None:
    form = {"email": "julie@example.test", "role": "practitioner", "practitioner": "", **data}
    if form["practitioner"]:
        form["practitioner"] = str(getattr(cast, form["practitioner"]).pk)
    response = portal_client(cast.marc, language).post(staff_url(cast.laval, "inviter/"), form)
    assert response.status_code == 422
    assert message in page(response)
    assert 'id="error-summary"' in page(response)
    assert not StaffInvitation.objects.exists()
    assert not Message.objects.exists()


def test_withdrawing_an_invitation_kills_its_link(cast: Cast) -> None:
    path = invitation_path(cast)
    invitation = StaffInvitation.objects.get()
    client = portal_client(cast.marc)
    url = staff_url(cast.laval, f"invitations/{invitation.pk}/retirer/")
    response = client.post(url)
    assert response.status_code == 302
    assert "is withdrawn" in page(client.get(response["Location"]))
    assert Client(HTTP_HOST="127.0.0.1").get(path).status_code == 404
    twice = client.post(url)
    assert twice.status_code == 409
    assert "already accepted or withdrawn" in page(twice)


def test_the_last_administrator_is_told_why_he_cannot_step_down(cast: Cast) -> None:
    client = portal_client(cast.marc)
    for url, data in (
        (member_url(cast, cast.marc, "role"), {"role": "receptionist"}),
        (member_url(cast, cast.marc, "retirer"), {}),
    ):
        response = client.post(url, data)
        assert response.status_code == 409
        assert "must keep at least one administrator" in page(response)
        assert 'role="alert"' in page(response)
    assert Membership.objects.get(user=cast.marc).role == "clinic_admin"


def test_a_role_change_from_the_page(cast: Cast) -> None:
    client = portal_client(cast.marc)
    response = client.post(member_url(cast, cast.sophie, "role"), {"role": "clinic_admin"})
    assert response.status_code == 302
    assert "is now: Clinic administrator" in page(client.get(response["Location"]))
    assert portal_client(cast.sophie).get(staff_url(cast.laval)).status_code == 200

    bad = client.post(member_url(cast, cast.sophie, "role"), {"role": "owner"})
    assert bad.status_code == 422
    assert "Select a valid choice" in page(bad)

    # Marc steps down: back to the agenda, the staff page is no longer his.
    own = client.post(member_url(cast, cast.marc, "role"), {"role": "receptionist"})
    assert own.status_code == 302
    assert own["Location"] == f"/clinique/{cast.laval.pk}/agenda/"
    assert client.get(staff_url(cast.laval)).status_code == 403


def test_linking_a_practitioner_from_the_page(cast: Cast) -> None:
    doctor = UserFactory.create(first_name="Jean", last_name="Roy")
    Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    client = portal_client(cast.marc)
    url = member_url(cast, doctor, "praticien")
    response = client.post(url, {"practitioner": cast.dr_roy.pk})
    assert response.status_code == 302
    assert "Jean Roy is linked to Dr Jean Roy" in page(client.get(response["Location"]))
    assert Membership.objects.get(user=doctor).practitioner == cast.dr_roy

    not_role = client.post(
        member_url(cast, cast.sophie, "praticien"), {"practitioner": cast.dr_roy.pk}
    )
    assert not_role.status_code == 409
    assert "Only a member with the practitioner role" in page(not_role)
    foreign = client.post(url, {"practitioner": cast.montreal_doctor.pk})
    assert foreign.status_code == 422
    unlinked = client.post(url, {"practitioner": ""})
    assert unlinked.status_code == 302
    assert Membership.objects.get(user=doctor).practitioner is None


def test_a_removed_member_gets_404_on_their_very_next_portal_page(cast: Cast) -> None:
    sophie = portal_client(cast.sophie)
    assert sophie.get(f"/clinique/{cast.laval.pk}/agenda/").status_code == 200
    client = portal_client(cast.marc)
    response = client.post(member_url(cast, cast.sophie, "retirer"))
    assert response.status_code == 302
    assert "their access ends now" in page(client.get(response["Location"]))
    assert sophie.get(f"/clinique/{cast.laval.pk}/agenda/").status_code == 404
    assert sophie.get("/clinique/").status_code == 404


def test_removing_oneself_leaves_the_portal(cast: Cast) -> None:
    Membership.objects.filter(user=cast.sophie).update(role="clinic_admin")
    client = portal_client(cast.marc)
    response = client.post(member_url(cast, cast.marc, "retirer"))
    assert (response.status_code, response["Location"]) == (302, "/")
    assert "You are no longer a member" in page(client.get("/"))
    assert client.get(staff_url(cast.laval)).status_code == 404


# --- The invitation's link ------------------------------------------------------------------


def test_a_visitor_is_told_to_sign_in_or_sign_up_and_comes_back(cast: Cast) -> None:
    path = invitation_path(cast)
    response = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en").get(path)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = page(response)
    assert "GMF Laval" in html
    assert "Receptionist" in html
    assert "Sign in with julie@example.test" in html
    assert f'href="/compte/connexion/?next={path}"' in html
    assert f'href="/compte/inscription/?next={path}"' in html
    refused = Client(HTTP_HOST="127.0.0.1").post(path)
    assert refused.status_code == 403
    assert StaffInvitation.objects.get().accepted_at is None


@pytest.mark.parametrize(
    ("who", "second_factor", "expected"),
    [
        ("paul", True, "but this invitation is for julie@example.test"),
        ("unverified", False, "Confirm your email address first"),
        ("no_factor", False, "Add a passkey"),
        ("julie", False, "You signed in without your second factor"),
    ],
)
def test_the_link_says_what_is_missing_and_stays_usable(
    cast: Cast, julie: User, who: str, second_factor: bool, expected: str
) -> None:
    if who == "paul":
        user = cast.paul
    elif who == "julie":
        user = julie
    else:
        julie.delete()
        user = UserFactory.create(
            email="julie@example.test",
            email_verified_at=None if who == "unverified" else clock.now(),
        )
    path = invitation_path(cast)
    client = signed_in(user, second_factor=second_factor)
    shown = client.get(path)
    assert shown.status_code == 200
    assert expected in page(shown)
    assert "Join GMF Laval" not in page(shown)
    posted = client.post(path)
    assert posted.status_code == 403
    assert expected in page(posted)
    assert "not accepted yet" in page(posted)
    assert not Membership.objects.filter(user=user).exists()
    assert StaffInvitation.objects.get().accepted_at is None


def test_julie_accepts_and_lands_on_the_agenda(cast: Cast, julie: User) -> None:
    path = invitation_path(cast, role="practitioner", practitioner=str(cast.nurse_diane.pk))
    client = signed_in(julie, second_factor=True)
    shown = client.get(path)
    assert "Join GMF Laval" in page(shown)
    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == f"/clinique/{cast.laval.pk}/agenda/"
    agenda = client.get(response["Location"])
    assert agenda.status_code == 200
    assert "Welcome to the staff of GMF Laval" in page(agenda)
    member = Membership.objects.get(user=julie)
    assert (member.role, member.practitioner) == ("practitioner", cast.nurse_diane)
    # Used: the same link is now the one "does not work" page.
    again = client.get(path)
    assert again.status_code == 404
    assert "does not work" in page(again)


def test_an_already_member_is_told_so(cast: Cast, julie: User) -> None:
    path = invitation_path(cast)
    Membership.objects.create(user=julie, clinic=cast.laval, role="receptionist")
    client = signed_in(julie, second_factor=True)
    assert "already a member" in page(client.get(path))
    response = client.post(path)
    assert response.status_code == 409
    assert Membership.objects.filter(user=julie).count() == 1


def test_unknown_expired_revoked_and_used_links_all_get_the_same_404(
    cast: Cast, julie: User
) -> None:
    visitor = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    answers = []
    answers.append(visitor.get("/invitation-equipe/" + "a" * 43 + "/"))
    answers.append(visitor.get("/invitation-equipe/x/"))
    expired = invitation_path(cast, "expired@example.test")
    with clock.frozen_now(NOW + timedelta(days=8)):
        answers.append(visitor.get(expired))
    revoked = invitation_path(cast, "revoked@example.test")
    StaffInvitation.objects.filter(email="revoked@example.test").update(revoked_at=NOW)
    answers.append(visitor.get(revoked))
    used = invitation_path(cast)
    signed_in(julie, second_factor=True).post(used)
    answers.append(visitor.get(used))
    assert {a.status_code for a in answers} == {404}
    varying = r'name="(csrfmiddlewaretoken|next)" value="[^"]+"'  # the token, the page's path
    bodies = {re.sub(varying, "", page(a)) for a in answers}
    assert len(bodies) == 1
    assert "does not work" in bodies.pop()
