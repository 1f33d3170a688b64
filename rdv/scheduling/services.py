"""Every write to slots and appointments. Each function is one transaction.

State changes are compare-and-set updates whose row count says who won (DESIGN.md
invariant 2); the database's unique indexes and exclusion constraint back them up.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

import holidays
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.clinics.models import FRONT_DESK_ROLES, Clinic, Membership, Practitioner
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SlotUnavailable,
    ValidationError,
)
from rdv.core.metrics import APPOINTMENTS_BOOKED, APPOINTMENTS_CANCELLED
from rdv.finder import events as finder_events
from rdv.notifications import services as notifications
from rdv.notifications.models import Kind
from rdv.patients.models import Patient, reachable_by
from rdv.patients.queries import FAMILY_DOCTOR_PROFESSIONS, patient_for_user
from rdv.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AvailabilityRule,
    CancelledBy,
    CardClaim,
    Closure,
    Slot,
    SlotStatus,
    Visibility,
)
from rdv.scheduling.queries import (
    appointment_for_user,
    clinic_appointment,
    is_open_to_public,
    open_to_public,
    type_fits,
    visitor_digest,
)
from rdv.scheduling.rules import RuleSpec, SlotSpec, expand_rules

logger = logging.getLogger(__name__)
# Every column of a hold, cleared: what "release" writes.
NO_HOLD = {"hold_owner": None, "hold_visitor": None, "hold_expires_at": None}
# These services act for the account holder on their own family's appointments.
PATIENT_ROLE = "patient"
# The account holder acting through a one-click link in a message, without signing in.
LINK_ROLE = "patient-link"

# --- Slot generation ---------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationResult:
    created: int
    deleted: int


def _rule_specs(practitioner: Practitioner) -> list[RuleSpec]:
    return [
        RuleSpec(
            rule_id=r.pk,
            weekday=r.weekday,
            start_time=r.start_time,
            end_time=r.end_time,
            slot_minutes=r.slot_minutes,
            appointment_type=r.appointment_type,
            visibility=r.visibility,
            valid_from=r.valid_from,
            valid_until=r.valid_until,
            release_hours=r.release_hours,
        )
        for r in AvailabilityRule.objects.filter(practitioner=practitioner).order_by("pk")
    ]


def _closures(
    practitioner: Practitioner, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    rows = Closure.objects.filter(
        Q(practitioner=practitioner)
        | Q(practitioner__isnull=True, clinic_id=practitioner.clinic_id),
        starts_at__lt=end,
        ends_at__gt=start,
    ).values_list("starts_at", "ends_at")
    return list(rows)


SlotKey = tuple[datetime, datetime, str, str, datetime | None]


def _slot_key(
    start: datetime, end: datetime, kind: str, visibility: str, public_from: datetime | None
) -> SlotKey:
    """What makes a free slot the one a rule wants. The release time is part of it, so a
    rule's new release time replaces its free slots (booked and held ones stay as they are)."""
    return (start, end, kind, visibility, public_from)


def _spec_key(spec: SlotSpec) -> SlotKey:
    return _slot_key(spec.start, spec.end, spec.appointment_type, spec.visibility, spec.public_from)


def generate_slots(*, practitioner_id: int, first_day: date, last_day: date) -> GenerationResult:
    """Make the practitioner's future free slots match their rules for these local days.

    Idempotent: a second run changes nothing. Booked slots and slots someone is holding are
    never touched, and a new slot that would overlap one of them is not created. A stale
    free slot is deleted, or withdrawn if a cancelled appointment still refers to it. Runs
    for one practitioner are serialised by a row lock on the practitioner, and the stale
    slots are locked (and re-checked) before anything is removed.
    """
    now = clock.now()
    window_start, window_end = clock.local_day_bounds(first_day, last_day)
    with transaction.atomic():
        practitioner = (
            Practitioner.objects.select_for_update()
            .select_related("clinic")
            .get(pk=practitioner_id)
        )
        wanted: list[SlotSpec] = []
        if practitioner.is_active and practitioner.clinic.is_active:
            wanted = expand_rules(
                _rule_specs(practitioner),
                _closures(practitioner, window_start, window_end),
                first_day,
                last_day,
            )
        wanted = [s for s in wanted if s.start > now]
        wanted_keys = {_spec_key(s) for s in wanted}
        in_window = Slot.objects.filter(
            practitioner=practitioner, start__gte=window_start, start__lt=window_end
        ).exclude(status=SlotStatus.WITHDRAWN)
        stale_ids = [
            s.pk
            for s in in_window.filter(status=SlotStatus.FREE, start__gt=now)
            if _slot_key(s.start, s.end, s.appointment_type, s.visibility, s.public_from)
            not in wanted_keys
        ]
        deleted = _remove_stale(stale_ids, now)
        kept = list(
            in_window.values_list("start", "end", "appointment_type", "visibility", "public_from")
        )
        kept_keys = {_slot_key(*k) for k in kept}
        kept_periods = sorted((k[0], k[1]) for k in kept)
        new_slots = [
            Slot(
                clinic_id=practitioner.clinic_id,
                practitioner=practitioner,
                rule_id=s.rule_id,
                start=s.start,
                end=s.end,
                appointment_type=s.appointment_type,
                visibility=s.visibility,
                public_from=s.public_from,
            )
            for s in wanted
            if _spec_key(s) not in kept_keys and not _overlaps_any(s.start, s.end, kept_periods)
        ]
        Slot.objects.bulk_create(new_slots, batch_size=1000)
        # The appointment finder hears of every slot open to the public (reserved ones when
        # they are released: its sweep).
        finder_events.slots_published(s.pk for s in new_slots if is_open_to_public(s, now))
    return GenerationResult(created=len(new_slots), deleted=deleted)


def _remove_stale(stale_ids: list[int], now: datetime) -> int:
    """Delete (or withdraw) stale free slots that are still free and not held.

    The rows are locked first: PostgreSQL re-checks the conditions after any wait, so a
    slot booked or held meanwhile is left alone.
    """
    if not stale_ids:
        return 0
    held = Q(hold_expires_at__gt=now)
    locked = list(
        Slot.objects.select_for_update()
        .filter(pk__in=stale_ids, status=SlotStatus.FREE)
        .exclude(held)
        .values_list("pk", flat=True)
    )
    with_history = set(
        Appointment.objects.filter(slot_id__in=locked).values_list("slot_id", flat=True)
    )
    Slot.objects.filter(pk__in=with_history).update(status=SlotStatus.WITHDRAWN, **NO_HOLD)
    Slot.objects.filter(pk__in=set(locked) - with_history).delete()
    return len(locked)


def _overlaps_any(start: datetime, end: datetime, periods: list[tuple[datetime, datetime]]) -> bool:
    return any(p_start < end and start < p_end for p_start, p_end in periods)


def generate_horizon(*, days: int | None = None) -> GenerationResult:
    """Extend every practitioner's slots over the rolling horizon (idempotent).

    One practitioner's failure is logged and does not stop the others.
    """
    horizon = days if days is not None else settings.SLOT_HORIZON_DAYS
    first = clock.local_today()
    last = first + timedelta(days=horizon - 1)
    created = deleted = 0
    for practitioner_id in Practitioner.objects.order_by("pk").values_list("pk", flat=True):
        try:
            result = generate_slots(practitioner_id=practitioner_id, first_day=first, last_day=last)
        except DatabaseError:
            logger.exception("slot generation failed for practitioner %s", practitioner_id)
            continue
        created += result.created
        deleted += result.deleted
    return GenerationResult(created=created, deleted=deleted)


