"""Error messages for common mistakes speak of what the user passed, in the user's framework."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from _entry_points import entry_point

from pytree_minimize import minimize
from pytree_minimize._core.hints import describe_returned, float_cast_hint


def test_jac_true_with_a_scalar_objective_says_a_scalar():
    with pytest.raises(ValueError, match=r"returned a scalar\.") as caught:
        minimize(lambda p: jnp.sum(p["a"] ** 2), {"a": jnp.ones(2)}, jac=True)
    assert "Tracer" not in str(caught.value)


def test_jac_true_with_an_array_objective_names_its_shape():
    with pytest.raises(ValueError, match=r"returned an array of shape \(2,\)"):
        minimize(lambda p: p["a"] ** 2, {"a": jnp.ones(2)}, jac=True)


def test_describe_returned():
    assert describe_returned(np.float32(1.0)) == "a scalar"
    assert describe_returned(np.zeros((2, 3))) == "an array of shape (2, 3)"
    assert describe_returned({"a": 1}) == "a dict"
    assert describe_returned((1.0,)) == "a tuple"


def test_integer_in_a_python_list_gets_a_python_hint():
    with pytest.raises(TypeError, match=r"x0\['a'\]\[0\]") as caught:
        minimize(lambda p: 0.0, {"a": [1, 2]})
    message = str(caught.value)
    assert "float(x)" in message and "np.asarray(x, dtype=float)" in message
    assert ".astype" not in message


@pytest.mark.parametrize("make", [np.arange, jnp.arange], ids=["numpy", "jax"])
def test_integer_array_gets_astype_hint(make):
    with pytest.raises(TypeError, match=r"`x\.astype\(float\)`"):
        minimize(lambda p: 0.0, {"a": make(3)})


def test_integer_torch_tensor_gets_double_hint():
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports.torch import minimize as torch_minimize

    with pytest.raises(TypeError, match=r"`x\.double\(\)`") as caught:
        torch_minimize(lambda p: p["a"].sum(), {"a": torch.arange(3)})
    assert ".astype" not in str(caught.value)


def test_tensorflow_hint_without_importing_tensorflow():
    class Tensor:  # stands for tf.Tensor: the hint goes by the type's module only
        __module__ = "tensorflow.python.framework.ops"

    assert "`tf.cast(x, tf.float64)`" in float_cast_hint(Tensor())


def _tests_and_counts(name: str) -> tuple[Callable, Callable]:
    """`all(x > 0)` and the count of positive entries, in the framework of entry point `name`."""
    if name == "torch":
        return lambda x: (x > 0).all(), lambda x: (x > 0).sum()
    if name == "tensorflow":
        import tensorflow as tf

        return lambda x: tf.reduce_all(x > 0), lambda x: tf.reduce_sum(tf.cast(x > 0, tf.int32))
    return lambda x: jnp.all(x > 0), lambda x: jnp.sum(x > 0)


@pytest.mark.parametrize("name", ["jax", "argmin", "torch", "tensorflow"])
def test_objective_without_a_gradient(name):
    ep = entry_point(name)
    x0 = np.array([0.5, 1.5])
    for objective in _tests_and_counts(name):
        # Gradient methods would stop at x0 with a zero gradient: a clear error instead.
        for method in ("BFGS", "trust-constr"):
            with pytest.raises(TypeError, match=r"`fun` returned a value of dtype \S*(bool|int)"):
                ep.minimize(objective, ep.array(x0), method=method)
        # A derivative-free method takes it as scipy does.
        res = ep.minimize(objective, ep.array(x0), method="Nelder-Mead")
        ref = sopt.minimize(
            lambda v, f=objective: float(np.asarray(f(ep.array(v)))), x0, method="Nelder-Mead"
        )
        np.testing.assert_allclose(ep.to_numpy(res.x), ref.x)
        assert int(res.nfev) == ref.nfev
