"""`minimize(..., method='ipopt')`: the problem over pytrees handed to IPOPT over the flat vector.

This module knows what IPOPT is given and what comes back: the objective and its gradient in
every form `jac` takes, bounds and constraints in every form the library reads (stacked into
IPOPT's `cl <= g(x) <= cu`, equalities where `lb == ub`), the constraint Jacobian as triplets
(sparse where detected, dense otherwise), the Lagrangian's exact Hessian where the backend gives
every piece of it (else IPOPT's limited-memory approximation), the per-iteration callback and
history, and the result with multipliers as pytrees in the library's sign convention. cyipopt
itself is `_ipopt`'s.
"""

from __future__ import annotations

import functools
import itertools
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize as sopt
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

from .._constraints import derivatives as _constraints
from .._constraints.parse import Parsed
from .._core.active_bounds import active_bounds
from .._core.backend import Backend
from .._core.bounds import minimize_bounds
from .._core.callbacks import wants_intermediate_result
from .._core.methods import normalize_method
from .._core.progress import History, make_progress
from .._core.recorder import Recorder
from .._core.sparse import (
    AssembledLagrangian,
    LagrangianHessian,
    SparsePolicy,
    Sparsity,
    StackedJacobian,
    dense_pattern,
)
from .._core.tree import Layout
from .._core.trees import Trees, lay_out
from . import ipopt as _ipopt
from .driver import MinimizeCall, hessians, objective

__all__ = ["minimize"]

Piece = tuple[Sparsity, Callable[..., np.ndarray]]


def minimize(backend: Backend, call: MinimizeCall, policy: SparsePolicy) -> sopt.OptimizeResult:
    """`minimize` with method 'ipopt' for any backend (see `pytree_minimize.minimize`)."""
    fun, x0, args, method, jac, hess, hessp = call[:7]
    bounds, constraints, tol, callback, options, progress = call[7:]
    _ipopt.load_cyipopt()  # before any work: the error names the extra to install
    _, layout, x0_flat, trees = lay_out(backend, x0)
    parsed = [_constraints.parse(c, i) for i, c in enumerate(_constraints.as_list(constraints))]
    info = normalize_method(method, has_bounds=bounds is not None, has_constraints=bool(parsed))
    if hessp is not None:
        warnings.warn(
            "Method ipopt does not use Hessian-vector products (`hessp`); it takes the "
            "Lagrangian's Hessian (from autodiff, or `hess`) or approximates it.",
            RuntimeWarning,
            stacklevel=3,
        )
    if bounds is not None:
        backend.prepare(bounds)
    box = minimize_bounds(bounds, layout, backend)
    lb = np.full(layout.n, -np.inf) if box is None else np.asarray(box.lb, dtype=np.float64)
    ub = np.full(layout.n, np.inf) if box is None else np.asarray(box.ub, dtype=np.float64)

    recorder = Recorder()
    history = History(
        gradient=True, bar=make_progress(progress), owns_bar=not hasattr(progress, "update")
    )
    with backend.precision(layout):
        value, gradient = _objective_and_gradient(
            backend, info, fun, jac, layout, args, trees, recorder
        )
        prepared = [
            _constraints.prepare(
                c,
                derivatives=True,
                hessians=False,
                backend=backend,
                layout=layout,
                x0=x0,
                x0_flat=x0_flat,
                trees=trees,
                policy=policy,
            )
            for c in parsed
        ]
        jacobian = StackedJacobian([_jacobian_block(p, layout.n) for p in prepared])
        rows = _row_slices(prepared)
        setting = _Setting(backend, policy, layout, args, trees, info)
        constraint_pieces = list(zip(parsed, prepared, rows, strict=True))
        lagrangian = _lagrangian_hessian(setting, fun, jac, hess, constraint_pieces, options)
        problem = _ipopt.FlatProblem(
            objective=value,
            gradient=gradient,
            constraints=_stacked_values(prepared),
            jacobian=jacobian.values,
            jacobian_rows=jacobian.rows,
            jacobian_cols=jacobian.cols,
            lb=lb,
            ub=ub,
            cl=np.concatenate([p.lb for p in prepared]) if prepared else np.zeros(0),
            cu=np.concatenate([p.ub for p in prepared]) if prepared else np.zeros(0),
            hessian=None if lagrangian is None else lagrangian.values,
            hessian_rows=None if lagrangian is None else lagrangian.rows,
            hessian_cols=None if lagrangian is None else lagrangian.cols,
        )
        ipopt_options = _ipopt.ipopt_options(options, tol, exact_hessian=lagrangian is not None)
        intermediate = _intermediate(callback, trees, history, recorder)
        try:
            history.start(time.perf_counter())
            result = _ipopt.solve(problem, x0_flat, ipopt_options, intermediate=intermediate)
        finally:
            history.close()
        x_flat = result.x
        grad = np.asarray(gradient(x_flat), dtype=np.float64)
    return _result(
        result, x_flat, grad, lb, ub, box is not None, trees, history, prepared, rows, policy
    )


