"""Vector-valued functions of a pytree, as `least_squares`, `curve_fit` and `root` hand them to
scipy: the layout of the output, the flat residual vector, the dense Jacobian over the flat
vector of `x0`, and the matrix-free `LinearOperator` built from Jacobian-vector products.

It also holds what those three entry points share about `x0` (validation and the flat vector),
about options broadcast like `x0` (`x_scale`), and about binding `kwargs` to a function once so
that the compile caches keyed on the function keep hitting.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import optree
from scipy.sparse.linalg import LinearOperator

from .._core.backend import Backend
from .._core.tree import (
    NAMESPACE,
    Bounds,
    Layout,
    PyTree,
    broadcast_prefix,
    build_layout,
    flat_bounds,
    flatten,
)
from .._minimize.driver import _check_finite, _Trees


class Start(NamedTuple):
    """`x0` checked and laid out: its layout, its flat float64 vector and the converter between
    flat vectors and pytrees of x0's leaf types."""

    layout: Layout
    x0_flat: np.ndarray
    trees: _Trees


def start(backend: Backend, x0: PyTree, args: tuple, *, entry: str) -> Start:
    """Validate `x0` (leaf dtypes, finiteness) and build its flat layout; `entry` names the
    entry point in the backend's messages."""
    try:
        backend.check_args(x0, args)
    except TypeError as error:
        raise TypeError(str(error).replace("`minimize`", f"`{entry}`")) from None
    backend.prepare(x0)
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    x0_leaves, _ = flatten(x0)
    x0_flat = layout.ravel([backend.to_numpy(leaf) for leaf in x0_leaves])
    _check_finite(layout, x0_flat)
    return Start(layout, x0_flat, _Trees(layout, x0_leaves, backend))


def check_callable(value: Any, name: str, usage: str) -> None:
    if not callable(value):
        raise TypeError(f"`{name}` must be callable as `{usage}`; got {type(value).__name__}.")


def as_args(args: Any) -> tuple:
    return args if isinstance(args, tuple) else (args,)


# ---------------------------------------------------------------------------------------------
# Functions adapted once per user function: the compile caches key on the function object, so
# an adapter made afresh at every call would recompile at every call.

_ADAPTERS: weakref.WeakKeyDictionary[Any, dict[str, Callable]] = weakref.WeakKeyDictionary()


def adapted(fun: Callable, kind: str, make: Callable[[Callable], Callable]) -> Callable:
    """`make(fun)`, the same object for the same `fun` and `kind` while `fun` lives."""
    try:
        table = _ADAPTERS.setdefault(fun, {})
    except TypeError:  # not weakly referenceable: adapt afresh (and compile afresh)
        return make(fun)
    if kind not in table:
        table[kind] = make(fun)
    return table[kind]


def _kwargs_last(fun: Callable) -> Callable:
    def call(x: Any, *args: Any) -> Any:
        return fun(x, *args[:-1], **args[-1])

    return call


def bind_kwargs(fun: Callable, args: tuple, kwargs: Any) -> tuple[Callable, tuple]:
    """`(fun', args')` with `fun'(x, *args') == fun(x, *args, **kwargs)`; `kwargs` travel as the
    last argument, so that their array values are traced like `args`."""
    if kwargs is None or (isinstance(kwargs, dict) and not kwargs):
        return fun, args
    if not isinstance(kwargs, dict):
        raise TypeError(
            f"`kwargs` must be a dict of keyword arguments for `fun`; got {type(kwargs).__name__}."
        )
    return adapted(fun, "kwargs_last", _kwargs_last), (*args, kwargs)


# ---------------------------------------------------------------------------------------------
# Options laid out like `x0`.


def flat_x_scale(x_scale: Any, start_: Start, x0: PyTree, backend: Backend) -> Any:
    """scipy's `x_scale`: None and `'jac'` as they are, anything else broadcast like `x0`."""
    if x_scale is None or isinstance(x_scale, str):
        if isinstance(x_scale, str) and x_scale != "jac":
            raise ValueError(
                f"`x_scale` must be 'jac', None, a positive scalar or a pytree like `x0` (or a "
                f"prefix of it); got {x_scale!r}."
            )
        return x_scale
    flat = broadcast_prefix(
        x_scale, start_.layout, name="x_scale", fill=1.0, host=backend, like="x0"
    )
    if not (np.isfinite(flat).all() and (flat > 0).all()):
        raise ValueError(
            "`x_scale` must hold finite positive numbers, one per parameter (or 'jac'); "
            f"got values from {flat.min()} to {flat.max()}."
        )
    return flat


