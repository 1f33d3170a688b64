"""The benchmark run, phase by phase. Imported only once Django is set up (see run.py).

A phase that fails prints its error and leaves a gap in the summary; the others still
run, and the server is always stopped.
"""

from __future__ import annotations

import functools
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench import checks, dataset, portal
from bench import finder as finder_bench
from bench.config import BENCH_DATABASE_URL, CITIES, BenchConfig
from bench.phases import (
    PhaseRun,
    Target,
    booking_phase,
    contention_phase,
    search_page_phase,
    search_phase,
)
from bench.server import HOST, AppServer
from bench.stats import KindStats, format_statuses, format_table, summarise

ROOT = Path(__file__).resolve().parent.parent
WARM_UP_SECONDS = 3.0
CONTENTION_MUNICIPALITY = "Laval"
EXPLAIN_CITY = "Montréal"
T = TypeVar("T")


@dataclass
class Results:
    """Everything the summary prints; a phase that failed leaves its field empty."""

    load: dataset.LoadReport | None = None
    stats: list[KindStats] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    integrity: checks.Integrity | None = None
    server_tracebacks: int = 0
    page_sizes: list[int] = field(default_factory=list)  # results page bodies, bytes
    portal_setup: portal.PortalSetup | None = None
    portal: dict[str, portal.PageFigures] = field(default_factory=dict)  # by phase name


def step(title: str, results: Results, action: Callable[[], T]) -> T | None:
    """Run one phase, printing its title and time; on error print it and carry on."""
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    try:
        value = action()
    except Exception as exc:
        traceback.print_exc()
        results.errors[title] = f"{type(exc).__name__}: {exc}"
        return None
    print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return value


def print_phase(name: str, run: PhaseRun, kinds: list[str], results: Results) -> None:
    """Per-kind figures of one phase, plus the API error codes of the error answers."""
    for kind in kinds:
        stats = summarise(name, kind, run.recorder, run.seconds)
        results.stats.append(stats)
        print(
            f"   {kind}: {stats.count} in {stats.seconds:.1f} s = {stats.per_second:.1f}/s, "
            f"p50 {stats.p50:.1f} ms, p95 {stats.p95:.1f} ms, p99 {stats.p99:.1f} ms, "
            f"statuses {format_statuses(stats.statuses)}"
        )
    for label, count in run.recorder.errors.most_common(8):
        print(f"   error answers: {label} ×{count}")


def build(config: BenchConfig, results: Results, scratch: Path) -> tuple[list[str], list[str]]:
    """Data set and accounts. Returns (tokens of booking clients, of contention accounts)."""
    report = dataset.load_slots(config.clinics, config.days, scratch)
    results.load = report
    print(
        f"   {report.clinics} clinics, {report.practitioners} practitioners, "
        f"{report.total_slots:,} slots over {config.days} days "
        f"({report.seeded_slots:,} by the app's rule expansion, "
        f"{report.copied_slots:,} copied in SQL)\n"
        f"   seed {report.seed_seconds:.1f} s + copy {report.copy_seconds:.1f} s "
        f"+ vacuum/analyze {report.analyze_seconds:.1f} s = {report.seconds:.1f} s"
    )
    started = time.perf_counter()
    accounts, password = dataset.create_accounts(config.accounts)
    needed = accounts[: config.booking_clients + config.contention_accounts]
    tokens = dataset.issue_tokens(needed, password)
    print(
        f"   {len(accounts)} accounts, {len(tokens)} API tokens "
        f"(one Argon2 check each) in {time.perf_counter() - started:.1f} s"
    )
    return tokens[: config.booking_clients], tokens[config.booking_clients :]


def run_search(config: BenchConfig, target: Target, cities: list[str], results: Results) -> None:
    search_phase(target, config.search_clients, WARM_UP_SECONDS, cities)  # not measured
    run = search_phase(target, config.search_clients, config.seconds, cities)
    print_phase("a. search", run, ["search"], results)


def run_search_page(
    config: BenchConfig, target: Target, cities: list[str], results: Results
) -> None:
    """One client alone gives the server time per page (no queueing); then the same load
    as the API search, for a pages-per-second figure to compare."""
    search_page_phase(target, 1, WARM_UP_SECONDS, cities, [])  # not measured
    alone = search_page_phase(target, 1, config.seconds, cities, results.page_sizes)
    print_phase("a'. results page, 1 client", alone, ["page"], results)
    loaded = search_page_phase(target, config.search_clients, config.seconds, cities, [])
    print_phase("a'. results page", loaded, ["page"], results)


def run_booking_label(
    label: str,
    *,
    config: BenchConfig,
    target: Target,
    cities: list[str],
    tokens: list[str],
    results: Results,
) -> None:
    run = booking_phase(target, tokens, config.seconds, cities)
    print_phase(label, run, ["search", "book"], results)


