"""The framework-neutral driver of `scipy.optimize.minimize`: the only module that knows its calling
conventions (the forms of `jac`, `hess`, `hessp`, `bounds`; callbacks; the result's fields).

It validates the inputs, builds the flat layout, asks the backend for the evaluations the method
needs (which ones: the method table, `_methods`), runs `scipy.optimize.minimize` on the flat
float64 vector and turns the result back into pytrees. One backend object per call: it may hold
that call's state (the JAX backend keeps x0's shardings).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize as sopt
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

from .._constraints import derivatives as _constraints
from .._constraints import emit as _constraint_emit
from .._core import dropin as _dropin
from .._core import threads as _threads
from .._core.active_bounds import active_bounds
from .._core.backend import Backend, BackendType
from .._core.bounds import minimize_bounds
from .._core.callbacks import wants_intermediate_result
from .._core.methods import (
    FINITE_DIFFERENCES,
    MethodInfo,
    names_where,
    normalize_method,
    solver_of,
)
from .._core.progress import History, make_progress
from .._core.recorder import Recorder
from .._core.sparse import SparsePolicy
from .._core.tree import Layout, PyTree, build_layout
from .._core.trees import Trees, lay_out
from . import fixed_variables as _fixed_variables

#: scipy's own `minimize`, bound at import: whoever swaps `scipy.optimize.minimize` for this
#: library's (as the test that runs scipy's own suite through it does) must not make it call
#: itself.
_scipy_minimize = sopt.minimize


# ---------------------------------------------------------------------------------------------
# Input checks.


def check_inputs(fun: Any, callback: Any, options: Any) -> None:
    if not callable(fun):
        raise TypeError(
            f"`fun` must be callable as `fun(x, *args)`; got {type(fun).__name__}. "
            "Pass the objective function itself."
        )
    if callback is not None and not callable(callback):
        raise TypeError(
            f"`callback` must be callable or None; got {type(callback).__name__}. Use "
            "`callback(intermediate_result)` or the legacy `callback(xk)`."
        )
    if options is not None and not isinstance(options, dict):
        raise TypeError(
            f"`options` must be a dict of method options; got {type(options).__name__}, for "
            "example `options={'maxiter': 100}`."
        )


# ---------------------------------------------------------------------------------------------
# The evaluations handed to scipy.


def objective(
    backend: Backend,
    info: MethodInfo,
    fun: Callable,
    jac: Any,
    layout: Layout,
    args: tuple,
    trees: Trees,
    recorder: Recorder,
) -> tuple[Callable, Any]:
    """scipy's `(fun, jac)` pair for the method and the user's `jac`."""
    if jac is True:
        return recorder.value_and_grad(backend.value_and_user_grad(fun, layout, args)), True
    if jac is None or jac is False:
        # Without autodiff (the NumPy port), gradient methods fall back to scipy's own finite
        # differences, as scipy does for `jac=None`.
        if info.gradient and backend.autodiff:
            return recorder.value_and_grad(backend.value_and_grad(fun, layout, args)), True
        return recorder.value(backend.value(fun, layout, args)), None
    if isinstance(jac, str):
        if jac not in FINITE_DIFFERENCES:
            raise ValueError(
                f"`jac` {jac!r} is not a finite-difference scheme; expected one of "
                f"{', '.join(map(repr, FINITE_DIFFERENCES))}, True, a callable, or None."
            )
        value = backend.value(fun, layout, args, complex_step=jac == "cs")
        return recorder.value(value), jac
    if callable(jac):

        def user_jac(x: np.ndarray) -> np.ndarray:
            return trees.flat(jac(trees.tree(x), *args), name="jac", gradient=True)

        return recorder.value(backend.value(fun, layout, args)), recorder.gradient(user_jac)
    raise TypeError(
        f"`jac` must be None, True, a callable, or one of {', '.join(FINITE_DIFFERENCES)}; "
        f"got {type(jac).__name__}."
    )


def hessians(
    backend: Backend,
    info: MethodInfo,
    fun: Callable,
    hess: Any,
    hessp: Any,
    layout: Layout,
    args: tuple,
    trees: Trees,
    policy: SparsePolicy | None = None,
) -> tuple[Any, Any]:
    """scipy's `(hess, hessp)` pair: the user's, translated, or autodiff's where the method uses
    second derivatives (a sparse matrix where the method takes one and `policy` asks)."""
    if hessp is not None:
        if not callable(hessp):
            raise TypeError(
                f"`hessp` must be callable as `hessp(x, p, *args)`; got {type(hessp).__name__}."
            )
        user_hessp = hessp

        def flat_hessp(x: np.ndarray, p: np.ndarray) -> np.ndarray:
            # A Hessian-vector product is the derivative of the gradient, so complex leaves
            # follow the gradient's convention (conjugated for JAX).
            product = user_hessp(trees.tree(x), trees.tree(p), *args)
            return trees.flat(product, name="hessp", gradient=True)

        hessp = flat_hessp
    if hess is None:
        if not backend.autodiff:
            return None, hessp
        if info.hessian == "dense":
            return backend.hessian(fun, layout, args), hessp
        if info.hessian == "hvp" and hessp is None:
            matrix = None
            if policy is not None and info.sparse_hessian:
                # Products need no matrix: 'auto' keeps them, `sparse=True` asks for it.
                matrix = policy.hessian("hess", fun, layout, args, matrix_free=True)
            if matrix is not None:
                return matrix.at, None
            return None, backend.hvp(fun, layout, args)
        return None, hessp
    if isinstance(hess, sopt.HessianUpdateStrategy) or (
        isinstance(hess, str) and hess in FINITE_DIFFERENCES
    ):
        return hess, hessp
    if callable(hess):
        user_hess = hess

        def flat_hess(x: np.ndarray) -> Any:
            matrix = user_hess(trees.tree(x), *args)
            if isinstance(matrix, LinearOperator) or scipy.sparse.issparse(matrix):
                return matrix  # scipy takes both as they are
            matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))  # as scipy reads it
            if matrix.shape != (layout.n, layout.n):
                raise ValueError(
                    f"`hess` returned shape {matrix.shape}; expected ({layout.n}, {layout.n}), "
                    "the Hessian over the flat vector of `x0` (leaves in optree order)."
                )
            return matrix

        return flat_hess, hessp
    raise TypeError(
        "`hess` must be None, a callable, a `HessianUpdateStrategy`, or one of "
        f"{', '.join(FINITE_DIFFERENCES)}; got {type(hess).__name__}."
    )


def _user_gradient_hessians(
    backend: Backend, info: MethodInfo, fun: Callable, layout: Layout, args: tuple
) -> tuple[Any, Any]:
    """scipy's `(hess, hessp)` for a second-order method with `jac=True`: `fun` returns
    `(value, gradient)`, so autodiff of `fun` itself would differentiate a pair. The second
    derivatives come from forward-mode differentiation of the user's own gradient where the
    backend offers it (exact), else from scipy's finite differences of that gradient."""
    exact = backend.user_gradient_derivative(fun, layout, args, dense=info.hessian == "dense")
    if exact is not None:
        return (exact, None) if info.hessian == "dense" else (None, exact)
    if not info.needs_hess:
        # scipy's own default: Newton-CG differences the gradient, trust-constr updates BFGS.
        return None, None
    if info.hessian == "dense":
        # dogleg and trust-exact take only a callable Hessian: scipy's differences, made here.
        # The step suits the least precise leaf: a float32 gradient differenced with float64's
        # step is noise.
        eps = max(np.finfo(spec.dtype).eps for spec in layout.leaves)
        value_and_grad = backend.value_and_user_grad(fun, layout, args)
        return _dropin.GradientDifferences(value_and_grad, float(np.sqrt(eps))), None
    return "2-point", None


