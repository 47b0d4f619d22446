"""The driver: same path as scipy on the flat vector for every method, method choice, derivative
and bound pass-through, callbacks, and input errors.

Every comparison is against `scipy.optimize.minimize` run on the flat float64 vector of DESIGN.md
(leaves in `optree.tree_flatten` order, each raveled in C order), built here by hand, with exact
JAX derivatives in the form the method takes, or against closed forms and published optima.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from conftest import BOUNDED_METHODS, DERIVATIVE_FREE, METHODS

from pytree_minimize import Bounds, minimize

pytestmark = pytest.mark.usefixtures("x64")

# ---------------------------------------------------------------------------------------------
# Problem 1: chained Rosenbrock in 8 variables, split over a nested dict with a tuple inside.
# optree order: a.u (2x2, C order), b[0] (a Python float), b[1] (3,).


def rosen_x0() -> dict:
    start = [0.97]
    for _ in range(7):
        start.append(start[-1] ** 2 - 0.01)  # along the valley, where the Hessian is PD
    v = np.array(start)
    # Inserted out of sorted order: the layout follows optree's (sorted) key order.
    return {"b": (float(v[4]), jnp.asarray(v[5:8])), "a": {"u": v[0:4].reshape(2, 2).copy()}}


def rosen_unravel(v: Any) -> dict:
    return {"a": {"u": v[0:4].reshape(2, 2)}, "b": (v[4], v[5:8])}


def rosen_ravel(tree: dict) -> np.ndarray:
    return np.concatenate(
        [np.ravel(tree["a"]["u"]), np.ravel(tree["b"][0]), np.ravel(tree["b"][1])]
    ).astype(np.float64)


def rosen_tree(p: dict) -> jax.Array:
    x = jnp.concatenate([p["a"]["u"].ravel(), jnp.atleast_1d(p["b"][0]), p["b"][1]])
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_flat(v: jax.Array) -> jax.Array:
    return rosen_tree(rosen_unravel(v))


# Problem 2: L2-regularised logistic regression (strictly convex: the Hessian is PD everywhere),
# over a list holding a dict, a None subtree and a tuple; the data travel through `args`.
# optree order: [0]['w'] (3,), [2][0] (), [2][1] (1,).


def logistic_x0() -> list:
    return [{"w": np.array([0.3, -0.2, 0.1])}, None, (np.float64(0.0), np.array([0.5]))]


def logistic_unravel(v: Any) -> list:
    return [{"w": v[0:3]}, None, (v[3], v[4:5])]


def logistic_ravel(tree: list) -> np.ndarray:
    parts = [tree[0]["w"], tree[2][0], tree[2][1]]
    return np.concatenate([np.ravel(np.asarray(p)) for p in parts]).astype(np.float64)


def logistic_tree(p: list, a: jax.Array, y: jax.Array) -> jax.Array:
    w, (b, e) = p[0]["w"], p[2]
    z = a[:, :3] @ w + b + a[:, 3] * e[0]
    params = jnp.concatenate([w, jnp.atleast_1d(b), e])
    return jnp.mean(jnp.logaddexp(0.0, -y * z)) + 0.05 * jnp.sum(params**2)


def logistic_flat(v: jax.Array, a: jax.Array, y: jax.Array) -> jax.Array:
    return logistic_tree(logistic_unravel(v), a, y)


def logistic_args() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    a = rng.normal(size=(40, 4))
    y = np.sign(a @ np.array([1.0, -2.0, 0.5, 1.5]) + 0.3 + 0.5 * rng.normal(size=40))
    return a, y


PROBLEMS: dict[str, tuple[Any, ...]] = {
    "rosenbrock": (rosen_tree, rosen_flat, rosen_x0, rosen_ravel, lambda: ()),
    "logistic": (logistic_tree, logistic_flat, logistic_x0, logistic_ravel, logistic_args),
}

# Caps that keep the slow derivative-free methods short; both sides get the same options.
OPTIONS: dict[str, dict] = {
    "Nelder-Mead": {"maxiter": 300},
    "Powell": {"maxfev": 600},
    "COBYLA": {"maxiter": 120},
    "COBYQA": {"maxfev": 80},
}


@pytest.fixture(scope="module")
def references(flat_reference):
    return {name: flat_reference(problem[1]) for name, problem in PROBLEMS.items()}


def assert_same_path(res: sopt.OptimizeResult, ref: sopt.OptimizeResult, ravel) -> None:
    np.testing.assert_allclose(ravel(res.x), ref.x, rtol=0, atol=1e-6)
    assert res.nfev == ref.nfev
    for key in ("nit", "njev", "nhev"):
        if key in ref:
            assert res[key] == ref[key], key
    assert res.success == ref.success
    assert res.status == ref.status
    np.testing.assert_allclose(res.fun, ref.fun, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("method", METHODS)
def test_same_path_as_flat_scipy(method, problem, references):
    tree_fun, _, make_x0, ravel, make_args = PROBLEMS[problem]
    x0, args = make_x0(), make_args()
    options = OPTIONS.get(method)
    ref = references[problem].minimize(ravel(x0), method, args=args, options=options)
    res = minimize(tree_fun, x0, args=args, method=method, options=options)
    assert_same_path(res, ref, ravel)
    if method == "BFGS":  # the inverse Hessian stays on the flat vector, in the same layout
        np.testing.assert_allclose(res.hess_inv, ref.hess_inv, rtol=1e-6, atol=1e-9)
    if method == "trust-constr":  # its `jac` holds the constraint Jacobians
        for field in ("grad", "lagrangian_grad"):  # pytrees like `x0`, as `jac` is
            np.testing.assert_allclose(ravel(res[field]), ref[field], rtol=1e-6, atol=1e-9)
    elif method not in DERIVATIVE_FREE:
        np.testing.assert_allclose(ravel(res.jac), ref.jac, rtol=1e-6, atol=1e-9)


def test_methods_reach_known_optimum():
    """Rosenbrock's minimum is all ones: the gradient-based methods get there from the valley."""
    for method in ("BFGS", "L-BFGS-B", "Newton-CG", "trust-exact", "trust-krylov"):
        res = minimize(rosen_tree, rosen_x0(), method=method)
        assert res.success, (method, res.message)
        np.testing.assert_allclose(rosen_ravel(res.x), np.ones(8), atol=2e-4, err_msg=method)