def run_booking(
    config: BenchConfig, target: Target, cities: list[str], tokens: list[str], results: Results
) -> None:
    run = booking_phase(target, tokens, config.seconds, cities)
    print_phase("b. booking", run, ["search", "book"], results)


def run_contention(
    config: BenchConfig, target: Target, tokens: list[str], results: Results
) -> None:
    slot_ids = checks.contended_slots(CONTENTION_MUNICIPALITY, config.contention_slots)
    print(
        f"   {len(slot_ids)} slots of one {CONTENTION_MUNICIPALITY} clinic, "
        f"{len(tokens)} accounts, {min(config.contention_threads, len(tokens))} threads"
    )
    run = contention_phase(target, tokens, slot_ids, config.contention_threads, config.seconds)
    print_phase("c. contention", run, ["book"], results)
    found = checks.integrity(slot_ids)
    results.integrity = found
    print(
        f"   database: {found.booked_slots}/{found.slots} slots booked, "
        f"{found.active_appointments} active appointments on them, "
        f"slots with two active appointments: {found.slots_with_two_active} (must be 0)\n"
        f"   whole database: slots with two active appointments {found.db_slots_with_two_active}, "
        f"booked slots without one {found.db_booked_without_appointment}, "
        f"active appointments on free slots {found.db_active_on_free_slot}"
    )


DAY_PHASE = "d. day agenda"
WEEK_PHASE = "e. week agenda"
STATS_PHASE = "f. statistics, 90 days"
EXPORT_PHASE = "g. export ZIP"
PortalPhase = Callable[[Target, portal.PortalSetup, float], tuple[PhaseRun, portal.PageFigures]]


def run_portal_setup(results: Results) -> None:
    setup = portal.prepare()
    results.portal_setup = setup
    print(
        f"   clinic {setup.clinic_id} ({setup.clinic_name}, {setup.practitioners} "
        f"practitioners), {setup.day} and the 6 days after: {setup.booked} bookings through "
        f"the booking service ({setup.refused} refused; {setup.registered} patients "
        f"registered with its family doctors for their reserved slots) in {setup.seconds:.1f} s\n"
        f"   {setup.day}: {setup.day_appointments} active appointments on {setup.day_slots} "
        f"slots; the week: {setup.week_appointments}; a clinic administrator signed in"
    )
    if setup.day_appointments == 0:
        raise RuntimeError(f"no appointment booked on {setup.day}: nothing to measure")


def run_portal(
    name: str,
    kinds: list[str],
    phase: PortalPhase,
    *,
    target: Target,
    config: BenchConfig,
    results: Results,
) -> None:
    setup = results.portal_setup
    if setup is None:
        raise RuntimeError("the portal set-up failed")
    run, figures = phase(target, setup, config.seconds)
    results.portal[name] = figures
    print_phase(name, run, kinds, results)
    for kind, sizes in figures.sizes.items():
        shown = figures.shown.get(kind)
        print(
            f"   {kind}: {_median(sizes) / 1024:.1f} KB"
            + (f", appointments shown {sorted(set(shown))}" if shown else "")
        )
    if figures.patients:
        print(f"   patients in the archive: {sorted(set(figures.patients))}")
    print(f"   audit entries written during the phase: {figures.audit_entries}")


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2] if values else 0


def run_explain() -> None:
    clinics, plan = checks.explain_search(EXPLAIN_CITY, 25)
    print(f"   {EXPLAIN_CITY}, 25 km: {clinics} clinics, 14 days, limit 20")
    for line in plan:
        print(f"   | {line}")


def portal_phases(config: BenchConfig, target: Target, results: Results) -> None:
    """d.–g.: the clinic portal's heaviest pages, one signed-in administrator alone."""
    step(
        "d.–g. portal set-up: the busiest clinic's week booked to "
        f"{portal.FILL_SHARE:.0%}, an administrator's session",
        results,
        lambda: run_portal_setup(results),
    )
    phases: list[tuple[str, str, list[str], PortalPhase]] = [
        (DAY_PHASE, f"{config.seconds} s", ["day, first", "day"], portal.day_phase),
        (WEEK_PHASE, f"{config.seconds} s", ["week, first", "week"], portal.week_phase),
        (
            STATS_PHASE,
            f"{config.seconds} s, page and CSV in turn",
            ["page", "csv"],
            portal.stats_phase,
        ),
        (EXPORT_PHASE, f"{portal.EXPORT_REQUESTS} requests", ["zip"], portal.export_phase),
    ]
    for name, length, kinds, phase in phases:
        action = functools.partial(
            run_portal, name, kinds, phase, target=target, config=config, results=results
        )
        step(f"{name}: 1 client, {length}", results, action)


