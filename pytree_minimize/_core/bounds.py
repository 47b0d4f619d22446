"""Every form of bounds the entry points take, read into flat `(lb, ub)` vectors over `x0`'s
layout by the one prefix broadcaster (`tree.flat_bounds`), and `x_scale`-like options laid out
like `x0`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optree
import scipy.optimize as sopt

from .backend import Backend
from .tree import (
    NAMESPACE,
    Bounds,
    HostLeaves,
    Layout,
    broadcast_prefix,
    flat_bounds,
    is_array_like,
)


def minimize_bounds(bounds: Any, layout: Layout, backend: HostLeaves) -> sopt.Bounds | None:
    """`minimize`'s `bounds` (None, `pytree_minimize.Bounds`, and for a single real array `x0`
    scipy's `Bounds` or `(min, max)` pairs) as scipy's `Bounds` over the flat vector.

    Raises:
        TypeError, ValueError: a form `minimize` does not take, or bounds that do not fit `x0`.
    """
    if bounds is None:
        return None
    keep_feasible = None
    if isinstance(bounds, Bounds):
        pytree_bounds = bounds
        if _any_true(bounds.keep_feasible):
            keep_feasible = (
                broadcast_prefix(
                    bounds.keep_feasible,
                    layout,
                    name="bounds.keep_feasible",
                    fill=0.0,
                    host=backend,
                    like=layout.root,
                )
                > 0
            )
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
    lb, ub = flat_bounds(pytree_bounds, layout, to_numpy=backend.to_numpy)
    if keep_feasible is None:
        return sopt.Bounds(lb, ub)
    return sopt.Bounds(lb, ub, keep_feasible=keep_feasible)


def bounds_pair(bounds: Any, layout: Layout, backend: Backend) -> tuple[np.ndarray, np.ndarray]:
    """`least_squares`'s and `curve_fit`'s `bounds` as flat `(lb, ub)`: `pytree_minimize.Bounds`,
    scipy's `Bounds`, or scipy's pair `(lb, ub)` whose sides are scalars or pytrees like `x0`
    (or prefixes of it).

    Raises:
        TypeError, ValueError: a form they do not take, or bounds that do not fit `x0`.
    """
    lb_ub: tuple[Any, Any]
    if isinstance(bounds, Bounds | sopt.Bounds):
        lb_ub = (bounds.lb, bounds.ub)
    elif isinstance(bounds, tuple | list) and len(bounds) == 2:
        lb_ub = (bounds[0], bounds[1])
    elif isinstance(bounds, tuple | list):  # scipy's error type for a pair of another length
        raise ValueError(
            f"`bounds` must be a pair `(lb, ub)`; got a {type(bounds).__name__} of {len(bounds)} "
            "entries. Pass `(lb, ub)` (each side a scalar, or a pytree like `x0`) or "
            "`Bounds(lb, ub)`."
        )
    else:
        raise TypeError(
            "`bounds` must be `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or a pair "
            f"`(lb, ub)` of scalars or pytrees like `x0`; got {type(bounds).__name__}."
        )
    if layout.is_single_array and not layout.has_complex:
        # scipy's flat forms: a vector of x0's size for a single array, whatever its shape.
        n = layout.n
        lb_ub = tuple(
            np.reshape(side, layout.leaves[0].shape)
            if np.ndim(side) == 1 and np.size(side) == n and n > 1
            else side
            for side in lb_ub
        )  # type: ignore[assignment]
    # scipy's default (-inf, inf) bounds nothing, complex leaves included.
    lb_side = None if _is_infinite(lb_ub[0], -1) else lb_ub[0]
    ub_side = None if _is_infinite(lb_ub[1], 1) else lb_ub[1]
    return flat_bounds(Bounds(lb_side, ub_side), layout, to_numpy=backend.to_numpy)


def bounds_of(bounds: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """scipy's own `bounds` of `least_squares` (scipy's `Bounds` or a pair `(lb, ub)`) as flat
    `(lb, ub)` like the solution `x`, as scipy read them; None where they bound nothing (or are
    in no form scipy took)."""
    if isinstance(bounds, sopt.Bounds):
        sides = (bounds.lb, bounds.ub)
    elif isinstance(bounds, tuple | list) and len(bounds) == 2:
        sides = (bounds[0], bounds[1])
    else:
        return None
    try:
        lb, ub = (
            np.broadcast_to(np.asarray(side, dtype=np.float64), np.shape(x)) for side in sides
        )
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(lb).any() or np.isfinite(ub).any()):
        return None
    return lb, ub


def _is_infinite(side: Any, sign: int) -> bool:
    return is_array_like(side) and np.ndim(side) == 0 and side is not None and side == sign * np.inf


def _any_true(keep_feasible: Any) -> bool:
    """Whether `keep_feasible` (a bool, an array or a pytree of bools) holds a True."""
    return any(
        bool(np.any(leaf)) for leaf in optree.tree_leaves(keep_feasible, namespace=NAMESPACE)
    )


def flat_x_scale(x_scale: Any, layout: Layout, backend: Backend) -> Any:
    """scipy's `x_scale`: None and `'jac'` as they are, anything else broadcast like `x0`.

    Raises:
        ValueError: another string, or values that are not finite and positive.
    """
    if x_scale is None or isinstance(x_scale, str):
        if isinstance(x_scale, str) and x_scale != "jac":
            raise ValueError(
                f"`x_scale` must be 'jac', None, a positive scalar or a pytree like `x0` (or a "
                f"prefix of it); got {x_scale!r}."
            )
        return x_scale
    try:
        flat = broadcast_prefix(x_scale, layout, name="x_scale", fill=1.0, host=backend, like="x0")
    except TypeError as error:  # complex or non-numeric values: scipy's ValueError
        raise ValueError(str(error)) from None
    if not (np.isfinite(flat).all() and (flat > 0).all()):
        raise ValueError(
            "`x_scale` must hold finite positive numbers, one per parameter (or 'jac'); "
            f"got values from {flat.min()} to {flat.max()}."
        )
    return flat
