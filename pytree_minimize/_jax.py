"""The JAX entry points that `pytree_minimize` exports: `minimize`, `least_squares`,
`curve_fit`, `root` and the global methods, each a keyword call into its driver with a
`JaxBackend` made for the call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from ._backends.jax import JaxBackend
from ._core.tree import PyTree
from ._global.surface import global_optimizers
from ._minimize import driver as _driver
from ._residual import curve_fit as _curve_fit_driver
from ._residual import least_squares as _least_squares_driver
from ._residual import root as _root_driver


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
) -> sopt.OptimizeResult:
    """Minimise a scalar JAX function of a pytree with any `scipy.optimize.minimize` method.

    The arguments and their order are scipy's; `x0` may be any pytree of floating-point arrays
    (dict, list, tuple, namedtuple, None subtrees, equinox Modules, registered dataclasses).
    Derivatives come from autodiff, compiled once with `jax.jit` and cached across calls.

    Args:
        fun: `fun(x, *args) -> scalar`, JAX-traceable; `x` has `x0`'s structure.
        x0: Initial guess, a pytree of floating-point (or complex) arrays. Never mutated.
        args: Extra arguments for `fun` (traced: new values never recompile).
        method: A scipy method name; None chooses as scipy does (SLSQP with constraints,
            L-BFGS-B with bounds, BFGS otherwise).
        jac: None (autodiff), True (`fun` returns `(value, grad_pytree)`), a callable returning
            a pytree like `x`, or `'2-point'`, `'3-point'`, `'cs'`.
        hess: None (autodiff where the method uses it), a callable returning the dense Hessian
            over the flat vector, a `HessianUpdateStrategy`, or a finite-difference scheme.
        hessp: None (autodiff Hessian-vector products where the method uses them) or
            `hessp(x, p, *args)` returning a pytree like `x`.
        bounds: `pytree_minimize.Bounds(lb, ub)` with pytree (or prefix, or scalar) bounds; for a
            single-array `x0` also scipy's `Bounds` or `(min, max)` pairs.
        constraints: scipy's forms (dicts, `NonlinearConstraint`, `LinearConstraint` for a
            single-array `x0`) with functions of the pytree `x`, or
            `pytree_minimize.LinearConstraint(fun, lb, ub)` for a function linear in `x`; one
            or a list. Jacobians and constraint Hessians come from autodiff.
        tol: Tolerance, passed to scipy.
        callback: `callback(intermediate_result)` or `callback(xk)`, with pytree `x`.
        options: Method options, passed to scipy.
        progress: True for a tqdm progress bar, or a tqdm instance.
        blas_threads: BLAS threads while scipy iterates. 'auto' holds BLAS to one thread for
            the methods that only update vectors (L-BFGS-B, CG, TNC, Newton-CG, trust-ncg,
            trust-krylov, Nelder-Mead, Powell, COBYLA), where threaded BLAS calls wait on cores
            held by other thread pools, and leaves it alone for methods with dense matrices; an
            int holds it to that many threads; None leaves it alone.

    Returns:
        scipy's `OptimizeResult`, with `x` and `jac` shaped, typed and placed like `x0`,
        `history` (per-iteration `fun`, `time` and, for gradient methods, `grad_norm`) and, for
        SLSQP and trust-constr with constraints, `constraint_multipliers` (one pytree per
        constraint, shaped like its output); with `bounds`, `active_bounds` (a pytree like `x0`
        of int8: -1 at the lower bound, 0 free, +1 at the upper bound).

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import minimize
        >>> def f(p):
        ...     return jnp.sum((p["w"] - 3.0) ** 2) + (p["b"] + 1.0) ** 2
        >>> res = minimize(f, {"w": jnp.zeros(2), "b": jnp.array(0.0)}, method="L-BFGS-B")
        >>> [round(float(v), 4) for v in res.x["w"]], round(float(res.x["b"]), 4)
        ([3.0, 3.0], -1.0)
    """
    return _driver.minimize(
        JaxBackend(),  # one per call: it records x0's shardings
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
    )


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
) -> sopt.OptimizeResult:
    """Solve a nonlinear least-squares problem over a pytree with `scipy.optimize.least_squares`.

    The arguments, their order and their defaults are scipy's, except `jac=None`: the Jacobian
    comes from autodiff, compiled once with `jax.jit` and cached across calls.

    Args:
        fun: `fun(x, *args, **kwargs)` returning the residuals: an array or any pytree of
            floating-point arrays (raveled leaf by leaf in optree order).
        x0: Initial guess, a pytree of floating-point arrays. Never mutated.
        jac: None (autodiff: the dense Jacobian, forward mode when there are at least as many
            residuals as parameters, else reverse mode; with `tr_solver='lsmr'` a matrix-free
            `LinearOperator` from Jacobian-vector products, so the m-by-n matrix is never
            formed), `'2-point'`, `'3-point'`, `'cs'`, or a callable `jac(x, *args, **kwargs)`
            returning the m-by-n Jacobian over the flat vectors (a dense array, a sparse matrix
            or a `LinearOperator`).
        bounds: `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or scipy's pair `(lb, ub)`;
            each side a scalar, a pytree like `x0` or a prefix of it.
        method: 'trf', 'dogbox' or 'lm'.
        ftol, xtol, gtol: Tolerances, as scipy's.
        x_scale: None, 'jac', a positive scalar, or a pytree like `x0` (or a prefix of it).
        loss, f_scale, diff_step, tr_solver, tr_options, jac_sparsity, max_nfev, verbose,
            workers: As scipy's (`jac_sparsity` and `diff_step` over the flat vectors).
        args: Extra positional arguments for `fun` (traced: new values never recompile).
        kwargs: Extra keyword arguments for `fun` (traced likewise).
        callback: `callback(intermediate_result)` or `callback(xk)`, with pytree `x`.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult`. `x`, `grad` and `active_mask` are pytrees like `x0`; `fun` is
        shaped like the residuals (NumPy leaves); `jac` is the m-by-n matrix (or operator) over
        the flat vectors, residuals and parameters each raveled leaf by leaf in optree order;
        `cost`, `optimality`, `nfev`, `njev`, `status`, `message`, `success` as scipy's;
        `history` holds the cost per iteration ('trf' and 'dogbox'); with finite bounds,
        `active_bounds` (-1/0/+1 like `x0`, as for `minimize`).

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import least_squares
        >>> t = jnp.linspace(0.0, 1.0, 20)
        >>> y = 2.0 * jnp.exp(-3.0 * t) + 0.5
        >>> def residuals(p):
        ...     return p["amp"] * jnp.exp(-p["rate"] * t) + p["offset"] - y
        >>> res = least_squares(residuals, {"amp": 1.0, "rate": 1.0, "offset": 0.0})
        >>> [round(float(res.x[k]), 4) for k in ("amp", "rate", "offset")]
        [2.0, 3.0, 0.5]
    """
    options = locals()
    fun, x0 = options.pop("fun"), options.pop("x0")
    # One backend per call: it records x0's shardings.
    return _least_squares_driver.least_squares(JaxBackend(), fun, x0, **options)


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
    """Fit `f(xdata, params)` to data with `scipy.optimize.curve_fit`, `params` a pytree.

    The arguments, their order and their defaults are scipy's, except that `p0` is required
    (it fixes the parameter pytree) and `f` takes the pytree whole. `jac=None` means autodiff.
    Results equal scipy's `curve_fit` on the flat problem given the exact Jacobian.

    Args:
        f: `f(xdata, params)`, JAX-traceable, returning the model at `xdata` (an array, or a
            pytree of arrays raveled in optree order to match `ydata`).
        xdata: The independent variable: an array, or any pytree (passed to `f` as it is;
            traced, so new data of the same shapes never recompiles).
        ydata: The dependent data, a 1-D array (or array-like) of m values.
        p0: Initial parameters, a pytree of floating-point arrays.
        sigma: None, 1-D errors of `ydata`, or its m-by-m covariance matrix (as scipy's).
        absolute_sigma: As scipy's: whether `sigma` is absolute (else `pcov` is rescaled).
        check_finite: As scipy's (checks `ydata` and array `xdata`).
        bounds: `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or a pair `(lb, ub)`; each
            side a scalar, a pytree like `p0` or a prefix of it.
        method: None ('lm' without bounds, 'trf' with), 'lm', 'trf' or 'dogbox'.
        jac: None (autodiff), '2-point', '3-point', 'cs', or `jac(xdata, params)` returning
            the m-by-n Jacobian over the flat vector.
        full_output: Also return scipy's `infodict`, `mesg` and `ier`.
        nan_policy: As scipy's (None, 'raise' or 'omit').
        **kwargs: Passed to scipy's `leastsq` ('lm') or `least_squares` (otherwise); an
            `x_scale` may be a pytree like `p0` (or a prefix of it).

    Returns:
        `(popt, pcov)`, or `(popt, pcov, infodict, mesg, ier)` with `full_output=True`. `popt`
        has `p0`'s structure and leaf types; `pcov` is the n-by-n covariance over the flat
        vector (leaves raveled in optree order). `standard_errors(pcov, popt)` gives the
        standard errors shaped like `p0`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from pytree_minimize import curve_fit, standard_errors
        >>> x = np.linspace(0.0, 4.0, 50)
        >>> y = 2.5 * np.exp(-1.3 * x) + 0.5 + 0.01 * np.sin(7 * x)
        >>> def model(x, p):
        ...     return p["decay"]["amp"] * jnp.exp(-p["decay"]["rate"] * x) + p["offset"]
        >>> p0 = {"decay": {"amp": 1.0, "rate": 1.0}, "offset": 0.0}
        >>> popt, pcov = curve_fit(model, x, y, p0)
        >>> round(float(popt["decay"]["rate"]), 1), pcov.shape
        (1.3, (3, 3))
        >>> errors = standard_errors(pcov, popt)
        >>> sorted(errors), bool(errors["offset"] < 0.01)
        (['decay', 'offset'], True)
    """
    return _curve_fit_driver.curve_fit(
        JaxBackend(),  # one per call: it records p0's shardings
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
) -> sopt.OptimizeResult:
    """Find a root of a vector function of a pytree with `scipy.optimize.root`.

    The arguments, their order and their defaults are scipy's; `x0` may be any pytree of
    floating-point arrays and `fun` may return any pytree with as many elements in all.

    Args:
        fun: `fun(x, *args)` returning an array or a pytree of arrays with as many elements as
            `x0` (method 'lm' also accepts more: it then solves in the least-squares sense).
        x0: Initial guess, a pytree of floating-point arrays. Never mutated.
        args: Extra arguments for `fun` (traced: new values never recompile).
        method: 'hybr', 'lm', 'broyden1', 'broyden2', 'anderson', 'linearmixing',
            'diagbroyden', 'excitingmixing', 'krylov' or 'df-sane'.
        jac: None: for 'hybr' and 'lm' the dense Jacobian from autodiff; for 'krylov' exact
            Jacobian-vector products in place of scipy's finite differences; the other
            methods use no Jacobian. True: `fun` returns `(residuals, jacobian)`. A callable
            `jac(x, *args)`. A Jacobian is the square matrix over the flat vectors (leaves
            raveled in optree order).
        tol: Tolerance, passed to scipy.
        callback: `callback(x, f)` with pytree `x` and `f` (every method but 'hybr' and 'lm',
            which scipy never calls back).
        options: Method options, passed to scipy. For 'krylov', `jac_options` are scipy's
            (`method`, `inner_maxiter`, `inner_M`, `outer_k`, `inner_*`).

    Returns:
        scipy's `OptimizeResult` with `x` a pytree like `x0` and `fun` a pytree shaped like
        `fun`'s output (NumPy leaves); the other fields as scipy reports them.

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import root
        >>> def equations(p):
        ...     return {"sum": p["a"] + p["b"] - 3.0, "product": p["a"] * p["b"] - 2.0}
        >>> sol = root(equations, {"a": 0.5, "b": 2.5})
        >>> round(float(sol.x["a"]), 6), round(float(sol.x["b"]), 6)
        (1.0, 2.0)
    """
    return _root_driver.root(
        JaxBackend(),  # one per call: it records x0's shardings
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        tol=tol,
        callback=callback,
        options=options,
    )


(
    differential_evolution,
    dual_annealing,
    basinhopping,
    shgo,
    direct,
) = global_optimizers(
    lambda template: JaxBackend(),  # one per call: it records the parameters' shardings
    leaves="JAX (or NumPy) floating-point arrays",
    traceable=", JAX-traceable (compiled once, cached across calls)",
    batched="evaluated in one compiled `jax.vmap` call",
)
differential_evolution.__doc__ = (
    (differential_evolution.__doc__ or "")
    + """
    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import Bounds, differential_evolution
        >>> def f(p):
        ...     return jnp.sum((p["w"] - 0.5) ** 2) + jnp.cos(3.0 * p["b"]) + 1.0
        >>> box = Bounds({"w": jnp.zeros(2), "b": -2.0}, {"w": jnp.ones(2), "b": 2.0})
        >>> res = differential_evolution(f, box, rng=0, updating="deferred")
        >>> [round(float(v), 3) for v in res.x["w"]], round(abs(float(res.x["b"])), 3)
        ([0.5, 0.5], 1.047)
"""
)