# ---------------------------------------------------------------------------------------------
# CUTEst problems (sif2jax), each split across a nested dict whose sorted key order is the
# problem's own variable order, so that the flat vector of the layout is the problem's `y`.
#
# `same_path` is False for the few pairs whose paths part after some evaluations even though
# the two sides compute the same derivatives: XLA fuses the package's compiled evaluation and
# the reference's differently, so a gradient can differ in its last bit (a fused multiply-add
# in one and not the other), and an ill-conditioned iteration (the Wood function HS38, TNC's
# line search) magnifies that. Those pairs must still reach the published optimum.

UNCONSTRAINED = "_unconstrained_minimisation"
BOUNDED = "_bounded_minimisation"
CUTEST_CASES = [
    (UNCONSTRAINED, "rosenbr", "ROSENBR", "BFGS", True),
    (UNCONSTRAINED, "rosenbr", "ROSENBR", "Newton-CG", True),
    (UNCONSTRAINED, "rosenbr", "ROSENBR", "trust-exact", True),
    (UNCONSTRAINED, "beale", "BEALE", "BFGS", True),
    (UNCONSTRAINED, "beale", "BEALE", "trust-exact", True),
    (UNCONSTRAINED, "box3", "BOX3", "BFGS", True),
    (UNCONSTRAINED, "box3", "BOX3", "Newton-CG", True),
    (UNCONSTRAINED, "denschna", "DENSCHNA", "trust-krylov", True),
    (UNCONSTRAINED, "helix", "HELIX", "trust-exact", True),
    (UNCONSTRAINED, "helix", "HELIX", "Newton-CG", False),
    (BOUNDED, "hs1", "HS1", "L-BFGS-B", True),
    (BOUNDED, "hs1", "HS1", "SLSQP", True),
    (BOUNDED, "hs1", "HS1", "TNC", False),
    (BOUNDED, "hs38", "HS38", "L-BFGS-B", True),
    (BOUNDED, "hs38", "HS38", "trust-constr", False),
    (BOUNDED, "hs38", "HS38", "SLSQP", False),
    (BOUNDED, "hs45", "HS45", "L-BFGS-B", True),
    (BOUNDED, "hs45", "HS45", "TNC", True),
    (BOUNDED, "hs45", "HS45", "SLSQP", True),
    (BOUNDED, "hs45", "HS45", "trust-constr", True),
]


