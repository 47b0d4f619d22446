"""scipy emission: prepared constraints in the form the method takes, and multipliers back.

This module alone knows scipy's constraint objects: old-style dicts (`c[eq] - lb == 0`,
`[c - lb, ub - c] >= 0`) or `NonlinearConstraint`/`LinearConstraint`, chosen by the method
table's `constraint_form`; the variables COBYLA and COBYQA drop when bounds fix them; and how the
multipliers scipy returns map back to one pytree per user constraint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize as sopt

from .._core.methods import MethodInfo, check_takes
from .._minimize.fixed_variables import FixedVariables
from .derivatives import Prepared, prepare
from .parse import Parsed

if TYPE_CHECKING:
    from .._core.backend import Backend
    from .._core.tree import Layout, PyTree

__all__ = ["ScipyConstraints", "attach_multipliers", "to_scipy"]


# ---------------------------------------------------------------------------------------------
# Emitting scipy's forms.


class ScipyConstraints(list):  # type: ignore[type-arg]
    """The constraints handed to scipy, remembering which user constraint each came from."""

    def __init__(self, items: list[Any], prepared: list[Prepared], info: MethodInfo) -> None:
        super().__init__(items)
        self.prepared = prepared
        self.info = info


def _slsqp_dicts(prepared: list[Prepared]) -> list[dict[str, Any]]:
    """Old-style dicts. `lb <= c(x) <= ub` becomes `c[eq] - lb[eq] == 0` and
    `[c - lb, ub - c][finite] >= 0`; SLSQP orders its multipliers equalities first."""
    equalities: list[dict[str, Any]] = []
    inequalities: list[dict[str, Any]] = []
    for p in prepared:
        eq = np.flatnonzero(p.lb == p.ub)
        lower = np.flatnonzero((p.lb != p.ub) & np.isfinite(p.lb))
        upper = np.flatnonzero((p.lb != p.ub) & np.isfinite(p.ub))
        p.rows = {"eq": eq, "lower": lower, "upper": upper}
        jacobian = p.jacobian if callable(p.jacobian) else None
        if eq.size:
            equalities.append(_slsqp_eq(p, eq, jacobian))
        if lower.size or upper.size:
            inequalities.append(_slsqp_ineq(p, lower, upper, jacobian))
    offset = 0
    for p in prepared:
        p.rows["eq_offset"] = offset
        offset += p.rows["eq"].size
    for p in prepared:
        p.rows["ineq_offset"] = offset
        offset += p.rows["lower"].size + p.rows["upper"].size
    return equalities + inequalities


def _slsqp_eq(p: Prepared, rows: np.ndarray, jacobian: Callable | None) -> dict[str, Any]:
    target = p.lb[rows]
    if rows.size == p.m and not target.any():
        out: dict[str, Any] = {"type": "eq", "fun": p.values}
        if jacobian is not None:
            out["jac"] = jacobian
        return out
    out = {"type": "eq", "fun": lambda x: p.values(x)[rows] - target}
    if jacobian is not None:
        out["jac"] = lambda x: np.atleast_2d(jacobian(x))[rows]
    return out


def _slsqp_ineq(
    p: Prepared, lower: np.ndarray, upper: np.ndarray, jacobian: Callable | None
) -> dict[str, Any]:
    lb, ub = p.lb[lower], p.ub[upper]
    if lower.size == p.m and not upper.size and not lb.any():
        out: dict[str, Any] = {"type": "ineq", "fun": p.values}
        if jacobian is not None:
            out["jac"] = jacobian
        return out

    def fun(x: np.ndarray) -> np.ndarray:
        c = p.values(x)
        return np.concatenate([c[lower] - lb, ub - c[upper]])

    out = {"type": "ineq", "fun": fun}
    if jacobian is not None:

        def jac(x: np.ndarray) -> np.ndarray:
            matrix = np.atleast_2d(jacobian(x))
            return np.concatenate([matrix[lower], -matrix[upper]])

        out["jac"] = jac
    return out


def _new_style(p: Prepared, info: MethodInfo, *, fixed: FixedVariables | None = None) -> Any:
    keep = p.keep_feasible
    if fixed is not None and (p.matrix is None or info.drops_fixed_in_linear):
        # Variables fixed by the bounds: a function that also accepts the shortened vector
        # (for COBYLA linear constraints too, whose matrix it would not shorten).
        return sopt.NonlinearConstraint(fixed.accepting_reduced(p.values), p.lb, p.ub)
    if p.matrix is not None:
        return sopt.LinearConstraint(p.matrix, p.lb, p.ub, keep_feasible=keep)
    if not info.constraint_derivatives:
        return sopt.NonlinearConstraint(p.values, p.lb, p.ub)
    return sopt.NonlinearConstraint(
        p.values,
        p.lb,
        p.ub,
        jac="2-point" if p.jacobian is None else p.jacobian,
        hess=p.hess,
        keep_feasible=keep,
    )


def _prima_fixed(bounds: Any, n: int) -> FixedVariables | None:
    """The variables that scipy 1.17's COBYLA and COBYQA remove because their bounds fix them,
    by PRIMA's own test: |lb - ub| below a tolerance relative to the bounds' magnitude.

    Both drop such variables from the objective but call nonlinear constraints with the
    shortened vector (COBYQA when it measures the constraint violation); COBYLA's PRIMA port
    also keeps linear constraints at full width (libprima/prima#249, fixed upstream in
    libprima/prima#251). Constraint functions made `accepting_reduced` put the fixed values
    back; called with the full vector, they pass it on unchanged.
    """
    if bounds is None:
        return None
    finite = np.concatenate(
        [np.ravel(side)[np.isfinite(np.ravel(side))] for side in (bounds.lb, bounds.ub)]
    )
    scale = max(float(np.max(np.abs(finite), initial=1.0)), 1.0)
    return FixedVariables.from_bounds(bounds, n, tolerance=10.0 * np.finfo(float).eps * n * scale)


def to_scipy(
    constraints: list[Parsed],
    info: MethodInfo,
    *,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    trees: Any,
    bounds: sopt.Bounds | None = None,
) -> list[Any]:
    """scipy constraint objects over the flat vector, in the form the method takes."""
    if not constraints:
        return []
    check_takes(info, bounds=False, constraints=True)
    x0_flat = layout.ravel([backend.to_numpy(leaf) for leaf in trees.x0_leaves])
    prepared = [
        prepare(
            c,
            derivatives=info.constraint_derivatives,
            hessians=info.constraint_hessians,
            backend=backend,
            layout=layout,
            x0=x0,
            x0_flat=x0_flat,
            trees=trees,
        )
        for c in constraints
    ]
    if info.constraint_form == "object":
        fixed = _prima_fixed(bounds, layout.n) if info.drops_fixed_variables else None
        items = [_new_style(p, info, fixed=fixed) for p in prepared]
    else:
        # Old-style dicts: SLSQP, and custom methods, which scipy hands dicts.
        items = _slsqp_dicts(prepared)
    return ScipyConstraints(items, prepared, info)


# ---------------------------------------------------------------------------------------------
# Results.


def attach_multipliers(
    result: sopt.OptimizeResult, constraints: list[Any], scipy_constraints: Any, info: MethodInfo
) -> None:
    """Add `constraint_multipliers`: one pytree per user constraint, shaped like its output.

    The sign convention is one for every method: at a solution, `grad f(x) = sum_i J_i(x)^T
    lambda_i` plus the bounds' terms, so `lambda_i` is the rate at which the optimal value
    rises as the bound that holds constraint `i` is tightened by one unit: >= 0 on an active
    lower bound (and on an active 'ineq' dict), <= 0 on an active upper bound, zero where no
    bound is active. For SLSQP this equals scipy's `multipliers` on dict constraints; for
    trust-constr it is minus scipy's `v`. scipy's own fields are left as they are.
    """
    if not isinstance(scipy_constraints, ScipyConstraints) or not scipy_constraints.prepared:
        return
    prepared = scipy_constraints.prepared
    if scipy_constraints.info.multipliers == "multipliers":
        flat = result.get("multipliers")
        if flat is None:
            return
        flat = np.asarray(flat, dtype=np.float64)
        trees = []
        for p in prepared:
            lam = np.zeros(p.m)
            rows = p.rows
            start = rows["eq_offset"]
            lam[rows["eq"]] = flat[start : start + rows["eq"].size]
            start = rows["ineq_offset"]
            n_lower = rows["lower"].size
            lam[rows["lower"]] += flat[start : start + n_lower]
            lam[rows["upper"]] -= flat[start + n_lower : start + n_lower + rows["upper"].size]
            trees.append(p.tree(lam))
        result.constraint_multipliers = trees
    elif scipy_constraints.info.multipliers == "negated_v":
        v = result.get("v")
        if v is None or len(v) < len(prepared):
            return
        result.constraint_multipliers = [
            p.tree(-np.asarray(vi, dtype=np.float64)) for p, vi in zip(prepared, v, strict=False)
        ]
