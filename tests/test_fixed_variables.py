"""trust-constr with variables fixed by the bounds (`lb == ub`) and float32 leaves.

scipy keeps a fixed variable as two constraints a few ulps apart; a float32 objective cannot
resolve the last correction on them, and the run used to end with "Constraint violation exceeds
'gtol'". The references: scipy on the flat float64 problem with the fixed variable removed, and
closed forms. In float64 the problem scipy sees is left as it is (drop-in rule).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize import Bounds, LinearConstraint, minimize
from pytree_minimize._minimize import driver as _driver

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _objective(p):
    return jnp.sum((p["a"] - 0.5) ** 2) + (p["b"] - 1.0) ** 2


def _x0(dtype):
    return {"a": jnp.ones(3, dtype), "b": jnp.asarray(2.0, dtype)}


def _flat_reference():
    """scipy on the flat float64 problem without the fixed variable (`b = 2`)."""
    with jax.enable_x64(True):
        value_and_grad = jax.jit(
            jax.value_and_grad(lambda a: _objective({"a": a, "b": jnp.float64(2.0)}))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sopt.minimize(
                lambda a: tuple(np.asarray(o, np.float64) for o in value_and_grad(a)),
                np.ones(3),
                jac=True,
                method="trust-constr",
                bounds=sopt.Bounds(np.zeros(3), np.full(3, 10.0)),
            )
    assert result.success
    return result


def test_float32_fixed_variable_succeeds_like_scipy_without_it():
    bounds = Bounds({"a": 0.0, "b": 2.0}, {"a": 10.0, "b": 2.0})
    result = minimize(_objective, _x0(jnp.float32), method="trust-constr", bounds=bounds)
    assert result.success, result.message
    reference = _flat_reference()
    np.testing.assert_allclose(np.asarray(result.x["a"]), reference.x, rtol=2e-7)
    np.testing.assert_allclose(np.asarray(result.x["a"]), 0.5, rtol=1e-4)  # closed form
    assert float(result.x["b"]) == 2.0
    assert result.x["a"].dtype == jnp.float32
    np.testing.assert_array_equal(result.active_bounds["b"], -1)
    np.testing.assert_array_equal(result.active_bounds["a"], 0)
    # The objective's gradient is whole: d/db (b - 1)^2 = 2 at b = 2; the fixed variable's
    # bound multiplier takes it, so the Lagrangian's gradient is zero there.
    assert float(result.grad["b"]) == pytest.approx(2.0, rel=1e-6)
    assert float(result.lagrangian_grad["b"]) == 0.0
    assert float(result.v[-1][-1]) == pytest.approx(-2.0, rel=1e-6)
    assert result.jac[-1].shape == (4, 4)


def test_float32_fixed_variable_with_constraints_matches_closed_form():
    """Linear and nonlinear constraints through the fixed variable: a[0] + b <= 2.5 and
    a[1]^2 + b^2 <= 4.25 hold a[0] and a[1] at 0.5 when b = 2 (target 1)."""

    def objective(p):
        return jnp.sum((p["a"] - 1.0) ** 2) + (p["b"] - 1.0) ** 2

    constraints = [
        LinearConstraint(lambda p: p["a"][0] + p["b"], ub=2.5),
        {"type": "ineq", "fun": lambda p: 4.25 - p["a"][1] ** 2 - p["b"] ** 2},
    ]
    bounds = Bounds({"a": -10.0, "b": 2.0}, {"a": 10.0, "b": 2.0})
    seen = []
    result = minimize(
        objective,
        {"a": jnp.zeros(3, jnp.float32), "b": jnp.asarray(2.0, jnp.float32)},
        method="trust-constr",
        bounds=bounds,
        constraints=constraints,
        callback=lambda intermediate_result: seen.append(intermediate_result.x),
    )
    assert result.success, result.message
    np.testing.assert_allclose(np.asarray(result.x["a"]), [0.5, 0.5, 1.0], atol=1e-4)
    assert float(result.x["b"]) == 2.0
    # Multipliers by hand (our sign: grad f = sum J^T lambda at the solution): for the linear
    # one 2 (a0 - 1) = lambda -> -1; for the nonlinear one 2 (a1 - 1) = -2 a1 lambda -> 1.
    assert float(result.constraint_multipliers[0]) == pytest.approx(-1.0, abs=1e-3)
    assert float(result.constraint_multipliers[1]) == pytest.approx(1.0, abs=1e-3)
    # The constraints' Jacobians are over the full vector, the fixed column included.
    linear_jacobian = result.jac[0]
    linear_jacobian = getattr(linear_jacobian, "toarray", lambda: linear_jacobian)()
    np.testing.assert_allclose(linear_jacobian, [[1, 0, 0, 1]])
    # d/db (4.25 - a1^2 - b^2) = -2 b = -4 at b = 2, from the evaluation, not left out.
    np.testing.assert_allclose(np.asarray(result.jac[1])[0, 3], -4.0, rtol=1e-6)
    assert seen and all(float(x["b"]) == 2.0 for x in seen)
    # History reads the full gradient at each iterate: no NaN from the left-out column.
    assert all(np.isfinite(result.history[key]).all() for key in result.history)
    assert result.history["fun"][-1] == pytest.approx(result.fun)


def test_float64_problem_is_left_to_scipy(monkeypatch):
    """float64 leaves: scipy gets the fixed variable, as it would from a user of scipy."""
    seen_sizes = []
    minimize_ = sopt.minimize

    def spy(fun, x0, **kwargs):
        seen_sizes.append(np.size(x0))
        return minimize_(fun, x0, **kwargs)

    # The driver calls scipy's `minimize` as bound at import (`_driver._scipy_minimize`).
    monkeypatch.setattr(_driver, "_scipy_minimize", spy)
    bounds = Bounds({"a": 0.0, "b": 2.0}, {"a": 10.0, "b": 2.0})
    with jax.enable_x64(True):
        minimize(_objective, _x0(jnp.float64), method="trust-constr", bounds=bounds)
    minimize(_objective, _x0(jnp.float32), method="trust-constr", bounds=bounds)
    assert seen_sizes == [4, 3]
