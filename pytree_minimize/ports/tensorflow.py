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

from .._backends.common import require
from .._backends.tensorflow_logs import without_load_time_info
from .._core.surface import Framework, Option, build
from .._core.tree import Bounds, PyTree, flatten
from .._global import api as _global
from .._minimize import api as _minimize
from .._residual import api as _residual

# TensorFlow's load-time INFO lines ignore TF_CPP_MIN_LOG_LEVEL; they are dropped unless the user
# asked for every log line. TF_ENABLE_ONEDNN_OPTS is left alone: it changes the numerics.
_QUIET_LOAD = os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"
with without_load_time_info() if _QUIET_LOAD else contextlib.nullcontext():
    require("tensorflow", "tensorflow", "TensorFlow")

from .._backends.tensorflow import TensorFlowBackend  # noqa: E402

__all__ = [
    "Bounds",
    "assign",
    "basinhopping",
    "curve_fit",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "least_squares",
    "minimize",
    "root",
    "shgo",
]

TENSORFLOW = Framework(
    module=__name__,
    backend=TensorFlowBackend,
    words={
        "framework": "TensorFlow",
        "tree": "nested structure of tensors",
        "leaves": (
            "floating-point (or complex) `tf.Tensor` or `tf.Variable` leaves (or Keras variables)"
        ),
        "code": (
            "traceable by `tf.function` (traced once per structure, shapes and dtypes, and "
            "reused by later calls)"
        ),
        "derivatives": "a GradientTape inside one `tf.function`",
        "args": (
            "passed to the `tf.function`: tensors are traced by shape and dtype, so new values "
            "do not retrace"
        ),
        "jac_none": "a GradientTape",
        "hess_none": (
            "tapes where the method uses it: a dense Hessian (`tape.jacobian` of the gradient) "
            "for dogleg and trust-exact, forward-over-reverse products for the others"
        ),
        "hessp_none": "forward-over-reverse Hessian-vector products where the method uses them",
        "constraint_derivatives": "come from tapes unless given",
        "jacobian_none": (
            "tapes: the dense Jacobian, forward mode when there are at least as many residuals "
            "as parameters, else reverse mode; with `tr_solver='lsmr'` a matrix-free "
            "`LinearOperator` from Jacobian-vector products"
        ),
        "root_jacobian_none": (
            "for 'hybr' and 'lm' the dense Jacobian from tapes; for 'krylov' exact "
            "Jacobian-vector products in place of scipy's finite differences; the other "
            "methods use no Jacobian"
        ),
        "ipopt_derivatives": ("dense constraint Jacobians from tapes, a limited-memory Hessian"),
        "sparse_support": (
            "This port detects no sparsity: 'auto' and False keep dense derivatives, True is "
            "refused (sparse derivatives need the JAX core)."
        ),
        "result_leaves": "tensors of its leaves' dtypes",
        "batched": "evaluated in one call of `tf.vectorized_map` over the members",
        "module": __name__,
        "import": "import tensorflow as tf",
        "tensor": "tf.constant",
        "sum": "tf.reduce_sum",
        "exp": "tf.exp",
        "cos": "tf.cos",
    },
    options=(
        Option(
            "jit_compile",
            False,
            "bool",
            "Compile the evaluations with XLA (`tf.function(jit_compile=True)`).",
            frozenset({"minimize", "least_squares", "curve_fit", "root"}),
        ),
    ),
)

minimize = build(_minimize.MINIMIZE, TENSORFLOW)
least_squares = build(_residual.LEAST_SQUARES, TENSORFLOW)
curve_fit = build(_residual.CURVE_FIT, TENSORFLOW)
root = build(_residual.ROOT, TENSORFLOW)
differential_evolution = build(_global.DIFFERENTIAL_EVOLUTION, TENSORFLOW)
dual_annealing = build(_global.DUAL_ANNEALING, TENSORFLOW)
basinhopping = build(_global.BASINHOPPING, TENSORFLOW)
shgo = build(_global.SHGO, TENSORFLOW)
direct = build(_global.DIRECT, TENSORFLOW)


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
