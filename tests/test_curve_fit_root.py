"""`curve_fit` equals scipy's `curve_fit` on the flat problem (with the exact Jacobian), and
`root` runs every scipy method on pytrees, 'krylov' with exact Jacobian-vector products."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize import Bounds, curve_fit, root, standard_errors

X = np.linspace(0.0, 10.0, 80)
RNG = np.random.default_rng(3)
Y = 3.0 * np.exp(-((X - 4.0) ** 2) / 2.0) + 1.2 * np.exp(-((X - 7.0) ** 2) / 0.5) + 0.2
Y = Y + 0.03 * RNG.standard_normal(X.size)


def peaks(x, p):
    total = p["background"]
    for peak in p["peaks"]:
        total = total + peak["height"] * jnp.exp(-((x - peak["center"]) ** 2) / peak["width"])
    return total


P0 = {
    "background": 0.0,
    "peaks": [
        {"center": 3.5, "height": 2.0, "width": 1.5},
        {"center": 7.2, "height": 1.0, "width": 1.0},
    ],
}
# The flat layout of P0 in optree order: background, then each peak's center, height, width.


def flat_peaks(x, *v):
    p = {
        "background": v[0],
        "peaks": [
            {"center": v[1], "height": v[2], "width": v[3]},
            {"center": v[4], "height": v[5], "width": v[6]},
        ],
    }
    return peaks(x, p)


P0_FLAT = np.array([0.0, 3.5, 2.0, 1.5, 7.2, 1.0, 1.0])


def _flat_jac(x, *v):
    return np.asarray(jax.jacfwd(lambda u: flat_peaks(x, *u))(jnp.asarray(v)), np.float64)


def _flat_f(x, *v):
    return np.asarray(flat_peaks(x, *v), np.float64)


def _flat(tree):
    leaves = jax.tree.leaves(tree)
    return np.array([float(v) for v in leaves])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"method": "trf"},
        {"sigma": np.full(X.size, 0.05), "absolute_sigma": True},
        {"bounds": ([-1, 0, 0, 0.1, 0, 0, 0.1], [1, 10, 5, 5, 10, 5, 5])},
    ],
)
def test_curve_fit_equals_scipy_on_the_flat_problem(kwargs, x64):
    popt_ref, pcov_ref = sopt.curve_fit(_flat_f, X, Y, P0_FLAT, jac=_flat_jac, **kwargs)
    if "bounds" in kwargs:
        lb, ub = kwargs["bounds"]
        kwargs = dict(kwargs, bounds=(_tree_of(lb), _tree_of(ub)))
    popt, pcov = curve_fit(peaks, X, Y, P0, **kwargs)
    np.testing.assert_allclose(_flat(popt), popt_ref, rtol=1e-9)
    np.testing.assert_allclose(pcov, pcov_ref, rtol=1e-6)
    errors = standard_errors(pcov, P0)
    assert errors["peaks"][1]["width"] == pytest.approx(np.sqrt(pcov_ref[6, 6]))
    assert set(errors) == {"background", "peaks"} and len(errors["peaks"]) == 2


def _tree_of(flat):
    return {
        "background": flat[0],
        "peaks": [
            {"center": flat[1], "height": flat[2], "width": flat[3]},
            {"center": flat[4], "height": flat[5], "width": flat[6]},
        ],
    }


def test_curve_fit_pytree_xdata_full_output_and_nan_policy(x64):
    def model(data, p):
        return p["a"] * data["t"] + p["b"] * data["s"]

    t = np.linspace(0.0, 1.0, 20)
    s = np.cos(t)
    y = 2.0 * t - 0.5 * s
    popt, _, info, _, ier = curve_fit(
        model, {"t": t, "s": s}, y, {"a": 1.0, "b": 1.0}, full_output=True
    )
    assert popt["a"] == pytest.approx(2.0) and popt["b"] == pytest.approx(-0.5)
    assert ier in (1, 2, 3, 4) and info["fvec"].shape == (20,)
    y_nan = Y.copy()
    y_nan[5] = np.nan
    popt_ref, _ = sopt.curve_fit(_flat_f, X, y_nan, P0_FLAT, jac=_flat_jac, nan_policy="omit")
    popt, _ = curve_fit(peaks, X, y_nan, P0, nan_policy="omit")
    np.testing.assert_allclose(_flat(popt), popt_ref, rtol=1e-9)


def test_curve_fit_errors_name_the_argument(x64):
    with pytest.raises(ValueError, match="Unable to determine number of fit parameters"):
        curve_fit(lambda x: x, X, Y)  # scipy's error: `f` takes no parameter after `xdata`
    with pytest.raises(TypeError, match="`f` must be callable"):
        curve_fit("peaks", X, Y, P0)
    with pytest.raises(ValueError, match=r"`p0` must be finite"):
        curve_fit(peaks, X, Y, dict(P0, background=np.inf))
    with pytest.raises(ValueError, match=r"`bounds\.lb`"):
        curve_fit(peaks, X, Y, P0, bounds=Bounds(lb={"nope": 0.0}))
    with pytest.raises(ValueError, match="`pcov` has shape"):
        standard_errors(np.eye(3), P0)


# ---------------------------------------------------------------------------------------------
# root


def equilibrium(p, total):
    """A + B <-> C with K = 10: free A, B and the complex C at equilibrium."""
    a, b, c = p["free"]["a"], p["free"]["b"], p["bound"]
    return {
        "mass": jnp.stack([a + c - total[0], b + c - total[1]]),
        "law": jnp.reshape(c - 10.0 * a * b, (1,)),
    }


X0_ROOT = {"free": {"a": 0.5, "b": 0.5}, "bound": 0.5}
TOTAL = jnp.array([1.0, 2.0])


def _flat_equilibrium(u):
    out = equilibrium({"free": {"a": u[0], "b": u[1]}, "bound": u[2]}, TOTAL)
    return jnp.concatenate([out["law"], out["mass"]])  # optree order of the output: law, mass


# optree order of X0_ROOT: bound, free.a, free.b
def _flat_equilibrium_ordered(v):
    return _flat_equilibrium(jnp.stack([v[1], v[2], v[0]]))


@pytest.mark.parametrize(
    "method",
    [
        "hybr",
        "lm",
        "broyden1",
        "broyden2",
        "anderson",
        "linearmixing",
        "diagbroyden",
        "excitingmixing",
        "krylov",
        "df-sane",
    ],
)
def test_root_every_method_on_pytrees(method, x64):
    kwargs = {}
    if method in ("linearmixing", "excitingmixing", "diagbroyden"):
        kwargs = {"options": {"maxiter": 2000, "jac_options": {"alpha": 0.05}}}
    result = root(equilibrium, X0_ROOT, args=(TOTAL,), method=method, **kwargs)
    values = jax.jit(_flat_equilibrium_ordered)
    flat_kwargs = dict(kwargs)
    if method in ("hybr", "lm"):
        flat_kwargs["jac"] = lambda v: np.asarray(jax.jacfwd(_flat_equilibrium_ordered)(v))
    if method != "krylov":
        reference = sopt.root(
            lambda v: np.asarray(values(v), np.float64),
            np.array([0.5, 0.5, 0.5]),
            method=method,
            **flat_kwargs,
        )
        np.testing.assert_allclose(_flat(result.x), reference.x, rtol=1e-9, atol=1e-12)
        assert result.nfev == reference.nfev and result.success == reference.success
    assert set(result.fun) == {"mass", "law"} and result.fun["mass"].shape == (2,)
    if result.success:
        c = float(result.x["bound"])
        assert c == pytest.approx(
            10.0 * float(result.x["free"]["a"]) * float(result.x["free"]["b"]), rel=1e-4
        )


def test_krylov_uses_exact_products_not_finite_differences(x64):
    def fun(p):
        x = p["x"]
        return {"x": 0.1 * x**3 + 2.0 * x + 0.5 * jnp.roll(x, 1) - jnp.linspace(0.1, 1.0, x.size)}

    x0 = {"x": jnp.zeros(30)}
    ours = root(fun, x0, method="krylov")
    flat = jax.jit(lambda v: fun({"x": v})["x"])
    scipy_fd = sopt.root(lambda v: np.asarray(flat(v), np.float64), np.zeros(30), method="krylov")
    assert ours.success and scipy_fd.success
    np.testing.assert_allclose(ours.x["x"], scipy_fd.x, rtol=1e-5)
    # scipy spends an evaluation of `fun` on every finite-difference product; exact products
    # leave only the Newton steps' evaluations.
    assert ours.nfev < scipy_fd.nfev / 3


def test_root_errors_and_callback(x64):
    with pytest.raises(ValueError, match="`fun` must return as many elements as `x0`"):
        root(lambda p: p["x"][:2], {"x": jnp.ones(3)})
    with pytest.raises(ValueError, match="`method` must be one of"):
        root(equilibrium, X0_ROOT, args=(TOTAL,), method="newton")
    seen = []
    root(
        equilibrium,
        X0_ROOT,
        args=(TOTAL,),
        method="broyden1",
        callback=lambda x, f: seen.append((x, f)),
    )
    assert seen and set(seen[0][0]) == {"free", "bound"} and set(seen[0][1]) == {"mass", "law"}
    with pytest.raises(TypeError, match="`fun` must return floating-point"):
        root(lambda p: {"x": jnp.arange(3)}, {"x": jnp.ones(3)})


def test_root_with_jac_true_and_a_user_jacobian(x64):
    def with_jacobian(p, total):
        flat = jnp.stack([p["bound"], p["free"]["a"], p["free"]["b"]])
        return equilibrium(p, total), jax.jacfwd(_flat_equilibrium_ordered)(flat)

    auto = root(equilibrium, X0_ROOT, args=(TOTAL,))
    given = root(with_jacobian, X0_ROOT, args=(TOTAL,), jac=True)
    user = root(
        equilibrium,
        X0_ROOT,
        args=(TOTAL,),
        jac=lambda p, total: with_jacobian(p, total)[1],
    )
    for other in (given, user):
        # Values evaluated eagerly (jac=True) round differently from the compiled ones: the
        # paths agree to hybr's default xtol.
        assert other.success
        np.testing.assert_allclose(_flat(other.x), _flat(auto.x), rtol=1e-6)


def test_curve_fit_with_a_covariance_sigma(x64):
    idx = np.arange(X.size)
    cov = 0.05**2 * np.exp(-np.abs(idx[:, None] - idx[None, :]) / 3.0)
    popt_ref, pcov_ref = sopt.curve_fit(_flat_f, X, Y, P0_FLAT, jac=_flat_jac, sigma=cov)
    popt, pcov = curve_fit(peaks, X, Y, P0, sigma=cov)
    np.testing.assert_allclose(_flat(popt), popt_ref, rtol=1e-9)
    np.testing.assert_allclose(pcov, pcov_ref, rtol=1e-6)


def test_curve_fit_user_jacobian_takes_the_parameter_pytree(x64):
    seen = []

    def jac(x, p):
        seen.append(sorted(p))
        return _flat_jac(x, *_flat(p))

    popt_auto, pcov_auto = curve_fit(peaks, X, Y, P0)
    popt, pcov = curve_fit(peaks, X, Y, P0, jac=jac)
    np.testing.assert_allclose(_flat(popt), _flat(popt_auto), rtol=1e-10)
    np.testing.assert_allclose(pcov, pcov_auto, rtol=1e-8)
    assert seen[0] == ["background", "peaks"]
