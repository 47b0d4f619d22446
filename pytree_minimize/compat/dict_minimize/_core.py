"""What the four dict_minimize modules share: its argument rules, its eager evaluation of `fun`,
its one-argument callback, and the one call into this library's driver.

dict_minimize packs an `OrderedDict` of arrays into one float64 vector, keys in order, and runs
scipy with `jac=True` on it. The driver's layout of an `OrderedDict` is that same vector, so scipy
takes the same steps; each framework's backend contributes only its leaf conversions and, where
it would compile `fun`, an evaluation that calls `fun` eagerly instead (`eager_value_and_grad`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize as sopt

from ..._core.tree import Bounds, Layout, is_floating
from ..._minimize.api import MINIMIZE

if TYPE_CHECKING:
    from ..._core.backend import Backend

FlatValueAndGrad = Callable[[np.ndarray], "tuple[float, np.ndarray]"]


class SolutionDict(OrderedDict):
    """The solution as dict_minimize returns it: an `OrderedDict` with `x0_dict`'s keys, each value
    a tensor of the framework with its initial value's dtype and shape.

    Attributes:
        optimize_result: This library's full result (`fun`, `nit`, `success`, `message`,
            `history`, and `x`, the same dictionary).
    """

    optimize_result: sopt.OptimizeResult


def minimize(
    backend_type: type[Backend],
    fun: Callable,
    x0_dict: Any,
    *,
    lb_dict: Any,
    ub_dict: Any,
    args: Any,
    method: Any,
    tol: Any,
    callback: Callable | None,
    options: Any,
) -> SolutionDict:
    """dict_minimize's `minimize` with `backend_type`'s backend, which must evaluate `fun`
    eagerly."""
    check_x0(x0_dict, backend_type)
    bounds = _bounds(x0_dict, lb_dict, ub_dict, backend_type)
    result = MINIMIZE.call(
        backend_type,
        fun,
        x0_dict,
        args=_extra_arguments(args),
        method=method,
        jac=True,
        bounds=bounds,
        tol=tol,
        callback=_with_x_alone(callback),
        options=options,
    )
    solution = SolutionDict(result.x)
    solution.optimize_result = result
    return solution


# ---------------------------------------------------------------------------------------------
# dict_minimize's argument rules, with errors that name the argument.


def check_x0(x0_dict: Any, backend: type[Backend]) -> None:
    """An `OrderedDict` of floating-point arrays holding at least one element."""
    if not isinstance(x0_dict, OrderedDict):
        raise TypeError(
            f"`x0_dict` must be a `collections.OrderedDict` of arrays (dict_minimize's "
            f"convention: its order is the order of the flat vector); got "
            f"{type(x0_dict).__name__}. Wrap it: `OrderedDict(x0_dict)`."
        )
    if not x0_dict:
        raise ValueError("`x0_dict` is empty; give at least one array to optimise.")
    size = 0
    for key, value in x0_dict.items():
        described = backend.describe_leaf(value)
        if described is None:
            raise TypeError(
                f"`x0_dict[{key!r}]` is a {type(value).__name__}, not a {backend.name} array; "
                "every value of `x0_dict` must be a floating-point array. Pass fixed values "
                "through `args`."
            )
        shape, dtype = described
        if not is_floating(np.dtype(dtype)):
            raise TypeError(
                f"`x0_dict[{key!r}]` has dtype {dtype}; every value of `x0_dict` must be a real "
                "floating-point array. Cast it (for example to float64), or pass it through "
                "`args` if it is not a variable."
            )
        size += int(np.prod(shape, dtype=np.int64))
    if size == 0:
        raise ValueError(
            "`x0_dict` holds no elements (every array in it is empty); give at least one "
            "element to optimise."
        )


def _bounds(
    x0_dict: OrderedDict, lb_dict: Any, ub_dict: Any, backend: type[Backend]
) -> Bounds | None:
    if lb_dict is None and ub_dict is None:
        return None
    if lb_dict is None or ub_dict is None:
        given, missing = ("lb_dict", "ub_dict") if ub_dict is None else ("ub_dict", "lb_dict")
        raise ValueError(
            f"`{given}` was given but `{missing}` is None; dict_minimize takes both bounds or "
            "neither. Pass both, with -inf or inf where a side is unbounded."
        )
    for name, bound in (("lb_dict", lb_dict), ("ub_dict", ub_dict)):
        _check_bound(name, bound, x0_dict, backend)
    return Bounds(lb_dict, ub_dict)


def _check_bound(name: str, bound: Any, x0_dict: OrderedDict, backend: type[Backend]) -> None:
    """`bound` has `x0_dict`'s keys, in its order, each an array of its value's shape."""
    if not isinstance(bound, OrderedDict):
        raise TypeError(
            f"`{name}` must be a `collections.OrderedDict` like `x0_dict`; got "
            f"{type(bound).__name__}."
        )
    if list(bound) != list(x0_dict):
        raise ValueError(
            f"`{name}` must have the keys of `x0_dict` in the same order, {list(x0_dict)}; got "
            f"{list(bound)}."
        )
    for key, value in bound.items():
        described = backend.describe_leaf(value)
        expected = backend.describe_leaf(x0_dict[key])
        if described is None or expected is None or described[0] != expected[0]:
            got = "a " + type(value).__name__ if described is None else f"shape {described[0]}"
            raise ValueError(
                f"`{name}[{key!r}]` must be an array of the shape of `x0_dict[{key!r}]`, "
                f"{expected[0] if expected else '?'}; got {got}."
            )


def _extra_arguments(args: Any) -> tuple:
    """dict_minimize calls `fun(x, *args)`: any sequence is unpacked, a list included."""
    if isinstance(args, tuple):
        return args
    if not isinstance(args, Sequence) or isinstance(args, str | bytes):
        raise TypeError(
            f"`args` must be a sequence of the extra arguments of `fun` (called as "
            f"`fun(x, *args)`); got {type(args).__name__}. Pass, for example, `args=(value,)`."
        )
    return tuple(args)


def _with_x_alone(callback: Callable | None) -> Callable | None:
    """dict_minimize's callback, `callback(x)` for every method (trust-constr's state dropped,
    its return value ignored), in the driver's `callback(intermediate_result)` form."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(
            f"`callback` must be callable as `callback(x)` or None; got {type(callback).__name__}."
        )

    def intermediate(intermediate_result: sopt.OptimizeResult) -> None:
        callback(intermediate_result.x)

    return intermediate


