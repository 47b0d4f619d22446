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

import numpy as np
import scipy.optimize as sopt

from .. import _curve_fit_driver, _driver, _least_squares_driver, _root_driver
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
    "curve_fit",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "least_squares",
    "minimize",
    "root",
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
    blas_threads: int | str | None = "auto",
    sparse: bool | str = "auto",
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
        method: A scipy method name, or 'ipopt' (IPOPT, the `ipopt` extra: dense constraint
            Jacobians, limited-memory Hessian); None chooses as scipy does.
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
        blas_threads: BLAS threads while scipy iterates. 'auto' holds BLAS to one thread for
            the methods that only update vectors (L-BFGS-B, CG, TNC, Newton-CG, trust-ncg,
            trust-krylov, Nelder-Mead, Powell, COBYLA), where threaded BLAS calls wait on cores
            held by other thread pools, and leaves it alone for methods with dense matrices; an
            int holds it to that many threads; None leaves it alone.
        jit_compile: Compile the evaluations with XLA.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False use
            dense derivatives, True is refused (sparse derivatives need the JAX core).

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
        blas_threads=blas_threads,
        sparse=sparse,
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

# ---------------------------------------------------------------------------------------------
# least_squares, curve_fit and root: the drivers of `pytree_minimize`, with
# Jacobians from GradientTapes.