def split(y: np.ndarray) -> dict:
    """`y` as {'head': 0-d, 'tail': {'mid': [(k,)], 'rest': ((n-1-k,),)}}, inserted in reverse."""
    y = np.asarray(y, dtype=np.float64)
    k = 1 + (y.size - 1) // 2
    return {"tail": {"rest": (y[k:].copy(),), "mid": [y[1:k].copy()]}, "head": y[0].copy()}


def unsplit(v: jax.Array, n: int) -> dict:
    """The tree of `split` cut from a flat vector by hand, in the layout's order."""
    k = 1 + (n - 1) // 2
    return {"head": v[0:1].reshape(()), "tail": {"mid": [v[1:k]], "rest": (v[k:n],)}}


def join(tree: dict) -> Any:
    parts = [tree["head"], tree["tail"]["mid"][0], tree["tail"]["rest"][0]]
    if any(isinstance(p, jax.Array) for p in parts):
        return jnp.concatenate([jnp.ravel(p) for p in parts])
    return np.concatenate([np.ravel(p) for p in parts])


_CUTEST_REFERENCES: dict[str, Any] = {}


@pytest.mark.parametrize("group,module,name,method,same_path", CUTEST_CASES)
def test_cutest(group, module, name, method, same_path, cutest, flat_reference):
    if name not in _CUTEST_REFERENCES:
        problem = cutest(group, module, name)
        # The flat reference evaluates the same objective of the same tree, cut by hand.
        n = int(np.size(problem.y0))
        _CUTEST_REFERENCES[name] = (
            problem,
            flat_reference(lambda v: problem.objective(join(unsplit(v, n)), problem.args)),
        )
    problem, reference = _CUTEST_REFERENCES[name]
    y0 = np.asarray(problem.y0, dtype=np.float64)
    kwargs: dict[str, Any] = {}
    ref_kwargs: dict[str, Any] = {}
    if group == BOUNDED:
        lower, upper = (np.asarray(b, dtype=np.float64) for b in problem.bounds)
        kwargs["bounds"] = Bounds(split(lower), split(upper))  # pytree bounds, with +-inf
        ref_kwargs["bounds"] = sopt.Bounds(lower, upper)
    res = minimize(
        lambda t: problem.objective(join(t), problem.args), split(y0), method=method, **kwargs
    )
    flat = join(res.x)
    if same_path:
        assert_same_path(res, reference.minimize(y0, method, **ref_kwargs), join)
    if group == BOUNDED:
        assert np.all(flat >= ref_kwargs["bounds"].lb) and np.all(flat <= ref_kwargs["bounds"].ub)
    assert res.success, res.message
    expected = float(problem.expected_objective_value)
    assert abs(res.fun - expected) <= 1e-6 + 1e-3 * abs(expected)


# ---------------------------------------------------------------------------------------------
# method=None chooses as scipy does.


def _unit_ball(v: Any) -> Any:
    return 1.0 - jnp.sum(v**2)


def test_method_none_unconstrained_is_bfgs(references):
    a, y = logistic_args()
    ref = references["logistic"].minimize(logistic_ravel(logistic_x0()), None, args=(a, y))
    bfgs = references["logistic"].minimize(logistic_ravel(logistic_x0()), "BFGS", args=(a, y))
    assert ref.nfev == bfgs.nfev  # scipy chose BFGS
    res = minimize(logistic_tree, logistic_x0(), args=(a, y))
    assert_same_path(res, ref, logistic_ravel)


def test_method_none_with_bounds_is_lbfgsb(references):
    x0 = rosen_x0()
    lb = np.full(8, -np.inf)
    lb[4] = 0.96  # b[0] bounded below, close to its start, so the bound is active
    ref = references["rosenbrock"].minimize(rosen_ravel(x0), None, bounds=sopt.Bounds(lb, np.inf))
    assert ref.message.startswith("CONVERGENCE")  # L-BFGS-B's own message
    bounds = Bounds(lb={"a": None, "b": (0.96, None)}, ub=None)
    res = minimize(rosen_tree, x0, bounds=bounds)
    assert_same_path(res, ref, rosen_ravel)
    assert res.x["b"][0] >= 0.96


