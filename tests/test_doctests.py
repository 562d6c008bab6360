"""Run the docstring examples of every lrsolve module (the README's test command runs them).

Optional adapters whose dependencies may be absent (``lrsolve.petsc``) are skipped when
they cannot be imported.
"""
import doctest
import importlib
import pkgutil

import pytest

import lrsolve

MODULES = sorted(m.name for m in pkgutil.walk_packages(lrsolve.__path__, "lrsolve.")
                 if not m.name.split(".")[-1].startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # optional dependency (petsc4py, mpi4py, cupy)
        pytest.skip(f"{name}: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples]
    if not tests:
        pytest.skip("no examples")
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
