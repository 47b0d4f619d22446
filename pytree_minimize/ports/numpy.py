"""`minimize` for NumPy: nested structures of arrays, gradients from the user or from scipy.

There is no autodiff. Give the gradient as scipy (and dict_minimize) take it: `jac=True` with
`fun(x, *args)` returning `(value, gradient)` where `gradient` is shaped like `x`, or a callable
`jac(x, *args)` returning a structure like `x`. With `jac=None` gradient methods use scipy's
finite differences, as scipy does. Second-order methods take `hess` (dense over the flat vector)
or `hessp(x, p, *args)`; constraint Jacobians come from finite differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.optimize as sopt

from .. import _driver
from .._global_optimize import global_optimizers
from .._methods import normalize_method
from .._tree import Bounds, PyTree
from ._numpy_backend import NumpyBackend

__all__ = [
    "Bounds",
    "basinhopping",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "minimize",
    "shgo",
]

_BACKEND = NumpyBackend()


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
) -> sopt.OptimizeResult:
    """Minimise a scalar NumPy function of a nested structure of arrays with any
    `scipy.optimize.minimize` method.

    The arguments and their order are scipy's and :func:`pytree_minimize.minimize`'s.

    Args:
        fun: `fun(x, *args) -> float`, or `(float, gradient)` with `jac=True`; `x` has the
            structure of `x0`, with arrays of its leaves' dtypes.
        x0: Initial guess: a nested structure (dict, list, tuple, namedtuple, OrderedDict) of
            floating-point (or complex) arrays or Python floats. Never mutated.
        args: Extra arguments for `fun`, passed unchanged.
        method: A scipy method name; None chooses as scipy does.
        jac: True (`fun` returns `(value, gradient)`), a callable returning a structure like `x`,
            `'2-point'`, `'3-point'`, `'cs'`, or None (scipy's finite differences).
        hess: A callable returning the dense Hessian over the flat vector, a
            `HessianUpdateStrategy`, a finite-difference scheme, or None.
        hessp: `hessp(x, p, *args)` returning a structure like `x`, or None.
        bounds: `Bounds(lb, ub)` with bounds shaped like `x0` (or a prefix of it); for a
            single-array `x0` also scipy's `Bounds` or `(min, max)` pairs.
        constraints: scipy's constraint forms, with functions of the structure `x`; their
            Jacobians come from finite differences.
        tol: Tolerance, passed to scipy.
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` a structure of
            arrays.
        options: Method options, passed to scipy.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult`, with `x` and `jac` structured like `x0` and `history`.

    Raises:
        ValueError: a method that needs a gradient (Newton-CG, dogleg, trust-*) without `jac`, or
            one that needs second derivatives without `hess` or `hessp`.

    Examples:
        >>> import numpy as np
        >>> from pytree_minimize.ports.numpy import minimize
        >>> def f(p):
        ...     value = np.sum((p["w"] - 3.0) ** 2) + (p["b"] + 1.0) ** 2
        ...     return value, {"w": 2 * (p["w"] - 3.0), "b": 2 * (p["b"] + 1.0)}
        >>> res = minimize(f, {"w": np.zeros(2), "b": 0.0}, jac=True, method="L-BFGS-B")
        >>> np.round(res.x["w"], 4).tolist(), round(res.x["b"], 4)
        ([3.0, 3.0], -1.0)
    """
    _check_derivatives(method, jac, hess, hessp, bounds, constraints)
    return _driver.minimize(
        _BACKEND,
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        bounds=bounds,
        constraints=constraints,
        tol=tol,
        callback=callback,
        options=options,
        progress=progress,
    )


def _check_derivatives(
    method: Any, jac: Any, hess: Any, hessp: Any, bounds: Any, constraints: Any
) -> None:
    """Name the missing argument where scipy would fail for want of a derivative."""
    if not isinstance(method, str):
        return
    info = normalize_method(
        method, has_bounds=bounds is not None, has_constraints=bool(constraints)
    )
    if not info.needs_jac:
        return
    if jac is None or jac is False:
        raise ValueError(
            f"method {info.name!r} needs a gradient, and the NumPy port has no autodiff: pass "
            "`jac=True` (fun returns `(value, gradient)`) or a `jac` callable."
        )
    # With `jac=True` the driver differences the user's gradient (scipy's '2-point').
    if hess is None and hessp is None and info.needs_hess and jac is not True:
        needs = "`hess`" if info.hessian == "dense" else "`hess` or `hessp`"
        raise ValueError(
            f"method {info.name!r} needs second derivatives, and the NumPy port has no autodiff: "
            f"pass {needs}."
        )


# The global optimisers. NumPy cannot vectorise a function, so a population is evaluated in one
# call only where the user says `func` takes one (`vectorized=True`).
(
    differential_evolution,
    dual_annealing,
    basinhopping,
    shgo,
    direct,
) = global_optimizers(
    lambda template: _BACKEND,
    leaves="NumPy floating-point arrays (or Python floats)",
    batched=(
        "evaluated in one call of `func` when `vectorized=True` (then `func` takes the whole "
        "population, every leaf with a leading axis of S members, and returns S values); "
        "otherwise member by member"
    ),
)
