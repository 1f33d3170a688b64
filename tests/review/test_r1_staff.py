"""Review R1: an administrator who leaves (removed, or no longer an administrator) must not
keep a way back in through the invitations they sent before leaving.

The story: Anne, a second administrator of GMF Laval, invites "anne.autre@example.test"
(another address of hers) as administrator, and a receptionist for good measure. Marc
then removes Anne (or makes her a receptionist). Her open invitations die with her role:
their links open nothing, their emails are not sent, and each withdrawal is audited in
Marc's name. Invitations that Marc sent himself are untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.clinics import staff
from rdv.clinics.models import Membership, StaffInvitation, StaffRole
from rdv.clinics.queries import staff_context
from rdv.core.errors import NotFound
from rdv.notifications.models import Message, MessageStatus
from tests.conftest import Cast
from tests.factories import UserFactory

LINK = re.compile(r"/invitation-equipe/([\w-]+)/")


def _token(invitation: StaffInvitation) -> str:
    """The link's secret, read from the invitation email still waiting in the outbox."""
    message = Message.objects.get(key=f"staff_invite:{invitation.pk}")
    found = LINK.search(json.loads(message.payload)["text"])
    assert found is not None
    return found.group(1)


@pytest.fixture
def anne(cast: Cast) -> User:
    user: User = UserFactory.create(email="anne@example.test", first_name="Anne")
    Membership.objects.create(user=user, clinic=cast.laval, role=StaffRole.CLINIC_ADMIN)
    return user


def _remove(cast: Cast, anne: User) -> None:
    member = Membership.objects.get(user=anne, clinic=cast.laval)
    staff.remove_member(staff_context(cast.marc, cast.laval.pk), member.pk)


def _demote(cast: Cast, anne: User) -> None:
    member = Membership.objects.get(user=anne, clinic=cast.laval)
    staff.change_role(
        staff_context(cast.marc, cast.laval.pk), member.pk, role=StaffRole.RECEPTIONIST
    )


@pytest.mark.parametrize("leave", [_remove, _demote], ids=["removed", "demoted"])
def test_a_departed_administrators_open_invitations_die_with_her_role(
    cast: Cast, anne: User, leave: Callable[[Cast, User], None]
) -> None:
    as_anne = staff_context(anne, cast.laval.pk)
    back_door = staff.invite(
        as_anne, email="anne.autre@example.test", role=StaffRole.CLINIC_ADMIN
    ).invitation
    other = staff.invite(as_anne, email="luc@example.test", role=StaffRole.RECEPTIONIST).invitation
    marcs = staff.invite(
        staff_context(cast.marc, cast.laval.pk),
        email="julie@example.test",
        role=StaffRole.RECEPTIONIST,
    ).invitation
    token = _token(back_door)
    alt: User = UserFactory.create(email="anne.autre@example.test")
    provision_confirmed_totp(alt)
    before = AuditEntry.objects.count()

    leave(cast, anne)

    with pytest.raises(NotFound):
        staff.accept_invitation(user=alt, token=token, second_factor_proved=True)
    assert not Membership.objects.filter(user=alt).exists()
    for invitation in (back_door, other):
        invitation.refresh_from_db()
        assert invitation.revoked_at is not None
        message = Message.objects.get(key=f"staff_invite:{invitation.pk}")
        assert (message.status, message.payload) == (MessageStatus.CANCELLED, "")
    marcs.refresh_from_db()
    assert marcs.revoked_at is None
    withdrawn = AuditEntry.objects.filter(
        pk__gt=before, action="staff.invitation.revoke"
    ).values_list("object_id", "actor_id", "clinic_id")
    assert sorted(withdrawn) == sorted(
        [
            (str(back_door.pk), cast.marc.pk, cast.laval.pk),
            (str(other.pk), cast.marc.pk, cast.laval.pk),
        ]
    )


def test_a_role_change_that_keeps_her_administrator_keeps_her_invitations(
    cast: Cast, anne: User, db: Any
) -> None:
    """Only leaving the administrator role ends them: a no-op change does not."""
    invitation = staff.invite(
        staff_context(anne, cast.laval.pk), email="luc@example.test", role="receptionist"
    ).invitation
    member = Membership.objects.get(user=anne, clinic=cast.laval)
    staff.change_role(staff_context(cast.marc, cast.laval.pk), member.pk, role="clinic_admin")
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