def flat_bounds_pair(bounds: Any, start_: Start, x0: PyTree, backend: Backend) -> tuple:
    """`(lb, ub)` flat vectors from `pytree_minimize.Bounds`, scipy's `Bounds`, or scipy's
    `(lb, ub)` pair whose sides are scalars or pytrees like `x0` (or prefixes of it)."""
    lb_ub: tuple[Any, Any]
    if isinstance(bounds, Bounds):
        lb_ub = (bounds.lb, bounds.ub)
    elif hasattr(bounds, "lb") and hasattr(bounds, "ub") and hasattr(bounds, "keep_feasible"):
        lb_ub = (bounds.lb, bounds.ub)  # scipy.optimize.Bounds
    elif isinstance(bounds, tuple | list) and len(bounds) == 2:
        lb_ub = (bounds[0], bounds[1])
    else:
        raise TypeError(
            "`bounds` must be `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or a pair "
            f"`(lb, ub)` of scalars or pytrees like `x0`; got {type(bounds).__name__}."
        )
    if start_.layout.is_single_array and not start_.layout.has_complex:
        # scipy's flat forms: a vector of x0's size for a single array, whatever its shape.
        n = start_.layout.n
        lb_ub = tuple(
            np.reshape(side, start_.layout.leaves[0].shape)
            if np.ndim(side) == 1 and np.size(side) == n and n > 1
            else side
            for side in lb_ub
        )  # type: ignore[assignment]
    # scipy's default (-inf, inf) bounds nothing, complex leaves included.
    lb_side = None if _is_infinite(lb_ub[0], -1) else lb_ub[0]
    ub_side = None if _is_infinite(lb_ub[1], 1) else lb_ub[1]
    return flat_bounds(Bounds(lb_side, ub_side), start_.layout, x0, to_numpy=backend.to_numpy)


def _is_infinite(side: Any, sign: int) -> bool:
    return isinstance(side, int | float | np.floating) and side == sign * np.inf


# ---------------------------------------------------------------------------------------------
# The residual function.


class Residuals:
    """The flat evaluations of `fun(x, *args)`, a pytree of floating-point arrays.

    Args:
        backend: The framework backend.
        fun: The user's function (after `bind_kwargs`).
        layout: x0's layout.
        args: Extra arguments for `fun`.
        x0: The initial pytree, at which the output layout is taken.
    """

    def __init__(self, backend: Backend, fun: Callable, layout: Layout, args: tuple, x0: PyTree):
        self.backend, self.fun, self.layout, self.args = backend, fun, layout, args
        self.out_layout = residual_layout(backend, fun, layout, args, x0)
        self.m, self.n = self.out_layout.n, layout.n
        self.values = backend.residual_values(fun, layout, args, self.out_layout)

    def jacobian(self) -> Callable[[np.ndarray], np.ndarray]:
        """`x -> J(x)`, the dense m-by-n Jacobian over the flat vectors."""
        return self.backend.residual_jacobian(self.fun, self.layout, self.args, self.out_layout)

    def operator(self) -> Callable[[np.ndarray], LinearOperator]:
        """`x -> J(x)` as a `LinearOperator` from Jacobian-vector and vector-Jacobian products:
        the m-by-n matrix is never formed."""
        jvp = self.backend.residual_jvp(self.fun, self.layout, self.args, self.out_layout)
        vjp = self.backend.residual_vjp(self.fun, self.layout, self.args, self.out_layout)
        shape = (self.m, self.n)

        def at(x: np.ndarray) -> LinearOperator:
            x = np.array(x, dtype=np.float64)  # scipy may update its array in place

            def matvec(v: np.ndarray) -> np.ndarray:
                return jvp(x, np.asarray(v, dtype=np.float64).reshape(-1))

            def rmatvec(u: np.ndarray) -> np.ndarray:
                return vjp(x, np.asarray(u, dtype=np.float64).reshape(-1))

            return LinearOperator(shape, matvec=matvec, rmatvec=rmatvec, dtype=np.float64)

        return at

    def tree(self, flat: np.ndarray) -> PyTree:
        """A flat residual vector as a pytree of NumPy arrays shaped like `fun`'s output."""
        return self.out_layout.unflatten(self.out_layout.unravel(np.asarray(flat)))

    def ravel(self, tree: PyTree) -> np.ndarray:
        """A pytree shaped like `fun`'s output (host leaves) as a flat float64 vector."""
        leaves = optree.tree_leaves(tree, namespace=NAMESPACE)
        return self.out_layout.ravel([self.backend.to_numpy(leaf) for leaf in leaves])


def residual_layout(
    backend: Backend, fun: Callable, layout: Layout, args: tuple, x0: PyTree
) -> Layout:
    try:
        return backend.residual_layout(fun, layout, args, x0)
    except TypeError as error:
        if "fun(x)" not in str(error):
            raise  # the function's own error
        raise TypeError(
            f"`fun` must return floating-point residuals (an array or a pytree of arrays): "
            f"{str(error).split('; every leaf')[0]}. Cast the output, for example with "
            "`.astype(float)`."
        ) from None
    except ValueError as error:
        if "fun(x)" not in str(error):
            raise
        raise ValueError("`fun` returned no residuals (0 elements); return at least one.") from None


def check_flat_matrix(matrix: Any, shape: tuple[int, int], *, name: str) -> Any:
    """A user's Jacobian (dense, sparse or LinearOperator) over the flat vectors."""
    operator = hasattr(matrix, "matvec") or hasattr(matrix, "tocsr")
    if operator and not isinstance(matrix, np.ndarray | np.generic):
        if tuple(matrix.shape) != shape:
            raise ValueError(
                f"`{name}` returned shape {tuple(matrix.shape)}; expected {shape}, "
                "(residuals, parameters) over the flat vectors in optree order."
            )
        return matrix
    array = np.asarray(matrix, dtype=np.float64)
    if array.shape != shape and array.size == shape[0] * shape[1]:
        array = array.reshape(shape)
    if array.shape != shape:
        raise ValueError(
            f"`{name}` returned shape {array.shape}; expected {shape}, the Jacobian over the "
            "flat vectors (residuals by parameters, leaves in optree order)."
        )
    return array
