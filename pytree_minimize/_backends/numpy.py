"""The NumPy backend: no autodiff. Gradients come from the user (`jac=True` or a callable) or from
scipy's finite differences; constraint Jacobians from finite differences of the constraint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from .._core.backend import Backend
from .._core.errors import NotScalarError
from .._core.hints import returned_pair
from .._core.scipy_compat import approx_derivative
from .._core.tree import NAMESPACE, Layout, PyTree, build_layout, describe_host_leaf


def describe_leaf(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    described = describe_host_leaf(leaf)
    if described is None and all(hasattr(leaf, a) for a in ("__array__", "shape", "dtype")):
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    return described


def to_numpy(leaf: Any) -> np.ndarray:
    return np.asarray(leaf)


def restore_leaf(array: np.ndarray, like: Any) -> Any:
    if isinstance(like, np.generic):
        return array.dtype.type(array)
    if isinstance(like, bool | int | float | complex):
        return type(like)(array.item())
    return array


def unravel(layout: Layout, flat: np.ndarray) -> PyTree:
    """The pytree of `flat`. A complex `flat` (complex-step differences) promotes every real leaf
    to complex so that the imaginary step survives."""
    return layout.unflatten(layout.unravel(flat))


def _scalar(value: Any, *, complex_ok: bool = False) -> Any:
    if isinstance(value, tuple | list):
        raise TypeError(
            f"`fun` must return a scalar; it returned a {type(value).__name__}. If it returns "
            "`(value, gradient)`, pass `jac=True`."
        )
    array = np.asarray(value)
    if array.size != 1:
        raise NotScalarError(
            argument="fun", found=f"an array of shape {array.shape}", reduce="np.sum"
        )
    if array.dtype.kind == "c" and not complex_ok:
        raise TypeError(
            "`fun` must return a real scalar; it returned a complex value. Return, for example, "
            "`np.abs(z) ** 2` or `np.real(...)`."
        )
    if array.dtype.kind not in "fciub":
        raise TypeError(f"`fun` must return a number; it returned {array.dtype} values.")
    return array.reshape(()).item()


def _ravel_output(out: PyTree) -> np.ndarray:
    leaves = optree.tree_leaves(out, namespace=NAMESPACE)
    parts = [np.asarray(leaf, dtype=np.float64).ravel() for leaf in leaves]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


class _Value:
    """`fun` at a flat point, as a scalar: an object (not a closure), so that it pickles where
    `fun` and `args` do, for scipy's worker processes."""

    def __init__(self, fun: Callable, layout: Layout, args: tuple, complex_ok: bool) -> None:
        self.fun, self.layout, self.args, self.complex_ok = fun, layout, args, complex_ok

    def __call__(self, x: np.ndarray) -> Any:
        return _scalar(self.fun(unravel(self.layout, x), *self.args), complex_ok=self.complex_ok)


