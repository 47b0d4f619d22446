"""`minimize` for TensorFlow: nested structures of tensors and variables, derivatives from tapes.

`x0` is any nested structure (dict, list, tuple, namedtuple, OrderedDict) of `tf.Tensor` and
`tf.Variable` leaves; `fun(x, *args)` returns a scalar tensor and receives `x` as tensors of the
leaves' dtypes. The value and gradient come from a GradientTape inside one `tf.function`, traced
once per structure (shapes and dtypes) and reused by later calls; `args` follow `tf.function`'s
tracing rules (tensors and NumPy arrays by shape and dtype, Python values by value). Hessian-vector
products are forward-over-reverse (`tf.autodiff.ForwardAccumulator` over a tape), dense Hessians
`tape.jacobian` of the gradient. `jit_compile=True` compiles the evaluations with XLA. Results are
`tf.Tensor`s of the leaves' dtypes.

Fitting a Keras model: optimise its trainable variables' values and evaluate the model statelessly,
then assign the solution back with :func:`assign`::

    import keras
    import tensorflow as tf
    from pytree_minimize.ports.tensorflow import assign, minimize

    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )

    def loss(weights, inputs, targets):
        predictions, _ = model.stateless_call(weights, model.non_trainable_variables, inputs)
        return tf.reduce_mean((predictions - targets) ** 2)

    result = minimize(loss, model.trainable_variables, args=(inputs, targets), method="L-BFGS-B")
    assign(model.trainable_variables, result.x)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import scipy.optimize as sopt

from .. import _driver
from .._global_optimize import global_optimizers
from .._tree import Bounds, PyTree, flatten
from ._common import require
from ._load_logs import without_load_time_info

# TensorFlow's load-time INFO lines ignore TF_CPP_MIN_LOG_LEVEL; they are dropped unless the user
# asked for every log line. TF_ENABLE_ONEDNN_OPTS is left alone: it changes the numerics.
_QUIET_LOAD = os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"
with without_load_time_info() if _QUIET_LOAD else contextlib.nullcontext():
    require("tensorflow", "tensorflow", "TensorFlow")

from ._tensorflow_backend import TensorFlowBackend  # noqa: E402

__all__ = [
    "Bounds",
    "assign",
    "basinhopping",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "minimize",
    "shgo",
]


def minimize(
    fun: Callable[..., Any],
    x0: PyTree,
    args: Any = (),
    method: str | Callable | None = None,
    jac: Any = None,
    hess: Any = None,
    hessp: Callable | None = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    *,
    progress: Any = False,
    jit_compile: bool = False,
) -> sopt.OptimizeResult:
    """Minimise a scalar TensorFlow function of a nested structure of tensors with any
    `scipy.optimize.minimize` method.

    The arguments and their order are scipy's and :func:`pytree_minimize.minimize`'s.

    Args:
        fun: `fun(x, *args) -> scalar tensor`, traceable by `tf.function`; `x` has the structure of
            `x0`, with tensors of its leaves' dtypes.
        x0: Initial guess: a nested structure of floating-point (or complex) `tf.Tensor` or
            `tf.Variable` leaves (or Keras variables). Never mutated.
        args: Extra arguments for `fun`, passed to the `tf.function` (tensors are traced by shape
            and dtype, so new values do not retrace).
        method: A scipy method name; None chooses as scipy does.
        jac: None (GradientTape), True (`fun` returns `(value, gradient_structure)`), a callable
            returning a structure like `x`, or `'2-point'`, `'3-point'`, `'cs'`.
        hess: None (tapes where the method uses it), a callable returning the dense Hessian over
            the flat vector, a `HessianUpdateStrategy`, or a finite-difference scheme.
        hessp: None (forward-over-reverse products where the method uses them) or
            `hessp(x, p, *args)` returning a structure like `x`.
        bounds: `Bounds(lb, ub)` with bounds shaped like `x0` (or a prefix of it); for a
            single-tensor `x0` also scipy's `Bounds` or `(min, max)` pairs.
        constraints: scipy's constraint forms, with functions of the structure `x` returning
            tensors; their Jacobians come from tapes.
        tol: Tolerance, passed to scipy.
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` a structure of
            tensors.
        options: Method options, passed to scipy.
        progress: True for a tqdm progress bar, or a tqdm instance.
        jit_compile: Compile the evaluations with XLA.

    Returns:
        scipy's `OptimizeResult`, with `x` and `jac` structured like `x0` (tensors of its leaves'
        dtypes) and `history`.

    Examples:
        >>> import tensorflow as tf
        >>> from pytree_minimize.ports.tensorflow import minimize
        >>> def f(p):
        ...     return tf.reduce_sum((p["w"] - 3.0) ** 2) + tf.cast((p["b"] + 1.0) ** 2, tf.float64)
        >>> x0 = {"w": tf.zeros(2, tf.float64), "b": tf.Variable(0.0)}
        >>> res = minimize(f, x0, method="L-BFGS-B")
        >>> res.x["w"].numpy().round(4).tolist(), round(float(res.x["b"]), 4), res.x["b"].dtype.name
        ([3.0, 3.0], -1.0, 'float32')
    """
    if not isinstance(jit_compile, bool):
        raise TypeError(f"`jit_compile` must be True or False; got {type(jit_compile).__name__}.")
    return _driver.minimize(
        TensorFlowBackend(jit_compile=jit_compile),
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        bounds=bounds,
        constraints=constraints,
        tol=tol,
        callback=callback,
        options=options,
        progress=progress,
    )


def assign(variables: PyTree, x: PyTree) -> PyTree:
    """Assign a solution (for example `result.x`) to a structure of `tf.Variable`s of the same
    structure, such as a Keras model's `trainable_variables`.

    Args:
        variables: A nested structure of `tf.Variable` (or Keras variables).
        x: Values with the same structure and shapes.

    Returns:
        `variables`, updated in place.

    Examples:
        >>> import tensorflow as tf
        >>> from pytree_minimize.ports.tensorflow import assign
        >>> v = [tf.Variable([0.0, 0.0])]
        >>> _ = assign(v, [tf.constant([1.0, 2.0])])
        >>> v[0].numpy().tolist()
        [1.0, 2.0]
    """
    targets, target_def = flatten(variables)
    values, value_def = flatten(x)
    if target_def != value_def:
        raise ValueError(
            f"`x` has structure {value_def}; expected the structure of `variables`, {target_def}."
        )
    for index, (target, value) in enumerate(zip(targets, values, strict=True)):
        if not hasattr(target, "assign"):
            raise TypeError(
                f"`variables` leaf {index} is a {type(target).__name__}, not a variable; pass "
                "`tf.Variable`s (for example `model.trainable_variables`)."
            )
        target.assign(value)
    return variables


# The global optimisers, with the evaluations in `tf.function`s (no XLA).
(
    differential_evolution,
    dual_annealing,
    basinhopping,
    shgo,
    direct,
) = global_optimizers(
    lambda template: TensorFlowBackend(),
    leaves="TensorFlow floating-point tensors",
    traceable=" of TensorFlow operations (traced once by `tf.function`)",
    batched="evaluated in one `tf.vectorized_map` call",
)
