"""Gradients through linear solves under torch, by implicit differentiation.

A solve ``x = A^{-1} b`` is attached to the torch autograd graph *after* it has been
computed by any lrsolve method, so the iterations themselves never enter the graph (no
unrolling, no per-iteration memory).  For a loss ``L(x)`` with ``g = dL/dx`` the backward
pass is one solve with the adjoint operator (the fact behind lineax's ``linear_solve``
adjoint and JAX's ``custom_linear_solve``)::

    A^H lam = g                      (one adjoint solve, same method and preconditioner)
    dL/db   = lam
    dL/dA   = -lam x^H               (summed over the columns of a batch)

and, for a matrix that depends on parameters ``theta``, ``dL/dtheta = -d/dtheta
Re(lam^H A(theta) x)`` with ``lam`` and ``x`` held fixed.  That covers

* a torch dense ``A`` that requires grad: ``-lam x^H``;
* a torch sparse CSR (or COO) ``A`` whose values require grad: ``-lam[row] conj(x[col])``
  on the sparsity pattern, laid out like ``A.values()``;
* a :class:`~lrsolve.operators.stencil.PoissonStencil` built from a torch coefficient
  field that requires grad (``coefficient_tensor``): the product above differentiated
  through :func:`stencil_matvec`, a torch re-implementation of the stencil with the same
  face-averaging rule.

Only first derivatives: the backward pass itself is not differentiable (no double
backward, so no Hessian-vector products through a solve).

Typical wiring inside a solver (``solve_detached`` runs the method on tensors without
autograd history)::

    x = solve_detached(detach_operator(A), b.detach())
    if needs_grad(A, b):
        x = attach(x, A, b, lambda g: solve_detached(adjoint_operator, g))
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from . import backend as bk
from .operators.stencil import PoissonStencil

__all__ = ["needs_grad", "attach", "detach_operator", "differentiable_solve",
           "stencil_matvec", "stencil_face_coefficients"]


def _torch():
    import torch
    return torch


def _differentiable_part(A: Any):
    """``(kind, tensor)``: the tensor of A that gradients go to, or ``(None, None)``.

    kind is ``"dense"``, ``"csr"``, ``"coo"`` or ``"stencil"``.
    """
    if bk.is_torch(A):
        torch = _torch()
        if A.layout == torch.strided:
            return "dense", A
        if A.layout == torch.sparse_csr:
            return "csr", A
        if A.layout == torch.sparse_coo:
            return "coo", A
        return None, None  # CSC/BSR: not supported (needs_grad says False, attach refuses)
    if isinstance(A, PoissonStencil):
        coefficient = getattr(A, "coefficient_tensor", None)
        if coefficient is not None:
            return "stencil", coefficient
    return None, None


def _requires_grad(t: Any) -> bool:
    return t is not None and bk.is_torch(t) and bool(t.requires_grad)


def needs_grad(A: Any, b: Any) -> bool:
    """True when a solve of ``A x = b`` must be attached to the torch autograd graph.

    That is when grad mode is on and ``b`` requires grad, or ``A`` is a torch dense tensor
    that requires grad, a torch sparse CSR/COO tensor whose values require grad, or a
    :class:`~lrsolve.operators.stencil.PoissonStencil` whose ``coefficient_tensor``
    requires grad.  Never imports torch for NumPy/CuPy inputs.
    """
    if not (bk.is_torch(b) or bk.is_torch(A) or isinstance(A, PoissonStencil)):
        return False
    torch = _torch()
    if not torch.is_grad_enabled():
        return False
    if _requires_grad(b):
        return True
    kind, tensor = _differentiable_part(A)
    return kind is not None and _requires_grad(tensor)


def detach_operator(A: Any) -> Any:
    """A without autograd history, for the forward solve (same data, no copy).

    Torch dense and sparse tensors are detached; other operators come back as they are (a
    :class:`PoissonStencil` keeps its working coefficients outside the graph already).
    """
    if bk.is_torch(A):
        return A.detach()
    return A


def _csr_rows(A):
    """Row index of every stored entry of a torch CSR tensor (the layout of ``A.values()``)."""
    torch = _torch()
    crow = A.crow_indices()
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(torch.arange(A.shape[0], device=crow.device), counts)


def stencil_face_coefficients(coefficient):
    """Face values of a point-sampled torch coefficient, differentiably.

    The same rule as :func:`lrsolve.operators.stencil._face_coefficients`: the face between
    two neighbours gets their arithmetic mean, a boundary face the value of its interior
    point.  One tensor per axis, ``n + 1`` long along that axis.
    """
    torch = _torch()
    faces = []
    for axis in range(coefficient.ndim):
        m = coefficient.shape[axis]
        padded = torch.cat([coefficient.narrow(axis, 0, 1), coefficient,
                            coefficient.narrow(axis, m - 1, 1)], dim=axis)
        faces.append(0.5 * (padded.narrow(axis, 0, m + 1) + padded.narrow(axis, 1, m + 1)))
    return faces


def stencil_matvec(A: PoissonStencil, x, coefficient=None):
    """``A @ x`` for a :class:`PoissonStencil`, in differentiable torch operations.

    Parameters
    ----------
    A : PoissonStencil
        Supplies ``n``, ``dim``, ``scale`` and ``shift_value``.
    x : torch tensor, shape ``(N,)`` or ``(N, k)`` with ``N = n**dim``
        Vector or batch of column vectors.
    coefficient : torch tensor of shape ``(n,)*dim``, optional
        The coefficient field; by default ``A.coefficient_tensor``, or ``A``'s constant
        coefficient when it has none.  Gradients flow to it and to ``x``.
    """
    torch = _torch()
    if not bk.is_torch(x):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    N = A.shape[1]
    if x.ndim not in (1, 2) or x.shape[0] != N:
        raise ValueError(f"x must have shape ({N},) or ({N}, k), got {tuple(x.shape)}")
    k = 1 if x.ndim == 1 else x.shape[1]
    grid = tuple(A.grid_shape)
    u = x.reshape(grid + (k,))
    if coefficient is None:
        coefficient = A.coefficient_tensor
    if coefficient is None and A.coefficient is not None:
        coefficient = torch.as_tensor(A.coefficient, device=x.device)
    faces = None
    if coefficient is not None:
        if tuple(coefficient.shape) != grid:
            raise ValueError(f"coefficient must have shape {grid}, got "
                             f"{tuple(coefficient.shape)}")
        faces = stencil_face_coefficients(coefficient.to(dtype=x.dtype, device=x.device))
    out = A.shift_value * u
    for axis in range(A.dim):
        zero_shape = list(u.shape)
        zero_shape[axis] = 1
        zeros = u.new_zeros(zero_shape)
        padded = torch.cat([zeros, u, zeros], dim=axis)
        grad = padded.narrow(axis, 1, A.n + 1) - padded.narrow(axis, 0, A.n + 1)
        weight = A.constant if faces is None else faces[axis].unsqueeze(-1)
        flux = (A.scale * weight) * grad
        out = out + flux.narrow(axis, 0, A.n) - flux.narrow(axis, 1, A.n)
    return out.reshape(x.shape)


class _AttachedSolve:
    """Everything the backward pass needs that is not a tensor input of the Function."""

    def __init__(self, kind, A, b_dtype, adjoint_solve):
        self.kind = kind
        self.A = A  # the stencil, or the (coalesced) torch matrix
        self.b_dtype = b_dtype
        self.adjoint_solve = adjoint_solve
        self.adjoint_calls = 0


def _function_class():
    torch = _torch()
    from torch.autograd.function import once_differentiable

    class SolveFunction(torch.autograd.Function):
        """x = A^{-1} b as a graph node; inputs: (x, b, A-part, spec)."""

        @staticmethod
        def forward(ctx, x, b, a_part, spec):
            ctx.spec = spec
            ctx.save_for_backward(x)
            return x.detach().clone()

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_x):
            spec = ctx.spec
            (x,) = ctx.saved_tensors
            want_b, want_a = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
            if not (want_b or want_a):
                return None, None, None, None
            lam = _adjoint(spec, grad_x, x)
            grad_b = lam.to(dtype=spec.b_dtype) if want_b else None
            grad_a = _operator_grad(spec, lam, x) if want_a else None
            return None, grad_b, grad_a, None

    return SolveFunction


_FUNCTION = []


def _solve_function():
    if not _FUNCTION:
        _FUNCTION.append(_function_class())
    return _FUNCTION[0]


def _adjoint(spec: _AttachedSolve, grad_x, x):
    """``lam`` with ``A^H lam = grad_x``: exactly one call of the caller's adjoint solve."""
    torch = _torch()
    grad_x = grad_x.detach().contiguous()
    spec.adjoint_calls += 1
    out = spec.adjoint_solve(grad_x)
    if not bk.is_torch(out) and hasattr(out, "x"):  # a SolveResult
        if getattr(out, "converged", True) is False:
            warnings.warn(f"the adjoint solve in the backward pass did not converge "
                          f"(status {getattr(out, 'status', '?')}); the gradient is inexact",
                          RuntimeWarning, stacklevel=3)
        out = out.x
    if not bk.is_torch(out):
        raise TypeError(f"adjoint_solve must return a torch tensor (or a result with .x), got "
                        f"{type(out).__name__}")
    if tuple(out.shape) != tuple(grad_x.shape):
        raise ValueError(f"adjoint_solve returned shape {tuple(out.shape)}, expected "
                         f"{tuple(grad_x.shape)} (the shape of x)")
    if not bool(torch.isfinite(out).all()):
        warnings.warn("the adjoint solve in the backward pass returned NaN/Inf",
                      RuntimeWarning, stacklevel=3)
    return out.detach().to(dtype=x.dtype)


