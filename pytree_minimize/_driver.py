"""The framework-neutral driver of `scipy.optimize.minimize`: the only module that knows its calling
conventions (the forms of `jac`, `hess`, `hessp`, `bounds`; callbacks; the result's fields).

It validates the inputs, builds the flat layout, asks the backend for the evaluations the method
needs (which ones: the method table, `_methods`), runs `scipy.optimize.minimize` on the flat
float64 vector and turns the result back into pytrees. One backend object per call: it may hold
that call's state (the JAX backend keeps x0's shardings).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.optimize as sopt
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

from . import _constraint_emit, _constraints, _dropin, _fixed_variables, _threads
from ._active_bounds import active_bounds
from ._backend import Backend
from ._methods import METHOD_NAMES, MethodInfo, names_where, normalize_method, solver_of
from ._sparse import SparsePolicy

__all__ = ["METHOD_NAMES", "MethodInfo", "minimize", "normalize_method"]
from ._progress import History, make_progress
from ._recorder import Recorder
from ._tree import (
    Bounds,
    Layout,
    PyTree,
    build_layout,
    flat_bounds,
    flatten,
    locate,
)

_FINITE_DIFFERENCES = ("2-point", "3-point", "cs")
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


def _check_finite(layout: Layout, x0_flat: np.ndarray) -> None:
    """For the global optimisers' `x0` (`minimize` itself starts from a non-finite x0, as scipy
    does)."""
    bad = np.flatnonzero(~np.isfinite(x0_flat))
    if bad.size:
        path, index = locate(layout, int(bad[0]))
        raise ValueError(
            f"`x0` must be finite; `{path}` holds {x0_flat[bad[0]]} at element {index}. "
            "Start from finite values."
        )


def _scipy_bounds(bounds: Any, layout: Layout, x0: PyTree, backend: Backend) -> sopt.Bounds | None:
    """Every form of `bounds` as flat vectors, read by the one broadcaster (`flat_bounds`)."""
    if bounds is None:
        return None
    keep_feasible = None
    if isinstance(bounds, Bounds):
        pytree_bounds = bounds
    elif not layout.is_single_array or layout.has_complex:
        raise TypeError(
            f"`bounds` must be a `pytree_minimize.Bounds(lb, ub)` when `x0` is a pytree; got "
            f"{type(bounds).__name__}. scipy's `Bounds` and `(min, max)` pairs are accepted only "
            "for a single real array `x0`."
        )
    elif isinstance(bounds, sopt.Bounds):
        pytree_bounds = Bounds(bounds.lb, bounds.ub)
        keep_feasible = bounds.keep_feasible
    elif isinstance(bounds, Sequence):
        pairs = list(bounds)
        if len(pairs) != layout.n or not all(len(p) == 2 for p in pairs):
            raise ValueError(
                f"`bounds` as a sequence must hold one `(min, max)` pair per element of `x0` "
                f"({layout.n}); got {len(pairs)} entries."
            )
        pytree_bounds = Bounds(
            np.asarray([-np.inf if p[0] is None else p[0] for p in pairs]),
            np.asarray([np.inf if p[1] is None else p[1] for p in pairs]),
        )
    else:
        raise TypeError(
            f"`bounds` must be None, `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or a "
            f"sequence of `(min, max)` pairs; got {type(bounds).__name__}."
        )
    lb, ub = flat_bounds(pytree_bounds, layout, x0, to_numpy=backend.to_numpy)
    if keep_feasible is None:
        return sopt.Bounds(lb, ub)
    return sopt.Bounds(lb, ub, keep_feasible=keep_feasible)


# ---------------------------------------------------------------------------------------------
# Conversions between the flat vector and the user's pytrees.


class _Trees:
    """Turns flat vectors into pytrees of x0's leaf types and back (for user callables)."""

    def __init__(self, layout: Layout, x0_leaves: list[Any], backend: Backend):
        self.layout = layout
        self.x0_leaves = x0_leaves
        self.backend = backend

    def tree(self, flat: np.ndarray, *, gradient: bool = False) -> PyTree:
        if np.iscomplexobj(flat):
            # A complex-step point (`hess='cs'` differentiating a user `jac`): the step must reach
            # the user's function, so real leaves become complex instead of losing it to a cast.
            arrays = self.layout.unravel(flat)
            return self.layout.unflatten(
                [
                    a if _dropin.is_host_scalar(like) else self.backend.restore_leaf(a, like)
                    for a, like in zip(arrays, self.x0_leaves, strict=True)
                ]
            )
        arrays = self.layout.unravel(np.asarray(flat, dtype=np.float64))
        if gradient and self.backend.conjugate_gradients:
            arrays = [np.conj(a) if a.dtype.kind == "c" else a for a in arrays]
        leaves = [
            self.backend.restore_leaf(a, like)
            for a, like in zip(arrays, self.x0_leaves, strict=True)
        ]
        return self.layout.unflatten(leaves)

    def flat(self, tree: PyTree, *, name: str, gradient: bool = False) -> np.ndarray:
        if _dropin.is_flat_vector(self.layout):
            # x0 is one 1-D array: take the derivative in any form scipy takes (a list, a scalar
            # for a one-element x0), as scipy would.
            own = self.backend.describe_leaf(tree) is not None
            vector = _dropin.flat_gradient(
                self.backend.to_numpy(tree) if own else tree, self.layout.n
            )
            if vector is not None:
                return vector
        leaves = self.layout.leaves_like_x(tree, name=name)
        conjugate = gradient and self.backend.conjugate_gradients
        arrays = [
            np.conj(array) if conjugate and spec.dtype.kind == "c" else array
            for spec, array in zip(
                self.layout.leaves, map(self.backend.to_numpy, leaves), strict=True
            )
        ]
        return self.layout.ravel(arrays)  # complex where a complex step reached `jac`


