"""What only the TensorFlow port has: trace counts, its cache, `jit_compile`, dtypes, complex
convention, Keras variables and `assign`. Behaviour every port shares is in
`test_ports_shared.py`, which builds its TensorFlow structures with the helpers here.
"""

from __future__ import annotations

import os
from collections import OrderedDict, namedtuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import scipy.optimize as sopt

tf = pytest.importorskip("tensorflow")

from pytree_minimize.ports.tensorflow import assign, minimize  # noqa: E402

Point = namedtuple("Point", ["u", "v"])
X0_FLAT = np.random.default_rng(0).uniform(-1.0, 1.0, 10)


def structure(flat: np.ndarray, dtype=tf.float64) -> dict:
    """Ten numbers as dict / OrderedDict / tuple / namedtuple leaves, in optree's order; one leaf
    is a `tf.Variable`."""
    t = tf.constant(np.asarray(flat), dtype=dtype)
    return {
        "a": t[0:3],
        "b": OrderedDict(c=tf.Variable(tf.reshape(t[3:7], (2, 2)))),
        "d": (Point(u=t[7:9], v=t[9]),),
    }


def concatenate(x: dict) -> tf.Tensor:
    point = x["d"][0]
    return tf.concat(
        [x["a"], tf.reshape(x["b"]["c"], [-1]), point.u, tf.reshape(point.v, [1])], axis=0
    )