# --- Holds and bookings -----------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    slot_id: int
    expires_at: datetime


def _release_holds(held: QuerySet[Slot]) -> None:
    """Let go of these holds. A free slot released this way is back with the public
    before its hold would have expired, so the appointment finder is told (an event in
    this transaction)."""
    ids = list(held.values_list("pk", "status"))
    if not ids:
        return
    Slot.objects.filter(pk__in=[pk for pk, _status in ids]).update(**NO_HOLD)
    finder_events.holds_released(pk for pk, status in ids if status == SlotStatus.FREE)


def _visible_slot_for(patient: Patient, slot_id: int) -> Slot:
    """The slot, if this patient may see it; otherwise NotFound, as if it did not exist."""
    slot = (
        Slot.objects.select_related("clinic", "practitioner")
        .filter(pk=slot_id, clinic__is_active=True, practitioner__is_active=True)
        .exclude(status=SlotStatus.WITHDRAWN)
        .first()
    )
    if slot is None or not _may_see(patient, slot, clock.now()):
        raise NotFound(_("Slot not found."), code="slot_not_found")
    return slot


def _may_see(patient: Patient, slot: Slot, now: datetime) -> bool:
    """Open to the public (or released by now), or reserved for this patient's doctor."""
    return is_open_to_public(slot, now) or patient.family_doctor_id == slot.practitioner_id


def _visible_to(patient: Patient, now: datetime) -> Q:
    """_may_see as a filter, for the compare-and-set: a slot released later than `now`
    stays reserved in the very update that takes it."""
    return open_to_public(now) | Q(practitioner_id=patient.family_doctor_id)


def _takeable_by(user: User, now: datetime) -> Q:
    """Free, in the future, and not held by someone else right now."""
    return Q(status=SlotStatus.FREE, start__gt=now) & (
        Q(hold_expires_at__isnull=True) | Q(hold_expires_at__lte=now) | Q(hold_owner=user)
    )


def _check_patient_fits(patient: Patient, slot: Slot) -> None:
    if not type_fits(patient.date_of_birth, slot.appointment_type, slot.start):
        raise ValidationError(
            _("This appointment type is for children aged 0 to 5."), code="patient_not_eligible"
        )


def _check_may_book(user: User) -> None:
    """Only a confirmed email address books: confirmations and reminders must reach
    someone, and throwaway accounts must not take slots."""
    if user.email_verified_at is None:
        raise PermissionDenied(
            _("Confirm your email address before booking."), code="email_unverified"
        )


def _lock_booker(user: User) -> None:
    """Inside the booking transaction: lock the account row, and refuse if it was closed
    meanwhile. Account deletion takes the same lock, so a booking cannot slip in after it
    has released the account's appointments."""
    locked = User.objects.select_for_update().filter(pk=user.pk, is_active=True)
    if not list(locked.values_list("pk", flat=True)):
        raise PermissionDenied(_("This account is closed."), code="account_closed")


def _explain_unavailable(slot_id: int, now: datetime) -> SlotUnavailable:
    """Say why a compare-and-set lost (diagnosis only: the decision is already made).

    A caller's own live hold never makes its compare-and-set lose, so a live hold found
    here is someone else's.
    """
    slot = Slot.objects.filter(pk=slot_id).first()
    if slot is not None and slot.start <= now:
        return SlotUnavailable(_("This time has already passed."), code="slot_in_past")
    if (
        slot is not None
        and slot.status == SlotStatus.FREE
        and slot.hold_expires_at is not None
        and slot.hold_expires_at > now
    ):
        return SlotUnavailable(
            _("Someone else is confirming this slot right now. Please choose another one."),
            code="slot_held",
        )
    return SlotUnavailable()


def hold_slot(*, user: User, slot_id: int, patient_id: int | None = None) -> Hold:
    """Reserve a free slot for `user` for a few minutes while they confirm.

    An account holds at most one slot: taking a new hold releases the previous one (and a
    partial unique index makes a second concurrent hold fail rather than succeed).
    """
    patient = patient_for_user(user, patient_id)
    slot = _visible_slot_for(patient, slot_id)
    _check_patient_fits(patient, slot)
    now = clock.now()
    expires_at = now + timedelta(minutes=settings.HOLD_MINUTES)
    try:
        with transaction.atomic():
            _release_holds(Slot.objects.filter(hold_owner=user).exclude(pk=slot.pk))
            won = (
                Slot.objects.filter(pk=slot.pk)
                .filter(_takeable_by(user, now), _visible_to(patient, now))
                .update(hold_owner=user, hold_visitor=None, hold_expires_at=expires_at)
            )
            if won != 1:
                raise _explain_unavailable(slot.pk, now)
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    return Hold(slot_id=slot.pk, expires_at=expires_at)


def hold_slot_for_visitor(*, visitor_token: str, slot_id: int) -> Hold:
    """Hold a slot open to the public (or released) for a visitor not signed in yet.

    `visitor_token` is a random secret kept in the visitor's session; the slot stores only
    its digest. A visitor holds at most one slot (a partial unique index backs this), and
    `claim_visitor_hold` hands the hold to the account they sign in or sign up with.
    """
    if len(visitor_token) < 32:
        raise ValueError("visitor tokens are long random secrets")
    digest = visitor_digest(visitor_token)
    now = clock.now()
    slot = (
        Slot.objects.filter(
            open_to_public(now),
            pk=slot_id,
            clinic__is_active=True,
            practitioner__is_active=True,
        )
        .exclude(status=SlotStatus.WITHDRAWN)
        .first()
    )
    if slot is None:
        raise NotFound(_("Slot not found."), code="slot_not_found")
    expires_at = now + timedelta(minutes=settings.HOLD_MINUTES)
    takeable = Q(status=SlotStatus.FREE, start__gt=now) & (
        Q(hold_expires_at__isnull=True) | Q(hold_expires_at__lte=now) | Q(hold_visitor=digest)
    )
    try:
        with transaction.atomic():
            _release_holds(Slot.objects.filter(hold_visitor=digest).exclude(pk=slot.pk))
            won = (
                Slot.objects.filter(open_to_public(now), pk=slot.pk)
                .filter(takeable)
                .update(hold_owner=None, hold_visitor=digest, hold_expires_at=expires_at)
            )
            if won != 1:
                raise _explain_unavailable(slot.pk, now)
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    return Hold(slot_id=slot.pk, expires_at=expires_at)


def claim_visitor_hold(*, user: User, visitor_token: str) -> Hold | None:
    """Give the visitor's live hold, if any, to the account they just signed in with.

    The hold keeps its expiry: signing in buys no extra time. Whatever else the account
    was holding is released (an account holds one slot).
    """
    digest = visitor_digest(visitor_token)
    now = clock.now()
    with transaction.atomic():
        held = (
            Slot.objects.filter(hold_visitor=digest, hold_expires_at__gt=now)
            .values_list("pk", "hold_expires_at")
            .first()
        )
        if held is None:
            return None
        slot_id, expires_at = held
        if expires_at is None:  # the filter above says otherwise; this tells mypy
            return None
        _release_holds(Slot.objects.filter(hold_owner=user).exclude(pk=slot_id))
        try:
            with transaction.atomic():
                won = Slot.objects.filter(
                    pk=slot_id, hold_visitor=digest, hold_expires_at__gt=now
                ).update(hold_owner=user, hold_visitor=None)
        except IntegrityError:  # the account took another hold meanwhile: theirs wins
            return None
    return Hold(slot_id=slot_id, expires_at=expires_at) if won == 1 else None


