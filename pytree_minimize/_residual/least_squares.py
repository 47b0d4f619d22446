"""The `least_squares` driver: scipy's `least_squares` calling conventions and nothing else.

It knows its Jacobian forms (a dense matrix, or a `LinearOperator` only with
`tr_solver='lsmr'`), its bounds and `x_scale` conventions, its callback and its result fields.
Per-method facts come from the `least_squares` table in :mod:`._methods`; residual evaluations
from :mod:`._residuals`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from .._core.active_bounds import active_bounds
from .._core.backend import Backend, BackendType
from .._core.bounds import bounds_pair, flat_x_scale
from .._core.callbacks import check_callable, wants_intermediate_result
from .._core.methods import (
    FINITE_DIFFERENCES,
    LeastSquaresMethod,
    least_squares_method,
    least_squares_names_where,
)
from .._core.progress import History, make_progress
from .._core.tree import PyTree, element_at
from .._core.trees import Start, start
from . import residuals as _residuals
from .residuals import Residuals

TR_SOLVERS = (None, "exact", "lsmr")


def least_squares(
    backend_type: BackendType,
    fun: Callable,
    x0: PyTree,
    *,
    jac: Any,
    bounds: Any,
    method: str,
    ftol: float | None,
    xtol: float | None,
    gtol: float | None,
    x_scale: Any,
    loss: Any,
    f_scale: float,
    diff_step: Any,
    tr_solver: str | None,
    tr_options: dict | None,
    jac_sparsity: Any,
    max_nfev: int | None,
    verbose: int,
    args: Any,
    kwargs: dict | None,
    callback: Callable | None,
    workers: Any,
    progress: Any,
) -> sopt.OptimizeResult:
    """scipy.optimize.least_squares over pytrees for any backend (see
    `pytree_minimize.least_squares`); options by keyword."""
    check_callable(fun, "fun", "fun(x, *args, **kwargs)")
    check_callable(callback, "callback", "callback(intermediate_result)", optional=True)
    info = least_squares_method(method)
    if tr_solver not in TR_SOLVERS:
        raise ValueError(f"`tr_solver` must be None, 'exact' or 'lsmr'; got {tr_solver!r}.")
    args = _residuals.as_args(args)
    bound_fun, bound_args = _residuals.bind_kwargs(fun, args, kwargs)
    begun = start(backend_type, x0, bound_args, entry="least_squares", finite=True)
    backend, layout = begun.backend, begun.layout

    lb, ub = bounds_pair(bounds, layout, backend)
    bounded = bool(np.isfinite(lb).any() or np.isfinite(ub).any())
    if bounded and not info.bounds:
        raise ValueError(
            f"`bounds` were given, but method {info.name!r} does not take bounds; use method="
            f"{least_squares_names_where(lambda i: i.bounds)}."
        )
    _check_bounds(begun, lb, ub)
    scale = flat_x_scale(x_scale, layout, backend)

    with backend.precision(layout):
        residuals = Residuals(backend, bound_fun, layout, bound_args, x0)
        if info.needs_m_ge_n and residuals.m < residuals.n:
            raise ValueError(
                f"method {info.name!r} needs at least as many residuals as parameters; `fun` "
                f"returns {residuals.m} residuals for {residuals.n} parameters. Use method="
                f"{least_squares_names_where(lambda i: not i.needs_m_ge_n)}."
            )
        scipy_jac = _jacobian(backend, residuals, jac, info, tr_solver, begun, args, kwargs)
        history = History(
            gradient=False, bar=make_progress(progress), owns_bar=not hasattr(progress, "update")
        )
        scipy_callback = _callback(callback, begun, history, info, progress)
        try:
            history.start(time.perf_counter())
            result = sopt.least_squares(
                residuals.values,
                begun.x0_flat,
                jac=scipy_jac,
                bounds=(lb, ub),
                method=method,
                ftol=ftol,
                xtol=xtol,
                gtol=gtol,
                x_scale=scale,
                loss=loss,
                f_scale=f_scale,
                diff_step=diff_step,
                tr_solver=tr_solver,
                tr_options=tr_options,
                jac_sparsity=jac_sparsity,
                max_nfev=max_nfev,
                verbose=verbose,
                callback=scipy_callback,
                workers=workers,
            )
        finally:
            history.close()
    if bounded:  # the package's one policy, as `minimize`'s bounded results (beside scipy's mask)
        result.active_bounds = active_bounds(result.x, lb, ub, layout)
    return _result(result, begun, residuals, history)


def _check_bounds(start: Start, lb: np.ndarray, ub: np.ndarray) -> None:
    """scipy's own conditions on bounds, with messages that name the leaf."""
    equal = np.flatnonzero(lb >= ub)
    if equal.size:
        raise ValueError(
            f"`bounds` has lb == ub at {element_at(start.layout, int(equal[0]))}: "
            f"{lb[equal[0]]}. least_squares needs each lower bound strictly below its upper "
            "bound; pass a fixed value through `args` instead."
        )
    outside = np.flatnonzero((start.x0_flat < lb) | (start.x0_flat > ub))
    if outside.size:
        i = int(outside[0])
        raise ValueError(
            f"`x0` lies outside `bounds` at {element_at(start.layout, i)}: {start.x0_flat[i]} is "
            f"not in [{lb[i]}, {ub[i]}]. Start from a point inside the bounds."
        )


