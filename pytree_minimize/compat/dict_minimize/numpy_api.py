"""dict_minimize's `numpy_api.minimize` on this library's driver: a change of import, from
`dict_minimize.numpy_api` to `pytree_minimize.compat.dict_minimize.numpy_api`.

Imports neither JAX, PyTorch nor TensorFlow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._backends.numpy import NumpyBackend
from . import _core

__all__ = ["minimize"]


class _Backend(NumpyBackend):
    """The NumPy backend with dict_minimize's leaves (NumPy arrays, 0-d arrays for scalars) and
    its messages about what `fun` returns."""

    def __init__(self, template: OrderedDict, args: tuple = (), *, entry: str = "minimize"):
        super().__init__(template, args, entry=entry)
        self._x0_leaves = list(template.values())

    @staticmethod
    def restore_leaf(array: np.ndarray, like: Any) -> np.ndarray:
        return np.asarray(array)

    def value_and_user_grad(
        self, fun: Callable, layout: _core.Layout, args: tuple
    ) -> _core.FlatValueAndGrad:
        return _core.eager_value_and_grad(self, fun, layout, args, self._x0_leaves)


def minimize(
    fun: Callable,
    x0_dict: OrderedDict,
    *,
    lb_dict: OrderedDict | None = None,
    ub_dict: OrderedDict | None = None,
    args: Sequence = (),
    method: str | Callable | None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
) -> OrderedDict:
    """Minimise `fun` over a dictionary of NumPy arrays, as `dict_minimize.numpy_api.minimize`.

    Args:
        fun: `fun(x, *args) -> (value, gradient)`: `x` is an `OrderedDict` like `x0_dict` (NumPy
            arrays of its dtypes), `value` a real scalar and `gradient` an `OrderedDict` with the
            keys and shapes of `x`.
        x0_dict: Initial guess, an `OrderedDict` of floating-point arrays. Never mutated.
        lb_dict: Lower bounds, an `OrderedDict` like `x0_dict`, or None. Given with `ub_dict`.
        ub_dict: Upper bounds, likewise.
        args: Extra arguments, passed as `fun(x, *args)`.
        method: A `scipy.optimize.minimize` method; None chooses as scipy does (L-BFGS-B with
            bounds, BFGS otherwise).
        tol: Tolerance, passed to scipy.
        callback: `callback(x)`, called after each iteration of every method with the current
            `OrderedDict`; its return value is ignored.
        options: Method options, passed to scipy.

    Returns:
        The solution, an `OrderedDict` with `x0_dict`'s keys, shapes and dtypes; its
        `optimize_result` attribute holds the full result (`fun`, `nit`, `message`, `history`).

    Examples:
        >>> from collections import OrderedDict
        >>> import numpy as np
        >>> from pytree_minimize.compat.dict_minimize.numpy_api import minimize
        >>> def fun(x):
        ...     value = np.sum((x["w"] - 3.0) ** 2) + (x["b"] + 1.0) ** 2
        ...     return value, OrderedDict(w=2 * (x["w"] - 3.0), b=2 * (x["b"] + 1.0))
        >>> x = minimize(fun, OrderedDict(w=np.zeros(2), b=np.array(0.0)), method="L-BFGS-B")
        >>> np.round(x["w"], 4).tolist(), np.round(x["b"], 4).tolist()
        ([3.0, 3.0], -1.0)
    """
    return _core.minimize(
        _Backend,
        fun,
        x0_dict,
        lb_dict=lb_dict,
        ub_dict=ub_dict,
        args=args,
        method=method,
        tol=tol,
        callback=callback,
        options=options,
    )
