"""`argmin`: under jit and vmap, implicit derivatives against closed forms, no deadlock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize import Bounds, Solution, argmin, minimize


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------------------------------------
# Ridge regression with an unpenalised intercept: params {"w": (d,), "c": ()}.


def ridge_loss(p, data, lam):
    residual = data["A"] @ p["w"] + p["c"] - data["y"]
    return jnp.sum(residual**2) + lam * jnp.sum(p["w"] ** 2)


def ridge_closed_form(data, lam):
    """Solution of the normal equations, as a flat vector [w..., c]."""
    a = data["A"]
    design = jnp.concatenate([a, jnp.ones((a.shape[0], 1))], axis=1)
    penalty = jnp.diag(jnp.concatenate([jnp.full(a.shape[1], lam), jnp.zeros(1)]))
    return jnp.linalg.solve(design.T @ design + penalty, design.T @ data["y"])


def flat(p):
    return jnp.concatenate([p["w"], p["c"][None]])


@pytest.fixture
def ridge_data():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 4))
    y = a @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 + 0.1 * rng.normal(size=12)
    return {"A": jnp.asarray(a), "y": jnp.asarray(y)}


RIDGE_X0 = {"w": np.zeros(4), "c": np.zeros(())}


def ridge_solve(data, lam, method="L-BFGS-B"):
    x0 = RIDGE_X0
    options = {"gtol": 1e-12} if method in ("BFGS", "trust-exact", "trust-ncg") else None
    if method == "L-BFGS-B":
        options = {"ftol": 1e-15, "gtol": 1e-12}
    return argmin(ridge_loss, x0, (data, lam), method=method, options=options)


def test_eager_solution_is_a_pytree_of_arrays(ridge_data):
    sol = ridge_solve(ridge_data, 0.7)
    assert isinstance(sol, Solution)
    for leaf in jax.tree_util.tree_leaves(sol):
        assert isinstance(leaf, jax.Array)
    assert sol.x["w"].shape == (4,) and sol.x["c"].shape == ()
    assert sol.x["w"].dtype == jnp.float64
    assert bool(sol.success) and sol.status.dtype == jnp.int32 and int(sol.nfev) > 0
    np.testing.assert_allclose(flat(sol.x), ridge_closed_form(ridge_data, 0.7), atol=1e-7)
    expected_fun = ridge_loss(sol.x, ridge_data, 0.7)
    np.testing.assert_allclose(sol.fun, expected_fun, rtol=1e-12)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "trust-exact", "Newton-CG"])
def test_jit_matches_closed_form(ridge_data, method):
    solve = jax.jit(lambda data, lam: flat(ridge_solve(data, lam, method).x))
    for lam in (0.1, 2.0):
        np.testing.assert_allclose(
            solve(ridge_data, lam), ridge_closed_form(ridge_data, lam), atol=1e-6
        )


def test_derivative_wrt_lambda_all_modes(ridge_data):
    solve = lambda lam: flat(ridge_solve(ridge_data, lam).x)
    closed = lambda lam: ridge_closed_form(ridge_data, lam)
    lam = 0.8
    expected = jax.jacfwd(closed)(lam)
    for name, jac in [
        ("jacfwd", jax.jacfwd(solve)),
        ("jit(jacrev)", jax.jit(jax.jacrev(solve))),
    ]:
        np.testing.assert_allclose(jac(lam), expected, atol=1e-6, err_msg=name)
    weights = jnp.arange(1.0, 6.0)
    grad = jax.jit(jax.grad(lambda lam: jnp.dot(weights, solve(lam))))(lam)
    np.testing.assert_allclose(grad, jnp.dot(weights, expected), atol=1e-6)


def test_derivative_wrt_data(ridge_data):
    lam = 0.5
    solve = jax.jit(lambda data: flat(ridge_solve(data, lam).x))
    closed = lambda data: ridge_closed_form(data, lam)
    expected = jax.jacrev(closed)(ridge_data)
    for jac in (jax.jacrev(solve), jax.jacfwd(solve)):
        got = jac(ridge_data)
        np.testing.assert_allclose(got["A"], expected["A"], atol=1e-6)
        np.testing.assert_allclose(got["y"], expected["y"], atol=1e-6)


def test_optimal_value_derivative(ridge_data):
    # Envelope theorem: d f*/d lam = |w*|^2.
    lam = 0.3
    grad = jax.grad(lambda lam: ridge_solve(ridge_data, lam).fun)(lam)
    w = ridge_closed_form(ridge_data, lam)[:4]
    np.testing.assert_allclose(grad, jnp.sum(w**2), rtol=1e-6)


def test_gradient_wrt_x0_is_zero(ridge_data):
    def through_x0(scale):
        x0 = {"w": scale * jnp.ones(4), "c": scale}
        return jnp.sum(flat(argmin(ridge_loss, x0, (ridge_data, 1.0)).x))

    assert float(jax.grad(through_x0)(0.5)) == 0.0


def test_closure_over_traced_values_is_differentiated(ridge_data):
    def solve(lam):
        return flat(argmin(lambda p: ridge_loss(p, ridge_data, lam), RIDGE_X0).x)

    expected = jax.jacfwd(lambda lam: ridge_closed_form(ridge_data, lam))(1.5)
    np.testing.assert_allclose(jax.jit(jax.jacrev(solve))(1.5), expected, atol=1e-6)
    np.testing.assert_allclose(jax.jacfwd(solve)(1.5), expected, atol=1e-6)


def test_equinox_module_parameters_under_jit():
    eqx = pytest.importorskip("equinox")

    class Affine(eqx.Module):
        w: jax.Array
        c: jax.Array

    def loss(m, data, lam):
        return ridge_loss({"w": m.w, "c": m.c}, data, lam)

    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 4))
    data = {"A": jnp.asarray(a), "y": jnp.asarray(a @ np.ones(4) + 0.5)}

    @jax.jit
    def solve(lam):
        m = argmin(loss, Affine(jnp.zeros(4), jnp.zeros(())), (data, lam)).x
        assert isinstance(m, Affine)
        return jnp.concatenate([m.w, m.c[None]])

    np.testing.assert_allclose(solve(0.5), ridge_closed_form(data, 0.5), atol=1e-6)
    expected = jax.jacfwd(lambda lam: ridge_closed_form(data, lam))(0.5)
    np.testing.assert_allclose(jax.jacrev(solve)(0.5), expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# vmap: a batch of problems.


def test_vmap_over_args_and_nested(ridge_data):
    lams = jnp.array([0.0, 0.5, 3.0])
    solve = jax.jit(jax.vmap(lambda lam: flat(ridge_solve(ridge_data, lam).x)))
    expected = jnp.stack([ridge_closed_form(ridge_data, lam) for lam in lams])
    np.testing.assert_allclose(solve(lams), expected, atol=1e-6)

    # Nested: over data (outer) and lambda (inner).
    ys = jnp.stack([ridge_data["y"], 2.0 * ridge_data["y"]])

    def inner(y, lam):
        return flat(ridge_solve({"A": ridge_data["A"], "y": y}, lam).x)

    nested = jax.vmap(jax.vmap(inner, in_axes=(None, 0)), in_axes=(0, None))(ys, lams)
    assert nested.shape == (2, 3, 5)
    for i, y in enumerate(ys):
        for j, lam in enumerate(lams):
            want = ridge_closed_form({"A": ridge_data["A"], "y": y}, lam)
            np.testing.assert_allclose(nested[i, j], want, atol=1e-6)

    sols = jax.vmap(lambda lam: argmin(ridge_loss, RIDGE_X0, (ridge_data, lam)))(lams)
    assert sols.success.shape == (3,) and bool(sols.success.all())
    assert sols.nit.shape == (3,) and sols.nit.dtype == jnp.int32
    assert sols.x["w"].shape == (3, 4) and sols.fun.shape == (3,)


def test_vmap_of_gradient(ridge_data):
    lams = jnp.array([0.2, 1.0, 4.0])
    grad = jax.jit(jax.vmap(jax.grad(lambda lam: jnp.sum(flat(ridge_solve(ridge_data, lam).x)))))
    closed = jax.vmap(jax.grad(lambda lam: jnp.sum(ridge_closed_form(ridge_data, lam))))
    np.testing.assert_allclose(grad(lams), closed(lams), atol=1e-6)


def test_vmap_over_x0():
    def f(x):
        return jnp.sum((x**2 - 1.0) ** 2)

    starts = jnp.array([[0.5, -0.5], [2.0, -3.0], [-0.1, 0.2]])
    xs = jax.vmap(lambda x0: argmin(f, x0, method="BFGS").x)(starts)
    np.testing.assert_allclose(xs, jnp.sign(starts), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bounds: active coordinates get zero derivative.

Q = jnp.array([[2.0, 0.5, 0.0], [0.5, 2.0, 0.5], [0.0, 0.5, 2.0]])


def box_loss(x, theta):
    return 0.5 * x @ Q @ x - theta @ x


@pytest.mark.parametrize("method", ["L-BFGS-B", "SLSQP", "trust-constr"])
def test_box_constrained_jacobian(method):
    # With theta = (-1, 1, 1): x0 sits at its lower bound 0 (gradient 1.2 > 0 there) and the free
    # block solves Q_ff x_f = theta_f, so x* = (0, 0.4, 0.4), dx_f/dtheta_f = inv(Q_ff) and every
    # derivative of the active coordinate, and with respect to theta_0, is zero.
    theta = jnp.array([-1.0, 1.0, 1.0])
    options = {
        "L-BFGS-B": {"ftol": 1e-15, "gtol": 1e-12},
        "SLSQP": {"ftol": 1e-14},
        "trust-constr": {"gtol": 1e-12, "xtol": 1e-12, "barrier_tol": 1e-12},
        "TNC": {"ftol": 1e-14, "gtol": 1e-12, "xtol": 1e-12},
    }[method]

    def solve(theta):
        bounds = Bounds(lb=0.0, ub=5.0)
        return argmin(box_loss, jnp.full(3, 1.0), (theta,), method, bounds, options=options).x

    np.testing.assert_allclose(solve(theta), [0.0, 0.4, 0.4], atol=1e-6)
    expected = np.zeros((3, 3))
    expected[1:, 1:] = np.linalg.inv(np.asarray(Q[1:, 1:]))
    np.testing.assert_allclose(jax.jit(jax.jacrev(solve))(theta), expected, atol=1e-5)
    if method == "L-BFGS-B":
        np.testing.assert_allclose(jax.jacfwd(solve)(theta), expected, atol=1e-5)


def test_bounds_on_pytree_with_inactive_bounds():
    # Loose bounds: the derivative is that of the unconstrained problem.
    def solve(theta):
        x0 = {"a": jnp.zeros(2), "b": jnp.zeros(1)}

        def loss(p, theta):
            x = jnp.concatenate([p["a"], p["b"]])
            return box_loss(x, theta)

        p = argmin(loss, x0, (theta,), bounds=Bounds(lb={"a": -10.0, "b": None}, ub=10.0)).x
        return jnp.concatenate([p["a"], p["b"]])

    theta = jnp.array([1.0, -1.0, 0.5])
    np.testing.assert_allclose(jax.jacrev(solve)(theta), jnp.linalg.inv(Q), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Constraints: KKT.

C = jnp.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])


def kkt_closed_form(theta, d):
    """argmin 0.5 x'Qx - theta'x subject to C x = d."""
    m = C.shape[0]
    kkt = jnp.block([[Q, C.T], [C, jnp.zeros((m, m))]])
    return jnp.linalg.solve(kkt, jnp.concatenate([theta, d]))[:3]


@pytest.mark.parametrize("method", ["SLSQP", "trust-constr"])
def test_equality_constrained_quadratic_derivative(method):
    options = {"SLSQP": {"ftol": 1e-14}, "trust-constr": {"gtol": 1e-12, "xtol": 1e-12}}[method]

    def solve(theta, d):
        constraint = {"type": "eq", "fun": lambda x, d: C @ x - d, "args": (d,)}
        return argmin(box_loss, jnp.zeros(3), (theta,), method, None, constraint, options=options).x

    theta, d = jnp.array([1.0, 2.0, -1.0]), jnp.array([1.0, 0.5])
    np.testing.assert_allclose(solve(theta, d), kkt_closed_form(theta, d), atol=1e-6)
    expected = jax.jacfwd(kkt_closed_form, (0, 1))(theta, d)
    got = jax.jit(jax.jacrev(solve, (0, 1)))(theta, d)
    if method == "SLSQP":
        got_forward = jax.jacfwd(solve, (0, 1))(theta, d)
        np.testing.assert_allclose(got_forward[0], expected[0], atol=1e-5)
        np.testing.assert_allclose(got_forward[1], expected[1], atol=1e-5)
    np.testing.assert_allclose(got[0], expected[0], atol=1e-5)
    np.testing.assert_allclose(got[1], expected[1], atol=1e-5)


def test_nonlinear_constraint_equality_matches_closed_form():
    # The same equality, stated as a NonlinearConstraint with lb == ub.
    d = np.array([1.0, 0.5])

    def solve(theta):
        constraint = sopt.NonlinearConstraint(lambda x: C @ x, d, d)
        return argmin(
            box_loss,
            jnp.zeros(3),
            (theta,),
            "trust-constr",
            None,
            constraint,
            options={"gtol": 1e-12, "xtol": 1e-12},
        ).x

    theta = jnp.array([1.0, 2.0, -1.0])
    expected = jax.jacfwd(kkt_closed_form)(theta, jnp.asarray(d))
    np.testing.assert_allclose(jax.jacrev(solve)(theta), expected, atol=1e-5)


@pytest.mark.parametrize("method", ["SLSQP", "COBYLA"])
def test_inequality_active_and_inactive(method):
    # Projection of theta onto {sum(x) <= 1}: active when sum(theta) > 1, with derivative
    # I - 11'/n; inactive otherwise, with derivative I.
    def solve(theta):
        constraint = {"type": "ineq", "fun": lambda x: 1.0 - jnp.sum(x)}
        options = {"ftol": 1e-14} if method == "SLSQP" else {"tol": 1e-12, "maxiter": 5000}
        if method == "COBYLA":
            options = {"rhobeg": 0.5, "tol": 1e-10, "maxiter": 20000}
        loss = lambda x, theta: 0.5 * jnp.sum((x - theta) ** 2)
        return argmin(loss, jnp.zeros(3), (theta,), method, None, constraint, options=options).x

    active = jnp.array([1.0, 0.5, 0.5])
    np.testing.assert_allclose(solve(active), active - 1.0 / 3.0, atol=1e-6)
    np.testing.assert_allclose(jax.jacrev(solve)(active), np.eye(3) - 1.0 / 3.0, atol=1e-5)
    if method == "SLSQP":
        inactive = jnp.array([0.1, 0.2, -0.3])
        np.testing.assert_allclose(jax.jacfwd(solve)(inactive), np.eye(3), atol=1e-5)


def test_linear_constraint_single_array():
    constraint = sopt.LinearConstraint(np.asarray(C), [1.0, 0.5], [1.0, 0.5])

    def solve(theta):
        return argmin(
            box_loss,
            jnp.zeros(3),
            (theta,),
            "trust-constr",
            None,
            constraint,
            options={"gtol": 1e-12, "xtol": 1e-12},
        ).x

    theta = jnp.array([0.5, 0.0, 1.0])
    expected = jax.jacfwd(kkt_closed_form)(theta, jnp.array([1.0, 0.5]))
    np.testing.assert_allclose(jax.jacfwd(solve)(theta), expected, atol=1e-5)


def test_pytree_linear_constraint_with_traced_args():
    # Projection of theta onto {sum(a) + b = d}: x = theta - (sum(theta) - d) / 3, so
    # dx/dtheta = I - 11'/3 and dx/dd = 1/3.
    from pytree_minimize import LinearConstraint

    def solve(theta, d):
        constraint = LinearConstraint(
            lambda p, d: jnp.sum(p["a"]) + p["b"][0] - d, lb=0.0, ub=0.0, args=(d,)
        )
        loss = lambda p, theta: 0.5 * jnp.sum((jnp.concatenate([p["a"], p["b"]]) - theta) ** 2)
        x0 = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
        p = argmin(loss, x0, (theta,), "SLSQP", None, constraint, options={"ftol": 1e-14}).x
        return jnp.concatenate([p["a"], p["b"]])

    theta, d = jnp.array([1.0, 0.5, 0.8]), jnp.array(1.0)
    np.testing.assert_allclose(solve(theta, d), theta - (2.3 - 1.0) / 3.0, atol=1e-6)
    jac_theta, jac_d = jax.jit(jax.jacrev(solve, (0, 1)))(theta, d)
    np.testing.assert_allclose(jac_theta, np.eye(3) - 1.0 / 3.0, atol=1e-5)
    np.testing.assert_allclose(jac_d, np.full(3, 1.0 / 3.0), atol=1e-5)


def test_nonlinear_constraint_with_pytree_output_and_bounds():
    # sum(a) = 1 (equality) and b <= 0.25 (active for theta_b = 0.8): a = theta_a - 0.25 and
    # b = 0.25, so da/dtheta_a = I - 11'/2 and every derivative of b is zero.
    def solve(theta):
        constraint = sopt.NonlinearConstraint(
            lambda p: {"s": jnp.sum(p["a"]), "q": p["b"]},
            lb={"s": 1.0, "q": None},
            ub={"s": 1.0, "q": 0.25},
        )
        loss = lambda p, theta: 0.5 * jnp.sum((jnp.concatenate([p["a"], p["b"]]) - theta) ** 2)
        x0 = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
        p = argmin(loss, x0, (theta,), "SLSQP", None, constraint, options={"ftol": 1e-14}).x
        return jnp.concatenate([p["a"], p["b"]])

    theta = jnp.array([1.0, 0.5, 0.8])
    np.testing.assert_allclose(solve(theta), [0.75, 0.25, 0.25], atol=1e-6)
    expected = np.zeros((3, 3))
    expected[:2, :2] = np.eye(2) - 0.5
    np.testing.assert_allclose(jax.jit(jax.jacrev(solve))(theta), expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Hyperparameter tuning through argmin against a grid search.


def test_tuning_lambda_by_gradient_descent_matches_grid_search():
    rng = np.random.default_rng(3)
    d = 8
    true_w = rng.normal(size=d)
    a_train = rng.normal(size=(15, d))
    y_train = a_train @ true_w + 1.5 * rng.normal(size=15)
    a_val = rng.normal(size=(60, d))
    y_val = a_val @ true_w + 1.5 * rng.normal(size=60)

    def train_loss(w, log_lam):
        return jnp.sum((a_train @ w - y_train) ** 2) + jnp.exp(log_lam) * jnp.sum(w**2)

    @jax.jit
    def validation(log_lam):
        w = argmin(train_loss, jnp.zeros(d), (log_lam,), options={"gtol": 1e-10}).x
        return jnp.mean((a_val @ w - y_val) ** 2)

    def validation_closed(log_lam):
        w = np.linalg.solve(a_train.T @ a_train + np.exp(log_lam) * np.eye(d), a_train.T @ y_train)
        return np.mean((a_val @ w - y_val) ** 2)

    grid = np.linspace(-4.0, 6.0, 2001)
    best = grid[np.argmin([validation_closed(v) for v in grid])]
    assert -3.5 < best < 5.5  # an interior optimum, so the comparison means something

    step = jax.jit(jax.value_and_grad(validation))
    log_lam = 0.0
    for _ in range(200):
        _, g = step(log_lam)
        log_lam = log_lam - 0.5 * float(g) / max(1.0, abs(float(g)))
        if abs(float(g)) < 1e-7:
            break
    assert abs(log_lam - best) < 0.02


# ---------------------------------------------------------------------------------------------
# Precision, errors.


def test_float32_under_x64_off():
    with jax.enable_x64(False):
        a = jnp.asarray(np.random.default_rng(1).normal(size=(6, 3)), jnp.float32)
        y = jnp.arange(6.0, dtype=jnp.float32)

        @jax.jit
        def solve(lam):
            loss = lambda w, lam: jnp.sum((a @ w - y) ** 2) + lam * jnp.sum(w**2)
            return argmin(loss, jnp.zeros(3, jnp.float32), (lam,)).x

        x = solve(jnp.float32(0.5))
        assert x.dtype == jnp.float32
        an, yn = np.asarray(a, float), np.asarray(y, float)
        expected = np.linalg.solve(an.T @ an + 0.5 * np.eye(3), an.T @ yn)
        np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-4)
        grad = jax.jacfwd(solve)(jnp.float32(0.5))
        expected_grad = -np.linalg.solve(an.T @ an + 0.5 * np.eye(3), expected)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "transform",
    [jax.jit, jax.vmap, jax.grad],
    ids=["jit", "vmap", "grad"],
)
def test_minimize_on_traced_values_points_to_argmin(transform):
    def f(lam):
        return minimize(lambda x, lam: jnp.sum((x - lam) ** 2), jnp.zeros(2), (lam,)).fun

    with pytest.raises(TypeError, match="argmin"):
        transform(f)(jnp.array([1.0]) if transform is jax.vmap else 1.0)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="`fun`"):
        argmin(3.0, jnp.zeros(2))
    with pytest.raises(ValueError, match="`method`"):
        argmin(lambda x: jnp.sum(x**2), jnp.zeros(2), method="newton")
    with pytest.raises(ValueError, match="scalar"):
        argmin(lambda x: x**2, jnp.zeros(2))
    with pytest.raises(TypeError, match=r"x0\['n'\]"):
        argmin(lambda x: jnp.sum(x["a"] ** 2), {"a": jnp.zeros(2), "n": jnp.arange(2)})
    with pytest.raises(TypeError, match="`options`"):
        argmin(lambda x: jnp.sum(x**2), jnp.zeros(2), options=3)
    with pytest.raises(TypeError, match="`bounds`"):
        jax.jit(lambda lb: argmin(lambda x: jnp.sum(x**2), jnp.zeros(2), bounds=Bounds(lb, 1.0)))(
            0.0
        )
    with pytest.raises(TypeError, match="closes over a traced value"):
        jax.jit(
            lambda d: argmin(
                lambda x: jnp.sum(x**2),
                jnp.zeros(2),
                method="trust-constr",
                constraints=sopt.NonlinearConstraint(lambda x: jnp.sum(x) - d, 0.0, 0.0),
            )
        )(1.0)


def test_objective_exception_reaches_caller_eagerly():
    def bad(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        argmin(bad, jnp.zeros(2))


class _HostError(Exception):
    pass


@pytest.mark.parametrize("error", [KeyboardInterrupt, _HostError])
@pytest.mark.parametrize("transform", ["grad", "vmap"])
def test_host_exception_reaches_caller_as_itself(error, transform):
    # A callable `method` runs on the host inside scipy, where Ctrl-C lands: JAX reports what it
    # raises as a JaxRuntimeError, and argmin, which runs the solve here, raises it as itself.
    raised = error("stop")

    def interrupted(fun, x0, args=(), **options):
        fun(x0, *args)
        raise raised

    def solve(c):
        return argmin(lambda x, c: jnp.sum((x - c) ** 2), jnp.zeros(2), c, method=interrupted)

    run = jax.grad(lambda c: solve(c).x.sum()) if transform == "grad" else jax.vmap(solve)
    with pytest.raises(error) as caught:
        run(1.0 if transform == "grad" else jnp.ones(3))
    assert caught.value is raised


# ---------------------------------------------------------------------------------------------
# No deadlock: several CPU devices, several Python threads (in a subprocess with a timeout, so a
# deadlock fails the test instead of hanging the suite).

_CONCURRENCY_SCRIPT = textwrap.dedent(
    """
    import concurrent.futures
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import NamedSharding, PartitionSpec
    from pytree_minimize import argmin

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(10, 3)))
    y = jnp.asarray(rng.normal(size=10))

    def loss(w, lam):
        return jnp.sum((a @ w - y) ** 2) + lam * jnp.sum(w ** 2)

    def closed(lam):
        return np.linalg.solve(np.asarray(a.T @ a) + lam * np.eye(3), np.asarray(a.T @ y))

    def solve(lam):
        return argmin(loss, jnp.zeros(3), (lam,)).x

    # A batch sharded over 4 devices: each device's shard runs its own host callback, and each
    # callback calls back into JAX.
    # Auto axes: JAX 0.10's default, Explicit, does not take `vmap(grad(...))` over a sharded
    # axis even for plain JAX code.
    mesh = jax.make_mesh((4,), ("b",), axis_types=(jax.sharding.AxisType.Auto,))
    lams = jax.device_put(jnp.linspace(0.1, 3.0, 8), NamedSharding(mesh, PartitionSpec("b")))
    out = jax.jit(jax.vmap(solve))(lams)
    np.testing.assert_allclose(out, np.stack([closed(l) for l in np.asarray(lams)]), atol=1e-6)
    grads = jax.jit(jax.vmap(jax.grad(lambda l: solve(l).sum())))(lams)
    assert np.all(np.isfinite(grads))

    # Each device on its own, one jitted solve per device.
    for device in jax.devices():
        lam = jax.device_put(0.5, device)
        np.testing.assert_allclose(jax.jit(solve)(lam), closed(0.5), atol=1e-6)

    # Several Python threads at once, jitted and eager, values and gradients.
    jitted = jax.jit(solve)
    grad = jax.jit(jax.grad(lambda l: solve(l).sum()))
    def work(i):
        lam = 0.1 * (i + 1)
        np.testing.assert_allclose(jitted(lam), closed(lam), atol=1e-6)
        np.testing.assert_allclose(solve(lam), closed(lam), atol=1e-6)
        expected = -np.linalg.solve(np.asarray(a.T @ a) + lam * np.eye(3), closed(lam)).sum()
        np.testing.assert_allclose(grad(lam), expected, atol=1e-6)
        return i
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(work, range(16))) == list(range(16))
    print("OK")
    """
)


def test_no_deadlock_with_four_devices_and_threads():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", _CONCURRENCY_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
