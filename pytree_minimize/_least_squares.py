"""`least_squares` for JAX (and NumPy) pytrees: the public entry point and its docstring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from . import _least_squares_driver
from ._jax_backend import JaxBackend
from ._tree import PyTree


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
        sparse: A sparse Jacobian (methods 'trf' and 'dogbox', `tr_solver` None or 'lsmr'),
            its pattern detected from the JAX program and coloured once per compiled problem
            (the `sparse` extra): 'auto' where the dense Jacobian would hold more than 10^6
            entries (with 'lsmr', whose products need no matrix, only on True), True always,
            False never. `res.sparsity['jac']` then reports its nonzeros and colours.

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