def test_method_none_with_constraints_is_slsqp(references):
    a, y = logistic_args()
    reference = references["logistic"]

    def ball_flat(v: Any) -> Any:
        return _unit_ball(3.0 * v)

    with jax.enable_x64(True):
        ball_jac = jax.jit(jax.grad(ball_flat))
        ref = reference.minimize(
            logistic_ravel(logistic_x0()),
            None,
            args=(a, y),
            constraints={
                "type": "ineq",
                "fun": lambda v: float(ball_flat(v)),
                "jac": lambda v: np.asarray(ball_jac(v))[None, :],
            },
        )
    assert "Optimization terminated successfully" in ref.message  # SLSQP's own message

    def ball_tree(p: list) -> Any:
        return _unit_ball(3.0 * jnp.concatenate([p[0]["w"], jnp.atleast_1d(p[2][0]), p[2][1]]))

    res = minimize(
        logistic_tree, logistic_x0(), args=(a, y), constraints={"type": "ineq", "fun": ball_tree}
    )
    assert_same_path(res, ref, logistic_ravel)
    assert ball_flat(jnp.asarray(logistic_ravel(res.x))) >= -1e-8


# ---------------------------------------------------------------------------------------------
# User derivatives pass through: the flat reference gets the same kind of derivative.


def _logistic_value_and_grad_tree(p: list, a: Any, y: Any) -> tuple[Any, list]:
    return jax.value_and_grad(logistic_tree)(p, a, y)


# Jitted, as a user would: the user callables run on the host once per evaluation.
_logistic_grad_tree = jax.jit(jax.grad(logistic_tree))


@jax.jit
def _logistic_hvp_tree(p: list, v: list, a: Any, y: Any) -> list:
    return jax.jvp(lambda q: jax.grad(logistic_tree)(q, a, y), (p,), (v,))[1]


def test_jac_true_passes_through(references):
    a, y = logistic_args()
    ref = references["logistic"].minimize(logistic_ravel(logistic_x0()), "BFGS", args=(a, y))
    res = minimize(_logistic_value_and_grad_tree, logistic_x0(), args=(a, y), jac=True)
    assert_same_path(res, ref, logistic_ravel)


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "SLSQP"])
def test_jac_callable_passes_through(method, references):
    a, y = logistic_args()
    reference = references["logistic"]

    def flat_grad(v: np.ndarray, *args: Any) -> np.ndarray:
        return reference.value_and_grad(v, *args)[1]

    ref = reference.minimize(logistic_ravel(logistic_x0()), method, args=(a, y), jac=flat_grad)
    calls = []

    def jac(p: list, a: Any, y: Any) -> list:
        calls.append(p)
        return _logistic_grad_tree(p, a, y)

    res = minimize(logistic_tree, logistic_x0(), args=(a, y), method=method, jac=jac)
    assert_same_path(res, ref, logistic_ravel)
    assert len(calls) == ref.njev
    assert isinstance(calls[0], list) and set(calls[0][0]) == {"w"} and calls[0][1] is None


@pytest.mark.parametrize("scheme", ["2-point", "3-point"])
def test_finite_difference_jac_passes_through(scheme, references):
    a, y = logistic_args()
    ref = references["logistic"].minimize(
        logistic_ravel(logistic_x0()), "L-BFGS-B", args=(a, y), jac=scheme
    )
    res = minimize(logistic_tree, logistic_x0(), args=(a, y), method="L-BFGS-B", jac=scheme)
    assert_same_path(res, ref, logistic_ravel)


def test_complex_step_jac_passes_through():
    x0 = rosen_x0()
    with jax.enable_x64(True):
        value = jax.jit(rosen_flat)

        def fun(v: np.ndarray) -> Any:
            out = value(jnp.asarray(v))  # a complex input (the complex step) gives a complex value
            return complex(out) if np.iscomplexobj(v) else float(out)

        ref = sopt.minimize(fun, rosen_ravel(x0), method="BFGS", jac="cs")
    res = minimize(rosen_tree, x0, method="BFGS", jac="cs")
    assert_same_path(res, ref, rosen_ravel)


@pytest.mark.parametrize("method", ["Newton-CG", "trust-krylov"])
def test_user_hessp_passes_through(method, references):
    a, y = logistic_args()
    reference = references["logistic"]
    ref = reference.minimize(logistic_ravel(logistic_x0()), method, args=(a, y))
    seen = []

    def hessp(p: list, v: list, a: Any, y: Any) -> list:
        seen.append((p, v))
        return _logistic_hvp_tree(p, v, a, y)

    res = minimize(logistic_tree, logistic_x0(), args=(a, y), method=method, hessp=hessp)
    assert_same_path(res, ref, logistic_ravel)
    p, v = seen[0]
    assert isinstance(p, list) and p[1] is None and isinstance(v, list) and v[1] is None


