"""The NumPy port (user gradients or finite differences), and the lazy import of the ports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize.ports.numpy import minimize

Point = namedtuple("Point", ["u", "v"])
X0_FLAT = np.random.default_rng(0).uniform(-1.0, 1.0, 10)


def structure(flat: np.ndarray) -> dict:
    """Ten numbers as dict / OrderedDict / tuple / namedtuple leaves, in optree's order."""
    flat = np.asarray(flat, dtype=np.float64)
    return {
        "a": flat[0:3].copy(),
        "b": OrderedDict(c=flat[3:7].reshape(2, 2).copy()),
        "d": (Point(u=flat[7:9].copy(), v=float(flat[9])),),
    }


def concatenate(x: dict) -> np.ndarray:
    point = x["d"][0]
    return np.concatenate([x["a"], x["b"]["c"].ravel(), point.u, np.ravel(point.v)])


def value_and_gradient(x: dict) -> tuple[float, dict]:
    """dict_minimize's convention: the value and a gradient shaped like `x`."""
    flat = concatenate(x)
    return sopt.rosen(flat), structure(sopt.rosen_der(flat))


def hess(x: dict) -> np.ndarray:
    return sopt.rosen_hess(concatenate(x))


def hessp(x: dict, p: dict) -> dict:
    return structure(sopt.rosen_hess_prod(concatenate(x), concatenate(p)))


SCIPY_DERIVATIVES = {
    "L-BFGS-B": ({}, {}),
    "BFGS": ({}, {}),
    "SLSQP": ({}, {}),
    "Newton-CG": ({"hessp": sopt.rosen_hess_prod}, {"hessp": hessp}),
    "trust-krylov": ({"hessp": sopt.rosen_hess_prod}, {"hessp": hessp}),
    "trust-exact": ({"hess": sopt.rosen_hess}, {"hess": hess}),
}


@pytest.mark.parametrize("method", list(SCIPY_DERIVATIVES))
def test_parity_with_scipy_flat_path(method):
    flat_kwargs, tree_kwargs = SCIPY_DERIVATIVES[method]
    expected = sopt.minimize(sopt.rosen, X0_FLAT, jac=sopt.rosen_der, method=method, **flat_kwargs)
    x0 = structure(X0_FLAT)
    result = minimize(value_and_gradient, x0, jac=True, method=method, **tree_kwargs)
    np.testing.assert_allclose(concatenate(result.x), expected.x, atol=1e-6)
    assert abs(result.nfev - expected.nfev) <= 3
    assert isinstance(result.x["d"][0], Point) and isinstance(result.x["d"][0].v, float)
    assert isinstance(result.x["b"], OrderedDict)
    np.testing.assert_array_equal(concatenate(x0), X0_FLAT)  # not mutated


def test_jax_port_takes_the_same_path():
    """The core (JAX) `minimize` on the same structure: the ports and the core agree."""
    import jax.numpy as jnp

    from pytree_minimize import minimize as jax_minimize

    def objective(x):
        point = x["d"][0]
        flat = jnp.concatenate([x["a"], x["b"]["c"].ravel(), point.u, jnp.ravel(point.v)])
        return jnp.sum(100.0 * (flat[1:] - flat[:-1] ** 2) ** 2 + (1.0 - flat[:-1]) ** 2)

    ours = minimize(value_and_gradient, structure(X0_FLAT), jac=True, method="L-BFGS-B")
    core = jax_minimize(objective, structure(X0_FLAT), method="L-BFGS-B")
    np.testing.assert_allclose(concatenate(ours.x), concatenate(core.x), atol=1e-6)
    assert abs(ours.nfev - core.nfev) <= 3


def test_jac_callable_and_finite_differences():
    def value(x):
        return sopt.rosen(concatenate(x))

    def jac(x):
        return structure(sopt.rosen_der(concatenate(x)))

    expected = sopt.minimize(sopt.rosen, X0_FLAT, jac=sopt.rosen_der, method="BFGS")
    result = minimize(value, structure(X0_FLAT), jac=jac, method="BFGS")
    np.testing.assert_allclose(concatenate(result.x), expected.x, atol=1e-6)
    assert result.nfev == expected.nfev
    # jac=None: scipy's own finite differences, exactly as scipy does for a flat x0.
    for jac_arg in (None, "3-point"):
        expected = sopt.minimize(sopt.rosen, X0_FLAT, jac=jac_arg, method="L-BFGS-B")
        result = minimize(value, structure(X0_FLAT), jac=jac_arg, method="L-BFGS-B")
        np.testing.assert_allclose(concatenate(result.x), expected.x, atol=1e-8)
        assert result.nfev == expected.nfev


