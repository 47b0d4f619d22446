"""`minimize`'s public signature and docstring, written once for every framework (see
`_core.surface`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.optimize as sopt

from .._core.surface import EntryPoint
from .._core.tree import PyTree
from . import driver


def minimize(
    fun: Callable[..., Any],
    x0: PyTree,
    args: Any = (),
    method: str | Callable | None = None,
    jac: Any = None,
    hess: Any = None,
    hessp: Callable | None = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    *,
    progress: Any = False,
    blas_threads: int | str | None = "auto",
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Minimise a scalar $framework function of a $tree with any `scipy.optimize.minimize` method.

    The arguments and their order are scipy's, so a scipy call works unchanged; `x0` may be any
    $tree of $leaves, and derivatives come from $derivatives.

    Args:
        fun: `fun(x, *args) -> scalar`, $code; `x` has `x0`'s structure.
        x0: Initial guess, a $tree of $leaves. Never mutated. An `x0` that scipy reads as a
            1-D array (a number, a flat list of numbers, an integer array) is that array, cast
            as scipy casts it.
        args: Extra arguments for `fun` ($args).
        method: A scipy method name, or 'ipopt' (IPOPT, the `ipopt` extra: $ipopt_derivatives);
            None chooses as scipy does (SLSQP with constraints, L-BFGS-B with bounds, BFGS
            otherwise).
        jac: None ($jac_none), True (`fun` returns `(value, gradient)`, the gradient shaped
            like `x`), a callable `jac(x, *args)` returning a $tree like `x`, or `'2-point'`,
            `'3-point'`, `'cs'`.
        hess: None ($hess_none), a callable returning the dense Hessian over the flat vector, a
            `HessianUpdateStrategy`, or a finite-difference scheme.
        hessp: None ($hessp_none) or `hessp(x, p, *args)` returning a $tree like `x`.
        bounds: `Bounds(lb, ub)` with each side None, a $tree like `x0` or a prefix of it (a
            scalar bounds a whole subtree); for a single-array `x0` also scipy's `Bounds` or a
            sequence of `(min, max)` pairs.
        constraints: scipy's forms (dicts, `NonlinearConstraint`, `LinearConstraint` for a
            single-array `x0`) with functions of the $tree `x`, or
            `pytree_minimize.LinearConstraint(fun, lb, ub)` for a function linear in `x`; one
            or a list. Their Jacobians (and constraint Hessians) $constraint_derivatives.
        tol: Tolerance, passed to scipy.
        callback: `callback(intermediate_result)` (an `OptimizeResult` whose `x` is a $tree)
            or the legacy `callback(xk)`; raising `StopIteration` ends the run.
        options: Method options, passed to scipy.
        progress: True for a tqdm progress bar, or a tqdm instance.
        blas_threads: BLAS threads while scipy iterates. 'auto' holds BLAS to one thread for
            the methods that only update vectors (L-BFGS-B, CG, TNC, Newton-CG, trust-ncg,
            trust-krylov, Nelder-Mead, Powell, COBYLA), where threaded BLAS calls wait on cores
            held by other thread pools, and leaves it alone for methods with dense matrices; an
            int holds it to that many threads; None leaves it alone.
        sparse: Sparse derivatives: 'auto' makes a derivative sparse where its dense matrix
            would hold more than 10^6 entries (trust-constr's constraint Jacobians, IPOPT's
            Jacobians and Hessians); True makes every derivative the method can take sparse
            (trust-constr's Hessians too, in place of products); False keeps them dense.
            $sparse_support

    Returns:
        scipy's `OptimizeResult`: `x` and `jac` shaped like `x0` ($result_leaves); `fun`,
        `success`, `status`, `message`, `nit`, `nfev`, `njev`, `nhev` as scipy reports them;
        `history` (per-iteration `fun`, `time` and, for gradient methods, `grad_norm`); for
        SLSQP and trust-constr with constraints, `constraint_multipliers` (one pytree per
        constraint, shaped like its output); with `bounds`, `active_bounds` (a pytree like
        `x0` of int8: -1 at the lower bound, 0 free, +1 at the upper bound); where a derivative
        was sparse, `sparsity` (its `Sparsity` record, nonzeros and colours, by argument:
        'hess', 'constraints[0].jac', ...). IPOPT's results also carry
        `constraint_multipliers` and `bound_multipliers` (a pytree like `x0`).

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import minimize
        >>> def f(p):
        ...     return $sum((p["w"] - 3.0) ** 2) + (p["b"] + 1.0) ** 2
        >>> x0 = {"w": $tensor(np.zeros(2)), "b": $tensor(np.zeros(()))}
        >>> res = minimize(f, x0, method="L-BFGS-B")
        >>> [round(float(v), 4) for v in res.x["w"]], round(float(res.x["b"]), 4)
        ([3.0, 3.0], -1.0)
    """
    raise NotImplementedError  # the stub of every framework's `minimize` (`_core.surface`)


MINIMIZE = EntryPoint(minimize, driver.minimize)
