"""dict_minimize's `tensorflow_api.minimize` on this library's driver: a change of import, from
`dict_minimize.tensorflow_api` to `pytree_minimize.compat.dict_minimize.tensorflow_api`.

`fun` runs eagerly (never inside `tf.function`) on `tf.Tensor`s of `x0_dict`'s dtypes, so it may
inspect its inputs and compute its gradient with a `tf.GradientTape` that watches them. Imports
TensorFlow (whose own import may load JAX where it is installed), not PyTorch.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable

from ..._backends.tensorflow_logs import without_load_time_info
from ..._core.surface import Framework, build
from . import _core
from .api import MINIMIZE

# TensorFlow's load-time INFO lines are dropped as the TensorFlow port drops them.
with (
    without_load_time_info()
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"
    else contextlib.nullcontext()
):
    from ..._backends.tensorflow import TensorFlowBackend

__all__ = ["minimize"]


class _Backend(TensorFlowBackend):
    """The TensorFlow backend with `fun` called eagerly, as dict_minimize calls it (the backend's
    own evaluation traces it into a `tf.function`)."""

    autodiff = False  # the user's `fun` differentiates itself

    def __init__(self, template: OrderedDict, args: tuple = (), *, entry: str = "minimize"):
        super().__init__(template, args, entry=entry)
        self._x0_leaves = list(template.values())

    def value_and_user_grad(
        self, fun: Callable, layout: _core.Layout, args: tuple
    ) -> _core.FlatValueAndGrad:
        return _core.eager_value_and_grad(self, fun, layout, args, self._x0_leaves)


TENSORFLOW = Framework(
    module=__name__,
    backend=_Backend,
    words={
        "api": "tensorflow_api",
        "arrays": "tensors",
        "evaluated": "run eagerly",
        "x_leaves": "`tf.Tensor`s of its dtypes",
        "value": "a scalar tensor",
        "x0_leaves": "tensors or variables",
        "example": """>>> import tensorflow as tf
    >>> def fun(x):
    ...     with tf.GradientTape() as tape:
    ...         tape.watch(list(x.values()))
    ...         value = tf.reduce_sum((x["w"] - 3.0) ** 2) + (x["b"] + 1.0) ** 2
    ...     return value, OrderedDict(zip(x, tape.gradient(value, list(x.values()))))
    >>> x0 = OrderedDict(w=tf.zeros(2, tf.float64), b=tf.constant(0.0, tf.float64))
    >>> x = minimize(fun, x0, method="L-BFGS-B")
    >>> x["w"].numpy().round(4).tolist(), round(float(x["b"]), 4)
    ([3.0, 3.0], -1.0)""",
    },
)

minimize = build(MINIMIZE, TENSORFLOW)