# ---------------------------------------------------------------------------------------------
# Callbacks.


def _is_gradient(grad: Any, x: np.ndarray) -> bool:
    return isinstance(grad, np.ndarray) and grad.shape == np.shape(x)


def _callback(
    user: Callable | None,
    info: MethodInfo,
    trees: Trees,
    history: History,
    recorder: Recorder,
) -> Callable:
    """The callback handed to scipy: records history and progress, then calls the user's with
    pytrees in place of flat vectors."""
    new_style = user is not None and wants_intermediate_result(user)

    def record(x: np.ndarray, result: Any) -> None:
        fun = grad = None
        if result is not None:
            fun = result.get("fun")
            grad = result.get("jac")
            if not _is_gradient(grad, x):
                # trust-constr names the objective's gradient `grad` (its `jac` is the
                # constraints').
                grad = result.get("grad")
        if not _is_gradient(grad, x):
            grad = None
        fun, grad = recorder.iterate(x, fun, grad)
        history.record(float(fun), grad if info.gradient else None)

    def call_user(x: np.ndarray, result: Any) -> None:
        if user is None:
            return
        if new_style:
            converted = sopt.OptimizeResult(result if result is not None else {"x": x})
            converted.x = trees.tree(x)
            user(intermediate_result=converted)
        elif info.legacy_callback_state:
            user(trees.tree(x), result)
        else:
            user(trees.tree(x))

    if info.callback == "legacy":

        def legacy(xk: np.ndarray) -> None:
            record(xk, None)
            call_user(xk, None)

        return legacy

    def intermediate(intermediate_result: sopt.OptimizeResult) -> None:
        x = intermediate_result.x
        record(x, intermediate_result)
        call_user(x, intermediate_result)

    return intermediate


