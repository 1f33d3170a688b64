"""The account holder's profile, and the family members they book for.

Views parse, call one service, and render; the rules live in rdv.patients.services and
rdv.accounts.services. Someone else's family member, or one removed, answers 404 on every
page, exactly like an id that does not exist.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from rdv.accounts import services as accounts
from rdv.accounts.models import User
from rdv.core.errors import DomainError, NotFound
from rdv.patients import services as patients
from rdv.patients.models import Patient
from rdv.patients.queries import eligible_family_doctors, own_patient, patient_for_user
from rdv.web.account_views import remember_language
from rdv.web.errors import handles_domain_errors, posted, signed_in
from rdv.web.profile_forms import (
    DependantForm,
    DoctorChoices,
    PersonForm,
    PreferencesForm,
    ProfileForm,
    family_doctor_choices,
)


def _doctors(patient: Patient | None = None) -> DoctorChoices:
    current = patient.family_doctor_id if patient is not None else None
    return family_doctor_choices(eligible_family_doctors(current_id=current))


def _fail(form: PersonForm | PreferencesForm, error: DomainError) -> None:
    """Put a service's refusal on the field it names (or on the whole form)."""
    form.add_error(error.field if error.field in form.fields else None, str(error.message))


def _update_person(request: HttpRequest, user: User, own: Patient, form: ProfileForm) -> bool:
    data = form.cleaned_data
    try:
        patients.update_patient(
            user=user,
            patient=own,
            first_name=data["first_name"],
            last_name=data["last_name"],
            last_name_at_birth=data["last_name_at_birth"],
            date_of_birth=data["date_of_birth"],
            phone=data["phone"],
            ramq_number=data["ramq_number"],
            card_sequence_number=data["card_sequence_number"],
            family_doctor_id=data["family_doctor"],
        )
    except DomainError as exc:
        _fail(form, exc)
        return False
    messages.success(request, _("Your information is saved."))
    return True


def _update_preferences(request: HttpRequest, user: User, form: PreferencesForm) -> str | None:
    """The language now in force, or None when the change was refused."""
    data = form.cleaned_data
    try:
        saved = accounts.update_preferences(
            user=user,
            language=data["preferred_language"],
            notify_by_email=data["notify_by_email"],
            notify_by_sms=data["notify_by_sms"],
            reminders=data["reminders"],
        )
    except DomainError as exc:
        _fail(form, exc)
        return None
    translation.activate(saved.preferred_language)
    messages.success(request, _("Your preferences are saved."))
    return saved.preferred_language


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def profile(request: HttpRequest) -> HttpResponse:
    """Names, date of birth, health card, phone and family doctor; language and how to be
    told about appointments. Two forms, each saved by its own service."""
    user = signed_in(request)
    own = own_patient(user)
    section = request.POST.get("section") if request.method == "POST" else None
    person = None
    if own is not None:
        person = ProfileForm(
            posted(request) if section == "person" else None,
            initial=ProfileForm.initial_for(own),
            doctors=_doctors(own),
        )
    preferences = PreferencesForm(
        posted(request) if section == "preferences" else None,
        initial=PreferencesForm.initial_for(user),
        has_phone=bool(own and own.phone),
    )
    if section == "person" and own is not None and person is not None and person.is_valid():
        if _update_person(request, user, own, person):
            return redirect("profile")
    elif section == "preferences" and preferences.is_valid():
        language = _update_preferences(request, user, preferences)
        if language is not None:
            return remember_language(redirect("profile"), language)
    failed = (person is not None and bool(person.errors)) or bool(preferences.errors)
    return render(
        request,
        "web/profile.html",
        {"person": person, "preferences": preferences, "email": user.email},
        status=422 if failed else 200,
    )


def _dependant(user: User, patient_id: int) -> Patient:
    """One of the account's family members (not the holder themself, not a removed one)."""
    patient = patient_for_user(user, patient_id)
    if patient.relationship == Patient.Relationship.SELF or patient.archived_at is not None:
        raise NotFound(_("Patient not found."), code="patient_not_found")
    return patient


@require_GET
@login_required
@handles_domain_errors
def dependants(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    family = list(patients.dependants_of(user))
    return render(
        request,
        "web/dependants.html",
        {
            "dependants": family,
            "can_add": len(family) < patients.MAX_DEPENDANTS,
            "max_dependants": patients.MAX_DEPENDANTS,
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def dependant_add(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    form = DependantForm(posted(request), doctors=_doctors())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            added = patients.add_dependant(
                user=user,
                relationship=data["relationship"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                last_name_at_birth=data["last_name_at_birth"],
                date_of_birth=data["date_of_birth"],
                ramq_number=data["ramq_number"],
                card_sequence_number=data["card_sequence_number"],
                family_doctor_id=data["family_doctor"],
            )
        except DomainError as exc:
            _fail(form, exc)
        else:
            messages.success(
                request,
                _("%(name)s is added: you can now book for them.") % {"name": added.first_name},
            )
            return redirect("dependants")
    return render(
        request,
        "web/dependant_form.html",
        {"form": form, "dependant": None},
        status=422 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def dependant_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    user = signed_in(request)
    dependant = _dependant(user, patient_id)
    form = DependantForm(
        posted(request), initial=DependantForm.initial_for(dependant), doctors=_doctors(dependant)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            patients.update_patient(
                user=user,
                patient=dependant,
                relationship=data["relationship"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                last_name_at_birth=data["last_name_at_birth"],
                date_of_birth=data["date_of_birth"],
                ramq_number=data["ramq_number"],
                card_sequence_number=data["card_sequence_number"],
                family_doctor_id=data["family_doctor"],
            )
        except DomainError as exc:
            _fail(form, exc)
        else:
            messages.success(request, _("The changes are saved."))
            return redirect("dependants")
    return render(
        request,
        "web/dependant_form.html",
        {"form": form, "dependant": dependant},
        status=422 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def dependant_remove(request: HttpRequest, patient_id: int) -> HttpResponse:
    user = signed_in(request)
    dependant = _dependant(user, patient_id)
    if request.method == "POST":
        try:
            patients.remove_dependant(user=user, patient=dependant)
        except DomainError as exc:
            return render(
                request,
                "web/dependant_remove.html",
                {"dependant": dependant, "error": exc.message},
                status=exc.status,
            )
        messages.success(
            request,
            _("%(name)s is removed from your account.") % {"name": dependant.first_name},
        )
        return redirect("dependants")
    return render(request, "web/dependant_remove.html", {"dependant": dependant})
