"""Constraints on pytrees: every form with every method that takes it, multipliers shaped like
each constraint's output, parity with scipy on the flat problem (Hock-Schittkowski problems from
sif2jax), no dense n-by-n Hessian for trust-constr, and errors for bad input."""

from __future__ import annotations

import tracemalloc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from scipy.sparse.linalg import LinearOperator

from pytree_minimize import Bounds, LinearConstraint, minimize
from pytree_minimize._minimize import driver as _driver

CONSTRAINED = ("SLSQP", "trust-constr", "COBYLA", "COBYQA")
WITH_MULTIPLIERS = ("SLSQP", "trust-constr")

# ---------------------------------------------------------------------------------------------
# HS71 with x split across a pytree: f = x1 x4 (x1 + x2 + x3) + x3, x1 x2 x3 x4 >= 25,
# x1^2 + x2^2 + x3^2 + x4^2 = 40, 1 <= x <= 5. Published optimum 17.0140173 at
# (1, 4.742999, 3.821150, 1.379408).

HS71_F = 17.0140173
HS71_X = np.array([1.0, 4.742999, 3.821150, 1.379408])


def hs71_tree(y: Any) -> dict[str, Any]:
    return {"a": y[:2], "b": {"c": y[2], "d": y[3]}}


def hs71_flat(x: dict[str, Any]) -> jax.Array:
    return jnp.concatenate([x["a"], jnp.stack([x["b"]["c"], x["b"]["d"]])])


def hs71_objective(x: dict[str, Any]) -> jax.Array:
    y = hs71_flat(x)
    return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]


def hs71_eq(x: dict[str, Any]) -> dict[str, jax.Array]:
    return {"sq": jnp.sum(hs71_flat(x) ** 2) - 40.0}


def hs71_ineq(x: dict[str, Any]) -> dict[str, jax.Array]:
    return {"prod": jnp.prod(hs71_flat(x)) - 25.0}


def hs71_x0(dtype: Any = jnp.float64) -> dict[str, Any]:
    return hs71_tree(jnp.array([1.0, 5.0, 5.0, 1.0], dtype=dtype))


def _jacobian_tree(fun: Any) -> Any:
    """A user `jac` in pytree form: what `jax.jacrev` returns."""
    return jax.jacrev(fun)


def _dense_jacobian(fun: Any, key: str) -> Any:
    """A user `jac` as the dense (m, n) matrix over the flat vectors (leaves in optree order:
    x['a'], x['b']['c'], x['b']['d'] -- the order of `hs71_flat`)."""

    def jac(x: Any) -> np.ndarray:
        row = lambda y: jnp.atleast_1d(fun(hs71_tree(y))[key])
        return np.asarray(jax.jacrev(row)(hs71_flat(x)))

    return jac


def _dense_hess(fun: Any, key: str) -> Any:
    """A user `hess(x, v)` returning the dense Hessian of `v . c(x)` over the flat vector."""
    hessian = jax.jit(jax.hessian(lambda y, w: w * fun(hs71_tree(y))[key]))

    def hess(x: Any, v: Any) -> np.ndarray:
        assert set(v) == {key}, v  # v is shaped like the constraint's output
        return np.asarray(hessian(hs71_flat(x), jnp.asarray(v[key])))

    return hess


def _hs71_forms() -> dict[str, Any]:
    both = lambda x: {"sq": jnp.sum(hs71_flat(x) ** 2), "prod": jnp.prod(hs71_flat(x))}
    return {
        "dict": [{"type": "eq", "fun": hs71_eq}, {"type": "ineq", "fun": hs71_ineq}],
        "dict-args": [
            {
                "type": "eq",
                "fun": lambda x, r: {"sq": jnp.sum(hs71_flat(x) ** 2) - r},
                "args": (40.0,),
            },
            {
                "type": "ineq",
                "fun": lambda x, p: {"prod": jnp.prod(hs71_flat(x)) - p},
                "args": (jnp.asarray(25.0),),
            },
        ],
        "dict-jac-pytree": [
            {"type": "eq", "fun": hs71_eq, "jac": _jacobian_tree(hs71_eq)},
            {"type": "ineq", "fun": hs71_ineq, "jac": _jacobian_tree(hs71_ineq)},
        ],
        "dict-jac-dense": [
            {"type": "eq", "fun": hs71_eq, "jac": _dense_jacobian(hs71_eq, "sq")},
            {"type": "ineq", "fun": hs71_ineq, "jac": _dense_jacobian(hs71_ineq, "prod")},
        ],
        "nonlinear": [
            sopt.NonlinearConstraint(hs71_eq, 0.0, 0.0),
            sopt.NonlinearConstraint(hs71_ineq, 0.0, np.inf),
        ],
        "nonlinear-pytree-bounds": sopt.NonlinearConstraint(
            both, {"sq": 40.0, "prod": 25.0}, {"sq": 40.0, "prod": None}
        ),
        "nonlinear-jac-hess": [
            sopt.NonlinearConstraint(
                hs71_eq, 0.0, 0.0, jac=_jacobian_tree(hs71_eq), hess=_dense_hess(hs71_eq, "sq")
            ),
            sopt.NonlinearConstraint(
                hs71_ineq,
                0.0,
                np.inf,
                jac=_jacobian_tree(hs71_ineq),
                hess=_dense_hess(hs71_ineq, "prod"),
            ),
        ],
        "mixed": (
            {"type": "eq", "fun": hs71_eq},
            sopt.NonlinearConstraint(lambda x: jnp.prod(hs71_flat(x)), 25.0, np.inf),
        ),
    }


