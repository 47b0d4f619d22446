"""Implicit differentiation of `argmin`'s solution: the only module that knows the optimality
conditions and how their linearisation is solved.

At a strict local minimum the solution `x*(args)` satisfies `grad_x f = 0` on the free
coordinates (active bounds fixed), or the KKT conditions with the active constraints. The
tangent solves the linearised conditions with Hessian-vector products and conjugate gradients
projected on the null space of the active constraints, as a `jax.custom_jvp` whose solve is a
`jax.lax.custom_linear_solve`, so forward and reverse mode both work. The problem it
differentiates (`_argmin._Problem`) supplies `f(x, operands)`, `c(x, operands)`, `lb`, `ub` and
`constraints`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["differentiable"]

#: A coordinate (or constraint) counts as active when it lies within this relative distance of
#: its bound: `|x - b| <= _ACTIVE_TOL * (1 + |b|)`. Solvers stop within about their tolerance of
#: a bound (interior-point trust-constr never reaches it exactly), so exact equality is too strict.
_ACTIVE_TOL = 1e-6


def _near(values: jax.Array, bound: jax.Array) -> jax.Array:
    """Where `values` lie within the activity tolerance of a finite `bound`."""
    finite = jnp.isfinite(bound)
    scale = 1 + jnp.abs(jnp.where(finite, bound, 0))
    return finite & (jnp.abs(values - jnp.where(finite, bound, 0)) <= _ACTIVE_TOL * scale)


def _implicit_tangent(
    problem: Any, x: jax.Array, operands: list[Any], tangents: list[Any]
) -> jax.Array:
    """d x* in direction `tangents` (of the operands), from the linearised optimality
    conditions. Linear in `tangents`; the only solve is conjugate gradients on a projected,
    symmetric operator, so JAX can transpose it for reverse mode."""
    dtype = x.dtype
    lb = jnp.asarray(problem.lb, dtype)
    ub = jnp.asarray(problem.ub, dtype)
    free = jnp.where(_near(x, lb) | _near(x, ub), 0.0, 1.0).astype(dtype)
    grad_f = jax.grad(problem.f)

    if problem.constraints:
        clb = jnp.asarray(np.concatenate([c.lb for c in problem.constraints]), dtype)
        cub = jnp.asarray(np.concatenate([c.ub for c in problem.constraints]), dtype)
        values = problem.c(x, operands)
        active = ((clb == cub) | _near(values, clb) | _near(values, cub)).astype(dtype)
        jac = jax.jacrev(problem.c)(x, operands)
        # Active rows only, free columns only: the constraints that hold as equalities at x*,
        # acting on the coordinates that may move.
        jac_m = jac * active[:, None] * free[None, :]
        gram_pinv = jnp.linalg.pinv(jac_m @ jac_m.T, hermitian=True)
        # Multipliers by least squares on the stationarity residual over the free coordinates,
        # which works whatever the method (COBYLA reports none) and whichever sign convention.
        lam = jax.lax.stop_gradient(gram_pinv @ (jac_m @ grad_f(x, operands)))

        def lagrangian(y: jax.Array, ops: list[Any]) -> jax.Array:
            return problem.f(y, ops) - jnp.dot(lam, problem.c(y, ops))

        def project(v: jax.Array) -> jax.Array:
            return free * v - jac_m.T @ (gram_pinv @ (jac_m @ v))

        dc = jax.jvp(lambda ops: problem.c(x, ops), (operands,), (tangents,))[1] * active
        dx_particular = -jac_m.T @ (gram_pinv @ dc)
    else:
        lagrangian = problem.f  # type: ignore[assignment]

        def project(v: jax.Array) -> jax.Array:
            return free * v

        dx_particular = jnp.zeros_like(x)

    grad_l = jax.grad(lagrangian)

    def hvp(v: jax.Array) -> jax.Array:
        return jax.jvp(lambda y: grad_l(y, operands), (x,), (v,))[1]

    def operator(v: jax.Array) -> jax.Array:
        pv = project(v)
        return project(hvp(pv)) + v - pv

    dgrad = jax.jvp(lambda ops: grad_l(x, ops), (operands,), (tangents,))[1]
    rhs = -project(dgrad + hvp(dx_particular))
    tol = 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-6
    solve = lambda matvec, b: _conjugate_gradients(matvec, b, tol=tol, maxiter=10 * x.size + 10)
    z = jax.lax.custom_linear_solve(operator, rhs, solve, symmetric=True)
    return dx_particular + project(z)


def _conjugate_gradients(
    matvec: Callable[[jax.Array], jax.Array], b: jax.Array, *, tol: float, maxiter: int
) -> jax.Array:
    """Conjugate gradients from zero, to relative residual `tol`.

    `jax.scipy.sparse.linalg.cg` would do, except that it `device_put`s its start together with
    the right-hand side, which ties the start to the tangent and makes its
    `custom_linear_solve` impossible to transpose inside a JVP rule (jax 0.10)."""
    threshold = (tol**2) * jnp.vdot(b, b)

    def cond(state: tuple) -> jax.Array:
        _, _, _, rs, k = state
        return (rs > threshold) & (k < maxiter)

    def body(state: tuple) -> tuple:
        x, r, p, rs, k = state
        ap = matvec(p)
        alpha = rs / jnp.vdot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = jnp.vdot(r, r)
        p = r + (rs_new / rs) * p
        return x, r, p, rs_new, k + 1

    start = (jnp.zeros_like(b), b, b, jnp.vdot(b, b), 0)
    return jax.lax.while_loop(cond, body, start)[0]


def differentiable(problem: Any) -> Callable:
    """`(x*, f*, operands) -> (x*, f*)`, the identity on values, whose JVP is the implicit
    derivative of the solution (and of the optimal value) with respect to the operands."""

    @jax.custom_jvp
    def attach(x: jax.Array, value: jax.Array, operands: list[Any]) -> tuple:
        return x, value

    def tangent(x: jax.Array, operands: list[Any], d_operands: list[Any]) -> tuple:
        dx = _implicit_tangent(problem, x, operands, d_operands)
        dvalue = jax.jvp(problem.f, (x, operands), (dx, d_operands))[1]
        return dx, dvalue

    @attach.defjvp
    def attach_jvp(primals: tuple, tangents: tuple) -> tuple:
        x, value, operands = primals
        _, _, d_operands = tangents
        dx, dvalue = tangent(x, operands, d_operands)
        return (x, value), (dx, dvalue.astype(value.dtype))

    return attach
