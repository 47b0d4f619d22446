"""Complex parameters and residuals: optimised as real and imaginary parts, dtype kept, gradients
in `jax.grad`'s convention; against closed-form complex least squares and a closed-form complex
root."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pytree_minimize import argmin, curve_fit, least_squares, minimize, root


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def problem(dtype=np.complex128):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(8, 3)) + 1j * rng.normal(size=(8, 3))).astype(dtype)
    b = (rng.normal(size=8) + 1j * rng.normal(size=8)).astype(dtype)
    return a, b


def loss(p, a, b):
    """|A z - b|^2 + (r - 2)^2 over a complex `z` and a real `r`."""
    residual = a @ p["z"] - b
    return jnp.sum(jnp.abs(residual) ** 2) + jnp.sum((p["r"] - 2.0) ** 2)


def closed_form(a, b):
    """The complex least-squares solution (A^H A)^-1 A^H b."""
    return np.linalg.solve(a.conj().T @ a, a.conj().T @ b)


def x0_for(dtype):
    real = np.float32 if dtype == np.complex64 else np.float64
    return {"z": np.zeros(3, dtype), "r": np.zeros(2, real)}


@pytest.mark.parametrize(
    "method", ["BFGS", "L-BFGS-B", "CG", "Newton-CG", "trust-exact", "trust-krylov"]
)
def test_minimize_converges_to_closed_form(method):
    a, b = problem()
    options = {"L-BFGS-B": {"gtol": 1e-12, "ftol": 1e-15}, "Newton-CG": {"xtol": 1e-12}}
    res = minimize(
        loss,
        x0_for(np.complex128),
        (a, b),
        method=method,
        options=options.get(method, {"gtol": 1e-10}),
    )
    assert res.x["z"].dtype == np.complex128 and res.x["r"].dtype == np.float64
    np.testing.assert_allclose(res.x["z"], closed_form(a, b), atol=1e-6)
    np.testing.assert_allclose(res.x["r"], [2.0, 2.0], atol=1e-6)
    assert res.jac["z"].dtype == np.complex128


def test_complex64_keeps_dtype():
    a, b = problem(np.complex64)
    res = minimize(loss, x0_for(np.complex64), (a, b), method="BFGS")
    assert res.x["z"].dtype == np.complex64 and res.x["r"].dtype == np.float32
    np.testing.assert_allclose(res.x["z"], closed_form(a, b), atol=2e-3)


def test_jax_array_leaves_keep_type_and_dtype():
    a, b = problem()
    x0 = {"z": jnp.zeros(3, jnp.complex128), "r": jnp.zeros(2)}
    res = minimize(loss, x0, (jnp.asarray(a), jnp.asarray(b)))
    assert isinstance(res.x["z"], jax.Array) and res.x["z"].dtype == jnp.complex128
    np.testing.assert_allclose(res.x["z"], closed_form(a, b), atol=1e-5)


def test_result_jac_follows_jax_grad_convention():
    # Stopped after one iteration, so the gradient is far from zero and a conjugation error
    # would show.
    a, b = problem()
    res = minimize(loss, x0_for(np.complex128), (a, b), method="BFGS", options={"maxiter": 1})
    expected = jax.grad(loss)(res.x, a, b)
    assert np.linalg.norm(expected["z"]) > 1e-2
    np.testing.assert_allclose(res.jac["z"], expected["z"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.jac["r"], expected["r"], rtol=1e-10, atol=1e-12)
    # The convention by hand: for f = |z - c|^2, jax.grad gives conj(df/dRe + i df/dIm),
    # which is 2 conj(z - c).
    c = 1.0 + 2.0j
    res = minimize(lambda z: jnp.abs(z - c) ** 2, np.array(0.0 + 0.0j), options={"maxiter": 0})
    np.testing.assert_allclose(res.jac, 2 * np.conj(0.0 - c), atol=1e-12)


def test_user_jac_in_jax_grad_convention():
    a, b = problem()
    expected = closed_form(a, b)
    grad = jax.grad(loss)
    res = minimize(
        loss, x0_for(np.complex128), (a, b), method="BFGS", jac=grad, options={"gtol": 1e-10}
    )
    np.testing.assert_allclose(res.x["z"], expected, atol=1e-6)

    def value_and_grad(p, a, b):
        return jax.value_and_grad(loss)(p, a, b)

    res = minimize(
        value_and_grad,
        x0_for(np.complex128),
        (a, b),
        method="L-BFGS-B",
        jac=True,
        options={"gtol": 1e-12, "ftol": 1e-15},
    )
    np.testing.assert_allclose(res.x["z"], expected, atol=1e-6)

    # The other convention (no conjugate) points the imaginary part uphill: it must not reach the
    # minimum, which shows the convention is honoured rather than ignored.
    def wrong(p, a, b):
        g = grad(p, a, b)
        return {"z": jnp.conj(g["z"]), "r": g["r"]}

    res = minimize(
        loss, x0_for(np.complex128), (a, b), method="BFGS", jac=wrong, options={"maxiter": 50}
    )
    assert np.linalg.norm(res.x["z"] - expected) > 1e-3


def test_user_hessp_for_complex_leaves():
    a, b = problem()

    def hessp(p, v, a, b):
        return jax.jvp(lambda q: jax.grad(loss)(q, a, b), (p,), (v,))[1]

    res = minimize(loss, x0_for(np.complex128), (a, b), method="Newton-CG", hessp=hessp)
    np.testing.assert_allclose(res.x["z"], closed_form(a, b), atol=1e-5)


def test_argmin_complex_solution_and_derivatives():
    a, b = problem()
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    pinv = np.linalg.solve(a.conj().T @ a, a.conj().T)

    @jax.jit
    def solve(b):
        return argmin(loss, x0_for(np.complex128), (a_j, b), options={"gtol": 1e-10}).x["z"]

    z = solve(b_j)
    assert z.dtype == jnp.complex128
    np.testing.assert_allclose(z, closed_form(a, b), atol=1e-6)

    # z*(b) = pinv b is complex-linear: a complex tangent db maps to pinv db.
    db = jnp.asarray(np.linspace(1.0, 2.0, 8) - 0.5j * np.linspace(-1.0, 1.0, 8))
    _, dz = jax.jvp(solve, (b_j,), (db,))
    np.testing.assert_allclose(dz, pinv @ np.asarray(db), atol=1e-6)

    # Reverse mode, in jax.grad's convention, against the same real loss of the closed form.
    target = jnp.asarray(np.arange(3.0) + 1j)
    outer = lambda z: jnp.sum(jnp.abs(z - target) ** 2)
    got = jax.jit(jax.grad(lambda b: outer(solve(b))))(b_j)
    expected = jax.grad(lambda b: outer(jnp.asarray(pinv) @ b))(b_j)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_argmin_vmap_complex():
    a, b = problem()
    bs = jnp.stack([jnp.asarray(b), 2.0j * jnp.asarray(b)])
    zs = jax.vmap(lambda b: argmin(loss, x0_for(np.complex128), (jnp.asarray(a), b)).x["z"])(bs)
    np.testing.assert_allclose(zs[0], closed_form(a, b), atol=1e-5)
    np.testing.assert_allclose(zs[1], closed_form(a, 2.0j * b), atol=1e-5)


@pytest.mark.parametrize("method", ["hybr", "lm", "krylov", "broyden1"])
def test_root_of_complex_residuals_over_complex_parameters(method):
    # (2 + i)^2 = 3 + 4i: the root nearest the start, and the residual a complex leaf.
    res = root(lambda z: {"r": z["w"] ** 2 - (3.0 + 4.0j)}, {"w": jnp.array([1.5 + 0.5j])},
               method=method, tol=1e-12)  # fmt: skip
    assert res.success, res.message
    np.testing.assert_allclose(res.x["w"], [2.0 + 1.0j], atol=1e-9)
    assert res.x["w"].dtype == jnp.complex128 and res.fun["r"].dtype == np.complex128
    np.testing.assert_allclose(res.fun["r"], [0.0], atol=1e-9)


def test_least_squares_of_complex_residuals_is_complex_least_squares():
    a, b = problem()
    res = least_squares(lambda z: a @ z - b, jnp.zeros(3, jnp.complex128))
    np.testing.assert_allclose(res.x, closed_form(a, b), atol=1e-8)
    best = a @ closed_form(a, b) - b
    assert res.cost == pytest.approx(0.5 * np.sum(np.abs(best) ** 2), rel=1e-10)
    np.testing.assert_allclose(res.fun, best, atol=1e-8)


def test_curve_fit_refuses_a_complex_model_and_names_the_split():
    x = np.linspace(0.0, 1.0, 5)
    with pytest.raises(TypeError, match=r"real and imaginary parts.*np.concatenate"):
        curve_fit(lambda x, p: p["a"] * jnp.exp(1j * x), x, np.zeros(5), p0={"a": 1.0})
