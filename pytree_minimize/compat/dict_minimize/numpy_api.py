"""dict_minimize's `numpy_api.minimize` on this library's driver: a change of import, from
`dict_minimize.numpy_api` to `pytree_minimize.compat.dict_minimize.numpy_api`.

Imports neither JAX, PyTorch nor TensorFlow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from ..._backends.numpy import NumpyBackend
from ..._core.surface import Framework, build
from . import _core
from .api import MINIMIZE

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


NUMPY = Framework(
    module=__name__,
    backend=_Backend,
    words={
        "api": "numpy_api",
        "arrays": "NumPy arrays",
        "evaluated": "called as it is",
        "x_leaves": "NumPy arrays of its dtypes",
        "value": "a real scalar",
        "x0_leaves": "arrays",
        "example": """>>> import numpy as np
    >>> def fun(x):
    ...     value = np.sum((x["w"] - 3.0) ** 2) + (x["b"] + 1.0) ** 2
    ...     return value, OrderedDict(w=2 * (x["w"] - 3.0), b=2 * (x["b"] + 1.0))
    >>> x = minimize(fun, OrderedDict(w=np.zeros(2), b=np.array(0.0)), method="L-BFGS-B")
    >>> np.round(x["w"], 4).tolist(), np.round(x["b"], 4).tolist()
    ([3.0, 3.0], -1.0)""",
    },
)

minimize = build(MINIMIZE, NUMPY)
