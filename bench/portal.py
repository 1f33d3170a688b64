"""Clinic-portal figures (issue 6: the portal must be fast): the day and week agendas of
the busiest clinic, its statistics over 90 days, and its whole data export, each with
one client alone, so that a latency is the server's time for one page (no queueing).

The set-up runs in the bench process, on the bench database, through the app's own code:
appointments are booked with rdv.scheduling.services.book_appointment (so the audit
entries, outbox rows and card claims are real), and a clinic administrator is signed in
by writing a session server-side, as django.test.Client.force_login does, with the
portal's second-factor flag (the sign-in itself is tested in tests/). Needs Django set up.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db.models import Count
from django.db.models.functions import TruncDate

from bench.client import Client
from bench.dataset import BENCH_EMAIL_DOMAIN
from bench.phases import PhaseRun, Target, record, run_clients
from bench.stats import Recorder
from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.clinics.models import Clinic, Membership
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.patients.models import Patient
from rdv.patients.services import set_family_doctor
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    AppointmentType,
    Slot,
    SlotStatus,
    Visibility,
)
from rdv.web.portal import SECOND_FACTOR_KEY

FILL_SHARE = 0.6  # of the clinic's slots booked on each day of the measured week
WEEK_DAYS = 7
FIRST_DAY_AHEAD = 2  # whole future days: no slot of the week has started
SEARCH_DAYS = 7  # the busiest (clinic, day) is the one with most slots among these days
STATS_DAYS = 90
STATS_DAYS_BACK = 29  # 29 days back to 60 ahead: the period covers the whole slot horizon
EXPORT_REQUESTS = 3  # the export is heavy: a fixed count, not a duration
MIN_REQUESTS = 5  # at least this many of each page, however long BENCH_SECONDS is short
# Bench patients are born 1950-01-01 + 97 days × their index: the first 200 are adults.
BOOKING_PATIENTS = 200
REGISTERED_PER_DOCTOR = 15  # bench patients registered with each practitioner who needs them
# One per appointment shown: the day's table rows, the week's list items.
SHOWN_MARKER = b'class="status-'

DAY = "/clinique/{clinic}/agenda/"
WEEK = "/clinique/{clinic}/agenda/semaine/"
STATS = "/clinique/{clinic}/statistiques/"
STATS_CSV = "/clinique/{clinic}/statistiques.csv"
EXPORT = "/clinique/{clinic}/export/tout.zip"


@dataclass(frozen=True)
class PortalSetup:
    """The measured clinic and week, once filled, and the administrator's session."""

    clinic_id: int
    clinic_name: str
    practitioners: int
    day: date  # the busiest day; the week is this day and the six after it
    day_slots: int
    day_appointments: int  # active appointments that day, after the fill
    week_appointments: int
    booked: int  # bookings made by the set-up, through the booking service
    refused: int  # slots the booking or registration service refused (none expected)
    registered: int  # bench patients registered with the clinic's family doctors
    seconds: float
    cookie: str  # "name=value" of the administrator's session cookie

    @property
    def stats_period(self) -> tuple[date, date]:
        first = clock.local_today() - timedelta(days=STATS_DAYS_BACK)
        return first, first + timedelta(days=STATS_DAYS - 1)


@dataclass
class PageFigures:
    """What the 200 answers of one phase contained, by request kind."""

    sizes: dict[str, list[int]] = field(default_factory=dict)  # body bytes
    shown: dict[str, list[int]] = field(default_factory=dict)  # appointments on the page
    patients: list[int] = field(default_factory=list)  # rows of the export's patients.csv
    audit_entries: int = 0  # audit entries the phase wrote (reads of patients)

    def add(self, kind: str, body: bytes) -> None:
        self.sizes.setdefault(kind, []).append(len(body))
        if kind in ("day", "week"):
            self.shown.setdefault(kind, []).append(body.count(SHOWN_MARKER))
        if kind == "zip":
            self.patients.append(export_patients(body))


def export_patients(body: bytes) -> int:
    """Data rows of patients.csv in an export ZIP; -1 when the archive lacks it."""
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        if "patients.csv" not in archive.namelist():
            return -1
        text = archive.read("patients.csv").decode("utf-8")
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)


def busiest_day() -> tuple[int, date, int]:
    """(clinic id, day, slots) of the clinic and day with the most slots, from the day
    after tomorrow on."""
    first = clock.local_today() + timedelta(days=FIRST_DAY_AHEAD)
    start, end = clock.local_day_bounds(first, first + timedelta(days=SEARCH_DAYS - 1))
    row = (
        Slot.objects.filter(start__gte=start, start__lt=end)
        .exclude(status=SlotStatus.WITHDRAWN)
        .annotate(day=TruncDate("start", tzinfo=clock.LOCAL_TZ))
        .values("clinic_id", "day")
        .annotate(slots=Count("pk"))
        .order_by("-slots", "clinic_id", "day")
        .first()
    )
    if row is None:
        raise RuntimeError("no slot in the data set to measure the portal with")
    return int(row["clinic_id"]), row["day"], int(row["slots"])


