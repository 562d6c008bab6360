"""Seeding: one way to turn a ``seed`` argument into a random generator.

Every randomised routine in lrsolve takes ``seed`` (``None``, an int, a sequence of ints or
a ``numpy.random.Generator``) and calls :func:`as_generator`.  Nothing here reads or
changes NumPy's global random state (``np.random.seed`` / ``np.random.rand``), so a
library call never perturbs a caller's random stream, and the same seed gives the same
bits.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_generator", "check_seed"]


def check_seed(seed: Any, name: str = "seed") -> Any:
    """Validate a seed (``None``, int >= 0, sequence of ints >= 0, SeedSequence or Generator).

    Returns it unchanged; raises ``TypeError`` / ``ValueError`` naming ``name``.
    """
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, np.random.RandomState):
        raise TypeError(f"{name} must be an int, None or a numpy.random.Generator; a legacy "
                        "RandomState is not supported (use numpy.random.default_rng)")
    if isinstance(seed, bool):
        raise TypeError(f"{name} must be an int, None or a numpy.random.Generator, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"{name} must be >= 0, got {seed!r}")
        return seed
    if isinstance(seed, (list, tuple)) and seed and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seed):
        if any(s < 0 for s in seed):
            raise ValueError(f"{name} entries must be >= 0, got {seed!r}")
        return seed
    raise TypeError(f"{name} must be an int, a sequence of ints, None or a "
                    f"numpy.random.Generator, got {type(seed).__name__}")


def as_generator(seed: Any = None, name: str = "seed") -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``seed``.

    ``None`` gives a fresh generator seeded from the OS (not reproducible); an int or a
    sequence of ints gives ``numpy.random.default_rng(seed)``; a Generator is returned as
    is (it is advanced by whoever draws from it).

    Examples
    --------
    >>> from lrsolve.seeding import as_generator
    >>> float(as_generator(0).random()) == float(as_generator(0).random())
    True
    """
    seed = check_seed(seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