def book_appointment(
    *, user: User, slot_id: int, patient_id: int | None = None, reason: str = ""
) -> Appointment:
    """Book the slot for one of the user's patients, or fail with nothing written.

    Of any number of concurrent callers for one slot, exactly one wins the
    compare-and-set; the others get SlotUnavailable (HTTP 409).
    """
    _check_may_book(user)
    patient = patient_for_user(user, patient_id)
    slot = _visible_slot_for(patient, slot_id)
    _check_patient_fits(patient, slot)
    now = clock.now()
    try:
        with transaction.atomic():
            _lock_booker(user)
            appointment = _take(user, patient, slot, reason, now)
            # Whatever else this account was holding goes back to everyone.
            _release_holds(Slot.objects.filter(hold_owner=user))
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    return appointment


def _take(
    user: User,
    patient: Patient,
    slot: Slot,
    reason: str,
    now: datetime,
    *,
    role: str = PATIENT_ROLE,
) -> Appointment:
    """Inside the caller's transaction: win the slot by compare-and-set, or raise. `user`
    books (the account holder, or clinic staff in `role`)."""
    won = (
        Slot.objects.filter(pk=slot.pk)
        .filter(_takeable_by(user, now), _visible_to(patient, now))
        .update(status=SlotStatus.BOOKED, **NO_HOLD)
    )
    if won != 1:
        raise _explain_unavailable(slot.pk, now)
    return _record_booking(user, patient, slot, reason, now, role=role)


def _record_booking(
    user: User, patient: Patient, slot: Slot, reason: str, now: datetime, *, role: str
) -> Appointment:
    """Inside the transaction that has just won the slot: the appointment, its health-card
    claim, its confirmation and reminders, and its audit entry."""
    appointment = Appointment.objects.create(
        slot=slot,
        patient=patient,
        booked_by=user,
        reason=reason.strip(),
        created_at=now,
        updated_at=now,
    )
    _claim_card(appointment, patient, slot, now)
    notifications.appointment_booked(appointment, now=now)
    audit.record("appointment.book", actor=user, role=role, subject=_subject(appointment, slot))
    # Counted once the booking is committed: a rolled-back one never happened.
    transaction.on_commit(APPOINTMENTS_BOOKED.labels(channel=_booking_channel(role)).inc)
    return appointment


def _booking_channel(role: str) -> str:
    """Who booked, as the metrics say it: the patient online, the finder, or the clinic."""
    return {PATIENT_ROLE: "online", FINDER_ROLE: "finder"}.get(role, "clinic")


@dataclass(frozen=True)
class FamilyChoice:
    patient_id: int
    slot_id: int
    reason: str = ""


def book_family_visit(*, user: User, choices: list[FamilyChoice]) -> list[Appointment]:
    """Book several of the account's people into several slots at once: all, or none.

    Each slot is taken by the same compare-and-set as a single booking, in one
    transaction; if any of them is lost, the others are given back untouched (rolled
    back) and the caller gets SlotUnavailable. Slots are taken in id order so that two
    overlapping family bookings cannot deadlock.
    """
    _check_may_book(user)
    if not 2 <= len(choices) <= settings.FAMILY_VISIT_MAX:
        raise ValidationError(
            _("Choose between 2 and %(most)d people.") % {"most": settings.FAMILY_VISIT_MAX},
            field="patients",
            code="family_size",
        )
    if len({c.patient_id for c in choices}) != len(choices) or len(
        {c.slot_id for c in choices}
    ) != len(choices):
        raise ValidationError(
            _("Each person needs their own time."), field="patients", code="family_duplicate"
        )
    taken = []
    for choice in choices:
        patient = patient_for_user(user, choice.patient_id)
        slot = _visible_slot_for(patient, choice.slot_id)
        _check_patient_fits(patient, slot)
        taken.append((slot, patient, choice.reason))
    taken.sort(key=lambda item: item[0].pk)
    now = clock.now()
    try:
        with transaction.atomic():
            _lock_booker(user)
            appointments = [_take(user, patient, slot, why, now) for slot, patient, why in taken]
            _release_holds(Slot.objects.filter(hold_owner=user))
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    return sorted(appointments, key=lambda a: a.slot.start)


def _claim_card(appointment: Appointment, patient: Patient, slot: Slot, now: datetime) -> None:
    """Hold the patient's health card for this appointment type (anti-hoarding).

    The database's unique (card, type) constraint decides; a claim whose visit is over is
    cleared first. A patient without a recorded health card is not covered.
    """
    if not patient.ramq_blind_index or slot.appointment_type not in settings.ONE_UPCOMING_PER_CARD:
        return
    card = {"ramq_blind_index": patient.ramq_blind_index, "appointment_type": slot.appointment_type}
    CardClaim.objects.filter(**card, ends_at__lte=now).delete()
    try:
        with transaction.atomic():
            CardClaim.objects.create(**card, appointment=appointment, ends_at=slot.end)
    except IntegrityError as exc:
        raise Conflict(
            _(
                "This health card already has an upcoming appointment of this type. "
                "Cancel or move that one first."
            ),
            code="card_already_booked",
        ) from exc


def _subject(appointment: Appointment, slot: Slot) -> audit.Subject:
    return audit.Subject(
        object_type="appointment",
        object_id=str(appointment.pk),
        patient_id=appointment.patient_id,
        clinic_id=slot.clinic_id,
    )


def _check_cutoff(appointment: Appointment, now: datetime) -> None:
    """Refuse changes closer to the visit than the clinic's cut-off.

    A booking can always be undone within a short grace period after it was made (a
    mis-tap gives the slot straight back, before the clinic has planned around it).
    """
    slot = appointment.slot
    grace = timedelta(minutes=settings.CANCELLATION_GRACE_MINUTES)
    if now <= appointment.created_at + grace and now < slot.start:
        return
    cutoff_hours = slot.clinic.cancellation_cutoff_hours
    if now > slot.start - timedelta(hours=cutoff_hours):
        raise Conflict(
            _(
                "This appointment can no longer be changed online (less than %(hours)d hours "
                "before it). Please call the clinic."
            )
            % {"hours": cutoff_hours},
            code="cutoff_passed",
        )


def _lock_changeable(user: User, appointment_id: int, now: datetime) -> Appointment:
    """Lock one of the user's appointments and check it may still change.

    Every change of an appointment locks the appointment row first, then slot rows in
    primary-key order: one lock order everywhere, so concurrent changes never deadlock,
    and what was checked cannot change before the commit.
    """
    appointment_for_user(user, appointment_id)  # someone else's: NotFound
    # Only this row is locked (a join would lock, and re-evaluate, the slot and clinic
    # too); its slot and clinic are read after the lock, so they are current.
    appointment = Appointment.objects.select_for_update().get(pk=appointment_id)
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(
            _("Only an upcoming booked appointment can be changed."), code="not_changeable"
        )
    _check_cutoff(appointment, now)
    return appointment


def cancel_appointment(*, user: User, appointment_id: int, reason: str = "") -> Appointment:
    """Cancel one of the user's appointments before the clinic's cut-off and free its slot."""
    now = clock.now()
    with transaction.atomic():
        appointment = _lock_changeable(user, appointment_id, now)
        _cancel_locked(user, appointment, reason, now)
    appointment.refresh_from_db()
    return appointment