def _operator_grad(spec: _AttachedSolve, lam, x):
    """``-d/dA Re(lam^H A x)`` for the operator's differentiable part, in its own layout."""
    torch = _torch()
    kind, A = spec.kind, spec.A
    lam2 = lam if lam.ndim == 2 else lam.unsqueeze(1)
    x2 = x if x.ndim == 2 else x.unsqueeze(1)
    if kind == "dense":
        grad = -(lam2 @ x2.conj().transpose(0, 1))
        return grad.to(dtype=A.dtype)
    if kind == "csr":
        rows, cols = _csr_rows(A), A.col_indices()
        values = -(lam2[rows] * x2[cols].conj()).sum(dim=1)
        return torch.sparse_csr_tensor(A.crow_indices(), cols, values.to(dtype=A.dtype),
                                       size=A.shape, device=values.device)
    if kind == "coo":
        indices = A._indices()
        values = -(lam2[indices[0]] * x2[indices[1]].conj()).sum(dim=1)
        return torch.sparse_coo_tensor(indices, values.to(dtype=A.dtype), size=A.shape,
                                       is_coalesced=A.is_coalesced())
    if kind == "stencil":
        coefficient = A.coefficient_tensor
        with torch.enable_grad():
            a = coefficient.detach().requires_grad_(True)
            product = stencil_matvec(A, x2, coefficient=a)
            inner = (lam2.conj() * product).real.sum()
            (grad,) = torch.autograd.grad(inner, a)
        return (-grad).to(dtype=coefficient.dtype)
    raise AssertionError(f"unknown operator kind {kind!r}")  # pragma: no cover


