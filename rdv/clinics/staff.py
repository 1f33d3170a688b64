"""A clinic's staff: who works there, in which role, and how someone joins or leaves.

Clinic administrators invite by email (a one-time link, only its SHA-256 stored, valid
INVITATION_DAYS), change a member's role, link a practitioner-role member to the
practitioner they are, and remove members. The invitee accepts with an account whose
verified address is the invited one, in a session that proved a second factor.

Two rules hold whatever runs at the same time:
- a clinic always keeps an administrator: every change that could end one locks the
  clinic's administrator memberships (in primary-key order) and counts them under that
  lock, so two administrators demoting or removing each other at once cannot both pass;
- an invitation is used once: accepting locks its row, and `membership_unique` refuses a
  second membership anyway.

A removed or re-roled member's API tokens end in the same transaction (tokens belong to
the account, not to one clinic: the person signs in again, with both factors), and so do
the open invitations they sent once they are no longer an administrator; their
portal pages answer 404 or 403 from the next request, as membership and role are read
on every request (rdv.clinics.queries.staff_context). Every change is one audit entry
naming the actor, the clinic and the target.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rdv.accounts import tokens
from rdv.accounts.models import User, normalise_email
from rdv.accounts.queries import has_second_factor
from rdv.audit import services as audit
from rdv.clinics.models import Membership, Practitioner, StaffInvitation, StaffRole
from rdv.clinics.queries import StaffContext
from rdv.clinics.services import audit_staff_action
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.notifications import staff_mail

INVITATION_DAYS = 7
EMAIL_MAX_LENGTH = 254
ADMIN = StaffRole.CLINIC_ADMIN


# --- Reads ----------------------------------------------------------------------------------


def require_admin(ctx: StaffContext) -> None:
    if ctx.role != ADMIN:
        raise PermissionDenied(
            _("Only the clinic's administrators can manage its staff."), code="role"
        )


def members_of(ctx: StaffContext) -> list[Membership]:
    """The clinic's members with their accounts and practitioners, administrators first."""
    require_admin(ctx)
    order: dict[str, int] = {ADMIN: 0, StaffRole.RECEPTIONIST: 1, StaffRole.PRACTITIONER: 2}
    members = list(
        Membership.objects.filter(clinic=ctx.clinic).select_related("user", "practitioner")
    )
    return sorted(
        members,
        key=lambda m: (order.get(m.role, 3), m.user.last_name, m.user.first_name, m.user.email),
    )


