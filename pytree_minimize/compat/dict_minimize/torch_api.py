"""dict_minimize's `torch_api.minimize` on this library's driver: a change of import, from
`dict_minimize.torch_api` to `pytree_minimize.compat.dict_minimize.torch_api`.

`fun` receives, and the callback and the solution hold, leaf tensors that require grad, of the
dtypes (and on the devices) of `x0_dict`'s tensors: `torch.autograd.grad(value, list(x.values()))`
and `value.backward()` with `x[key].grad` both work inside `fun`. Imports PyTorch, not JAX.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..._backends.torch import TorchBackend, restore_leaf
from ..._core.surface import Framework, build
from . import _core
from .api import MINIMIZE

__all__ = ["minimize"]


class _Backend(TorchBackend):
    """The PyTorch backend with `fun` called on leaf tensors that require grad, as dict_minimize
    calls it (the backend's own evaluation hands it views of one flat tensor)."""

    autodiff = False  # the user's `fun` differentiates itself

    def __init__(self, template: OrderedDict, args: tuple = (), *, entry: str = "minimize"):
        super().__init__(template, args, entry=entry)
        self._x0_leaves = list(template.values())

    @staticmethod
    def restore_leaf(array: np.ndarray, like: Any) -> Any:
        leaf = restore_leaf(array, like)
        if isinstance(leaf, torch.Tensor) and leaf.is_floating_point():
            return leaf.requires_grad_(True)
        return leaf

    def value_and_user_grad(
        self, fun: Callable, layout: _core.Layout, args: tuple
    ) -> _core.FlatValueAndGrad:
        return _core.eager_value_and_grad(self, fun, layout, args, self._x0_leaves)


TORCH = Framework(
    module=__name__,
    backend=_Backend,
    words={
        "api": "torch_api",
        "arrays": "tensors",
        "evaluated": "called as it is",
        "x_leaves": "leaf tensors that require grad",
        "value": "a 0-d tensor",
        "x0_leaves": "tensors",
        "example": """>>> import torch
    >>> def fun(x):
    ...     value = ((x["w"] - 3.0) ** 2).sum() + (x["b"] + 1.0) ** 2
    ...     grads = torch.autograd.grad(value, list(x.values()))
    ...     return value, OrderedDict(zip(x, grads))
    >>> x0 = OrderedDict(w=torch.zeros(2, dtype=torch.float64), b=torch.tensor(0.0))
    >>> x = minimize(fun, x0, method="L-BFGS-B")
    >>> x["w"].detach().round(decimals=4).tolist(), round(x["b"].item(), 4)
    ([3.0, 3.0], -1.0)""",
    },
)

minimize = build(MINIMIZE, TORCH)
