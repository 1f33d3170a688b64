"""Reserved times that open to the public when still free N hours before they start.

Dr Roy (Marie's family doctor; Paul has none) keeps Wednesdays 09:00-10:00 for his
registered patients, open to everyone 24 hours before if still free. The clock stands at
Monday 2026-11-23 08:00: the Wednesday 09:00 slot opens on Tuesday at 09:00.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta

import pytest

from rdv.accounts.models import User
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, ValidationError
from rdv.scheduling import services
from rdv.scheduling.models import AvailabilityRule, Slot, SlotStatus, Visibility
from rdv.scheduling.queries import clinic_free_slots_for, search_availability, visible_slot
from rdv.scheduling.rules import RuleSpec, expand_rules
from rdv.scheduling.search import SearchRequest, availability_query
from tests.conftest import Api, Cast, local, portal_client

WEDNESDAY_9 = local(2026, 11, 25, 9, 0)
WEDNESDAY_930 = local(2026, 11, 25, 9, 30)
OPENS = local(2026, 11, 24, 9, 0)  # 24 hours before Wednesday 09:00


def reserved_wednesdays(cast: Cast, release_hours: int | None = 24) -> AvailabilityRule:
    """Added by Marc through the real service: its slots are published at once."""
    return services.add_weekly_rule(
        staff_context(cast.marc, cast.laval.pk),
        cast.dr_roy.pk,
        weekday=2,
        start_time=time(9),
        end_time=time(10),
        slot_minutes=30,
        appointment_type="periodic",
        visibility=Visibility.REGISTERED,
        valid_from=date(2026, 11, 23),
        valid_until=date(2026, 11, 25),
        release_hours=release_hours,
    )


def slot_at(start: datetime) -> Slot:
    return Slot.objects.exclude(status=SlotStatus.WITHDRAWN).get(start=start)


def found_starts(user: User | None) -> list[datetime]:
    request = SearchRequest(near="Laval", date_from=date(2026, 11, 25), date_to=date(2026, 11, 25))
    page = search_availability(availability_query(request, user))
    return [r.start for r in page.results]


# --- Materialisation --------------------------------------------------------------------


def test_reserved_slots_get_their_release_time(cast: Cast) -> None:
    reserved_wednesdays(cast)
    assert slot_at(WEDNESDAY_9).public_from == OPENS
    assert slot_at(WEDNESDAY_930).public_from == local(2026, 11, 24, 9, 30)


def test_a_reserved_rule_without_release_time_stays_reserved(cast: Cast) -> None:
    reserved_wednesdays(cast, release_hours=None)
    assert slot_at(WEDNESDAY_9).public_from is None
    with clock.frozen_now(local(2026, 11, 25, 8, 59)):
        assert found_starts(cast.paul) == []


def test_release_counts_real_hours_across_the_clock_change() -> None:
    """Monday 2 November 2026 09:00 EST, 48 hours before: Saturday 31 October 10:00 EDT."""
    rule = RuleSpec(
        rule_id=1,
        weekday=0,
        start_time=time(9),
        end_time=time(9, 30),
        slot_minutes=30,
        appointment_type="periodic",
        visibility="registered",
        valid_from=date(2026, 10, 1),
        release_hours=48,
    )
    (slot,) = expand_rules([rule], [], date(2026, 11, 2), date(2026, 11, 2))
    assert slot.public_from == local(2026, 10, 31, 10, 0)
    public = RuleSpec(**{**rule.__dict__, "visibility": "public", "release_hours": None})
    (open_slot,) = expand_rules([public], [], date(2026, 11, 2), date(2026, 11, 2))
    assert open_slot.public_from is None


# --- Before the release time: registered patients only ------------------------------------


def test_before_release_others_neither_find_nor_book_the_reserved_time(cast: Cast) -> None:
    reserved_wednesdays(cast)
    slot = slot_at(WEDNESDAY_9)
    assert found_starts(None) == []
    assert found_starts(cast.paul) == []
    with pytest.raises(NotFound):
        visible_slot(cast.paul, slot.pk)
    with pytest.raises(NotFound):
        services.hold_slot(user=cast.paul, slot_id=slot.pk)
    with pytest.raises(NotFound):
        services.hold_slot_for_visitor(visitor_token=secrets.token_urlsafe(32), slot_id=slot.pk)
    with pytest.raises(NotFound):
        services.book_appointment(user=cast.paul, slot_id=slot.pk)
    response = Api(cast.paul).post("/appointments", {"slot_id": slot.pk})
    assert response.status_code == 404, response.content
    ctx = staff_context(cast.sophie, cast.laval.pk)
    assert clinic_free_slots_for(ctx, cast.paul_self, first_day=date(2026, 11, 25), days=1) == []
    with pytest.raises(Conflict):
        services.book_for_caller(ctx, patient_id=cast.paul_self.pk, slot_id=slot.pk)
    assert slot_at(WEDNESDAY_9).status == SlotStatus.FREE


def test_the_registered_patient_finds_and_books_before_the_release(cast: Cast) -> None:
    reserved_wednesdays(cast)
    assert found_starts(cast.marie) == [WEDNESDAY_9, WEDNESDAY_930]
    response = Api(cast.marie).post("/appointments", {"slot_id": slot_at(WEDNESDAY_9).pk})
    assert response.status_code == 201, response.content


def test_the_release_moment_is_exact(cast: Cast) -> None:
    reserved_wednesdays(cast)
    with clock.frozen_now(OPENS - timedelta(seconds=1)):
        assert found_starts(cast.paul) == []
    with clock.frozen_now(OPENS):
        assert found_starts(cast.paul) == [WEDNESDAY_9]  # 09:30 opens half an hour later


# --- From the release time: everyone ------------------------------------------------------


def test_after_release_everyone_finds_and_books_the_free_time(cast: Cast) -> None:
    reserved_wednesdays(cast)
    slot = slot_at(WEDNESDAY_9)
    with clock.frozen_now(local(2026, 11, 24, 12, 0)):
        assert found_starts(None) == [WEDNESDAY_9, WEDNESDAY_930]
        assert found_starts(cast.paul) == [WEDNESDAY_9, WEDNESDAY_930]
        assert visible_slot(None, slot.pk) == slot
        hold = services.hold_slot_for_visitor(
            visitor_token=secrets.token_urlsafe(32), slot_id=slot_at(WEDNESDAY_930).pk
        )
        assert hold.slot_id == slot_at(WEDNESDAY_930).pk
        response = Api(cast.paul).post("/appointments", {"slot_id": slot.pk})
        assert response.status_code == 201, response.content
        assert found_starts(cast.marie) == []  # 09:00 booked, 09:30 held by the visitor
    assert slot_at(WEDNESDAY_9).status == SlotStatus.BOOKED


def test_after_release_the_front_desk_books_it_for_any_caller(cast: Cast) -> None:
    reserved_wednesdays(cast)
    ctx = staff_context(cast.sophie, cast.laval.pk)
    with clock.frozen_now(local(2026, 11, 24, 12, 0)):
        offered = clinic_free_slots_for(ctx, cast.paul_self, first_day=date(2026, 11, 25), days=1)
        assert [s.start for s in offered] == [WEDNESDAY_9, WEDNESDAY_930]
        booked = services.book_for_caller(ctx, patient_id=cast.paul_self.pk, slot_id=offered[0].pk)
    assert booked.patient_id == cast.paul_self.pk


# --- Changing the release time ------------------------------------------------------------


def test_a_new_release_time_re_times_free_slots_and_leaves_booked_ones(cast: Cast) -> None:
    rule = reserved_wednesdays(cast)
    booked = services.book_appointment(user=cast.marie, slot_id=slot_at(WEDNESDAY_930).pk)
    ctx = staff_context(cast.marc, cast.laval.pk)

    services.set_rule_release(ctx, cast.dr_roy.pk, rule.pk, release_hours=48)

    assert slot_at(WEDNESDAY_9).public_from == local(2026, 11, 23, 9, 0)
    booked_slot = slot_at(WEDNESDAY_930)
    assert booked_slot.pk == booked.slot_id
    assert booked_slot.status == SlotStatus.BOOKED
    assert booked_slot.public_from == local(2026, 11, 24, 9, 30)  # untouched
    rule.refresh_from_db()
    assert rule.release_hours == 48
    with clock.frozen_now(local(2026, 11, 23, 9, 0)):
        assert found_starts(cast.paul) == [WEDNESDAY_9]

    services.set_rule_release(ctx, cast.dr_roy.pk, rule.pk, release_hours=None)
    assert slot_at(WEDNESDAY_9).public_from is None
    assert slot_at(WEDNESDAY_930).pk == booked.slot_id
    with clock.frozen_now(local(2026, 11, 25, 8, 0)):
        assert found_starts(cast.paul) == []


def test_a_held_slot_keeps_its_release_time_until_the_hold_ends(cast: Cast) -> None:
    rule = reserved_wednesdays(cast)
    held = services.hold_slot(user=cast.marie, slot_id=slot_at(WEDNESDAY_9).pk)
    services.set_rule_release(
        staff_context(cast.marc, cast.laval.pk), cast.dr_roy.pk, rule.pk, release_hours=2
    )
    assert slot_at(WEDNESDAY_9).pk == held.slot_id
    assert slot_at(WEDNESDAY_9).public_from == OPENS
    assert slot_at(WEDNESDAY_930).public_from == local(2026, 11, 25, 7, 30)


@pytest.mark.parametrize(
    ("visibility", "hours", "code"),
    [
        (Visibility.PUBLIC, 24, "release_not_reserved"),
        (Visibility.REGISTERED, 0, "release_hours"),
        (Visibility.REGISTERED, 337, "release_hours"),
    ],
)
def test_the_service_refuses_a_meaningless_release_time(
    cast: Cast, visibility: str, hours: int, code: str
) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    with pytest.raises(ValidationError) as refused:
        services.add_weekly_rule(
            ctx,
            cast.dr_roy.pk,
            weekday=2,
            start_time=time(9),
            end_time=time(10),
            slot_minutes=30,
            appointment_type="periodic",
            visibility=visibility,
            valid_from=date(2026, 11, 23),
            valid_until=None,
            release_hours=hours,
        )
    assert (refused.value.code, refused.value.field) == (code, "release_hours")
    assert not AvailabilityRule.objects.exists()
    assert not Slot.objects.exists()


def test_another_clinics_rule_is_not_found(cast: Cast) -> None:
    rule = reserved_wednesdays(cast)
    karim = staff_context(cast.karim, cast.montreal.pk)
    with pytest.raises(NotFound):
        services.set_rule_release(karim, cast.dr_roy.pk, rule.pk, release_hours=2)
    rule.refresh_from_db()
    assert rule.release_hours == 24


# --- The portal's weekly-times form --------------------------------------------------------


def rules_url(cast: Cast, suffix: str) -> str:
    return f"/clinique/{cast.laval.pk}/praticiens/{cast.dr_roy.pk}/horaires/{suffix}"


WEEKLY_TIME = {
    "weekday": "2",
    "start_time": "09:00",
    "end_time": "10:00",
    "slot_minutes": "30",
    "appointment_type": "periodic",
    "valid_from": "2026-11-23",
}


def test_the_form_adds_a_reserved_time_that_opens_and_the_list_says_so(cast: Cast) -> None:
    client = portal_client(cast.marc)
    response = client.post(
        rules_url(cast, "ajouter/"),
        {**WEEKLY_TIME, "visibility": "registered", "release_hours": "24"},
    )
    assert response.status_code == 302
    assert AvailabilityRule.objects.get().release_hours == 24
    assert slot_at(WEDNESDAY_9).public_from == OPENS
    page = client.get(f"/clinique/{cast.laval.pk}/praticiens/{cast.dr_roy.pk}/")
    assert "Open to the public 24 hours before if still free" in page.content.decode()


@pytest.mark.parametrize(
    ("visibility", "hours", "message"),
    [
        ("public", "24", "Only times reserved for registered patients can open to the public"),
        ("registered", "0", "Choose between 1 and 336 hours"),
        ("registered", "9999", "Choose between 1 and 336 hours"),
        ("registered", "a day", "Enter a whole number"),
    ],
)
def test_the_form_shows_why_a_release_time_is_refused(
    cast: Cast, visibility: str, hours: str, message: str
) -> None:
    response = portal_client(cast.marc).post(
        rules_url(cast, "ajouter/"),
        {**WEEKLY_TIME, "visibility": visibility, "release_hours": hours},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not AvailabilityRule.objects.exists()


def test_the_list_changes_a_release_time(cast: Cast) -> None:
    rule = reserved_wednesdays(cast)
    client = portal_client(cast.marc)
    response = client.post(rules_url(cast, f"{rule.pk}/ouverture/"), {"release_hours": "48"})
    assert response.status_code == 302
    assert slot_at(WEDNESDAY_9).public_from == local(2026, 11, 23, 9, 0)
    refused = client.post(rules_url(cast, f"{rule.pk}/ouverture/"), {"release_hours": "400"})
    assert refused.status_code == 422
    assert "Choose between 1 and 336 hours" in refused.content.decode()
    rule.refresh_from_db()
    assert rule.release_hours == 48


def test_only_administrators_change_a_release_time_and_only_their_clinics(cast: Cast) -> None:
    rule = reserved_wednesdays(cast)
    url = rules_url(cast, f"{rule.pk}/ouverture/")
    assert portal_client(cast.sophie).post(url, {"release_hours": "2"}).status_code == 403
    assert portal_client(cast.karim).post(url, {"release_hours": "2"}).status_code == 404
    montreal = (
        f"/clinique/{cast.montreal.pk}/praticiens/{cast.dr_roy.pk}/horaires/{rule.pk}/ouverture/"
    )
    assert portal_client(cast.karim).post(montreal, {"release_hours": "2"}).status_code == 404
    rule.refresh_from_db()
    assert rule.release_hours == 24