def test_complex_step_differences():
    weights = np.arange(1.0, 11.0)

    def flat_fun(x):
        return np.sum(weights * (x - 0.5) ** 2) + np.sum(x[1:] * x[:-1]) ** 2 / 10

    expected = sopt.minimize(flat_fun, X0_FLAT, jac="cs", method="L-BFGS-B")
    result = minimize(
        lambda x: flat_fun(concatenate(x)), structure(X0_FLAT), jac="cs", method="L-BFGS-B"
    )
    np.testing.assert_allclose(concatenate(result.x), expected.x, atol=1e-8)
    assert result.nfev == expected.nfev


def test_float32_leaves_stay_float32():
    dtypes = []

    def fun(x):
        dtypes.append(x["w"].dtype)
        return float(np.sum((x["w"] - 2.0) ** 2)), {"w": 2 * (x["w"] - 2.0)}

    result = minimize(fun, {"w": np.zeros(3, np.float32)}, jac=True, method="BFGS")
    assert set(dtypes) == {np.dtype(np.float32)}
    assert result.x["w"].dtype == np.float32 and result.jac["w"].dtype == np.float32
    np.testing.assert_allclose(result.x["w"], 2.0, atol=1e-5)


def test_constraints_with_finite_difference_jacobians():
    def fun(x):
        return float(np.sum(x["a"] ** 2) + np.sum(x["b"] ** 2))

    constraints = [
        {"type": "eq", "fun": lambda x: np.sum(x["a"]) + np.sum(x["b"]) - 1.0},
        {"type": "ineq", "fun": lambda x: {"first": x["a"][0] - 0.4}},
    ]
    x0 = {"a": np.zeros(2), "b": np.zeros((2, 1))}
    result = minimize(fun, x0, method="SLSQP", constraints=constraints)
    assert result.success
    np.testing.assert_allclose(result.x["a"], [0.4, 0.2], atol=1e-5)
    np.testing.assert_allclose(result.x["b"], [[0.2], [0.2]], atol=1e-5)

    circle = sopt.NonlinearConstraint(lambda x: x["a"] ** 2 + x["b"] ** 2, -np.inf, 2.0)
    result = minimize(
        lambda x: (x["a"] - 2.0) ** 2 + (x["b"] - 2.0) ** 2,
        {"a": 0.0, "b": 0.5},
        method="trust-constr",
        constraints=circle,
    )
    np.testing.assert_allclose([result.x["a"], result.x["b"]], [1.0, 1.0], atol=1e-4)


def test_callbacks_receive_array_structures():
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result.x)

    result = minimize(value_and_gradient, structure(X0_FLAT), jac=True, callback=callback)
    assert len(seen) == result.nit and isinstance(seen[0]["d"][0], Point)
    assert len(result.history["fun"]) == result.nit


def test_errors_name_the_argument():
    def value(x):
        return sopt.rosen(concatenate(x))

    def gradient(x):
        return value_and_gradient(x)[1]

    with pytest.raises(ValueError, match="`jac=True`"):
        minimize(value, structure(X0_FLAT), jac=True)
    with pytest.raises(ValueError, match=r"needs a gradient.*`jac"):
        minimize(value, structure(X0_FLAT), method="Newton-CG")
    with pytest.raises(ValueError, match="pass `hess`"):
        # (With `jac=True` the driver differences the user's gradient instead.)
        minimize(value, structure(X0_FLAT), jac=gradient, method="trust-exact")
    with pytest.raises(ValueError, match="`fun` returned a pytree of structure"):
        minimize(lambda x: (value(x), {"a": x["a"]}), structure(X0_FLAT), jac=True)
    with pytest.raises(TypeError, match=r"x0\['n'\]"):
        minimize(value, {"a": np.zeros(2), "n": np.zeros(2, int)})
    with pytest.raises(ValueError, match="`fun` must return a scalar"):
        minimize(lambda x: x["a"] ** 2, {"a": np.ones(2)})


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_import_never_loads_torch_or_tensorflow():
    result = _run(
        """
        import sys
        import pytree_minimize, pytree_minimize.ports, pytree_minimize.ports.numpy
        loaded = [m for m in ("torch", "tensorflow") if m in sys.modules]
        assert not loaded, loaded
        assert sorted(dir(pytree_minimize.ports)) == ["numpy", "tensorflow", "torch"]
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_missing_framework_names_the_extra(framework):
    result = _run(
        f"""
        import sys
        sys.modules[{framework!r}] = None  # as if it were not installed
        import pytree_minimize.ports as ports
        try:
            ports.{framework}
        except ImportError as error:
            print(error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install pytree_minimize[{framework}]" in result.stdout
