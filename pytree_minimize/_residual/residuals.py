"""Vector-valued functions of a pytree, as `least_squares`, `curve_fit` and `root` hand them to
scipy: the layout of the output, the flat residual vector, the dense Jacobian over the flat
vector of `x0`, and the matrix-free `LinearOperator` built from Jacobian-vector products.

It also holds how `kwargs` are bound to a function once, so that the compile caches keyed on the
function keep hitting.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import optree
from scipy.sparse.linalg import LinearOperator

from .._core.backend import Backend
from .._core.errors import EmptyTreeError, LeafTypeError
from .._core.tree import NAMESPACE, Layout, PyTree


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
# The residual function.


class Residuals:
    """The flat evaluations of `fun(x, *args)`, a pytree of floating-point or complex arrays (a
    complex residual is two real ones: its real parts, then its imaginary parts).

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

    def differenced_values(self) -> Callable[[np.ndarray], np.ndarray]:
        """The residuals for scipy to difference (`jac='2-point'` and the like): in the outputs'
        own precision where every output leaf is narrower than float64 (float32), so that
        scipy takes a step that precision resolves, as it does for such a function of its own
        (a float64 step on float32 values differences to zero and stops the run at `x0`)."""
        dtypes = [spec.dtype for spec in self.out_layout.leaves]
        if any(dtype.kind != "f" or dtype.itemsize >= 8 for dtype in dtypes):
            return self.values
        narrow = np.result_type(*dtypes)
        values = self.values

        def in_own_precision(x: np.ndarray) -> np.ndarray:
            out = values(x)
            return out if np.iscomplexobj(out) else out.astype(narrow)

        return in_own_precision

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
    """The layout of `fun`'s output, with messages in the words of a residual function."""
    try:
        return backend.residual_layout(fun, layout, args, x0)
    except LeafTypeError as error:
        what = (
            f"is a {error.found}, not an array" if error.not_array else f"has dtype {error.found}"
        )
        raise TypeError(
            "`fun` must return floating-point or complex residuals (an array or a pytree of "
            f"arrays): `{error.path}` {what}. Cast the output, for example with `.astype(float)`."
        ) from None
    except EmptyTreeError:
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
    if array.ndim <= 2 and array.shape != shape and array.size == shape[0] * shape[1]:
        array = array.reshape(shape)  # as scipy reads one row or column given flat
    if array.shape != shape:
        raise ValueError(
            f"`{name}` returned shape {array.shape}; expected {shape}, the Jacobian over the "
            "flat vectors (residuals by parameters, leaves in optree order)."
        )
    return array
