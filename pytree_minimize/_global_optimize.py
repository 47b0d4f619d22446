"""The public global optimisers, made once per framework from a backend factory.

`global_optimizers(backend_for, ...)` returns `differential_evolution`, `dual_annealing`,
`basinhopping`, `shgo` and `direct` with scipy's signatures, orders and defaults (plus a
keyword-only `progress`), each passing its arguments by name to `_global_methods`. The JAX
functions re-exported by `pytree_minimize` are made here; each port makes its own twins with its
backend, so the signatures and docstrings are written once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize as sopt

from . import _global_methods
from ._global import BackendFor
from ._jax_backend import JaxBackend
from ._tree import PyTree

_ARGS_DOC = """
    The arguments, their order and defaults are scipy's; `x` is a pytree of {leaves}. Every
    argument not listed below is scipy's, with pytrees where scipy takes vectors: `x0`,
    `callback` (called with pytree `x`) and `minimizer_kwargs` (arguments of `minimize`:
    pytree `bounds` and constraints are accepted).

    Args:
        func: `func(x, *args) -> scalar`{traceable}.
{bounds}        progress: True for a tqdm progress bar, or a tqdm instance (keyword only).

    Returns:
        scipy's `OptimizeResult` with `x` (and `jac` where scipy gives one) shaped like the
        parameters, and `history` (the best value found, once per {step}).
"""


#: The `bounds` entry, for the functions that take `bounds` (all but basinhopping).
_BOUNDS_DOC = """\
        bounds: `Bounds(lb, ub)` with finite `lb` and `ub` shaped like the parameters (they
            define the pytree when `x0` is not given), or a prefix of `x0`'s structure together
            with `x0` (a scalar bounds a whole subtree). For a single array also scipy's `Bounds`
            or a sequence of `(min, max)` pairs.
"""


def _seed(seed: Any) -> dict[str, Any]:
    """scipy's legacy `seed` keyword, passed on only where given (scipy rejects it beside `rng`)."""
    return {} if seed is None else {"seed": seed}


#: Each function's own paragraph, and what its history counts.
_DOCS = {
    "differential_evolution": (
        """Differential evolution over a pytree (`scipy.optimize.differential_evolution`).

    Where scipy evaluates a whole generation at once (`updating='deferred'`, an integer
    `workers` other than 1, or `vectorized=True`), the generation is {batched}. `polish` runs
    `minimize` (L-BFGS-B, or trust-constr with `constraints`) with exact derivatives; a callable
    `polish(func, x0, bounds=, constraints=)` receives pytrees. `constraints` take functions of
    the pytree `x`. `init` may be an (S, n) array or a pytree with a leading axis of S members on
    every leaf; `integrality` a pytree (or prefix) of bools. `res.population` stays scipy's flat
    (S, n) array (leaves raveled in order).
""",
        "generation",
    ),
    "dual_annealing": (
        """Dual annealing over a pytree (`scipy.optimize.dual_annealing`).

    The local search runs `minimize` with exact derivatives: scipy's L-BFGS-B in the box with
    scipy's iteration cap when `minimizer_kwargs` is None, else `minimize(**minimizer_kwargs)`.
""",
        "minimum found (scipy calls back once per minimum)",
    ),
    "basinhopping": (
        """Basin-hopping from a pytree `x0` (`scipy.optimize.basinhopping`).

    Each hop's local minimisation is `minimize(func, x, **minimizer_kwargs)` with exact
    derivatives (`args` go inside `minimizer_kwargs`, as in scipy). `take_step(x)`,
    `accept_test(f_new=, x_new=, f_old=, x_old=)` and `callback(x, f, accept)` see pytrees.
    There is no `bounds` argument: bound the local steps with
    `minimizer_kwargs={{'bounds': Bounds(lb, ub)}}`.
""",
        "hop",
    ),
    "shgo": (
        """Simplicial homology global optimisation over a pytree (`scipy.optimize.shgo`).

    Without constraints the sampling points of each iteration are evaluated in one batched call
    where the framework vectorises the objective (`jax.vmap`, `torch.func.vmap`,
    `tf.vectorized_map`; the NumPy port evaluates them one by one). Each local minimisation runs
    `minimize` (SLSQP unless `minimizer_kwargs` names another method) with exact derivatives, in
    the local box shgo chooses; `constraints` take functions of the pytree `x`.
    `res.xl` is a list of pytrees.
""",
        "local iteration",
    ),
    "direct": (
        """DIRECT over a pytree (`scipy.optimize.direct`).

    scipy's DIRECT calls the objective one point at a time; each call is one compiled
    evaluation.
""",
        "iteration",
    ),
}


