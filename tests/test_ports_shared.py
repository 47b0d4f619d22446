"""Behaviour every backend shares, run once per backend: JAX, torch, TensorFlow and NumPy.

Each port's own helpers (its ten-number `structure`, Rosenbrock objective and flattening) come
from its test module; port-specific behaviour stays there. Constraint-reading rules are in
`test_constraint_rules.py`, over the same entry points.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict, namedtuple
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from _entry_points import entry_point

X0_FLAT = np.random.default_rng(0).uniform(-1.0, 1.0, 10)
Point = namedtuple("Point", ["u", "v"])


class Port(NamedTuple):
    minimize: Any
    Bounds: Any
    structure: Any
    objective: Any
    flat_of: Any
    extra: dict


def _jax_structure(flat: np.ndarray) -> dict:
    # float64 NumPy leaves: the JAX core computes them in float64 whatever `jax_enable_x64`.
    t = np.array(flat, dtype=np.float64)
    return {
        "a": t[0:3],
        "b": OrderedDict(c=t[3:7].reshape(2, 2)),
        "d": (Point(u=t[7:9], v=t[9]),),
    }


def _jax_concatenate(x: dict) -> Any:
    point = x["d"][0]
    return jnp.concatenate([x["a"], x["b"]["c"].ravel(), point.u, jnp.reshape(point.v, (1,))])


def _jax_flat_of(x: dict) -> np.ndarray:
    point = x["d"][0]
    leaves = [x["a"], x["b"]["c"], point.u, point.v]
    return np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in leaves])


def _jax_objective(x: dict) -> Any:
    v = _jax_concatenate(x)
    return jnp.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)


def _port(name: str) -> Port:
    if name == "jax":
        import pytree_minimize

        return Port(
            pytree_minimize.minimize,
            pytree_minimize.Bounds,
            _jax_structure,
            _jax_objective,
            _jax_flat_of,
            {},
        )
    pytest.importorskip({"torch": "torch", "tensorflow": "tensorflow"}.get(name, "numpy"))
    helpers = importlib.import_module(f"test_ports_{name}")
    port = importlib.import_module(f"pytree_minimize.ports.{name}")
    if name == "numpy":
        return Port(
            port.minimize,
            port.Bounds,
            helpers.structure,
            helpers.value_and_gradient,
            helpers.concatenate,
            {"jac": True},
        )
    return Port(
        port.minimize, port.Bounds, helpers.structure, helpers.objective, helpers.flat_of, {}
    )


BACKENDS = ["jax", "torch", "tensorflow", "numpy"]


@pytest.mark.parametrize("name", BACKENDS)
def test_bounds_as_a_prefix_match_scipy(name):
    port = _port(name)
    lb = {"a": 0.0, "b": None, "d": -0.5}
    ub = {"a": 0.5, "b": 2.0, "d": 0.9}
    flat_lb = np.r_[np.zeros(3), np.full(4, -np.inf), np.full(3, -0.5)]
    flat_ub = np.r_[np.full(3, 0.5), np.full(4, 2.0), np.full(3, 0.9)]
    start = np.clip(X0_FLAT, flat_lb, flat_ub)
    expected = sopt.minimize(
        sopt.rosen,
        start,
        jac=sopt.rosen_der,
        method="L-BFGS-B",
        bounds=sopt.Bounds(flat_lb, flat_ub),
    )
    result = port.minimize(
        port.objective,
        port.structure(start),
        method="L-BFGS-B",
        bounds=port.Bounds(lb, ub),
        **port.extra,
    )
    np.testing.assert_allclose(port.flat_of(result.x), expected.x, atol=1e-6)
    assert result.nfev == expected.nfev


@pytest.mark.parametrize("name", BACKENDS)
def test_x0_is_never_mutated_and_keeps_its_structure(name):
    port = _port(name)
    x0 = port.structure(X0_FLAT)
    result = port.minimize(port.objective, x0, method="BFGS", **port.extra)
    np.testing.assert_array_equal(port.flat_of(x0), X0_FLAT)
    np.testing.assert_allclose(port.flat_of(result.x), np.ones(10), atol=1e-4)
    assert isinstance(result.x["b"], OrderedDict)
    assert type(result.x["d"][0]) is type(x0["d"][0])  # the port's own namedtuple


class _Boom(Exception):
    pass


@pytest.mark.parametrize("name", ["jax", "argmin", "torch", "tensorflow", "numpy"])
def test_the_objectives_own_exception_reaches_the_caller(name):
    ep = entry_point(name)

    def fun(x):
        raise _Boom("from the user's objective")

    with pytest.raises(_Boom, match="from the user's objective"):
        ep.minimize(fun, ep.array(np.ones(2)), **ep.extra)
