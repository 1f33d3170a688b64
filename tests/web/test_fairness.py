"""The finder's fairness report in the portal (rdv.finder.report, /clinique/<id>/equite/):
Laval's front desk read how the finder gave Laval's times, a practitioner may not, Karim
(Montréal) and patients find nothing. The decisions are written here as the engine
records them; the report must show them as evidence: public share, passed-over check
computed from the requests' filing times, outcomes, CSV guarded against formulas."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.finder.models import FinderRequest, MatchDecision, Mode, Outcome, RequestStatus, Trigger
from rdv.patients.models import Patient
from rdv.scheduling import services
from rdv.scheduling.models import Slot
from tests.conftest import NOW, Cast, local, make_slot, portal_client
from tests.factories import UserFactory


def page_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/equite/"


def csv_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/equite.csv"


def a_request(patient: Patient, filed_at: datetime, **extra: Any) -> FinderRequest:
    fields: dict[str, Any] = {
        "account": patient.account,
        "patient": patient,
        "mode": Mode.OFFER,
        "status": RequestStatus.OPEN,
        "appointment_type": "periodic",
        "place_label": "Laval",
        "latitude": 45.57,
        "longitude": -73.69,
        "radius_km": 25,
        "earliest_date": date(2026, 11, 23),
        "latest_date": date(2026, 12, 6),
        "deadline": NOW + timedelta(days=10),
        "created_at": filed_at - timedelta(minutes=1),
        "filed_at": filed_at,
    }
    fields.update(extra)
    return FinderRequest.objects.create(**fields)


def decide(
    slot: Slot,
    outcome: str,
    *,
    eligible: list[FinderRequest] = (),  # type: ignore[assignment]
    winner: FinderRequest | None = None,
    reason: str = "",
    at: datetime = NOW,
    public: bool = True,
    refused: list[FinderRequest] = (),  # type: ignore[assignment]
) -> MatchDecision:
    return MatchDecision.objects.create(
        slot=slot,
        clinic=slot.clinic,
        slot_start=slot.start,
        slot_public=public,
        trigger=Trigger.FREED,
        decided_at=at,
        eligible=[r.pk for r in eligible],
        eligible_count=len(eligible),
        winner=winner,
        outcome=outcome,
        reason=reason,
        refused=[[r.pk, "card_claimed"] for r in refused],
    )


@pytest.fixture
def decisions(cast: Cast) -> dict[str, Any]:
    """Three Laval decisions today: a time offered to Paul's earlier request over
    Marie's, one booked for Marie (her appointment), one taken first by the public; and a
    Montréal decision that must not show."""
    paul_first = a_request(cast.paul_self, NOW - timedelta(days=2))
    marie_second = a_request(cast.marie_self, NOW - timedelta(days=1), mode=Mode.BOOK)
    offered = make_slot(cast.dr_roy, local(2026, 11, 25, 9))
    booked = make_slot(cast.nurse_diane, local(2026, 11, 25, 10))
    taken = make_slot(cast.dr_roy, local(2026, 11, 25, 11))
    decide(
        offered,
        Outcome.OFFERED,
        eligible=[paul_first, marie_second],
        winner=paul_first,
        reason="earliest_filed",
    )
    appointment = services.book_appointment(user=cast.marie, slot_id=booked.pk)
    FinderRequest.objects.filter(pk=marie_second.pk).update(
        status=RequestStatus.BOOKED, appointment=appointment, closed_at=NOW
    )
    decide(
        booked,
        Outcome.BOOKED,
        eligible=[marie_second],
        winner=marie_second,
        reason="earliest_filed",
        at=NOW + timedelta(minutes=5),
    )
    decide(taken, Outcome.TAKEN, eligible=[paul_first], reason="slot_taken")
    montreal = make_slot(cast.montreal_doctor, local(2026, 11, 25, 9))
    decide(montreal, Outcome.NO_REQUEST, reason="secret-of-b")
    return {"paul": paul_first, "marie": marie_second, "offered": offered}


@pytest.fixture
def practitioner_member(cast: Cast) -> Any:
    user = UserFactory.create(email="roy@example.test")
    Membership.objects.create(
        user=user, clinic=cast.laval, role=Membership.Role.PRACTITIONER, practitioner=cast.dr_roy
    )
    return user


@pytest.mark.parametrize("who", ["marc", "sophie"])
def test_the_front_desk_reads_the_fairness_of_the_last_30_days(
    cast: Cast, decisions: dict[str, Any], who: str
) -> None:
    before = AuditEntry.objects.count()
    response = portal_client(getattr(cast, who)).get(page_url(cast))
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.decisions, report.slots_decided, report.given) == (3, 3, 2)
    assert (report.given_public, report.public_percent) == (2, 100.0)
    assert (report.booked_via_finder, report.taken_by_public) == (1, 1)
    assert (report.eligible_total, report.eligible_max) == (4, 2)
    assert report.passed_over_total == 0
    ranks = {g.winner_id: g.winner_rank for g in report.given_slots}
    assert ranks == {decisions["paul"].pk: 1, decisions["marie"].pk: 1}
    assert [(o.outcome, o.reason, o.count) for o in report.outcomes] == [
        ("booked", "earliest_filed", 1),
        ("offered", "earliest_filed", 1),
        ("taken", "slot_taken", 1),
    ]
    page = response.content.decode()
    assert "100.0 %" in page
    assert "Earlier-filed requests passed over" in page
    for secret in ("Marie", "Paul", "secret-of-b"):
        assert secret not in page  # no patient, nothing of Montréal
    assert "no-store" in response["Cache-Control"]
    assert AuditEntry.objects.count() == before  # no patient data: not an audited read


def test_the_page_speaks_french(cast: Cast, decisions: dict[str, Any]) -> None:
    response = portal_client(cast.marc, language="fr").get(page_url(cast))
    assert response.status_code == 200
    assert '<html lang="fr-CA">' in response.content.decode()


def test_a_later_filed_winner_shows_as_passing_over_an_earlier_request(
    cast: Cast, decisions: dict[str, Any]
) -> None:
    """Evidence, not trust: the engine's list puts Marie first, but Paul was filed
    earlier and got nothing; the report reads the filing times and counts him."""
    slot = make_slot(cast.dr_roy, local(2026, 11, 26, 9))
    decide(
        slot,
        Outcome.OFFERED,
        eligible=[decisions["marie"], decisions["paul"]],
        winner=decisions["marie"],
    )
    report = portal_client(cast.marc).get(page_url(cast)).context["report"]
    assert report.passed_over_total == 1
    (row,) = [g for g in report.given_slots if g.slot_start == slot.start]
    assert (row.passed_over, row.winner_rank) == ((decisions["paul"].pk,), 1)


def test_an_earlier_request_recorded_as_unable_to_take_the_slot_is_not_passed_over(
    cast: Cast, decisions: dict[str, Any]
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 26, 9))
    eligible = [decisions["paul"], decisions["marie"]]
    decide(
        slot,
        Outcome.WINNER_REFUSED,
        eligible=eligible,
        winner=decisions["paul"],
        reason="card_claimed",
    )
    decide(
        slot,
        Outcome.OFFERED,
        eligible=eligible,
        winner=decisions["marie"],
        at=NOW + timedelta(seconds=1),
    )
    report = portal_client(cast.marc).get(page_url(cast)).context["report"]
    assert report.passed_over_total == 0
    (row,) = [g for g in report.given_slots if g.slot_start == slot.start]
    assert row.winner_rank == 2


def test_requests_the_engine_tried_first_are_not_passed_over(
    cast: Cast, decisions: dict[str, Any]
) -> None:
    """The engine's own record of "the earlier ones could not take it": the requests it
    names as refused are excused, one filed earlier but not refused is not."""
    late = a_request(cast.lea, NOW - timedelta(hours=1))
    slot = make_slot(cast.dr_roy, local(2026, 11, 26, 9))
    decide(
        slot,
        Outcome.OFFERED,
        eligible=[decisions["paul"], late, decisions["marie"]],
        winner=late,
        reason="earlier_refused:card_claimed",
        refused=[decisions["paul"]],
    )
    report = portal_client(cast.marc).get(page_url(cast)).context["report"]
    (row,) = [g for g in report.given_slots if g.slot_start == slot.start]
    assert (row.winner_rank, row.passed_over) == (2, (decisions["marie"].pk,))


def test_a_chosen_period_leaves_out_other_days(cast: Cast, decisions: dict[str, Any]) -> None:
    response = portal_client(cast.sophie).get(
        page_url(cast), {"from": "2026-11-01", "to": "2026-11-22"}
    )
    assert response.status_code == 200
    assert response.context["report"].decisions == 0
    assert "made no decision" in response.content.decode()


def test_the_csv_repeats_the_report_with_formulas_guarded(
    cast: Cast, decisions: dict[str, Any]
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 26, 9))
    decide(slot, Outcome.NO_REQUEST, reason="=HYPERLINK(1)")
    response = portal_client(cast.marc).get(
        csv_url(cast), {"from": "2026-11-23", "to": "2026-11-23"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="clinique-' in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    summary = {row[0]: row[1] for row in rows[1:12]}
    assert summary["slots given (offered or booked)"] == "2"
    assert summary["given slots open to the public when given (%)"] == "100.0"
    assert summary["earlier-filed requests passed over"] == "0"
    assert ["No request fits", "'=HYPERLINK(1)", "1"] in rows
    assert "Paul" not in text
    assert "Marie" not in text


def test_a_practitioner_may_not_read_the_report(cast: Cast, practitioner_member: Any) -> None:
    client = portal_client(practitioner_member)
    assert client.get(page_url(cast)).status_code == 403
    assert client.get(csv_url(cast)).status_code == 403


def test_another_clinics_staff_and_patients_find_nothing(
    cast: Cast, decisions: dict[str, Any]
) -> None:
    for client in (portal_client(cast.karim), portal_client(cast.marie)):
        for url in (page_url(cast), csv_url(cast)):
            response = client.get(url)
            assert response.status_code == 404, url
            assert cast.laval.name.encode() not in response.content


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-13-45"}, "Enter the date as YYYY-MM-DD"),
        ({"from": "2026-11-23", "to": "2026-11-01"}, "The last day must not be before the first"),
        ({"from": "2025-01-01", "to": "2026-11-23"}, "Choose a period of at most 366 days."),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "Choose a date from five years ago"),
    ],
)
def test_a_bad_period_is_a_form_error(cast: Cast, query: dict[str, str], message: str) -> None:
    client = portal_client(cast.marc)
    for url in (page_url(cast), csv_url(cast)):
        response = client.get(url, query)
        assert response.status_code == 422
        assert message in response.content.decode()
        assert response.context["report"] is None
