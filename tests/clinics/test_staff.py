"""A clinic's staff (rdv.clinics.staff): Marc, Laval's administrator, invites Julie by
email; Julie accepts with a confirmed address and a second factor; Marc changes roles,
links a practitioner-role member to Dr Roy, and removes people. The clinic never loses its
last administrator, not even when two administrators demote each other at the same
instant (real threads on PostgreSQL)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import ApiToken, TokenScope, User
from rdv.accounts.services import user_for_token
from rdv.accounts.tokens import create_token
from rdv.audit.models import AuditEntry
from rdv.clinics import staff
from rdv.clinics.models import Membership, StaffInvitation
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.notifications.models import Message, MessageStatus
from tests.conftest import NOW, Cast, on_postgres, sent_mail
from tests.factories import PractitionerFactory, UserFactory

LINK = re.compile(r"https?://\S+/invitation-equipe/([\w-]+)/")


def admin(cast: Cast) -> StaffContext:
    return staff_context(cast.marc, cast.laval.pk)


def membership(user: User, cast: Cast) -> Membership:
    return Membership.objects.get(user=user, clinic=cast.laval)


def invite(cast: Cast, email: str = "julie@example.test", **kwargs: Any) -> str:
    """Invite `email` as Marc; the link's secret, read from the email sent."""
    mail.outbox.clear()
    kwargs.setdefault("role", "receptionist")
    staff.invite(admin(cast), email=email, **kwargs)
    (message,) = [m for m in sent_mail() if m.to == [email.lower()]]
    found = LINK.search(str(message.body))
    assert found is not None, message.body
    return found.group(1)


@pytest.fixture
def julie(db: Any) -> User:
    """A patient account with a confirmed address and an authenticator app."""
    user: User = UserFactory.create(email="julie@example.test", first_name="Julie")
    provision_confirmed_totp(user)
    return user


def accept(user: User, token: str, *, proved: bool = True) -> Membership:
    return staff.accept_invitation(user=user, token=token, second_factor_proved=proved)


# --- Inviting -------------------------------------------------------------------------------


def test_an_invitation_mails_a_link_whose_secret_is_stored_only_as_a_hash(cast: Cast) -> None:
    token = invite(cast, "Julie@Example.test", role="practitioner", language="en")
    invitation = StaffInvitation.objects.get()
    assert invitation.email == "julie@example.test"
    assert invitation.token_hash == staff.token_hash(token) != token
    assert token not in str(StaffInvitation.objects.values().get())
    assert invitation.expires_at == NOW + timedelta(days=7)
    assert (invitation.invited_by, invitation.role) == (cast.marc, "practitioner")
    (email,) = mail.outbox
    assert email.subject == "Invitation to join the staff of GMF Laval on RDV Santé"
    assert "Role: Practitioner" in email.body
    assert "GMF Laval" in email.body
    assert "30 November 2026 at 08:00" in email.body
    # Sent: the link no longer sits in the outbox, even encrypted.
    message = Message.objects.get(key=f"staff_invite:{invitation.pk}")
    assert (message.status, message.payload, message.recipient) == ("sent", "", None)


def test_the_invitation_email_is_in_the_language_of_the_page_that_sent_it(cast: Cast) -> None:
    invite(cast, language="fr")
    (email,) = mail.outbox
    assert "GMF Laval" in email.subject
    assert email.body.startswith("Bonjour,")
    assert "Réceptionniste" in email.body
    assert Message.objects.get().language == "fr"


