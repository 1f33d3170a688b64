"""Twenty receptionists give out the last places of one wave at the same instant, with real
threads and one database connection each: the compare-and-set on the wave's counter lets
exactly `capacity` of them through.

PostgreSQL only: there, transactions truly run at once and contend for the wave's row.
SQLite serialises writers (BEGIN IMMEDIATE), so the same race proves nothing there.
"""

from __future__ import annotations

import threading
from datetime import date, time

import pytest
from django.db import connection

from rdv.clinics.models import Membership
from rdv.clinics.queries import staff_context
from rdv.core.errors import Conflict
from rdv.walkin import services
from rdv.walkin.models import WalkIn, Wave
from tests.conftest import Cast, on_postgres
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

DESKS = 20
CAPACITY = 8


def test_twenty_desks_race_for_eight_places_and_exactly_eight_get_one(cast: Cast) -> None:
    if not on_postgres():
        pytest.skip("a real race needs PostgreSQL: SQLite runs one writer at a time")
    desks = [UserFactory.create() for _ in range(DESKS)]
    for user in desks:
        Membership.objects.create(user=user, clinic=cast.laval, role=Membership.Role.RECEPTIONIST)
    (wave,) = services.open_waves(
        staff_context(cast.sophie, cast.laval.pk),
        day=date(2026, 11, 23),
        first_start=time(9),
        last_start=time(9),
        capacity=CAPACITY,
    )
    barrier = threading.Barrier(DESKS)
    lock = threading.Lock()
    outcome = {"won": 0, "full": 0}
    unexpected: list[BaseException] = []

    def desk(index: int) -> None:
        try:
            ctx = staff_context(desks[index], cast.laval.pk)
            barrier.wait()
            services.add_walk_in(ctx, wave.pk, first_name=f"Person{index}", last_name="Race")
            key = "won"
        except Conflict as exc:
            key = "full" if exc.code == "wave_full" else "other"
            if key == "other":
                with lock:
                    unexpected.append(exc)
                return
        except BaseException as exc:
            with lock:
                unexpected.append(exc)
            return
        finally:
            connection.close()
        with lock:
            outcome[key] += 1

    threads = [threading.Thread(target=desk, args=(i,)) for i in range(DESKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a desk thread hung"

    assert unexpected == []
    assert outcome == {"won": CAPACITY, "full": DESKS - CAPACITY}
    places = sorted(WalkIn.objects.filter(wave=wave).values_list("place", flat=True))
    assert places == list(range(1, CAPACITY + 1))
    assert Wave.objects.get(pk=wave.pk).taken == CAPACITY
