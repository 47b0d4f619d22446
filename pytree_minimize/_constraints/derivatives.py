"""Constraint derivatives: each parsed constraint prepared over the flat vector.

This module alone knows how a constraint becomes flat callables: its output layout and checks,
its bounds as flat vectors, its values, Jacobian and (where the method uses them) the Hessian of
`v . c(x)` as Hessian-vector products, from the backend (compiled once) or from the user's `jac`
and `hess`, which take pytrees and are translated to and from the flat vector here; the matrix
of an affine `LinearConstraint`. Reading the user's forms is `_constraint_parse`'s job; emitting
scipy's forms and reading back multipliers is `_constraint_emit`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import optree
import scipy.optimize as sopt
import scipy.sparse as sparse
from scipy.sparse.linalg import LinearOperator

from .._core import dropin as _dropin
from .._core.tree import (
    NAMESPACE,
    HostLeaves,
    broadcast_prefix,
    check_bound_order,
    describe_output,
    element_at,
    is_floating,
)
from .linear import LinearConstraint
from .parse import Parsed, as_list, parse

if TYPE_CHECKING:
    from .._core.backend import Backend
    from .._core.sparse import SparseMatrix, SparsePolicy
    from .._core.tree import Layout, PyTree

__all__ = ["LinearConstraint", "Prepared", "as_list", "output_bounds", "parse", "prepare"]


# ---------------------------------------------------------------------------------------------
# Prepared constraints: one per entry of the user's list.


@dataclass
class Prepared:
    """One user constraint over the flat vector: `lb <= values(x) <= ub`, with `m` values."""

    index: int
    #: Layout of the output (None for scipy's `LinearConstraint`, whose output is flat).
    out_layout: Layout | None
    lb: np.ndarray
    ub: np.ndarray
    values: Callable[[np.ndarray], np.ndarray]
    #: A flat (m, n) Jacobian callable, a finite-difference scheme, or None (derivative-free).
    jacobian: Any = None
    #: trust-constr's `hess(x, v)`: a callable, a `HessianUpdateStrategy`, or a scheme.
    hess: Any = None
    #: The (m, n) matrix of a linear constraint, whose `values(x)` is `matrix @ x`.
    matrix: np.ndarray | None = None
    keep_feasible: Any = False
    #: Where this constraint's rows sit in SLSQP's `multipliers` (filled in when emitted).
    rows: dict[str, Any] = field(default_factory=dict)
    #: The sparse Jacobian behind `jacobian` and the sparse Hessian of `v . c(x)` behind `hess`,
    #: where `sparse=` made them (`_sparse`).
    sparse_jacobian: SparseMatrix | None = None
    sparse_hess: SparseMatrix | None = None

    @property
    def m(self) -> int:
        return self.lb.size

    def tree(self, flat: np.ndarray) -> PyTree:
        """A flat vector of `m` values shaped like the constraint's output (float64 NumPy)."""
        flat = np.asarray(flat, dtype=np.float64)
        if self.out_layout is None:
            return flat
        leaves = [
            flat[spec.offset : spec.offset + spec.size].reshape(spec.shape)
            for spec in self.out_layout.leaves
        ]
        return self.out_layout.unflatten(leaves)


class LastEvaluation:
    """The last evaluation of a flat callable: SLSQP asks for the equality and the inequality
    part of one constraint at the same `x`, IPOPT for the objective and its gradient
    separately, and neither should pay for two evaluations."""

    __slots__ = ("_evaluate", "_value", "_x")

    def __init__(self, evaluate: Callable[[np.ndarray], Any]) -> None:
        self._evaluate = evaluate
        self._x: np.ndarray | None = None
        self._value: Any = None

    def __call__(self, x: np.ndarray) -> Any:
        if self._x is None or not np.array_equal(self._x, x):
            value = self._evaluate(x)
            self._x = np.array(x, dtype=np.float64, copy=True)
            self._value = value
        return self._value


def _name(index: int) -> str:
    return f"constraints[{index}]"