def open_invitations(ctx: StaffContext) -> list[StaffInvitation]:
    """Invitations neither accepted nor revoked, newest first (expired ones included: the
    page says so, and inviting the address again replaces them)."""
    require_admin(ctx)
    return list(
        StaffInvitation.objects.filter(
            clinic=ctx.clinic, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("practitioner")
        .order_by("-created_at", "-pk")
    )


def linkable_practitioners(ctx: StaffContext) -> list[Practitioner]:
    """The clinic's active practitioners, by name (those a member may be linked to)."""
    return list(
        Practitioner.objects.filter(clinic=ctx.clinic, is_active=True).order_by(
            "last_name", "first_name", "pk"
        )
    )


def _member(ctx: StaffContext, membership_id: int) -> Membership:
    """One of this clinic's memberships, for its administrator: another clinic's is "not
    found" before the role is checked, so no member of this clinic learns of it."""
    member = (
        Membership.objects.select_related("user")
        .filter(pk=membership_id, clinic=ctx.clinic)
        .first()
    )
    if member is None:
        raise NotFound(_("Staff member not found."), code="member_not_found")
    require_admin(ctx)
    return member


# --- Changing members -----------------------------------------------------------------------


def _lock_admins(ctx: StaffContext, *also: int) -> list[Membership]:
    """Lock the clinic's administrator memberships (and the memberships `also`), in
    primary-key order, so concurrent staff changes queue here and never deadlock; then
    check the actor is still one of them (demoted or removed a moment ago: refused).

    Returns the locked administrator memberships. On PostgreSQL a row changed by the
    transaction we waited for is read again: an administrator demoted meanwhile is not
    counted. SQLite runs one writer at a time (BEGIN IMMEDIATE).
    """
    locked = list(
        Membership.objects.select_for_update()
        .filter(Q(role=ADMIN) | Q(pk__in=also), clinic=ctx.clinic)
        .order_by("pk")
    )
    admins = [m for m in locked if m.role == ADMIN]
    if not any(m.user_id == ctx.user.pk for m in admins):
        raise PermissionDenied(
            _("Only the clinic's administrators can manage its staff."), code="role"
        )
    return admins


def _keep_an_admin(admins: list[Membership], member: Membership) -> None:
    if member.role == ADMIN and [m.pk for m in admins] == [member.pk]:
        raise Conflict(
            _(
                "The clinic must keep at least one administrator: make another member "
                "administrator first."
            ),
            code="last_admin",
        )


def _locked_member(ctx: StaffContext, membership_id: int) -> tuple[Membership, list[Membership]]:
    _member(ctx, membership_id)
    admins = _lock_admins(ctx, membership_id)
    member = (
        Membership.objects.select_related("user")
        .filter(pk=membership_id, clinic=ctx.clinic)
        .first()
    )
    if member is None:  # removed while we waited
        raise NotFound(_("Staff member not found."), code="member_not_found")
    return member, admins


def change_role(ctx: StaffContext, membership_id: int, *, role: str) -> Membership:
    """Give a member another role. The last administrator keeps theirs (409). Leaving the
    practitioner role ends the member's practitioner link. The member's API tokens end, and
    leaving the administrator role withdraws the open invitations they sent."""
    if role not in StaffRole.values:
        raise ValidationError(_("Choose a role from the list."), field="role", code="role")
    with transaction.atomic():
        member, admins = _locked_member(ctx, membership_id)
        if member.role == role:
            return member
        if role != ADMIN:
            _keep_an_admin(admins, member)
        member.role = role
        if role != StaffRole.PRACTITIONER:
            member.practitioner = None
        member.save(update_fields=["role", "practitioner"])
        tokens.revoke_all(member.user)
        audit_staff_action(ctx, "staff.role", "staff_member", member.user_id)
        if role != ADMIN:
            _withdraw_invitations_of(ctx, member.user)
    return member


def remove_member(ctx: StaffContext, membership_id: int) -> Membership:
    """Remove a member from the clinic: from their next request its pages are 404 to
    them, their API tokens end now and their open invitations are withdrawn. The last
    administrator cannot be removed (409)."""
    with transaction.atomic():
        member, admins = _locked_member(ctx, membership_id)
        _keep_an_admin(admins, member)
        member.delete()
        tokens.revoke_all(member.user)
        audit_staff_action(ctx, "staff.remove", "staff_member", member.user_id)
        _withdraw_invitations_of(ctx, member.user)
    return member


def _practitioner_of_clinic(ctx: StaffContext, practitioner_id: int) -> Practitioner:
    practitioner = Practitioner.objects.filter(
        pk=practitioner_id, clinic=ctx.clinic, is_active=True
    ).first()
    if practitioner is None:
        raise ValidationError(
            _("Choose one of the clinic's practitioners."),
            field="practitioner",
            code="practitioner",
        )
    return practitioner


def _already_linked() -> Conflict:
    return Conflict(
        _("This practitioner is already linked to another staff member's account."),
        code="practitioner_taken",
    )


def link_practitioner(
    ctx: StaffContext, membership_id: int, *, practitioner_id: int | None
) -> Membership:
    """Say which of the clinic's practitioners a practitioner-role member is (None: no
    one). One account per practitioner (`membership_one_account_per_practitioner`)."""
    with transaction.atomic():
        member, _admins = _locked_member(ctx, membership_id)
        practitioner = None
        if practitioner_id is not None:
            if member.role != StaffRole.PRACTITIONER:
                raise Conflict(
                    _("Only a member with the practitioner role can be linked to a practitioner."),
                    code="not_practitioner_role",
                )
            practitioner = _practitioner_of_clinic(ctx, practitioner_id)
            taken = Membership.objects.filter(practitioner=practitioner).exclude(pk=member.pk)
            if taken.exists():
                raise _already_linked()
        if member.practitioner_id == (practitioner.pk if practitioner else None):
            return member
        member.practitioner = practitioner
        try:
            with transaction.atomic():
                member.save(update_fields=["practitioner"])
        except IntegrityError as exc:  # linked by someone else since the check
            raise _already_linked() from exc
        audit_staff_action(ctx, "staff.practitioner", "staff_member", member.user_id)
    return member


# --- Invitations ----------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_email(email: str) -> str:
    cleaned = normalise_email(email)
    try:
        if len(cleaned) > EMAIL_MAX_LENGTH:
            raise DjangoValidationError("too long")
        validate_email(cleaned)
    except DjangoValidationError as exc:
        raise ValidationError(
            _("Enter a valid email address."), field="email", code="email"
        ) from exc
    return cleaned


def _invited_practitioner(
    ctx: StaffContext, role: str, practitioner_id: int | None
) -> Practitioner | None:
    if role not in StaffRole.values:
        raise ValidationError(_("Choose a role from the list."), field="role", code="role")
    if practitioner_id is None:
        return None
    if role != StaffRole.PRACTITIONER:
        raise ValidationError(
            _("Only a person invited as a practitioner can be linked to a practitioner."),
            field="practitioner",
            code="not_practitioner_role",
        )
    practitioner = _practitioner_of_clinic(ctx, practitioner_id)
    if Membership.objects.filter(practitioner=practitioner).exists():
        raise ValidationError(
            _("This practitioner is already linked to another staff member's account."),
            field="practitioner",
            code="practitioner_taken",
        )
    return practitioner


@dataclass(frozen=True)
class Invitation:
    invitation: StaffInvitation
    # Replaced an open invitation to the same address (revoked in the same transaction).
    replaced: bool


def invite(
    ctx: StaffContext,
    *,
    email: str,
    role: str,
    practitioner_id: int | None = None,
    language: str = "fr",
) -> Invitation:
    """Invite someone to the clinic's staff by email, in `language` (the page's).

    A random link secret is mailed (through the outbox, in this transaction); only its
    SHA-256 is stored; it works for INVITATION_DAYS. A new invitation to an address
    revokes the open one (one open invitation per clinic and address, a constraint). An
    address that already belongs to a member is refused.
    """
    require_admin(ctx)
    address = _clean_email(email)
    practitioner = _invited_practitioner(ctx, role, practitioner_id)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    with transaction.atomic():
        _lock_admins(ctx)  # staff changes of one clinic queue one behind the other
        if Membership.objects.filter(clinic=ctx.clinic, user__email__iexact=address).exists():
            raise ValidationError(
                _("This person is already a member of the clinic's staff."),
                field="email",
                code="already_member",
            )
        replaced = list(
            StaffInvitation.objects.filter(
                clinic=ctx.clinic,
                email=address,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
            )
        )
        for old in replaced:
            _revoke(ctx, old, now)
        invitation = StaffInvitation.objects.create(
            clinic=ctx.clinic,
            email=address,
            role=role,
            practitioner=practitioner,
            invited_by=ctx.user,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=INVITATION_DAYS),
        )
        staff_mail.queue_invitation(invitation, token=token, language=language)
        audit_staff_action(ctx, "staff.invite", "staff_invitation", invitation.pk)
    return Invitation(invitation=invitation, replaced=bool(replaced))