class NumpyBackend(Backend):
    """Backend for NumPy leaves without autodiff (see :mod:`pytree_minimize._backend`)."""

    name = "NumPy"
    conjugate_gradients = True
    autodiff = False
    #: NumPy cannot vectorise a function: the batched path needs one written for a batch.
    vectorizes = False

    describe_leaf = staticmethod(describe_leaf)
    to_numpy = staticmethod(to_numpy)
    restore_leaf = staticmethod(restore_leaf)

    #: `(fun, x0_flat, output)` of the evaluation `residual_layout` made, until its first use.
    _first_residuals: tuple[Callable, np.ndarray, PyTree] | None = None

    def value(
        self, fun: Callable, layout: Layout, args: tuple, *, complex_step: bool = False
    ) -> Callable[[np.ndarray], Any]:
        return _Value(fun, layout, args, complex_step)

    def value_and_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        raise TypeError(
            "The NumPy port has no autodiff; pass `jac=True` (fun returns `(value, gradient)`), "
            "a `jac` callable, or a finite-difference scheme such as `jac='2-point'`."
        )

    def value_and_user_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            out = fun(unravel(layout, x), *args)
            value, grad = returned_pair(out, derivative="gradient", source="finite differences")
            return _scalar(value), _ravel_like_x(layout, grad, name="fun")

        return value_and_grad

    def hessian(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        raise TypeError(
            "The NumPy port has no autodiff; pass `hess` (a callable, a "
            "`HessianUpdateStrategy`, or a finite-difference scheme)."
        )

    def hvp(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        raise TypeError("The NumPy port has no autodiff; pass `hessp(x, p, *args)` or `hess`.")

    # Constraints: Jacobians and Hessian-vector products by finite differences.

    def output_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        out = optree.tree_map(np.asarray, fun(x0, *args), namespace=NAMESPACE)
        return build_layout(
            out, describe_leaf=describe_leaf, name="constraint output", allow_complex=False
        )

    def constraint(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> tuple[Callable, Callable, Callable]:
        def values(x: np.ndarray) -> np.ndarray:
            return _ravel_output(fun(unravel(layout, x), *args))

        def jacobian(x: np.ndarray) -> np.ndarray:
            jac = approx_derivative(values, np.asarray(x, dtype=np.float64), method="2-point")
            return np.atleast_2d(jac).reshape(out_layout.n, layout.n)

        def weighted_hvp(x: np.ndarray, v: np.ndarray, p: np.ndarray) -> np.ndarray:
            # Mixed central differences of `v . c` along each axis and `p`: second order and
            # with steps of eps**(1/4), accurate to about 1e-8 (nested first differences are not).
            x = np.asarray(x, dtype=np.float64)
            v = np.asarray(v, dtype=np.float64)
            p = np.asarray(p, dtype=np.float64)
            norm = float(np.linalg.norm(p))
            if norm == 0.0:
                return np.zeros(layout.n)
            direction = p / norm
            step = np.finfo(np.float64).eps ** 0.25
            h = step * np.maximum(1.0, np.abs(x))
            t = step * max(1.0, float(np.linalg.norm(x)))

            def weighted(y: np.ndarray) -> float:
                return float(v @ values(y))

            out = np.empty(layout.n)
            for i in range(layout.n):
                e = np.zeros(layout.n)
                e[i] = h[i]
                up, down = x + t * direction, x - t * direction
                out[i] = (
                    weighted(up + e) - weighted(down + e) - weighted(up - e) + weighted(down - e)
                ) / (4.0 * h[i] * t)
            return out * norm

        return values, jacobian, weighted_hvp

    # Populations (global methods).

    def batched_value(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Values at the S rows of an (S, n) array from one call of a vectorised `fun`: it
        receives the structure of `x` with a leading axis of length S on every leaf and must
        return S values."""

        def evaluate(xs: np.ndarray) -> np.ndarray:
            xs = np.asarray(xs, dtype=np.float64)
            size = xs.shape[0]
            leaves = [
                xs[:, spec.offset : spec.offset + spec.width]
                .astype(spec.dtype)
                .reshape((size, *spec.shape))
                for spec in layout.leaves
            ]
            out = np.asarray(fun(layout.unflatten(leaves), *args), dtype=np.float64)
            if out.shape != (size,):
                raise ValueError(
                    f"`func` is vectorised (`vectorized=True`), so given {size} members (a "
                    f"leading axis of {size} on every leaf) it must return {size} values; it "
                    f"returned shape {out.shape}."
                )
            return out

        return evaluate

    # Residual functions (`least_squares`, `curve_fit`, `root`): values only; Jacobians come
    # from the user or from scipy's finite differences.

    def residual_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        out = optree.tree_map(np.array, fun(x0, *args), namespace=NAMESPACE)  # copies
        # scipy evaluates `x0` first: that call is this one, so that `nfev` counts every call.
        x0_leaves = optree.tree_leaves(x0, namespace=NAMESPACE)
        self._first_residuals = (fun, layout.ravel([np.asarray(a) for a in x0_leaves]), out)
        return build_layout(out, describe_leaf=describe_leaf, name="fun(x)")

    def _first_evaluation(self, fun: Callable, x: np.ndarray) -> PyTree | None:
        """The output of `fun` at `x` where `residual_layout` just evaluated it there (once)."""
        first, self._first_residuals = self._first_residuals, None
        if first is None or first[0] is not fun or not np.array_equal(first[1], x):
            return None
        return first[2]

    def residual_values(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        def values(x: np.ndarray) -> np.ndarray:
            out = self._first_evaluation(fun, x)
            if out is None:
                out = fun(unravel(layout, x), *args)
            stepped = np.iscomplexobj(x)  # a complex-step point: residuals stay complex
            parts = []
            for leaf in map(np.asarray, optree.tree_leaves(out, namespace=NAMESPACE)):
                if np.iscomplexobj(leaf) and not stepped:
                    # A complex residual is two real ones, as in the output's layout.
                    parts += [leaf.real.ravel(), leaf.imag.ravel()]
                else:
                    parts.append(leaf.ravel())
            parts = [np.asarray(part, np.complex128 if stepped else np.float64) for part in parts]
            return np.concatenate(parts) if len(parts) > 1 else parts[0]

        return values

    def residual_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        raise TypeError(_NO_JACOBIAN)

    def residual_jvp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        raise TypeError(_NO_JACOBIAN)

    def residual_vjp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        raise TypeError(_NO_JACOBIAN)


def _ravel_like_x(layout: Layout, tree: PyTree, *, name: str) -> np.ndarray:
    arrays = []
    for spec, leaf in zip(layout.leaves, layout.leaves_like_x(tree, name=name), strict=True):
        array = np.asarray(leaf)
        # The JAX/NumPy convention for a complex leaf: the gradient is d/dRe - i d/dIm.
        arrays.append(np.conj(array) if spec.dtype.kind == "c" else array)
    return layout.ravel(arrays)


_NO_JACOBIAN = (
    "The NumPy port has no autodiff; pass `jac` (a callable returning the Jacobian over the "
    "flat vectors) or a finite-difference scheme such as `jac='2-point'`."
)
