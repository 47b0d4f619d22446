"""The five global methods over any backend: what each scipy function is handed.

Each function checks the problem (`problem.problem`), builds the flat evaluations, callbacks and
local steps scipy's function takes, runs it inside the backend's precision context, and turns the
result back into pytrees. The public functions (built from `api`'s stubs for every framework)
pass their arguments here by name, with the framework's backend type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from .._constraints import parse as _constraint_parse
from .._core import methods as _methods
from .._core.backend import BackendType
from .._core.callbacks import check_callable, wants_intermediate_result
from .._core.dropin import SCIPY, BestSeen, is_flat_vector, scipy_forms, takes_as_is
from .._core.errors import NotScalarError
from .._core.progress import progress_on
from .._core.scipy_compat import dual_annealing_local_maxiter
from .problem import (
    DriverMethod,
    Escaped,
    Monitor,
    Problem,
    batched,
    check_minimizer_kwargs,
    feasibility_constraints,
    host_workers,
    local_method,
    population_map,
    problem,
    to_flat,
    to_trees,
    value,
)


def _legacy_seed(options: dict[str, Any], method: str) -> None:
    """scipy's legacy `seed` in place of `rng` where only `seed` is given (scipy gives the two
    different meanings, and refuses both at once)."""
    seed = options.pop("seed")
    if seed is None:
        return
    if options["rng"] is not None:
        raise TypeError(
            f"{method}() got both `rng` and its legacy name `seed`; pass one of them (`rng` "
            "for a `numpy.random.Generator` seeding, `seed` for scipy's legacy `RandomState`)."
        )
    del options["rng"]
    options["seed"] = seed


def _run(problem: Problem, monitor: Monitor, solve: Callable[[], Any]) -> sopt.OptimizeResult:
    try:
        with problem.backend.precision(problem.layout):
            result = solve()
    except RuntimeError as error:
        if isinstance(error.__cause__, Escaped):
            raise _as_scipy_raises(error.__cause__.error, problem.method) from None
        raise
    except Escaped as escaped:
        raise _as_scipy_raises(escaped.error, problem.method) from None
    except NotScalarError as error:  # from a local minimisation (basinhopping's steps)
        raise _as_scipy_raises(error, problem.method) from None
    finally:
        monitor.history.close()
    to_trees(problem, result, monitor)
    return result


def _as_scipy_raises(error: BaseException, method: str) -> BaseException:
    """The objective's check in the global method's words: its argument is `func`, and the
    exception type is the one scipy raises there."""
    if isinstance(error, NotScalarError):
        kind = _methods.GLOBAL_NOT_SCALAR.get(method, ValueError)
        return kind(NotScalarError.render("func", error.found, error.reduce))
    return error


def _x_callback(tree: Callable[[np.ndarray], Any], monitor: Monitor, user: Any) -> Callable:
    """scipy's `callback(xk, *rest)`, recording the best value so far, then the user's with `x`
    as `tree(x)` (a pytree like the parameters)."""

    def callback(x: np.ndarray, *rest: Any) -> Any:
        monitor.step(rest[0] if rest else None)
        if user is not None:
            return user(tree(x), *rest)
        return None

    return callback


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _as_scipy(
    name: str,
    func: Callable,
    first: Any,
    options: dict[str, Any],
    make_callback: Callable[..., Callable],
    *,
    watch_values: bool = False,
) -> sopt.OptimizeResult:
    """scipy's own global method `name` on a problem it takes as it is (`dropin.takes_as_is`):
    `func(first, **options)` with the user's callables unchanged. A `callback` or `progress` is
    seen through a wrapper (`make_callback(tree, monitor, user)`) that also records `history`;
    `watch_values` (scipy's callback carries no value: shgo, direct) also tells the monitor what
    `func` returns, through a picklable wrapper."""
    progress = options.pop("progress")
    if "seed" in options:
        _legacy_seed(options, name)
    options = scipy_forms(options)
    first = scipy_forms(first)
    solve = getattr(SCIPY, name)
    user = options.get("callback")
    if user is None and not progress_on(progress):
        return solve(func, first, **options)
    monitor = Monitor(progress)
    options["callback"] = make_callback(_same, monitor, user)
    try:
        result = solve(BestSeen(func, monitor) if watch_values else func, first, **options)
    finally:
        monitor.history.close()
    result.history = monitor.history.as_dict(None)
    return result


# ---------------------------------------------------------------------------------------------


def differential_evolution(
    backend_type: BackendType, func: Any, bounds: Any, **options: Any
) -> sopt.OptimizeResult:
    """See `pytree_minimize.differential_evolution`."""
    if takes_as_is(backend_type, options["x0"], bounds, options["constraints"]):
        return _as_scipy("differential_evolution", func, bounds, options, _de_callback)
    prob, x0 = problem(
        backend_type,
        func,
        bounds,
        options.pop("x0"),
        options.pop("args"),
        method="differential_evolution",
    )
    _legacy_seed(options, "differential_evolution")
    monitor = Monitor(options.pop("progress"), total=options.get("maxiter"))
    user_callback = options.pop("callback")
    check_callable(user_callback, "callback", "callback(intermediate_result)", optional=True)
    constraint_list = _constraint_parse.as_list(options.pop("constraints"))
    polish = options.pop("polish")
    vectorized = bool(options["vectorized"])
    workers = options.pop("workers")
    init = options.pop("init")
    integrality = prob.flags(options.pop("integrality"), name="integrality")

    def solve() -> sopt.OptimizeResult:
        nonlocal workers
        if vectorized:
            population = batched(prob, monitor)
            objective: Callable = lambda xt: population(np.asarray(xt).T)
        else:
            objective = value(prob, monitor)
            # scipy evaluates whole populations with `updating='deferred'` and with any number of
            # worker processes; one batched call replaces the processes (and their pickling).
            deferred = options["updating"] == "deferred" or workers != 1
            if isinstance(workers, int) and deferred and prob.backend.vectorizes:
                workers = population_map(batched(prob, monitor))
        scipy_constraints = feasibility_constraints(prob, constraint_list)
        if vectorized:
            # scipy then tests a whole population at once, (n, S) in and (m, S) out.
            scipy_constraints = [_columnwise(c) for c in scipy_constraints]
        with host_workers(prob, monitor, workers, objective_only=not vectorized) as mapped:
            return SCIPY.differential_evolution(
                objective,
                sopt.Bounds(prob.lb, prob.ub),
                callback=_de_callback(prob.tree, monitor, user_callback),
                polish=_polisher(prob, monitor, polish, constraint_list),
                init=init if isinstance(init, str) else prob.batch(init, name="init"),
                workers=mapped,
                constraints=scipy_constraints,
                x0=x0,
                integrality=integrality,
                **options,
            )

    result = _run(prob, monitor, solve)
    return result


class _Columns:
    """A constraint function of one flat point, called as scipy calls a vectorised one: on the
    (n, S) columns of a population, returning (m, S)."""

    def __init__(self, fun: Callable[[np.ndarray], np.ndarray]) -> None:
        self.fun = fun

    def __call__(self, xs: np.ndarray) -> np.ndarray:
        xs = np.asarray(xs)
        if xs.ndim == 1:
            return self.fun(xs)
        return np.stack([np.atleast_1d(self.fun(column)) for column in xs.T], axis=-1)


def _columnwise(constraint: Any) -> Any:
    """A feasibility constraint for `vectorized=True` (a matrix one acts on columns as it is)."""
    if isinstance(constraint, sopt.NonlinearConstraint):
        return sopt.NonlinearConstraint(_Columns(constraint.fun), constraint.lb, constraint.ub)
    return constraint


def _de_callback(tree: Callable[[np.ndarray], Any], monitor: Monitor, user: Any) -> Callable:
    new_style = user is not None and wants_intermediate_result(user)

    def callback(intermediate_result: sopt.OptimizeResult) -> bool:
        monitor.step(intermediate_result.fun)
        if user is None:
            return False
        if new_style:
            converted = sopt.OptimizeResult(intermediate_result)
            converted.x = tree(intermediate_result.x)
            return bool(user(intermediate_result=converted))
        # scipy's legacy convention for differential_evolution: `callback(xk, convergence)`.
        return bool(user(tree(intermediate_result.x), intermediate_result.convergence))

    return callback


def _polisher(problem: Problem, monitor: Monitor, polish: Any, constraints: list) -> Any:
    """scipy's `polish` as a callable `polish(func, x0, bounds=, constraints=)`: scipy's choice
    of method (L-BFGS-B, or trust-constr with constraints) through the pytree driver, or the
    user's own polishing function called with pytrees. Either way the constraints are the
    user's pytree constraints, not scipy's flat ones."""
    if not callable(polish):
        if not polish:
            return False
        method = (_methods.DE_POLISH_CONSTRAINED if constraints else _methods.DE_POLISH).name

        def polish_with_driver(fun: Any, x0: np.ndarray, *, bounds: sopt.Bounds, **_: Any) -> Any:
            box = problem.pytree_bounds(bounds.lb, bounds.ub)
            kwargs = {"method": method, "bounds": box, "constraints": constraints}
            return local_method(problem, monitor, kwargs)(fun, x0)

        return polish_with_driver

    objective = problem.func
    if problem.args:
        func, args = problem.func, problem.args
        objective = lambda x: func(x, *args)

    def user_polish(fun: Any, x0: np.ndarray, *, bounds: sopt.Bounds, **_: Any) -> Any:
        # For a single 1-D array, scipy's own `Bounds`, as scipy hands them.
        flat = is_flat_vector(problem.layout)
        box = bounds if flat else problem.pytree_bounds(bounds.lb, bounds.ub)
        result = polish(objective, problem.tree(x0), bounds=box, constraints=constraints)
        if isinstance(result, sopt.OptimizeResult):  # scipy rejects anything else
            to_flat(problem, result)
        return result

    return user_polish


# ---------------------------------------------------------------------------------------------


def dual_annealing(
    backend_type: BackendType, func: Any, bounds: Any, **options: Any
) -> sopt.OptimizeResult:
    """See `pytree_minimize.dual_annealing`."""
    if takes_as_is(backend_type, options["x0"], bounds, options["minimizer_kwargs"]):
        return _as_scipy("dual_annealing", func, bounds, options, _x_callback)
    prob, x0 = problem(
        backend_type, func, bounds, options.pop("x0"), options.pop("args"), method="dual_annealing"
    )
    _legacy_seed(options, "dual_annealing")
    monitor = Monitor(options.pop("progress"))
    user_callback = options.pop("callback")
    check_callable(user_callback, "callback", "callback(x, f, context)", optional=True)
    kwargs = check_minimizer_kwargs(options.pop("minimizer_kwargs"))
    if not kwargs:
        # scipy's own local search when none is given: L-BFGS-B in the box, its iteration cap.
        cap = dual_annealing_local_maxiter(prob.n)
        kwargs = {
            "method": _methods.ANNEALING_LOCAL_SEARCH.name,
            "options": {"maxiter": cap},
            "bounds": prob.pytree_bounds(prob.lb, prob.ub),
        }

    def solve() -> sopt.OptimizeResult:
        return SCIPY.dual_annealing(
            value(prob, monitor),
            sopt.Bounds(prob.lb, prob.ub),
            minimizer_kwargs={"method": local_method(prob, monitor, kwargs, count_calls=True)},
            callback=_x_callback(prob.tree, monitor, user_callback),
            x0=x0,
            **options,
        )

    return _run(prob, monitor, solve)


# ---------------------------------------------------------------------------------------------


class _TreeStep:
    """The user's `take_step(x)` on pytrees, exposing its `stepsize` (scipy adapts it when the
    step-taking object has one)."""

    def __init__(self, problem: Problem, user: Any) -> None:
        self._problem = problem
        self._user = user

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._problem.flat(self._user(self._problem.tree(x)), name="take_step")

    @property
    def stepsize(self) -> Any:
        return self._user.stepsize  # AttributeError (no `stepsize`) reads as "no attribute"

    @stepsize.setter
    def stepsize(self, value: Any) -> None:
        self._user.stepsize = value


def basinhopping(
    backend_type: BackendType, func: Any, x0: Any, **options: Any
) -> sopt.OptimizeResult:
    """See `pytree_minimize.basinhopping`."""
    if x0 is not None and takes_as_is(backend_type, x0, options["minimizer_kwargs"]):
        return _as_scipy("basinhopping", func, x0, options, _x_callback)
    kwargs = check_minimizer_kwargs(options.pop("minimizer_kwargs"))
    if x0 is None:
        raise TypeError("`x0` is required by `basinhopping`; pass the starting pytree.")
    prob, x0_flat = problem(
        backend_type,
        func,
        None,
        x0,
        kwargs.get("args", ()),
        method="basinhopping",
        needs_bounds=False,
    )
    _legacy_seed(options, "basinhopping")
    monitor = Monitor(options.pop("progress"), total=options.get("niter"))
    user_callback = options.pop("callback")
    check_callable(user_callback, "callback", "callback(x, f, accept)", optional=True)
    take_step = options.pop("take_step")
    accept_test = options.pop("accept_test")
    for name, given in (("take_step", take_step), ("accept_test", accept_test)):
        if given is not None and not callable(given):
            raise TypeError(f"`{name}` must be callable or None; got {type(given).__name__}.")

    def accept(*, f_new: Any, x_new: Any, f_old: Any, x_old: Any) -> Any:
        assert accept_test is not None
        return accept_test(f_new=f_new, x_new=prob.tree(x_new), f_old=f_old, x_old=prob.tree(x_old))

    def solve() -> sopt.OptimizeResult:
        return SCIPY.basinhopping(
            value(prob, monitor),
            x0_flat,
            minimizer_kwargs={"method": local_method(prob, monitor, kwargs)},
            take_step=None if take_step is None else _TreeStep(prob, take_step),
            accept_test=None if accept_test is None else accept,
            callback=_x_callback(prob.tree, monitor, user_callback),
            **options,
        )

    result = _run(prob, monitor, solve)
    lowest = result.get("lowest_optimization_result")
    if lowest is not None:
        to_trees(prob, lowest, Monitor(False))
        del lowest["history"]
    return result


# ---------------------------------------------------------------------------------------------


def shgo(backend_type: BackendType, func: Any, bounds: Any, **options: Any) -> sopt.OptimizeResult:
    """See `pytree_minimize.shgo`."""
    if takes_as_is(backend_type, None, bounds, options["constraints"], options["minimizer_kwargs"]):
        return _as_scipy("shgo", func, bounds, options, _x_callback, watch_values=True)
    prob, _ = problem(
        backend_type, func, bounds, None, options.pop("args"), method="shgo", finite=False
    )
    monitor = Monitor(options.pop("progress"))
    user_callback = options.pop("callback")
    check_callable(user_callback, "callback", "callback(xk)", optional=True)
    user_kwargs = options.pop("minimizer_kwargs")
    local = check_minimizer_kwargs(user_kwargs)
    constraint_list = _constraint_parse.as_list(options.pop("constraints"))
    workers = options.pop("workers")
    method = local.pop("method", _methods.SHGO_LOCAL.name)
    if not isinstance(method, str):
        raise TypeError(
            "`minimizer_kwargs['method']` must be a method name for shgo, which looks its local "
            f"method up by name; got {type(method).__name__}."
        )
    info = _methods.normalize_method(method, has_bounds=True, has_constraints=True)
    # scipy's defaults: ftol=1e-12 when no minimizer_kwargs are given; the global constraints
    # for a local method that takes constraints, unless minimizer_kwargs give their own.
    default_options = dict(_methods.SHGO_DEFAULT_OPTIONS) if user_kwargs is None else {}
    scipy_options = local.pop("options", default_options)
    if info.constraints and constraint_list:
        local.setdefault("constraints", constraint_list)
    local.pop("bounds", None)  # shgo bounds each local search itself
    # scipy hands `options`' jac, hess and hessp to the local minimiser, as functions of `x`.
    shgo_options = dict(options.get("options") or {})
    for key in ("jac", "hess", "hessp"):
        if key in shgo_options:
            local.setdefault(key, shgo_options.pop(key))
    if options.get("options") is not None:
        options["options"] = shgo_options

    def callback(x: Any, *rest: Any) -> Any:  # the driver calls it with the pytree `x`
        monitor.step()
        return None if user_callback is None else user_callback(x)

    local.setdefault("callback", callback)
    driver = local_method(
        prob, monitor, {**local, "method": method}, box_and_options_from_caller=True
    )

    def solve() -> sopt.OptimizeResult:
        nonlocal workers
        backend = prob.backend
        scipy_constraints = feasibility_constraints(prob, constraint_list)
        if isinstance(workers, int) and backend.vectorizes and not constraint_list:
            # With constraints, shgo also maps its feasibility checks through `workers`. Its
            # serial path (workers=1) reads a NaN value as inf; its parallel path does not.
            evaluate = batched(prob, monitor)
            workers = population_map(evaluate, nan_to_inf=workers == 1)
        # With constraints shgo maps its feasibility checks through `workers` too.
        objective_only = not constraint_list
        with host_workers(prob, monitor, workers, objective_only=objective_only) as mapped:
            return SCIPY.shgo(
                value(prob, monitor),
                list(zip(prob.lb, prob.ub, strict=True)),
                constraints=scipy_constraints or None,
                minimizer_kwargs={
                    "method": DriverMethod(info.name, driver),
                    "options": scipy_options,
                },
                workers=mapped,
                **options,
            )

    result = _run(prob, monitor, solve)
    xl = result.get("xl")
    if isinstance(xl, np.ndarray) and xl.ndim == 2:
        result.xl = [prob.tree(row) for row in xl]
    return result


# ---------------------------------------------------------------------------------------------


def direct(
    backend_type: BackendType, func: Any, bounds: Any, **options: Any
) -> sopt.OptimizeResult:
    """See `pytree_minimize.direct`."""
    if takes_as_is(backend_type, None, bounds):
        return _as_scipy("direct", func, bounds, options, _x_callback, watch_values=True)
    prob, _ = problem(backend_type, func, bounds, None, options.pop("args"), method="direct")
    monitor = Monitor(options.pop("progress"))
    user_callback = options.pop("callback")
    check_callable(user_callback, "callback", "callback(xk)", optional=True)

    def solve() -> sopt.OptimizeResult:
        return SCIPY.direct(
            value(prob, monitor),
            sopt.Bounds(prob.lb, prob.ub),
            callback=_x_callback(prob.tree, monitor, user_callback),
            **options,
        )

    return _run(prob, monitor, solve)