_DERIVATIVE_FORMS = ("dict-jac-pytree", "dict-jac-dense", "nonlinear-jac-hess")


@pytest.mark.parametrize(
    ("form", "method"),
    [
        (form, method)
        for form in _hs71_forms()
        for method in CONSTRAINED
        # Derivative-free methods never call a constraint's jac or hess.
        if not (method in ("COBYLA", "COBYQA") and form in _DERIVATIVE_FORMS)
    ],
)
def test_hs71_every_form_every_method(form: str, method: str, x64: None) -> None:
    res = minimize(
        hs71_objective,
        hs71_x0(),
        method=method,
        bounds=Bounds(1.0, 5.0),
        constraints=_hs71_forms()[form],
    )
    assert isinstance(res.x, dict) and set(res.x) == {"a", "b"}
    assert res.x["a"].shape == (2,) and res.x["b"]["c"].shape == ()
    # trust-constr stops at its default gtol/xtol, a little short of the published digits;
    # COBYQA stops 4e-4 short of feasibility on HS71 (scipy on the flat problem too).
    tol = 1e-6 if method == "SLSQP" else 5e-5
    assert abs(res.fun - HS71_F) <= tol * HS71_F
    np.testing.assert_allclose(np.asarray(hs71_flat(res.x)), HS71_X, atol=2e-3)
    violation = max(abs(float(hs71_eq(res.x)["sq"])), max(0.0, -float(hs71_ineq(res.x)["prod"])))
    assert violation < (1e-5 if method in WITH_MULTIPLIERS else 1e-3)


def test_hs71_reaches_published_optimum_with_slsqp(x64: None) -> None:
    res = minimize(
        hs71_objective,
        hs71_x0(),
        bounds=Bounds(1.0, 5.0),
        constraints=[{"type": "eq", "fun": hs71_eq}, {"type": "ineq", "fun": hs71_ineq}],
    )
    assert res.success
    assert abs(float(res.fun) - HS71_F) < 1e-6


def test_float32_leaves_with_x64_off() -> None:
    """Constraints work on float32 pytrees without enabling x64. (trust-constr: SLSQP's line
    search is fragile on float32 values; it may stop on "Positive directional derivative".)"""
    assert not jax.config.read("jax_enable_x64")
    res = minimize(
        hs71_objective,
        hs71_x0(jnp.float32),
        method="trust-constr",
        bounds=Bounds(1.0, 5.0),
        constraints=[{"type": "eq", "fun": hs71_eq}, {"type": "ineq", "fun": hs71_ineq}],
    )
    assert res.success, res.message
    assert res.x["a"].dtype == jnp.float32
    assert abs(res.fun - HS71_F) < 1e-3


# ---------------------------------------------------------------------------------------------
# Multipliers: one pytree per constraint, shaped like its output, one sign convention.


