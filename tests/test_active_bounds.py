"""`active_bounds` on bounded results: -1 at the lower bound, 0 free, +1 at the upper bound.

Expected values come from the problem's closed form (a separable quadratic whose minimiser is the
target clipped to the box) and from scipy's `least_squares`, whose `active_mask` has the same
meaning.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize import Bounds, LinearConstraint, minimize
from pytree_minimize._core.active_bounds import flat_active_bounds

BOUNDED_METHODS = ["Nelder-Mead", "Powell", "L-BFGS-B", "TNC", "COBYLA", "COBYQA", "SLSQP"]
BOUNDED_METHODS += ["trust-constr"]

TARGET = {"a": np.array([-2.0, 0.3]), "b": np.array([[5.0, 0.5]])}
LOWER = {"a": -1.0, "b": np.array([[-1.0, 0.5]])}  # b[0, 1] is fixed at 0.5
UPPER = {"a": 1.0, "b": np.array([[1.0, 0.5]])}
#: The target clipped to the box, read off by hand.
EXPECTED = {"a": np.array([-1, 0]), "b": np.array([[1, -1]])}


def _distance(p):
    return jnp.sum((p["a"] - TARGET["a"]) ** 2) + jnp.sum((p["b"] - TARGET["b"]) ** 2)


def _x0():
    return {"a": np.zeros(2), "b": np.array([[0.0, 0.5]])}


# ---------------------------------------------------------------------------------------------
# The policy on the flat vector.


def test_flat_policy_by_hand():
    lb = np.array([0.0, 0.0, -np.inf, 0.0, 2.0, 1e9])
    ub = np.array([1.0, 1.0, np.inf, 1.0, 2.0, np.inf])
    x = np.array([0.0, 1.0, 5.0, 0.5, 2.0, 1e9 + 1.0])
    # at lb; at ub; unbounded; free; fixed (lb == ub: the lower wins); within 1e-8 * |lb|
    np.testing.assert_array_equal(flat_active_bounds(x, lb, ub), [-1, 1, 0, 0, -1, -1])


def test_flat_policy_tolerance_and_violations():
    lb, ub = np.zeros(5), np.ones(5)
    x = np.array([1e-9, 1e-6, -1e-3, 1 + 1e-3, 1 - 1e-9])
    # within tolerance; outside it (free); past the lower bound; past the upper; within
    np.testing.assert_array_equal(flat_active_bounds(x, lb, ub), [-1, 0, -1, 1, 1])


def test_flat_policy_nearer_bound_wins_in_a_narrow_box():
    lb, ub = np.zeros(2), np.full(2, 1e-12)
    np.testing.assert_array_equal(flat_active_bounds(np.array([1e-12, 2e-13]), lb, ub), [1, -1])


# ---------------------------------------------------------------------------------------------
# Every bounded method, on a pytree.


@pytest.mark.parametrize("method", BOUNDED_METHODS)
def test_every_bounded_method_reports_the_clipped_coordinates(method):
    res = minimize(_distance, _x0(), method=method, bounds=Bounds(LOWER, UPPER))
    assert set(res.active_bounds) == {"a", "b"}
    for key, expected in EXPECTED.items():
        got = res.active_bounds[key]
        assert isinstance(got, np.ndarray) and got.dtype == np.int8
        np.testing.assert_array_equal(got, expected, err_msg=f"{method} at {key}")


@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "SLSQP", "trust-constr"])
def test_agrees_with_least_squares_active_mask(method):
    rng = np.random.default_rng(3)
    target = rng.normal(scale=2.0, size=8)
    lb, ub = np.full(8, -1.0), np.full(8, 1.5)
    mask = sopt.least_squares(lambda x: x - target, np.zeros(8), bounds=(lb, ub)).active_mask
    assert set(mask) == {-1, 0, 1}  # the draw exercises all three cases

    res = minimize(
        lambda p: 0.5 * jnp.sum((jnp.concatenate([p[0], p[1]]) - target) ** 2),
        [np.zeros(3), np.zeros(5)],
        method=method,
        bounds=Bounds(-1.0, 1.5),
    )
    np.testing.assert_array_equal(np.concatenate(res.active_bounds), mask)


def test_trust_constr_with_constraints_reads_the_bounds_multipliers():
    # min (u - 3)^2 + (v + 3)^2 + (w - 1)^2 on 0 <= . <= 2 with w <= 0.5: u = 2 and v = 0 at
    # their bounds, w = 0.5 held by the constraint, not by a bound.
    res = minimize(
        lambda x: (x["u"] - 3.0) ** 2 + (x["v"] + 3.0) ** 2 + (x["w"] - 1.0) ** 2,
        {"u": 1.0, "v": 1.0, "w": 0.0},
        method="trust-constr",
        bounds=Bounds(0.0, 2.0),
        constraints=[LinearConstraint(lambda x: x["w"], ub=0.5)],
    )
    assert res.success
    got = {k: int(v) for k, v in res.active_bounds.items()}
    assert got == {"u": 1, "v": -1, "w": 0}


def test_scipy_bounds_on_a_single_array_and_float32():
    res = minimize(
        lambda x: jnp.sum((x - jnp.array([-3.0, 0.25, 3.0], jnp.float32)) ** 2),
        np.zeros(3, np.float32),
        method="L-BFGS-B",
        bounds=sopt.Bounds(-1.0, 1.0),
    )
    np.testing.assert_array_equal(res.active_bounds, [-1, 0, 1])


def test_free_solution_inside_the_box_is_all_zeros():
    res = minimize(_distance, _x0(), method="L-BFGS-B", bounds=Bounds(-10.0, 10.0))
    np.testing.assert_array_equal(res.active_bounds["a"], [0, 0])
    np.testing.assert_array_equal(res.active_bounds["b"], [[0, 0]])


def test_unbounded_call_has_no_active_bounds():
    res = minimize(_distance, _x0(), method="L-BFGS-B")
    assert "active_bounds" not in res


def test_numpy_port_reports_active_bounds():
    from pytree_minimize.ports.numpy import minimize as np_minimize

    def value_and_grad(p):
        value = sum(float(np.sum((p[k] - TARGET[k]) ** 2)) for k in TARGET)
        return value, {k: 2 * (p[k] - TARGET[k]) for k in TARGET}

    res = np_minimize(
        value_and_grad, _x0(), jac=True, method="L-BFGS-B", bounds=Bounds(LOWER, UPPER)
    )
    for key, expected in EXPECTED.items():
        np.testing.assert_array_equal(res.active_bounds[key], expected)


def test_torch_port_reports_active_bounds():
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports.torch import minimize as torch_minimize

    target = {k: torch.tensor(v) for k, v in TARGET.items()}
    res = torch_minimize(
        lambda p: sum(torch.sum((p[k] - target[k]) ** 2) for k in target),
        {k: torch.tensor(v) for k, v in _x0().items()},
        method="L-BFGS-B",
        bounds=Bounds(LOWER, UPPER),
    )
    for key, expected in EXPECTED.items():
        np.testing.assert_array_equal(res.active_bounds[key], expected)