def attach(x, A: Any, b, adjoint_solve: Callable):
    """Attach an already computed solution of ``A x = b`` to the torch autograd graph.

    Parameters
    ----------
    x : torch tensor, shape ``(n,)`` or ``(n, k)``
        The solution, computed without autograd history (it is detached here anyway).
    A : torch dense / sparse CSR / sparse COO tensor, PoissonStencil, or any operator
        The matrix of the solve.  Gradients go to a dense ``A``, to the values of a
        sparse ``A`` (``A.values()``, whatever tensor they came from) and to a stencil's
        ``coefficient_tensor``, when those require grad; other operators are constants.
    b : torch tensor, the shape of ``x``
        The right-hand side; gets a gradient when it requires grad.
    adjoint_solve : callable ``g -> lam``
        Solves ``A^H lam = g`` for ``g`` of the shape of ``x`` (a whole batch in one call),
        returning a torch tensor or a result with ``.x``.  For symmetric / Hermitian ``A``
        that is the forward solver with its method, preconditioner and rtol.  It is
        called exactly once per backward pass, and not at all when no input needs a
        gradient.

    Returns
    -------
    torch tensor
        Equal to ``x``; a node of the graph whose backward costs one adjoint solve.
        When :func:`needs_grad` is False, ``x`` itself.

    Notes
    -----
    Only first derivatives: the backward pass is ``once_differentiable``.
    """
    torch = _torch()
    if not bk.is_torch(x) or x.layout != torch.strided:
        raise TypeError(f"x must be a dense torch tensor, got {type(x).__name__}")
    if not bk.is_torch(b) or b.layout != torch.strided:
        raise TypeError(f"b must be a dense torch tensor, got {type(b).__name__}")
    if x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (n,) or (n, k), got {tuple(x.shape)}")
    if tuple(b.shape) != tuple(x.shape):
        raise ValueError(f"b must have the shape of x {tuple(x.shape)}, got {tuple(b.shape)}")
    if not callable(adjoint_solve):
        raise TypeError(f"adjoint_solve must be callable, got {type(adjoint_solve).__name__}")
    shape = getattr(A, "shape", None)
    if shape is None or len(shape) != 2 or tuple(shape) != (x.shape[0], x.shape[0]):
        raise ValueError(f"A must have shape ({x.shape[0]}, {x.shape[0]}), got "
                         f"{None if shape is None else tuple(shape)}")
    kind, part = _differentiable_part(A)
    if bk.is_torch(A) and kind is None and A.requires_grad and torch.is_grad_enabled():
        raise TypeError(f"gradients with respect to a torch {A.layout} matrix are not "
                        "supported; give A as a dense, sparse CSR or sparse COO tensor")
    if not needs_grad(A, b):
        return x
    if kind is not None and not _requires_grad(part):
        kind, part = None, None
    if kind == "coo":
        # Gradients are laid out on the coalesced pattern; coalescing is differentiable.
        part = part.coalesce()
    spec = _AttachedSolve(kind, A if kind == "stencil" else part, b.dtype, adjoint_solve)
    return _solve_function().apply(x.detach(), b, part, spec)


def differentiable_solve(A: Any, b, solve: Callable, *, adjoint_solve: Callable | None = None):
    """``solve(A, b)`` run without autograd history, then attached with :func:`attach`.

    ``solve(A, b)`` may return a tensor or a result with ``.x``; a result comes back with
    its ``x`` replaced by the attached tensor.  ``adjoint_solve(A, g)`` defaults to
    ``solve(A, g)``, right for symmetric / Hermitian ``A``; give the transpose solve
    otherwise.  Both receive the detached operator.
    """
    A_detached = detach_operator(A)
    with _torch().no_grad():
        out = solve(A_detached, b.detach())
    x = out if bk.is_torch(out) else out.x
    adjoint = solve if adjoint_solve is None else adjoint_solve

    def adjoint_call(g):
        with _torch().no_grad():
            return adjoint(A_detached, g)

    x_attached = attach(x, A, b, adjoint_call)
    if bk.is_torch(out):
        return x_attached
    out.x = x_attached
    return out