def _bookable(clinic_id: int, day: date) -> tuple[int, int, list[tuple[int, str, int]]]:
    """(slots, booked, free slots an adult may book: id, visibility, practitioner) of the
    clinic that day."""
    start, end = clock.local_day_bounds(day, day)
    slots = Slot.objects.filter(clinic_id=clinic_id, start__gte=start, start__lt=end).exclude(
        status=SlotStatus.WITHDRAWN
    )
    free = slots.filter(status=SlotStatus.FREE, hold_owner__isnull=True).exclude(
        appointment_type=AppointmentType.CHILD_0_5
    )
    return (
        slots.count(),
        slots.filter(status=SlotStatus.BOOKED).count(),
        list(free.order_by("pk").values_list("pk", "visibility", "practitioner_id")),
    )


class Bookers:
    """Who books which slot: any bench patient a public slot, and a patient registered
    with the practitioner a slot reserved for registered patients. Registration goes
    through the front desk's own service (an audited change), REGISTERED_PER_DOCTOR
    patients per practitioner, each taken once from the bench patients."""

    def __init__(self, ctx: StaffContext, patients: list[User]) -> None:
        self._ctx = ctx
        self._anyone = itertools.cycle(patients)
        self._unregistered = iter(patients)
        self._registered: dict[int, Iterator[User]] = {}
        self._refused: dict[int, DomainError] = {}  # practitioners who take none
        self.registrations = 0

    def for_slot(self, visibility: str, practitioner_id: int) -> User:
        if visibility == Visibility.PUBLIC:
            return next(self._anyone)
        if practitioner_id in self._refused:
            raise self._refused[practitioner_id]
        if practitioner_id not in self._registered:
            try:
                users = self._register(practitioner_id)
            except DomainError as exc:
                self._refused[practitioner_id] = exc
                raise
            self._registered[practitioner_id] = itertools.cycle(users)
        return next(self._registered[practitioner_id])

    def _register(self, practitioner_id: int) -> list[User]:
        """Raises DomainError when this practitioner takes no registered patients."""
        users = list(itertools.islice(self._unregistered, REGISTERED_PER_DOCTOR))
        for user in users:
            patient = Patient.objects.get(account=user, relationship=Patient.Relationship.SELF)
            set_family_doctor(
                self._ctx, patient_id=patient.pk, practitioner_id=practitioner_id, registered=True
            )
            self.registrations += 1
        if not users:
            raise RuntimeError("no bench patient left to register with a practitioner")
        return users


def fill_day(clinic_id: int, day: date, bookers: Bookers, rng: random.Random) -> tuple[int, int]:
    """Book free slots of that day, in random order, until FILL_SHARE of its slots are
    booked (the earlier phases may have booked some). Returns (booked, refused)."""
    total, booked_before, candidates = _bookable(clinic_id, day)
    wanted = round(FILL_SHARE * total) - booked_before
    rng.shuffle(candidates)
    booked = refused = 0
    for slot_id, visibility, practitioner_id in candidates:
        if booked >= wanted:
            break
        try:
            user = bookers.for_slot(visibility, practitioner_id)
            scheduling.book_appointment(user=user, slot_id=slot_id)
        except DomainError:
            refused += 1
        else:
            booked += 1
    return booked, refused


def _active(clinic_id: int, first: date, last: date) -> int:
    start, end = clock.local_day_bounds(first, last)
    return Appointment.objects.filter(
        slot__clinic_id=clinic_id,
        slot__start__gte=start,
        slot__start__lt=end,
        status__in=ACTIVE_APPOINTMENT_STATUSES,
    ).count()


def clinic_admin(clinic_id: int) -> User:
    """A new clinic administrator of this clinic (a bench account, no usable password)."""
    user = User.objects.create_user(
        f"portal-admin-{clinic_id}@{BENCH_EMAIL_DOMAIN}",
        None,
        first_name="Bench",
        last_name="Admin",
        email_verified_at=clock.now(),
    )
    Membership.objects.create(user=user, clinic_id=clinic_id, role=Membership.Role.CLINIC_ADMIN)
    return user