def test_inviting_an_address_again_revokes_the_open_invitation_and_its_waiting_email(
    cast: Cast,
) -> None:
    first = staff.invite(admin(cast), email="julie@example.test", role="receptionist")
    second = staff.invite(admin(cast), email="julie@example.test", role="practitioner")
    assert (first.replaced, second.replaced) == (False, True)
    first.invitation.refresh_from_db()
    assert first.invitation.revoked_at == NOW
    assert StaffInvitation.objects.filter(revoked_at__isnull=True).get() == second.invitation
    statuses = dict(Message.objects.values_list("key", "status"))
    assert statuses == {
        f"staff_invite:{first.invitation.pk}": MessageStatus.CANCELLED,
        f"staff_invite:{second.invitation.pk}": MessageStatus.PENDING,
    }
    assert Message.objects.get(status=MessageStatus.CANCELLED).payload == ""


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"email": "not an address"}, "email", "email"),
        ({"email": "a" * 250 + "@example.test"}, "email", "email"),
        ({"email": "sophie@example.test"}, "email", "already_member"),
        ({"role": "owner"}, "role", "role"),
        (
            {"role": "receptionist", "practitioner": "dr_roy"},
            "practitioner",
            "not_practitioner_role",
        ),
        (
            {"role": "practitioner", "practitioner": "montreal_doctor"},
            "practitioner",
            "practitioner",
        ),
    ],
)
def test_bad_invitations_are_refused_with_nothing_written(
    cast: Cast, change: dict[str, str], field: str, code: str
) -> None:
    data: dict[str, Any] = {"email": "julie@example.test", "role": "practitioner", **change}
    if "practitioner" in change:
        data["practitioner_id"] = getattr(cast, data.pop("practitioner")).pk
    with pytest.raises(ValidationError) as refused:
        staff.invite(admin(cast), **data)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert not StaffInvitation.objects.exists()
    assert not Message.objects.exists()


def test_a_practitioner_already_linked_to_an_account_cannot_be_offered_again(
    cast: Cast,
) -> None:
    Membership.objects.create(
        user=UserFactory.create(), clinic=cast.laval, role="practitioner", practitioner=cast.dr_roy
    )
    with pytest.raises(ValidationError) as refused:
        staff.invite(
            admin(cast),
            email="julie@example.test",
            role="practitioner",
            practitioner_id=cast.dr_roy.pk,
        )
    assert refused.value.code == "practitioner_taken"


def test_only_administrators_invite_or_withdraw(cast: Cast) -> None:
    sophie = staff_context(cast.sophie, cast.laval.pk)
    with pytest.raises(PermissionDenied):
        staff.invite(sophie, email="julie@example.test", role="receptionist")
    sent = staff.invite(admin(cast), email="julie@example.test", role="receptionist")
    with pytest.raises(PermissionDenied):
        staff.revoke_invitation(sophie, sent.invitation.pk)
    with pytest.raises(PermissionDenied):
        staff.members_of(sophie)
    assert StaffInvitation.objects.get().revoked_at is None


