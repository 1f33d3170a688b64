"""Family visits: find back-to-back times at one clinic for several people, book them all.

There is no hold here: an account holds one slot at a time (the database says so), and a
family visit is booked all at once or not at all, so a lost race writes nothing and the
page offers the next groups.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from rdv.api.limits import enforce
from rdv.core.errors import DomainError, SlotUnavailable
from rdv.core.geo import municipalities
from rdv.patients.queries import bookable_patients, patient_for_user
from rdv.scheduling import services
from rdv.scheduling.family import FamilyGroup, family_groups
from rdv.scheduling.models import Slot
from rdv.scheduling.queries import visible_slot
from rdv.scheduling.search import SearchRequest, availability_query
from rdv.web.errors import handles_domain_errors, posted, signed_in
from rdv.web.forms import FamilyBookForm, FamilySearchForm


@require_GET
@login_required
@handles_domain_errors
def family_search(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    everyone = list(bookable_patients(user))
    choices = [(p.pk, f"{p.first_name} {p.last_name}") for p in everyone]
    form = FamilySearchForm(request.GET or None, patients=choices)
    groups: list[FamilyGroup] | None = None
    if form.is_bound and form.is_valid():
        enforce(request, "search", account=f"user:{user.pk}")
        data = form.cleaned_data
        try:
            query = availability_query(
                SearchRequest(
                    near=data["near"],
                    radius_km=data.get("radius_km") or 25,
                    date_from=data.get("date_from"),
                    date_to=data.get("date_to"),
                    appointment_type=data.get("appointment_type") or None,
                    language=data.get("language") or None,
                ),
                user,
            )
        except DomainError as exc:
            form.add_service_error(exc.field, str(exc.message))
        else:
            coming = [p for p in everyone if p.pk in set(data["patients"])]
            groups = family_groups(query, coming)
    return render(
        request,
        "web/family.html",
        {
            "form": form,
            "groups": groups,
            "search": request.GET.urlencode(),
            "municipalities": municipalities(),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def family_book(request: HttpRequest) -> HttpResponse:
    """GET: the chosen group to confirm, with a reason for each person. POST: book them all."""
    user = signed_in(request)
    form = FamilyBookForm(posted(request) or request.GET)
    if not form.is_valid():
        messages.error(request, _("Choose the times again."))
        return redirect("family_search")
    pairs: list[tuple[int, int]] = form.cleaned_data["pairs"]
    times = [
        (patient_for_user(user, patient_id), visible_slot(user, slot_id), form[f"reason_{i}"])
        for i, (patient_id, slot_id) in enumerate(pairs)
    ]
    status = 200
    if request.method == "POST":
        enforce(request, "book", account=f"user:{user.pk}")
        try:
            services.book_family_visit(
                user=user,
                choices=[
                    services.FamilyChoice(
                        patient_id=patient_id,
                        slot_id=slot_id,
                        reason=form.cleaned_data[f"reason_{i}"],
                    )
                    for i, (patient_id, slot_id) in enumerate(pairs)
                ],
            )
        except SlotUnavailable as exc:
            form.add_error(None, str(exc.message))
            status = 409
        except DomainError as exc:
            form.add_error(None, str(exc.message))
            status = exc.status
        else:
            messages.success(request, _("Your appointments are booked."))
            return redirect("appointments")
    return render(
        request,
        "web/family_confirm.html",
        {
            "form": form,
            "times": times,
            "lost": status == 409,
            "search": request.POST.get("search") or request.GET.get("search", ""),
            "clinic": _clinic_of([slot for _p, slot, _r in times]),
        },
        status=status,
    )


def _clinic_of(slots: list[Slot]) -> str:
    return slots[0].clinic.name if slots else ""