def session_cookie(user: User) -> str:
    """The user signed in with both factors: the session is written server-side exactly
    as force_login writes it, plus the portal's second-factor flag."""
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[SECOND_FACTOR_KEY] = True
    session.save()
    # Sent by the bench client itself, so the cookie's Secure flag (production only,
    # settings.SESSION_COOKIE_SECURE) does not keep it off plain-HTTP loopback.
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def prepare() -> PortalSetup:
    """Pick the busiest clinic and day, sign an administrator in, and book that week to
    FILL_SHARE for bench patients."""
    started = time.perf_counter()
    clinic_id, day, day_slots = busiest_day()
    clinic = Clinic.objects.get(pk=clinic_id)
    admin = clinic_admin(clinic_id)
    patients = User.objects.filter(
        email__startswith="patient", email__endswith=f"@{BENCH_EMAIL_DOMAIN}"
    ).order_by("pk")[:BOOKING_PATIENTS]
    bookers = Bookers(staff_context(admin, clinic_id), list(patients))
    rng = random.Random(6)
    booked = refused = 0
    for offset in range(WEEK_DAYS):
        made, failed = fill_day(clinic_id, day + timedelta(days=offset), bookers, rng)
        booked += made
        refused += failed
    last = day + timedelta(days=WEEK_DAYS - 1)
    return PortalSetup(
        clinic_id=clinic_id,
        clinic_name=clinic.name,
        practitioners=clinic.practitioners.count(),
        day=day,
        day_slots=day_slots,
        day_appointments=_active(clinic_id, day, day),
        week_appointments=_active(clinic_id, day, last),
        booked=booked,
        refused=refused,
        registered=bookers.registrations,
        seconds=time.perf_counter() - started,
        cookie=session_cookie(admin),
    )


Request = tuple[str, str, dict[str, str | int]]  # kind, path, query


def one_client(
    target: Target,
    setup: PortalSetup,
    requests: list[Request],
    *,
    seconds: float,
    minimum: int,
    maximum: int | None = None,
    first_apart: bool = False,
) -> tuple[PhaseRun, PageFigures]:
    """One signed-in administrator sending `requests` in turn, back to back, until the
    deadline and at least `minimum` requests (at most `maximum`). Every answer is
    recorded with its status; only 200s feed the sizes and counts. With `first_apart`,
    the very first request is recorded as its own kind ("<kind>, first"): the agendas
    write their audit entries on a member's first sight of each appointment in a
    half-hour (rdv.clinics.services.view_day), so the first view costs more."""
    figures = PageFigures()
    headers = {"Cookie": setup.cookie, "Accept": "text/html", "Accept-Language": "fr"}

    def worker(index: int, deadline: float, recorder: Recorder) -> None:
        client = Client(target.host, target.port, headers=headers)
        sent = 0
        try:
            while (maximum is None or sent < maximum) and (
                sent < minimum or time.monotonic() < deadline
            ):
                kind, path, query = requests[sent % len(requests)]
                answer = client.get(path.format(clinic=setup.clinic_id), query)
                first = first_apart and sent == 0
                record(recorder, f"{kind}, first" if first else kind, answer)
                if answer.status == 200:
                    figures.add(kind, answer.body)
                sent += 1
        finally:
            client.close()

    audited = AuditEntry.objects.count()
    run = run_clients(1, seconds, worker)
    figures.audit_entries = AuditEntry.objects.count() - audited
    return run, figures


def day_phase(target: Target, setup: PortalSetup, seconds: float) -> tuple[PhaseRun, PageFigures]:
    query: dict[str, str | int] = {"date": setup.day.isoformat()}
    return one_client(
        target,
        setup,
        [("day", DAY, query)],
        seconds=seconds,
        minimum=MIN_REQUESTS,
        first_apart=True,
    )


def week_phase(target: Target, setup: PortalSetup, seconds: float) -> tuple[PhaseRun, PageFigures]:
    query: dict[str, str | int] = {"date": setup.day.isoformat()}
    return one_client(
        target,
        setup,
        [("week", WEEK, query)],
        seconds=seconds,
        minimum=MIN_REQUESTS,
        first_apart=True,
    )


def stats_phase(target: Target, setup: PortalSetup, seconds: float) -> tuple[PhaseRun, PageFigures]:
    """The page and its CSV in turn, over the same 90 days."""
    first, last = setup.stats_period
    query: dict[str, str | int] = {"from": first.isoformat(), "to": last.isoformat()}
    requests: list[Request] = [("page", STATS, query), ("csv", STATS_CSV, query)]
    return one_client(target, setup, requests, seconds=seconds, minimum=2 * MIN_REQUESTS)


def export_phase(
    target: Target, setup: PortalSetup, seconds: float
) -> tuple[PhaseRun, PageFigures]:
    return one_client(
        target,
        setup,
        [("zip", EXPORT, {})],
        seconds=seconds,
        minimum=EXPORT_REQUESTS,
        maximum=EXPORT_REQUESTS,
    )
