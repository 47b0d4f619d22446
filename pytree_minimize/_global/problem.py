"""What the global methods share: the problem, population evaluation and local steps.

`differential_evolution`, `dual_annealing`, `basinhopping`, `shgo` and `direct` run scipy's own
functions on the flat float64 vector, so that with the same `rng` they take scipy's path. This
module holds what they have in common:

- the problem: the parameters' layout and box, from `pytree_minimize.Bounds` (whose `lb`/`ub`
  give the pytree when there is no `x0`) or from an `x0` and a prefix of it;
- populations: the backend's batched evaluation (one compiled, vmapped call) behind the hooks
  scipy offers, a map-like `workers` or a vectorised objective;
- local steps: a custom `scipy.optimize.minimize` method that runs the pytree driver
  (`minimize`'s driver) on the user's pytree problem, with exact derivatives (for shgo, which
  looks its local method up by name, a method name that is also that custom method);
- history and progress: the best value found so far, once per iteration.

Which hook and which local step each scipy function takes is in `_global_methods`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import optree
import scipy.optimize as sopt

from .._constraints import emit as _constraint_emit
from .._constraints import parse as _constraint_parse
from .._core.backend import BackendType
from .._core.methods import GLOBAL_FEASIBILITY
from .._core.progress import History, make_progress
from .._core.scipy_compat import add_evaluations
from .._core.tree import (
    NAMESPACE,
    Bounds,
    PyTree,
    broadcast_prefix,
    check_bound_order,
    element_at,
    flat_bounds,
    flatten,
)
from .._core.trees import check_finite, start
from .._minimize.api import MINIMIZE

#: The keys of `minimizer_kwargs` that the pytree `minimize` takes (besides `args`).
_MINIMIZE_KEYS = frozenset(
    [
        "method",
        "jac",
        "hess",
        "hessp",
        "bounds",
        "constraints",
        "tol",
        "callback",
        "options",
        "progress",
    ]
)


# ---------------------------------------------------------------------------------------------
# The problem: backend, objective, layout and box.


class Problem:
    """One global problem over the flat vector: the layout of the parameters and their box."""

    def __init__(
        self,
        backend_type: BackendType,
        func: Callable,
        args: tuple,
        template: PyTree,
        *,
        method: str,
        name: str,
    ) -> None:
        #: Makes the backend of each local minimisation (`_driver.minimize` makes its own).
        self.backend_type = backend_type
        self.func = func
        self.args = args
        self.method = method
        begun = start(backend_type, template, args, entry=method, name=name, allow_complex=False)
        self.backend, self.layout, self.trees = begun.backend, begun.layout, begun.trees
        #: The parameters' pytree as read (an array-like `x0` is scipy's array).
        self.template = begun.x0
        self.lb = np.full(self.layout.n, -np.inf)
        self.ub = np.full(self.layout.n, np.inf)

    @property
    def n(self) -> int:
        return self.layout.n

    def tree(self, flat: np.ndarray) -> PyTree:
        return self.trees.tree(flat)

    def flat(self, tree: PyTree, *, name: str) -> np.ndarray:
        return self.trees.flat(tree, name=name)

    def pytree_bounds(self, lb: np.ndarray, ub: np.ndarray) -> Bounds:
        return Bounds(self.tree(lb), self.tree(ub))

    def batch(self, value: Any, *, name: str) -> np.ndarray:
        """An (S, n) flat population from an (S, n) array or a pytree whose leaves carry a
        leading axis of S members."""
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == self.n:
            return value
        leaves, treedef = flatten(value)
        if treedef != self.layout.treedef:
            raise ValueError(
                f"`{name}` must be an (S, {self.n}) array or a pytree like the parameters with a "
                f"leading axis of S members on every leaf; its structure is {treedef}, expected "
                f"{self.layout.treedef}."
            )
        arrays = [self.backend.to_numpy(leaf) for leaf in leaves]
        members = {a.shape[0] if a.ndim else None for a in arrays}
        parts = []
        for k, (spec, array) in enumerate(zip(self.layout.leaves, arrays, strict=True)):
            if len(members) != 1 or array.shape[1:] != spec.shape:
                raise ValueError(
                    f"`{name}` at `{self.layout.path(k)}` has shape {array.shape}; expected (S, "
                    f"{', '.join(map(str, spec.shape))}) with the same S on every leaf."
                )
            parts.append(array.reshape(array.shape[0], -1).astype(np.float64))
        return np.concatenate(parts, axis=1)

    def flags(self, value: Any, *, name: str) -> np.ndarray | None:
        """A pytree (or prefix) of booleans as one flag per flat entry."""
        if value is None or isinstance(value, bool | np.bool_):
            return None if value is None else np.full(self.n, bool(value))
        if isinstance(value, np.ndarray) and value.shape == (self.n,):
            return value.astype(bool)
        # The prefix broadcaster takes pytrees of real numbers; booleans are 0 and 1.
        marks = broadcast_prefix(
            value, self.layout, name=name, fill=0.0, host=self.backend, like=self.layout.root
        )
        return marks > 0


def _structure_of(bounds: Bounds) -> PyTree:
    """The side of `bounds` that gives the full pytree (lb unless ub has more leaves)."""
    lb, ub = bounds.lb, bounds.ub

    def count(tree: PyTree) -> int:
        return len(optree.tree_leaves(tree, namespace=NAMESPACE))

    tree = ub if lb is None or (ub is not None and count(ub) > count(lb)) else lb

    def as_float(leaf: Any) -> Any:
        if isinstance(leaf, bool | int | np.integer) or (
            isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biu"
        ):
            return np.asarray(leaf, dtype=np.float64)
        return leaf

    return optree.tree_map(as_float, tree, namespace=NAMESPACE)


def problem(
    backend_type: BackendType,
    func: Any,
    bounds: Any,
    x0: Any,
    args: Any,
    *,
    method: str,
    needs_bounds: bool = True,
    finite: bool = True,
) -> tuple[Problem, np.ndarray | None]:
    """The checked problem and the flat `x0` (None without one); `finite`: the method needs
    finite bounds (every one but shgo, which takes an open side as scipy's does)."""
    if not callable(func):
        raise TypeError(
            f"`func` must be callable as `func(x, *args)`; got {type(func).__name__}. Pass the "
            "objective function itself."
        )
    args = args if isinstance(args, tuple) else (args,)
    scipy_box = None
    if bounds is None:
        if needs_bounds:
            raise ValueError(
                f"`bounds` is required by `{method}`: pass `pytree_minimize.Bounds(lb, ub)` with "
                "finite bounds shaped like the parameters (they define the pytree), or a prefix "
                "of the structure of `x0` together with `x0`."
            )
        template = x0
    elif isinstance(bounds, Bounds):
        if bounds.lb is None and bounds.ub is None:
            raise ValueError(f"`bounds` must be finite for `{method}`; both sides are None.")
        template = x0 if x0 is not None else _structure_of(bounds)
    else:
        scipy_box = _scipy_box(bounds)
        template = x0 if x0 is not None else np.zeros(scipy_box[0].size)
    if template is None:
        raise TypeError(f"`x0` is required by `{method}`; pass the starting pytree.")
    name = "x0" if x0 is not None else "bounds.lb"
    result = Problem(backend_type, func, args, template, method=method, name=name)
    if isinstance(bounds, Bounds):
        result.backend.prepare(bounds)
        result.lb, result.ub = flat_bounds(
            bounds, result.layout, to_numpy=result.backend.to_numpy, like=name
        )
    elif scipy_box is not None:
        if scipy_box[0].size != result.n or not result.layout.is_single_array:
            raise ValueError(
                f"`bounds` holds {scipy_box[0].size} (min, max) pairs, but the parameters have "
                f"{result.n} elements; for a pytree `x0` pass `pytree_minimize.Bounds(lb, ub)`."
            )
        result.lb, result.ub = scipy_box
    if bounds is not None:
        _check_box(result, method, finite=finite)
    x0_flat = None
    if x0 is not None:
        x0_flat = result.flat(result.template, name="x0")
        check_finite(result.layout, x0_flat)
    return result, x0_flat


def _scipy_box(bounds: Any) -> tuple[np.ndarray, np.ndarray]:
    """scipy's `Bounds`, or `(min, max)` pairs (None for an open side), as flat `(lb, ub)`."""
    if isinstance(bounds, sopt.Bounds):
        return (
            np.atleast_1d(np.asarray(bounds.lb, dtype=np.float64)),
            np.atleast_1d(np.asarray(bounds.ub, dtype=np.float64)),
        )
    try:
        pairs = np.array(
            [(-np.inf if lo is None else lo, np.inf if hi is None else hi) for lo, hi in bounds],
            dtype=np.float64,
        ).reshape(-1, 2)
    except (TypeError, ValueError):
        # scipy's error type (a number, a string, a pair of three values all raise ValueError)
        raise ValueError(
            f"`bounds` must be `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or a sequence "
            f"of `(min, max)` pairs; got {_describe_bounds(bounds)}."
        ) from None
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _describe_bounds(bounds: Any) -> str:
    if isinstance(bounds, list | tuple):
        return f"a {type(bounds).__name__} holding {bounds!r}"
    return f"a {type(bounds).__name__}"


def _check_box(problem: Problem, method: str, *, finite: bool) -> None:
    lb, ub = problem.lb, problem.ub
    check_bound_order(lb, ub, problem.layout)
    bad = np.flatnonzero(~(np.isfinite(lb) & np.isfinite(ub)))
    if finite and bad.size:
        where = element_at(problem.layout, int(bad[0]))
        raise ValueError(
            f"`bounds` must be finite for `{method}`; at {where} lb={lb[bad[0]]}, ub="
            f"{ub[bad[0]]}. Give every parameter a finite lower and upper bound "
            "(a side left None is unbounded)."
        )


def feasibility_constraints(problem: Problem, constraints: list) -> list:
    """The user's pytree constraints as scipy's derivative-free objects over the flat vector,
    through the shared parser (differential_evolution and shgo test feasibility with them)."""
    return list(
        _constraint_emit.to_scipy(
            [_constraint_parse.parse(c, i) for i, c in enumerate(constraints)],
            GLOBAL_FEASIBILITY,
            backend=problem.backend,
            layout=problem.layout,
            x0=problem.template,
            trees=problem.trees,
        )
    )


# ---------------------------------------------------------------------------------------------
# Evaluations, progress and history.


class Monitor:
    """History and progress of a global run: the best value seen so far, once per iteration
    (generation, hop, minimum found or local iteration, as the method calls back)."""

    def __init__(self, progress: Any, *, total: Any = None) -> None:
        self.history = History(
            gradient=False,
            bar=make_progress(progress, total=total),
            owns_bar=not hasattr(progress, "update"),
        )
        self.best = np.inf

    def seen(self, values: Any) -> None:
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            self.best = min(self.best, float(finite.min()))

    def step(self, fun: Any = None) -> None:
        if fun is not None:
            self.seen(fun)
        self.history.record(self.best, None)


class Escaped(Exception):
    """Carries an exception of the objective past scipy, which would otherwise replace it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def value(problem: Problem, monitor: Monitor) -> Callable[[np.ndarray], float]:
    """The compiled objective at one flat point, compiled at its first call (scipy may never
    call it: a batched run evaluates populations instead)."""
    compiled: list[Callable[[np.ndarray], float]] = []

    def tracked(x: np.ndarray) -> float:
        try:
            if not compiled:
                compiled.append(problem.backend.value(problem.func, problem.layout, problem.args))
            f = compiled[0](x)
        except (TypeError, ValueError) as error:
            # scipy replaces these with its own RuntimeError where it maps `func` over members.
            raise Escaped(error) from None
        monitor.seen(f)
        return f

    return tracked


def batched(problem: Problem, monitor: Monitor) -> Callable[[np.ndarray], np.ndarray]:
    """The compiled objective at the rows of an (S, n) array, in one call."""
    evaluate = problem.backend.batched_value(problem.func, problem.layout, problem.args)

    def tracked(xs: np.ndarray) -> np.ndarray:
        try:
            values = evaluate(np.asarray(xs, dtype=np.float64))
            if values.shape != (xs.shape[0],):
                raise ValueError(
                    f"`func` must return one value per member: given {xs.shape[0]} members it "
                    f"returned shape {values.shape}."
                )
        except (TypeError, ValueError) as error:
            # scipy replaces these with its own RuntimeError about map-like callables.
            raise Escaped(error) from None
        monitor.seen(values)
        return values

    return tracked


def population_map(
    evaluate: Callable[[np.ndarray], np.ndarray], *, nan_to_inf: bool = False
) -> Callable[[Callable, Any], Any]:
    """A map-like `workers(func, iterable)` that evaluates the whole iterable of flat points in
    one batched call. scipy only hands its objective wrapper to it here, so `func` is unused.
    `nan_to_inf` repeats what shgo's serial path does to a NaN value."""

    def population(func: Callable, iterable: Any) -> Any:
        xs = np.asarray(list(iterable) if not isinstance(iterable, np.ndarray) else iterable)
        if xs.shape[0] == 0:
            return []
        values = evaluate(xs.reshape(xs.shape[0], -1))
        return np.where(np.isnan(values), np.inf, values) if nan_to_inf else values

    return population


@contextlib.contextmanager
def host_workers(
    problem: Problem, monitor: Monitor, workers: Any, *, objective_only: bool
) -> Iterator[Any]:
    """scipy's `workers` for a backend that cannot batch (NumPy): a map-like that hands the
    backend's picklable evaluation to `workers` processes (or to the user's map-like) and
    records the values here. scipy's own objective wrapper holds this run's monitor and cannot be
    pickled, so the map-like ignores it, which is right only where scipy maps nothing but the
    objective through `workers` (`objective_only`). Otherwise, for `workers=1` and for batching
    backends, `workers` stays as it is."""
    if (
        not objective_only
        or problem.backend.vectorizes
        or (isinstance(workers, int) and workers == 1)
    ):
        yield workers
        return
    evaluate = problem.backend.value(problem.func, problem.layout, problem.args)
    pool = None
    if callable(workers):
        mapper = workers
    else:
        pool = multiprocessing.Pool(None if workers == -1 else int(workers))
        mapper = pool.map

    def population(func: Callable, iterable: Any) -> Any:
        try:
            values = np.asarray(list(mapper(evaluate, iterable)), dtype=np.float64)
        except (TypeError, ValueError) as error:
            # scipy replaces these with its own RuntimeError about map-like callables.
            raise Escaped(error) from None
        monitor.seen(values)
        return values

    try:
        yield population
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


# ---------------------------------------------------------------------------------------------
# Local steps through the pytree driver.


def check_minimizer_kwargs(kwargs: Any, *, name: str = "minimizer_kwargs") -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise TypeError(
            f"`{name}` must be a dict of `pytree_minimize.minimize` arguments; got "
            f"{type(kwargs).__name__}, for example `{{'method': 'L-BFGS-B'}}`."
        )
    unknown = sorted(set(kwargs) - _MINIMIZE_KEYS - {"args"})
    if unknown:
        raise TypeError(
            f"`{name}` has unknown keys {unknown}; expected arguments of "
            f"`pytree_minimize.minimize`: {', '.join(sorted(_MINIMIZE_KEYS | {'args'}))}."
        )
    return dict(kwargs)


#: What scipy's `minimize` hands a custom method besides `fun`, `x0` and the method's options.
_CUSTOM_METHOD_ARGS = ("args", "jac", "hess", "hessp", "bounds", "constraints", "callback")


def local_method(
    problem: Problem,
    monitor: Monitor,
    kwargs: dict[str, Any],
    *,
    count_calls: bool = False,
    box_and_options_from_caller: bool = False,
) -> Callable[..., sopt.OptimizeResult]:
    """A custom `scipy.optimize.minimize` method that ignores the flat objective it is handed and
    runs `pytree_minimize`'s driver on the pytree problem with `kwargs`, returning flat `x`.

    `count_calls`: dual_annealing counts evaluations in the wrapper it hands to `minimize`; the
    driver evaluates the compiled objective directly, so its `nfev` is added to that count.
    `box_and_options_from_caller`: shgo sets each local search's (flat) bounds and options in
    the call; they replace those in `kwargs`.
    """
    kwargs = dict(kwargs)
    args = kwargs.pop("args", problem.args)

    def pytree_local_minimize(fun: Any, x0: np.ndarray, **given: Any) -> sopt.OptimizeResult:
        call = dict(kwargs)
        if box_and_options_from_caller:
            options = {k: v for k, v in given.items() if k not in _CUSTOM_METHOD_ARGS}
            call["options"] = {**call.get("options", {}), **options}
            if given.get("bounds") is not None:
                lb, ub = _scipy_box(given["bounds"])
                call["bounds"] = problem.pytree_bounds(lb, ub)
        result = MINIMIZE.call(
            problem.backend_type, problem.func, problem.tree(x0), args=args, **call
        )
        to_flat(problem, result)
        monitor.seen(result.fun)
        if count_calls:
            add_evaluations(fun, int(result.get("nfev", 0)))
        return result

    return pytree_local_minimize


class DriverMethod(str):
    """A local method's name that is also a custom `minimize` method running the pytree driver.

    shgo looks its local method up by name (to choose which arguments to hand it), so it refuses
    a callable; scipy's `minimize` tests `callable(method)` before reading a name, so this object
    runs `local` while shgo reads it as the method it names.
    """

    local: Callable[..., sopt.OptimizeResult]

    def __new__(cls, name: str, local: Callable[..., sopt.OptimizeResult]) -> DriverMethod:
        method = super().__new__(cls, name)
        method.local = local
        return method

    def __call__(self, fun: Any, x0: np.ndarray, **given: Any) -> sopt.OptimizeResult:
        return self.local(fun, x0, **given)


def to_flat(problem: Problem, result: sopt.OptimizeResult) -> None:
    """A local result's pytree `x` and `jac` as flat vectors, for scipy's global loop."""
    result.x = problem.flat(result.x, name="x")
    jac = result.get("jac")
    # trust-constr's `jac` holds the constraints' Jacobians, not a gradient like `x`.
    if jac is not None and flatten(jac)[1] == problem.layout.treedef:
        result.jac = problem.trees.flat(jac, name="jac", gradient=True)


def to_trees(problem: Problem, result: sopt.OptimizeResult, monitor: Monitor) -> None:
    """scipy's flat result with pytrees in place of flat vectors, and the history."""
    if result.get("x") is not None:  # shgo without a feasible point returns None
        result.x = problem.tree(result.x)
    jac = result.get("jac")
    if isinstance(jac, np.ndarray) and jac.shape == (problem.n,):
        result.jac = problem.trees.tree(jac, gradient=True)
    result.history = monitor.history.as_dict(None)
