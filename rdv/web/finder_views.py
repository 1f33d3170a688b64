"""The appointment finder's pages: what it is and costs, a new request, the built-in test
payment page, a request's detail (offers, refund, cancel), its receipt, and free alerts.

Views parse, call one service of rdv.finder.services or rdv.billing.services, and render.
Every request, offer and alert is reached through rdv.finder.queries / the services,
which answer "not found" for someone else's exactly as for a missing one.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.accounts.models import User
from rdv.api.limits import enforce
from rdv.billing import receipts
from rdv.billing import services as billing
from rdv.billing.models import Payment, PaymentStatus, Provider, Refund
from rdv.clinics.models import Clinic, Practitioner
from rdv.core import clock, money
from rdv.core.errors import DomainError, NotFound
from rdv.core.geo import municipalities
from rdv.finder import queries, services
from rdv.finder.models import FinderRequest, RequestStatus
from rdv.patients.queries import bookable_patients
from rdv.web.downloads import download
from rdv.web.errors import handles_domain_errors, posted, signed_in
from rdv.web.finder_forms import AlertForm, RequestForm, window_label
from rdv.web.forms import LANGUAGE_CHOICES

DEFAULT_DAYS = 14
CANCELLABLE = (RequestStatus.AWAITING_PAYMENT, RequestStatus.OPEN)


def _language() -> str:
    return translation.get_language() or settings.LANGUAGE_CODE


def amounts(price: money.Price | Payment) -> dict[str, str]:
    """The price, each tax and the total as the reader's language writes them."""
    language = _language()
    return {
        name: money.format_cad(getattr(price, f"{name}_cents"), language)
        for name in ("price", "gst", "qst", "total")
    }


def _patients(user: User) -> list[tuple[int, str]]:
    return [(p.pk, f"{p.first_name} {p.last_name}") for p in bookable_patients(user)]


def last_day(found: FinderRequest) -> date:
    """The deadline as the patient chose it: the local day the search runs until (it is
    stored as the instant that day ends, i.e. the next day's midnight)."""
    return clock.local_date(found.deadline - timedelta(microseconds=1))


def _refund(payment: Payment | None) -> Refund | None:
    if payment is None:
        return None
    try:
        return payment.refund
    except Refund.DoesNotExist:
        return None


@require_GET
@login_required
@handles_domain_errors
def requests(request: HttpRequest) -> HttpResponse:
    """What the finder is, its price, the fairness promise, my requests and my alerts."""
    user = signed_in(request)
    return render(
        request,
        "web/finder/requests.html",
        {
            "requests": [(r, last_day(r)) for r in queries.requests_for_user(user)],
            "alerts": list(queries.alerts_for_user(user)),
            "amounts": amounts(money.finder_price()),
            "offer_minutes": settings.FINDER_OFFER_MINUTES,
        },
    )


def _spec(data: dict[str, Any]) -> services.RequestSpec:
    return services.RequestSpec(
        patient_id=data["patient_id"],
        mode=data["mode"],
        appointment_type=data["appointment_type"],
        place=data["near"],
        radius_km=data["radius_km"],
        earliest_date=data["earliest_date"],
        latest_date=data["latest_date"],
        time_windows=tuple(
            services.TimeWindow(weekday=day, start=start, end=end)
            for day, start, end in data["windows"]
        ),
        language=data.get("language") or "",
        deadline=data["deadline"],
        notify_by_email=data["notify_by_email"],
        notify_by_sms=data["notify_by_sms"],
    )


def _initial() -> dict[str, Any]:
    today = clock.local_today()
    return {
        "earliest_date": today,
        "latest_date": today + timedelta(days=DEFAULT_DAYS - 1),
        "deadline": today + timedelta(days=DEFAULT_DAYS - 1),
        "notify_by_email": True,
        "notify_by_sms": False,
    }


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def new_request(request: HttpRequest) -> HttpResponse:
    """The request form; on success, the payment page. A refusal names its field (422)."""
    user = signed_in(request)
    form = RequestForm(posted(request), patients=_patients(user), initial=_initial())
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            enforce(request, "book", account=f"user:{user.pk}")
            try:
                created = services.create_request(user=user, spec=_spec(form.cleaned_data))
            except billing.PaymentUnavailable as exc:
                # The request is kept, waiting for payment: its page offers to pay later.
                messages.error(request, str(exc.message))
                return redirect("finder_requests")
            except DomainError as exc:
                # An unconfirmed email (403) or too many searches (409) is said on the
                # form too, with what was typed kept.
                if exc.status not in (400, 403, 409, 422):
                    raise
                form.add_service_error(exc.field, str(exc.message))
                status = exc.status
            else:
                return redirect("finder_pay", request_id=created.pk)
    return render(
        request,
        "web/finder/new.html",
        {
            "form": form,
            "municipalities": municipalities(),
            "amounts": amounts(money.finder_price()),
            "offer_minutes": settings.FINDER_OFFER_MINUTES,
        },
        status=status,
    )


