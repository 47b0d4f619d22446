"""Shared fixtures and problems for the test suite."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

# Keep XLA to one thread per test process: the suite runs on two cores with pytest-xdist.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

#: Every method of scipy.optimize.minimize.
METHODS = (
    "Nelder-Mead",
    "Powell",
    "CG",
    "BFGS",
    "Newton-CG",
    "L-BFGS-B",
    "TNC",
    "COBYLA",
    "COBYQA",
    "SLSQP",
    "trust-constr",
    "dogleg",
    "trust-ncg",
    "trust-exact",
    "trust-krylov",
)
DERIVATIVE_FREE = ("Nelder-Mead", "Powell", "COBYLA", "COBYQA")
HVP_METHODS = ("Newton-CG", "trust-ncg", "trust-krylov", "trust-constr")
DENSE_HESSIAN_METHODS = ("dogleg", "trust-exact")
BOUNDED_METHODS = (
    "Nelder-Mead",
    "Powell",
    "L-BFGS-B",
    "TNC",
    "COBYLA",
    "COBYQA",
    "SLSQP",
    "trust-constr",
)


def rosenbrock_flat(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def x64() -> Iterator[None]:
    """Run the test with `jax_enable_x64` on, scoped to the test, so that the flat float64
    references are exact whatever the global flag says."""
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------------------------------------
# The flat scipy reference: scipy.optimize.minimize on a flat float64 vector with exact JAX
# derivatives in the form the method takes (fused value and gradient, dense Hessian or
# Hessian-vector products). Written here independently of the package.


class FlatReference:
    """Jitted float64 evaluations of a flat objective `f(v, *args)`."""

    def __init__(self, f: Callable[..., Any]):
        self.f = f
        grad = jax.grad(f)
        self._value = jax.jit(f)
        value_and_grad = jax.value_and_grad(f)

        def packed(v: jax.Array, *args: Any) -> jax.Array:
            # One output array, as an efficient evaluation returns it: XLA then fuses the
            # computation as the package's does, so rounding (and the scipy path) agrees.
            value, grad = value_and_grad(v, *args)
            return jnp.concatenate([value[None], grad])

        self._value_and_grad = jax.jit(packed)
        self._hvp = jax.jit(lambda v, p, *a: jax.jvp(lambda w: grad(w, *a), (v,), (p,))[1])
        self._hess = jax.jit(jax.hessian(f))

    def value(self, v: np.ndarray, *args: Any) -> float:
        return float(self._value(jnp.asarray(v, jnp.float64), *args))

    def value_and_grad(self, v: np.ndarray, *args: Any) -> tuple[float, np.ndarray]:
        out = np.asarray(self._value_and_grad(jnp.asarray(v, jnp.float64), *args), np.float64)
        return out[0], out[1:]

    def hessp(self, v: np.ndarray, p: np.ndarray, *args: Any) -> np.ndarray:
        out = self._hvp(jnp.asarray(v, jnp.float64), jnp.asarray(p, jnp.float64), *args)
        return np.asarray(out, dtype=np.float64)

    def hess(self, v: np.ndarray, *args: Any) -> np.ndarray:
        return np.asarray(self._hess(jnp.asarray(v, jnp.float64), *args), dtype=np.float64)

    def minimize(self, x0: np.ndarray, method: str, **kwargs: Any) -> sopt.OptimizeResult:
        """scipy on the flat vector, with the derivatives the package supplies by default."""
        fun: Callable[..., Any]
        if method in DERIVATIVE_FREE:
            kwargs.setdefault("jac", None)
            fun = self.value
        else:
            kwargs.setdefault("jac", True)
            fun = self.value_and_grad if kwargs["jac"] is True else self.value
        if method in HVP_METHODS and "hess" not in kwargs:
            kwargs.setdefault("hessp", self.hessp)
        if method in DENSE_HESSIAN_METHODS:
            kwargs.setdefault("hess", self.hess)
        with jax.enable_x64(True):
            return sopt.minimize(fun, np.asarray(x0, dtype=np.float64), method=method, **kwargs)


@pytest.fixture(scope="session")
def flat_reference() -> type[FlatReference]:
    return FlatReference


# ---------------------------------------------------------------------------------------------
# CUTEst problems from sif2jax, loaded one module at a time: importing the `sif2jax` package
# builds every problem in the collection, which takes minutes; one problem's module takes well
# under a second. The stand-in parent packages are removed again, so a later `import sif2jax`
# still gets the real package.


def load_cutest(group: str, module: str, name: str) -> Any:
    """An instance of the sif2jax problem `name` from `sif2jax.cutest.<group>.<module>`."""
    spec = importlib.util.find_spec("sif2jax")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sif2jax is not installed")
    real = sys.modules.get("sif2jax")
    if real is not None and hasattr(real, "problems"):
        return getattr(importlib.import_module(f"sif2jax.cutest.{group}.{module}"), name)()
    root = next(iter(spec.submodule_search_locations))
    saved = {k: v for k, v in sys.modules.items() if k == "sif2jax" or k.startswith("sif2jax.")}
    try:
        for package, path in (
            ("sif2jax", root),
            ("sif2jax.cutest", os.path.join(root, "cutest")),
            (f"sif2jax.cutest.{group}", os.path.join(root, "cutest", group)),
        ):
            if package not in sys.modules:
                stand_in = types.ModuleType(package)
                stand_in.__path__ = [path]
                sys.modules[package] = stand_in
        problem_module = importlib.import_module(f"sif2jax.cutest.{group}.{module}")
        return getattr(problem_module, name)()
    finally:
        for key in [k for k in sys.modules if k == "sif2jax" or k.startswith("sif2jax.")]:
            del sys.modules[key]
        sys.modules.update(saved)


@pytest.fixture(scope="session")
def cutest() -> Callable[[str, str, str], Any]:
    return load_cutest
