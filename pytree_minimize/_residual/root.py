"""The `root` driver: scipy's `root` calling conventions and nothing else.

It knows how scipy takes a Jacobian (`jac` callable or `jac=True`), how its 'krylov' method can
be handed exact Jacobian-vector products (through the hooks scipy documents for `jac_options`),
its callbacks and its results. Which method uses what comes from the `root` table in
:mod:`._methods`; residual evaluations from :mod:`._residuals`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt
import scipy.sparse.linalg as splinalg

from .._core.backend import Backend, BackendType
from .._core.callbacks import check_callable
from .._core.hints import returned_pair
from .._core.methods import RootMethod, root_method
from .._core.tree import PyTree
from .._core.trees import Start, start
from . import residuals as _residuals
from .residuals import Residuals


def root(
    backend_type: BackendType,
    fun: Callable,
    x0: PyTree,
    *,
    args: Any,
    method: str,
    jac: Any,
    tol: float | None,
    callback: Callable | None,
    options: dict | None,
) -> sopt.OptimizeResult:
    """scipy.optimize.root over pytrees for any backend (see `pytree_minimize.root`); options
    by keyword."""
    check_callable(fun, "fun", "fun(x, *args)")
    check_callable(callback, "callback", "callback(x, f)", optional=True)
    info = root_method(method)
    if options is not None and not isinstance(options, dict):
        raise TypeError(
            f"`options` must be a dict of method options; got {type(options).__name__}."
        )
    options = dict(options or {})
    args = _residuals.as_args(args)
    begun = start(backend_type, x0, args, entry="root", finite=True)
    backend = begun.backend
    values_fun = _residuals.adapted(fun, "first_output", _first_output) if jac is True else fun

    with backend.precision(begun.layout):
        residuals = Residuals(backend, values_fun, begun.layout, args, x0)
        _check_size(residuals, info)
        scipy_fun, scipy_jac = _fun_and_jac(backend, residuals, fun, jac, info, begun, args)
        if info.jacobian == "products" and jac is None and backend.autodiff:
            options["jac_options"] = _exact_krylov(residuals, options.get("jac_options"))
        result = sopt.root(
            scipy_fun,
            begun.x0_flat,
            method=info.name,
            jac=scipy_jac,
            tol=tol,
            callback=_callback(callback, begun, residuals, info),
            options=options,
        )
    result.x = begun.trees.tree(result.x)
    result.fun = residuals.tree(result.fun)
    return result


def _first_output(fun: Callable) -> Callable:
    def first(x: Any, *args: Any) -> Any:
        return returned_pair(fun(x, *args), derivative="jacobian", source="autodiff")[0]

    return first


def _check_size(residuals: Residuals, info: RootMethod) -> None:
    m, n = residuals.m, residuals.n
    if m == n or (info.overdetermined and m > n):  # a least-squares solve, as scipy's
        return
    more = "" if info.overdetermined else f" (method {info.name!r} takes no more)"
    raise ValueError(
        f"`fun` must return as many elements as `x0` has ({n}); it returned {m}{more}. A root "
        "finder solves a square system: fun's output leaves, raveled, must hold one value per "
        "parameter."
    )


def _fun_and_jac(
    backend: Backend,
    residuals: Residuals,
    fun: Callable,
    jac: Any,
    info: RootMethod,
    start: Start,
    args: tuple,
) -> tuple[Callable, Any]:
    """scipy's `(fun, jac)`: autodiff's dense Jacobian for 'hybr' and 'lm', the user's, or
    none (the methods that use none, and a backend without autodiff)."""
    shape = (residuals.m, residuals.n)
    if jac is True:
        trees = start.trees

        def fun_and_jac(x: np.ndarray) -> tuple[np.ndarray, Any]:
            out = fun(trees.tree(x), *args)
            matrix = _residuals.check_flat_matrix(out[1], shape, name="fun")
            return residuals.ravel(out[0]), matrix

        return fun_and_jac, True
    if jac is None or jac is False:
        if info.jacobian == "dense" and backend.autodiff:
            return residuals.values, residuals.jacobian()
        return residuals.values, None
    if callable(jac):
        user_jac, trees = jac, start.trees

        def flat_jac(x: np.ndarray) -> Any:
            return _residuals.check_flat_matrix(user_jac(trees.tree(x), *args), shape, name="jac")

        return residuals.values, flat_jac
    raise TypeError(
        f"`jac` must be None (autodiff), True (`fun` returns `(residuals, jacobian)`) or a "
        f"callable; got {type(jac).__name__}."
    )


def _callback(
    user: Callable | None, start: Start, residuals: Residuals, info: RootMethod
) -> Callable | None:
    if user is None:
        return None
    if info.callback != "x_f":
        return user  # scipy warns that the method takes no callback, and never calls it

    def callback(x: np.ndarray, f: np.ndarray) -> None:
        user(start.trees.tree(x), residuals.tree(f))

    return callback


# ---------------------------------------------------------------------------------------------
# 'krylov' with exact Jacobian-vector products.
#
# scipy's `root(method='krylov')` builds a `KrylovJacobian` whose products are forward
# differences of `fun`; `root` offers no way to hand it a Jacobian. Two documented hooks of its
# `jac_options` get exact products in anyway: `inner_M`, whose `setup(x, f, func)` and
# `update(x, f)` scipy calls at every accepted point (so it tracks the current `x`), and
# `method`, the inner linear solver, which may be any callable with the interface of
# `scipy.sparse.linalg`'s solvers (so it can solve with the exact operator instead of the
# finite-difference one it is handed).


class _PointTracker(splinalg.LinearOperator):
    """The user's preconditioner (or the identity), also recording the current point."""

    def __init__(self, n: int, preconditioner: Any):
        super().__init__(np.float64, (n, n))
        self.preconditioner = preconditioner
        self.x: np.ndarray | None = None

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        if self.preconditioner is None:
            return np.asarray(v)
        return np.asarray(self.preconditioner @ v)

    def setup(self, x: np.ndarray, f: np.ndarray, func: Callable) -> None:
        self.x = np.array(x, dtype=np.float64)
        if hasattr(self.preconditioner, "setup"):
            self.preconditioner.setup(x, f, func)

    def update(self, x: np.ndarray, f: np.ndarray) -> None:
        self.x = np.array(x, dtype=np.float64)
        if hasattr(self.preconditioner, "update"):
            self.preconditioner.update(x, f)