def _check_output(out: Any, index: int, backend: Backend) -> None:
    """Reject a constraint output that is not a (non-empty) array or pytree of real arrays."""
    backend.prepare(out)
    accessors, leaves, _ = optree.tree_flatten_with_accessor(out, namespace=NAMESPACE)
    name = _name(index)
    if not leaves:
        raise ValueError(
            f"`{name}`'s function returned {out!r}, which holds no values; a constraint function "
            "must return an array or a pytree of arrays."
        )
    total = 0
    for accessor, leaf in zip(accessors, leaves, strict=True):
        path = accessor.codify(f"{name}(x)")
        described = backend.describe_leaf(leaf)
        if described is None:
            raise TypeError(
                f"`{name}`'s function returned a {type(leaf).__name__} at `{path}`; a constraint "
                "function must return an array or a pytree of floating-point arrays."
            )
        shape, dtype = described
        kind = np.dtype(dtype).kind
        if kind == "c":
            raise TypeError(
                f"`{name}`'s function returned complex values at `{path}`; constraint values "
                "must be real. Constrain, for example, `jnp.real(z)` and `jnp.imag(z)`, or "
                "`jnp.abs(z) ** 2`."
            )
        if not is_floating(np.dtype(dtype)):
            raise TypeError(
                f"`{name}`'s function returned dtype {np.dtype(dtype)} at `{path}`; constraint "
                "values must be floating-point (a differentiable function of `x`)."
            )
        total += int(np.prod(shape, dtype=np.int64))
    if total == 0:
        raise ValueError(
            f"`{name}`'s function returned arrays with no elements; a constraint function must "
            "return at least one value."
        )


def _output_layout(
    fun: Callable, args: tuple, index: int, backend: Backend, layout: Layout, x0: PyTree
) -> Layout:
    def checked(x: Any, *args: Any) -> Any:
        out = fun(x, *args)
        _check_output(out, index, backend)
        return out

    return backend.output_layout(checked, layout, args, x0)


# Bounds of a constraint, as flat vectors of its `m` values (broadcast by `_tree`).


def output_bounds(
    parsed: Parsed, out_layout: Layout | None, m: int, backend: HostLeaves
) -> tuple[np.ndarray, np.ndarray]:
    """A constraint's `lb` and `ub` as flat vectors over its `m` output values (`out_layout`
    None: a flat output, as scipy's `LinearConstraint`'s)."""
    return _bounds(parsed.lb, parsed.ub, out_layout, m, parsed.index, backend)


def _bounds(
    lb: Any, ub: Any, out_layout: Layout | None, m: int, index: int, backend: HostLeaves
) -> tuple[np.ndarray, np.ndarray]:
    name = _name(index)
    lower = broadcast_prefix(lb, out_layout, name=f"{name}.lb", fill=-np.inf, size=m, host=backend)
    upper = broadcast_prefix(ub, out_layout, name=f"{name}.ub", fill=np.inf, size=m, host=backend)
    check_bound_order(lower, upper, out_layout, name=name, root=f"{name}(x)")
    return lower, upper


# User-supplied derivatives, translated from pytrees to the flat vector.


