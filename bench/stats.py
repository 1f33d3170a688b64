"""Latency and status bookkeeping for the HTTP phases.

Each client thread records into its own `Recorder` (no lock on the hot path); the phase
merges them once the threads have stopped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    kind: str  # "search", "book", ...
    status: int  # HTTP status, or 0 when the request failed without an answer
    ms: float


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, status: int, ms: float, error: str = "") -> None:
        self.samples.append(Sample(kind, status, ms))
        if error:
            self.errors[error] += 1

    def merge(self, other: Recorder) -> None:
        self.samples.extend(other.samples)
        self.errors.update(other.errors)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an already sorted list; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class KindStats:
    """One kind of request in one phase: how many, how fast, and how they were answered."""

    phase: str
    kind: str
    count: int
    seconds: float
    p50: float
    p95: float
    p99: float
    statuses: Counter[int]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan

    def rate_of(self, status: int) -> float:
        """Answers with this status per second (e.g. 201s: bookings that succeeded)."""
        return self.statuses[status] / self.seconds if self.seconds > 0 else math.nan

    def not_status(self, status: int) -> int:
        return sum(n for s, n in self.statuses.items() if s != status)


def summarise(phase: str, kind: str, recorder: Recorder, seconds: float) -> KindStats:
    samples = [s for s in recorder.samples if s.kind == kind]
    latencies = sorted(s.ms for s in samples)
    return KindStats(
        phase=phase,
        kind=kind,
        count=len(samples),
        seconds=seconds,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        statuses=Counter(s.status for s in samples),
    )


def format_statuses(statuses: Counter[int]) -> str:
    """ "200×1234 409×5 0×1" (0 = no answer: connection error or timeout)."""
    return " ".join(f"{status}×{count}" for status, count in sorted(statuses.items())) or "-"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: first column left-aligned, the figures right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
