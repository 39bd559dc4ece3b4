"""Benchmarks: each module here with a `main()` is run by `make bench` (python -m bench)."""