def test_user_dense_hess_passes_through(references):
    a, y = logistic_args()
    reference = references["logistic"]
    ref = reference.minimize(logistic_ravel(logistic_x0()), "trust-exact", args=(a, y))

    def hess(p: list, a: Any, y: Any) -> np.ndarray:
        return reference.hess(logistic_ravel(p), a, y)  # over the flat vector of x0

    res = minimize(logistic_tree, logistic_x0(), args=(a, y), method="trust-exact", hess=hess)
    assert_same_path(res, ref, logistic_ravel)


@pytest.mark.parametrize("hess", [sopt.BFGS, sopt.SR1, lambda: "2-point"])
def test_hessian_update_strategy_passes_through(hess, references):
    a, y = logistic_args()
    ref = references["logistic"].minimize(
        logistic_ravel(logistic_x0()), "trust-constr", args=(a, y), hess=hess()
    )
    res = minimize(logistic_tree, logistic_x0(), args=(a, y), method="trust-constr", hess=hess())
    assert_same_path(res, ref, logistic_ravel)
    assert res.nhev == ref.nhev


# ---------------------------------------------------------------------------------------------
# Bounds, for every method that takes them. A separable quadratic, so the bounded optimum is
# the target clipped to the box.

BOUND_TARGET = np.array([2.0, -1.0, 3.0, 1.0, 2.5, -0.5, 0.0, -2.0])
BOUND_WEIGHTS = np.arange(1.0, 9.0)
FLAT_LB = np.array([0.0, 0.0, 0.0, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf])
FLAT_UB = np.array([1.0, 2.0, np.inf, 1.5, 1.5, 1.5, 1.5, np.inf])


def bounded_x0() -> dict:
    # optree order: a (3,), b.c (2, 2), b.d (a Python float)
    return {"b": {"d": 0.5, "c": jnp.zeros((2, 2))}, "a": np.full(3, 0.5)}


def bounded_ravel(tree: dict) -> np.ndarray:
    parts = [tree["a"], tree["b"]["c"], tree["b"]["d"]]
    return np.concatenate([np.ravel(np.asarray(p)) for p in parts]).astype(np.float64)


def bounded_tree(p: dict) -> Any:
    x = jnp.concatenate([p["a"], p["b"]["c"].ravel(), jnp.atleast_1d(p["b"]["d"])])
    return jnp.sum(BOUND_WEIGHTS * (x - BOUND_TARGET) ** 2)


def bounded_flat(v: Any) -> Any:
    return bounded_tree({"a": v[0:3], "b": {"c": v[3:7].reshape(2, 2), "d": v[7]}})


# lb: a prefix (a scalar for leaf `a`, None for the whole subtree `b`); ub: a full pytree with an
# array leaf, scalars broadcast to a leaf's shape, and +inf.
PYTREE_BOUNDS = Bounds(
    lb={"a": 0.0, "b": None}, ub={"a": np.array([1.0, 2.0, np.inf]), "b": {"c": 1.5, "d": np.inf}}
)
BOUNDED_OPTIONS: dict[str, dict] = {
    "Nelder-Mead": {"maxiter": 3000, "xatol": 1e-7, "fatol": 1e-10},
    "COBYLA": {"maxiter": 400},
    "COBYQA": {"maxfev": 200},
    "SLSQP": {"ftol": 1e-12},
}
BOUNDED_TOLERANCE = {
    "Nelder-Mead": 1e-3,
    "COBYLA": 1e-3,
    "COBYQA": 1e-4,
    "Powell": 1e-4,
    "trust-constr": 2e-4,  # an interior-point method: it stops just inside active bounds
}


@pytest.fixture(scope="module")
def bounded_reference(flat_reference):
    return flat_reference(bounded_flat)