# ---------------------------------------------------------------------------------------------
# The objective, the constraints and their derivatives as flat callables.


def _objective_and_gradient(
    backend: Backend,
    info: Any,
    fun: Callable,
    jac: Any,
    layout: Layout,
    args: tuple,
    trees: Trees,
    recorder: Recorder,
) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray]]:
    """`(value, gradient)` for every form of `jac` (read as `minimize` reads it); the
    gradient of a finite-difference scheme, or of a backend without autodiff, by forward
    differences."""
    scipy_fun, scipy_jac = objective(backend, info, fun, jac, layout, args, trees, recorder)
    if scipy_jac is True:
        both = _constraints.LastEvaluation(scipy_fun)
        return (lambda x: float(both(x)[0])), (lambda x: np.asarray(both(x)[1], np.float64))
    value = _constraints.LastEvaluation(scipy_fun)
    if callable(scipy_jac):
        return (lambda x: float(value(x))), scipy_jac

    def differences(x: np.ndarray) -> np.ndarray:
        return sopt.approx_fprime(x, lambda y: float(scipy_fun(y)))

    return (lambda x: float(value(x))), differences


def _row_slices(prepared: list[_constraints.Prepared]) -> list[slice]:
    offsets = np.cumsum([0] + [p.m for p in prepared])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets)]


def _stacked_values(prepared: list[_constraints.Prepared]) -> Callable[[np.ndarray], np.ndarray]:
    def values(x: np.ndarray) -> np.ndarray:
        if not prepared:
            return np.zeros(0)
        return np.concatenate([np.asarray(p.values(x), dtype=np.float64) for p in prepared])

    return values


def _jacobian_block(p: _constraints.Prepared, n: int) -> Piece:
    """One constraint's Jacobian as `(pattern, values)`: the detected pattern, the nonzeros of
    a linear constraint's matrix, or every entry of a dense Jacobian."""
    if p.sparse_jacobian is not None:
        return p.sparse_jacobian.sparsity, p.sparse_jacobian.values
    if p.matrix is not None:
        coo = scipy.sparse.coo_matrix(p.matrix)
        coo.eliminate_zeros()  # a constant matrix: its zeros are exact
        data = np.asarray(coo.data, dtype=np.float64)
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        return Sparsity((p.m, n), data.size, 0, "constant", rows, cols), lambda x: data
    if callable(p.jacobian):
        jacobian = p.jacobian

        def dense(x: np.ndarray) -> np.ndarray:
            return np.asarray(jacobian(x), dtype=np.float64).ravel()

        return dense_pattern((p.m, n)), dense
    values = p.values  # no autodiff (the NumPy port), or a difference scheme

    def differences(x: np.ndarray) -> np.ndarray:
        return np.atleast_2d(sopt.approx_fprime(x, values)).ravel()

    return dense_pattern((p.m, n)), differences