def _revoke(ctx: StaffContext, invitation: StaffInvitation, now: datetime) -> bool:
    revoked = StaffInvitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    if revoked:
        staff_mail.withdraw_invitation(invitation)
        audit_staff_action(ctx, "staff.invitation.revoke", "staff_invitation", invitation.pk)
    return bool(revoked)


def _withdraw_invitations_of(ctx: StaffContext, inviter: User) -> None:
    """Someone who is no longer an administrator here keeps no way back in: the open
    invitations they sent (perhaps to another address of their own) are withdrawn."""
    now = clock.now()
    sent = StaffInvitation.objects.filter(
        clinic=ctx.clinic, invited_by=inviter, accepted_at__isnull=True, revoked_at__isnull=True
    ).order_by("pk")
    for invitation in sent:
        _revoke(ctx, invitation, now)


def revoke_invitation(ctx: StaffContext, invitation_id: int) -> StaffInvitation:
    """Withdraw an invitation: its link stops working, and its email, if still waiting,
    is not sent. One already accepted or revoked: 409."""
    invitation = StaffInvitation.objects.filter(pk=invitation_id, clinic=ctx.clinic).first()
    if invitation is None:
        raise NotFound(_("Invitation not found."), code="invitation_not_found")
    require_admin(ctx)
    with transaction.atomic():
        if not _revoke(ctx, invitation, clock.now()):
            raise Conflict(
                _("This invitation was already accepted or withdrawn."), code="invitation_closed"
            )
    return invitation


# --- Accepting ------------------------------------------------------------------------------


def _invalid_link() -> NotFound:
    return NotFound(
        _(
            "This invitation link does not work: it may have expired, been withdrawn or "
            "already been used. Ask the clinic's administrator for a new invitation."
        ),
        code="invitation_invalid",
    )