def _user_jacobian(
    jac: Callable,
    args: tuple,
    out_layout: Layout,
    m: int,
    index: int,
    backend: Backend,
    trees: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    layout: Layout = trees.layout
    name = _name(index)

    def flat_jacobian(x: np.ndarray) -> np.ndarray:
        return _dense_jacobian(jac(trees.tree(x), *args), layout, out_layout, m, name, backend)

    return flat_jacobian


def _dense_jacobian(
    out: Any, layout: Layout, out_layout: Layout, m: int, name: str, backend: Backend
) -> np.ndarray:
    """A user Jacobian as a dense (m, n) matrix over the flat vectors of output and `x`."""
    n = layout.n
    if _dropin.is_flat_vector(layout):
        # x0 is one 1-D array: nested lists are a matrix, as scipy reads them.
        matrix = _dropin.flat_matrix(out, m, n)
        if matrix is not None:
            return matrix
    if sparse.issparse(out):
        out = out.toarray()
    if backend.describe_leaf(out) is not None:
        array = np.asarray(backend.to_numpy(out), dtype=np.float64)
        if array.shape == (m, n):
            return array
        if m == 1 and array.shape == (n,):
            return array.reshape(1, n)
        if out_layout.is_single_array and layout.is_single_array and not layout.has_complex:
            expected_shape = out_layout.leaves[0].shape + layout.leaves[0].shape
            if array.shape == expected_shape:
                return array.reshape(m, n)
        raise ValueError(
            f"`{name}`'s `jac` returned shape {array.shape}; expected ({m}, {n}), the Jacobian "
            "of the raveled output with respect to the flat vector of `x`, or a pytree like "
            "`jax.jacrev(fun)(x)`."
        )
    if layout.has_complex:
        raise TypeError(
            f"`{name}`'s `jac` returned a {type(out).__name__}; with complex leaves in `x0` a "
            f"constraint `jac` must return the dense ({m}, {n}) Jacobian over the flat real "
            "vector (real parts, then imaginary parts, per leaf)."
        )
    try:
        blocks = out_layout.treedef.flatten_up_to(out)
    except ValueError as error:
        raise ValueError(
            f"`{name}`'s `jac` returned a {type(out).__name__} whose structure does not match "
            f"the constraint's output ({describe_output(out_layout, m)}): {error}. Return the "
            f"dense ({m}, {n}) Jacobian, or a pytree like `jax.jacrev(fun)(x)`."
        ) from None
    rows = []
    accessors = out_layout.treedef.accessors()
    for spec, accessor, block in zip(out_layout.leaves, accessors, blocks, strict=True):
        leaves = layout.leaves_like_x(
            block, name=accessor.codify(f"{name}.jac(x)"), leading=spec.shape
        )
        row = [
            np.asarray(backend.to_numpy(leaf), dtype=np.float64).reshape(spec.size, x_spec.size)
            for x_spec, leaf in zip(layout.leaves, leaves, strict=True)
        ]
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def user_hess(
    hess: Callable, prepared: Prepared, index: int, trees: Any
) -> Callable[[np.ndarray, np.ndarray], Any]:
    n = trees.layout.n
    name = _name(index)

    def flat_hess(x: np.ndarray, v: np.ndarray) -> Any:
        matrix = hess(trees.tree(x), prepared.tree(v))
        if isinstance(matrix, LinearOperator) or sparse.issparse(matrix):
            if matrix.shape != (n, n):
                raise ValueError(
                    f"`{name}`'s `hess` returned shape {matrix.shape}; expected ({n}, {n})."
                )
            return matrix
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (n, n):
            raise ValueError(
                f"`{name}`'s `hess` returned shape {matrix.shape}; expected ({n}, {n}), the "
                "Hessian of `v . c(x)` over the flat vector of `x` (a `LinearOperator` also "
                "does)."
            )
        return matrix

    return flat_hess


def _hvp_operator(
    hvp: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], n: int
) -> Callable[[np.ndarray, np.ndarray], LinearOperator]:
    """trust-constr's `hess(x, v)`: the Hessian of `v . c(x)` as Hessian-vector products, so no
    n-by-n matrix is ever built."""

    def hess(x: np.ndarray, v: np.ndarray) -> LinearOperator:
        x = np.array(x, dtype=np.float64, copy=True)
        v = np.array(v, dtype=np.float64, copy=True)

        def matvec(p: np.ndarray) -> np.ndarray:
            return hvp(x, v, np.ravel(p))

        return LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)

    return hess


# Preparing each form.


