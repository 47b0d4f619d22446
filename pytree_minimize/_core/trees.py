"""The start of every call: the backend made for it, `x0`'s layout and flat vector, and the
converter between flat vectors and pytrees of `x0`'s own leaf types (for user callables and
results)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import dropin
from .backend import Backend, BackendType
from .tree import Layout, PyTree, build_layout, flatten, locate


class Trees:
    """Turns flat vectors into pytrees of `x0`'s leaf types and back (for user callables).

    Args:
        layout: `x0`'s layout.
        x0_leaves: `x0`'s leaves, whose types, dtypes and devices the pytrees take.
        backend: The call's backend.
    """

    def __init__(self, layout: Layout, x0_leaves: list[Any], backend: Backend):
        self.layout = layout
        self.x0_leaves = x0_leaves
        self.backend = backend

    def tree(self, flat: np.ndarray, *, gradient: bool = False) -> PyTree:
        """A flat vector as a pytree like `x0`; a `gradient` follows the backend's convention
        for complex leaves."""
        if np.iscomplexobj(flat):
            # A complex-step point (`hess='cs'` differentiating a user `jac`): the step must reach
            # the user's function, so real leaves become complex instead of losing it to a cast.
            arrays = self.layout.unravel(flat)
            return self.layout.unflatten(
                [
                    a if dropin.is_host_scalar(like) else self.backend.restore_leaf(a, like)
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
        """A pytree like `x0` that a user function `name` returned, as a flat vector."""
        if dropin.is_flat_vector(self.layout):
            # x0 is one 1-D array: take the derivative in any form scipy takes (a list, a scalar
            # for a one-element x0), as scipy would.
            own = self.backend.describe_leaf(tree) is not None
            vector = dropin.flat_gradient(
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


class Start(NamedTuple):
    """A call's backend, `x0` checked and laid out, its flat float64 vector, and the converter
    between flat vectors and pytrees of `x0`'s leaf types."""

    backend: Backend
    layout: Layout
    x0_flat: np.ndarray
    trees: Trees

    @property
    def x0(self) -> PyTree:
        """`x0` as read: the array scipy would make of an array-like `x0` (a number, a list of
        numbers, an integer array; see `dropin.scipy_array`), else the user's pytree."""
        return self.layout.unflatten(self.trees.x0_leaves)


def start(
    backend_type: BackendType,
    x0: PyTree,
    args: tuple,
    *,
    entry: str,
    name: str = "x0",
    allow_complex: bool = True,
    finite: bool = False,
) -> Start:
    """Read `x0` as scipy does where scipy reads it as a 1-D array (`dropin.scipy_array`), make
    the call's backend (`backend_type(x0, args, entry=entry)`), then lay out `x0`.

    Args:
        backend_type: Makes the backend.
        x0: The parameter pytree.
        args: The user's extra arguments (the backend may refuse some, e.g. JAX tracers).
        entry: The entry point's public name, for the backend's messages.
        name, allow_complex, finite: As for :func:`lay_out`.
    """
    x0 = as_scipy_reads(x0)
    backend = backend_type(x0, args, entry=entry)
    return lay_out(backend, x0, name=name, allow_complex=allow_complex, finite=finite)


def lay_out(
    backend: Backend,
    x0: PyTree,
    *,
    name: str = "x0",
    allow_complex: bool = True,
    finite: bool = False,
) -> Start:
    """Check and lay out `x0` (named `name` in messages) for the call's `backend`; an `x0` that
    scipy reads as a 1-D array is that array (`dropin.scipy_array`), so `Start.x0` is it.

    Args:
        backend: The call's backend.
        x0: The parameter pytree.
        name: What `x0` is called in messages.
        allow_complex: Whether complex leaves are accepted.
        finite: Whether to require finite values (the global methods and the residual entry
            points; `minimize` starts from a non-finite `x0`, as scipy does).
    """
    x0 = as_scipy_reads(x0)
    layout = build_layout(
        x0, describe_leaf=backend.describe_leaf, name=name, allow_complex=allow_complex
    )
    x0_leaves, _ = flatten(x0)
    x0_flat = layout.ravel([backend.to_numpy(leaf) for leaf in x0_leaves])
    if finite:
        check_finite(layout, x0_flat)
    return Start(backend, layout, x0_flat, Trees(layout, x0_leaves, backend))


def as_scipy_reads(x0: PyTree) -> PyTree:
    """`x0`, or the 1-D array scipy makes of it where scipy reads it as one (the drop-in rule:
    `fun` receives that array and `res.x` is one)."""
    array = dropin.scipy_array(x0)
    return x0 if array is None else array


def check_finite(layout: Layout, flat: np.ndarray) -> None:
    """Reject a non-finite element of a flat vector over `layout`, naming its leaf and index.

    Raises:
        ValueError: an infinite or NaN element.
    """
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        path, index = locate(layout, int(bad[0]))
        raise ValueError(
            f"`{layout.root}` must be finite; `{path}` holds {flat[bad[0]]} at element {index}. "
            "Start from finite values."
        )
