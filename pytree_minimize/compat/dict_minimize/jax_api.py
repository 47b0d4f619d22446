"""dict_minimize's `jax_api.minimize` on this library's driver: a change of import, from
`dict_minimize.jax_api` to `pytree_minimize.compat.dict_minimize.jax_api`.

`fun` runs eagerly (never inside `jax.jit`) on concrete JAX arrays of `x0_dict`'s dtypes, so it
may inspect its inputs; it returns its value and gradients, typically from
`jax.value_and_grad(objective)`, which JAX compiles or not as the user decides.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._backends.jax import JaxBackend, restore_leaf
from ..._core.surface import Framework, build
from . import _core
from .api import MINIMIZE

__all__ = ["minimize"]


class _Backend(JaxBackend):
    """The JAX backend with `fun` called eagerly on concrete arrays, as dict_minimize calls it
    (the backend's own evaluations compile it with `jax.jit`)."""

    autodiff = False  # the user's `fun` differentiates itself

    #: The backend would take second derivatives as the forward-mode derivative of the user's
    #: gradient, which traces `fun`; without it the driver differences the gradient instead.
    def user_gradient_derivative(
        self, fun: Callable, layout: _core.Layout, args: tuple, *, dense: bool
    ) -> None:
        return None

    def __init__(self, template: OrderedDict, args: tuple = (), *, entry: str = "minimize"):
        super().__init__(template, args, entry=entry)
        self._x0_leaves = list(template.values())

    @staticmethod
    def restore_leaf(array: np.ndarray, like: Any) -> jax.Array:
        if isinstance(like, jax.Array):
            return restore_leaf(array, like)  # on x0's device
        return jnp.asarray(array)  # dict_minimize hands `fun` JAX arrays whatever `x0_dict` holds

    def value_and_user_grad(
        self, fun: Callable, layout: _core.Layout, args: tuple
    ) -> _core.FlatValueAndGrad:
        return _core.eager_value_and_grad(self, fun, layout, args, self._x0_leaves)


JAX = Framework(
    module=__name__,
    backend=_Backend,
    words={
        "api": "jax_api",
        "arrays": "JAX arrays",
        "evaluated": "run eagerly",
        "x_leaves": "JAX arrays of its dtypes",
        "value": "a scalar",
        "x0_leaves": "arrays",
        "example": """>>> import jax
    >>> import jax.numpy as jnp
    >>> def objective(x):
    ...     return jnp.sum((x["w"] - 3.0) ** 2) + (x["b"] + 1.0) ** 2
    >>> x0 = OrderedDict(w=jnp.zeros(2), b=jnp.array(0.0))
    >>> x = minimize(jax.value_and_grad(objective), x0, method="L-BFGS-B")
    >>> [round(float(v), 3) for v in x["w"]], round(float(x["b"]), 3)
    ([3.0, 3.0], -1.0)""",
    },
)

minimize = build(MINIMIZE, JAX)
