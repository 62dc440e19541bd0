"""Benchmarks: `python -m benchmarks.NAME`; results in benchmarks/RESULTS.md."""