# ---------------------------------------------------------------------------------------------
# The driver.


class MinimizeCall(NamedTuple):
    """One call's arguments as `minimize` takes them (`args` a tuple; `x0` cast where scipy reads
    it as an array), for the solvers it hands the call to."""

    fun: Callable
    x0: PyTree
    args: tuple
    method: Any
    jac: Any
    hess: Any
    hessp: Any
    bounds: Any
    constraints: Any
    tol: float | None
    callback: Callable | None
    options: dict | None
    progress: Any


def minimize(
    backend_type: BackendType,
    fun: Callable,
    x0: PyTree,
    *,
    args: Any,
    method: Any,
    jac: Any,
    hess: Any,
    hessp: Any,
    bounds: Any,
    constraints: Any,
    tol: float | None,
    callback: Callable | None,
    options: dict | None,
    progress: Any,
    blas_threads: Any,
    sparse: Any,
) -> sopt.OptimizeResult:
    """scipy.optimize.minimize over pytrees for any backend (see `pytree_minimize.minimize`).

    The options are keyword-only, so a new entry point or port passes what it has by name."""
    check_inputs(fun, callback, options)
    _threads.check_blas_threads(blas_threads)
    if not isinstance(args, tuple):
        args = (args,)
    # An `x0` that scipy reads as a 1-D array (a number, a list of numbers, an integer array) is
    # that array, cast as scipy casts it: `fun` receives it and `res.x` is one (drop-in rule).
    array = _dropin.scipy_array(x0)
    if array is not None:
        x0 = array
    backend = backend_type(x0, args, entry="minimize")
    policy = SparsePolicy(sparse, backend)
    call = MinimizeCall(
        fun, x0, args, method, jac, hess, hessp, bounds, constraints, tol, callback, options,
        progress,
    )  # fmt: skip
    if solver_of(method) == "ipopt":
        from . import ipopt_driver  # cyipopt is loaded only when asked for

        return ipopt_driver.minimize(backend, call, policy)
    if not backend.autodiff:
        _check_derivatives(backend, method, jac, hess, hessp, bounds, constraints)
    if _is_scipy_problem(backend, x0, bounds, constraints):
        policy.refuse_forced()  # scipy takes this problem as it is: no sparsity detection
        return _minimize_as_scipy(backend, call)
    # A non-finite x0 is not checked: scipy starts from it (and its methods report what follows).
    _, layout, x0_flat, trees = lay_out(backend, x0)

    constraint_list = _constraints.as_list(constraints)
    info = normalize_method(
        method, has_bounds=bounds is not None, has_constraints=bool(constraint_list)
    )
    if bounds is not None:
        backend.prepare(bounds)
    scipy_bounds = minimize_bounds(bounds, layout, backend)
    if scipy_bounds is not None and not info.bounds:
        # scipy warns and runs without them; so does this driver (its warning names the methods
        # that take bounds).
        _dropin.warn_ignored_bounds(info.name)
        scipy_bounds = None
    if constraint_list and not info.constraints:
        # The same for constraints given to a method without them.
        _dropin.warn_ignored_constraints(info.name)
        constraint_list = []
    if policy.sparse is True and not (info.sparse_hessian or info.sparse_constraint_jacobians):
        raise ValueError(
            f"`sparse=True` was given, but method {info.name!r} takes no sparse derivatives; use "
            f"one of {names_where(lambda i: i.sparse_hessian or i.sparse_constraint_jacobians)} "
            "(or leave `sparse` at 'auto')."
        )

    recorder = Recorder(keep_two=info.reports_earlier_iterate)
    threads = _threads.threads_for(
        info.vector_only and not callable(method), hess=hess, blas_threads=blas_threads
    )
    with backend.precision(layout), _threads.limit_blas(threads):
        scipy_fun, scipy_jac = objective(backend, info, fun, jac, layout, args, trees, recorder)
        if jac is True and hess is None and hessp is None and info.hessian:
            scipy_hess, scipy_hessp = _user_gradient_hessians(backend, info, fun, layout, args)
        else:
            scipy_hess, scipy_hessp = hessians(
                backend, info, fun, hess, hessp, layout, args, trees, policy
            )
        scipy_constraints = _constraint_emit.to_scipy(
            [_constraints.parse(c, i) for i, c in enumerate(constraint_list)],
            info,
            backend=backend,
            layout=layout,
            x0=x0,
            trees=trees,
            bounds=scipy_bounds,
            policy=policy,
        )
        history = History(
            gradient=info.gradient,
            bar=make_progress(progress, total=(options or {}).get("maxiter")),
            owns_bar=not hasattr(progress, "update"),
        )
        method_bounds, method_constraints = scipy_bounds, scipy_constraints
        method_callback: Callable | None = _callback(callback, info, trees, history, recorder)
        if callable(method) and isinstance(x0, np.ndarray) and _dropin.is_flat_vector(layout):
            # A custom method gets scipy's own arguments: for the flat vector itself these are
            # the user's bounds, constraints and callback, unaltered (scipy passes them before
            # standardising them).
            method_bounds, method_constraints, method_callback = bounds, constraints, callback
        try:
            start = time.perf_counter()
            history.start(start)
            solve = _fixed_variables.scipy_minimize(
                info, layout, scipy_bounds, solve=_scipy_minimize
            )
            result = solve(
                scipy_fun,
                x0_flat,
                method=method if callable(method) else info.name,
                jac=scipy_jac,
                hess=scipy_hess,
                hessp=scipy_hessp,
                bounds=method_bounds,
                constraints=method_constraints,
                tol=tol,
                callback=method_callback,
                options=options,
            )
        finally:
            history.close()
        if scipy_bounds is not None:  # before `_result` turns the flat `x` into a pytree
            interior = info.interior_bounds and result.get("v")  # bounds' `v` come last
            result.active_bounds = active_bounds(
                result.x,
                scipy_bounds.lb,
                scipy_bounds.ub,
                layout,
                bound_multipliers=result.v[-1] if interior else None,
            )
        policy.attach(result)
        return _result(result, trees, history, constraint_list, scipy_constraints, info)


