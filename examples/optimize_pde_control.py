"""PDE-constrained control on lrsolve's Poisson operator, beside scipy trust-constr.

min ½‖w - w_target‖² + 0.05‖z‖²  s.t.  Δ_h w + z = 0   on a 64 x 64 grid
(8192 unknowns, 4096 constraints; sparse Jacobian [-A, I]).

The exact-Newton variant (one sparse LU of the KKT matrix) and the GMRES inner solver
are timed against ``scipy.optimize.minimize(method="trust-constr")`` in the same run.
"""
import time

import numpy as np
from scipy.optimize import NonlinearConstraint, minimize

import lrsolve as lr

n = 64
T = lr.problems.pde_control(n)
P = T.problem

t = time.perf_counter()
exact = lr.optimize.exact_newton(P, T.x0, tol=1e-6)
t_exact = time.perf_counter() - t

t = time.perf_counter()
gm = lr.optimize.sketch_newton(P, T.x0, inner="gmres", tol=1e-6)
t_gmres = time.perf_counter() - t

m = T.meta["m"]
con = NonlinearConstraint(P.c, np.zeros(m), np.zeros(m), jac=P.jac,
                          hess=lambda x, v: 0 * P.hess_lagrangian(x, v))
t = time.perf_counter()
tc = minimize(P.f, T.x0, jac=P.grad, hess=lambda x: P.hess_lagrangian(x, np.zeros(m)),
              method="trust-constr", constraints=[con], options={"gtol": 1e-9, "xtol": 1e-14})
t_tc = time.perf_counter() - t

print(f"exact Newton : {t_exact:.3f}s  KKT {exact.kkt:.1e}  f = {exact.fun:.6f}")
print(f"GMRES inner  : {t_gmres:.3f}s  KKT {gm.kkt:.1e}  |x - x_exact| = "
      f"{np.linalg.norm(gm.x - exact.x):.1e}")
print(f"trust-constr : {t_tc:.3f}s  f = {tc.fun:.6f}  |x - x_exact| = "
      f"{np.linalg.norm(tc.x - exact.x):.1e}")
print(f"speed-up vs trust-constr: exact x{t_tc / t_exact:.1f}, GMRES x{t_tc / t_gmres:.1f}")
