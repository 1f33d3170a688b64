"""In the browser too: staff of another clinic get a 404 on every portal page of Laval
(the full walk over every route and id is tests/security/test_clinic_isolation.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_montreal_staff_get_404_on_lavals_portal(make_page: PageFactory, cast: Cast) -> None:
    appointment = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 23, 9, 0)).pk
    )
    laval = cast.laval.pk
    paths: list[Any] = [
        f"/clinique/{laval}/agenda/",
        f"/clinique/{laval}/rendez-vous/{appointment.pk}/",
        f"/clinique/{laval}/telephone/",
        f"/clinique/{laval}/sans-rendez-vous/",
        f"/clinique/{laval}/exports/",
        f"/clinique/{laval}/feuille-du-jour.pdf",
        f"/clinique/{laval}/praticiens/",
        f"/clinique/{laval}/praticiens/{cast.dr_roy.pk}/",
    ]
    page = make_page(locale="fr-CA")
    staff_sign_in(page, cast.karim)
    for path in paths:
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        assert "Marie" not in page.content()
    make_page.problems(page).clear()  # the 404s are the point
    assert_accessible(page)