# ---------------------------------------------------------------------------------------------
# The eager evaluation.


def eager_value_and_grad(
    backend: Backend, fun: Callable, layout: Layout, args: tuple, x0_leaves: Sequence[Any]
) -> FlatValueAndGrad:
    """scipy's `(value, gradient)` at a flat `x` from one eager call of `fun`, which receives the
    dictionary of `backend.restore_leaf` tensors (concrete, never traced) and returns its value
    and its gradient dictionary in any form `backend.to_numpy` reads."""
    restore, to_numpy = backend.restore_leaf, backend.to_numpy

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        arrays = layout.unravel(np.asarray(x, dtype=np.float64))
        tree = layout.unflatten(
            [restore(array, like) for array, like in zip(arrays, x0_leaves, strict=True)]
        )
        out = fun(tree, *args)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise ValueError(
                "`fun` must return `(value, gradient)`, the value and an `OrderedDict` of "
                f"gradients like `x`, as dict_minimize requires; it returned a "
                f"{type(out).__name__}."
            )
        value, gradient = out
        leaves = layout.leaves_like_x(gradient, name="fun")
        return _real_scalar(to_numpy(value)), layout.ravel([to_numpy(g) for g in leaves])

    return value_and_grad


def _real_scalar(value: np.ndarray) -> float:
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(
            f"`fun` must return a scalar value first; it returned an array of shape "
            f"{array.shape}. Reduce it, for example with a sum."
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`fun` must return a real number first; it returned {array.dtype} values.")
    return float(array.reshape(()))
