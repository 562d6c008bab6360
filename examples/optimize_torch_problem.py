"""Write a constrained problem in torch and solve it with AdaSketch-Newton.

min  (x0 - 1)^2 + (x0 - x1)^2 + (x1 - x2)^4        (Byrd-Tapia BT2)
s.t. x0 (1 + x1^2) + x2^4 - 4 - 3 sqrt(2) = 0

Gradients, the constraint Jacobian and Lagrangian Hessian-vector products come from
autograd (``Problem.from_torch``); the KKT system of every Newton step is solved by
randomized block sketch-and-project.
"""
import math

import numpy as np
import torch

import lrsolve as lr

torch.set_num_threads(1)


def f(x):
    return (x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4


def c(x):
    return (x[0] * (1 + x[1] ** 2) + x[2] ** 4 - 4 - 3 * math.sqrt(2)).reshape(1)


problem = lr.optimize.Problem.from_torch(f, c)
x0 = np.array([10.0, 10.0, 10.0])
res = lr.optimize.sketch_newton(problem, x0, sketch="gaussian", tol=1e-8, seed=0)
exact = lr.optimize.exact_newton(problem, x0, tol=1e-10)
print(res.message)
print(f"x = {res.x}, f = {res.fun:.9f} (published optimum 0.032568200)")
print(f"Newton steps {res.nit}, inner sketch steps {res.inner_iterations}, "
      f"KKT {res.kkt:.1e}, |x - x_exact| = {np.linalg.norm(res.x - exact.x):.1e}")
