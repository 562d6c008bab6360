"""The ``lrsolve`` console script.

``lrsolve bench NAME [options]`` runs the benchmark suite ``lrsolve.bench.NAME``
(``poisson``, ``relax``, ``optimize``, ``completion``, ``tensors``, ``fluids``); ``lrsolve train NAME``
trains a model (``dcdm``, ``lsm``).  Each subcommand parses its own options (``--help``).

Options are checked when they are parsed (the argparse types below), so a value the
program cannot use - a negative size, ``--rtol nan``, ``--repeat 0`` - is a usage error
(exit status 2, one line on stderr), not a traceback.  A ``ValueError`` the library raises
for an input the parser could not judge is reported the same way.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys

__all__ = ["main", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float",
           "unit_interval", "finite_float"]


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite float (no nan / inf)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a float in (0, 1) (tolerances, rates)."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text!r}")
    return value

BENCHES = ("poisson", "relax", "optimize", "completion", "tensors", "fluids")
TRAINERS = {"dcdm": "lrsolve.dcdm.cli", "lsm": "lrsolve.neural.cli"}

USAGE = ("usage: lrsolve bench {" + ",".join(BENCHES) + "} [options]\n"
         "       lrsolve train {" + ",".join(TRAINERS) + "} [options]\n")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in ("bench", "train"):
        sys.stderr.write(USAGE)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    command, name, rest = argv[0], argv[1], argv[2:]
    if command == "bench":
        if name not in BENCHES:
            sys.stderr.write(f"lrsolve bench: unknown suite {name!r}\n" + USAGE)
            return 2
        module = importlib.import_module(f"lrsolve.bench.{name}")
    else:
        if name not in TRAINERS:
            sys.stderr.write(f"lrsolve train: unknown model {name!r}\n" + USAGE)
            return 2
        module = importlib.import_module(TRAINERS[name])
    try:
        return int(module.main(rest) or 0)
    except ValueError as exc:
        # the library rejected an input the parser could not judge: a usage error
        sys.stderr.write(f"lrsolve {command} {name}: error: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