def _cancel_locked(
    user: User | None,
    appointment: Appointment,
    reason: str,
    now: datetime,
    *,
    notify: bool = True,
    role: str = PATIENT_ROLE,
    by: str = CancelledBy.PATIENT,
) -> None:
    """Cancel a booked appointment whose row the caller has locked, and free its slot.

    The one way a cancellation frees a slot, whoever asked for it (`by`: the patient's
    side or the clinic). Its pending reminders are withdrawn; `notify`: also tell the
    account holder (not when the account itself is being deleted). `user` is who cancels:
    None for a link in a message to a patient without an account (the clinic's file).
    """
    Appointment.objects.filter(pk=appointment.pk).update(
        status=AppointmentStatus.CANCELLED,
        cancelled_at=now,
        updated_at=now,
        cancellation_reason=reason.strip()[:500],
        cancelled_by=by,
    )
    freed = Slot.objects.filter(pk=appointment.slot_id, status=SlotStatus.BOOKED).update(
        status=SlotStatus.FREE
    )
    if freed:
        finder_events.slot_freed(appointment.slot_id)  # the finder offers it to the next
    CardClaim.objects.filter(appointment=appointment).delete()
    if notify:
        notifications.appointment_cancelled(appointment, now=now)
    else:
        notifications.withdraw_waiting(appointment)
    audit.record(
        "appointment.cancel",
        actor=user,
        role=role,
        subject=_subject(appointment, appointment.slot),
    )
    transaction.on_commit(APPOINTMENTS_CANCELLED.labels(by=by).inc)


def release_bookings_of_closing_account(*, user: User) -> list[int]:
    """Cancel every upcoming booked appointment of the user's patients and release the
    slot the account holds; return the ids of the appointments cancelled.

    For an account being deleted (rdv.accounts.privacy): each slot is freed exactly as by
    `cancel_appointment`, but the clinics' cut-offs do not apply, since nobody will be
    left to come, move or be reminded. Visits that have started are left to the clinic.
    Rows are locked in primary-key order, as every change of an appointment locks them.
    """
    now = clock.now()
    cancelled = []
    with transaction.atomic():
        ids = list(
            Appointment.objects.filter(
                patient__account=user, status=AppointmentStatus.BOOKED, slot__start__gt=now
            ).values_list("pk", flat=True)
        )
        locked = Appointment.objects.select_for_update().filter(
            pk__in=ids, status=AppointmentStatus.BOOKED
        )
        for appointment in locked.order_by("pk"):
            _cancel_locked(user, appointment, "", now, notify=False)
            cancelled.append(appointment.pk)
        _release_holds(Slot.objects.filter(hold_owner=user))
    return cancelled


def reschedule_appointment(*, user: User, appointment_id: int, new_slot_id: int) -> Appointment:
    """Move an appointment to another slot atomically.

    The new slot is taken and the old one freed in one transaction, or nothing changes.
    """
    now = clock.now()
    try:
        with transaction.atomic():
            appointment = _lock_changeable(user, appointment_id, now)
            if appointment.slot_id == new_slot_id:
                raise ValidationError(
                    _("Choose a different time from the current one."),
                    field="slot_id",
                    code="same_slot",
                )
            patient = appointment.patient
            new_slot = _visible_slot_for(patient, new_slot_id)
            _check_patient_fits(patient, new_slot)
            old_slot_id = appointment.slot_id
            list(
                Slot.objects.select_for_update()
                .filter(pk__in=[old_slot_id, new_slot.pk])
                .order_by("pk")
            )
            won = (
                Slot.objects.filter(pk=new_slot.pk)
                .filter(_takeable_by(user, now), _visible_to(patient, now))
                .update(status=SlotStatus.BOOKED, **NO_HOLD)
            )
            if won != 1:
                raise _explain_unavailable(new_slot.pk, now)
            Appointment.objects.filter(pk=appointment.pk).update(
                slot_id=new_slot.pk, updated_at=now
            )
            freed = Slot.objects.filter(pk=old_slot_id, status=SlotStatus.BOOKED).update(
                status=SlotStatus.FREE
            )
            if freed:
                finder_events.slot_freed(old_slot_id)  # the finder offers it to the next
            CardClaim.objects.filter(appointment=appointment).delete()
            _claim_card(appointment, patient, new_slot, now)
            appointment.slot = new_slot
            notifications.appointment_moved(appointment, now=now)
            audit.record(
                "appointment.move",
                actor=user,
                role=PATIENT_ROLE,
                subject=_subject(appointment, new_slot),
            )
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    appointment.refresh_from_db()
    return appointment


# --- One-click links (rdv.notifications.links) -------------------------------------------


def _linked(appointment_id: int, slot_id: int, *, lock: bool = False) -> Appointment:
    """The appointment a link names, if it is still at the time the link was made for."""
    found = Appointment.objects.select_related("slot__clinic", "slot__practitioner", "patient")
    if lock:
        found = found.select_for_update(of=("self",))
    appointment = found.filter(pk=appointment_id, slot_id=slot_id).first()
    if appointment is None:
        raise NotFound(_("This link does not work (any more)."), code="link_invalid")
    return appointment


def appointment_for_link(*, appointment_id: int, slot_id: int) -> Appointment:
    return _linked(appointment_id, slot_id)


def confirm_by_link(*, appointment_id: int, slot_id: int) -> Appointment:
    """The patient says they will come. Works once, and only before the visit."""
    now = clock.now()
    with transaction.atomic():
        appointment = _linked(appointment_id, slot_id, lock=True)
        if appointment.status != AppointmentStatus.BOOKED or appointment.slot.start <= now:
            raise Conflict(
                _("Only an upcoming booked appointment can be confirmed."), code="not_changeable"
            )
        if appointment.confirmed_at is not None:
            raise Conflict(_("This appointment is already confirmed."), code="already_confirmed")
        Appointment.objects.filter(pk=appointment.pk).update(confirmed_at=now, updated_at=now)
        audit.record(
            "appointment.confirm",
            actor=appointment.patient.account,
            role=LINK_ROLE,
            subject=_subject(appointment, appointment.slot),
        )
    appointment.refresh_from_db()
    return appointment


def cancel_by_link(*, appointment_id: int, slot_id: int) -> Appointment:
    """Cancel from a message's link: the same rules as from the pages (the clinic's
    cut-off), once."""
    now = clock.now()
    with transaction.atomic():
        appointment = _linked(appointment_id, slot_id, lock=True)
        if appointment.status != AppointmentStatus.BOOKED:
            raise Conflict(_("This appointment is already cancelled."), code="already_cancelled")
        _check_cutoff(appointment, now)
        _cancel_locked(appointment.patient.account, appointment, "", now, role=LINK_ROLE)
    appointment.refresh_from_db()
    return appointment


# --- The clinic's side: cancelling, and recording who came --------------------------------

# What staff may record once a visit is due, and from which status. A patient marked
# absent who turns up late can still be checked in; nothing goes back to "booked".
ATTENDANCE_FROM = {
    AppointmentStatus.ARRIVED: (AppointmentStatus.BOOKED, AppointmentStatus.NOSHOW),
    AppointmentStatus.FULFILLED: (AppointmentStatus.ARRIVED,),
    AppointmentStatus.NOSHOW: (AppointmentStatus.BOOKED,),
}
CLINIC_REASON_MAX = 500


