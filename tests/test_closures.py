"""Closure conversion (`_core.closures`): a new closure over the same code reuses the compiled
evaluation, its arrays traced; values that may steer tracing stay in the key; where conversion
cannot apply, one `RecompileWarning` names the fix after the third compile."""

from __future__ import annotations

import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pytree_minimize
from pytree_minimize import (
    RecompileWarning,
    clear_cache,
    curve_fit,
    differential_evolution,
    least_squares,
    minimize,
    root,
)

X0 = {"w": jnp.zeros(3), "b": jnp.array(0.0)}


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3))
    Y = X @ rng.normal(size=3) + rng.normal()
    design = np.column_stack([X, np.ones(len(X))])
    return X, Y, np.linalg.lstsq(design, Y, rcond=None)[0]


def _recompile_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, RecompileWarning)]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_a_new_closure_over_new_arrays_is_traced_once():
    traces: list[int] = []

    def fit(X, Y):
        def loss(p):
            traces.append(1)
            return jnp.mean((X @ p["w"] + p["b"] - Y) ** 2)

        return minimize(loss, X0, method="BFGS", options={"gtol": 1e-9})

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for seed in range(4):
            X, Y, solution = _data(seed)
            res = fit(X, Y)
            np.testing.assert_allclose(res.x["w"], solution[:3], atol=1e-4)
            np.testing.assert_allclose(res.x["b"], solution[3], atol=1e-4)
    assert len(traces) == 1
    assert _recompile_warnings(record) == []


def _counted_square(p):
    TRACES.append(1)
    return jnp.sum((p - 2.0) ** 2)


TRACES: list[int] = []


def test_a_lambda_without_a_closure_made_anew_is_traced_once():
    TRACES.clear()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(4):
            res = minimize(lambda p: _counted_square(p), jnp.zeros(2), method="BFGS")
            np.testing.assert_allclose(res.x, [2.0, 2.0], atol=1e-6)
    assert len(TRACES) == 1
    assert _recompile_warnings(record) == []


class _Loss:
    def __call__(self, p):
        return jnp.sum((p - 1.0) ** 2)


def test_a_new_callable_object_per_call_is_named_after_the_third_compile():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(4):
            minimize(_Loss(), jnp.zeros(2), method="BFGS")
    (message,) = _recompile_warnings(record)
    assert "`_Loss.__call__`" in message and "each call passes a new callable object" in message


def test_floats_defaults_partials_and_nested_functions_are_traced():
    traces: list[str] = []

    def base(p, target, *, scale):
        traces.append("partial")
        return jnp.sum((p - target * scale) ** 2)

    def helper(t):
        shift = jnp.asarray(t)

        def predict(p):
            return p * 2.0 + shift

        def loss(p, weight=t):  # a float default and a closed-over function
            traces.append("nested")
            return weight * jnp.sum((predict(p) - 3.0 * t) ** 2)

        return loss

    for t in (1.0, 2.0, 5.0):
        res = minimize(helper(t), np.zeros(2), method="BFGS")
        np.testing.assert_allclose(res.x, [t, t], atol=1e-4)  # 2x + t = 3t
        res = minimize(functools.partial(base, target=np.full(2, t), scale=2.0), np.zeros(2))
        np.testing.assert_allclose(res.x, [2 * t, 2 * t], atol=1e-4)
    assert traces.count("nested") == 1
    assert traces.count("partial") == 1


def test_closed_over_pytrees_and_modules_are_traced():
    traces: list[int] = []

    def fit(model, target):
        def loss(p):
            traces.append(1)
            return jnp.sum((model(p) - target) ** 2)

        return minimize(loss, jnp.zeros(2), method="BFGS")

    for seed in range(3):
        key = jax.random.PRNGKey(seed)
        model = eqx.nn.Linear(2, 2, key=key)
        target = jnp.array([1.0, -1.0]) + seed
        res = fit(model, target)
        expected = jnp.linalg.solve(model.weight, target - model.bias)
        np.testing.assert_allclose(res.x, expected, atol=1e-4)
    assert len(traces) == 1


@pytest.mark.parametrize("entry", ["least_squares", "curve_fit", "root", "differential_evolution"])
def test_every_entry_point_reuses_the_compiled_evaluation(entry):
    traces: list[int] = []

    def solve(target):
        def residuals(p):
            traces.append(1)
            return p - target

        def model(x, p):
            traces.append(1)
            return p["a"] * x + target[0]

        if entry == "least_squares":
            return least_squares(residuals, np.zeros(2)).x
        if entry == "root":
            return root(residuals, np.zeros(2)).x
        if entry == "curve_fit":
            x = np.linspace(0.0, 1.0, 9)
            popt, _ = curve_fit(model, x, 3.0 * x + float(target[0]), p0={"a": 1.0})
            return np.array([popt["a"], 3.0])
        res = differential_evolution(
            lambda p: jnp.sum(residuals(p) ** 2),
            [(-5.0, 5.0)] * 2,
            seed=1,
            tol=1e-10,
            vectorized=True,
            updating="deferred",
            polish=False,
        )
        return res.x

    for k in range(3):
        target = jnp.array([1.0, 2.0]) + k
        x = solve(target)
        expected = [3.0, 3.0] if entry == "curve_fit" else target
        np.testing.assert_allclose(x, expected, atol=1e-3)
    first = len(traces)
    for k in range(3, 5):
        solve(jnp.array([1.0, 2.0]) + k)
    assert len(traces) == first  # nothing traced anew after the first calls