@pytest.mark.parametrize("method", WITH_MULTIPLIERS)
def test_multipliers_shaped_like_outputs_and_consistent(method: str, x64: None) -> None:
    # A pytree output with an active lower bound ('prod') and an inactive upper one ('cap').
    both = lambda x: {"prod": jnp.prod(hs71_flat(x)), "cap": x["a"]}
    res = minimize(
        hs71_objective,
        hs71_x0(),
        method=method,
        bounds=Bounds(1.0, 5.0),
        constraints=[
            {"type": "eq", "fun": hs71_eq},
            sopt.NonlinearConstraint(both, {"prod": 25.0, "cap": None}, {"prod": None, "cap": 4.9}),
        ],
    )
    first, second = res.constraint_multipliers
    assert set(first) == {"sq"} and np.shape(first["sq"]) == ()
    assert set(second) == {"prod", "cap"} and np.shape(second["cap"]) == (2,)
    assert isinstance(second["cap"], np.ndarray) and second["cap"].dtype == np.float64
    np.testing.assert_allclose(second["cap"], 0.0, atol=1e-4)  # interior point: not exactly 0
    assert second["prod"] > 0.1  # pushes against its lower bound
    # scipy's own fields stay as scipy returns them.
    if method == "SLSQP":
        assert np.shape(res.multipliers) == (4,)  # 1 equality, 1 lower and 2 upper rows
    else:
        assert len(res.v) == 3  # the two constraints, then the bounds
    # KKT on the coordinates away from their bounds (x2, x3, x4; x1 sits at 1): grad f equals
    # sum_i J_i^T lambda_i.
    x = res.x
    grad = np.asarray(hs71_flat(jax.grad(hs71_objective)(x)))
    j_sq = np.asarray(hs71_flat(jax.grad(lambda y: hs71_eq(y)["sq"])(x)))
    j_prod = np.asarray(hs71_flat(jax.grad(lambda y: hs71_ineq(y)["prod"])(x)))
    combined = float(first["sq"]) * j_sq + float(second["prod"]) * j_prod
    np.testing.assert_allclose(grad[1:], combined[1:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", WITH_MULTIPLIERS)
def test_multiplier_sign_on_an_upper_bound(method: str, x64: None) -> None:
    """The same inequality stated as `-prod <= -25` has the opposite multiplier, and each is
    the rate of change of the optimum as that bound moves."""
    lower = [{"type": "eq", "fun": hs71_eq}, sopt.NonlinearConstraint(hs71_ineq, 0.0, np.inf)]
    upper = [
        {"type": "eq", "fun": hs71_eq},
        sopt.NonlinearConstraint(lambda x: -jnp.prod(hs71_flat(x)), -np.inf, -25.0),
    ]
    run = lambda cons: minimize(
        hs71_objective, hs71_x0(), method=method, bounds=Bounds(1.0, 5.0), constraints=cons
    )
    lam_lower = float(run(lower).constraint_multipliers[1]["prod"])
    lam_upper = float(run(upper).constraint_multipliers[1])
    assert lam_lower > 0.1
    np.testing.assert_allclose(lam_upper, -lam_lower, rtol=1e-3)
    # Sensitivity: raise the lower bound 25 -> 25 + h; the optimum rises by about lambda h.
    if method == "SLSQP":
        h = 1e-4
        shifted = [
            {"type": "eq", "fun": hs71_eq},
            sopt.NonlinearConstraint(hs71_ineq, h, np.inf),
        ]
        slope = (run(shifted).fun - run(lower).fun) / h
        np.testing.assert_allclose(slope, lam_lower, rtol=1e-3)


def test_slsqp_multipliers_equal_scipy_for_dicts(x64: None) -> None:
    res = minimize(
        hs71_objective,
        hs71_x0(),
        method="SLSQP",
        bounds=Bounds(1.0, 5.0),
        constraints=[{"type": "ineq", "fun": hs71_ineq}, {"type": "eq", "fun": hs71_eq}],
    )
    # SLSQP orders its multipliers equalities first.
    eq, ineq = res.multipliers
    assert float(res.constraint_multipliers[1]["sq"]) == eq
    assert float(res.constraint_multipliers[0]["prod"]) == ineq


def test_trust_constr_multipliers_are_minus_v(x64: None) -> None:
    res = minimize(
        hs71_objective,
        hs71_x0(),
        method="trust-constr",
        bounds=Bounds(1.0, 5.0),
        constraints=[
            sopt.NonlinearConstraint(hs71_eq, 0.0, 0.0),
            sopt.NonlinearConstraint(hs71_ineq, 0.0, np.inf),
        ],
    )
    assert float(res.constraint_multipliers[0]["sq"]) == -res.v[0][0]
    assert float(res.constraint_multipliers[1]["prod"]) == -res.v[1][0]


def test_derivative_free_methods_report_no_multipliers(x64: None) -> None:
    res = minimize(
        hs71_objective,
        hs71_x0(),
        method="COBYLA",
        bounds=Bounds(1.0, 5.0),
        constraints=[{"type": "eq", "fun": hs71_eq}, {"type": "ineq", "fun": hs71_ineq}],
    )
    assert "constraint_multipliers" not in res


# ---------------------------------------------------------------------------------------------
# The portfolio example: weights as a dict per asset class, sum to one, long only, and a target
# return. With the long-only bounds inactive the answer has a closed form.

ORDER = ("equities", "bonds", "commodities")
SIZES = {"equities": 3, "bonds": 2, "commodities": 1}
MU_FLAT = np.array([0.08, 0.10, 0.12, 0.03, 0.04, 0.06])
VOL = np.array([0.14, 0.18, 0.22, 0.04, 0.06, 0.15])


def _portfolio_data() -> tuple[dict[str, jax.Array], np.ndarray]:
    corr = np.full((6, 6), 0.2)
    np.fill_diagonal(corr, 1.0)
    corr[3:5, 3:5] = [[1.0, 0.6], [0.6, 1.0]]
    cov = corr * np.outer(VOL, VOL)
    mu, start = {}, 0
    for name in ORDER:
        mu[name] = jnp.asarray(MU_FLAT[start : start + SIZES[name]])
        start += SIZES[name]
    return mu, cov


def _stack(w: dict[str, Any]) -> jax.Array:
    return jnp.concatenate([jnp.atleast_1d(w[name]) for name in ORDER])


def _variance(w: dict[str, Any], cov: jax.Array) -> jax.Array:
    v = _stack(w)
    return v @ cov @ v


def _total(w: dict[str, Any]) -> jax.Array:
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(w))


def _expected_return(w: dict[str, Any], mu: dict[str, Any]) -> jax.Array:
    return sum(jnp.dot(mu[name], w[name]) for name in ORDER)


def _equal_weights() -> dict[str, jax.Array]:
    return {name: jnp.full(SIZES[name], 1.0 / 6.0) for name in ORDER}


def _closed_form(cov: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray]:
    """argmin w' C w s.t. 1'w = 1, mu'w = target, and the multipliers (grad f = A' lambda)."""
    a = np.stack([np.ones(6), MU_FLAT])
    s = np.linalg.solve(cov, a.T)
    half = np.linalg.solve(a @ s, np.array([1.0, target]))
    return s @ half, 2.0 * half


def _portfolio_constraints(form: str, mu: dict[str, Any], target: float) -> list[Any]:
    if form == "linear":
        return [
            LinearConstraint(_total, lb=1.0, ub=1.0),
            LinearConstraint(_expected_return, lb=target, args=(mu,)),
        ]
    if form == "dict":
        return [
            {"type": "eq", "fun": lambda w: _total(w) - 1.0},
            {"type": "ineq", "fun": lambda w, mu: _expected_return(w, mu) - target, "args": (mu,)},
        ]
    return [
        sopt.NonlinearConstraint(_total, 1.0, 1.0),
        sopt.NonlinearConstraint(lambda w: _expected_return(w, mu), target, np.inf),
    ]


@pytest.mark.parametrize("method", CONSTRAINED)
@pytest.mark.parametrize("form", ["linear", "dict", "nonlinear"])
def test_portfolio_matches_closed_form(form: str, method: str, x64: None) -> None:
    mu, cov = _portfolio_data()
    target = 0.07
    res = minimize(
        _variance,
        _equal_weights(),
        args=(jnp.asarray(cov),),
        method=method,
        bounds=Bounds(lb=0.0),
        constraints=_portfolio_constraints(form, mu, target),
        tol=1e-10,
    )
    weights, multipliers = _closed_form(cov, target)
    assert set(res.x) == set(ORDER) and res.x["equities"].shape == (3,)
    # The variance is flat near its minimum: scipy's own flat SLSQP stops 3e-5 from the closed
    # form even with tol=1e-10.
    atol = 1e-3 if method in ("COBYLA", "trust-constr") else 1e-4
    np.testing.assert_allclose(np.asarray(_stack(res.x)), weights, atol=atol)
    if method in WITH_MULTIPLIERS:
        budget, ret = res.constraint_multipliers
        np.testing.assert_allclose([float(budget), float(ret)], multipliers, atol=1e-3, rtol=1e-2)


def test_portfolio_long_only_active_matches_flat_scipy(x64: None) -> None:
    """A target that the closed form reaches only by shorting: the bounds bind; compare with
    scipy on the flat problem."""
    mu, cov = _portfolio_data()
    target = 0.09
    res = minimize(
        _variance,
        _equal_weights(),
        args=(jnp.asarray(cov),),
        method="SLSQP",
        bounds=Bounds(lb=0.0),
        constraints=_portfolio_constraints("linear", mu, target),
    )
    flat = sopt.minimize(
        lambda v: v @ cov @ v,
        np.full(6, 1.0 / 6.0),
        jac=lambda v: 2.0 * cov @ v,
        method="SLSQP",
        bounds=sopt.Bounds(0.0, np.inf),
        constraints=[
            sopt.LinearConstraint(np.ones((1, 6)), 1.0, 1.0),
            sopt.LinearConstraint(MU_FLAT[None], target, np.inf),
        ],
    )
    assert flat.success and res.success
    np.testing.assert_allclose(np.asarray(_stack(res.x)), flat.x, atol=1e-7)
    assert np.asarray(_stack(res.x)).min() >= -1e-12
    assert min(flat.x) < 1e-8  # some bound binds, or the test is not testing that


@pytest.mark.parametrize("method", CONSTRAINED)
def test_scipy_linear_constraint_single_array(method: str, x64: None) -> None:
    _, cov = _portfolio_data()
    target = 0.07
    res = minimize(
        lambda v, c: v @ c @ v,
        jnp.full(6, 1.0 / 6.0),
        args=(jnp.asarray(cov),),
        method=method,
        bounds=sopt.Bounds(0.0, np.inf),
        constraints=[
            sopt.LinearConstraint(np.ones(6), 1.0, 1.0),
            sopt.LinearConstraint(MU_FLAT[None], [target], np.inf),
        ],
        tol=1e-10,
    )
    weights, _ = _closed_form(cov, target)
    # The variance is flat near its minimum: scipy's own flat SLSQP stops 3e-5 from the closed
    # form even with tol=1e-10.
    atol = 1e-3 if method in ("COBYLA", "trust-constr") else 1e-4
    np.testing.assert_allclose(np.asarray(res.x), weights, atol=atol)
    if method in WITH_MULTIPLIERS:
        assert [np.shape(m) for m in res.constraint_multipliers] == [(1,), (1,)]


def test_linear_constraint_reaches_scipy_as_linear(
    monkeypatch: pytest.MonkeyPatch, x64: None
) -> None:
    """trust-constr and COBYQA receive a real `scipy.optimize.LinearConstraint` (matrix computed
    once by autodiff), not a nonlinear function."""
    seen: list[Any] = []
    real = sopt.minimize

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.extend(kwargs["constraints"])
        return real(*args, **kwargs)

    # The driver calls scipy's `minimize` as bound at import (see `_driver._scipy_minimize`).
    monkeypatch.setattr(_driver, "_scipy_minimize", spy)
    mu, cov = _portfolio_data()
    minimize(
        _variance,
        _equal_weights(),
        args=(jnp.asarray(cov),),
        method="trust-constr",
        constraints=_portfolio_constraints("linear", mu, 0.07),
    )
    assert all(isinstance(c, sopt.LinearConstraint) for c in seen) and len(seen) == 2
    # Leaves in optree order: bonds (2), commodities (1), equities (3).
    np.testing.assert_allclose(seen[0].A, np.ones((1, 6)))
    np.testing.assert_allclose(seen[1].A, [[0.03, 0.04, 0.06, 0.08, 0.10, 0.12]])


def test_linear_constraint_with_offset_and_pytree_output(x64: None) -> None:
    """An affine `fun` with a dict output and pytree bounds: min |x|^2 s.t. x['a'] - 1 >= 0
    (elementwise) and x['a'][0] + x['b'] == 3."""
    con = LinearConstraint(
        lambda x: {"lo": x["a"] - 1.0, "sum": x["a"][0] + x["b"]},
        lb={"lo": 0.0, "sum": 3.0},
        ub={"lo": None, "sum": 3.0},
    )
    x0 = {"a": jnp.zeros(2), "b": jnp.asarray(0.0)}
    for method in CONSTRAINED:
        res = minimize(
            lambda x: jnp.sum(x["a"] ** 2) + x["b"] ** 2, x0, method=method, constraints=con
        )
        # a = (1.5, 1), b = 1.5 (a0 = b by symmetry, a1 at its bound).
        np.testing.assert_allclose(np.asarray(res.x["a"]), [1.5, 1.0], atol=1e-4)
        np.testing.assert_allclose(float(res.x["b"]), 1.5, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Parity with scipy on the flat problem: Hock-Schittkowski problems from sif2jax, x split across
# a pytree, constraint functions returning dicts; the flat reference gets exact Jacobians.

#: Checked against scipy on the flat problem; each name is (module, class). The SLSQP list has
#: equality, inequality and mixed constraints, with and without bounds.
HS_SLSQP = (
    "HS14",
    "HS15",
    "HS21",
    "HS28",
    "HS35",
    "HS39",
    "HS40",
    "HS42",
    "HS43",
    "HS44",
    "HS48",
    "HS53",
    "HS60",
    "HS63",
    "HS65",
    "HS71",
    "HS77",
    "HS78",
    "HS80",
)
HS_OTHERS = ("HS28", "HS42", "HS63", "HS71")


def _hs_split(y: Any) -> dict[str, Any]:
    return {"first": y[0], "rest": {"tail": y[1:]}}


def _hs_join(x: dict[str, Any]) -> jax.Array:
    return jnp.concatenate([x["first"][None], x["rest"]["tail"]])


def _hs_parity(
    problem: Any, method: str, reference_class: Any
) -> tuple[np.ndarray, sopt.OptimizeResult, Any]:
    y0 = np.asarray(problem.y0, dtype=np.float64)
    n = y0.size
    objective = lambda y: problem.objective(y, problem.args)
    eq0, ineq0 = problem.constraint(problem.y0)
    flat_cons: list[Any] = []
    tree_cons: list[Any] = []
    for position, kind, present in ((0, "eq", eq0), (1, "ineq", ineq0)):
        if present is None:
            continue
        c = lambda y, i=position: jnp.atleast_1d(problem.constraint(y)[i])
        ub = 0.0 if kind == "eq" else np.inf
        jac = jax.jit(jax.jacfwd(c))
        if method == "SLSQP":
            flat_cons.append({"type": kind, "fun": jax.jit(c), "jac": jac})
            tree_cons.append(
                {
                    "type": kind,
                    "fun": lambda x, i=position, k=kind: {k: problem.constraint(_hs_join(x))[i]},
                }
            )
            continue
        hvp = jax.jit(
            lambda y, v, p, c=c: jax.jvp(jax.grad(lambda z: jnp.dot(c(z), v)), (y,), (p,))[1]
        )

        def hess(y: np.ndarray, v: np.ndarray, hvp: Any = hvp) -> LinearOperator:
            return LinearOperator(
                (n, n), matvec=lambda p: np.asarray(hvp(y, v, np.asarray(p, float).ravel()))
            )

        flat_cons.append(sopt.NonlinearConstraint(jax.jit(c), 0.0, ub, jac=jac, hess=hess))
        tree_cons.append(
            sopt.NonlinearConstraint(
                lambda x, i=position, k=kind: {k: problem.constraint(_hs_join(x))[i]}, 0.0, ub
            )
        )
    flat_bounds = tree_bounds = None
    if problem.bounds is not None:
        lb, ub = (np.asarray(v, dtype=np.float64) for v in problem.bounds)
        flat_bounds = sopt.Bounds(lb, ub)
        tree_bounds = Bounds(_hs_split(lb), _hs_split(ub))
    reference = reference_class(objective).minimize(
        y0, method, bounds=flat_bounds, constraints=flat_cons
    )
    ours = minimize(
        lambda x: problem.objective(_hs_join(x), problem.args),
        _hs_split(jnp.asarray(y0)),
        method=method,
        bounds=tree_bounds,
        constraints=tree_cons,
    )
    return np.asarray(_hs_join(ours.x)), reference, ours


@pytest.mark.parametrize(
    ("method", "name"),
    [("SLSQP", name) for name in HS_SLSQP]
    + [(m, name) for m in ("trust-constr", "COBYLA", "COBYQA") for name in HS_OTHERS],
)
def test_hock_schittkowski_parity(
    method: str, name: str, cutest: Any, flat_reference: Any, x64: None
) -> None:
    problem = cutest("_constrained_minimisation", name.lower(), name)
    x, reference, ours = _hs_parity(problem, method, flat_reference)
    scale = 1.0 + np.max(np.abs(reference.x))
    assert np.max(np.abs(x - reference.x)) <= 1e-6 * scale
    assert abs(ours.fun - reference.fun) <= 1e-8 * (1.0 + abs(reference.fun))
    assert ours.success == reference.success
    if method == "SLSQP":
        # The flat reference itself reaches the published optimum on this list.
        expected = float(problem.expected_objective_value)
        assert abs(reference.fun - expected) <= 1e-5 * (1.0 + abs(expected))


# ---------------------------------------------------------------------------------------------
# trust-constr on 1,000 variables with one nonlinear constraint builds no 1,000-by-1,000 array.

N_LARGE = 1000


def _large_problem() -> tuple[Any, dict[str, jax.Array], tuple[Any, ...], Any]:
    rng = np.random.default_rng(0)
    a = {
        "w": jnp.asarray(rng.normal(size=600), jnp.float32),
        "b": jnp.asarray(rng.normal(size=400), jnp.float32),
    }

    def f(x: Any, a: Any) -> jax.Array:
        return sum(jnp.sum((x[k] - a[k]) ** 2 + 0.1 * jnp.cos(x[k])) for k in x)

    def c(x: Any) -> jax.Array:
        return jnp.sum(x["w"] ** 2) + jnp.sum(x["b"] ** 4)

    x0 = {"w": jnp.full(600, 0.01, jnp.float32), "b": jnp.full(400, 0.01, jnp.float32)}
    return f, x0, (a,), c


def _host_peak(run: Any) -> int:
    """Peak bytes NumPy and Python allocate on the host during `run()` (NumPy reports its array
    buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class _LoweredShapes:
    """Wraps `jax.jit` to record the StableHLO of every function the backend compiles, so a test
    can look for an n-by-n tensor inside the compiled evaluations."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._jit = jax.jit

    def __call__(self, fun: Any, **kwargs: Any) -> Any:
        compiled = self._jit(fun, **kwargs)
        lowered: list[bool] = []

        def call(*args: Any) -> Any:
            if not lowered:
                self.texts.append(compiled.lower(*args).as_text())
                lowered.append(True)
            return compiled(*args)

        return call

    def has_square(self, n: int) -> bool:
        return any(f"{n}x{n}x" in text for text in self.texts)


def test_trust_constr_large_problem_builds_no_dense_hessian(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f, x0, args, c = _large_problem()
    # Compiled once beforehand, so that tracing does not count towards the host peak.
    minimize(
        f,
        x0,
        args=args,
        method="trust-constr",
        constraints=sopt.NonlinearConstraint(c, -np.inf, 1.0),
        options={"maxiter": 2},
    )

    results = []
    peak = _host_peak(
        lambda: results.append(
            minimize(
                f,
                x0,
                args=args,
                method="trust-constr",
                constraints=sopt.NonlinearConstraint(c, -np.inf, 1.0),
            )
        )
    )
    res = results[0]
    assert res.success and float(c(res.x)) <= 1.0 + 1e-5
    dense_bytes = N_LARGE * N_LARGE * 4  # float32: the smallest a dense Hessian could be
    assert peak < dense_bytes / 2, peak  # measured: about 0.5 MB, against 4 MB

    # Inside the compiled evaluations: no 1000x1000 tensor in any of them (fresh functions, so
    # the backend compiles them anew under the spy).
    shapes = _LoweredShapes()
    monkeypatch.setattr(jax, "jit", shapes)
    g = lambda x, a: f(x, a)
    d = lambda x: c(x)
    minimize(
        g,
        x0,
        args=args,
        method="trust-constr",
        constraints=sopt.NonlinearConstraint(d, -np.inf, 1.0),
        options={"maxiter": 3},
    )
    assert len(shapes.texts) >= 4  # objective, its hvp, constraint values, Jacobian, hvp
    assert not shapes.has_square(N_LARGE)


def test_dense_hessian_detectors_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both detectors above see an n-by-n array when one is built: a quasi-Newton constraint
    Hessian (SR1, passed through to scipy) on the host; a dense objective Hessian
    (trust-exact) inside the compiled evaluations."""
    f, x0, args, c = _large_problem()
    constraint = sopt.NonlinearConstraint(c, -np.inf, 1.0, hess=sopt.SR1())
    minimize(
        f, x0, args=args, method="trust-constr", constraints=constraint, options={"maxiter": 2}
    )
    peak = _host_peak(
        lambda: minimize(
            f,
            x0,
            args=args,
            method="trust-constr",
            constraints=sopt.NonlinearConstraint(c, -np.inf, 1.0, hess=sopt.SR1()),
            options={"maxiter": 3},
        )
    )
    assert peak > N_LARGE * N_LARGE * 4

    shapes = _LoweredShapes()
    monkeypatch.setattr(jax, "jit", shapes)
    g = lambda x, a: f(x, a)
    minimize(g, x0, args=args, method="trust-exact", options={"maxiter": 1})
    assert shapes.has_square(N_LARGE)


# ---------------------------------------------------------------------------------------------
# Derivatives: forward or reverse mode by output versus input size; user jac and hess.


@pytest.mark.parametrize(("m", "mode"), [(1, "jacrev"), (8, "jacfwd")])
def test_jacobian_mode_follows_sizes(m: int, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for name in ("jacfwd", "jacrev"):
        real = getattr(jax, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(jax, name, spy)
    x0 = {"a": jnp.ones(2), "b": jnp.ones(2)}  # n = 4
    con = {"type": "ineq", "fun": lambda x: jnp.full(m, 10.0) - jnp.sum(x["a"] ** 2)}
    minimize(lambda x: jnp.sum(x["a"] ** 2 + x["b"] ** 2), x0, method="SLSQP", constraints=con)
    assert calls == [mode]


def test_user_hessian_strategy_passes_through(x64: None) -> None:
    res = minimize(
        hs71_objective,
        hs71_x0(),
        method="trust-constr",
        bounds=Bounds(1.0, 5.0),
        constraints=[
            sopt.NonlinearConstraint(hs71_eq, 0.0, 0.0, hess=sopt.SR1()),
            sopt.NonlinearConstraint(hs71_ineq, 0.0, np.inf, hess=sopt.SR1()),
        ],
    )
    assert abs(res.fun - HS71_F) < 1e-3


def test_user_jac_and_hess_receive_pytrees(x64: None) -> None:
    seen: dict[str, Any] = {}

    def jac(x: Any) -> Any:
        seen["jac_x"] = x
        return jax.jacrev(hs71_eq)(x)

    def hess(x: Any, v: Any) -> Any:
        seen["hess_x"], seen["hess_v"] = x, v
        return _dense_hess(hs71_eq, "sq")(x, v)

    minimize(
        hs71_objective,
        hs71_x0(),
        method="trust-constr",
        bounds=Bounds(1.0, 5.0),
        constraints=[
            sopt.NonlinearConstraint(hs71_eq, 0.0, 0.0, jac=jac, hess=hess),
            {"type": "ineq", "fun": hs71_ineq},
        ],
        options={"maxiter": 5},
    )
    assert set(seen["jac_x"]) == {"a", "b"} and isinstance(seen["jac_x"]["a"], jax.Array)
    assert set(seen["hess_x"]) == {"a", "b"}
    assert set(seen["hess_v"]) == {"sq"} and np.shape(seen["hess_v"]["sq"]) == ()


# ---------------------------------------------------------------------------------------------
# Bad input: TypeError or ValueError naming `constraints` and saying what was expected.


def _run(constraints: Any, method: str = "SLSQP", x0: Any = None) -> Any:
    x0 = {"a": jnp.ones(2), "b": jnp.asarray(1.0)} if x0 is None else x0
    return minimize(
        lambda x: jnp.sum(x["a"] ** 2) + x["b"] ** 2, x0, method=method, constraints=constraints
    )


ok = lambda x: x["a"][0] - 0.5


@pytest.mark.parametrize(
    ("constraints", "error", "match"),
    [
        (
            {"type": "bogus", "fun": ok},
            ValueError,
            r"`constraints\[0\]\['type'\]` is 'bogus'.*'eq'",
        ),
        ({"fun": ok}, ValueError, r"`constraints\[0\]\['type'\]` is None"),
        ({"type": "eq", "fun": 3.0}, TypeError, r"`constraints\[0\]\['fun'\]` must be callable"),
        ({"type": "eq", "fun": ok, "hess": ok}, ValueError, r"constraints\[0\]` has unknown key"),
        ({"type": "eq", "fun": ok, "jac": "2-point"}, TypeError, r"constraints\[0\]\['jac'\]"),
        ([{"type": "eq", "fun": ok}, ("eq", ok)], TypeError, r"`constraints\[1\]` is a tuple"),
        ("eq", TypeError, r"`constraints` must be one constraint or a list"),
        (3, TypeError, r"`constraints` must be one constraint or a list"),
        (
            {"type": "eq", "fun": lambda x: "no"},
            TypeError,
            r"`constraints\[0\]`'s function returned a str at `constraints\[0\]\(x\)`",
        ),
        (
            {"type": "eq", "fun": lambda x: {"a": ok(x), "b": object()}},
            TypeError,
            r"returned a object at `constraints\[0\]\(x\)\['b'\]`.*array or a pytree",
        ),
        ({"type": "eq", "fun": lambda x: None}, ValueError, r"holds no values"),
        ({"type": "eq", "fun": lambda x: jnp.zeros(0)}, ValueError, r"no elements"),
        ({"type": "eq", "fun": lambda x: jnp.arange(2)}, TypeError, r"dtype int32.*floating"),
        ({"type": "eq", "fun": lambda x: x["a"] * 1j}, TypeError, r"complex values.*real"),
        (
            sopt.NonlinearConstraint(lambda x: x["a"], [0.0, 1.0, 2.0], np.inf),
            ValueError,
            r"`constraints\[0\].lb` has shape \(3,\); expected a scalar.*\(2,\)",
        ),
        (
            sopt.NonlinearConstraint(lambda x: {"p": x["a"], "q": x["b"]}, {"p": 0.0}, np.inf),
            ValueError,
            r"`constraints\[0\].lb` must be a scalar, a pytree like the constraint's "
            r"output",
        ),
        (
            sopt.NonlinearConstraint(lambda x: {"p": x["a"]}, {"p": jnp.zeros(3)}, np.inf),
            ValueError,
            r"`constraints\[0\].lb\['p'\]` has shape \(3,\).*\(2,\)",
        ),
        (
            sopt.NonlinearConstraint(lambda x: {"p": x["a"]}, 1.0, {"p": [2.0, 0.0]}),
            ValueError,
            r"`constraints\[0\]` has lb > ub at `constraints\[0\]\(x\)\['p'\]` element \(1,\)",
        ),
        (
            sopt.NonlinearConstraint(lambda x: x["a"], np.nan, 1.0),
            ValueError,
            r"`constraints\[0\].lb` is NaN at `constraints\[0\]\(x\)` element \(0,\)",
        ),
        (
            sopt.NonlinearConstraint(lambda x: {"p": x["a"]}, 0.0, {"p": [1.0, np.nan]}),
            ValueError,
            r"`constraints\[0\].ub` is NaN at `constraints\[0\]\(x\)\['p'\]` element \(1,\)",
        ),
        (
            sopt.NonlinearConstraint(lambda x: x["a"], 0.0, 1.0, jac="cs"),
            ValueError,
            r"`constraints\[0\].jac` is 'cs'",
        ),
        (
            sopt.LinearConstraint(np.ones(3), 0.0, 1.0),
            TypeError,
            r"`constraints\[0\]` is scipy's `LinearConstraint`.*pytree_minimize.LinearConstraint",
        ),
        (
            LinearConstraint(lambda x: x["a"] ** 2, 0.0, 1.0),
            ValueError,
            r"`constraints\[0\]` is a `LinearConstraint`, but its function is not linear",
        ),
        (
            {"type": "eq", "fun": ok, "jac": lambda x: np.ones((2, 2))},
            ValueError,
            r"`constraints\[0\]`'s `jac` returned shape \(2, 2\); expected \(1, 3\)",
        ),
        (
            sopt.NonlinearConstraint(
                lambda x: {"p": x["a"]},
                0.0,
                1.0,
                jac=lambda x: {"p": {"a": jnp.eye(2)}},
            ),
            ValueError,
            r"`constraints\[0\].jac\(x\)\['p'\]` returned a pytree of structure",
        ),
        (
            sopt.NonlinearConstraint(
                lambda x: {"p": x["a"]},
                0.0,
                1.0,
                jac=lambda x: {"p": {"a": jnp.eye(2), "b": jnp.zeros(3)}},
            ),
            ValueError,
            r"`constraints\[0\].jac\(x\)\['p'\]` returned shape \(3,\) at `x0\['b'\]`; "
            r"expected \(2,\) \(output leaf \(2,\) by `x` leaf \(\)",
        ),
    ],
)
def test_bad_constraints(constraints: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _run(constraints)


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Nelder-Mead", "trust-exact"])
def test_method_without_constraints_warns_and_ignores_them(method: str) -> None:
    # As scipy: a RuntimeWarning, and the run goes on without them (the drop-in rule).
    with pytest.warns(RuntimeWarning, match=rf"{method} cannot handle constraints"):
        result = _run({"type": "ineq", "fun": ok}, method=method)
    assert "constraint_multipliers" not in result


def test_scipy_linear_constraint_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"`constraints\[0\].A` has shape \(1, 3\); expected"):
        _run(sopt.LinearConstraint(np.ones((1, 3)), 0.0, 1.0), x0=jnp.ones(2))


def test_constraint_function_errors_reach_caller_unchanged() -> None:
    class Boom(Exception):
        pass

    def bad(x: Any) -> Any:
        raise Boom("from the user's constraint")

    with pytest.raises(Boom, match="from the user's constraint"):
        _run({"type": "eq", "fun": bad})


def test_flat_bounds_vector_for_pytree_output() -> None:
    """`lb`/`ub` may also be a flat vector over the raveled output (leaves in optree order)."""
    con = sopt.NonlinearConstraint(lambda x: {"p": x["a"], "q": x["b"]}, [0.5, 0.6, 0.7], np.inf)
    res = _run(con)
    np.testing.assert_allclose(np.asarray(res.x["a"]), [0.5, 0.6], atol=1e-6)
    np.testing.assert_allclose(float(res.x["b"]), 0.7, atol=1e-6)


def test_numpy_port_without_autodiff_takes_every_form() -> None:
    """The NumPy backend has no autodiff: scipy's finite differences stand in for Jacobians, and
    the matrix of a `LinearConstraint` comes from unit steps (exact for an affine function)."""
    from pytree_minimize.ports import numpy as numpy_port

    def flat(x: Any) -> np.ndarray:
        return np.concatenate([x["a"], np.stack([x["b"]["c"], x["b"]["d"]])])

    def objective(x: Any) -> float:
        y = flat(x)
        return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]

    x0 = {"a": np.array([1.0, 5.0]), "b": {"c": np.array(5.0), "d": np.array(1.0)}}
    constraints = [
        {"type": "eq", "fun": lambda x: {"sq": np.sum(flat(x) ** 2) - 40.0}},
        sopt.NonlinearConstraint(lambda x: {"prod": np.prod(flat(x))}, {"prod": 25.0}, np.inf),
        LinearConstraint(lambda x: x["a"][1] + x["b"]["c"], ub=20.0),  # inactive
    ]
    for method in CONSTRAINED:
        res = numpy_port.minimize(
            objective, x0, method=method, bounds=Bounds(1.0, 5.0), constraints=constraints
        )
        assert abs(res.fun - HS71_F) < 1e-3, method
        if method in WITH_MULTIPLIERS:
            np.testing.assert_allclose(
                float(res.constraint_multipliers[1]["prod"]), 0.5523, rtol=1e-2
            )


@pytest.mark.parametrize("method", CONSTRAINED)
def test_variable_fixed_by_bounds(method: str, x64: None) -> None:
    """A leaf fixed by `lb == ub`. scipy 1.17's COBYLA and COBYQA drop it and then call
    nonlinear constraints with the shortened vector (libprima/prima#249); the package puts it
    back. trust-constr keeps iterates strictly inside the bounds, so b is 0.5 only nearly."""
    x0 = {"a": jnp.array([2.0, 2.0]), "b": jnp.asarray(0.5)}
    bounds = Bounds(lb={"a": -10.0, "b": 0.5}, ub={"a": 10.0, "b": 0.5})
    constraints = [
        {"type": "ineq", "fun": lambda x: x["a"][0] * x["b"] - 0.25},  # a0 >= 0.5
        LinearConstraint(lambda x: x["a"][1] - x["b"], lb=0.5),  # a1 >= 1.0
    ]
    res = minimize(
        lambda x: jnp.sum(x["a"] ** 2) + x["b"] ** 2,
        x0,
        method=method,
        bounds=bounds,
        constraints=constraints,
    )
    np.testing.assert_allclose(np.asarray(res.x["a"]), [0.5, 1.0], atol=1e-5)
    np.testing.assert_allclose(float(res.x["b"]), 0.5, atol=1e-7 if method == "trust-constr" else 0)
