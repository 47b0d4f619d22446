"""The public `LinearConstraint`: a linear constraint stated as a function of the pytree `x`.

This module knows only what the user writes; `_constraint_parse` reads it and `_constraints`
computes its matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

__all__ = ["LinearConstraint"]


class LinearConstraint:
    """A linear constraint `lb <= fun(x, *args) <= ub` stated as a function of the pytree `x`;
    called with a matrix, as `LinearConstraint(A, lb, ub, keep_feasible)`, it is scipy's own.

    `fun` must be affine in `x` (a sum of matrix products, sums, slices, constants...). Its
    matrix over the flat vector is computed once, by autodiff at `x0`, and scipy receives a real
    `scipy.optimize.LinearConstraint`, so trust-constr and COBYQA treat the constraint as linear
    and SLSQP gets a constant Jacobian. Before the run `fun` is checked at a second point; a
    function that is not affine raises `ValueError` (state it as a `NonlinearConstraint`).

    Called as scipy's `LinearConstraint(A, lb, ub, keep_feasible)`, with a matrix `A` (anything
    not callable) in place of `fun`, it returns `scipy.optimize.LinearConstraint(A, lb, ub,
    keep_feasible)` itself, so code written for scipy gets scipy's object (it acts on a single
    real array `x0`).

    Args:
        fun: `fun(x, *args)` returning an array or a pytree of arrays, linear in `x`.
        lb: Lower bound: a scalar, a pytree like `fun`'s output (or a prefix of it: a scalar for
            a whole subtree), or a flat vector over the raveled output. None or `-inf`: no
            lower bound.
        ub: Upper bound, the same way. `lb == ub` states an equality.
        keep_feasible: Passed to scipy (trust-constr keeps the iterates feasible); a bool or a
            pytree of bools like `lb`.
        args: Extra arguments for `fun` (traced, so new values never recompile).

    Examples:
        Portfolio weights split by asset class must sum to one:

        >>> import jax.numpy as jnp
        >>> from pytree_minimize import LinearConstraint
        >>> total = lambda w: jnp.sum(w["stocks"]) + jnp.sum(w["bonds"])
        >>> budget = LinearConstraint(total, lb=1.0, ub=1.0)
        >>> type(LinearConstraint([[1.0, 1.0]], 1.0, 1.0)).__module__
        'scipy.optimize._constraints'
    """

    __slots__ = ("args", "fun", "keep_feasible", "lb", "ub")

    #: Stated over the pytree `x`, which scipy cannot take (`Bounds.is_pytree` says the same of
    #: bounds): a problem holding it is never handed to scipy as it is.
    is_pytree = True

    def __new__(
        cls,
        fun: Callable[..., Any],
        lb: Any = -np.inf,
        ub: Any = np.inf,
        keep_feasible: Any = False,
        *,
        args: tuple = (),
    ) -> Any:
        if not callable(fun):  # scipy's call, `LinearConstraint(A, lb, ub, keep_feasible)`
            return sopt.LinearConstraint(fun, lb, ub, keep_feasible)
        return super().__new__(cls)

    def __init__(
        self,
        fun: Callable[..., Any],
        lb: Any = -np.inf,
        ub: Any = np.inf,
        keep_feasible: Any = False,
        *,
        args: tuple = (),
    ) -> None:
        self.fun = fun
        self.lb = lb
        self.ub = ub
        self.args = args
        self.keep_feasible = keep_feasible

    def __repr__(self) -> str:
        name = getattr(self.fun, "__name__", type(self.fun).__name__)
        return f"LinearConstraint(fun={name}, lb={self.lb!r}, ub={self.ub!r})"
