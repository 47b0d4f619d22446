"""The public signatures and docstrings of the five global methods, written once for every
framework (see `_core.surface`): scipy's signatures, orders and defaults, plus a keyword-only
`progress` (and scipy's keyword-only legacy `seed` where scipy has one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from .._core.surface import EntryPoint
from .._core.tree import PyTree
from . import methods as _methods


def differential_evolution(
    func: Callable[..., Any],
    bounds: Any,
    args: Any = (),
    strategy: str | Callable = "best1bin",
    maxiter: int = 1000,
    popsize: int = 15,
    tol: float = 0.01,
    mutation: float | tuple[float, float] = (0.5, 1),
    recombination: float = 0.7,
    rng: Any = None,
    callback: Callable | None = None,
    disp: bool = False,
    polish: bool | Callable = True,
    init: str | Any = "latinhypercube",
    atol: float = 0,
    updating: str = "immediate",
    workers: int | Callable = 1,
    constraints: Any = (),
    x0: PyTree | None = None,
    *,
    integrality: Any = None,
    vectorized: bool = False,
    seed: Any = None,
    progress: Any = False,
) -> sopt.OptimizeResult:
    """Differential evolution over a $tree (`scipy.optimize.differential_evolution`).

    The arguments, their order and defaults are scipy's, with a $tree where scipy takes a
    vector; with the same `rng` the run takes scipy's path on the flat problem (same `x`, `fun`
    and `nfev`). Where scipy evaluates a whole generation at once (`updating='deferred'`, an
    integer `workers` other than 1, or `vectorized=True`), the generation is $batched.

    Args:
        func: `func(x, *args) -> scalar`, $code; `x` is a $tree of $leaves.
        bounds: `Bounds(lb, ub)` with finite `lb` and `ub` shaped like the parameters (they
            define the $tree when `x0` is not given), or a prefix of `x0`'s structure together
            with `x0`; for a single array also scipy's `Bounds` or `(min, max)` pairs.
        args: Extra arguments for `func`.
        strategy, maxiter, popsize, tol, mutation, recombination, rng, disp, atol, updating,
            workers, vectorized, seed: As scipy's.
        callback: `callback(intermediate_result)` (`x` a $tree) or scipy's legacy
            `callback(xk, convergence)`; returning True (or raising `StopIteration`) stops.
        polish: True runs `minimize` (L-BFGS-B, or trust-constr with `constraints`) with exact
            derivatives; a callable `polish(func, x0, bounds=, constraints=)` receives $tree
            values; False does not polish.
        init: scipy's names, an (S, n) array, or a $tree with a leading axis of S members on
            every leaf.
        constraints: As for `minimize`, functions of the $tree `x`.
        x0: A $tree inside the bounds, one member of the first generation.
        integrality: A $tree (or prefix) of bools: which parameters take integer values.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult` with `x` (and `jac`, after polishing) shaped like the
        parameters; `fun`, `nfev`, `nit`, `success`, `message` and `population` (scipy's flat
        (S, n) array, leaves raveled in order) as scipy's; and `history` (the best value
        found, once per generation).

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import Bounds, differential_evolution
        >>> def f(p):
        ...     return $sum((p["w"] - 0.5) ** 2) + $cos(3.0 * p["b"]) + 1.0
        >>> box = Bounds({"w": np.zeros(2), "b": -2.0}, {"w": np.ones(2), "b": 2.0})
        >>> res = differential_evolution(f, box, rng=0, updating="deferred")
        >>> [round(float(v), 3) for v in res.x["w"]], round(abs(float(res.x["b"])), 3)
        ([0.5, 0.5], 1.047)
    """
    raise NotImplementedError  # the stub of every framework's `differential_evolution`


def dual_annealing(
    func: Callable[..., Any],
    bounds: Any,
    args: Any = (),
    maxiter: int = 1000,
    minimizer_kwargs: dict | None = None,
    initial_temp: float = 5230.0,
    restart_temp_ratio: float = 2.0e-5,
    visit: float = 2.62,
    accept: float = -5.0,
    maxfun: float = 1e7,
    rng: Any = None,
    no_local_search: bool = False,
    callback: Callable | None = None,
    x0: PyTree | None = None,
    *,
    seed: Any = None,
    progress: Any = False,
) -> sopt.OptimizeResult:
    """Dual annealing over a $tree (`scipy.optimize.dual_annealing`).

    The arguments, their order and defaults are scipy's, with a $tree where scipy takes a
    vector. The local search runs `minimize` with exact derivatives: scipy's L-BFGS-B in the
    box with scipy's iteration cap when `minimizer_kwargs` is None, else
    `minimize(**minimizer_kwargs)`.

    Args:
        func: `func(x, *args) -> scalar`, $code; `x` is a $tree of $leaves.
        bounds: `Bounds(lb, ub)` with finite `lb` and `ub` shaped like the parameters (they
            define the $tree when `x0` is not given), or a prefix of `x0`'s structure together
            with `x0`; for a single array also scipy's `Bounds` or `(min, max)` pairs.
        args: Extra arguments for `func`.
        maxiter, initial_temp, restart_temp_ratio, visit, accept, maxfun, rng,
            no_local_search, seed: As scipy's.
        minimizer_kwargs: Arguments of `minimize` for the local search (pytree `bounds` and
            constraints included).
        callback: `callback(x, f, context)` with `x` a $tree; returning True stops.
        x0: A $tree inside the bounds to start from.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult` with `x` shaped like the parameters; `fun`, `nfev`, `nit`,
        `success`, `message` as scipy's; and `history` (the best value found, once per minimum
        found: scipy calls back once per minimum).

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import Bounds, dual_annealing
        >>> def rastrigin(p):
        ...     return $sum(p["w"] ** 2 - 10.0 * $cos(2.0 * np.pi * p["w"])) + 20.0
        >>> box = Bounds({"w": np.full(2, -5.12)}, {"w": np.full(2, 5.12)})
        >>> res = dual_annealing(rastrigin, box, rng=0, maxiter=100)
        >>> [abs(round(float(v), 4)) for v in res.x["w"]], abs(round(float(res.fun), 6))
        ([0.0, 0.0], 0.0)
    """
    raise NotImplementedError  # the stub of every framework's `dual_annealing`


def basinhopping(
    func: Callable[..., Any],
    x0: PyTree,
    niter: int = 100,
    T: float = 1.0,
    stepsize: float = 0.5,
    minimizer_kwargs: dict | None = None,
    take_step: Callable | None = None,
    accept_test: Callable | None = None,
    callback: Callable | None = None,
    interval: int = 50,
    disp: bool = False,
    niter_success: int | None = None,
    rng: Any = None,
    *,
    target_accept_rate: float = 0.5,
    stepwise_factor: float = 0.9,
    seed: Any = None,
    progress: Any = False,
) -> sopt.OptimizeResult:
    """Basin-hopping from a $tree `x0` (`scipy.optimize.basinhopping`).

    The arguments, their order and defaults are scipy's, with a $tree where scipy takes a
    vector. Each hop's local minimisation is `minimize(func, x, **minimizer_kwargs)` with exact
    derivatives (`args` go inside `minimizer_kwargs`, as in scipy). There is no `bounds`
    argument: bound the local steps with `minimizer_kwargs={'bounds': Bounds(lb, ub)}`.

    Args:
        func: `func(x, *args) -> scalar`, $code; `x` is a $tree of $leaves.
        x0: The starting $tree.
        niter, T, stepsize, interval, disp, niter_success, rng, target_accept_rate,
            stepwise_factor, seed: As scipy's.
        minimizer_kwargs: Arguments of `minimize` for each local minimisation (`args`,
            `method`, pytree `bounds` and constraints included).
        take_step: `take_step(x)` returning a new $tree (its `stepsize` is adapted where it
            has one).
        accept_test: `accept_test(f_new=, x_new=, f_old=, x_old=)` with $tree points.
        callback: `callback(x, f, accept)` with `x` a $tree; returning True stops.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult` with `x` shaped like `x0` and `lowest_optimization_result`
        (the local result, its `x` shaped like `x0`); `fun`, `nfev`, `nit`, `success`,
        `message` as scipy's; and `history` (the best value found, once per hop).

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import basinhopping
        >>> def f(p):
        ...     return $cos(14.5 * p["x"] - 0.3) + (p["x"] + 0.2) * p["x"]
        >>> res = basinhopping(f, {"x": $tensor(np.float64(1.0))}, niter=30, rng=0)
        >>> round(float(res.x["x"]), 4), round(float(res.fun), 4)
        (-0.1951, -1.0009)
    """
    raise NotImplementedError  # the stub of every framework's `basinhopping`


def shgo(
    func: Callable[..., Any],
    bounds: Any,
    args: Any = (),
    constraints: Any = None,
    n: int = 100,
    iters: int = 1,
    callback: Callable | None = None,
    minimizer_kwargs: dict | None = None,
    options: dict | None = None,
    sampling_method: str | Callable = "simplicial",
    *,
    workers: int | Callable = 1,
    progress: Any = False,
) -> sopt.OptimizeResult:
    """Simplicial homology global optimisation over a $tree (`scipy.optimize.shgo`).

    The arguments, their order and defaults are scipy's, with a $tree where scipy takes a
    vector. Without constraints the sampling points of each iteration are $batched. Each local
    minimisation runs `minimize` (SLSQP unless `minimizer_kwargs` names another method) with
    exact derivatives, in the local box shgo chooses.

    Args:
        func: `func(x, *args) -> scalar`, $code; `x` is a $tree of $leaves.
        bounds: `Bounds(lb, ub)` with `lb` and `ub` shaped like the parameters (they define the
            $tree); for a single array also scipy's `Bounds` or `(min, max)` pairs.
        args: Extra arguments for `func`.
        constraints: As for `minimize`, functions of the $tree `x`.
        n, iters, options, sampling_method, workers: As scipy's.
        callback: `callback(xk)` with `xk` a $tree, once per local iteration.
        minimizer_kwargs: Arguments of `minimize` for the local minimisations (`method` by
            name, `options`, `constraints`).
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult` with `x` shaped like the parameters and `xl` a list of such
        $tree values (the local minima); `fun`, `funl`, `nfev`, `nit`, `success`, `message`
        as scipy's; and `history` (the best value found, once per local iteration).

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import Bounds, shgo
        >>> def f(p):
        ...     return (p["x"] - 1.0) ** 2 + (p["y"] + 0.5) ** 2 + 0.1 * $cos(5.0 * p["x"])
        >>> res = shgo(f, Bounds({"x": -2.0, "y": -2.0}, {"x": 2.0, "y": 2.0}))
        >>> round(float(res.x["x"]), 4), round(float(res.x["y"]), 4)
        (0.806, -0.5)
    """
    raise NotImplementedError  # the stub of every framework's `shgo`


def direct(
    func: Callable[..., Any],
    bounds: Any,
    *,
    args: tuple = (),
    eps: float = 1e-4,
    maxfun: int | None = None,
    maxiter: int = 1000,
    locally_biased: bool = True,
    f_min: float = -np.inf,
    f_min_rtol: float = 1e-4,
    vol_tol: float = 1e-16,
    len_tol: float = 1e-6,
    callback: Callable | None = None,
    progress: Any = False,
) -> sopt.OptimizeResult:
    """DIRECT over a $tree (`scipy.optimize.direct`).

    The arguments, their order and defaults are scipy's, with a $tree where scipy takes a
    vector. DIRECT calls the objective one point at a time; each call is one evaluation of the
    $framework function.

    Args:
        func: `func(x, *args) -> scalar`, $code; `x` is a $tree of $leaves.
        bounds: `Bounds(lb, ub)` with finite `lb` and `ub` shaped like the parameters (they
            define the $tree); for a single array also scipy's `Bounds` or `(min, max)` pairs.
        args: Extra arguments for `func`.
        eps, maxfun, maxiter, locally_biased, f_min, f_min_rtol, vol_tol, len_tol: As scipy's.
        callback: `callback(xk)` with `xk` a $tree, once per iteration.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult` with `x` shaped like the parameters; `fun`, `nfev`, `nit`,
        `success`, `status`, `message` as scipy's; and `history` (the best value found, once
        per iteration).

    Examples:
        >>> import numpy as np
        >>> $import
        >>> from $module import Bounds, direct
        >>> def f(p):
        ...     return $sum((p["w"] - 0.25) ** 2) + (p["b"] + 0.5) ** 2
        >>> res = direct(f, Bounds({"w": -np.ones(2), "b": -1.0}, {"w": np.ones(2), "b": 1.0}))
        >>> [round(float(v), 2) for v in res.x["w"]], round(float(res.x["b"]), 2)
        ([0.25, 0.25], -0.5)
    """
    raise NotImplementedError  # the stub of every framework's `direct`


DIFFERENTIAL_EVOLUTION = EntryPoint(differential_evolution, _methods.differential_evolution)
DUAL_ANNEALING = EntryPoint(dual_annealing, _methods.dual_annealing)
BASINHOPPING = EntryPoint(basinhopping, _methods.basinhopping)
SHGO = EntryPoint(shgo, _methods.shgo)
DIRECT = EntryPoint(direct, _methods.direct)
