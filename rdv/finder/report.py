"""The finder's fairness report for one clinic and a period of local days, read from the
engine's MatchDecision records.

It is evidence, not a restatement of the engine: the "passed over" check re-reads each
eligible request's filing time from FinderRequest and asks whether one filed before the
winner (and not shown to have been unable to take the slot) was left without it. The
share of given slots that were public when given is computed from the record too, even
though a CHECK constraint makes it 100 %: the report shows that it is.

No patient is named: requests appear by id and by their rank in the serving order, so
reading the report is not an audited read of patient data.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from django.utils.translation import gettext as _

from rdv.clinics.exports import spreadsheet_text
from rdv.clinics.queries import StaffContext
from rdv.clinics.stats import check_period
from rdv.core import clock
from rdv.finder.models import FinderRequest, MatchDecision, Outcome, Trigger

GIVEN = (Outcome.OFFERED, Outcome.BOOKED)
# The page lists the most recent given slots; the CSV has them all.
PAGE_ROWS = 200


@dataclass(frozen=True)
class GivenSlot:
    """One decision that gave a slot (offered or booked) to a request."""

    decision_id: int
    decided_at: datetime
    slot_start: datetime
    trigger: str
    outcome: str
    reason: str
    slot_public: bool
    eligible_count: int
    winner_id: int | None
    # 1 = the first in serving order; None if the winner is missing from the record.
    winner_rank: int | None
    # Requests filed before the winner, eligible for this slot, that did not get it and
    # were not recorded as unable to take it. Should always be 0.
    passed_over: tuple[int, ...]
    booked_by_finder: bool


@dataclass(frozen=True)
class OutcomeCount:
    outcome: str
    label: str
    reason: str
    count: int


@dataclass(frozen=True)
class FairnessReport:
    first_day: date
    last_day: date
    decisions: int
    slots_decided: int
    given: int
    given_public: int
    booked_via_finder: int
    taken_by_public: int
    eligible_total: int
    eligible_max: int
    outcomes: list[OutcomeCount]
    given_slots: list[GivenSlot]

    @property
    def public_percent(self) -> float | None:
        """Share of given slots that were open to the public when given (None: none given)."""
        return 100 * self.given_public / self.given if self.given else None

    @property
    def eligible_mean(self) -> float | None:
        return self.eligible_total / self.decisions if self.decisions else None

    @property
    def passed_over_total(self) -> int:
        return sum(len(g.passed_over) for g in self.given_slots)

    @property
    def shown_slots(self) -> list[GivenSlot]:
        return self.given_slots[:PAGE_ROWS]


def _ids(value: object) -> list[int]:
    """The eligible list as stored (JSON): ids, earliest filed first; junk ignored."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _refusals(decisions: list[MatchDecision]) -> dict[int, list[tuple[datetime, int]]]:
    """Per slot, (when, request) of every recorded "the first request could not take it"."""
    slot_ids = {d.slot_id for d in decisions if d.slot_id is not None}
    found: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    rows = MatchDecision.objects.filter(
        slot_id__in=slot_ids, outcome=Outcome.WINNER_REFUSED, winner__isnull=False
    ).values_list("slot_id", "decided_at", "winner_id")
    for slot_id, decided_at, winner_id in rows:
        found[slot_id].append((decided_at, winner_id))
    return found


def _passed_over(
    decision: MatchDecision,
    order: dict[int, tuple[datetime, int]],
    refused: list[tuple[datetime, int]],
) -> tuple[int, ...]:
    winner = decision.winner_id
    if winner is None or winner not in order:
        return ()
    excused = {request for at, request in refused if at <= decision.decided_at}
    eligible = _ids(decision.eligible)
    # Each request the engine tried before the winner and that could not take the slot
    # is named in the decision (with why). One filed earlier but neither refused nor the
    # winner is still counted: that is what this check exists to catch.
    excused.update(
        _ids([entry[0] for entry in decision.refused if isinstance(entry, list) and entry])
    )
    winner_key = order[winner]
    return tuple(
        request
        for request in eligible
        if request != winner
        and request in order
        and order[request] < winner_key
        and request not in excused
    )


