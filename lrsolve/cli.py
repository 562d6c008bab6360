"""The ``lrsolve`` console script.

``lrsolve bench NAME [options]`` runs the benchmark suite ``lrsolve.bench.NAME``
(``poisson``, ``relax``, ``optimize``, ``completion``, ``tensors``); ``lrsolve train NAME``
trains a model (``dcdm``, ``lsm``).  Each subcommand parses its own options (``--help``).
"""
from __future__ import annotations

import importlib
import sys

BENCHES = ("poisson", "relax", "optimize", "completion", "tensors")
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
    return int(module.main(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
