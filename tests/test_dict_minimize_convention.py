"""dict_minimize's calling convention in every port, with every method.

dict_minimize (the library this project grew from) calls `fun(x, *args) -> (value, grad_dict)`
with `jac=True` and takes bounds shaped like `x0`. Its own suite draws random dictionaries of
arrays and compares each method's answer with scipy's on the packed flat vector. These tests
compare, through `pytree_minimize.minimize` and the torch, TensorFlow and NumPy ports, with
scipy's optimum of the flat problem (converged tightly), for every method including the
second-order ones (whose Hessians then come from the user's gradient).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest
import scipy.optimize as sopt
from conftest import DERIVATIVE_FREE, METHODS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytree_minimize import Bounds

BOUNDED = ("L-BFGS-B", "TNC", "SLSQP", "trust-constr", "Powell", "Nelder-Mead", "COBYQA")
COUPLING = 0.05
#: Not zero: Nelder-Mead's first simplex is 5% of each coordinate (0.00025 at zero).
START = 0.5

shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
problems = st.dictionaries(
    st.sampled_from(["w", "b", "scale", "z"]), shapes, min_size=1, max_size=3
).flatmap(
    lambda shape_of: st.fixed_dictionaries(
        {
            key: st.lists(
                st.floats(-2.0, 2.0), min_size=int(np.prod(s)), max_size=int(np.prod(s))
            ).map(lambda v, s=s: np.array(v, dtype=np.float64).reshape(s))
            for key, s in shape_of.items()
        }
    )
)


def _ordered(centres: dict) -> OrderedDict:
    return OrderedDict((key, centres[key]) for key in centres)


def _flat_problem(centres: OrderedDict):
    """The problem on the packed vector (keys in insertion order, as dict_minimize packs)."""
    c = np.concatenate([np.ravel(v) for v in centres.values()])

    def value_and_grad(x):
        s = np.sum(x)
        return np.sum((x - c) ** 2) + COUPLING * s**4, 2 * (x - c) + 4 * COUPLING * s**3

    return value_and_grad


# One objective per framework, each computing its own gradient as a dict_minimize user does.


def _numpy_fun(x, centres):
    s = sum(np.sum(v) for v in x.values())
    value = sum(np.sum((x[k] - centres[k]) ** 2) for k in x) + COUPLING * s**4
    return value, OrderedDict((k, 2 * (x[k] - centres[k]) + 4 * COUPLING * s**3) for k in x)


def _jax_fun(x, centres):
    import jax
    import jax.numpy as jnp

    def value(y):
        s = sum(jnp.sum(v) for v in y.values())
        return sum(jnp.sum((y[k] - centres[k]) ** 2) for k in y) + COUPLING * s**4

    return jax.value_and_grad(value)(x)


def _torch_fun(x, centres):
    import torch

    s = sum(v.sum() for v in x.values())
    value = sum(((x[k] - torch.as_tensor(centres[k])) ** 2).sum() for k in x) + COUPLING * s**4
    grads = torch.autograd.grad(value, list(x.values()))  # the leaves require grad
    return value, OrderedDict(zip(x, grads, strict=True))


def _tensorflow_fun(x, centres):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(list(x.values()))
        s = tf.add_n([tf.reduce_sum(v) for v in x.values()])
        value = tf.add_n([tf.reduce_sum((x[k] - centres[k]) ** 2) for k in x]) + COUPLING * s**4
    return value, OrderedDict(zip(x, tape.gradient(value, list(x.values())), strict=True))


def _port(name):
    """`(minimize, fun, to_leaf, to_numpy)` of a port."""
    if name == "numpy":
        from pytree_minimize.ports.numpy import minimize

        return minimize, _numpy_fun, np.asarray, np.asarray
    if name == "jax":
        from pytree_minimize import minimize

        # NumPy float64 leaves: computed in float64 even with `jax_enable_x64` off.
        return minimize, _jax_fun, np.asarray, np.asarray
    if name == "torch":
        torch = pytest.importorskip("torch")
        from pytree_minimize.ports.torch import minimize

        return minimize, _torch_fun, torch.as_tensor, lambda t: t.detach().numpy()
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports.tensorflow import minimize

    return minimize, _tensorflow_fun, tf.constant, lambda t: t.numpy()


PORTS = ("numpy", "jax", "torch", "tensorflow")


def _tolerance(method: str, *, bounded: bool = False) -> float:
    if method in DERIVATIVE_FREE or method == "SLSQP":
        return 2e-3  # SLSQP stops at a change in `fun` of 1e-6: about 1e-3 in x
    return 1e-3 if bounded and method == "trust-constr" else 1e-4


def _reference(centres, bounds=None, method: str = "L-BFGS-B") -> np.ndarray:
    """scipy on the flat problem: the optimum, converged far past every method's tolerance; for
    a derivative-free method, that method's own answer (bounded Nelder-Mead may stop at a bound
    short of the optimum, and must stop where scipy stops)."""
    value_and_grad = _flat_problem(centres)
    n = sum(np.size(v) for v in centres.values())
    options = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000}
    if method in DERIVATIVE_FREE:
        options = {}
    else:
        method = "L-BFGS-B"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return sopt.minimize(
            value_and_grad,
            np.full(n, START),
            jac=True,
            method=method,
            bounds=bounds,
            options=options,
        ).x


def _small_enough(method: str, centres) -> bool:
    """Derivative-free methods within scipy's default budgets converge on a few variables; on
    more, Nelder-Mead stops at its iteration limit and no answer is comparable."""
    return method not in DERIVATIVE_FREE or sum(np.size(v) for v in centres.values()) <= 4


def _packed(x, to_numpy) -> np.ndarray:
    return np.concatenate([np.ravel(to_numpy(v)) for v in x.values()])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("port", PORTS)
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(centres=problems)
def test_value_and_grad_dict_with_every_method(port, method, centres):
    centres = _ordered(centres)
    assume(_small_enough(method, centres))
    minimize, fun, to_leaf, to_numpy = _port(port)
    x0 = OrderedDict((k, to_leaf(np.full_like(v, START))) for k, v in centres.items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy: "does not use gradient"
        result = minimize(fun, x0, args=(centres,), jac=True, method=method)
    assert list(result.x) == list(centres)
    for key in centres:
        assert tuple(np.shape(to_numpy(result.x[key]))) == centres[key].shape
    np.testing.assert_allclose(
        _packed(result.x, to_numpy),
        _reference(centres, method=method),
        atol=_tolerance(method),
        rtol=0,
    )


@pytest.mark.parametrize("method", BOUNDED)
@pytest.mark.parametrize("port", PORTS)
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(centres=problems)
def test_dict_shaped_bounds(port, method, centres):
    centres = _ordered(centres)
    assume(_small_enough(method, centres))
    minimize, fun, to_leaf, to_numpy = _port(port)
    x0 = OrderedDict((k, to_leaf(np.full_like(v, START))) for k, v in centres.items())
    lb = OrderedDict((k, np.full(v.shape, -0.5)) for k, v in centres.items())
    ub = OrderedDict((k, np.full(v.shape, 0.75)) for k, v in centres.items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = minimize(fun, x0, args=(centres,), jac=True, method=method, bounds=Bounds(lb, ub))
    n = sum(v.size for v in centres.values())
    expected = _reference(centres, sopt.Bounds(np.full(n, -0.5), np.full(n, 0.75)), method)
    packed = _packed(result.x, to_numpy)
    assert np.all(packed >= -0.5 - 1e-8) and np.all(packed <= 0.75 + 1e-8)
    np.testing.assert_allclose(packed, expected, atol=_tolerance(method, bounded=True), rtol=0)
