"""The API keeps the promises of its own OpenAPI document, whatever a client sends.

Schemathesis reads the API's OpenAPI document (the one /api/v1/openapi.json serves) and
calls, in process (no server), every operation with generated data, anonymously and as
Marie, checking that no answer is a 5xx and that every status code, content type, header
and body is one the schema declares.

Generated ids rarely name a row, so hooks swap in, about half of the time, the ids of
the story's free slots, of Marie's booked appointment and of Marie's, Léa's and Paul's
patient records: hold, book, cancel and reschedule then reach past "not found".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rdv.accounts.services import issue_api_token
from rdv.api.api import api
from rdv.scheduling import services
from rdv.wsgi import application
from tests.conftest import PASSWORD, Cast, local, make_slot

# Built in process rather than fetched from /api/v1/openapi.json: module import runs before
# any test may use the database, and every request consults the read-only switch.
schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
schema.app = application
# Same examples on every run (derandomize), and few enough to keep the module fast.
schema.config.generation.update(max_examples=50, deterministic=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Ids of rows that exist during the current test, by parameter name (filled by `story`).
REAL_IDS: dict[str, list[int]] = {}


@dataclass
class Story:
    marie_token: str
    free_slot_ids: list[int]
    appointment_id: int


@pytest.fixture
def story(cast: Cast) -> Iterator[Story]:
    slots = [
        make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0) + timedelta(minutes=30 * i))
        for i in range(4)
    ]
    booked = services.book_appointment(user=cast.marie, slot_id=slots[0].pk)
    free = [slot.pk for slot in slots[1:]]
    REAL_IDS.update(
        slot_id=free,
        appointment_id=[booked.pk],
        patient_id=[cast.marie_self.pk, cast.lea.pk, cast.paul_self.pk],
    )
    # Django's test client does the same: closing "old" connections at each request would
    # break the transaction pytest-django wraps the test in.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield Story(
            marie_token=issue_api_token(email=cast.marie.email, password=PASSWORD),
            free_slot_ids=free,
            appointment_id=booked.pk,
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        REAL_IDS.clear()


def _sometimes_real(name: str, value: Any) -> st.SearchStrategy[Any]:
    ids = REAL_IDS.get(name)
    if not ids or not isinstance(value, int) or isinstance(value, bool):
        return st.just(value)
    return st.one_of(st.just(value), st.sampled_from(ids))


def _with_real_ids(values: Any) -> st.SearchStrategy[Any]:
    if not isinstance(values, dict):
        return st.just(values)
    return st.fixed_dictionaries({key: _sometimes_real(key, v) for key, v in values.items()})


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _with_real_ids(path_parameters)


@schema.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _with_real_ids(query)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    return _with_real_ids(body)


# The story is set up once per operation and shared by its examples, on purpose: what one
# call changes (a hold, a booking) is the state the next call meets.
story_is_shared = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@schema.parametrize()
@story_is_shared
def test_anonymous_calls_keep_to_the_schema(case: schemathesis.Case[Any], story: Story) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@story_is_shared
def test_patient_calls_keep_to_the_schema(case: schemathesis.Case[Any], story: Story) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {story.marie_token}"}, checks=CHECKS)
