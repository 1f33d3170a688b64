"""A clinic's staff account, its last administrator's above all, is never deleted from
the patient pages, and an invitation accepted at the same moment cannot slip through:
deleting an account and accepting an invitation lock the same account row."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import User
from rdv.accounts.privacy import delete_account
from rdv.audit.models import AuditEntry
from rdv.clinics import staff
from rdv.clinics.models import Membership, StaffInvitation
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied
from tests.conftest import PASSWORD, Cast, on_postgres, portal_client
from tests.factories import UserFactory

MESSAGES = {
    "en": "A clinic staff account cannot be deleted here.",
    "fr": "Un compte du personnel d’une clinique ne peut pas être supprimé ici.",
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_last_administrator_is_refused_on_the_page_and_nothing_changes(
    cast: Cast, language: str
) -> None:
    admins = Membership.objects.filter(clinic=cast.laval, role="clinic_admin")
    assert [m.user for m in admins] == [cast.marc]  # the clinic's only administrator
    entries = AuditEntry.objects.count()

    answer = portal_client(cast.marc, language).post(
        reverse("delete_account"), {"password": PASSWORD, "confirm": "on"}
    )

    assert answer.status_code == 403
    assert MESSAGES[language] in answer.content.decode()
    marc = User.objects.get(pk=cast.marc.pk)
    assert (marc.is_active, marc.email, marc.check_password(PASSWORD)) == (
        True,
        cast.marc.email,
        True,
    )
    assert list(admins) == [Membership.objects.get(user=cast.marc, clinic=cast.laval)]
    assert AuditEntry.objects.count() == entries


def test_an_administrator_is_refused_even_when_another_one_exists(cast: Cast) -> None:
    Membership.objects.filter(user=cast.sophie, clinic=cast.laval).update(role="clinic_admin")
    with pytest.raises(PermissionDenied):
        delete_account(cast.marc, PASSWORD)
    assert User.objects.get(pk=cast.marc.pk).is_active
    assert Membership.objects.filter(clinic=cast.laval, role="clinic_admin").count() == 2


def test_once_removed_by_the_other_administrator_the_account_may_be_deleted(cast: Cast) -> None:
    Membership.objects.filter(user=cast.sophie, clinic=cast.laval).update(role="clinic_admin")
    sophie = Membership.objects.get(user=cast.sophie, clinic=cast.laval)
    staff.remove_member(staff_context(cast.marc, cast.laval.pk), sophie.pk)
    delete_account(cast.sophie, PASSWORD)
    assert not User.objects.get(pk=cast.sophie.pk).is_active
    assert [m.user for m in Membership.objects.filter(clinic=cast.laval, role="clinic_admin")] == [
        cast.marc
    ]


# --- At the same instant (PostgreSQL) -------------------------------------------------------


def race(*actions: Callable[[], object]) -> list[object]:
    """Each action in its own thread and connection, released together (as in
    tests/clinics/test_staff.py); what each returned or raised."""
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


def invited_admin(cast: Cast, email: str) -> tuple[User, str]:
    """A patient account, ready to join Laval as an administrator with the link returned."""
    user: User = UserFactory.create(email=email)
    provision_confirmed_totp(user)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    StaffInvitation.objects.create(
        clinic=cast.laval,
        email=email,
        role="clinic_admin",
        invited_by=cast.marc,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        created_at=now,
        expires_at=now + timedelta(days=7),
    )
    return user, token


@pytest.mark.django_db(transaction=True)
def test_joining_as_administrator_while_deleting_the_account_never_leaves_both(
    cast: Cast,
) -> None:
    if not on_postgres():
        pytest.skip("a real race needs PostgreSQL: SQLite runs one writer at a time")
    for round_ in range(6):
        user, token = invited_admin(cast, f"julie{round_}@example.test")

        def join(user: User = user, token: str = token) -> object:
            return staff.accept_invitation(user=user, token=token, second_factor_proved=True)

        def leave(user: User = user) -> object:
            delete_account(User.objects.get(pk=user.pk), PASSWORD)
            return "deleted"

        outcomes = race(join, leave)

        joined = [o for o in outcomes if isinstance(o, Membership)]
        deleted = [o for o in outcomes if o == "deleted"]
        refused = [o for o in outcomes if isinstance(o, (PermissionDenied, NotFound))]
        assert (len(joined) + len(deleted), len(refused)) == (1, 1), outcomes
        account = User.objects.get(pk=user.pk)
        membership = Membership.objects.filter(user=user).exists()
        # Never an administrator whose account is gone.
        assert (account.is_active, membership) in {(True, True), (False, False)}, outcomes
        assert bool(joined) == membership
