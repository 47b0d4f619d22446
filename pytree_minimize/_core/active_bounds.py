"""Which bounds hold at a solution: the `active_bounds` field of a bounded result.

Knows one policy, shared by every method and every backend: a variable is at its lower bound
(-1), free (0) or at its upper bound (+1), read off scipy's flat float64 solution and the flat
bounds that scipy was given, then shaped like `x0`.
"""

from __future__ import annotations

import numpy as np

from .tree import Layout, PyTree

#: A variable within `RTOL * max(1, |bound|)` of a finite bound (or past it) is at that bound.
#: Methods that project onto the box (L-BFGS-B, TNC, SLSQP, Nelder-Mead, COBYLA, COBYQA) land on
#: the bound exactly; Powell stops up to about 1e-9 away from it. A leaf narrower than float64
#: gets its own dtype's machine epsilon where that is larger: scipy's float64 solution may stop
#: short of a bound by less than the leaf's precision, and `res.x` (in the leaf's dtype) then
#: holds the bound itself.
RTOL = 1e-8


def leaf_tolerances(layout: Layout) -> np.ndarray:
    """The relative tolerance per element of the flat vector: `RTOL`, or the machine epsilon of
    a leaf's dtype where that is larger (float32: about 1.2e-7)."""
    parts = []
    for spec in layout.leaves:
        try:
            eps = float(np.finfo(spec.dtype).eps)
        except (TypeError, ValueError):  # a dtype NumPy has no finfo for
            eps = 0.0
        parts.append(np.full(spec.width, max(RTOL, eps)))
    return np.concatenate(parts) if parts else np.zeros(0)


def flat_active_bounds(
    x: np.ndarray, lb: np.ndarray, ub: np.ndarray, *, rtol: float | np.ndarray = RTOL
) -> np.ndarray:
    """-1, 0 or +1 per element of the flat vector `x` (int8).

    Where both bounds are within tolerance (a fixed variable, `lb == ub`, or a box narrower than
    the tolerance) the nearer one wins, and the lower one on a tie, so a fixed variable reports -1.

    Args:
        x: the solution, a flat float64 vector.
        lb: lower bounds, broadcastable to `x`; `-inf` for none.
        ub: upper bounds, broadcastable to `x`; `inf` for none.
        rtol: the relative tolerance of the policy above (a scalar, or one per element).

    Returns:
        An int8 vector shaped like `x`.

    Examples:
        >>> import numpy as np
        >>> flat_active_bounds(np.array([0.0, 0.5, 1.0]), np.zeros(3), np.ones(3))
        array([-1,  0,  1], dtype=int8)
    """
    x = np.asarray(x, dtype=np.float64)
    lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), x.shape)
    ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), x.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        below = x - lb  # inf where lb is -inf
        above = ub - x
        at_lower = np.isfinite(lb) & (below <= rtol * np.maximum(1.0, np.abs(lb)))
        at_upper = np.isfinite(ub) & (above <= rtol * np.maximum(1.0, np.abs(ub)))
    active = np.zeros(x.shape, dtype=np.int8)
    active[at_upper] = 1
    active[at_lower & ~(at_upper & (above < below))] = -1
    return active


def interior_point_active_bounds(
    x: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    multipliers: np.ndarray,
    *,
    rtol: float | np.ndarray = RTOL,
) -> np.ndarray:
    """The active bounds of an interior-point solution (trust-constr), whose iterates stay
    strictly inside the box, a barrier's width (often 1e-3) away from a bound that holds.

    A bound holds where its multiplier pushes outward and exceeds the slack `x - lb` (or
    `ub - x`): at a barrier solution slack times multiplier is about the barrier parameter for
    every bound, so the slack is the smaller of the two exactly where the bound binds. Elements
    within `RTOL` of a bound (fixed variables) count as in `flat_active_bounds`.

    Args:
        x, lb, ub, rtol: as for `flat_active_bounds`.
        multipliers: scipy's `v` for the bounds: negative where the lower bound pushes,
            positive where the upper bound pushes.

    Returns:
        An int8 vector shaped like `x`.
    """
    active = flat_active_bounds(x, lb, ub, rtol=rtol)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        active[(active == 0) & (multipliers < 0) & (x - lb < -multipliers)] = -1
        active[(active == 0) & (multipliers > 0) & (ub - x < multipliers)] = 1
    return active


def active_bounds(
    x: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    layout: Layout,
    *,
    bound_multipliers: np.ndarray | None = None,
) -> PyTree:
    """The active bounds shaped like `x0`: one int8 NumPy array per leaf, of the leaf's shape.

    Args:
        x, lb, ub: the flat solution and the flat bounds scipy was given.
        layout: `x0`'s layout.
        bound_multipliers: an interior-point method's multipliers of the bounds (scipy's
            `v[-1]` for trust-constr), or None for the distance rule alone.

    Complex leaves cannot be bounded, so they report 0 everywhere. The tolerance fits each
    leaf's dtype (`leaf_tolerances`).
    """
    rtol = leaf_tolerances(layout) if layout.n == np.size(x) else RTOL
    if bound_multipliers is not None and np.shape(bound_multipliers) == np.shape(x):
        multipliers = np.asarray(bound_multipliers, float)
        flat = interior_point_active_bounds(x, lb, ub, multipliers, rtol=rtol)
    else:
        flat = flat_active_bounds(x, lb, ub, rtol=rtol)
    leaves = [
        np.zeros(spec.shape, dtype=np.int8)
        if spec.dtype.kind == "c"
        else flat[spec.offset : spec.offset + spec.size].reshape(spec.shape)
        for spec in layout.leaves
    ]
    return layout.unflatten(leaves)