def _lower(pattern: Sparsity, matrix: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """The entries of a dense (or scipy sparse) matrix function at a dense pattern."""
    rows, cols = pattern.rows, pattern.cols

    def values(*point: Any) -> np.ndarray:
        out = matrix(*point)
        if scipy.sparse.issparse(out):
            out = out.toarray()
        if isinstance(out, LinearOperator) or not hasattr(out, "shape"):
            raise TypeError(
                "`hess` must return the Hessian as a matrix (dense or sparse) for method "
                f"'ipopt'; got {type(out).__name__}."
            )
        return np.asarray(out, dtype=np.float64)[rows, cols]

    return values


class _Setting(NamedTuple):
    """What the Lagrangian's pieces are made with."""

    backend: Backend
    policy: SparsePolicy
    layout: Layout
    args: tuple
    trees: Trees
    info: Any


#: Variables up to which a dense exact Hessian is handed to IPOPT (its lower triangle's
#: indices and values take about 12 n^2 bytes); beyond, without a sparse one, IPOPT
#: approximates the Hessian (limited-memory).
DENSE_HESSIAN_MAX = 10_000


def _lagrangian_hessian(
    setting: _Setting,
    fun: Callable,
    jac: Any,
    hess: Any,
    constraints: list[tuple[Parsed, _constraints.Prepared, slice]],
    options: dict | None,
) -> LagrangianHessian | AssembledLagrangian | None:
    """The Lagrangian's exact Hessian, where every piece of it is known: each nonlinear
    constraint's Hessian of `v . c(x)` (from autodiff, or its `hess`) and the objective's (from
    autodiff, or the user's `hess`); None otherwise, or where `options` ask for IPOPT's
    approximation. Each piece is sparse where `sparse=` makes it so, else dense."""
    if not _ipopt.uses_exact_hessian(dict(options or {})):
        return None
    backend, policy, layout, args = setting.backend, setting.policy, setting.layout, setting.args
    nonlinear = [(c, p, where) for c, p, where in constraints if p.matrix is None]
    if (
        hess is None
        and jac in (None, False)
        and backend.autodiff
        and all(c.hess is None and c.fun is not None for c, _, _ in nonlinear)
    ):
        # Every piece from autodiff: one detection of the whole Lagrangian.
        pieces_of = [(c.fun, c.args, p.out_layout) for c, p, _ in nonlinear if c.fun is not None]
        union = policy.lagrangian_hessian(fun, args, pieces_of, layout)  # type: ignore[arg-type]
        if union is not None:
            return AssembledLagrangian(union, [where for *_, where in nonlinear])
    n = layout.n
    full = functools.cache(lambda: dense_pattern((n, n), lower=True))
    dense_fits = n <= DENSE_HESSIAN_MAX
    pieces = []
    for c, p, where in constraints:
        if p.matrix is not None:
            continue  # linear: no curvature
        matrix = None
        if c.hess is None and c.fun is not None and p.out_layout is not None:
            name = f"constraints[{c.index}].hess"
            matrix = policy.weighted_hessian(name, c.fun, layout, c.args, p.out_layout)
            if matrix is None:
                weighted = backend.weighted_hessian(c.fun, layout, c.args, p.out_layout)
                if weighted is None or not dense_fits:
                    return None
                pieces.append((full(), _lower(full(), weighted), where))
                continue
        if matrix is not None:
            pieces.append((matrix.sparsity, matrix.values, where))
        elif _is_user_hessian(c.hess) and dense_fits:
            user = _constraints.user_hess(c.hess, p, c.index, setting.trees)
            pieces.append((full(), _lower(full(), user), where))  # the user's `hess(x, v)`
        else:
            return None  # a Hessian update strategy or differences
    objective: Piece
    if hess is None and jac in (None, False) and backend.autodiff:
        matrix = policy.hessian("hess", fun, layout, args)
        if matrix is not None:
            objective = (matrix.sparsity, matrix.values)
        elif dense_fits:
            objective = (full(), _lower(full(), backend.hessian(fun, layout, args)))
        else:
            return None
    elif _is_user_hessian(hess) and dense_fits:
        user_hess, _ = hessians(backend, setting.info, fun, hess, None, layout, args, setting.trees)
        objective = (full(), _lower(full(), user_hess))
    else:
        return None  # a Hessian update strategy, differences, or `jac=True` without `hess`
    lagrangian = LagrangianHessian(objective, pieces, n)
    if any(name.endswith("hess") for name in policy.records):
        # The assembled pattern, both triangles, as a detected one is reported.
        off = lagrangian.rows != lagrangian.cols
        rows = np.concatenate([lagrangian.rows, lagrangian.cols[off]])
        cols = np.concatenate([lagrangian.cols, lagrangian.rows[off]])
        colors = objective[0].colors + sum(piece[0].colors for piece in pieces)
        policy.records["lagrangian_hess"] = Sparsity(
            (n, n), rows.size, colors, "assembled", rows, cols
        )
    return lagrangian


def _is_user_hessian(hess: Any) -> bool:
    return callable(hess) and not isinstance(hess, sopt.HessianUpdateStrategy)


# ---------------------------------------------------------------------------------------------
# Callbacks and the result.


def _intermediate(
    user: Callable | None, trees: Trees, history: History, recorder: Recorder
) -> Callable[[np.ndarray | None, dict], bool]:
    """IPOPT's per-iteration callback: history, then the user's `callback` with scipy's
    conventions (`callback(intermediate_result)` or `callback(xk)`); `StopIteration` from it
    stops IPOPT (status 5, user requested stop)."""
    new_style = user is not None and wants_intermediate_result(user)

    def intermediate(x: np.ndarray | None, state: dict) -> bool:
        if x is None:  # no iterate of the original problem (IPOPT's restoration phase)
            return True
        _, grad = recorder.iterate(x, state["fun"], None)
        history.record(float(state["fun"]), grad)
        if user is None:
            return True
        try:
            if new_style:
                user(intermediate_result=sopt.OptimizeResult(x=trees.tree(x), **state))
            else:
                user(trees.tree(x))
        except StopIteration:
            return False
        return True

    return intermediate


def _result(
    flat: sopt.OptimizeResult,
    x_flat: np.ndarray,
    grad: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    bounded: bool,
    trees: Trees,
    history: History,
    prepared: list[_constraints.Prepared],
    rows: list[slice],
    policy: SparsePolicy,
) -> sopt.OptimizeResult:
    """The result over pytrees. IPOPT's Lagrangian is `f + mult_g . g - z_L . (x - lb) +
    z_U . (x - ub)`; the library's convention is `grad f = sum_i J_i^T lambda_i + bound terms`,
    so `lambda = -mult_g` and the bounds' multipliers are `z_L - z_U` (>= 0 at a lower bound,
    <= 0 at an upper one), as for every method."""
    result = sopt.OptimizeResult(
        x=trees.tree(x_flat),
        fun=flat.fun,
        jac=trees.tree(grad, gradient=True),
        success=flat.success,
        status=flat.status,
        message=flat.message,
        nit=flat.nit,
        nfev=flat.nfev,
        njev=flat.njev,
        nhev=flat.nhev,
    )
    bound_multipliers = flat.mult_x_L - flat.mult_x_U
    result.bound_multipliers = trees.tree(bound_multipliers, gradient=True)
    if prepared:
        result.constr = [p.tree(flat.constr[where]) for p, where in zip(prepared, rows)]
        result.constraint_multipliers = [
            p.tree(-flat.mult_g[where]) for p, where in zip(prepared, rows)
        ]
    if bounded:
        result.active_bounds = active_bounds(
            x_flat, lb, ub, trees.layout, bound_multipliers=-bound_multipliers
        )
    result.history = history.as_dict(flat.nit, fun=flat.fun, grad=grad)
    policy.attach(result)
    return result