def least_squares(
    fun: Callable[..., Any],
    x0: PyTree,
    jac: Any = None,
    bounds: Any = (-np.inf, np.inf),
    method: str = "trf",
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: Any = "linear",
    f_scale: float = 1.0,
    diff_step: Any = None,
    tr_solver: str | None = None,
    tr_options: dict | None = None,
    jac_sparsity: Any = None,
    max_nfev: int | None = None,
    verbose: int = 0,
    args: Any = (),
    kwargs: dict | None = None,
    callback: Callable | None = None,
    workers: Any = None,
    *,
    progress: Any = False,
    jit_compile: bool = False,
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Solve a nonlinear least-squares problem over a nested structure of tensors with
    `scipy.optimize.least_squares`; see :func:`pytree_minimize.least_squares`.

    Args:
        fun: `fun(x, *args, **kwargs)` returning the residuals as tensors or a nested
            structure of them; `x` has the structure of `x0`.
        x0: Initial guess, a nested structure of tensors of floating-point tensors. Never mutated.
        jac: None (tapes: dense, or matrix-free with `tr_solver='lsmr'`), a finite-difference
            scheme, or a callable returning the m-by-n Jacobian over the flat vectors.
        bounds: `Bounds(lb, ub)`, scipy's `Bounds` or a pair `(lb, ub)`, each side a scalar or
            a structure like `x0` (or a prefix of it).
        method: 'trf', 'dogbox' or 'lm'.
        ftol, xtol, gtol, loss, f_scale, diff_step, tr_solver, tr_options, jac_sparsity,
            max_nfev, verbose, workers: As scipy's.
        x_scale: None, 'jac', a positive scalar or a structure like `x0` (or a prefix of it).
        args, kwargs: Extra arguments for `fun`.
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` like `x0`.
        progress: True for a tqdm progress bar, or a tqdm instance.
        jit_compile: Compile the evaluations with XLA.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False use
            a dense Jacobian, True is refused (sparse Jacobians need the JAX core).

    Returns:
        scipy's `OptimizeResult`: `x`, `grad` and `active_mask` structured like `x0`, `fun`
        like the residuals (NumPy arrays), `jac` over the flat vectors, and scipy's fields.


    Examples:
        >>> import tensorflow as tf
        >>> from pytree_minimize.ports.tensorflow import least_squares
        >>> def f64(v):
        ...     return tf.constant(v, dtype=tf.float64)
        >>> t = tf.linspace(tf.constant(0.0, tf.float64), 1.0, 20)
        >>> def residuals(p):
        ...     return p["amp"] * tf.exp(-p["rate"] * t) - 2.0 * tf.exp(-3.0 * t)
        >>> res = least_squares(residuals, {"amp": f64(1.0), "rate": f64(1.0)})
        >>> round(float(res.x["amp"]), 4), round(float(res.x["rate"]), 4)
        (2.0, 3.0)
    """
    _check_jit_compile(jit_compile)
    return _least_squares_driver.least_squares(
        TensorFlowBackend(jit_compile=jit_compile),
        fun,
        x0,
        jac=jac,
        bounds=bounds,
        method=method,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        x_scale=x_scale,
        loss=loss,
        f_scale=f_scale,
        diff_step=diff_step,
        tr_solver=tr_solver,
        tr_options=tr_options,
        jac_sparsity=jac_sparsity,
        max_nfev=max_nfev,
        verbose=verbose,
        args=args,
        kwargs=kwargs,
        callback=callback,
        workers=workers,
        progress=progress,
        sparse=sparse,
    )


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: PyTree,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool | None = None,
    bounds: Any = (-np.inf, np.inf),
    method: str | None = None,
    jac: Any = None,
    *,
    full_output: bool = False,
    nan_policy: str | None = None,
    jit_compile: bool = False,
    **kwargs: Any,
) -> tuple:
    """Fit `f(xdata, params)` with `scipy.optimize.curve_fit`, `params` being a nested
    structure of tensors;
    see :func:`pytree_minimize.curve_fit`.

    Args:
        f: `f(xdata, params)` returning the model at `xdata` as tensors.
        xdata: The independent variable, passed to `f` as it is.
        ydata: The dependent data, m values.
        p0: Initial parameters, a nested structure of tensors of floating-point tensors (required).
        sigma, absolute_sigma, check_finite, method, full_output, nan_policy: As scipy's.
        bounds: `Bounds(lb, ub)`, scipy's `Bounds` or `(lb, ub)`, sides like `p0` or prefixes.
        jac: None (tapes), a finite-difference scheme, or `jac(xdata, params)`.
        **kwargs: Passed to scipy's `leastsq` or `least_squares`.
        jit_compile: Compile the evaluations with XLA.

    Returns:
        `(popt, pcov)` (plus scipy's `infodict, mesg, ier` with `full_output=True`): `popt`
        structured like `p0`, `pcov` n-by-n over the flat vector;
        `pytree_minimize.standard_errors(pcov, popt)` gives errors structured like `p0`.


    Examples:
        >>> import tensorflow as tf
        >>> from pytree_minimize.ports.tensorflow import curve_fit
        >>> def f64(v):
        ...     return tf.constant(v, dtype=tf.float64)
        >>> x = tf.linspace(tf.constant(0.0, tf.float64), 1.0, 20)
        >>> def model(x, p):
        ...     return p["slope"] * x + p["intercept"]
        >>> p0 = {"slope": f64(0.0), "intercept": f64(0.0)}
        >>> popt, pcov = curve_fit(model, x, 3.0 * x.numpy() + 1.0, p0)
        >>> round(float(popt["slope"]), 6), round(float(popt["intercept"]), 6), pcov.shape
        (3.0, 1.0, (2, 2))
    """
    _check_jit_compile(jit_compile)
    return _curve_fit_driver.curve_fit(
        TensorFlowBackend(jit_compile=jit_compile),
        f,
        xdata,
        ydata,
        p0,
        sigma=sigma,
        absolute_sigma=absolute_sigma,
        check_finite=check_finite,
        bounds=bounds,
        method=method,
        jac=jac,
        full_output=full_output,
        nan_policy=nan_policy,
        **kwargs,
    )


def root(
    fun: Callable[..., Any],
    x0: PyTree,
    args: Any = (),
    method: str = "hybr",
    jac: Any = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    *,
    jit_compile: bool = False,
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Find a root of a vector function of a nested structure of tensors with `scipy.optimize.root`
    (any of its ten methods); see :func:`pytree_minimize.root`.

    Args:
        fun: `fun(x, *args)` returning tensors (or a structure of them) with as many
            elements as `x0`.
        x0: Initial guess, a nested structure of tensors of floating-point tensors. Never mutated.
        args: Extra arguments for `fun`.
        method: Any scipy root method ('hybr', 'lm', 'broyden1', 'broyden2', 'anderson',
            'linearmixing', 'diagbroyden', 'excitingmixing', 'krylov', 'df-sane').
        jac: None (tapes: dense for 'hybr' and 'lm', exact products for 'krylov'), True,
            or a callable returning the Jacobian over the flat vectors.
        tol, options: As scipy's.
        callback: `callback(x, f)` with `x` and `f` structured like `x0` and `fun`'s output.
        jit_compile: Compile the evaluations with XLA.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False keep
            scipy's forms, True is refused (sparse Jacobians need the JAX core).

    Returns:
        scipy's `OptimizeResult` with `x` structured like `x0` and `fun` like `fun`'s output.


    Examples:
        >>> import tensorflow as tf
        >>> from pytree_minimize.ports.tensorflow import root
        >>> def f64(v):
        ...     return tf.constant(v, dtype=tf.float64)
        >>> def equations(p):
        ...     return [p["a"] + p["b"] - 3.0, p["a"] * p["b"] - 2.0]
        >>> sol = root(equations, {"a": f64(0.5), "b": f64(2.5)})
        >>> round(float(sol.x["a"]), 6), round(float(sol.x["b"]), 6)
        (1.0, 2.0)
    """
    return _root_driver.root(
        _backend(jit_compile),
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        tol=tol,
        callback=callback,
        options=options,
        sparse=sparse,
    )


def _check_jit_compile(jit_compile: Any) -> None:
    if not isinstance(jit_compile, bool):
        raise TypeError(f"`jit_compile` must be True or False; got {type(jit_compile).__name__}.")


def _backend(jit_compile: Any) -> TensorFlowBackend:
    _check_jit_compile(jit_compile)
    return TensorFlowBackend(jit_compile=jit_compile)