def _lock_clinic_appointment(ctx: StaffContext, appointment_id: int) -> Appointment:
    """Lock one of the clinic's appointments (another clinic's: NotFound), in the lock
    order every change of an appointment follows: its row first."""
    clinic_appointment(ctx, appointment_id)
    appointment = Appointment.objects.select_for_update().get(pk=appointment_id)
    # Checked again under the lock: a patient may have moved it to another clinic's time
    # between the first read and the lock.
    if appointment.slot.clinic_id != ctx.clinic.pk:
        raise NotFound(_("Appointment not found."), code="appointment_not_found")
    return appointment


def cancel_for_clinic(ctx: StaffContext, *, appointment_id: int, reason: str) -> Appointment:
    """The clinic cancels a booked appointment, with a reason the patient is told.

    The patients' cut-off does not bind the clinic (it may have to cancel at the last
    minute), but a visit that is over is marked fulfilled or missed, never cancelled. The
    slot is offered again, as after a patient's cancellation; a practitioner who cannot
    work is recorded as a closure, which takes their free slots away.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            _("Give the reason for the cancellation: the patient is told."),
            field="reason",
            code="reason_required",
        )
    if len(reason) > CLINIC_REASON_MAX:
        raise ValidationError(
            _("The reason is too long (%(max)d characters at most).") % {"max": CLINIC_REASON_MAX},
            field="reason",
            code="reason_too_long",
        )
    now = clock.now()
    with transaction.atomic():
        appointment = _lock_clinic_appointment(ctx, appointment_id)
        if appointment.status != AppointmentStatus.BOOKED:
            raise Conflict(_("Only a booked appointment can be cancelled."), code="not_changeable")
        if appointment.slot.end <= now:
            raise Conflict(
                _("This visit is over: record whether the patient came instead."),
                code="visit_over",
            )
        _cancel_locked(ctx.user, appointment, reason, now, role=ctx.role, by=CancelledBy.CLINIC)
    appointment.refresh_from_db()
    return appointment


def move_for_clinic(ctx: StaffContext, *, appointment_id: int, new_slot_id: int) -> Appointment:
    """The front desk moves a booked appointment to another free time of the clinic (the
    doctor is away, the patient phoned): all of it in one transaction, or nothing.

    The new time may be any practitioner's and any type the clinic offers, reserved ones
    included (the clinic decides for its own patients), as long as it fits the patient (the
    0-5 years type) and is free, not held by anyone, and in the future. Like a clinic
    cancellation, the patients' cut-off does not bind the clinic, but a visit that is over
    stays where it was. Rows are locked in the one order every change follows (the
    appointment, then both slots by primary key); the new slot is won by compare-and-set,
    so of two moves onto one time exactly one wins and the other gets SlotUnavailable
    with nothing written. The old time is offered again (unless a closure now covers it
    or its practitioner stopped: then it is withdrawn), the health-card claim follows the
    new time and type, the patient gets the "moved" message (and new reminders), and the
    move is audited. The patient's confirmation was for the old time: it is cleared.
    """
    if ctx.role not in FRONT_DESK_ROLES:
        raise PermissionDenied(_("Only the front desk moves appointments."), code="role")
    now = clock.now()
    try:
        with transaction.atomic():
            appointment = _lock_clinic_appointment(ctx, appointment_id)
            old_slot = appointment.slot
            _check_clinic_movable(appointment, old_slot, new_slot_id, now)
            new_slot = _clinic_slot(ctx, new_slot_id)
            _check_patient_fits(appointment.patient, new_slot)
            list(
                Slot.objects.select_for_update()
                .filter(pk__in=[old_slot.pk, new_slot.pk])
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            won = (
                Slot.objects.filter(pk=new_slot.pk, clinic=ctx.clinic)
                .filter(_takeable_by(ctx.user, now))
                .update(status=SlotStatus.BOOKED, **NO_HOLD)
            )
            if won != 1:
                raise _explain_unavailable(new_slot.pk, now)
            Appointment.objects.filter(pk=appointment.pk).update(
                slot_id=new_slot.pk, updated_at=now, confirmed_at=None
            )
            _give_back(old_slot)
            CardClaim.objects.filter(appointment=appointment).delete()
            _claim_card(appointment, appointment.patient, new_slot, now)
            appointment.slot = new_slot
            notifications.appointment_moved(appointment, now=now)
            audit.record(
                "appointment.move",
                actor=ctx.user,
                role=ctx.role,
                subject=_subject(appointment, new_slot),
            )
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    appointment.refresh_from_db()
    return appointment


def _check_clinic_movable(
    appointment: Appointment, old_slot: Slot, new_slot_id: int, now: datetime
) -> None:
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(_("Only a booked appointment can be moved."), code="not_changeable")
    if old_slot.end <= now:
        raise Conflict(
            _("This visit is over: record whether the patient came instead."),
            code="visit_over",
        )
    if old_slot.pk == new_slot_id:
        raise ValidationError(
            _("Choose a different time from the current one."), field="slot_id", code="same_slot"
        )


def _clinic_slot(ctx: StaffContext, slot_id: int) -> Slot:
    """One of the clinic's offered slots, whatever its visibility (another clinic's, or a
    withdrawn one: NotFound)."""
    slot = (
        Slot.objects.select_related("clinic", "practitioner")
        .filter(pk=slot_id, clinic=ctx.clinic, practitioner__is_active=True)
        .exclude(status=SlotStatus.WITHDRAWN)
        .first()
    )
    if slot is None:
        raise NotFound(_("Slot not found."), code="slot_not_found")
    return slot


def _give_back(slot: Slot) -> None:
    """Free a booked slot whose appointment moved away, inside the caller's transaction
    (the slot row is locked). If it should no longer be offered (a closure covers it: the
    usual reason for moving; or its practitioner stopped), it is withdrawn instead, so
    patients cannot book the absent doctor's time before the next regeneration."""
    closed = (
        not Practitioner.objects.filter(pk=slot.practitioner_id, is_active=True).exists()
        or Closure.objects.filter(
            Q(practitioner_id=slot.practitioner_id)
            | Q(practitioner__isnull=True, clinic_id=slot.clinic_id),
            starts_at__lt=slot.end,
            ends_at__gt=slot.start,
        ).exists()
    )
    status = SlotStatus.WITHDRAWN if closed else SlotStatus.FREE
    changed = Slot.objects.filter(pk=slot.pk, status=SlotStatus.BOOKED).update(status=status)
    if changed and status == SlotStatus.FREE:
        finder_events.slot_freed(slot.pk)  # the finder offers it to the next


def record_attendance(ctx: StaffContext, *, appointment_id: int, status: str) -> Appointment:
    """Check a patient in (arrived), mark the visit done (fulfilled) or missed (no-show).

    Check-in opens on the visit's local day; "no-show" only once the visit has started.
    A no-show tells the patient (the missed-appointment notice); checking in a patient
    marked absent by mistake withdraws that notice if it has not gone out yet.
    """
    if status not in ATTENDANCE_FROM:
        raise ValidationError(
            _("Choose arrived, fulfilled or no-show."), field="status", code="invalid_status"
        )
    now = clock.now()
    with transaction.atomic():
        appointment = _lock_clinic_appointment(ctx, appointment_id)
        slot = appointment.slot
        if appointment.status not in ATTENDANCE_FROM[AppointmentStatus(status)]:
            raise Conflict(
                _("This appointment is %(current)s: it cannot be marked %(wanted)s.")
                % {
                    "current": AppointmentStatus(appointment.status).label,
                    "wanted": AppointmentStatus(status).label,
                },
                code="attendance_not_allowed",
            )
        visit_day = clock.local_date(slot.start)
        if status == AppointmentStatus.ARRIVED and now < clock.local_midnight(visit_day):
            raise Conflict(
                _("A patient can be checked in on the day of the visit only."),
                code="too_early",
            )
        if status == AppointmentStatus.NOSHOW and now < slot.start:
            raise Conflict(
                _("A patient can be marked absent once the visit has started."),
                code="too_early",
            )
        Appointment.objects.filter(pk=appointment.pk).update(status=status, updated_at=now)
        appointment.status = status
        if status == AppointmentStatus.NOSHOW:
            notifications.appointment_missed(appointment, now=now)
        elif status == AppointmentStatus.ARRIVED:
            notifications.withdraw_waiting(appointment, kinds=(Kind.MISSED,))
        audit.record(
            f"appointment.{status}",
            actor=ctx.user,
            role=ctx.role,
            subject=_subject(appointment, slot),
        )
    appointment.refresh_from_db()
    return appointment