def count_tracebacks(log_path: Path) -> int:
    if not log_path.exists():
        return 0
    return log_path.read_text(encoding="utf-8", errors="replace").count("Traceback")


def run(config: BenchConfig, started: float) -> int:
    """The whole benchmark; 0 even when a phase failed (the summary says which)."""
    results = Results()
    scratch = Path(tempfile.mkdtemp(prefix="rdv-bench-"))
    log_path = scratch / "server.log"
    tokens = step("load the data set", results, lambda: build(config, results, scratch))
    cities = checks.known_cities(CITIES)
    try:
        print("\n== start the server", flush=True)
        with AppServer(ROOT, BENCH_DATABASE_URL, log_path, workers=2, threads=8) as server:
            target = Target(HOST, server.port)
            print(f"   http://{HOST}:{server.port}/ (log: {log_path})")
            step(
                f"a. availability search: {config.search_clients} clients, {config.seconds} s",
                results,
                lambda: run_search(config, target, cities, results),
            )
            step(
                "a'. search results page (HTML): 1 client, then "
                f"{config.search_clients} clients, {config.seconds} s each",
                results,
                lambda: run_search_page(config, target, cities, results),
            )
            if tokens is not None:
                booking_tokens, contention_tokens = tokens
                step(
                    f"b. booking throughput: {len(booking_tokens)} clients, {config.seconds} s",
                    results,
                    lambda: run_booking(config, target, cities, booking_tokens, results),
                )
                step(
                    "c. booking contention",
                    results,
                    lambda: run_contention(config, target, contention_tokens, results),
                )
            else:
                print("\n== b. and c. skipped: no API tokens (the data set failed to load)")
            portal_phases(config, target, results)
        if tokens is not None:
            # The same booking phase with the audit log off (allowed outside production
            # only): what the hash-chained audit costs in throughput.
            print("\n== restart the server with AUDIT_ENABLED=false", flush=True)
            with AppServer(
                ROOT,
                BENCH_DATABASE_URL,
                log_path,
                workers=2,
                threads=8,
                extra_env={"AUDIT_ENABLED": "false"},
            ) as server:
                target = Target(HOST, server.port)
                step(
                    f"b'. booking throughput, audit off: {len(tokens[0])} clients",
                    results,
                    lambda: run_booking_label(
                        "b'. booking, audit off",
                        config=config,
                        target=target,
                        cities=cities,
                        tokens=tokens[0],
                        results=results,
                    ),
                )
    except Exception as exc:
        traceback.print_exc()
        results.errors["server"] = f"{type(exc).__name__}: {exc}"
    results.server_tracebacks = count_tracebacks(log_path)
    step(
        f"h. appointment finder: {finder_bench.REQUESTS:,} open requests, "
        f"{finder_bench.FREES} slots freed, one worker",
        results,
        lambda: finder_bench.run(cities),
    )
    step("EXPLAIN (ANALYZE, BUFFERS) of one search's per-clinic scan", results, run_explain)
    print_summary(config, results, time.perf_counter() - started, log_path)
    return 0


def _find(results: Results, phase: str, kind: str) -> KindStats | None:
    return next((s for s in results.stats if s.phase == phase and s.kind == kind), None)