def test_ints_stay_static_and_the_third_compile_warns():
    def fit(n):
        def loss(p):
            return sum((p[i] - i) ** 2 for i in range(n))  # `n` steers tracing

        return minimize(loss, np.zeros(4), method="BFGS")

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for n in (1, 2, 3, 4):
            res = fit(n)
            np.testing.assert_allclose(res.x[:n], np.arange(n), atol=1e-5)
    messages = _recompile_warnings(record)
    assert len(messages) == 1
    assert "compiled 3 times" in messages[0]
    assert "`n` = 3" in messages[0] and "`args`" in messages[0]
    assert record[0].filename == __file__  # points at the caller's line


def test_arrays_read_outside_jax_fall_back_and_warn():
    def fit(y):
        def loss(p):
            target = float(np.log(y).sum())  # NumPy on the closed-over array
            return jnp.sum((p - target) ** 2)

        return minimize(loss, np.zeros(2), method="BFGS")

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for seed in range(4):
            y = np.random.default_rng(seed).uniform(1.0, 2.0, 5)
            np.testing.assert_allclose(fit(y).x, np.log(y).sum(), atol=1e-5)
    messages = _recompile_warnings(record)
    assert len(messages) == 1
    assert "TracerArrayConversionError" in messages[0]
    assert "outside the loop or helper" in messages[0]


def test_an_object_that_cannot_be_traced_or_keyed_warns():
    class Settings:
        def __init__(self, target):
            self.target = target

    def fit(settings):
        def loss(p):
            return jnp.sum((p - settings.target) ** 2)

        return minimize(loss, np.zeros(2), method="BFGS")

    with pytest.warns(RecompileWarning, match=r"closes over `settings`: an object of type"):
        for t in (1.0, 2.0, 3.0):
            np.testing.assert_allclose(fit(Settings(t)).x, [t, t], atol=1e-5)


def test_the_users_errors_reach_the_caller_unchanged():
    class Boom(Exception):
        pass

    def fit(y):
        def loss(p):
            raise Boom(y.shape)

        return minimize(loss, np.zeros(2))

    with pytest.raises(Boom):
        fit(np.ones(3))


def test_a_reassigned_global_is_seen_by_a_new_closure():
    global _SCALE

    def fit(t):
        def loss(p):
            return jnp.sum((p - _SCALE * t) ** 2)

        return minimize(loss, np.zeros(2), method="BFGS")

    _SCALE = 1.0
    np.testing.assert_allclose(fit(jnp.ones(2)).x, [1.0, 1.0], atol=1e-5)
    _SCALE = 2.0
    np.testing.assert_allclose(fit(jnp.ones(2)).x, [2.0, 2.0], atol=1e-5)


_SCALE = 1.0


def test_lists_filled_while_tracing_stay_the_callers_objects():
    def make(log):
        def loss(p):
            log.append("traced")
            return jnp.sum(p**2)

        return loss

    log: list[str] = []
    minimize(make(log), np.ones(2))
    assert log == ["traced"]


def test_new_shapes_do_not_warn():
    def objective(p):
        return jnp.sum((p - 1.0) ** 2)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for n in range(1, 6):
            minimize(objective, np.zeros(n), method="BFGS")
    assert _recompile_warnings(record) == []


def test_the_warning_is_public():
    assert "RecompileWarning" in pytree_minimize.__all__
    assert issubclass(pytree_minimize.RecompileWarning, UserWarning)


def test_the_tensorflow_port_reuses_the_trace_of_a_new_closure():
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports.tensorflow import minimize as tf_minimize

    traces: list[int] = []

    def fit(X, Y):
        def loss(p):
            traces.append(1)
            return tf.reduce_mean((tf.linalg.matvec(X, p["w"]) + p["b"] - Y) ** 2)

        x0 = {"w": tf.zeros(3, tf.float64), "b": tf.constant(0.0, tf.float64)}
        return tf_minimize(loss, x0, method="BFGS", options={"gtol": 1e-9})

    for seed in range(3):
        X, Y, solution = _data(seed)
        res = fit(tf.constant(X), Y)  # a tensor and a NumPy array closed over
        np.testing.assert_allclose(res.x["w"].numpy(), solution[:3], atol=1e-4)
        np.testing.assert_allclose(res.x["b"].numpy(), solution[3], atol=1e-4)
    assert len(traces) == 1


def test_the_tensorflow_port_falls_back_where_the_lifted_trace_fails():
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports.tensorflow import minimize as tf_minimize

    def fit(y):
        def loss(p):
            return tf.reduce_sum((p - float(np.log(y).sum())) ** 2)  # NumPy on the array

        return tf_minimize(loss, tf.zeros(2, tf.float64), method="BFGS")

    for seed in range(2):
        y = np.random.default_rng(seed).uniform(1.0, 2.0, 5)
        np.testing.assert_allclose(fit(y).x.numpy(), np.log(y).sum(), atol=1e-5)