# --- The clinic's weekly templates (clinic administrators) -------------------------------

SLOT_MINUTES_MIN = 5
SLOT_MINUTES_MAX = 480
# A reserved time may open to the public from 1 hour to 2 weeks before it starts (the
# rule's check constraint says the same).
RELEASE_HOURS_MIN = 1
RELEASE_HOURS_MAX = 336


def require_clinic_admin(ctx: StaffContext) -> None:
    """Practitioners and their schedules are the clinic administrators' to change."""
    if ctx.role != Membership.Role.CLINIC_ADMIN:
        raise PermissionDenied(
            _("Only the clinic's administrators can manage practitioners and their schedules."),
            code="role",
        )


def admin_practitioner(
    ctx: StaffContext, practitioner_id: int, *, lock: bool = False
) -> Practitioner:
    """One of the clinic's practitioners, for its administrator.

    Another clinic's practitioner is NotFound, exactly like a missing one, and the role is
    checked only after the lookup: a receptionist learns nothing about other clinics either.
    """
    found = Practitioner.objects.filter(pk=practitioner_id, clinic=ctx.clinic)
    if lock:
        found = found.select_for_update()
    practitioner = found.first()
    if practitioner is None:
        raise NotFound(_("Practitioner not found."), code="practitioner_not_found")
    require_clinic_admin(ctx)
    return practitioner


def regenerate_horizon(practitioner_id: int) -> GenerationResult:
    """Make the practitioner's free slots match their rules from today over the horizon."""
    first = clock.local_today()
    last = first + timedelta(days=settings.SLOT_HORIZON_DAYS - 1)
    return generate_slots(practitioner_id=practitioner_id, first_day=first, last_day=last)


@dataclass(frozen=True)
class WeeklyTime:
    weekday: int
    start_time: time
    end_time: time
    slot_minutes: int
    appointment_type: str
    visibility: str
    valid_from: date
    valid_until: date | None
    release_hours: int | None = None


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _check_weekly_time(practitioner: Practitioner, wanted: WeeklyTime) -> None:
    """Readable refusals for what the rule's check constraints would refuse, and more."""
    if not 0 <= wanted.weekday <= 6:
        raise ValidationError(_("Choose a day of the week."), field="weekday", code="weekday")
    if wanted.end_time <= wanted.start_time:
        raise ValidationError(
            _("The end must be after the start."), field="end_time", code="ends_before_start"
        )
    if not SLOT_MINUTES_MIN <= wanted.slot_minutes <= SLOT_MINUTES_MAX:
        raise ValidationError(
            _("An appointment lasts between %(min)d and %(max)d minutes.")
            % {"min": SLOT_MINUTES_MIN, "max": SLOT_MINUTES_MAX},
            field="slot_minutes",
            code="slot_minutes",
        )
    if _minutes(wanted.end_time) - _minutes(wanted.start_time) < wanted.slot_minutes:
        raise ValidationError(
            _("This period is shorter than one appointment."),
            field="slot_minutes",
            code="period_too_short",
        )
    if wanted.appointment_type not in AppointmentType.values:
        raise ValidationError(
            _("Choose a type of appointment from the list."),
            field="appointment_type",
            code="appointment_type",
        )
    if wanted.visibility not in Visibility.values:
        raise ValidationError(
            _("Choose who may book these times."), field="visibility", code="visibility"
        )
    if (
        wanted.visibility == Visibility.REGISTERED
        and practitioner.profession not in FAMILY_DOCTOR_PROFESSIONS
    ):
        raise ValidationError(
            _("Only family doctors and nurse practitioners have registered patients."),
            field="visibility",
            code="no_registered_patients",
        )
    _check_release(wanted.visibility, wanted.release_hours)
    if wanted.valid_until is not None and wanted.valid_until < wanted.valid_from:
        raise ValidationError(
            _("The last day cannot be before the first day."),
            field="valid_until",
            code="validity_order",
        )
    if wanted.valid_until is not None and wanted.valid_until < clock.local_today():
        raise ValidationError(
            _("The last day has already passed."), field="valid_until", code="validity_past"
        )


def _check_release(visibility: str, release_hours: int | None) -> None:
    """A release time only means something for reserved times, and lies in range."""
    if release_hours is None:
        return
    if visibility != Visibility.REGISTERED:
        raise ValidationError(
            _(
                "Only times reserved for registered patients can open to the public: "
                "leave this empty for times open to the public."
            ),
            field="release_hours",
            code="release_not_reserved",
        )
    if not RELEASE_HOURS_MIN <= release_hours <= RELEASE_HOURS_MAX:
        raise ValidationError(
            _("Choose between %(min)d and %(max)d hours (two weeks).")
            % {"min": RELEASE_HOURS_MIN, "max": RELEASE_HOURS_MAX},
            field="release_hours",
            code="release_hours",
        )


def _check_no_overlap(practitioner: Practitioner, wanted: WeeklyTime) -> None:
    """Two weekly times of one practitioner must not overlap: slot generation would
    silently drop the later slots, which nobody would understand."""
    same_day = AvailabilityRule.objects.filter(
        practitioner=practitioner,
        weekday=wanted.weekday,
        start_time__lt=wanted.end_time,
        end_time__gt=wanted.start_time,
    ).filter(Q(valid_until__isnull=True) | Q(valid_until__gte=wanted.valid_from))
    if wanted.valid_until is not None:
        same_day = same_day.filter(valid_from__lte=wanted.valid_until)
    other = same_day.order_by("start_time").first()
    if other is not None:
        raise Conflict(
            _("This overlaps another weekly time of this practitioner (%(start)s–%(end)s).")
            % {
                "start": other.start_time.strftime("%H:%M"),
                "end": other.end_time.strftime("%H:%M"),
            },
            code="rule_overlap",
        )


def _rule_subject(ctx: StaffContext, rule_id: int) -> audit.Subject:
    return audit.Subject(
        object_type="availability_rule", object_id=str(rule_id), clinic_id=ctx.clinic.pk
    )


