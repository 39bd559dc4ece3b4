"""Benchmarks, run with `make bench` (python -m bench); figures go to stdout and bench/results/."""
