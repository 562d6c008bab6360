"""Benchmark suites: each module ``lrsolve.bench.NAME`` has ``main(argv)`` for ``lrsolve bench NAME``."""