def add_weekly_rule(
    ctx: StaffContext,
    practitioner_id: int,
    *,
    weekday: int,
    start_time: time,
    end_time: time,
    slot_minutes: int,
    appointment_type: str,
    visibility: str,
    valid_from: date,
    valid_until: date | None,
    release_hours: int | None = None,
) -> AvailabilityRule:
    """Add a weekly time to one of the clinic's practitioners and publish its slots.

    `release_hours` (reserved times only, 1 to 336): still free that long before they
    start, its slots open to the public.

    The rule is checked first (readable errors, 422; an overlap with another of their
    weekly times, 409), then saved and the practitioner's slots regenerated from today over
    SLOT_HORIZON_DAYS, all in one transaction with the audit entry: a refusal or a failure
    leaves nothing behind. The practitioner row is locked, so two administrators adding
    times at once cannot both pass the overlap check.
    """
    wanted = WeeklyTime(
        weekday=weekday,
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        appointment_type=appointment_type,
        visibility=visibility,
        valid_from=valid_from,
        valid_until=valid_until,
        release_hours=release_hours,
    )
    with transaction.atomic():
        practitioner = admin_practitioner(ctx, practitioner_id, lock=True)
        _check_weekly_time(practitioner, wanted)
        _check_no_overlap(practitioner, wanted)
        rule = AvailabilityRule.objects.create(practitioner=practitioner, **asdict(wanted))
        regenerate_horizon(practitioner.pk)
        audit.record(
            "availability_rule.add",
            actor=ctx.user,
            role=ctx.role,
            subject=_rule_subject(ctx, rule.pk),
        )
    return rule


def remove_weekly_rule(ctx: StaffContext, practitioner_id: int, rule_id: int) -> int:
    """Remove one of a practitioner's weekly times; return how many upcoming booked
    appointments at its times are kept.

    Its free slots are withdrawn (regenerated from today over the horizon, in the same
    transaction); booked slots stay, with their appointments, for the clinic to honour or
    cancel with a reason.
    """
    now = clock.now()
    not_found = NotFound(_("Weekly time not found."), code="rule_not_found")
    with transaction.atomic():
        # Another clinic's weekly time is not found, whatever the role (as in admin_practitioner).
        theirs = AvailabilityRule.objects.filter(
            pk=rule_id, practitioner_id=practitioner_id, practitioner__clinic=ctx.clinic
        )
        if not theirs.exists():
            raise not_found
        practitioner = admin_practitioner(ctx, practitioner_id, lock=True)
        rule = theirs.first()  # read again under the lock: it may have just been removed
        if rule is None:
            raise not_found
        kept = Slot.objects.filter(rule=rule, status=SlotStatus.BOOKED, start__gt=now).count()
        rule.delete()
        regenerate_horizon(practitioner.pk)
        audit.record(
            "availability_rule.remove",
            actor=ctx.user,
            role=ctx.role,
            subject=_rule_subject(ctx, rule_id),
        )
    return kept


def set_rule_release(
    ctx: StaffContext, practitioner_id: int, rule_id: int, *, release_hours: int | None
) -> AvailabilityRule:
    """Change when a reserved weekly time's free slots open to the public (None: never).

    In one transaction with its audit entry, the practitioner's slots are regenerated from
    today over the horizon: free, unheld future slots get the new release time (replaced);
    booked and held ones are left exactly as they are. Another clinic's weekly time is
    NotFound, whatever the role.
    """
    not_found = NotFound(_("Weekly time not found."), code="rule_not_found")
    theirs = AvailabilityRule.objects.filter(
        pk=rule_id, practitioner_id=practitioner_id, practitioner__clinic=ctx.clinic
    )
    with transaction.atomic():
        if not theirs.exists():
            raise not_found
        practitioner = admin_practitioner(ctx, practitioner_id, lock=True)
        rule = theirs.first()  # read again under the lock
        if rule is None:
            raise not_found
        _check_release(rule.visibility, release_hours)
        if rule.release_hours != release_hours:
            AvailabilityRule.objects.filter(pk=rule.pk).update(release_hours=release_hours)
            rule.release_hours = release_hours
            regenerate_horizon(practitioner.pk)
            audit.record(
                "availability_rule.change",
                actor=ctx.user,
                role=ctx.role,
                subject=_rule_subject(ctx, rule.pk),
            )
    return rule


# --- The front desk books for a patient who phones ----------------------------------------


def book_for_caller(
    ctx: StaffContext, *, patient_id: int, slot_id: int, reason: str = ""
) -> Appointment:
    """Book one of the clinic's free times for a patient who phoned (found by their health
    insurance number), exactly as they would online: the same compare-and-set, the same
    one-upcoming-per-card rule, the same confirmation to their account; only the booker
    (this staff member) differs. A time reserved for another doctor's registered patients
    stays theirs. The patient may also be one of this clinic's own files of callers
    without an account (never another clinic's: NotFound): no account to lock, their
    messages go by text to the file's phone, and without a card no card claim applies."""
    if ctx.role not in FRONT_DESK_ROLES:
        raise PermissionDenied(_("Only the front desk books for patients."), code="role")
    patient = (
        Patient.objects.select_related("account")
        .filter(reachable_by(ctx.clinic), pk=patient_id, archived_at__isnull=True)
        .first()
    )
    slot = (
        Slot.objects.select_related("clinic", "practitioner")
        .filter(pk=slot_id, clinic=ctx.clinic, practitioner__is_active=True)
        .exclude(status=SlotStatus.WITHDRAWN)
        .first()
    )
    if patient is None or slot is None:
        raise NotFound(_("Slot not found."), code="slot_not_found")
    if not _may_see(patient, slot, clock.now()):
        raise Conflict(
            _("This time is reserved for the practitioner's registered patients."),
            code="slot_reserved",
        )
    _check_patient_fits(patient, slot)
    now = clock.now()
    try:
        with transaction.atomic():
            if patient.account is not None:
                _lock_booker(patient.account)
            return _take(ctx.user, patient, slot, reason, now, role=ctx.role)
    except IntegrityError as exc:
        raise SlotUnavailable() from exc


# --- The appointment finder books for a request (rdv.finder.engine) ----------------------

FINDER_ROLE = "finder"


def book_for_finder(
    *, account: User, patient: Patient, slot_id: int, holder_key: str | None = None
) -> Appointment:
    """Book a slot for a finder request, inside the caller's transaction (a savepoint: on
    any refusal nothing of it stays). The same compare-and-set as `_take`, except that
    only slots open to the public count (never a reserved slot not yet released, even the
    patient's own doctor's: the finder serves the public queue) and the slot may be held
    by the request's own offer (`holder_key`, "offer:<id>"). Same card claim (Conflict
    card_already_booked), confirmation and reminders, and audit entry (role "finder").
    Raises SlotUnavailable if someone was first, PermissionDenied if the account closed."""
    now = clock.now()
    slot = (
        Slot.objects.select_related("clinic", "practitioner")
        .filter(pk=slot_id, clinic__is_active=True, practitioner__is_active=True)
        .first()
    )
    if slot is None:
        raise SlotUnavailable()
    _check_patient_fits(patient, slot)
    unheld = Q(hold_expires_at__isnull=True) | Q(hold_expires_at__lte=now)
    if holder_key is not None:
        unheld |= Q(hold_visitor=holder_key)
    try:
        with transaction.atomic():
            _lock_booker(account)
            won = (
                Slot.objects.filter(pk=slot.pk, status=SlotStatus.FREE, start__gt=now)
                .filter(unheld, open_to_public(now))
                .update(status=SlotStatus.BOOKED, **NO_HOLD)
            )
            if won != 1:
                raise _explain_unavailable(slot.pk, now)
            appointment = _record_booking(account, patient, slot, "", now, role=FINDER_ROLE)
    except IntegrityError as exc:
        raise SlotUnavailable() from exc
    return appointment


# --- Closures: days off, vacations, statutory holidays (clinic administrators) -----------