def rosenbrock(x: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def objective(x: dict) -> tf.Tensor:
    return rosenbrock(concatenate(x))


def flat_of(x: dict) -> np.ndarray:
    return concatenate(x).numpy().astype(np.float64)


def value_and_gradient(x: dict) -> tuple[tf.Tensor, dict]:
    """The objective and scipy's gradient of it, as a structure of tensors (`jac=True`); traced
    by `tf.function`, so the gradient comes through `tf.numpy_function`."""
    flat = concatenate(x)
    grad = tf.numpy_function(sopt.rosen_der, [flat], tf.float64)
    parts = tf.split(grad, [3, 4, 2, 1])
    tree = {
        "a": parts[0],
        "b": OrderedDict(c=tf.reshape(parts[1], (2, 2))),
        "d": (Point(u=parts[2], v=tf.reshape(parts[3], [])),),
    }
    return rosenbrock(flat), tree


def test_traced_once_per_structure_and_reused():
    traces = []

    def fun(x, scale):
        traces.append(1)  # runs only while tracing
        return scale * tf.reduce_sum((x["w"] - 1.0) ** 2) + tf.reduce_sum(x["b"] ** 2)

    x0 = {"w": tf.zeros(3, tf.float64), "b": tf.ones(2, tf.float64)}
    first = minimize(fun, x0, args=(tf.constant(2.0, tf.float64),), method="L-BFGS-B")
    assert first.nfev > 2 and len(traces) == 1
    # New starting values and new tensor values of `args`: the same trace.
    x1 = {"w": tf.fill([3], tf.constant(5.0, tf.float64)), "b": tf.zeros(2, tf.float64)}
    second = minimize(fun, x1, args=(tf.constant(3.0, tf.float64),), method="BFGS")
    assert second.success and len(traces) == 1
    np.testing.assert_allclose(second.x["w"].numpy(), 1.0, atol=1e-6)
    # A new structure traces once more.
    minimize(
        fun,
        {"w": tf.zeros(4, tf.float64), "b": tf.ones(2, tf.float64)},
        args=(tf.constant(2.0, tf.float64),),
    )
    assert len(traces) == 2


def test_cache_keeps_no_objective_alive_and_reuses_bound_methods():
    import gc
    import weakref

    def make(target):
        def fun(x):
            return tf.reduce_sum((x["w"] - target) ** 2)

        return fun

    fun = make(3.0)
    result = minimize(fun, {"w": tf.zeros(2, tf.float64)})
    np.testing.assert_allclose(result.x["w"].numpy(), 3.0, atol=1e-6)
    ref = weakref.ref(fun)
    del fun
    gc.collect()
    assert ref() is None

    class Model:
        traces = 0

        def loss(self, x):
            Model.traces += 1
            return tf.reduce_sum((x["w"] - 1.0) ** 2)

    model = Model()
    for _ in range(2):  # `model.loss` is a new bound-method object each time
        minimize(model.loss, {"w": tf.zeros(2, tf.float64)})
    assert Model.traces == 1


def test_jit_compile_takes_the_same_path():
    expected = sopt.minimize(sopt.rosen, X0_FLAT, jac=sopt.rosen_der, method="L-BFGS-B")
    result = minimize(objective, structure(X0_FLAT), method="L-BFGS-B", jit_compile=True)
    np.testing.assert_allclose(flat_of(result.x), expected.x, atol=1e-6)
    assert abs(result.nfev - expected.nfev) <= 3
    with pytest.raises(TypeError, match="`jit_compile`"):
        minimize(objective, structure(X0_FLAT), jit_compile="yes")


def test_float32_stays_float32_inside_fun():
    dtypes = []

    def fun(x):
        dtypes.append((x["w"].dtype, x["b"].dtype))
        return tf.reduce_sum((x["w"] - 2.0) ** 2) + tf.cast((x["b"] + 1.0) ** 2, tf.float32)

    x0 = {"w": tf.Variable(tf.zeros(3, tf.float32)), "b": tf.constant(0.0, tf.float64)}
    result = minimize(fun, x0, method="BFGS")
    assert set(dtypes) == {(tf.float32, tf.float64)}
    assert result.x["w"].dtype == tf.float32 and result.x["b"].dtype == tf.float64
    assert isinstance(result.x["w"], tf.Tensor) and result.jac["w"].dtype == tf.float32
    np.testing.assert_allclose(result.x["w"].numpy(), 2.0, atol=1e-4)
    np.testing.assert_allclose(result.x["b"].numpy(), -1.0, atol=1e-5)
    np.testing.assert_array_equal(x0["w"].numpy(), 0.0)


def test_complex_leaves_follow_tensorflows_convention():
    target = tf.constant([1.0 + 2.0j, -0.5j], tf.complex128)

    def fun(x):
        return tf.reduce_sum(tf.abs(x["z"] - target) ** 2)

    x0 = {"z": tf.zeros(2, tf.complex128)}
    result = minimize(fun, x0, method="BFGS")
    np.testing.assert_allclose(result.x["z"].numpy(), target.numpy(), atol=1e-6)
    early = minimize(fun, x0, method="L-BFGS-B", options={"maxiter": 1})
    # TensorFlow's gradient of a real function of z is d/dRe + i d/dIm: here 2 (z - target).
    expected = 2 * (early.x["z"].numpy() - target.numpy())
    np.testing.assert_allclose(early.jac["z"].numpy(), expected, atol=1e-6)


def test_keras_model_trainable_variables():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(40, 3)).astype(np.float32)
    targets = (inputs @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    targets += 0.01 * rng.normal(size=(40, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])

    def loss(weights, inputs, targets):
        predictions, _ = model.stateless_call(weights, model.non_trainable_variables, inputs)
        return tf.reduce_mean((predictions - targets) ** 2)

    x0 = model.trainable_variables  # Keras variables: read, never written
    start = [np.array(v.numpy()) for v in x0]
    result = minimize(
        loss,
        x0,
        args=(tf.constant(inputs), tf.constant(targets)),
        method="L-BFGS-B",
        options={"gtol": 1e-9},
    )
    for variable, value in zip(model.trainable_variables, start):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert all(isinstance(leaf, tf.Tensor) and leaf.dtype == tf.float32 for leaf in result.x)
    assign(model.trainable_variables, result.x)
    design = np.hstack([inputs, np.ones((40, 1))]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, targets.astype(np.float64), rcond=None)
    kernel, bias = (np.asarray(v.numpy()) for v in model.trainable_variables)
    np.testing.assert_allclose(kernel.ravel(), coef[:3, 0], atol=1e-4)
    np.testing.assert_allclose(bias, coef[3], atol=1e-4)


def test_assign_checks_the_structure():
    with pytest.raises(ValueError, match="`x` has structure"):
        assign([tf.Variable(0.0)], {"a": tf.constant(1.0)})


def test_evaluations_after_the_first_run_the_traced_graph():
    from pytree_minimize._backends.tensorflow import _graph_call

    @tf.function
    def f(x, scale, shift):
        return scale * tf.reduce_sum(x**2) + shift

    polymorphic_calls = []

    class Counting:
        """`f`, counting the calls that go through `tf.function`'s own (slow) dispatch."""

        def __call__(self, *arguments):
            polymorphic_calls.append(1)
            return f(*arguments)

        def get_concrete_function(self, *arguments):
            return f.get_concrete_function(*arguments)

    call = _graph_call(Counting(), (tf.constant(2.0, tf.float64), 1.5))
    points = [np.arange(3.0) + i for i in range(4)]
    values = [float(call(x).numpy()) for x in points]
    np.testing.assert_allclose(values, [2.0 * np.sum(x**2) + 1.5 for x in points], rtol=1e-15)
    assert len(polymorphic_calls) == 1
    # Another shape than the trace's: tf.function's own call, which traces it.
    assert float(call(np.ones(4)).numpy()) == 2.0 * 4 + 1.5
    assert len(polymorphic_calls) == 2