def print_summary(config: BenchConfig, results: Results, wall: float, log_path: Path) -> None:
    headers = ["phase / request", "count", "per s", "p50 ms", "p95 ms", "p99 ms", "statuses"]
    rows = [
        [
            f"{s.phase} / {s.kind}",
            str(s.count),
            f"{s.per_second:.1f}",
            f"{s.p50:.1f}",
            f"{s.p95:.1f}",
            f"{s.p99:.1f}",
            format_statuses(s.statuses),
        ]
        for s in results.stats
    ]
    print("\n== Summary")
    print(format_table(headers, rows) if rows else "   (no HTTP phase completed)")
    search = _find(results, "a. search", "search")
    book = _find(results, "b. booking", "book")
    if book is not None and book.rate_of(201) == 0:
        print(f"FAILED: no booking succeeded ({format_statuses(book.statuses)}): see the log")
    if search is not None and book is not None:
        booked = book.rate_of(201)
        print(
            f"\nbookings (201) per s {booked:.1f} / searches per s {search.per_second:.1f} "
            f"= ratio {booked / search.per_second:.2f}"
        )
    unaudited = _find(results, "b'. booking, audit off", "book")
    if book is not None and unaudited is not None and unaudited.rate_of(201) > 0:
        print(
            f"bookings/s with the audit log {book.rate_of(201):.1f} / without "
            f"{unaudited.rate_of(201):.1f} = {book.rate_of(201) / unaudited.rate_of(201):.0%} "
            "(aim: at least 90 %)"
        )
    alone = _find(results, "a'. results page, 1 client", "page")
    pages = _find(results, "a'. results page", "page")
    if alone is not None and results.page_sizes:
        sizes = sorted(results.page_sizes)
        print(
            f"results page: server time p50 {alone.p50:.1f} ms, p95 {alone.p95:.1f} ms "
            f"(one client, no queueing); HTML {sizes[len(sizes) // 2] / 1024:.1f} KB median "
            f"uncompressed, {sizes[-1] / 1024:.1f} KB largest (budget: 100 KB per page)"
        )
    if pages is not None and search is not None and search.per_second > 0:
        print(
            f"results pages per s {pages.per_second:.1f} / API searches per s "
            f"{search.per_second:.1f} = {pages.per_second / search.per_second:.0%}"
        )
    contention = _find(results, "c. contention", "book")
    if contention is not None:
        other = contention.count - contention.statuses[201] - contention.statuses[409]
        print(
            f"contention: {contention.statuses[201]} × 201, {contention.statuses[409]} × 409, "
            f"{other} other"
        )
    if results.integrity is not None:
        print(
            f"slots with two active appointments: {results.integrity.slots_with_two_active} "
            f"contended, {results.integrity.db_slots_with_two_active} in the whole database"
        )
    print_portal_summary(results)
    if results.load is not None:
        load = results.load
        print(
            f"data set: {load.clinics} clinics, {load.practitioners} practitioners, "
            f"{load.total_slots:,} slots, loaded in {load.seconds:.0f} s"
        )
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL {_safe_version()}; server: 2 gunicorn workers × 8 threads; "
        f"load generator on the same machine"
    )
    print(f"server log: {log_path} ({results.server_tracebacks} tracebacks)")
    for title, error in results.errors.items():
        print(f"FAILED: {title}: {error}")
    print(f"total wall time: {wall:.0f} s")


def _server_time(stats: KindStats | None, sizes: list[int] | None) -> str:
    if stats is None:
        return "no figures"
    size = f", {_median(sizes) / 1024:.1f} KB" if sizes else ""
    return f"p50 {stats.p50:.1f} ms, p95 {stats.p95:.1f} ms{size}"


def _print_agenda(results: Results, phase: str, kind: str, title: str, booked: str) -> None:
    figures = results.portal.get(phase)
    if figures is None:
        return
    shown = figures.shown.get(kind) or [0]
    first = _find(results, phase, f"{kind}, first")
    cold = f"; first view {first.p50:.0f} ms" if first is not None else ""
    print(
        f"{title}: {max(shown)} appointments shown ({booked}); server time "
        f"{_server_time(_find(results, phase, kind), figures.sizes.get(kind))}{cold} "
        f"(writes {figures.audit_entries} audit entries)"
    )


def print_portal_summary(results: Results) -> None:
    """The portal's figures, one line per page; any answer but 200 is a failure."""
    setup = results.portal_setup
    if setup is None:
        return
    _print_agenda(
        results,
        DAY_PHASE,
        "day",
        f"day agenda ({setup.clinic_name}, {setup.practitioners} practitioners, {setup.day})",
        f"{setup.day_appointments} booked of {setup.day_slots} slots",
    )
    _print_agenda(
        results,
        WEEK_PHASE,
        "week",
        f"week agenda (7 days from {setup.day})",
        f"{setup.week_appointments} booked",
    )
    stats = results.portal.get(STATS_PHASE)
    if stats is not None:
        first, last = setup.stats_period
        print(
            f"statistics ({first} to {last}): page "
            f"{_server_time(_find(results, STATS_PHASE, 'page'), stats.sizes.get('page'))}; "
            f"CSV {_server_time(_find(results, STATS_PHASE, 'csv'), stats.sizes.get('csv'))}"
        )
    export = results.portal.get(EXPORT_PHASE)
    zipped = _find(results, EXPORT_PHASE, "zip")
    if export is not None and zipped is not None:
        sizes = export.sizes.get("zip") or [0]
        patients = max(export.patients) if export.patients else 0
        print(
            f"export ZIP: {zipped.count} requests, p50 {zipped.p50:.0f} ms, largest "
            f"{zipped.p99:.0f} ms, {max(sizes) / 1024:.0f} KB, {patients} patients, "
            f"{export.audit_entries // max(1, len(export.patients))} audit entries per export"
        )
    for phase in (DAY_PHASE, WEEK_PHASE, STATS_PHASE, EXPORT_PHASE):
        for found in (s for s in results.stats if s.phase == phase):
            if found.not_status(200):
                print(
                    f"FAILED: {phase} / {found.kind}: {found.not_status(200)} answers other "
                    f"than 200 ({format_statuses(found.statuses)}): see the log"
                )


def _safe_version() -> str:
    try:
        return checks.server_version()
    except Exception:
        return "?"