def prepare(
    parsed: Parsed,
    *,
    derivatives: bool,
    hessians: bool,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    x0_flat: np.ndarray,
    trees: Any,
    policy: SparsePolicy | None = None,
) -> Prepared:
    """One constraint over the flat vector; `policy`: the call's `sparse=` policy where the
    method takes sparse constraint Jacobians and Hessians (None: dense, or products)."""
    if parsed.form == "matrix":
        return _prepare_scipy_linear(parsed.original, parsed.index, layout, backend, policy)
    if parsed.form == "affine":
        return _prepare_linear(parsed.original, parsed.index, backend, layout, x0, x0_flat, policy)
    assert parsed.fun is not None
    return _prepare_function(
        parsed.fun,
        parsed.args,
        parsed.lb,
        parsed.ub,
        parsed.jac,
        parsed.hess,
        parsed.keep_feasible,
        parsed.index,
        derivatives=derivatives,
        hessians=hessians,
        backend=backend,
        layout=layout,
        x0=x0,
        trees=trees,
        policy=policy,
    )


def _prepare_function(
    fun: Callable,
    args: tuple,
    lb: Any,
    ub: Any,
    jac: Any,
    hess: Any,
    keep_feasible: Any,
    index: int,
    *,
    derivatives: bool,
    hessians: bool,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    trees: Any,
    policy: SparsePolicy | None = None,
) -> Prepared:
    out_layout = _output_layout(fun, args, index, backend, layout, x0)
    m = out_layout.n
    lower, upper = _bounds(lb, ub, out_layout, m, index, backend)
    keep = broadcast_prefix(
        keep_feasible,
        out_layout,
        name=f"{_name(index)}.keep_feasible",
        fill=0.0,
        host=backend,
        size=m,
        dtype=bool,
    )
    values, jacobian, hvp = backend.constraint(fun, layout, args, out_layout)
    prepared = Prepared(index, out_layout, lower, upper, LastEvaluation(values), keep_feasible=keep)
    # A backend without autodiff (NumPy) leaves missing derivatives to scipy's defaults.
    autodiff = backend.autodiff
    if derivatives:
        if callable(jac):
            prepared.jacobian = LastEvaluation(
                _user_jacobian(jac, args, out_layout, m, index, backend, trees)
            )
        elif isinstance(jac, str):
            prepared.jacobian = jac
        elif autodiff:
            name = f"{_name(index)}.jac"
            matrix = (
                None if policy is None else policy.jacobian(name, fun, layout, args, out_layout)
            )
            prepared.jacobian = LastEvaluation(jacobian if matrix is None else matrix.at)
            prepared.sparse_jacobian = matrix
    if hessians:
        if hess is None and policy is not None and autodiff:
            # Products need no matrix: 'auto' keeps them, `sparse=True` asks for the matrix.
            prepared.sparse_hess = policy.weighted_hessian(
                f"{_name(index)}.hess", fun, layout, args, out_layout, matrix_free=True
            )
        if prepared.sparse_hess is not None:
            prepared.hess = prepared.sparse_hess.at
        elif hess is None:
            prepared.hess = _hvp_operator(hvp, layout.n) if autodiff else None
        elif callable(hess) and not isinstance(hess, sopt.HessianUpdateStrategy):
            prepared.hess = user_hess(hess, prepared, index, trees)
        else:
            prepared.hess = hess
    return prepared


def _prepare_linear(
    constraint: LinearConstraint,
    index: int,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    x0_flat: np.ndarray,
    policy: SparsePolicy | None = None,
) -> Prepared:
    name = _name(index)
    if not callable(constraint.fun):
        raise TypeError(
            f"`{name}.fun` must be callable as `fun(x, *args)`; got "
            f"{type(constraint.fun).__name__}."
        )
    args = constraint.args if isinstance(constraint.args, tuple) else (constraint.args,)
    out_layout = _output_layout(constraint.fun, args, index, backend, layout, x0)
    m = out_layout.n
    lower, upper = _bounds(constraint.lb, constraint.ub, out_layout, m, index, backend)
    keep = broadcast_prefix(
        constraint.keep_feasible,
        out_layout,
        name=f"{name}.keep_feasible",
        fill=0.0,
        host=backend,
        size=m,
        dtype=bool,
    )
    values, jacobian, _ = backend.constraint(constraint.fun, layout, args, out_layout)
    detected = None
    if policy is not None:
        detected = policy.jacobian(f"{name}.jac", constraint.fun, layout, args, out_layout)
    matrix: Any
    if detected is not None:
        matrix = detected.at(x0_flat)  # constant: its pattern and values at x0
    elif backend.autodiff:
        matrix = np.array(jacobian(x0_flat), dtype=np.float64).reshape(m, layout.n)
    else:
        matrix = _columns(values, x0_flat, m)
    offset = values(x0_flat) - matrix @ x0_flat
    _check_affine(values, matrix, offset, x0_flat, out_layout, name)
    return Prepared(
        index,
        out_layout,
        lower - offset,
        upper - offset,
        LastEvaluation(lambda x: matrix @ x),
        jacobian=lambda x: matrix,
        matrix=matrix,
        keep_feasible=keep,
    )


