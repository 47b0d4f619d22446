"""Behaviour every backend shares, run once per backend: JAX, torch, TensorFlow and NumPy.

The `backend` fixture builds `x0` in each framework (ten numbers as dict / OrderedDict / tuple /
namedtuple leaves, from the port's test module) and converts results back to NumPy; each test is
written once against scipy on the flat problem. What only one framework has (devices, dtypes,
`nn.Module` helpers, `tf.Variable` assignment, trace counts, the NumPy port's finite
differences) stays in its `test_ports_<name>.py`. Constraint-reading rules are in
`test_constraint_rules.py`, over the same entry points.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict, namedtuple
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optree
import pytest
import scipy.optimize as sopt
from _entry_points import entry_point

X0_FLAT = np.random.default_rng(0).uniform(-1.0, 1.0, 10)
Point = namedtuple("Point", ["u", "v"])


class Backend(NamedTuple):
    name: str
    minimize: Callable[..., Any]
    Bounds: Any
    #: Ten numbers as the framework's nested structure (float64 leaves).
    structure: Callable[[np.ndarray], Any]
    #: A structure's ten numbers back as a float64 NumPy vector.
    flat_of: Callable[[Any], np.ndarray]
    #: A structure's ten numbers as one framework vector.
    concatenate: Callable[[Any], Any]
    #: Rosenbrock of the ten numbers, a framework scalar.
    value: Callable[[Any], Any]
    #: Rosenbrock and its gradient as a structure like `x` (for `jac=True`).
    value_and_gradient: Callable[[Any], Any]
    #: Keyword arguments with which `objective` is passed: `jac=True` where there is no autodiff.
    extra: dict
    #: Per method, the second derivatives the port needs from the user (none with autodiff).
    second_derivatives: dict
    #: A NumPy array (any dtype) as the framework's array.
    tensor: Callable[[np.ndarray], Any]
    #: A Python float as a leaf of the framework.
    scalar: Callable[[float], Any]
    #: The framework's sum of all elements.
    sum: Callable[[Any], Any]
    #: The type of the result's leaves.
    leaf_type: type | tuple[type, ...]
    #: Constraint Jacobians from autodiff (exact) or scipy's finite differences.
    autodiff: bool

    @property
    def objective(self) -> Callable[[Any], Any]:
        return self.value_and_gradient if self.extra.get("jac") is True else self.value


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


def _make(name: str) -> Backend:
    if name == "jax":
        import pytree_minimize

        return Backend(
            name,
            pytree_minimize.minimize,
            pytree_minimize.Bounds,
            _jax_structure,
            _jax_flat_of,
            _jax_concatenate,
            _jax_objective,
            jax.value_and_grad(_jax_objective),
            {},
            {},
            np.array,
            float,
            jnp.sum,
            (np.ndarray, np.generic, jax.Array),
            True,
        )
    pytest.importorskip({"torch": "torch", "tensorflow": "tensorflow"}.get(name, "numpy"))
    helpers = importlib.import_module(f"test_ports_{name}")
    port = importlib.import_module(f"pytree_minimize.ports.{name}")
    if name == "numpy":
        return Backend(
            name,
            port.minimize,
            port.Bounds,
            helpers.structure,
            helpers.concatenate,
            helpers.concatenate,
            helpers.value,
            helpers.value_and_gradient,
            {"jac": True},
            {
                "Newton-CG": {"hessp": helpers.hessp},
                "trust-krylov": {"hessp": helpers.hessp},
                "trust-exact": {"hess": helpers.hess},
                "dogleg": {"hess": helpers.hess},
            },
            np.array,
            float,
            np.sum,
            (np.ndarray, float),
            False,
        )
    if name == "torch":
        torch = helpers.torch
        return Backend(
            name,
            port.minimize,
            port.Bounds,
            helpers.structure,
            helpers.flat_of,
            helpers.concatenate,
            helpers.objective,
            helpers.value_and_gradient,
            {},
            {},
            torch.as_tensor,
            lambda v: torch.tensor(v, dtype=torch.float64),
            torch.sum,
            torch.Tensor,
            True,
        )
    tf = helpers.tf
    return Backend(
        name,
        port.minimize,
        port.Bounds,
        helpers.structure,
        helpers.flat_of,
        helpers.concatenate,
        helpers.objective,
        helpers.value_and_gradient,
        {},
        {},
        tf.constant,
        lambda v: tf.constant(v, tf.float64),
        tf.reduce_sum,
        tf.Tensor,
        True,
    )


BACKENDS = ["jax", "torch", "tensorflow", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return _make(request.param)


def _leaves(tree: Any) -> list[Any]:
    return optree.tree_leaves(tree, namespace="pytree_minimize")


def _check_structure(backend: Backend, x: Any) -> None:
    """`x` is structured like the ten-number `x0`, with the framework's leaves."""
    assert isinstance(x["b"], OrderedDict)
    assert type(x["d"][0]) is type(backend.structure(X0_FLAT)["d"][0])  # the port's namedtuple
    assert all(isinstance(leaf, backend.leaf_type) for leaf in _leaves(x)), _leaves(x)


