"""The public signatures and docstrings of `least_squares`, `curve_fit` and `root`, written once
for every framework (see `_core.surface`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from .._core.surface import EntryPoint
from .._core.tree import PyTree
from . import curve_fit as _curve_fit
from . import least_squares as _least_squares
from . import root as _root


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
    """Solve a nonlinear least-squares problem over a $tree with `scipy.optimize.least_squares`.

    The arguments, their order and their defaults are scipy's, except `jac=None`: the Jacobian
    comes from $jacobian_none.

    Args:
        fun: `fun(x, *args, **kwargs)` returning the residuals: an array or any $tree of
            floating-point arrays (raveled leaf by leaf in optree order); $code.
        x0: Initial guess, a $tree of $leaves. Never mutated.
        jac: None ($jacobian_none), `'2-point'`, `'3-point'`, `'cs'`, or a callable
            `jac(x, *args, **kwargs)` returning the m-by-n Jacobian over the flat vectors (a
            dense array, a sparse matrix or a `LinearOperator`).
        bounds: `Bounds(lb, ub)`, scipy's `Bounds`, or scipy's pair `(lb, ub)`; each side a
            scalar, a $tree like `x0` or a prefix of it.
        method: 'trf', 'dogbox' or 'lm'.
        ftol, xtol, gtol: Tolerances, as scipy's.
        x_scale: None, 'jac', a positive scalar, or a $tree like `x0` (or a prefix of it).
        loss, f_scale, diff_step, tr_solver, tr_options, jac_sparsity, max_nfev, verbose,
            workers: As scipy's (`jac_sparsity` and `diff_step` over the flat vectors).
        args: Extra positional arguments for `fun` ($args).
        kwargs: Extra keyword arguments for `fun` ($args).
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` a $tree.
        progress: True for a tqdm progress bar, or a tqdm instance.
        sparse: A sparse Jacobian (methods 'trf' and 'dogbox', `tr_solver` None or 'lsmr'):
            'auto' where the dense Jacobian would hold more than 10^6 entries (with 'lsmr',
            whose products need no matrix, only on True), True always, False never.
            $sparse_support

    Returns:
        scipy's `OptimizeResult`. `x`, `grad` and `active_mask` are each a $tree like `x0`
        ($result_leaves); `fun` is shaped like the residuals (NumPy leaves); `jac` is the m-by-n
        matrix (or operator) over the flat vectors, residuals and parameters each raveled leaf by
        leaf in optree order; `cost`, `optimality`, `nfev`, `njev`, `status`, `message`,
        `success` as scipy's; `history` holds the cost per iteration ('trf' and 'dogbox'); with
        finite bounds, `active_bounds` (-1/0/+1 like `x0`, as for `minimize`); with a sparse
        Jacobian, `sparsity` (its nonzeros and colours, under 'jac').

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import least_squares
        >>> t = $tensor(np.linspace(0.0, 1.0, 20))
        >>> y = 2.0 * $exp(-3.0 * t) + 0.5
        >>> def residuals(p):
        ...     return p["amp"] * $exp(-p["rate"] * t) + p["offset"] - y
        >>> res = least_squares(residuals, {"amp": 1.0, "rate": 1.0, "offset": 0.0})
        >>> [round(float(res.x[k]), 4) for k in ("amp", "rate", "offset")]
        [2.0, 3.0, 0.5]
    """
    raise NotImplementedError  # the stub of every framework's `least_squares` (`_core.surface`)


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: PyTree = None,
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
    """Fit a model to data with `scipy.optimize.curve_fit`, its parameters an array or a $tree.

    The arguments, their order and their defaults are scipy's, and so is the call of `f`: where
    `p0` is None or an array (a number, a list of numbers, a 1-D array), `f(xdata, *params)` as
    in scipy, with as many parameters as `p0` has elements or, for `p0=None`, as `f` takes after
    `xdata` (scipy's rule), and `popt` an array. Where `p0` is a $tree (a dict, nested
    structures), `f(xdata, params)` takes it whole and `popt` is shaped like it. `jac=None`
    means $jacobian_none.

    Args:
        f: `f(xdata, *params)`, or `f(xdata, params)` for a $tree `p0`, returning the model at
            `xdata` (an array, or a $tree of arrays raveled in optree order to match `ydata`);
            $code.
        xdata: The independent variable: an array, or any $tree (passed to `f` as it is).
        ydata: The dependent data, a 1-D array (or array-like) of m values.
        p0: Initial parameters: None (scipy's start, from `f`'s signature and `bounds`), an
            array of them, or a $tree of $leaves.
        sigma: None, 1-D errors of `ydata`, or its m-by-m covariance matrix (as scipy's).
        absolute_sigma: As scipy's: whether `sigma` is absolute (else `pcov` is rescaled).
        check_finite: As scipy's (checks `ydata` and array `xdata`).
        bounds: `Bounds(lb, ub)`, scipy's `Bounds`, or a pair `(lb, ub)`; each side a scalar, a
            $tree like `p0` or a prefix of it.
        method: None ('lm' without bounds, 'trf' with), 'lm', 'trf' or 'dogbox'.
        jac: None ($jacobian_none), '2-point', '3-point', 'cs', or `jac(xdata, *params)`
            (`jac(xdata, params)` for a $tree `p0`) returning the m-by-n Jacobian over the flat
            vector.
        full_output: Also return scipy's `infodict`, `mesg` and `ier`.
        nan_policy: As scipy's (None, 'raise' or 'omit').
        **kwargs: Passed to scipy's `leastsq` ('lm') or `least_squares` (otherwise); an
            `x_scale` may be a $tree like `p0` (or a prefix of it).

    Returns:
        `(popt, pcov)`, or `(popt, pcov, infodict, mesg, ier)` with `full_output=True`. `popt`
        is an array for an array `p0` (or None), else it has `p0`'s structure
        ($result_leaves); `pcov` is the n-by-n covariance over the flat vector (leaves raveled
        in optree order); `standard_errors(pcov, popt)` gives the standard errors shaped like
        `p0`.

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import curve_fit
        >>> x = $tensor(np.linspace(0.0, 4.0, 50))
        >>> y = 2.5 * np.exp(-1.3 * np.linspace(0.0, 4.0, 50)) + 0.5
        >>> def model(x, p):
        ...     return p["decay"]["amp"] * $exp(-p["decay"]["rate"] * x) + p["offset"]
        >>> p0 = {"decay": {"amp": 1.0, "rate": 1.0}, "offset": 0.0}
        >>> popt, pcov = curve_fit(model, x, y, p0)
        >>> round(float(popt["decay"]["rate"]), 4), round(float(popt["offset"]), 4), pcov.shape
        (1.3, 0.5, (3, 3))
        >>> def flat_model(x, amp, rate, offset):  # scipy's convention, p0 from the signature
        ...     return amp * $exp(-rate * x) + offset
        >>> popt, pcov = curve_fit(flat_model, x, y)
        >>> [round(float(v), 4) for v in popt]
        [2.5, 1.3, 0.5]
    """
    raise NotImplementedError  # the stub of every framework's `curve_fit` (`_core.surface`)


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
    """Find a root of a vector function of a $tree with `scipy.optimize.root`.

    The arguments, their order and their defaults are scipy's; `x0` may be any $tree of
    $leaves and `fun` may return any $tree with as many elements in all.

    Args:
        fun: `fun(x, *args)` returning an array or a $tree of arrays with as many elements as
            `x0` (method 'lm' also accepts more: it then solves in the least-squares sense);
            $code.
        x0: Initial guess, a $tree of $leaves. Never mutated.
        args: Extra arguments for `fun` ($args).
        method: 'hybr', 'lm', 'broyden1', 'broyden2', 'anderson', 'linearmixing',
            'diagbroyden', 'excitingmixing', 'krylov' or 'df-sane'.
        jac: None: $root_jacobian_none. True: `fun` returns `(residuals, jacobian)`. A
            callable `jac(x, *args)`. A Jacobian is the square matrix over the flat vectors
            (leaves raveled in optree order).
        tol: Tolerance, passed to scipy.
        callback: `callback(x, f)` with `x` and `f` each a $tree (every method but 'hybr' and 'lm',
            which scipy never calls back).
        options: Method options, passed to scipy. For 'krylov', `jac_options` are scipy's
            (`method`, `inner_maxiter`, `inner_M`, `outer_k`, `inner_*`).
        sparse: For 'krylov': True solves its inner linear systems with the sparse Jacobian in
            place of Jacobian-vector products; 'auto' and False keep the products. scipy's
            other root methods take a dense Jacobian or none (`sparse=True` is refused there;
            a large sparse system goes to `least_squares`). $sparse_support

    Returns:
        scipy's `OptimizeResult` with `x` a $tree like `x0` ($result_leaves) and `fun` shaped
        like `fun`'s output (NumPy leaves); `success`, `status`, `message`, `nfev` and, where the
        method evaluates a Jacobian, `njev`, as scipy reports them; with a sparse Jacobian,
        `sparsity`.

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import root
        >>> def equations(p):
        ...     return {"sum": p["a"] + p["b"] - 3.0, "product": p["a"] * p["b"] - 2.0}
        >>> sol = root(equations, {"a": $tensor(np.float64(0.5)), "b": $tensor(np.float64(2.5))})
        >>> round(float(sol.x["a"]), 6), round(float(sol.x["b"]), 6)
        (1.0, 2.0)
    """
    raise NotImplementedError  # the stub of every framework's `root` (`_core.surface`)


LEAST_SQUARES = EntryPoint(least_squares, _least_squares.least_squares)
CURVE_FIT = EntryPoint(curve_fit, _curve_fit.curve_fit)
ROOT = EntryPoint(root, _root.root)