def _jacobian(
    backend: Backend,
    residuals: Residuals,
    jac: Any,
    info: LeastSquaresMethod,
    tr_solver: str | None,
    start: Start,
    args: tuple,
    kwargs: dict | None,
) -> Any:
    """scipy's `jac`: autodiff (dense, or a `LinearOperator` for `tr_solver='lsmr'`), a
    finite-difference scheme, or the user's callable over pytrees."""
    if jac is None:
        if not backend.autodiff:
            return "2-point"  # scipy's default, for a framework without autodiff
        if tr_solver == "lsmr" and info.operator_jacobian:
            return residuals.operator()
        return residuals.jacobian()
    if isinstance(jac, str):
        if jac not in FINITE_DIFFERENCES:
            raise ValueError(
                f"`jac` must be None (autodiff), a callable, or one of "
                f"{', '.join(map(repr, FINITE_DIFFERENCES))}; got {jac!r}."
            )
        return jac
    if callable(jac):
        shape = (residuals.m, residuals.n)
        user_jac, trees, extra = jac, start.trees, kwargs or {}

        def flat_jac(x: np.ndarray) -> Any:
            matrix = user_jac(trees.tree(x), *args, **extra)
            return _residuals.check_flat_matrix(matrix, shape, name="jac")

        return flat_jac
    raise TypeError(
        f"`jac` must be None (autodiff), a callable, or one of "
        f"{', '.join(map(repr, FINITE_DIFFERENCES))}; got {type(jac).__name__}."
    )


def _callback(
    user: Callable | None, start: Start, history: History, info: LeastSquaresMethod, progress: Any
) -> Callable | None:
    """The callback handed to scipy: records history, then calls the user's with pytree `x`."""
    if not info.calls_back:
        # scipy warns that the method takes no callback and never calls it; keep that warning.
        return user
    if user is None and not progress:
        return None
    new_style = user is not None and wants_intermediate_result(user)

    def intermediate(intermediate_result: sopt.OptimizeResult) -> None:
        history.record(float(intermediate_result.get("cost", np.nan)), None)
        if user is None:
            return
        if new_style:
            converted = sopt.OptimizeResult(intermediate_result)
            converted.x = start.trees.tree(intermediate_result.x)
            user(intermediate_result=converted)
        else:
            user(start.trees.tree(intermediate_result.x))

    return intermediate


def _result(
    result: sopt.OptimizeResult, start: Start, residuals: Residuals, history: History
) -> sopt.OptimizeResult:
    trees = start.trees
    result.x = trees.tree(result.x)
    result.fun = residuals.tree(result.fun)
    result.grad = trees.tree(result.grad, gradient=True)
    mask = start.layout.unravel(np.asarray(result.active_mask, dtype=np.float64))
    result.active_mask = start.layout.unflatten([np.real(a).astype(int) for a in mask])
    result.history = history.as_dict(None)
    return result