def _payment_of(found: FinderRequest) -> Payment:
    if found.payment is None:
        raise NotFound(_("This request has no payment."))
    return found.payment


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def pay(request: HttpRequest, request_id: int) -> HttpResponse:
    """The payment of a request: the built-in test provider's "card form" (Pay / Simulate
    a declined card), or, with Stripe, the amount and how payment completes."""
    user = signed_in(request)
    found = queries.request_for_user(user, request_id)
    payment = _payment_of(found)
    if request.method == "POST":
        outcome = request.POST.get("outcome")
        if outcome not in ("pay", "decline"):
            messages.error(request, _("Choose Pay or Simulate a declined card."))
            return redirect("finder_pay", request_id=found.pk)
        try:
            billing.pay_with_test_provider(
                account=user, payment_id=payment.pk, succeed=outcome == "pay"
            )
        except DomainError as exc:
            messages.error(request, str(exc.message))
            return redirect("finder_pay", request_id=found.pk)
        if outcome == "pay":
            messages.success(request, _("Payment received. The search has started."))
        else:
            messages.error(request, _("The card was declined. Nothing was charged."))
        return redirect("finder_request", request_id=found.pk)
    unavailable = ""
    if payment.status == PaymentStatus.PENDING and not payment.provider_ref:
        # The provider was unreachable when the request was made: ask again (idempotent).
        try:
            payment = billing.create_with_provider(payment.pk)
        except billing.PaymentUnavailable as exc:
            unavailable = str(exc.message)
    return render(
        request,
        "web/finder/pay.html",
        {
            "found": found,
            "payment": payment,
            "amounts": amounts(payment),
            "is_test": payment.provider == Provider.TEST,
            "pending": payment.status == PaymentStatus.PENDING,
            "unavailable": unavailable,
        },
        status=503 if unavailable else 200,
    )


def _criteria(found: FinderRequest) -> dict[str, Any]:
    languages = dict(LANGUAGE_CHOICES)
    return {
        "windows": [window_label(w) for w in found.time_windows or []],
        "language": languages.get(found.language, found.language),
    }


@require_GET
@login_required
@handles_domain_errors
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    """What was searched, where the request stands, its offers and its money."""
    user = signed_in(request)
    found = queries.request_for_user(user, request_id)
    pending = queries.pending_offer(found)
    seconds_left = 0
    if pending is not None:
        seconds_left = max(0, int((pending.expires_at - clock.now()).total_seconds()))
    payment = found.payment
    return render(
        request,
        "web/finder/request.html",
        {
            "found": found,
            **_criteria(found),
            "last_day": last_day(found),
            "pending": pending if seconds_left > 0 else None,
            "seconds_left": seconds_left,
            "offers": [o for o in queries.offers_for(found) if o != pending or seconds_left == 0],
            "payment": payment,
            "amounts": amounts(payment) if payment is not None else None,
            "refund": _refund(payment),
            "paid": payment is not None and payment.status == PaymentStatus.SUCCEEDED,
            "cancellable": found.status in CANCELLABLE,
        },
    )


@require_POST
@login_required
@handles_domain_errors
def cancel(request: HttpRequest, request_id: int) -> HttpResponse:
    """Stop a search: before payment nothing is charged; once paid, a full refund."""
    user = signed_in(request)
    try:
        cancelled = services.cancel_request(user=user, request_id=request_id)
    except DomainError as exc:
        if exc.status != 409:
            raise
        messages.error(request, str(exc.message))
        return redirect("finder_request", request_id=request_id)
    if _refund(cancelled.payment) is not None:
        messages.success(request, _("Your search is cancelled. You will be refunded in full."))
    else:
        messages.success(request, _("Your search is cancelled. Nothing was charged."))
    return redirect("finder_request", request_id=cancelled.pk)