def _check_derivatives(
    backend: Backend, method: Any, jac: Any, hess: Any, hessp: Any, bounds: Any, constraints: Any
) -> None:
    """For a backend without autodiff: name the missing argument where scipy would fail for want
    of a derivative."""
    if not isinstance(method, str):
        return
    info = normalize_method(
        method, has_bounds=bounds is not None, has_constraints=bool(constraints)
    )
    if not info.needs_jac:
        return
    if jac is None or jac is False:
        raise ValueError(
            f"method {info.name!r} needs a gradient, and the {backend.name} port has no "
            "autodiff: pass `jac=True` (fun returns `(value, gradient)`) or a `jac` callable."
        )
    # With `jac=True` the driver differences the user's gradient (scipy's '2-point').
    if hess is None and hessp is None and info.needs_hess and jac is not True:
        needs = "`hess`" if info.hessian == "dense" else "`hess` or `hessp`"
        raise ValueError(
            f"method {info.name!r} needs second derivatives, and the {backend.name} port has no "
            f"autodiff: pass {needs}."
        )


def _is_scipy_problem(backend: Backend, x0: Any, bounds: Any, constraints: Any) -> bool:
    """True where the problem is one scipy takes as it is (`dropin.takes_as_is`): a backend
    without autodiff (NumPy), a 1-D real float array `x0` (the flat vector itself) and bounds
    and constraints in scipy's own forms. Then scipy gets the user's callables unchanged, so it
    does exactly what it does for them (lists and sparse matrices as derivatives, complex steps,
    pickling for `workers`, custom methods, its own errors)."""
    if not isinstance(x0, np.ndarray):
        return False
    return _dropin.takes_as_is(type(backend), x0, bounds, constraints)