def _given_slots(decisions: list[MatchDecision]) -> list[GivenSlot]:
    given = [d for d in decisions if d.outcome in GIVEN]
    request_ids = {i for d in given for i in _ids(d.eligible)} | {
        d.winner_id for d in given if d.winner_id is not None
    }
    # Serving order from the requests themselves, not from the engine's list.
    order: dict[int, tuple[datetime, int]] = {}
    for pk, filed_at in FinderRequest.objects.filter(
        pk__in=request_ids, filed_at__isnull=False
    ).values_list("pk", "filed_at"):
        if filed_at is not None:
            order[pk] = (filed_at, pk)
    booked = set(
        FinderRequest.objects.filter(
            pk__in={d.winner_id for d in given}, appointment__slot_id__isnull=False
        ).values_list("pk", "appointment__slot_id")
    )
    refusals = _refusals(given)
    rows = []
    for d in given:
        eligible = _ids(d.eligible)
        rank = eligible.index(d.winner_id) + 1 if d.winner_id in eligible else None
        refused = refusals.get(d.slot_id, []) if d.slot_id is not None else []
        rows.append(
            GivenSlot(
                decision_id=d.pk,
                decided_at=d.decided_at,
                slot_start=d.slot_start,
                trigger=str(Trigger(d.trigger).label) if d.trigger in Trigger else d.trigger,
                outcome=d.outcome,
                reason=d.reason,
                slot_public=d.slot_public,
                eligible_count=d.eligible_count,
                winner_id=d.winner_id,
                winner_rank=rank,
                passed_over=_passed_over(d, order, refused),
                booked_by_finder=(d.winner_id, d.slot_id) in booked,
            )
        )
    rows.sort(key=lambda g: (g.decided_at, g.decision_id), reverse=True)
    return rows


def _outcomes(decisions: list[MatchDecision]) -> list[OutcomeCount]:
    counts = Counter((d.outcome, d.reason) for d in decisions)
    labels = dict(Outcome.choices)
    return [
        OutcomeCount(outcome, str(labels.get(outcome, outcome)), reason, count)
        for (outcome, reason), count in sorted(counts.items())
    ]


def fairness_report(ctx: StaffContext, *, first_day: date, last_day: date) -> FairnessReport:
    """The clinic's finder decisions made on the local days first_day..last_day (the
    period rules are the statistics page's: ValidationError naming the field)."""
    check_period(first_day, last_day)
    start, end = clock.local_day_bounds(first_day, last_day)
    decisions = list(
        MatchDecision.objects.filter(
            clinic=ctx.clinic, decided_at__gte=start, decided_at__lt=end
        ).order_by("decided_at", "pk")
    )
    given = _given_slots(decisions)
    return FairnessReport(
        first_day=first_day,
        last_day=last_day,
        decisions=len(decisions),
        slots_decided=len({d.slot_id if d.slot_id else -d.pk for d in decisions}),
        given=len(given),
        given_public=sum(1 for g in given if g.slot_public),
        booked_via_finder=len({g.decision_id for g in given if g.booked_by_finder}),
        taken_by_public=sum(1 for d in decisions if d.outcome == Outcome.TAKEN),
        eligible_total=sum(d.eligible_count for d in decisions),
        eligible_max=max((d.eligible_count for d in decisions), default=0),
        outcomes=_outcomes(decisions),
        given_slots=given,
    )


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def fairness_csv(report: FairnessReport) -> str:
    """The report as CSV (RFC 4180, UTF-8 with a byte-order mark for Excel): the summary
    as name/value rows, the outcomes, then one row per given slot. Text cells are guarded
    against being read as spreadsheet formulas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    text = spreadsheet_text
    writer.writerow([_("figure"), _("value")])
    for name, value in (
        (_("first day"), report.first_day.isoformat()),
        (_("last day"), report.last_day.isoformat()),
        (_("decisions"), report.decisions),
        (_("slots decided"), report.slots_decided),
        (_("slots given (offered or booked)"), report.given),
        (_("given slots open to the public when given (%)"), _percent(report.public_percent)),
        (_("given slots booked through the finder"), report.booked_via_finder),
        (_("slots taken first by someone else"), report.taken_by_public),
        (_("eligible requests, total"), report.eligible_total),
        (_("eligible requests, most for one slot"), report.eligible_max),
        (_("earlier-filed requests passed over"), report.passed_over_total),
    ):
        writer.writerow([text(str(name)), value])
    writer.writerow([])
    writer.writerow([_("outcome"), _("reason"), _("decisions")])
    for row in report.outcomes:
        writer.writerow([text(row.label), text(row.reason), row.count])
    writer.writerow([])
    writer.writerow(
        [
            _("decision"),
            _("decided at"),
            _("slot start"),
            _("trigger"),
            _("outcome"),
            _("reason"),
            _("open to the public"),
            _("eligible requests"),
            _("winning request"),
            _("winner's rank"),
            _("booked through the finder"),
            _("earlier-filed requests passed over"),
        ]
    )
    for g in report.given_slots:
        writer.writerow(
            [
                g.decision_id,
                g.decided_at.astimezone(clock.LOCAL_TZ).isoformat(timespec="minutes"),
                g.slot_start.astimezone(clock.LOCAL_TZ).isoformat(timespec="minutes"),
                text(g.trigger),
                text(g.outcome),
                text(g.reason),
                _("yes") if g.slot_public else _("no"),
                g.eligible_count,
                g.winner_id or "",
                g.winner_rank or "",
                _("yes") if g.booked_by_finder else _("no"),
                len(g.passed_over),
            ]
        )
    return "\ufeff" + out.getvalue()