@pytest.mark.parametrize("method", BOUNDED_METHODS)
def test_pytree_bounds_same_as_flat_scipy(method, bounded_reference):
    options = BOUNDED_OPTIONS.get(method)
    ref = bounded_reference.minimize(
        bounded_ravel(bounded_x0()), method, bounds=sopt.Bounds(FLAT_LB, FLAT_UB), options=options
    )
    res = minimize(bounded_tree, bounded_x0(), method=method, bounds=PYTREE_BOUNDS, options=options)
    assert_same_path(res, ref, bounded_ravel)
    flat = bounded_ravel(res.x)
    assert np.all(flat >= FLAT_LB - 1e-12) and np.all(flat <= FLAT_UB + 1e-12)
    expected = np.clip(BOUND_TARGET, FLAT_LB, FLAT_UB)
    np.testing.assert_allclose(flat, expected, atol=BOUNDED_TOLERANCE.get(method, 1e-5))


def test_scalar_bounds_broadcast(bounded_reference):
    ref = bounded_reference.minimize(
        bounded_ravel(bounded_x0()), "L-BFGS-B", bounds=sopt.Bounds(np.full(8, -1.0), 1.0)
    )
    res = minimize(bounded_tree, bounded_x0(), bounds=Bounds(lb=-1.0, ub=1.0))
    assert_same_path(res, ref, bounded_ravel)
    np.testing.assert_allclose(bounded_ravel(res.x), np.clip(BOUND_TARGET, -1, 1), atol=1e-6)


@pytest.mark.parametrize("form", ["scipy-bounds", "pairs"])
@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "Powell"])
def test_scipy_bounds_for_a_single_array(form, method, bounded_reference):
    x0 = bounded_ravel(bounded_x0())
    ref = bounded_reference.minimize(x0, method, bounds=sopt.Bounds(FLAT_LB, FLAT_UB))
    if form == "scipy-bounds":
        bounds: Any = sopt.Bounds(FLAT_LB, FLAT_UB)
    else:
        bounds = [
            (None if np.isneginf(lo) else lo, None if np.isposinf(hi) else hi)
            for lo, hi in zip(FLAT_LB, FLAT_UB)
        ]
    res = minimize(bounded_flat, x0.copy(), method=method, bounds=bounds)
    assert isinstance(res.x, np.ndarray) and res.x.shape == (8,)
    assert_same_path(res, ref, lambda x: x)


# ---------------------------------------------------------------------------------------------
# Callbacks: pytree `x`, new-style and legacy, and StopIteration ends the run as in scipy.


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Nelder-Mead", "trust-constr", "SLSQP"])
def test_new_style_callback_gets_pytree(method, references):
    a, y = logistic_args()
    ref_seen: list = []

    def ref_callback(intermediate_result):
        ref_seen.append((intermediate_result.x.copy(), intermediate_result.fun))

    ref = references["logistic"].minimize(
        logistic_ravel(logistic_x0()), method, args=(a, y), callback=ref_callback
    )
    seen: list = []

    def callback(intermediate_result):
        seen.append(intermediate_result)

    res = minimize(logistic_tree, logistic_x0(), args=(a, y), method=method, callback=callback)
    assert_same_path(res, ref, logistic_ravel)
    assert len(seen) == len(ref_seen) > 0
    for got, (x, fun) in zip(seen, ref_seen):
        assert isinstance(got, sopt.OptimizeResult)
        assert isinstance(got.x, list) and got.x[1] is None and set(got.x[0]) == {"w"}
        np.testing.assert_allclose(logistic_ravel(got.x), x, rtol=0, atol=1e-8)
        np.testing.assert_allclose(got.fun, fun, rtol=1e-9)


@pytest.mark.parametrize("method", ["BFGS", "TNC", "Powell", "COBYLA"])
def test_legacy_callback_gets_pytree(method, references):
    a, y = logistic_args()
    ref_seen: list = []
    options = {"maxiter": 60} if method == "COBYLA" else None
    ref = references["logistic"].minimize(
        logistic_ravel(logistic_x0()),
        method,
        args=(a, y),
        options=options,
        callback=lambda xk: ref_seen.append(np.array(xk, copy=True)),
    )
    seen: list = []
    res = minimize(
        logistic_tree,
        logistic_x0(),
        args=(a, y),
        method=method,
        options=options,
        callback=lambda xk: seen.append(xk),
    )
    assert_same_path(res, ref, logistic_ravel)
    assert len(seen) == len(ref_seen) > 0
    for got, x in zip(seen, ref_seen):
        assert isinstance(got, list) and got[1] is None
        assert isinstance(got[0]["w"], np.ndarray) and got[0]["w"].dtype == np.float64
        np.testing.assert_allclose(logistic_ravel(got), x, rtol=0, atol=1e-8)