CLOSURE_REASON_MAX = 200
CLOSURE_DAYS_MAX = 366


def _lock_practitioners(ctx: StaffContext) -> list[int]:
    """Lock every practitioner row of the clinic, in primary-key order, before anything else
    of a whole-clinic change: slot generation locks a practitioner and then its clinic, so
    locking them one by one while holding the clinic could deadlock with another
    administrator changing one practitioner."""
    found = ctx.clinic.practitioners.select_for_update().order_by("pk")
    return list(found.values_list("pk", flat=True))


def _regenerate(practitioner_ids: list[int]) -> None:
    for pk in practitioner_ids:
        regenerate_horizon(pk)


def _closure_subject(ctx: StaffContext, closure_id: int) -> audit.Subject:
    return audit.Subject(object_type="closure", object_id=str(closure_id), clinic_id=ctx.clinic.pk)


def _check_closure(first_day: date, last_day: date, reason: str) -> str:
    """Readable refusals; the reason with its spaces tidied."""
    if last_day < first_day:
        raise ValidationError(
            _("The last day cannot be before the first day."),
            field="last_day",
            code="closure_order",
        )
    if last_day < clock.local_today():
        raise ValidationError(
            _("This closure is entirely in the past."), field="last_day", code="closure_past"
        )
    if (last_day - first_day).days + 1 > CLOSURE_DAYS_MAX:
        raise ValidationError(
            _("A closure lasts at most %(days)d days.") % {"days": CLOSURE_DAYS_MAX},
            field="last_day",
            code="closure_too_long",
        )
    cleaned = " ".join(reason.split())
    if len(cleaned) > CLOSURE_REASON_MAX:
        raise ValidationError(
            _("The reason has at most %(max)d characters.") % {"max": CLOSURE_REASON_MAX},
            field="reason",
            code="reason_too_long",
        )
    return cleaned


def _booked_inside(closure: Closure) -> int:
    """Upcoming booked appointments during the closure: generation never removes them."""
    inside = Appointment.objects.filter(
        slot__clinic_id=closure.clinic_id,
        status=AppointmentStatus.BOOKED,
        slot__start__lt=closure.ends_at,
        slot__end__gt=closure.starts_at,
        slot__start__gt=clock.now(),
    )
    if closure.practitioner_id is not None:
        inside = inside.filter(slot__practitioner_id=closure.practitioner_id)
    return inside.count()


def clinic_closures(ctx: StaffContext) -> list[Closure]:
    """The clinic's closures not yet over, soonest first (administrators only)."""
    require_clinic_admin(ctx)
    return list(
        Closure.objects.filter(clinic=ctx.clinic, ends_at__gt=clock.now())
        .select_related("practitioner")
        .order_by("starts_at", "pk")
    )


def add_closure(
    ctx: StaffContext,
    *,
    practitioner_id: int | None,
    first_day: date,
    last_day: date,
    reason: str,
) -> tuple[Closure, int]:
    """Close whole local days, first_day 00:00 to the day after last_day 00:00, for one of
    the clinic's practitioners or (None) the whole clinic; return the closure and how many
    upcoming booked appointments fall inside it.

    In one transaction with its audit entry, the practitioners concerned have their slots
    regenerated from today over SLOT_HORIZON_DAYS: free slots inside the closure go at once,
    booked ones stay for the clinic to honour or cancel with a reason. Another clinic's
    practitioner is NotFound before the role is checked (as for weekly times).
    """
    with transaction.atomic():
        if practitioner_id is not None:
            practitioner: Practitioner | None = admin_practitioner(ctx, practitioner_id, lock=True)
            concerned = [practitioner_id]
        else:
            practitioner = None
            require_clinic_admin(ctx)
            concerned = _lock_practitioners(ctx)
        cleaned = _check_closure(first_day, last_day, reason)
        starts_at, ends_at = clock.local_day_bounds(first_day, last_day)
        closure = Closure.objects.create(
            clinic=ctx.clinic,
            practitioner=practitioner,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=cleaned,
        )
        _regenerate(concerned)
        audit.record(
            "closure.add", actor=ctx.user, role=ctx.role, subject=_closure_subject(ctx, closure.pk)
        )
        booked = _booked_inside(closure)
    return closure, booked


def remove_closure(ctx: StaffContext, closure_id: int) -> None:
    """Reopen: remove one of the clinic's closures and publish the weekly times it hid again
    (regenerated in the same transaction). Another clinic's closure is NotFound, whatever
    the role."""
    with transaction.atomic():
        closure = (
            Closure.objects.select_for_update().filter(pk=closure_id, clinic=ctx.clinic).first()
        )
        if closure is None:
            raise NotFound(_("Closure not found."), code="closure_not_found")
        require_clinic_admin(ctx)
        if closure.practitioner_id is not None:
            concerned = [closure.practitioner_id]
        else:
            concerned = _lock_practitioners(ctx)
        closure.delete()
        _regenerate(concerned)
        audit.record(
            "closure.remove",
            actor=ctx.user,
            role=ctx.role,
            subject=_closure_subject(ctx, closure_id),
        )


def statutory_holiday_years() -> list[int]:
    """The years whose statutory holidays a clinic may close on: this one and the next."""
    this_year = clock.local_today().year
    return [this_year, this_year + 1]


def quebec_statutory_holidays(year: int) -> list[tuple[date, str]]:
    """Quebec's statutory holidays of the year (python-holidays, CA/QC, with the days they
    are observed on), named in French when the active language is French."""
    language = "fr" if (get_language() or "").startswith("fr") else "en_CA"
    found = holidays.country_holidays("CA", subdiv="QC", years=year, language=language)
    return sorted((day, str(name)[:CLOSURE_REASON_MAX]) for day, name in found.items())


def _clinic_closed(ctx: StaffContext, starts_at: datetime, ends_at: datetime) -> bool:
    """Whether one whole-clinic closure already covers this whole period."""
    return Closure.objects.filter(
        clinic=ctx.clinic, practitioner__isnull=True, starts_at__lte=starts_at, ends_at__gte=ends_at
    ).exists()


def add_statutory_holidays(ctx: StaffContext, year: int) -> int:
    """Close the whole clinic on each of Quebec's statutory holidays of the year that is
    today or later and not already closed; return how many closures were added.

    Idempotent: a second call adds none. The clinic row is locked (after its practitioners,
    in the order slot generation takes them), so two administrators asking at once cannot
    both add the same day. One audit entry per closure; slots
    regenerated once, in the same transaction.
    """
    require_clinic_admin(ctx)
    if year not in statutory_holiday_years():
        raise ValidationError(_("Choose this year or next year."), field="year", code="year")
    today = clock.local_today()
    added: list[Closure] = []
    with transaction.atomic():
        concerned = _lock_practitioners(ctx)
        list(Clinic.objects.select_for_update().filter(pk=ctx.clinic.pk))  # one at a time
        for day, name in quebec_statutory_holidays(year):
            starts_at, ends_at = clock.local_day_bounds(day, day)
            if day < today or _clinic_closed(ctx, starts_at, ends_at):
                continue
            added.append(
                Closure.objects.create(
                    clinic=ctx.clinic, starts_at=starts_at, ends_at=ends_at, reason=name
                )
            )
        if added:
            _regenerate(concerned)
        for closure in added:
            audit.record(
                "closure.add",
                actor=ctx.user,
                role=ctx.role,
                subject=_closure_subject(ctx, closure.pk),
            )
    return len(added)