# ---------------------------------------------------------------------------------------------
# The flat path: each port gives scipy the same flat problem.

SCIPY_DERIVATIVES = {
    "L-BFGS-B": {},
    "BFGS": {},
    "SLSQP": {},
    "Newton-CG": {"hessp": sopt.rosen_hess_prod},
    "trust-krylov": {"hessp": sopt.rosen_hess_prod},
    "trust-exact": {"hess": sopt.rosen_hess},
    "dogleg": {"hess": sopt.rosen_hess},
}


@pytest.mark.parametrize("method", list(SCIPY_DERIVATIVES))
def test_parity_with_scipy_flat_path(backend, method):
    expected = sopt.minimize(
        sopt.rosen, X0_FLAT, jac=sopt.rosen_der, method=method, **SCIPY_DERIVATIVES[method]
    )
    x0 = backend.structure(X0_FLAT)
    result = backend.minimize(
        backend.objective,
        x0,
        method=method,
        **backend.extra,
        **backend.second_derivatives.get(method, {}),
    )
    np.testing.assert_allclose(backend.flat_of(result.x), expected.x, atol=1e-6)
    assert abs(result.nfev - expected.nfev) <= 3
    assert result.success == expected.success
    np.testing.assert_allclose(result.fun, expected.fun, atol=1e-9)
    _check_structure(backend, result.x)
    assert isinstance(result.x["d"][0].v, type(x0["d"][0].v))  # a Python float stays one
    np.testing.assert_array_equal(backend.flat_of(x0), X0_FLAT)  # not mutated


def test_user_gradient_jac_true_and_callable(backend):
    expected = sopt.minimize(sopt.rosen, X0_FLAT, jac=sopt.rosen_der, method="BFGS")
    result = backend.minimize(
        backend.value_and_gradient, backend.structure(X0_FLAT), jac=True, method="BFGS"
    )
    np.testing.assert_allclose(backend.flat_of(result.x), expected.x, atol=1e-6)
    assert result.nfev == expected.nfev

    def jac(x):
        return backend.structure(sopt.rosen_der(backend.flat_of(x)))

    result = backend.minimize(backend.value, backend.structure(X0_FLAT), jac=jac, method="BFGS")
    np.testing.assert_allclose(backend.flat_of(result.x), expected.x, atol=1e-6)
    assert result.nfev == expected.nfev


_WEIGHTS = np.arange(1.0, 11.0)


def _weighted_flat(x: np.ndarray) -> Any:
    return np.sum(_WEIGHTS * (x - 0.5) ** 2) + np.sum(x[1:] * x[:-1]) ** 2 / 10


@pytest.mark.parametrize("scheme", ["2-point", "3-point", "cs"])
def test_finite_difference_schemes_take_scipys_path(backend, scheme):
    def fun(x):
        return _weighted_flat_in(backend, x)

    expected = sopt.minimize(_weighted_flat, X0_FLAT, jac=scheme, method="L-BFGS-B")
    result = backend.minimize(fun, backend.structure(X0_FLAT), jac=scheme, method="L-BFGS-B")
    np.testing.assert_allclose(backend.flat_of(result.x), expected.x, atol=1e-8)
    assert result.nfev == expected.nfev


def _weighted_flat_in(backend: Backend, x: Any) -> Any:
    # Python-number weights: TensorFlow multiplies them with a complex step's tensors too.
    flat = backend.concatenate(x)
    weighted = sum(float(w) * (flat[i] - 0.5) ** 2 for i, w in enumerate(_WEIGHTS))
    return weighted + backend.sum(flat[1:] * flat[:-1]) ** 2 / 10


# ---------------------------------------------------------------------------------------------
# Bounds, constraints, callbacks.


def test_bounds_as_a_prefix_match_scipy(backend):
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
    result = backend.minimize(
        backend.objective,
        backend.structure(start),
        method="L-BFGS-B",
        bounds=backend.Bounds(lb, ub),
        **backend.extra,
    )
    np.testing.assert_allclose(backend.flat_of(result.x), expected.x, atol=1e-6)
    assert result.nfev == expected.nfev