def _stop_after(n: int, new_style: bool):
    calls = []
    if new_style:

        def callback(intermediate_result):
            calls.append(1)
            if len(calls) == n:
                raise StopIteration

        return callback

    def legacy(xk, *state):  # trust-constr's legacy form also passes its state
        calls.append(1)
        if len(calls) == n:
            raise StopIteration

    return legacy


@pytest.mark.parametrize("new_style", [True, False])
@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Nelder-Mead", "trust-constr", "COBYQA"])
def test_stop_iteration_ends_run_as_scipy(method, new_style, references):
    x0 = rosen_x0()
    ref = references["rosenbrock"].minimize(
        rosen_ravel(x0), method, callback=_stop_after(3, new_style)
    )
    res = minimize(rosen_tree, x0, method=method, callback=_stop_after(3, new_style))
    assert_same_path(res, ref, rosen_ravel)
    assert res.message == ref.message


def test_stop_iteration_in_tnc_propagates_as_in_scipy(references):
    # scipy's TNC does not handle StopIteration: it reaches the caller there and here.
    x0 = rosen_x0()
    with pytest.raises(StopIteration):
        references["rosenbrock"].minimize(rosen_ravel(x0), "TNC", callback=_stop_after(2, False))
    with pytest.raises(StopIteration):
        minimize(rosen_tree, x0, method="TNC", callback=_stop_after(2, False))


# ---------------------------------------------------------------------------------------------
# Input errors: a TypeError or ValueError that names the argument in backticks.


def _quadratic(p: Any) -> Any:
    return sum(jnp.sum((leaf - 1.0) ** 2) for leaf in jax.tree_util.tree_leaves(p))


def _good_x0() -> dict:
    return {"a": np.zeros(2), "b": [np.zeros(3), np.zeros((2, 2))]}


@pytest.mark.parametrize(
    "x0,error,pattern",
    [
        ({"a": np.zeros(2), "b": [1.0, np.array([1, 2])]}, TypeError, r"`x0\['b'\]\[1\]`.*int"),
        ({"a": np.zeros(2), "b": [1.0, 3]}, TypeError, r"`x0\['b'\]\[1\]`.*`args`"),
        ({"a": np.zeros(2), "b": ("text",)}, TypeError, r"`x0\['b'\]\[0\]`.*`args`"),
        ({"a": np.zeros(2), "b": [True]}, TypeError, r"`x0\['b'\]\[0\]`"),
        ({}, ValueError, r"`x0`"),
        ({"a": np.zeros(0), "b": [None]}, ValueError, r"`x0`"),
    ],
)
def test_bad_x0(x0, error, pattern):
    with pytest.raises(error, match=pattern):
        minimize(_quadratic, x0)


def _vector_valued(p: Any) -> Any:
    return p["a"] ** 2


def _returns_pair(p: Any) -> Any:
    return _quadratic(p), p


