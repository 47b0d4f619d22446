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

import numpy as np
import scipy.optimize as sopt

from .. import _curve_fit_driver, _driver, _least_squares_driver, _root_driver
from .._global_optimize import global_optimizers
from .._methods import normalize_method
from .._tree import Bounds, PyTree
from ._numpy_backend import NumpyBackend

__all__ = [
    "Bounds",
    "basinhopping",
    "curve_fit",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "least_squares",
    "minimize",
    "root",
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
    blas_threads: int | str | None = "auto",
    sparse: bool | str = "auto",
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
        method: A scipy method name, or 'ipopt' (IPOPT, the `ipopt` extra: dense constraint
            Jacobians, limited-memory Hessian); None chooses as scipy does.
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
        blas_threads: BLAS threads while scipy iterates. 'auto' holds BLAS to one thread for
            the methods that only update vectors (L-BFGS-B, CG, TNC, Newton-CG, trust-ncg,
            trust-krylov, Nelder-Mead, Powell, COBYLA), where threaded BLAS calls wait on cores
            held by other thread pools, and leaves it alone for methods with dense matrices; an
            int holds it to that many threads; None leaves it alone.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False use
            dense derivatives, True is refused (sparse derivatives need the JAX core).

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
        blas_threads=blas_threads,
        sparse=sparse,
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

# ---------------------------------------------------------------------------------------------
# least_squares, curve_fit and root: the drivers of `pytree_minimize`, with
# Jacobians from the user or from scipy's finite differences.


def least_squares(
    fun: Callable[..., Any],
    x0: PyTree,
    jac: Any = None,
    bounds: Any = (-np.inf, np.inf),
    method: str = "trf",
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: Any = "linear",
    f_scale: float = 1.0,
    diff_step: Any = None,
    tr_solver: str | None = None,
    tr_options: dict | None = None,
    jac_sparsity: Any = None,
    max_nfev: int | None = None,
    verbose: int = 0,
    args: Any = (),
    kwargs: dict | None = None,
    callback: Callable | None = None,
    workers: Any = None,
    *,
    progress: Any = False,
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Solve a nonlinear least-squares problem over a nested structure of arrays with
    `scipy.optimize.least_squares`; see :func:`pytree_minimize.least_squares`.

    Args:
        fun: `fun(x, *args, **kwargs)` returning the residuals as arrays or a nested
            structure of them; `x` has the structure of `x0`.
        x0: Initial guess, a nested structure of arrays of floating-point arrays. Never mutated.
        jac: None (scipy's '2-point' finite differences, as scipy's default), '3-point', 'cs',
            or a callable returning the m-by-n Jacobian over the flat vectors.
        bounds: `Bounds(lb, ub)`, scipy's `Bounds` or a pair `(lb, ub)`, each side a scalar or
            a structure like `x0` (or a prefix of it).
        method: 'trf', 'dogbox' or 'lm'.
        ftol, xtol, gtol, loss, f_scale, diff_step, tr_solver, tr_options, jac_sparsity,
            max_nfev, verbose, workers: As scipy's.
        x_scale: None, 'jac', a positive scalar or a structure like `x0` (or a prefix of it).
        args, kwargs: Extra arguments for `fun`.
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` like `x0`.
        progress: True for a tqdm progress bar, or a tqdm instance.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False use
            a dense Jacobian, True is refused (sparse Jacobians need the JAX core).

    Returns:
        scipy's `OptimizeResult`: `x`, `grad` and `active_mask` structured like `x0`, `fun`
        like the residuals (NumPy arrays), `jac` over the flat vectors, and scipy's fields.


    Examples:
        >>> import numpy as np
        >>> from pytree_minimize.ports.numpy import least_squares
        >>> t = np.linspace(0.0, 1.0, 20)
        >>> def residuals(p):
        ...     return p["amp"] * np.exp(-p["rate"] * t) - 2.0 * np.exp(-3.0 * t)
        >>> res = least_squares(residuals, {"amp": 1.0, "rate": 1.0})
        >>> round(res.x["amp"], 4), round(res.x["rate"], 4)
        (2.0, 3.0)
    """
    return _least_squares_driver.least_squares(
        _BACKEND,
        fun,
        x0,
        jac=jac,
        bounds=bounds,
        method=method,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        x_scale=x_scale,
        loss=loss,
        f_scale=f_scale,
        diff_step=diff_step,
        tr_solver=tr_solver,
        tr_options=tr_options,
        jac_sparsity=jac_sparsity,
        max_nfev=max_nfev,
        verbose=verbose,
        args=args,
        kwargs=kwargs,
        callback=callback,
        workers=workers,
        progress=progress,
        sparse=sparse,
    )


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: PyTree,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool | None = None,
    bounds: Any = (-np.inf, np.inf),
    method: str | None = None,
    jac: Any = None,
    *,
    full_output: bool = False,
    nan_policy: str | None = None,
    **kwargs: Any,
) -> tuple:
    """Fit `f(xdata, params)` with `scipy.optimize.curve_fit`, `params` being a nested
    structure of arrays;
    see :func:`pytree_minimize.curve_fit`.

    Args:
        f: `f(xdata, params)` returning the model at `xdata` as arrays.
        xdata: The independent variable, passed to `f` as it is.
        ydata: The dependent data, m values.
        p0: Initial parameters, a nested structure of arrays of floating-point arrays (required).
        sigma, absolute_sigma, check_finite, method, full_output, nan_policy: As scipy's.
        bounds: `Bounds(lb, ub)`, scipy's `Bounds` or `(lb, ub)`, sides like `p0` or prefixes.
        jac: None (scipy's finite differences), a scheme, or `jac(xdata, params)`.
        **kwargs: Passed to scipy's `leastsq` or `least_squares`.

    Returns:
        `(popt, pcov)` (plus scipy's `infodict, mesg, ier` with `full_output=True`): `popt`
        structured like `p0`, `pcov` n-by-n over the flat vector;
        `pytree_minimize.standard_errors(pcov, popt)` gives errors structured like `p0`.


    Examples:
        >>> import numpy as np
        >>> from pytree_minimize.ports.numpy import curve_fit
        >>> x = np.linspace(0.0, 1.0, 20)
        >>> def model(x, p):
        ...     return p["slope"] * x + p["intercept"]
        >>> popt, pcov = curve_fit(model, x, 3.0 * x + 1.0, {"slope": 0.0, "intercept": 0.0})
        >>> round(popt["slope"], 6), round(popt["intercept"], 6), pcov.shape
        (3.0, 1.0, (2, 2))
    """
    return _curve_fit_driver.curve_fit(
        _BACKEND,
        f,
        xdata,
        ydata,
        p0,
        sigma=sigma,
        absolute_sigma=absolute_sigma,
        check_finite=check_finite,
        bounds=bounds,
        method=method,
        jac=jac,
        full_output=full_output,
        nan_policy=nan_policy,
        **kwargs,
    )


def root(
    fun: Callable[..., Any],
    x0: PyTree,
    args: Any = (),
    method: str = "hybr",
    jac: Any = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    *,
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Find a root of a vector function of a nested structure of arrays with `scipy.optimize.root`
    (any of its ten methods); see :func:`pytree_minimize.root`.

    Args:
        fun: `fun(x, *args)` returning arrays (or a structure of them) with as many
            elements as `x0`.
        x0: Initial guess, a nested structure of arrays of floating-point arrays. Never mutated.
        args: Extra arguments for `fun`.
        method: Any scipy root method ('hybr', 'lm', 'broyden1', 'broyden2', 'anderson',
            'linearmixing', 'diagbroyden', 'excitingmixing', 'krylov', 'df-sane').
        jac: None (scipy's finite differences where the method uses a Jacobian), True, or a
            callable returning the Jacobian over the flat vectors.
        tol, options: As scipy's.
        callback: `callback(x, f)` with `x` and `f` structured like `x0` and `fun`'s output.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False keep
            scipy's forms, True is refused (sparse Jacobians need the JAX core).

    Returns:
        scipy's `OptimizeResult` with `x` structured like `x0` and `fun` like `fun`'s output.


    Examples:
        >>> import numpy as np
        >>> from pytree_minimize.ports.numpy import root
        >>> def equations(p):
        ...     return [p["a"] + p["b"] - 3.0, p["a"] * p["b"] - 2.0]
        >>> sol = root(equations, {"a": 0.5, "b": 2.5})
        >>> round(sol.x["a"], 6), round(sol.x["b"], 6)
        (1.0, 2.0)
    """
    return _root_driver.root(
        _BACKEND,
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        tol=tol,
        callback=callback,
        options=options,
        sparse=sparse,
    )