def _columns(values: Callable, x0_flat: np.ndarray, m: int) -> np.ndarray:
    """The matrix of an affine function by unit steps (exact up to rounding), for a backend
    without autodiff."""
    base = np.asarray(values(x0_flat), dtype=np.float64)
    matrix = np.empty((m, x0_flat.size))
    for j in range(x0_flat.size):
        x = x0_flat.copy()
        x[j] += 1.0
        matrix[:, j] = np.asarray(values(x), dtype=np.float64) - base
    return matrix


def _check_affine(
    values: Callable,
    matrix: np.ndarray,
    offset: np.ndarray,
    x0_flat: np.ndarray,
    out_layout: Layout,
    name: str,
) -> None:
    """`values` must be `matrix @ x + offset` at a second, pseudo-random point."""
    rng = np.random.default_rng(20240611)
    step = rng.standard_normal(x0_flat.size) * (1.0 + np.abs(x0_flat))
    x1 = x0_flat + step
    actual = values(x1)
    predicted = matrix @ x1 + offset
    eps = max(np.finfo(spec.dtype).eps for spec in out_layout.leaves)
    scale = abs(matrix) @ np.abs(x1) + np.abs(offset) + 1.0
    error = np.abs(actual - predicted)
    if not np.all(error <= 1e3 * eps * scale):
        worst = int(np.argmax(error / scale))
        raise ValueError(
            f"`{name}` is a `LinearConstraint`, but its function is not linear in `x`: at a "
            f"second point it differs from its linearisation at `x0` by {error[worst]:.3g} at "
            f"{element_at(out_layout, worst, root=f'{name}(x)')}. State it as a "
            "`NonlinearConstraint`."
        )


def _prepare_scipy_linear(
    constraint: sopt.LinearConstraint,
    index: int,
    layout: Layout,
    backend: Backend,
    policy: SparsePolicy | None = None,
) -> Prepared:
    name = _name(index)
    if not layout.is_single_array or layout.has_complex:
        raise TypeError(
            f"`{name}` is scipy's `LinearConstraint`, whose matrix acts on a single real array; "
            "for a pytree `x0` state it as `pytree_minimize.LinearConstraint(fun, lb, ub)` with "
            "`fun` a linear function of the pytree `x`."
        )
    matrix = constraint.A
    if sparse.issparse(matrix) and policy is not None:
        matrix = sparse.csr_matrix(matrix, dtype=np.float64)  # a method that takes it
    elif sparse.issparse(matrix):
        matrix = matrix.toarray()
    else:
        matrix = np.atleast_2d(np.asarray(matrix))
    matrix = matrix.astype(np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != layout.n:
        raise ValueError(
            f"`{name}.A` has shape {matrix.shape}; expected (m, {layout.n}), one column per "
            "element of `x0` (raveled in C order)."
        )
    m = matrix.shape[0]
    lower, upper = _bounds(constraint.lb, constraint.ub, None, m, index, backend)
    keep = broadcast_prefix(
        constraint.keep_feasible,
        None,
        name=f"{name}.keep_feasible",
        fill=0.0,
        host=backend,
        size=m,
        dtype=bool,
    )
    return Prepared(
        index,
        None,
        lower,
        upper,
        LastEvaluation(lambda x: matrix @ x),
        jacobian=lambda x: matrix,
        matrix=matrix,
        keep_feasible=keep,
    )