class GlobalOptimizers(NamedTuple):
    differential_evolution: Callable[..., sopt.OptimizeResult]
    dual_annealing: Callable[..., sopt.OptimizeResult]
    basinhopping: Callable[..., sopt.OptimizeResult]
    shgo: Callable[..., sopt.OptimizeResult]
    direct: Callable[..., sopt.OptimizeResult]


def global_optimizers(
    backend_for: BackendFor, *, leaves: str, traceable: str = "", batched: str = ""
) -> GlobalOptimizers:
    """The five global optimisers for one framework.

    Args:
        backend_for: Makes the backend for a template pytree (the parameters' structure).
        leaves: What the leaves of `x` are, for the docstrings.
        traceable: What `func` must be, for the docstrings.
        batched: How a population is evaluated, for differential_evolution's docstring.
    """

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
        return _global_methods.differential_evolution(
            backend_for, func, bounds, args=args, strategy=strategy, maxiter=maxiter,
            popsize=popsize, tol=tol, mutation=mutation, recombination=recombination, rng=rng,
            callback=callback, disp=disp, polish=polish, init=init, atol=atol,
            updating=updating, workers=workers, constraints=constraints, x0=x0,
            integrality=integrality, vectorized=vectorized, progress=progress, **_seed(seed),
        )  # fmt: skip

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
        return _global_methods.dual_annealing(
            backend_for, func, bounds, args=args, maxiter=maxiter,
            minimizer_kwargs=minimizer_kwargs, initial_temp=initial_temp,
            restart_temp_ratio=restart_temp_ratio, visit=visit, accept=accept, maxfun=maxfun,
            rng=rng, no_local_search=no_local_search, callback=callback, x0=x0,
            progress=progress, **_seed(seed),
        )  # fmt: skip

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
        return _global_methods.basinhopping(
            backend_for, func, x0, niter=niter, T=T, stepsize=stepsize,
            minimizer_kwargs=minimizer_kwargs, take_step=take_step, accept_test=accept_test,
            callback=callback, interval=interval, disp=disp, niter_success=niter_success,
            rng=rng, target_accept_rate=target_accept_rate, stepwise_factor=stepwise_factor,
            progress=progress, **_seed(seed),
        )  # fmt: skip

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
        return _global_methods.shgo(
            backend_for, func, bounds, args=args, constraints=constraints, n=n, iters=iters,
            callback=callback, minimizer_kwargs=minimizer_kwargs, options=options,
            sampling_method=sampling_method, workers=workers, progress=progress,
        )  # fmt: skip

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
        return _global_methods.direct(
            backend_for, func, bounds, args=args, eps=eps, maxfun=maxfun, maxiter=maxiter,
            locally_biased=locally_biased, f_min=f_min, f_min_rtol=f_min_rtol, vol_tol=vol_tol,
            len_tol=len_tol, callback=callback, progress=progress,
        )  # fmt: skip

    fields = {"leaves": leaves, "traceable": traceable, "batched": batched}
    functions = (differential_evolution, dual_annealing, basinhopping, shgo, direct)
    for function in functions:
        summary, step = _DOCS[function.__name__]
        bounds = _BOUNDS_DOC if "bounds" in inspect.signature(function).parameters else ""
        function.__doc__ = summary.format(**fields) + _ARGS_DOC.format(
            step=step, bounds=bounds, **fields
        )
    return GlobalOptimizers(*functions)


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
