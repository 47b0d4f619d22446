"""What only the NumPy port has (no autodiff: scipy's finite differences by default, errors that ask
for derivatives), and the lazy import of the ports. Behaviour every port shares is in
`test_ports_shared.py`, which builds its NumPy structures with the helpers here."""

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


def value(x: dict) -> float:
    return sopt.rosen(concatenate(x))


def value_and_gradient(x: dict) -> tuple[float, dict]:
    """dict_minimize's convention: the value and a gradient shaped like `x`."""
    flat = concatenate(x)
    return sopt.rosen(flat), structure(sopt.rosen_der(flat))


def hess(x: dict) -> np.ndarray:
    return sopt.rosen_hess(concatenate(x))


def hessp(x: dict, p: dict) -> dict:
    return structure(sopt.rosen_hess_prod(concatenate(x), concatenate(p)))


def test_jac_none_takes_scipys_finite_differences():
    """No autodiff: `jac=None` is scipy's own finite differences, exactly as scipy does for a
    flat x0 (the schemes scipy names are in the shared suite)."""
    expected = sopt.minimize(sopt.rosen, X0_FLAT, jac=None, method="L-BFGS-B")
    result = minimize(value, structure(X0_FLAT), jac=None, method="L-BFGS-B")
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


def test_errors_without_autodiff_name_the_argument():
    def gradient(x):
        return value_and_gradient(x)[1]

    with pytest.raises(ValueError, match="`jac=True`"):
        minimize(value, structure(X0_FLAT), jac=True)
    with pytest.raises(ValueError, match=r"needs a gradient.*`jac"):
        minimize(value, structure(X0_FLAT), method="Newton-CG")
    with pytest.raises(ValueError, match="pass `hess`"):
        # (With `jac=True` the driver differences the user's gradient instead.)
        minimize(value, structure(X0_FLAT), jac=gradient, method="trust-exact")


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