@require_GET
@login_required
@handles_domain_errors
def receipt(request: HttpRequest, request_id: int) -> HttpResponse:
    """The receipt (PDF) of a paid request."""
    user = signed_in(request)
    found = queries.request_for_user(user, request_id)
    payment = found.payment
    if payment is None or payment.status != PaymentStatus.SUCCEEDED:
        raise NotFound(_("There is no receipt for this request yet."))
    pdf = receipts.receipt_pdf(payment, language=_language())
    return download(pdf, "application/pdf", f"recu-{payment.receipt_number}.pdf")


def _back_to_request(request: HttpRequest, user: User) -> HttpResponse:
    """Where an offer's answer returns: its request's page (the id the form carried, if it
    is the user's), else the list."""
    try:
        request_id = int(request.POST.get("request_id", ""))
        found = queries.request_for_user(user, request_id)
    except (ValueError, DomainError):
        return redirect("finder_requests")
    return redirect("finder_request", request_id=found.pk)


def _offer_answer_refused(request: HttpRequest, user: User, exc: DomainError) -> HttpResponse:
    """An answer to an offer the service refused: an unknown offer stays a 404 page; any
    other refusal (expired, already answered) is said on the request's page."""
    if exc.status == 404:
        raise exc
    messages.error(request, str(exc.message))
    return _back_to_request(request, user)


@require_POST
@login_required
@handles_domain_errors
def accept(request: HttpRequest, offer_id: int) -> HttpResponse:
    """Take the offered time: it is booked at once."""
    user = signed_in(request)
    enforce(request, "book", account=f"user:{user.pk}")
    try:
        appointment = services.accept_offer(user=user, offer_id=offer_id)
    except DomainError as exc:
        return _offer_answer_refused(request, user, exc)
    messages.success(request, _("Your appointment is booked."))
    return redirect("appointment", appointment_id=appointment.pk)


@require_POST
@login_required
@handles_domain_errors
def decline(request: HttpRequest, offer_id: int) -> HttpResponse:
    """Let the offered time go: the search goes on."""
    user = signed_in(request)
    try:
        offer = services.decline_offer(user=user, offer_id=offer_id)
    except DomainError as exc:
        return _offer_answer_refused(request, user, exc)
    messages.success(request, _("You declined this time. The search goes on."))
    return redirect("finder_request", request_id=offer.request_id)


def _alert_choices(user: User) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Clinics to choose from (every active one), and practitioners the account knows:
    its people's family doctors and those it has had appointments with."""
    clinics = [
        (c.pk, f"{c.name} ({c.municipality_name})")
        for c in Clinic.objects.filter(is_active=True).order_by("name", "pk")
    ]
    known = (
        Practitioner.objects.filter(
            Q(registered_patients__account=user) | Q(slots__appointments__patient__account=user),
            is_active=True,
        )
        .select_related("clinic")
        .distinct()
        .order_by("last_name", "first_name", "pk")
    )
    return clinics, [(p.pk, f"{p.display_name} — {p.clinic.name}") for p in known]


def _alert_spec(data: dict[str, Any]) -> services.AlertSpec:
    scope = data["scope"]
    return services.AlertSpec(
        scope=scope,
        clinic_id=data.get("clinic_id") if scope == "clinic" else None,
        practitioner_id=data.get("practitioner_id") if scope == "practitioner" else None,
        place=data.get("near", "") if scope == "area" else "",
        radius_km=(data.get("radius_km") or 10) if scope == "area" else None,
        appointment_type=data.get("appointment_type") or "",
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def alerts(request: HttpRequest) -> HttpResponse:
    """Free alerts: a message when a time is published or freed, with no hold."""
    user = signed_in(request)
    clinics, practitioners = _alert_choices(user)
    form = AlertForm(posted(request), clinics=clinics, practitioners=practitioners)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                services.create_alert(user=user, spec=_alert_spec(form.cleaned_data))
            except DomainError as exc:
                if exc.status not in (400, 404, 409, 422):
                    raise
                form.add_service_error(exc.field, str(exc.message))
                status = exc.status if exc.status != 404 else 422
            else:
                messages.success(request, _("Your alert is on."))
                return redirect("finder_alerts")
    return render(
        request,
        "web/finder/alerts.html",
        {
            "form": form,
            "alerts": list(queries.alerts_for_user(user)),
            "municipalities": municipalities(),
        },
        status=status,
    )


@require_POST
@login_required
@handles_domain_errors
def remove_alert(request: HttpRequest, alert_id: int) -> HttpResponse:
    user = signed_in(request)
    services.remove_alert(user=user, alert_id=alert_id)
    messages.success(request, _("The alert is removed."))
    return redirect("finder_alerts")
