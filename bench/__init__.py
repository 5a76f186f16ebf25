"""Benchmarks: `python -m bench` (or `make bench`) writes the `## Detectors` section of docs/benchmarks.md."""