def _returns_string(p: Any) -> Any:
    return "not a number"


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"fun": "not callable"}, TypeError, r"`fun`"),
        ({"fun": _vector_valued}, ValueError, r"`fun`.*scalar"),
        ({"fun": _returns_pair}, TypeError, r"`fun`.*scalar.*`jac=True`"),
        ({"fun": _returns_string}, TypeError, r"`fun`.*scalar"),
        ({"method": "newton"}, ValueError, r"`method`.*'newton'"),
        ({"method": 3}, TypeError, r"`method`"),
        ({"options": [("maxiter", 3)]}, TypeError, r"`options`.*dict"),
        ({"callback": "print"}, TypeError, r"`callback`"),
        ({"jac": True}, ValueError, r"`jac=True`"),
        ({"jac": "4-point"}, ValueError, r"`jac`.*'4-point'"),
        ({"jac": 3}, TypeError, r"`jac`"),
        ({"jac": lambda p: p["a"]}, ValueError, r"`jac`"),
        ({"jac": lambda p: {**p, "a": np.zeros(3)}}, ValueError, r"`jac`.*x0\['a'\]"),
        ({"hessp": 3, "method": "Newton-CG"}, TypeError, r"`hessp`"),
        ({"hess": 3, "method": "trust-exact"}, TypeError, r"`hess`"),
        ({"hess": lambda p: np.eye(3), "method": "trust-exact"}, ValueError, r"`hess`.*\(9, 9\)"),
        ({"bounds": Bounds(lb={"a": 0.0, "c": 1.0})}, ValueError, r"`bounds.lb`.*structure"),
        (
            {"bounds": Bounds(ub={"a": np.zeros(3), "b": 1.0})},
            ValueError,
            r"`bounds.ub\['a'\]` has shape",
        ),
        ({"bounds": Bounds(lb=1.0, ub={"a": 0.0, "b": 2.0})}, ValueError, r"`bounds`.*lb > ub"),
        ({"bounds": Bounds(lb=np.nan)}, ValueError, r"`bounds.lb` is NaN at `x0"),
        ({"bounds": sopt.Bounds(0.0, 1.0)}, TypeError, r"`bounds`.*pytree_minimize.Bounds"),
        ({"bounds": [(0.0, 1.0)] * 7}, TypeError, r"`bounds`"),
        ({"constraints": {"type": "equality", "fun": _quadratic}}, ValueError, r"`constraints"),
        ({"constraints": 3}, TypeError, r"`constraints`"),
        ({"constraints": [{"type": "eq", "fun": 3}]}, TypeError, r"`constraints\[0\]"),
    ],
)
def test_bad_arguments(kwargs, error, pattern):
    kwargs = {"fun": _quadratic, "x0": _good_x0(), **kwargs}
    with pytest.raises(error, match=pattern):
        minimize(**kwargs)


def test_scipy_bounds_errors_for_a_single_array():
    x0 = np.zeros(3)
    with pytest.raises(ValueError, match=r"`bounds`.*lb > ub"):
        minimize(_quadratic, x0, bounds=sopt.Bounds([0.0, 2.0, 0.0], [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"`bounds`.*\(min, max\)"):
        minimize(_quadratic, x0, bounds=[(0.0, 1.0)] * 2)
    with pytest.raises(ValueError, match=r"`bounds.lb` has shape \(2,\).*\(3,\)"):
        minimize(_quadratic, x0, bounds=sopt.Bounds(np.zeros(2), np.ones(2)))


def test_traced_x0_points_to_argmin():
    @jax.jit
    def solve(x0):
        return minimize(_quadratic, {"a": x0}).x

    with pytest.raises(TypeError, match=r"`minimize`.*`pytree_minimize.argmin`"):
        solve(jnp.zeros(2))


def test_traced_args_points_to_argmin():
    def loss(p, t):
        return jnp.sum((p - t) ** 2)

    with pytest.raises(TypeError, match=r"argmin"):
        jax.grad(lambda t: minimize(loss, np.zeros(2), args=(t,)).fun)(jnp.ones(2))


def test_x0_is_never_mutated():
    x0: dict[str, Any] = {
        "a": np.array([0.3, -0.2]),
        "b": [np.array([1.0, 2.0, 3.0]), np.ones((2, 2))],
    }
    before: Any = jax.tree_util.tree_map(np.copy, x0)
    for method in ("L-BFGS-B", "Nelder-Mead", "trust-constr"):
        minimize(_quadratic, x0, method=method, bounds=Bounds(lb=-5.0, ub=5.0))
        minimize(_quadratic, x0["b"][0], method=method, bounds=[(-5.0, 5.0)] * 3)
    for leaf, old in zip(jax.tree_util.tree_leaves(x0), jax.tree_util.tree_leaves(before)):
        np.testing.assert_array_equal(leaf, old)


class _ObjectiveError(Exception):
    pass


def test_objective_exception_reaches_caller_unchanged():
    error = _ObjectiveError("raised by the objective")

    def fun(p):
        raise error

    for method in ("BFGS", "Nelder-Mead", "trust-exact"):
        with pytest.raises(_ObjectiveError) as caught:
            minimize(fun, _good_x0(), method=method)
        assert caught.value is error


def test_user_callable_exceptions_reach_caller_unchanged():
    error = _ObjectiveError("raised on the host")

    def raising(*args, **kwargs):
        raise error

    for kwargs in (
        {"jac": raising},
        {"callback": raising},
        {"method": "Newton-CG", "hessp": raising},
        {"method": "trust-exact", "hess": raising},
    ):
        with pytest.raises(_ObjectiveError) as caught:
            minimize(_quadratic, _good_x0(), **kwargs)
        assert caught.value is error