# ---------------------------------------------------------------------------------------------
# The evaluations handed to scipy.


def _objective(
    backend: Backend,
    info: MethodInfo,
    fun: Callable,
    jac: Any,
    layout: Layout,
    args: tuple,
    trees: _Trees,
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
        if jac not in _FINITE_DIFFERENCES:
            raise ValueError(
                f"`jac` {jac!r} is not a finite-difference scheme; expected one of "
                f"{', '.join(map(repr, _FINITE_DIFFERENCES))}, True, a callable, or None."
            )
        value = backend.value(fun, layout, args, complex_step=jac == "cs")
        return recorder.value(value), jac
    if callable(jac):

        def user_jac(x: np.ndarray) -> np.ndarray:
            return trees.flat(jac(trees.tree(x), *args), name="jac", gradient=True)

        return recorder.value(backend.value(fun, layout, args)), recorder.gradient(user_jac)
    raise TypeError(
        f"`jac` must be None, True, a callable, or one of {', '.join(_FINITE_DIFFERENCES)}; "
        f"got {type(jac).__name__}."
    )


def _hessians(
    backend: Backend,
    info: MethodInfo,
    fun: Callable,
    hess: Any,
    hessp: Any,
    layout: Layout,
    args: tuple,
    trees: _Trees,
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
        isinstance(hess, str) and hess in _FINITE_DIFFERENCES
    ):
        return hess, hessp
    if callable(hess):
        user_hess = hess

        def flat_hess(x: np.ndarray) -> Any:
            matrix = user_hess(trees.tree(x), *args)
            if isinstance(matrix, LinearOperator) or scipy.sparse.issparse(matrix):
                return matrix  # scipy takes both as they are
            matrix = np.asarray(matrix, dtype=np.float64)
            if matrix.shape != (layout.n, layout.n):
                raise ValueError(
                    f"`hess` returned shape {matrix.shape}; expected ({layout.n}, {layout.n}), "
                    "the Hessian over the flat vector of `x0` (leaves in optree order)."
                )
            return matrix

        return flat_hess, hessp
    raise TypeError(
        "`hess` must be None, a callable, a `HessianUpdateStrategy`, or one of "
        f"{', '.join(_FINITE_DIFFERENCES)}; got {type(hess).__name__}."
    )


def _user_gradient_hessians(
    backend: Backend, info: MethodInfo, fun: Callable, layout: Layout, args: tuple
) -> tuple[Any, Any]:
    """scipy's `(hess, hessp)` for a second-order method with `jac=True`: `fun` returns
    `(value, gradient)`, so autodiff of `fun` itself would differentiate a pair. The second
    derivatives come from forward-mode differentiation of the user's own gradient where the
    backend offers it (exact), else from scipy's finite differences of that gradient."""
    forward = getattr(backend, "user_gradient_derivative", None)
    if forward is not None:
        if info.hessian == "dense":
            return forward(fun, layout, args, dense=True), None
        return None, forward(fun, layout, args, dense=False)
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


def _wants_intermediate_result(callback: Callable) -> bool:
    try:
        parameters = inspect.signature(callback).parameters
    except (TypeError, ValueError):
        return False
    return set(parameters) == {"intermediate_result"}


def _is_gradient(grad: Any, x: np.ndarray) -> bool:
    return isinstance(grad, np.ndarray) and grad.shape == np.shape(x)


def _callback(
    user: Callable | None,
    info: MethodInfo,
    trees: _Trees,
    history: History,
    recorder: Recorder,
) -> Callable:
    """The callback handed to scipy: records history and progress, then calls the user's with
    pytrees in place of flat vectors."""
    new_style = user is not None and _wants_intermediate_result(user)

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


def minimize(
    backend: Backend,
    fun: Callable,
    x0: PyTree,
    *,
    args: Any = (),
    method: Any = None,
    jac: Any = None,
    hess: Any = None,
    hessp: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    progress: Any = False,
    blas_threads: Any = "auto",
    sparse: Any = "auto",
) -> sopt.OptimizeResult:
    """scipy.optimize.minimize over pytrees for any backend (see `pytree_minimize.minimize`).

    The options are keyword-only, so a new entry point or port passes what it has by name."""
    check_inputs(fun, callback, options)
    _threads.check_blas_threads(blas_threads)
    policy = SparsePolicy(sparse, backend)
    if solver_of(method) == "ipopt":
        from . import _ipopt_driver

        return _ipopt_driver.minimize(
            backend, fun, x0, args=args, method=method, jac=jac, hess=hess, hessp=hessp,
            bounds=bounds, constraints=constraints, tol=tol, callback=callback, options=options,
            progress=progress, policy=policy,
        )  # fmt: skip
    if not isinstance(args, tuple):
        args = (args,)
    # An `x0` that scipy reads as a 1-D array (a number, a list of numbers, an integer array) is
    # that array, cast as scipy casts it: `fun` receives it and `res.x` is one (drop-in rule).
    array = _dropin.scipy_array(x0)
    if array is not None:
        x0 = array
    if _is_scipy_problem(backend, x0, bounds, constraints):
        policy.refuse_forced()  # scipy takes this problem as it is: no sparsity detection
        return _minimize_as_scipy(
            backend,
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
        )
    backend.check_args(x0, args)
    backend.prepare(x0)
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    x0_leaves, _ = flatten(x0)
    x0_flat = layout.ravel([backend.to_numpy(leaf) for leaf in x0_leaves])
    # A non-finite x0 is not checked: scipy starts from it (and its methods report what follows).

    constraint_list = _constraints.as_list(constraints)
    info = normalize_method(
        method, has_bounds=bounds is not None, has_constraints=bool(constraint_list)
    )
    if bounds is not None:
        backend.prepare(bounds)
    scipy_bounds = _scipy_bounds(bounds, layout, x0, backend)
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

    trees = _Trees(layout, x0_leaves, backend)
    recorder = Recorder(keep_two=info.reports_earlier_iterate)
    threads = _threads.threads_for(
        info.vector_only and not callable(method), hess=hess, blas_threads=blas_threads
    )
    with backend.precision(layout), _threads.limit_blas(threads):
        scipy_fun, scipy_jac = _objective(backend, info, fun, jac, layout, args, trees, recorder)
        if jac is True and hess is None and hessp is None and info.hessian:
            scipy_hess, scipy_hessp = _user_gradient_hessians(backend, info, fun, layout, args)
        else:
            scipy_hess, scipy_hessp = _hessians(
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
            bar=make_progress(progress),
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


def _is_scipy_problem(backend: Backend, x0: Any, bounds: Any, constraints: Any) -> bool:
    """True where the problem is one scipy takes as it is: a backend without autodiff (NumPy),
    a 1-D real float array `x0` (the flat vector itself) and bounds and constraints in scipy's
    own forms. Then scipy gets the user's callables unchanged, so it does exactly what it does
    for them (lists and sparse matrices as derivatives, complex steps, pickling for `workers`,
    custom methods, its own errors)."""
    if backend.autodiff or not isinstance(x0, np.ndarray) or x0.ndim != 1:
        return False
    if x0.dtype.kind != "f" or isinstance(bounds, Bounds):
        return False
    try:
        constraint_list = _constraints.as_list(constraints)
    except TypeError:
        return True  # the parser's error, in `_minimize_as_scipy`
    return not any(isinstance(c, _constraints.LinearConstraint) for c in constraint_list)


def _minimize_as_scipy(
    backend: Backend,
    fun: Callable,
    x0: np.ndarray,
    *,
    args: tuple,
    method: Any,
    jac: Any,
    hess: Any,
    hessp: Any,
    bounds: Any,
    constraints: Any,
    tol: Any,
    callback: Any,
    options: Any,
    progress: Any,
) -> sopt.OptimizeResult:
    """`scipy.optimize.minimize` itself on a problem it takes as it is (see `_is_scipy_problem`),
    with this library's `history` and progress bar added through picklable wrappers."""
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    # The one constraint parser reads them first: where scipy would fail on a malformed
    # constraint, the error names the constraint and the fix.
    for index, constraint in enumerate(_constraints.as_list(constraints)):
        _constraints.parse(constraint, index)
    has_constraints = bool(constraints) if not isinstance(constraints, dict) else True
    info = normalize_method(method, has_bounds=bounds is not None, has_constraints=has_constraints)
    recorder = Recorder()
    history = History(
        gradient=info.gradient,
        bar=make_progress(progress),
        owns_bar=not hasattr(progress, "update"),
    )
    objective = _dropin.RecordedObjective(fun, recorder, returns_grad=jac is True)
    if callable(method):
        scipy_callback = callback  # a custom method gets scipy's own arguments
    else:
        trees = _Trees(layout, [x0], backend)
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
        flat = _scipy_bounds(bounds, layout, x0, backend)
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
    trees: _Trees,
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
