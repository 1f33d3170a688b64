"""The timed HTTP phases: what real patients do, many at once, against the running app.

Every phase is bounded twice: a fixed number of client threads, and a deadline after
which each thread stops at its next request. Nothing here asserts: figures are returned
for the report.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.client import Answer, Client
from bench.stats import Recorder

AVAILABILITY = "/api/v1/availability"
SEARCH_PAGE = "/"  # the patient's results page: the same search, rendered as HTML
APPOINTMENTS = "/api/v1/appointments"
BOOKINGS_PER_SEARCH = 5  # a client books at most this many of its share of one result page
BARRIER_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int


@dataclass(frozen=True)
class PhaseRun:
    """Merged samples of all clients and the wall time from the start signal to the last."""

    recorder: Recorder
    seconds: float


Worker = Callable[[int, float, Recorder], None]


def run_clients(count: int, seconds: float, worker: Worker) -> PhaseRun:
    """Start `count` threads on one signal; each runs `worker(index, deadline, recorder)`.

    A worker that raises is recorded as an error, not allowed to stop the phase.
    """
    recorders = [Recorder() for _ in range(count)]
    start = threading.Barrier(count + 1, timeout=BARRIER_TIMEOUT_SECONDS)
    deadline = [0.0]

    def body(index: int) -> None:
        start.wait()
        try:
            worker(index, deadline[0], recorders[index])
        except Exception as exc:
            recorders[index].errors[f"client crashed: {type(exc).__name__}: {exc}"] += 1
            traceback.print_exc()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    merged = Recorder()
    for recorder in recorders:
        merged.merge(recorder)
    return PhaseRun(recorder=merged, seconds=elapsed)


def record(recorder: Recorder, kind: str, answer: Answer) -> None:
    """One answer; for errors (4xx, 5xx, none) also its API error code, to tell 409s apart."""
    failed = answer.status == 0 or answer.status >= 400
    label = f"{kind} {answer.status} {answer.error_code() or '?'}" if failed else ""
    recorder.add(kind, answer.status, answer.ms, label)


def search_query(city: str, rng: random.Random) -> dict[str, str | int]:
    """A typical search: 25 km around a city; one in five urgent-only, one in five English."""
    query: dict[str, str | int] = {"near": city, "radius_km": 25, "limit": 20}
    roll = rng.random()
    if roll < 0.2:
        query["type"] = "urgent"
    elif roll < 0.4:
        query["language"] = "en"
    return query


def search_phase(target: Target, clients: int, seconds: float, cities: list[str]) -> PhaseRun:
    """Anonymous visitors searching, back to back, no think time."""

    def worker(index: int, deadline: float, recorder: Recorder) -> None:
        rng = random.Random(index)
        client = Client(target.host, target.port)
        try:
            while time.monotonic() < deadline:
                answer = client.get(AVAILABILITY, search_query(rng.choice(cities), rng))
                record(recorder, "search", answer)
        finally:
            client.close()

    return run_clients(clients, seconds, worker)


def search_page_phase(
    target: Target, clients: int, seconds: float, cities: list[str], sizes: list[int]
) -> PhaseRun:
    """Visitors loading the results page (server-rendered HTML), back to back; the body
    sizes of the 200 answers are appended to `sizes`."""

    def worker(index: int, deadline: float, recorder: Recorder) -> None:
        rng = random.Random(1000 + index)
        client = Client(target.host, target.port)
        try:
            while time.monotonic() < deadline:
                query = search_query(rng.choice(cities), rng)
                page_query = {"near": query["near"], "radius_km": query["radius_km"]}
                if "type" in query:
                    page_query["appointment_type"] = query["type"]
                if "language" in query:
                    page_query["language"] = query["language"]
                answer = client.get(SEARCH_PAGE, page_query)
                record(recorder, "page", answer)
                if answer.status == 200:
                    sizes.append(len(answer.body))
        finally:
            client.close()

    return run_clients(clients, seconds, worker)


def _slot_ids(answer: Answer) -> list[tuple[int, str]]:
    """(slot id, appointment type) of each result of an availability answer."""
    data: Any = answer.json()
    if answer.status != 200 or not isinstance(data, dict):
        return []
    results = data.get("results")
    if not isinstance(results, list):
        return []
    return [
        (r["id"], str(r.get("type", "")))
        for r in results
        if isinstance(r, dict) and isinstance(r.get("id"), int)
    ]


def mine(answer: Answer, index: int, clients: int) -> list[int]:
    """This client's share of a result page: ids ≡ index (mod clients), so clients never
    compete for a slot. Child-only slots are left out (bench patients are adults)."""
    return [
        slot_id
        for slot_id, kind in _slot_ids(answer)
        if slot_id % clients == index and kind != "child_0_5"
    ][:BOOKINGS_PER_SEARCH]


def booking_phase(target: Target, tokens: list[str], seconds: float, cities: list[str]) -> PhaseRun:
    """Signed-in patients: search (100 results), then book their share of the page."""
    clients = len(tokens)

    def worker(index: int, deadline: float, recorder: Recorder) -> None:
        client = Client(target.host, target.port)
        token = tokens[index]
        city = index
        try:
            while time.monotonic() < deadline:
                query: dict[str, str | int] = {
                    "near": cities[city % len(cities)],
                    "radius_km": 25,
                    "limit": 100,
                }
                answer = client.get(AVAILABILITY, query, token=token)
                record(recorder, "search", answer)
                wanted = mine(answer, index, clients)
                if not wanted:
                    city += 1
                    continue
                for slot_id in wanted:
                    if time.monotonic() >= deadline:
                        break
                    booked = client.post_json(APPOINTMENTS, {"slot_id": slot_id}, token=token)
                    record(recorder, "book", booked)
        finally:
            client.close()

    return run_clients(clients, seconds, worker)


def contention_phase(
    target: Target, tokens: list[str], slot_ids: list[int], threads: int, seconds: float
) -> PhaseRun:
    """Everyone wants the same few slots: one round per slot, all threads released together,
    every account trying that slot once. Exactly one 201 per slot is the correct outcome."""
    threads = min(threads, len(tokens))
    rounds = threading.Barrier(threads, timeout=BARRIER_TIMEOUT_SECONDS)

    def worker(index: int, deadline: float, recorder: Recorder) -> None:
        client = Client(target.host, target.port)
        my_tokens = tokens[index::threads]
        try:
            for slot_id in slot_ids:
                rounds.wait()
                for token in my_tokens:
                    if time.monotonic() >= deadline:
                        break
                    answer = client.post_json(APPOINTMENTS, {"slot_id": slot_id}, token=token)
                    record(recorder, "book", answer)
        finally:
            client.close()

    return run_clients(threads, seconds, worker)