def test_constraints_slsqp_and_trust_constr(backend):
    """Constraint Jacobians from the framework's autodiff (from scipy's finite differences for
    the NumPy port), against closed forms."""
    atol = 1e-6 if backend.autodiff else 1e-5
    sum_ = backend.sum

    # min |x|^2 subject to sum(x) = 1 and x["a"][0] >= 0.4: a = (0.4, 0.2), b = (0.2, 0.2).
    def fun(x):
        return sum_(x["a"] ** 2) + sum_(x["b"] ** 2)

    constraints = [
        {"type": "eq", "fun": lambda x: sum_(x["a"]) + sum_(x["b"]) - 1.0},
        {"type": "ineq", "fun": lambda x: {"first": x["a"][0] - 0.4}},
    ]
    x0 = {"a": backend.tensor(np.zeros(2)), "b": backend.tensor(np.zeros((2, 1)))}
    result = backend.minimize(fun, x0, method="SLSQP", constraints=constraints)
    assert result.success
    np.testing.assert_allclose(np.asarray(result.x["a"]), [0.4, 0.2], atol=atol)
    np.testing.assert_allclose(np.asarray(result.x["b"]), [[0.2], [0.2]], atol=atol)

    # min (a - 2)^2 + (b - 2)^2 subject to a^2 + b^2 <= 2: the answer is (1, 1).
    circle = sopt.NonlinearConstraint(lambda x: x["a"] ** 2 + x["b"] ** 2, -np.inf, 2.0)
    x0 = {"a": backend.scalar(0.0), "b": backend.scalar(0.5)}
    result = backend.minimize(
        lambda x: (x["a"] - 2.0) ** 2 + (x["b"] - 2.0) ** 2,
        x0,
        method="trust-constr",
        constraints=circle,
    )
    np.testing.assert_allclose([float(result.x["a"]), float(result.x["b"])], 1.0, atol=1e-4)


def test_callbacks_receive_the_frameworks_structures(backend):
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x, intermediate_result.fun))

    result = backend.minimize(
        backend.objective,
        backend.structure(X0_FLAT),
        method="BFGS",
        callback=callback,
        **backend.extra,
    )
    assert len(seen) == result.nit
    assert len(result.history["fun"]) == result.nit
    x, fun = seen[-1]
    _check_structure(backend, x)
    np.testing.assert_allclose(fun, sopt.rosen(backend.flat_of(x)), rtol=1e-10, atol=1e-20)

    legacy = []

    def stop_after_two(xk):
        legacy.append(xk)
        if len(legacy) == 2:
            raise StopIteration

    result = backend.minimize(
        backend.objective,
        backend.structure(X0_FLAT),
        method="L-BFGS-B",
        callback=stop_after_two,
        **backend.extra,
    )
    assert len(legacy) == 2 and result.nit == 2
    _check_structure(backend, legacy[0])
    assert len(result.history["fun"]) == 2

    legacy.clear()
    backend.minimize(
        backend.objective,
        backend.structure(X0_FLAT),
        method="TNC",
        callback=legacy.append,
        **backend.extra,
    )
    assert legacy
    _check_structure(backend, legacy[0])


# ---------------------------------------------------------------------------------------------
# Errors, the objective's own exceptions, x0 untouched.


def test_errors_name_the_argument(backend):
    with pytest.raises(TypeError, match=r"x0\['n'\]"):
        backend.minimize(
            lambda x: backend.sum(x["a"]),
            {"a": backend.tensor(np.zeros(2)), "n": backend.tensor(np.zeros(2, np.int32))},
        )
    with pytest.raises(ValueError, match="`fun` must return a scalar"):
        backend.minimize(lambda x: x["a"] ** 2, {"a": backend.tensor(np.ones(2))})
    with pytest.raises(TypeError, match="`fun` must return a real scalar"):
        backend.minimize(
            lambda x: backend.sum(x["a"]), {"a": backend.tensor(np.zeros(2, np.complex64))}
        )
    with pytest.raises(ValueError, match=r"`bounds\.lb`.*structure"):
        backend.minimize(
            backend.objective,
            backend.structure(X0_FLAT),
            bounds=backend.Bounds({"a": 0.0}, None),
            **backend.extra,
        )
    with pytest.raises(ValueError, match="`fun` returned a pytree of structure"):
        backend.minimize(
            lambda x: (backend.value(x), {"a": x["a"]}), backend.structure(X0_FLAT), jac=True
        )


def test_x0_is_never_mutated_and_keeps_its_structure(backend):
    x0 = backend.structure(X0_FLAT)
    result = backend.minimize(backend.objective, x0, method="BFGS", **backend.extra)
    np.testing.assert_array_equal(backend.flat_of(x0), X0_FLAT)
    np.testing.assert_allclose(backend.flat_of(result.x), np.ones(10), atol=1e-4)
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