def _exact_krylov(residuals: Residuals, jac_options: Any) -> dict[str, Any]:
    """`jac_options` for scipy's KrylovJacobian whose inner solves use exact products."""
    if jac_options is not None and not isinstance(jac_options, dict):
        raise TypeError(
            f"`options['jac_options']` must be a dict; got {type(jac_options).__name__}."
        )
    user = dict(jac_options or {})
    preconditioner = user.pop("inner_M", None)
    # scipy's own KrylovJacobian, built from the user's options, says which inner solver to
    # run and with which keyword arguments (for lgmres: outer vectors kept across steps).
    reference = sopt.KrylovJacobian(**user)
    inner_solver, inner_kw = reference.method, dict(reference.method_kw)
    tracker = _PointTracker(residuals.n, preconditioner)
    inner_kw["M"] = preconditioner
    operator_at = residuals.operator()

    def exact_solver(A: Any, b: np.ndarray, rtol: float = 1e-5, **ignored: Any) -> Any:
        if tracker.x is None:  # pragma: no cover - scipy always sets up before solving
            raise RuntimeError("krylov: the current point is unknown")
        kw = dict(inner_kw)
        kw.setdefault("rtol", rtol)
        return inner_solver(operator_at(tracker.x), b, **kw)

    options = {key: value for key, value in user.items() if key in ("rdiff", "outer_k")}
    options.update(method=exact_solver, inner_M=tracker, inner_maxiter=inner_kw.get("maxiter"))
    return options
