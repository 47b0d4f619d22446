"""Constraints on pytrees, translated into scipy's constraint objects over the flat vector.

A constraint function takes the pytree `x` (and its `args`) and returns an array or a pytree of
arrays; its Jacobian (and, for trust-constr, the Hessian of `v . c(x)` as Hessian-vector products)
comes from the backend's autodiff unless the user gives one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize as sopt

if TYPE_CHECKING:
    from ._backend import Backend
    from ._driver import MethodInfo
    from ._tree import Layout, PyTree

_CONSTRAINT_TYPES = (dict, sopt.NonlinearConstraint, sopt.LinearConstraint)


def as_list(constraints: Any) -> list[Any]:
    """The user's constraints as a list (scipy takes one constraint or a sequence)."""
    if constraints is None:
        return []
    if isinstance(constraints, _CONSTRAINT_TYPES):
        return [constraints]
    if isinstance(constraints, Sequence) and not isinstance(constraints, str):
        return list(constraints)
    raise TypeError(
        "`constraints` must be a dict, a `NonlinearConstraint`, a `LinearConstraint`, or a "
        f"list of them; got {type(constraints).__name__}."
    )


def to_scipy(
    constraints: list[Any],
    info: MethodInfo,
    *,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    trees: Any,
) -> list[Any]:
    """scipy constraint objects over the flat vector."""
    if not constraints:
        return []
    if not info.constraints:
        raise ValueError(
            f"`constraints` were given, but method {info.name!r} does not take constraints; use "
            "'SLSQP', 'trust-constr', 'COBYLA' or 'COBYQA'."
        )
    return [_one(c, i, backend, layout, x0) for i, c in enumerate(constraints)]


def _one(constraint: Any, index: int, backend: Backend, layout: Layout, x0: PyTree) -> Any:
    if isinstance(constraint, sopt.LinearConstraint):
        if not layout.is_single_array:
            raise TypeError(
                f"`constraints[{index}]` is scipy's `LinearConstraint`, whose matrix acts on a "
                "single array; for a pytree `x0` state the constraint as a function."
            )
        return constraint
    if isinstance(constraint, dict):
        kind = constraint.get("type")
        if kind not in ("eq", "ineq"):
            raise ValueError(
                f"`constraints[{index}]['type']` is {kind!r}; expected 'eq' or 'ineq'."
            )
        fun = constraint.get("fun")
        if not callable(fun):
            raise TypeError(f"`constraints[{index}]['fun']` must be callable.")
        args = constraint.get("args", ())
        if not isinstance(args, tuple):
            args = (args,)
        out_layout = backend.output_layout(fun, layout, args, x0)
        values, jacobian, _ = backend.constraint(fun, layout, args, out_layout)
        return {"type": kind, "fun": values, "jac": jacobian}
    if isinstance(constraint, sopt.NonlinearConstraint):
        fun = constraint.fun
        out_layout = backend.output_layout(fun, layout, (), x0)
        values, jacobian, hvp = backend.constraint(fun, layout, (), out_layout)

        def hess(x: np.ndarray, v: np.ndarray) -> sopt.LinearOperator:
            return sopt.LinearOperator(
                (layout.n, layout.n), matvec=lambda p: hvp(x, v, np.ravel(p)), dtype=np.float64
            )

        return sopt.NonlinearConstraint(
            values, constraint.lb, constraint.ub, jac=jacobian, hess=hess
        )
    raise ValueError(
        f"`constraints[{index}]` is a {type(constraint).__name__}; expected a dict with 'type' "
        "and 'fun', a `NonlinearConstraint`, or a `LinearConstraint`."
    )


def attach_multipliers(
    result: sopt.OptimizeResult, constraints: list[Any], scipy_constraints: Any, info: MethodInfo
) -> None:
    """Multipliers shaped like each constraint's output (filled in by the constraints issue)."""
    return None