def invitation_for_token(token: str) -> StaffInvitation:
    """The open, unexpired invitation this link's secret opens; one same NotFound for an
    unknown, expired, withdrawn or used link (the answer says nothing about which)."""
    if not 20 <= len(token) <= 100:
        raise _invalid_link()
    invitation = (
        StaffInvitation.objects.select_related("clinic", "practitioner")
        .filter(
            token_hash=token_hash(token),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=clock.now(),
            clinic__is_active=True,
        )
        .first()
    )
    if invitation is None:
        raise _invalid_link()
    return invitation


class Readiness(StrEnum):
    """What stands between this visitor and accepting, in the order they must do it."""

    SIGN_IN = "sign_in"
    WRONG_ACCOUNT = "wrong_account"
    VERIFY_EMAIL = "verify_email"
    ENROL_SECOND_FACTOR = "enrol_second_factor"
    PROVE_SECOND_FACTOR = "prove_second_factor"
    ALREADY_MEMBER = "already_member"
    READY = "ready"


def _account_blocker(user: User, invitation: StaffInvitation) -> Readiness | None:
    """What the account itself lacks: the invited address, confirmed, and a second factor."""
    if normalise_email(user.email) != normalise_email(invitation.email):
        return Readiness.WRONG_ACCOUNT
    if user.email_verified_at is None:
        return Readiness.VERIFY_EMAIL
    if not has_second_factor(user):
        return Readiness.ENROL_SECOND_FACTOR
    return None


def readiness(
    user: User | None, invitation: StaffInvitation, *, second_factor_proved: bool
) -> Readiness:
    """The first thing this visitor must do before they can accept (READY: nothing)."""
    if user is None:
        return Readiness.SIGN_IN
    blocker = _account_blocker(user, invitation)
    if blocker is not None:
        return blocker
    if not second_factor_proved:
        return Readiness.PROVE_SECOND_FACTOR
    if Membership.objects.filter(user=user, clinic_id=invitation.clinic_id).exists():
        return Readiness.ALREADY_MEMBER
    return Readiness.READY


def _not_ready(state: Readiness) -> PermissionDenied | Conflict:
    if state == Readiness.ALREADY_MEMBER:
        return Conflict(
            _("You are already a member of this clinic's staff."), code="already_member"
        )
    return PermissionDenied(
        _("This invitation cannot be accepted from this session yet: see what to do below."),
        code=str(state),
    )


def accept_invitation(*, user: User, token: str, second_factor_proved: bool) -> Membership:
    """Join the clinic with the invitation's role (and practitioner, if still free).

    One transaction: the invitation row is locked and must still be open, the membership
    is created, the invitation marked accepted by `user`, the account's earlier API tokens
    end (they may have been obtained with a password alone, before the person had a second
    factor), and the audit entry is written. Of two accepts of one link racing, one wins;
    the other finds the link used (NotFound).
    """
    with transaction.atomic():
        found = invitation_for_token(token)
        invitation = (
            StaffInvitation.objects.select_for_update()
            .select_related("clinic")
            .filter(pk=found.pk, accepted_at__isnull=True, revoked_at__isnull=True)
            .first()
        )
        if invitation is None:
            raise _invalid_link()
        # The account's row, as deleting an account locks it (rdv.accounts.privacy): an
        # account deleted meanwhile never joins, and one joining is never deleted.
        if not User.objects.select_for_update().filter(pk=user.pk, is_active=True).exists():
            raise _invalid_link()
        state = readiness(user, invitation, second_factor_proved=second_factor_proved)
        if state != Readiness.READY:
            raise _not_ready(state)
        practitioner = invitation.practitioner
        if practitioner is not None and (
            not practitioner.is_active
            or Membership.objects.filter(practitioner=practitioner).exists()
        ):
            practitioner = None  # linked to someone else since: the administrator relinks
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    user=user,
                    clinic=invitation.clinic,
                    role=invitation.role,
                    practitioner=practitioner,
                )
        except IntegrityError as exc:  # joined by another path since the check
            raise _not_ready(Readiness.ALREADY_MEMBER) from exc
        invitation.accepted_at = clock.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        tokens.revoke_all(user)
        audit.record(
            "staff.invitation.accept",
            actor=user,
            role=invitation.role,
            subject=audit.Subject(
                object_type="staff_invitation",
                object_id=str(invitation.pk),
                clinic_id=invitation.clinic_id,
            ),
        )
    return membership
