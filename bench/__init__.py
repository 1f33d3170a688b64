"""Load and contention benchmarks for RDV Santé (`make bench`); not part of the test suite."""
