"""The clinic administrator's staff page, and the page an invitation's link opens.

The staff page is like every portal page: its clinic comes through
rdv.web.portal.clinic_for (another clinic: 404), each view parses, calls one service of
rdv.clinics.staff and renders; a member or invitation of another clinic is "not found"
before the role is checked. The invitation page is outside the portal (the invitee is not
a member yet): it says what the visitor still has to do, and accepts once nothing is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.accounts.models import User
from rdv.clinics import staff
from rdv.clinics.models import Membership, StaffRole
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import Conflict, DomainError, PermissionDenied
from rdv.web.errors import handles_domain_errors
from rdv.web.portal import ADMIN, SECOND_FACTOR_KEY, clinic_for, require_role
from rdv.web.portal_admin_forms import put_error
from rdv.web.portal_staff_forms import InviteForm, LinkForm, RoleForm

PAGE = "staff"  # the portal's navigation item


def person_name(user: User) -> str:
    return " ".join(part for part in (user.first_name, user.last_name) if part) or user.email


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    name: str
    is_me: bool


def _problem(message: str) -> forms.Form:
    """A refusal of one of the page's small forms, shown in the page's error summary."""
    form = forms.Form({})
    form.add_error(None, message)
    return form


def _form_problem(form: forms.Form) -> forms.Form:
    return _problem(" ".join(str(e) for errors in form.errors.values() for e in errors))


def _staff_page(
    request: HttpRequest,
    ctx: StaffContext,
    *,
    invite_form: InviteForm | None = None,
    problem: forms.Form | None = None,
    status: int = 200,
) -> HttpResponse:
    require_role(ctx, ADMIN)
    practitioners = staff.linkable_practitioners(ctx)
    rows = [
        MemberRow(membership=m, name=person_name(m.user), is_me=m.user_id == ctx.user.pk)
        for m in staff.members_of(ctx)
    ]
    return render(
        request,
        "web/portal/staff.html",
        {
            "ctx": ctx,
            "portal_page": PAGE,
            "members": rows,
            "invitations": staff.open_invitations(ctx),
            "practitioners": practitioners,
            "roles": StaffRole.choices,
            "invite_form": invite_form or InviteForm(practitioners=practitioners),
            "problem": problem,
            "invitation_days": staff.INVITATION_DAYS,
            "now": clock.now(),
        },
        status=status,
    )


def _refused(request: HttpRequest, ctx: StaffContext, exc: DomainError) -> HttpResponse:
    """A change refused for a reason the administrator can act on (409, 422): the page
    again, saying why. Anything else goes on to the error page."""
    if exc.status not in (409, 422):
        raise exc
    return _staff_page(request, ctx, problem=_problem(str(exc.message)), status=exc.status)


@require_GET
@login_required
@handles_domain_errors
def staff_page(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The clinic's members and open invitations, and the form to invite someone."""
    return _staff_page(request, clinic_for(request, clinic_id))


@require_POST
@login_required
@handles_domain_errors
def invite(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, ADMIN)
    form = InviteForm(request.POST, practitioners=staff.linkable_practitioners(ctx))
    status = 422
    if form.is_valid():
        data = form.cleaned_data
        try:
            sent = staff.invite(
                ctx,
                email=data["email"],
                role=data["role"],
                practitioner_id=data["practitioner"],
                language=translation.get_language() or "fr",
            )
        except DomainError as exc:
            if exc.status not in (409, 422):
                raise
            put_error(form, exc)
            status = exc.status
        else:
            message = _(
                "The invitation is on its way to %(email)s. Its link works for %(days)d days."
            ) % {"email": sent.invitation.email, "days": staff.INVITATION_DAYS}
            if sent.replaced:
                message += " " + _("It replaces the earlier invitation to this address.")
            messages.success(request, message)
            return redirect("portal_staff", clinic_id=clinic_id)
    return _staff_page(request, ctx, invite_form=form, status=status)


