"""The layer rules of shared/DESIGN.md, checked on the import statements of the source.

* the shared layers import only layers below them (an arrow only points down);
* a method package never imports another method package;
* operator kinds are decided in one place: no module outside ``operators/`` and
  ``backend.py`` tests for scipy/torch sparse layouts of a linear-solve operator.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lrsolve"
# bottom to top; a module may import its own layer and those before it
LAYERS = ["backend", "result", "seeding", "io", "sketch", "operators", "linsys", "krylov",
          "multigrid", "autodiff", "solvers"]
METHOD_PACKAGES = {"dcdm", "relax", "optimize", "completion", "tensors", "neural"}


def _layer_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(ROOT).parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("lrsolve."):
                    yield node.module.split(".")[1]
                continue
            base = list(pkg[:-1])[: len(pkg) - node.level]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                yield target[0].removesuffix(".py")
            else:
                for alias in node.names:
                    yield alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lrsolve."):
                    yield alias.name.split(".")[1]


FILES = sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", [p for p in FILES if _layer_of(p) in LAYERS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_layers_import_downwards(path):
    me = LAYERS.index(_layer_of(path))
    for target in _imports(path):
        if target in LAYERS:
            assert LAYERS.index(target) <= me, f"{path.name} imports {target} (above it)"
        assert target not in METHOD_PACKAGES, f"{path.name} imports method package {target}"


@pytest.mark.parametrize("path", [p for p in FILES if _layer_of(p) in METHOD_PACKAGES],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_method_packages_do_not_import_each_other(path):
    me = _layer_of(path)
    for target in _imports(path):
        assert target == me or target not in METHOD_PACKAGES, f"{me} imports {target}"


def test_operator_kinds_are_decided_in_one_place():
    """The linear-solve stack (linsys, krylov, multigrid, solvers, relax/sor) has no switch on
    sparse layouts or scipy sparse types: it asks lr.as_operator."""
    needles = ("sp.issparse(A", "A.layout ==", "sparse_csr:", "isinstance(A, np.ndarray)")
    stack = [ROOT / "linsys.py", ROOT / "solvers.py", ROOT / "methods.py",
             ROOT / "relax" / "sor.py", *(ROOT / "krylov").glob("*.py"),
             *(ROOT / "multigrid").glob("*.py")]
    for path in stack:
        text = path.read_text()
        for needle in needles:
            assert needle not in text, f"{path.relative_to(ROOT)} switches on operator kinds"