def test_a_withdrawn_invitation_no_longer_opens_and_is_withdrawn_once(cast: Cast) -> None:
    token = invite(cast)
    invitation = staff.invitation_for_token(token)
    staff.revoke_invitation(admin(cast), invitation.pk)
    with pytest.raises(NotFound) as refused:
        staff.invitation_for_token(token)
    assert refused.value.code == "invitation_invalid"
    with pytest.raises(Conflict):
        staff.revoke_invitation(admin(cast), invitation.pk)
    other_clinic = StaffInvitation.objects.create(
        clinic=cast.montreal,
        email="x@example.test",
        role="receptionist",
        token_hash="0" * 64,
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    with pytest.raises(NotFound):
        staff.revoke_invitation(admin(cast), other_clinic.pk)
    assert StaffInvitation.objects.get(pk=other_clinic.pk).revoked_at is None


# --- Accepting ------------------------------------------------------------------------------


def test_accepting_creates_the_membership_marks_the_invitation_and_ends_older_tokens(
    cast: Cast, julie: User
) -> None:
    token = invite(cast, role="practitioner", practitioner_id=cast.dr_roy.pk)
    old_token = create_token(user=julie, scope=TokenScope.API, lifetime=timedelta(hours=8))

    joined = accept(julie, token)

    assert (joined.clinic, joined.role, joined.practitioner) == (
        cast.laval,
        "practitioner",
        cast.dr_roy,
    )
    invitation = StaffInvitation.objects.get()
    assert (invitation.accepted_at, invitation.accepted_by) == (NOW, julie)
    assert staff_context(julie, cast.laval.pk).role == "practitioner"
    assert user_for_token(old_token) is None  # perhaps obtained with a password alone
    entry = AuditEntry.objects.get(action="staff.invitation.accept")
    assert (entry.actor_id, entry.clinic_id, entry.object_id) == (
        julie.pk,
        cast.laval.pk,
        str(invitation.pk),
    )
    with pytest.raises(NotFound):  # used
        accept(julie, token)
    assert Membership.objects.filter(user=julie).count() == 1


def test_what_stands_between_a_visitor_and_accepting(cast: Cast, julie: User) -> None:
    token = invite(cast)
    invitation = staff.invitation_for_token(token)

    def state(user: User | None, proved: bool = True) -> str:
        return staff.readiness(user, invitation, second_factor_proved=proved)

    unverified = UserFactory.create(email="julie2@example.test", email_verified_at=None)
    invitation_2 = staff.invitation_for_token(invite(cast, "julie2@example.test"))
    no_factor = UserFactory.create(email="julie3@example.test")
    invitation_3 = staff.invitation_for_token(invite(cast, "julie3@example.test"))

    assert state(None) == "sign_in"
    assert state(cast.paul) == "wrong_account"
    assert staff.readiness(unverified, invitation_2, second_factor_proved=True) == "verify_email"
    assert staff.readiness(no_factor, invitation_3, second_factor_proved=True) == (
        "enrol_second_factor"
    )
    assert state(julie, proved=False) == "prove_second_factor"
    assert state(julie) == "ready"
    Membership.objects.create(user=julie, clinic=cast.laval, role="receptionist")
    assert state(julie) == "already_member"


@pytest.mark.parametrize(
    ("who", "proved", "error"),
    [
        ("paul", True, PermissionDenied),
        ("julie", False, PermissionDenied),
        ("member", True, Conflict),
    ],
)
def test_an_invitation_that_cannot_be_accepted_yet_stays_usable(
    cast: Cast, julie: User, who: str, proved: bool, error: type[Exception]
) -> None:
    token = invite(cast)
    user = cast.paul if who == "paul" else julie
    if who == "member":
        Membership.objects.create(user=julie, clinic=cast.laval, role="practitioner")
    with pytest.raises(error):
        accept(user, token, proved=proved)
    assert staff.invitation_for_token(token).accepted_at is None
    assert not Membership.objects.filter(user=cast.paul).exists()


def test_an_expired_link_opens_nothing_and_its_email_is_not_sent_late(
    cast: Cast, julie: User
) -> None:
    staff.invite(admin(cast), email="julie@example.test", role="receptionist")
    with clock.frozen_now(NOW + timedelta(days=7), all_threads=True):
        assert sent_mail() == []
        assert Message.objects.get().status == MessageStatus.CANCELLED
    mail.outbox.clear()
    token = invite(cast)  # a new one (replaces the unsent one)
    with clock.frozen_now(NOW + timedelta(days=7, seconds=1)), pytest.raises(NotFound) as refused:
        accept(julie, token)
    assert refused.value.code == "invitation_invalid"
    for bad in ("", "x", "a" * 43, "a" * 500):
        with pytest.raises(NotFound):
            staff.invitation_for_token(bad)


def test_a_practitioner_linked_elsewhere_meanwhile_joins_unlinked(cast: Cast, julie: User) -> None:
    token = invite(cast, role="practitioner", practitioner_id=cast.dr_roy.pk)
    Membership.objects.create(
        user=UserFactory.create(), clinic=cast.laval, role="practitioner", practitioner=cast.dr_roy
    )
    joined = accept(julie, token)
    assert (joined.role, joined.practitioner) == ("practitioner", None)


# --- Roles, links, removal ------------------------------------------------------------------


def test_the_last_administrator_can_be_neither_demoted_nor_removed(cast: Cast) -> None:
    own = membership(cast.marc, cast)
    changes: list[Callable[[], object]] = [
        lambda: staff.change_role(admin(cast), own.pk, role="receptionist"),
        lambda: staff.remove_member(admin(cast), own.pk),
    ]
    for change in changes:
        with pytest.raises(Conflict) as refused:
            change()
        assert refused.value.code == "last_admin"
    assert membership(cast.marc, cast).role == "clinic_admin"
    assert not AuditEntry.objects.filter(action__startswith="staff.").exists()


def test_a_role_change_applies_at_once_and_ends_the_members_api_tokens(cast: Cast) -> None:
    token = create_token(user=cast.sophie, scope=TokenScope.API, lifetime=timedelta(hours=8))
    sophie = membership(cast.sophie, cast)
    staff.change_role(admin(cast), sophie.pk, role="clinic_admin")
    assert staff_context(cast.sophie, cast.laval.pk).role == "clinic_admin"
    assert user_for_token(token) is None

    # Now two administrators: Marc may step down.
    staff.change_role(admin(cast), membership(cast.marc, cast).pk, role="receptionist")
    assert staff_context(cast.marc, cast.laval.pk).role == "receptionist"
    with pytest.raises(PermissionDenied):
        staff.members_of(staff_context(cast.marc, cast.laval.pk))
    entries = AuditEntry.objects.filter(action="staff.role").values_list(
        "actor_id", "clinic_id", "object_type", "object_id"
    )
    assert list(entries) == [
        (cast.marc.pk, cast.laval.pk, "staff_member", str(cast.sophie.pk)),
        (cast.marc.pk, cast.laval.pk, "staff_member", str(cast.marc.pk)),
    ]


def test_a_removed_member_loses_the_clinic_and_their_api_tokens_at_once(cast: Cast) -> None:
    token = create_token(user=cast.sophie, scope=TokenScope.API, lifetime=timedelta(hours=8))
    staff.remove_member(admin(cast), membership(cast.sophie, cast).pk)
    with pytest.raises(NotFound):
        staff_context(cast.sophie, cast.laval.pk)
    assert user_for_token(token) is None
    assert ApiToken.objects.get(user=cast.sophie).revoked_at == NOW
    entry = AuditEntry.objects.get(action="staff.remove")
    assert (entry.actor_id, entry.clinic_id, entry.object_id) == (
        cast.marc.pk,
        cast.laval.pk,
        str(cast.sophie.pk),
    )


def test_another_clinics_member_is_not_found_and_untouched(cast: Cast) -> None:
    karim = Membership.objects.get(user=cast.karim)
    changes: list[Callable[[], object]] = [
        lambda: staff.change_role(admin(cast), karim.pk, role="clinic_admin"),
        lambda: staff.link_practitioner(admin(cast), karim.pk, practitioner_id=None),
        lambda: staff.remove_member(admin(cast), karim.pk),
    ]
    for change in changes:
        with pytest.raises(NotFound):
            change()
    assert Membership.objects.get(user=cast.karim).role == "receptionist"


def test_receptionists_change_no_one(cast: Cast) -> None:
    sophie = staff_context(cast.sophie, cast.laval.pk)
    with pytest.raises(PermissionDenied):
        staff.change_role(sophie, membership(cast.sophie, cast).pk, role="clinic_admin")
    with pytest.raises(PermissionDenied):
        staff.remove_member(sophie, membership(cast.marc, cast).pk)
    assert Membership.objects.filter(clinic=cast.laval).count() == 2


def test_linking_a_practitioner_role_member_to_one_of_the_clinics_practitioners(
    cast: Cast,
) -> None:
    doctor = UserFactory.create()
    member = Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    linked = staff.link_practitioner(admin(cast), member.pk, practitioner_id=cast.dr_roy.pk)
    assert linked.practitioner == cast.dr_roy

    other = Membership.objects.create(
        user=UserFactory.create(), clinic=cast.laval, role="practitioner"
    )
    with pytest.raises(Conflict) as taken:
        staff.link_practitioner(admin(cast), other.pk, practitioner_id=cast.dr_roy.pk)
    assert taken.value.code == "practitioner_taken"
    with pytest.raises(ValidationError):
        staff.link_practitioner(admin(cast), other.pk, practitioner_id=cast.montreal_doctor.pk)
    inactive = PractitionerFactory.create(clinic=cast.laval, is_active=False)
    with pytest.raises(ValidationError):
        staff.link_practitioner(admin(cast), other.pk, practitioner_id=inactive.pk)
    with pytest.raises(Conflict) as not_role:
        staff.link_practitioner(
            admin(cast), membership(cast.sophie, cast).pk, practitioner_id=cast.nurse_diane.pk
        )
    assert not_role.value.code == "not_practitioner_role"

    # Leaving the practitioner role ends the link; unlinking is always possible.
    staff.change_role(admin(cast), member.pk, role="receptionist")
    assert Membership.objects.get(pk=member.pk).practitioner is None
    staff.link_practitioner(admin(cast), other.pk, practitioner_id=cast.dr_roy.pk)
    staff.link_practitioner(admin(cast), other.pk, practitioner_id=None)
    assert Membership.objects.get(pk=other.pk).practitioner is None
    assert AuditEntry.objects.filter(action="staff.practitioner").count() == 3


def test_the_members_list_puts_administrators_first(cast: Cast) -> None:
    members = staff.members_of(admin(cast))
    assert [m.user for m in members] == [cast.marc, cast.sophie]


# --- At the same instant (PostgreSQL) -------------------------------------------------------


def race(*actions: Callable[[], object]) -> list[object]:
    """Run each action in its own thread and connection, released together; what each
    returned or raised."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        try:
            barrier.wait()
            outcomes[index] = actions[index]()
        except BaseException as exc:  # the outcome under test
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return outcomes


def ending_each_other(cast: Cast, change: str) -> list[Callable[[], object]]:
    """Marc ends Sophie's administration and Sophie ends Marc's (demote or remove)."""
    marc_ctx, sophie_ctx = admin(cast), staff_context(cast.sophie, cast.laval.pk)
    marc_id, sophie_id = membership(cast.marc, cast).pk, membership(cast.sophie, cast).pk

    def end(ctx: StaffContext, target: int) -> object:
        if change == "demote":
            return staff.change_role(ctx, target, role="receptionist")
        return staff.remove_member(ctx, target)

    return [lambda: end(marc_ctx, sophie_id), lambda: end(sophie_ctx, marc_id)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["demote", "remove"])
def test_two_administrators_ending_each_other_at_once_leave_one(cast: Cast, change: str) -> None:
    if not on_postgres():
        pytest.skip("a real race needs PostgreSQL: SQLite runs one writer at a time")
    for _round in range(5):
        Membership.objects.filter(user=cast.sophie, clinic=cast.laval).update(role="clinic_admin")
        outcomes = race(*ending_each_other(cast, change))
        won = [o for o in outcomes if isinstance(o, Membership)]
        refused = [o for o in outcomes if isinstance(o, (PermissionDenied, Conflict))]
        assert (len(won), len(refused)) == (1, 1), outcomes
        admins = Membership.objects.filter(clinic=cast.laval, role="clinic_admin")
        assert admins.count() == 1
        if change == "remove":  # put the removed one back for the next round
            (survivor,) = admins
            lost = cast.sophie if survivor.user == cast.marc else cast.marc
            Membership.objects.create(user=lost, clinic=cast.laval, role="clinic_admin")
        else:
            Membership.objects.filter(clinic=cast.laval).update(role="clinic_admin")


@pytest.mark.django_db(transaction=True)
def test_two_accepts_of_one_link_at_once_make_one_membership(cast: Cast) -> None:
    if not on_postgres():
        pytest.skip("a real race needs PostgreSQL: SQLite runs one writer at a time")
    julie = UserFactory.create(email="julie@example.test")
    provision_confirmed_totp(julie)
    token = invite(cast)

    outcomes = race(lambda: accept(julie, token), lambda: accept(julie, token))

    assert len([o for o in outcomes if isinstance(o, Membership)]) == 1, outcomes
    assert len([o for o in outcomes if isinstance(o, NotFound)]) == 1, outcomes
    assert Membership.objects.filter(user=julie).count() == 1
    assert AuditEntry.objects.filter(action="staff.invitation.accept").count() == 1