@require_POST
@login_required
@handles_domain_errors
def invitation_revoke(request: HttpRequest, clinic_id: int, invitation_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    try:
        revoked = staff.revoke_invitation(ctx, invitation_id)
    except Conflict as exc:
        return _refused(request, ctx, exc)
    messages.success(
        request,
        _("The invitation to %(email)s is withdrawn: its link no longer works.")
        % {"email": revoked.email},
    )
    return redirect("portal_staff", clinic_id=clinic_id)


@require_POST
@login_required
@handles_domain_errors
def member_role(request: HttpRequest, clinic_id: int, membership_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _staff_page(request, ctx, problem=_form_problem(form), status=422)
    try:
        member = staff.change_role(ctx, membership_id, role=form.cleaned_data["role"])
    except DomainError as exc:
        return _refused(request, ctx, exc)
    role = StaffRole(member.role).label
    if member.user_id == ctx.user.pk and member.role != StaffRole.CLINIC_ADMIN:
        messages.success(request, _("You are now %(role)s at this clinic.") % {"role": role})
        return redirect("portal_agenda", clinic_id=clinic_id)
    messages.success(
        request, _("%(name)s is now: %(role)s.") % {"name": person_name(member.user), "role": role}
    )
    return redirect("portal_staff", clinic_id=clinic_id)


@require_POST
@login_required
@handles_domain_errors
def member_practitioner(request: HttpRequest, clinic_id: int, membership_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    form = LinkForm(request.POST, practitioners=staff.linkable_practitioners(ctx))
    if not form.is_valid():
        return _staff_page(request, ctx, problem=_form_problem(form), status=422)
    try:
        member = staff.link_practitioner(
            ctx, membership_id, practitioner_id=form.cleaned_data["practitioner"]
        )
    except DomainError as exc:
        return _refused(request, ctx, exc)
    name = person_name(member.user)
    if member.practitioner is None:
        message = _("%(name)s is not linked to a practitioner.") % {"name": name}
    else:
        message = _("%(name)s is linked to %(practitioner)s.") % {
            "name": name,
            "practitioner": member.practitioner.display_name,
        }
    messages.success(request, message)
    return redirect("portal_staff", clinic_id=clinic_id)


@require_POST
@login_required
@handles_domain_errors
def member_remove(request: HttpRequest, clinic_id: int, membership_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    try:
        member = staff.remove_member(ctx, membership_id)
    except DomainError as exc:
        return _refused(request, ctx, exc)
    if member.user_id == ctx.user.pk:
        messages.success(
            request,
            _("You are no longer a member of %(clinic)s's staff.") % {"clinic": ctx.clinic.name},
        )
        return redirect("search")
    messages.success(
        request,
        _("%(name)s is removed from the clinic's staff: their access ends now.")
        % {"name": person_name(member.user)},
    )
    return redirect("portal_staff", clinic_id=clinic_id)


# --- The invitation's link ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@handles_domain_errors
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """What the invitation is, what the visitor still has to do; POST accepts it."""
    found = staff.invitation_for_token(token)
    user = request.user if isinstance(request.user, User) else None
    proved = bool(request.session.get(SECOND_FACTOR_KEY))
    status = 200
    if request.method == "POST":
        status = 403
        if user is not None:
            try:
                membership = staff.accept_invitation(
                    user=user, token=token, second_factor_proved=proved
                )
            except (PermissionDenied, Conflict) as exc:
                status = exc.status
            else:
                messages.success(
                    request,
                    _("Welcome to the staff of %(clinic)s.") % {"clinic": found.clinic.name},
                )
                return redirect("portal_agenda", clinic_id=membership.clinic_id)
    response = render(
        request,
        "web/invitation.html",
        {
            "invitation": found,
            "role": StaffRole(found.role).label,
            "state": staff.readiness(user, found, second_factor_proved=proved),
            "attempted": request.method == "POST",
        },
        status=status,
    )
    # The address holds the link's secret: never kept by a cache.
    patch_cache_control(response, no_store=True, private=True)
    return response
