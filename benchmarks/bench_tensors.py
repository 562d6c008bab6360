"""Standalone entry for the Chebyshev-Tucker benchmark (same as ``lrsolve bench tensors``).

    python benchmarks/bench_tensors.py [--quick] [--sections ...] [--out DIR]

Writes ``benchmarks/results/tensors.json`` and ``tensors.png``; see
:mod:`lrsolve.bench.tensors` for the sections and options.
"""
import sys

from lrsolve.bench.tensors import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
