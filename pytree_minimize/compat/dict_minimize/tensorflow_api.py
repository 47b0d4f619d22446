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
from collections.abc import Callable, Sequence

from ..._backends.tensorflow_logs import without_load_time_info
from . import _core

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
    """Minimise `fun` over a dictionary of tensors, as `dict_minimize.tensorflow_api.minimize`.

    Args:
        fun: `fun(x, *args) -> (value, gradient)`, run eagerly: `x` is an `OrderedDict` like
            `x0_dict` (`tf.Tensor`s of its dtypes), `value` a scalar tensor and `gradient` an
            `OrderedDict` of tensors with the keys and shapes of `x`.
        x0_dict: Initial guess, an `OrderedDict` of floating-point tensors or variables. Never
            mutated.
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
        The solution, an `OrderedDict` of `tf.Tensor`s with `x0_dict`'s keys, shapes and dtypes;
        its `optimize_result` attribute holds the full result (`fun`, `nit`, `message`,
        `history`).

    Examples:
        >>> from collections import OrderedDict
        >>> import tensorflow as tf
        >>> from pytree_minimize.compat.dict_minimize.tensorflow_api import minimize
        >>> def fun(x):
        ...     with tf.GradientTape() as tape:
        ...         tape.watch(list(x.values()))
        ...         value = tf.reduce_sum((x["w"] - 3.0) ** 2) + (x["b"] + 1.0) ** 2
        ...     return value, OrderedDict(zip(x, tape.gradient(value, list(x.values()))))
        >>> x0 = OrderedDict(w=tf.zeros(2, tf.float64), b=tf.constant(0.0, tf.float64))
        >>> x = minimize(fun, x0, method="L-BFGS-B")
        >>> x["w"].numpy().round(4).tolist(), round(float(x["b"]), 4)
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