def _minimize_as_scipy(backend: Backend, call: MinimizeCall) -> sopt.OptimizeResult:
    """`scipy.optimize.minimize` itself on a problem it takes as it is (see `_is_scipy_problem`),
    with this library's `history` and progress bar added through picklable wrappers."""
    fun, x0, args, method, jac, hess, hessp = call[:7]
    bounds, constraints, tol, callback, options, progress = call[7:]
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    bounds = _dropin.scipy_forms(bounds)  # this library's `Bounds` of arrays: scipy's `Bounds`
    # The one constraint parser reads them first: where scipy would fail on a malformed
    # constraint, the error names the constraint and the fix. A custom method gets them from
    # scipy as they were given, whatever they are.
    if not callable(method):
        for index, constraint in enumerate(_constraints.as_list(constraints)):
            _constraints.parse(constraint, index)
    has_constraints = bool(constraints) if not isinstance(constraints, dict) else True
    info = normalize_method(method, has_bounds=bounds is not None, has_constraints=has_constraints)
    recorder = Recorder()
    history = History(
        gradient=info.gradient,
        bar=make_progress(progress, total=(options or {}).get("maxiter")),
        owns_bar=not hasattr(progress, "update"),
    )
    objective = _dropin.RecordedObjective(fun, recorder, returns_grad=jac is True)
    if callable(method):
        scipy_callback = callback  # a custom method gets scipy's own arguments
    else:
        trees = Trees(layout, [x0], backend)
        scipy_callback = _callback(callback, info, trees, history, recorder)
    try:
        history.start(time.perf_counter())
        result = _scipy_minimize(
            objective, x0.copy(), args, method, jac, hess, hessp, bounds, constraints, tol,
            scipy_callback, options,
        )  # fmt: skip
    finally:
        history.close()
    result.history = history.as_dict(result.get("nit"))
    if bounds is not None and not callable(method):
        _attach_active_bounds(result, bounds, layout, x0, backend, info)
    return result


def _attach_active_bounds(
    result: sopt.OptimizeResult,
    bounds: Any,
    layout: Layout,
    x0: np.ndarray,
    backend: Backend,
    info: MethodInfo,
) -> None:
    """`active_bounds` on a result scipy produced itself, as every bounded result has."""
    try:
        flat = minimize_bounds(bounds, layout, backend)
    except (TypeError, ValueError):
        return  # a form scipy took and this library does not read: no `active_bounds`
    if flat is None or not info.bounds:
        return
    interior = info.interior_bounds and result.get("v")
    result.active_bounds = active_bounds(
        np.asarray(result.x, dtype=np.float64),
        flat.lb,
        flat.ub,
        layout,
        bound_multipliers=result.v[-1] if interior else None,
    )


def _result(
    result: sopt.OptimizeResult,
    trees: Trees,
    history: History,
    constraint_list: list,
    scipy_constraints: Any,
    info: MethodInfo,
) -> sopt.OptimizeResult:
    n = trees.layout.n
    gradients = {
        field: gradient
        for field in ("jac", *info.gradient_fields)
        if isinstance(gradient := result.get(field), np.ndarray) and gradient.shape == (n,)
    }
    # The objective's gradient comes first (trust-constr's `jac` is the constraints').
    grad = next(iter(gradients.values()), None)
    result.history = history.as_dict(result.get("nit"), fun=result.fun, grad=grad)
    result.x = trees.tree(result.x)
    for field, gradient in gradients.items():
        result[field] = trees.tree(gradient, gradient=True)
    _constraint_emit.attach_multipliers(result, constraint_list, scipy_constraints, info)
    return result
