"""`make bench`: load and contention benchmarks of RDV Santé against PostgreSQL.

Prints figures and ratios; asserts nothing (not part of the test suite). See
bench/README.md for what each phase measures and how to read the output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    started = time.perf_counter()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script: make `bench` and `rdv` importable
    from bench import prepare  # noqa: PLC0415 (needs the repository root on sys.path)

    config = prepare.prepare()
    from bench import main as bench_main  # noqa: PLC0415 (needs Django set up on rdv_bench)

    return bench_main.run(config, started)


if __name__ == "__main__":
    sys.exit(main())
