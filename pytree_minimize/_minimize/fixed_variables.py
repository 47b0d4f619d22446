"""Variables fixed by the bounds, taken out of the problem scipy solves and put back afterwards.

This module alone knows how to hand scipy a problem without the variables whose bounds fix them
(`lb == ub`, scipy's own test) and how to give everything scipy returns back its full width: the
objective's derivatives, the constraints (a linear one keeps its free columns and moves the fixed
ones into its bounds), the callback's intermediate results and the result itself.

Why: trust-constr keeps a fixed variable as a pair of constraints a few ulps apart. Its last
correction on them (about 1e-8) must lower a merit function whose objective term, evaluated in
float32, cannot resolve that change, so every step is refused until the trust radius falls below
`xtol` and the run ends with "Constraint violation exceeds 'gtol'". Without the fixed variables
there is nothing to correct. The method table says which methods need this
(`MethodInfo.drops_fixed_below_float64`); in float64 scipy runs unchanged (drop-in rule).
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize as sopt
import scipy.sparse as sparse
from scipy.sparse.linalg import LinearOperator

from .._core.methods import MethodInfo
from .._core.tree import Layout

__all__ = ["FixedVariables", "scipy_minimize"]


def _narrower_than_float64(layout: Layout) -> bool:
    """Whether some leaf computes in less than float64 (a complex leaf: per component)."""
    return any(
        spec.dtype.itemsize // (2 if spec.dtype.kind == "c" else 1) < 8 for spec in layout.leaves
    )


class FixedVariables(NamedTuple):
    """The variables that bounds fix, and their values: the one map between scipy's shortened
    vector (free variables only) and the full flat vector.

    Attributes:
        mask: True at each fixed variable of the full vector.
        values: The fixed values, in order.
    """

    mask: np.ndarray
    values: np.ndarray

    @classmethod
    def from_bounds(cls, bounds: Any, n: int, *, tolerance: float = 0.0) -> FixedVariables | None:
        """The variables with `|lb - ub| <= tolerance` (exactly equal by default), or None
        where there are none."""
        if bounds is None:
            return None
        lb = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,))
        ub = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,))
        mask = (lb <= ub) & (np.abs(lb - ub) <= tolerance)
        if not mask.any():
            return None
        return cls(mask, np.clip(0.5 * (lb + ub), lb, ub)[mask])

    def full(self, reduced: np.ndarray, fill: Any = None) -> np.ndarray:
        """The full vector: `reduced` on the free variables, the fixed values (or `fill`)."""
        reduced = np.asarray(reduced)
        out = np.empty(self.mask.size, dtype=np.result_type(reduced.dtype, np.float64))
        out[self.mask] = self.values if fill is None else fill
        out[~self.mask] = reduced
        return out

    def accepting_reduced(self, evaluate: Callable[[np.ndarray], Any]) -> Callable:
        """`evaluate` (a function of the full vector) callable with the shortened vector too."""
        n = self.mask.size

        def evaluated(x: np.ndarray) -> Any:
            x = np.asarray(x, dtype=np.float64)
            return evaluate(x if x.size == n else self.full(x))

        return evaluated


def scipy_minimize(
    info: MethodInfo,
    layout: Layout,
    bounds: sopt.Bounds | None,
    *,
    solve: Callable = sopt.minimize,
) -> Callable:
    """`solve` (scipy's `minimize`), or, where the method table asks for it and a leaf is
    narrower than float64, the same call on the problem without the variables the bounds fix.

    All variables fixed leaves scipy's own behaviour: there is nothing left to solve.

    Examples:
        >>> import numpy as np, scipy.optimize as sopt
        >>> from pytree_minimize._core.methods import METHODS
        >>> from pytree_minimize._core.tree import build_layout, describe_host_leaf
        >>> layout = build_layout(np.zeros(2, np.float32), describe_leaf=describe_host_leaf)
        >>> solve = scipy_minimize(METHODS["trust-constr"], layout, sopt.Bounds([0, 1], [2, 1]))
        >>> solve is sopt.minimize
        False
    """
    if not info.drops_fixed_below_float64 or bounds is None or not _narrower_than_float64(layout):
        return solve
    fixed = FixedVariables.from_bounds(bounds, layout.n)
    if fixed is None or fixed.mask.all():
        return solve
    return _Reduction(fixed, solve).minimize


class _Reduction:
    """The map between scipy's shortened vector and the full flat vector."""

    def __init__(self, fixed: FixedVariables, solve: Callable) -> None:
        self.solve = solve
        self.fixed = fixed.mask
        self.full = fixed.full
        self.free = np.flatnonzero(~fixed.mask)
        self.fixed_index = np.flatnonzero(fixed.mask)
        self.values = fixed.values
        # Full gradients of recent evaluations, to restore the fixed entries of the gradient
        # scipy reports (not always the latest: trust-region methods refuse trial points).
        self._gradients: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque(
            maxlen=4
        )
        self._constraint_jacobians: list[Callable[[], Any]] = []

    # -- vectors and matrices -------------------------------------------------------------

    def columns(self, matrix: Any) -> Any:
        """The free columns of a Jacobian (dense or sparse)."""
        if sparse.issparse(matrix):
            return matrix.tocsc()[:, self.free]
        return np.atleast_2d(np.asarray(matrix))[:, self.free]

    def square(self, matrix: Any) -> Any:
        """The free rows and columns of a Hessian (dense, sparse or a `LinearOperator`)."""
        if isinstance(matrix, LinearOperator):
            k = self.free.size

            def matvec(p: np.ndarray) -> np.ndarray:
                return np.asarray(matrix.matvec(self.full(np.ravel(p), 0.0)))[self.free]

            return LinearOperator((k, k), matvec=matvec, rmatvec=matvec, dtype=matrix.dtype)
        if sparse.issparse(matrix):
            return matrix.tocsr()[self.free][:, self.free]
        return np.asarray(matrix)[np.ix_(self.free, self.free)]

    def _gradient(self, full: np.ndarray) -> np.ndarray:
        full = np.asarray(full)
        reduced = full[self.free]
        self._gradients.append((reduced, full))
        return reduced

    def _full_gradient(self, reduced: Any) -> Any:
        if not isinstance(reduced, np.ndarray) or reduced.shape != self.free.shape:
            return reduced
        for seen, full in reversed(self._gradients):
            if seen is reduced or np.array_equal(seen, reduced):
                return full.copy()
        return self.full(reduced, np.nan)

    # -- the problem ----------------------------------------------------------------------

    def _constraint(self, c: Any) -> Any:
        if isinstance(c, sopt.LinearConstraint):
            matrix = c.A
            shift = np.ravel(np.asarray(matrix[:, self.fixed_index] @ self.values))
            self._constraint_jacobians.append(lambda: matrix)
            return sopt.LinearConstraint(
                self.columns(matrix), c.lb - shift, c.ub - shift, keep_feasible=c.keep_feasible
            )
        reduced = copy.copy(c)
        fun, jac, hess = c.fun, c.jac, c.hess
        reduced.fun = lambda x: fun(self.full(x))
        latest: list[Any] = [None]  # scipy reports the Jacobian it evaluated last
        self._constraint_jacobians.append(lambda: latest[0])
        if callable(jac):

            def reduced_jac(x: np.ndarray) -> Any:
                latest[0] = jac(self.full(x))
                return self.columns(latest[0])

            reduced.jac = reduced_jac
        if callable(hess):
            reduced.hess = lambda x, v: self.square(hess(self.full(x), v))
        return reduced

    def minimize(
        self,
        fun: Callable,
        x0: np.ndarray,
        *,
        jac: Any = None,
        hess: Any = None,
        hessp: Any = None,
        bounds: sopt.Bounds,
        constraints: Any = (),
        callback: Callable | None = None,
        **kwargs: Any,
    ) -> sopt.OptimizeResult:
        """`scipy.optimize.minimize` without the fixed variables, with full-width results."""
        full = self.full
        if jac is True:

            def reduced_fun(x: np.ndarray) -> Any:
                value, grad = fun(full(x))
                return value, self._gradient(grad)

        else:

            def reduced_fun(x: np.ndarray) -> Any:
                return fun(full(x))

        if callable(jac):
            user_jac = jac
            jac = lambda x: self._gradient(user_jac(full(x)))
        if callable(hess):
            user_hess = hess
            hess = lambda x: self.square(user_hess(full(x)))
        if callable(hessp):
            user_hessp = hessp
            hessp = lambda x, p: np.asarray(user_hessp(full(x), full(p, 0.0)))[self.free]
        keep = np.broadcast_to(bounds.keep_feasible, self.fixed.shape)[self.free]
        lb = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), self.fixed.shape)
        ub = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), self.fixed.shape)
        reduced_bounds = sopt.Bounds(lb[self.free], ub[self.free], keep_feasible=keep)
        if isinstance(constraints, dict | sopt.LinearConstraint | sopt.NonlinearConstraint):
            constraints = [constraints]
        self._constraint_jacobians = []
        reduced_constraints = [self._constraint(c) for c in constraints]
        reduced_callback = None
        if callback is not None:
            user_callback = callback

            def reduced_callback(intermediate_result: sopt.OptimizeResult) -> Any:
                return user_callback(intermediate_result=self.result(intermediate_result))

        result = self.solve(
            reduced_fun,
            np.asarray(x0)[self.free],
            jac=jac,
            hess=hess,
            hessp=hessp,
            bounds=reduced_bounds,
            constraints=reduced_constraints,
            callback=reduced_callback,
            **kwargs,
        )
        return self.result(result)

    # -- the results ----------------------------------------------------------------------

    def result(self, reduced: sopt.OptimizeResult) -> sopt.OptimizeResult:
        """A copy of scipy's (intermediate) result over the full vector.

        The fixed entries: `x` holds the fixed values; `grad` and constraint Jacobians the
        derivatives scipy's point was evaluated with (NaN where scipy took finite differences);
        the bounds' multipliers (`v[-1]`) absorb the rest of the Lagrangian's gradient there,
        so `lagrangian_grad` is zero on them, as at any solution.
        """
        out = sopt.OptimizeResult(reduced)
        out.x = self.full(reduced.x)
        grad = self._full_gradient(reduced.get("grad"))
        if isinstance(reduced.get("jac"), np.ndarray):
            out.jac = self._full_gradient(reduced.jac)
        if "grad" in reduced:
            out.grad = grad
        jacobians = reduced.get("jac")
        if not isinstance(jacobians, list) or len(jacobians) != len(self._constraint_jacobians) + 1:
            return out
        n = self.fixed.size
        full_jacobians = []
        for matrix, latest in zip(jacobians[:-1], self._constraint_jacobians, strict=True):
            evaluated = latest()
            if evaluated is not None and not sparse.issparse(evaluated):
                evaluated = np.atleast_2d(np.asarray(evaluated))
            if evaluated is None or np.shape(evaluated)[0] != np.shape(matrix)[0]:
                evaluated = np.full((np.shape(matrix)[0], n), np.nan)
                evaluated[:, self.free] = sparse.csr_array(matrix).toarray()
            full_jacobians.append(evaluated)
        bounds_jacobian = jacobians[-1]
        full_jacobians.append(
            sparse.eye_array(n, format="csr") if sparse.issparse(bounds_jacobian) else np.eye(n)
        )
        out.jac = full_jacobians
        if isinstance(reduced.get("constr"), list) and reduced.constr:
            out.constr = [*reduced.constr[:-1], self.full(reduced.constr[-1])]
        v = reduced.get("v")
        if isinstance(v, list) and len(v) == len(full_jacobians) and isinstance(grad, np.ndarray):
            rest = np.array(grad, dtype=np.float64)
            for matrix, vi in zip(full_jacobians[:-1], v[:-1], strict=True):
                rest = rest + np.asarray(matrix.T @ np.asarray(vi, dtype=np.float64)).ravel()
            bound_multipliers = self.full(v[-1], -rest[self.fixed_index])
            out.v = [*v[:-1], bound_multipliers]
            if isinstance(reduced.get("lagrangian_grad"), np.ndarray):
                out.lagrangian_grad = self.full(
                    reduced.lagrangian_grad,
                    rest[self.fixed_index] + bound_multipliers[self.fixed_index],
                )
        return out
