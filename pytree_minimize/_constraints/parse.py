"""Constraint parsing: the only module that knows the forms a user's constraint may take.

`minimize`, `argmin` and every port read constraints here, with one set of rules:

* `constraints` is None, one constraint, or a sequence of them (`TypeError` otherwise);
* a dict takes 'type' ('eq' or 'ineq', any case), 'fun', and optionally 'jac' and 'args'; an
  unknown key or 'type' is a `ValueError`, a 'fun' or 'jac' that cannot be called a `TypeError`;
* a `NonlinearConstraint`'s `jac` is a callable, '2-point' (meaning autodiff) or '3-point'; its
  `hess` a callable, a `HessianUpdateStrategy`, '2-point' or '3-point', scipy's default `BFGS()`
  meaning autodiff; 'cs' is refused for both (`ValueError`);
* anything else is a `TypeError` naming the accepted forms.

A parsed constraint keeps the user's `lb`/`ub` as given; broadcasting them over the constraint's
output is `_tree.broadcast_prefix`'s job, once the output's layout is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize as sopt

from .._core.methods import FINITE_DIFFERENCES
from .linear import LinearConstraint

__all__ = ["Parsed", "as_list", "parse", "parse_all"]

_DICT_KEYS = {"type", "fun", "jac", "args"}
_CONSTRAINT_TYPES = (dict, sopt.NonlinearConstraint, sopt.LinearConstraint, LinearConstraint)
EXPECTED = (
    "a dict {'type': 'eq' | 'ineq', 'fun': ..., 'jac'?: ..., 'args'?: ...}, a "
    "`scipy.optimize.NonlinearConstraint`, a `pytree_minimize.LinearConstraint`, or (for a "
    "single-array `x0`) a `scipy.optimize.LinearConstraint`"
)


@dataclass(frozen=True)
class Parsed:
    """One user constraint, read: `lb <= fun(x, *args) <= ub` (or `lb <= A x <= ub`).

    `form` is "function" (a dict or `NonlinearConstraint`), "affine" (`pytree_minimize.
    LinearConstraint`) or "matrix" (scipy's `LinearConstraint`, whose `A` is in `original`).
    `jac` and `hess` are None where autodiff supplies them.
    """

    index: int
    form: str
    original: Any
    fun: Callable | None
    args: tuple
    lb: Any
    ub: Any
    jac: Any = None
    hess: Any = None
    keep_feasible: Any = False

    @property
    def name(self) -> str:
        return f"constraints[{self.index}]"


def as_list(constraints: Any) -> list[Any]:
    """The user's constraints as a list (scipy takes one constraint or a sequence)."""
    if constraints is None:
        return []
    if isinstance(constraints, _CONSTRAINT_TYPES):
        return [constraints]
    if isinstance(constraints, Sequence) and not isinstance(constraints, str | bytes):
        return list(constraints)
    raise TypeError(
        f"`constraints` must be one constraint or a list of them; got "
        f"{type(constraints).__name__}. Each constraint is {EXPECTED}."
    )


def parse_all(constraints: Any) -> list[Parsed]:
    return [parse(c, i) for i, c in enumerate(as_list(constraints))]


def _as_tuple(args: Any) -> tuple:
    return args if isinstance(args, tuple) else (args,)


def parse(constraint: Any, index: int) -> Parsed:
    """Read one constraint (see the module docstring for the rules)."""
    name = f"constraints[{index}]"
    if isinstance(constraint, sopt.LinearConstraint):
        return Parsed(
            index, "matrix", constraint, None, (), constraint.lb, constraint.ub,
            keep_feasible=constraint.keep_feasible,
        )  # fmt: skip
    if isinstance(constraint, LinearConstraint):
        return Parsed(
            index, "affine", constraint, constraint.fun, _as_tuple(constraint.args),
            constraint.lb, constraint.ub, keep_feasible=constraint.keep_feasible,
        )  # fmt: skip
    if isinstance(constraint, dict):
        return _parse_dict(constraint, index, name)
    if isinstance(constraint, sopt.NonlinearConstraint):
        return _parse_nonlinear(constraint, index, name)
    raise TypeError(f"`{name}` is a {type(constraint).__name__}; expected {EXPECTED}.")


def _parse_dict(constraint: dict, index: int, name: str) -> Parsed:
    unknown = set(constraint) - _DICT_KEYS
    if unknown:
        raise ValueError(
            f"`{name}` has unknown key(s) {sorted(map(str, unknown))}; a constraint dict "
            "takes 'type' ('eq' or 'ineq'), 'fun', and optionally 'jac' and 'args'."
        )
    kind = constraint.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("eq", "ineq"):
        raise ValueError(
            f"`{name}['type']` is {kind!r}; expected 'eq' (fun(x) == 0) or 'ineq' (fun(x) >= 0)."
        )
    fun = constraint.get("fun")
    if not callable(fun):
        raise TypeError(
            f"`{name}['fun']` must be callable as `fun(x, *args)`; got {type(fun).__name__}."
        )
    jac = constraint.get("jac")
    if jac is not None and not callable(jac):
        raise TypeError(
            f"`{name}['jac']` must be callable as `jac(x, *args)` or left out (autodiff); "
            f"got {type(jac).__name__}."
        )
    upper = 0.0 if kind.lower() == "eq" else np.inf
    return Parsed(
        index, "function", constraint, fun, _as_tuple(constraint.get("args", ())), 0.0, upper, jac
    )


def _is_default_hess(hess: Any) -> bool:
    """True for the fresh `BFGS()` that `NonlinearConstraint` stores when `hess` is omitted."""
    return (
        type(hess) is sopt.BFGS
        and isinstance(hess.init_scale, str)
        and hess.init_scale == "auto"
        and hess.exception_strategy == "skip_update"
        and hess.min_curvature == 1e-8
        and getattr(hess, "B", None) is None
        and getattr(hess, "H", None) is None
    )


def _parse_nonlinear(constraint: sopt.NonlinearConstraint, index: int, name: str) -> Parsed:
    if not callable(constraint.fun):
        raise TypeError(
            f"`{name}.fun` must be callable as `fun(x)`; got {type(constraint.fun).__name__}."
        )
    jac = constraint.jac
    if isinstance(jac, str):
        if jac not in FINITE_DIFFERENCES:
            raise ValueError(
                f"`{name}.jac` is {jac!r}; expected a callable, '2-point' (the default: "
                "autodiff) or '3-point'."
            )
        if jac == "cs":
            raise ValueError(
                f"`{name}.jac` is 'cs'; complex-step differences are not available for "
                "constraints. Leave `jac` out to use autodiff."
            )
        jac = None if jac == "2-point" else jac
    elif not callable(jac):
        raise TypeError(
            f"`{name}.jac` must be a callable `jac(x)`, or left out (autodiff); got "
            f"{type(jac).__name__}."
        )
    hess = constraint.hess
    if _is_default_hess(hess):
        hess = None
    elif isinstance(hess, str) and hess == "cs":
        raise ValueError(
            f"`{name}.hess` is 'cs'; complex-step differences are not available for "
            "constraints. Leave `hess` out to use autodiff Hessian-vector products."
        )
    elif not (
        callable(hess)
        or isinstance(hess, sopt.HessianUpdateStrategy)
        or (isinstance(hess, str) and hess in FINITE_DIFFERENCES)
    ):
        raise TypeError(
            f"`{name}.hess` must be a callable `hess(x, v)`, a `HessianUpdateStrategy`, "
            f"'2-point', '3-point', or left out (autodiff); got {type(hess).__name__}."
        )
    return Parsed(
        index, "function", constraint, constraint.fun, (), constraint.lb, constraint.ub, jac,
        hess, constraint.keep_feasible,
    )  # fmt: skip
