"""`least_squares` on pytrees: scipy's results on the flat problem, the matrix-free `lsmr` path,
`x_scale` and bounds as pytrees, the result's shapes, and errors that name the argument."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from scipy.sparse.linalg import LinearOperator

from pytree_minimize import Bounds, least_squares
from pytree_minimize._core import closures
from pytree_minimize._core.cache import CACHE

T = np.linspace(0.0, 3.0, 37)
Y = 1.5 * np.exp(-0.7 * T) + 0.3 * np.exp(-3.0 * T) + 0.05 * np.cos(5 * T)


def model_flat(v, t=T):
    return v[0] * jnp.exp(-v[1] * t) + v[2] * jnp.exp(-v[3] * t) + v[4]


def residual_flat(v):
    return model_flat(v) - Y


X0_FLAT = np.array([1.0, 0.5, 0.5, 2.0, 0.0])


def residual_tree(p):
    v = jnp.concatenate([p["slow"], p["fast"], p["offset"][None]])
    out = residual_flat(v)
    return {"early": out[:10], "late": out[10:].reshape(3, 9)}


def x0_tree():
    return {"slow": jnp.array([1.0, 0.5]), "fast": jnp.array([0.5, 2.0]), "offset": jnp.array(0.0)}


def _flat(tree):
    return np.concatenate([np.ravel(tree["fast"]), [float(tree["offset"])], np.ravel(tree["slow"])])


def _reference(method, **kwargs):
    """scipy on the flat vector in the pytree's optree order (fast, offset, slow)."""
    order = np.array([2, 3, 4, 0, 1])  # flat position of each optree entry

    def fun(u):
        v = jnp.zeros(5).at[order].set(u)
        out = residual_flat(v)
        return jnp.concatenate([out[:10], out[10:]])

    values, jacobian = jax.jit(fun), jax.jit(jax.jacfwd(fun))
    return sopt.least_squares(
        lambda u: np.asarray(values(u), np.float64),
        X0_FLAT[order],
        jac=lambda u: np.asarray(jacobian(u), np.float64),
        method=method,
        **kwargs,
    )


@pytest.mark.parametrize(
    "method, kwargs",
    [
        ("trf", {}),
        ("dogbox", {}),
        ("lm", {}),
        ("trf", {"loss": "soft_l1", "f_scale": 0.1}),
        ("trf", {"x_scale": "jac"}),
        ("dogbox", {"bounds": ([-1, 0, 0, 0, 0], [1, 5, 5, 5, 5])}),
    ],
)
def test_same_as_scipy_on_the_flat_problem(method, kwargs, x64):
    reference = _reference(method, **kwargs)
    if "bounds" in kwargs:
        # (fast, offset, slow) order in the flat reference; the pytree bounds say it per leaf.
        kwargs["bounds"] = Bounds(
            lb={"fast": jnp.array([-1.0, 0.0]), "offset": 0.0, "slow": 0.0},
            ub={"fast": jnp.array([1.0, 5.0]), "offset": 5.0, "slow": 5.0},
        )
    result = least_squares(residual_tree, x0_tree(), method=method, **kwargs)
    np.testing.assert_allclose(_flat(result.x), reference.x, rtol=1e-10, atol=1e-12)
    assert result.nfev == reference.nfev and result.njev == reference.njev
    assert result.cost == pytest.approx(reference.cost, rel=1e-10)
    assert result.status == reference.status and result.message == reference.message
    np.testing.assert_allclose(result.jac, reference.jac, rtol=1e-8, atol=1e-12)
    assert result.optimality == pytest.approx(reference.optimality, rel=1e-6, abs=1e-12)
    # Shapes: x, grad, active_mask like x0; fun like the residuals.
    assert result.x["slow"].shape == (2,) and isinstance(result.x["slow"], jax.Array)
    assert result.grad["offset"].shape == () and result.active_mask["fast"].shape == (2,)
    assert result.fun["early"].shape == (10,) and result.fun["late"].shape == (3, 9)
    np.testing.assert_allclose(_flat(result.grad), reference.grad, rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(_flat(result.active_mask), reference.active_mask)
    if "bounds" in kwargs:
        np.testing.assert_array_equal(_flat(result.active_bounds), reference.active_mask)
        assert reference.active_mask.any()  # the comparison sees an active bound
    else:
        assert "active_bounds" not in result


def test_x_scale_pytree_prefix_equals_flat_vector(x64):
    reference = _reference("trf", x_scale=np.array([1.0, 1.0, 2.0, 3.0, 3.0]))
    result = least_squares(
        residual_tree, x0_tree(), x_scale={"fast": 1.0, "offset": 2.0, "slow": 3.0}
    )
    np.testing.assert_allclose(_flat(result.x), reference.x, rtol=1e-10)
    assert result.nfev == reference.nfev


def test_finite_differences_and_user_jacobian_pass_through(x64):
    auto = least_squares(residual_tree, x0_tree())
    for jac in ("2-point", "3-point", "cs"):
        result = least_squares(residual_tree, x0_tree(), jac=jac)
        assert result.success and result.cost == pytest.approx(auto.cost, rel=1e-6)
    seen = []
    reference_jac = jax.jit(jax.jacfwd(lambda u: _reference_fun(u)))

    def user_jac(p):
        seen.append(type(p["slow"]))
        return np.asarray(reference_jac(jnp.asarray(_flat(p))))

    given = least_squares(residual_tree, x0_tree(), jac=user_jac)
    np.testing.assert_allclose(_flat(given.x), _flat(auto.x), rtol=1e-10)
    assert given.nfev == auto.nfev and seen[0] is type(jnp.zeros(1))


def _reference_fun(u):
    v = jnp.zeros(5).at[jnp.array([2, 3, 4, 0, 1])].set(u)
    return residual_flat(v)


def test_args_and_kwargs_reach_fun_and_never_recompile(x64):
    def fun(p, t, *, y):
        return p["a"] * jnp.exp(-p["k"] * t) - y

    t = jnp.linspace(0.0, 1.0, 8)
    first = least_squares(fun, {"a": 1.0, "k": 1.0}, args=(t,), kwargs={"y": 2 * jnp.exp(-t)})
    assert first.x["a"] == pytest.approx(2.0) and first.x["k"] == pytest.approx(1.0)
    entries = len(CACHE)
    second = least_squares(fun, {"a": 1.0, "k": 1.0}, args=(t,), kwargs={"y": 3 * jnp.exp(-2 * t)})
    assert second.x["a"] == pytest.approx(3.0) and second.x["k"] == pytest.approx(2.0)
    assert len(CACHE) == entries  # new values of `args` and `kwargs` reuse every compilation


def test_callback_sees_pytrees_and_can_stop(x64):
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result)
        if len(seen) == 2:
            raise StopIteration

    result = least_squares(residual_tree, x0_tree(), callback=callback)
    assert len(seen) == 2 and set(seen[0].x) == {"slow", "fast", "offset"}
    assert result.status == -2
    legacy = []
    least_squares(residual_tree, x0_tree(), callback=lambda xk: legacy.append(xk), max_nfev=3)
    assert legacy and set(legacy[0]) == {"slow", "fast", "offset"}
    assert len(result.history["fun"]) == 0 or result.history["fun"][0] > 0


def test_x0_not_mutated_and_float32_leaves_keep_their_dtype():
    t = np.linspace(0.0, 1.0, 12, dtype=np.float32)
    y = (2.0 * np.exp(-1.5 * t)).astype(np.float32)

    def fun(p):
        return p["amp"][0] * jnp.exp(-p["rate"] * t) - y

    x0 = {"amp": np.array([1.0], np.float32), "rate": np.float32(1.0)}
    before = {k: np.copy(v) for k, v in x0.items()}
    result = least_squares(fun, x0)
    for key in x0:
        np.testing.assert_array_equal(x0[key], before[key])
    assert result.x["amp"].dtype == np.float32 and isinstance(result.x["rate"], np.float32)
    assert result.x["rate"] == pytest.approx(1.5, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# tr_solver='lsmr' never forms the m-by-n Jacobian.

M_LSMR = 41


def _compiled_through(fun):
    """The function the cache keeps `fun`'s evaluations under, and the closed-over arrays they
    take as their dynamic inputs: a closure is compiled through its lifted form."""
    known = closures._BY_OBJECT.get(fun)
    if known is not None and known.fun is not None:
        return known.fun, list(known.arrays)
    return fun, []


def _compiled_for(fun):
    """The cache's compiled functions for `fun`, by key (its private table, for inspection)."""
    owner, _ = _compiled_through(fun)
    return {
        full_key[2]: entry.compiled
        for full_key, entry in CACHE._table.items()
        if entry.owned_by(owner)
    }


def _compiled_text(fun):
    """The StableHLO of every evaluation compiled for `fun`, lowered with the shapes it takes."""
    n = 7
    specs = {
        "x": jax.ShapeDtypeStruct((n,), jnp.float64),
        "u": jax.ShapeDtypeStruct((M_LSMR,), jnp.float64),
    }
    texts = []
    _, dynamic = _compiled_through(fun)
    for key, compiled in _compiled_for(fun).items():
        kind = key[0]
        if kind == "residual_layout":
            continue
        if kind == "residual_vjp":
            lowered = compiled.lower(specs["x"], specs["u"], dynamic)
        elif kind == "residual_jvp":
            lowered = compiled.lower(specs["x"], specs["x"], dynamic)
        else:
            lowered = compiled.lower(specs["x"], dynamic)
        texts.append(lowered.as_text())
    return "\n".join(texts)


def _lsmr_problem():
    t = jnp.linspace(0.0, 2.0, M_LSMR)
    target = 1.2 * jnp.exp(-0.8 * t) + 0.1 * t

    def fun(p):
        amps, rates = p["terms"]["amp"], p["terms"]["rate"]
        out = p["line"][0] + p["line"][1] * t + amps[0] * jnp.exp(-rates[0] * t)
        out = out + amps[1] * jnp.exp(-rates[1] * t) + p["extra"] * t**2
        return out - target

    x0 = {
        "terms": {"amp": jnp.array([1.0, 0.1]), "rate": jnp.array([1.0, 3.0])},
        "line": jnp.array([0.0, 0.0]),
        "extra": jnp.array(0.0),
    }
    return fun, x0


def test_lsmr_never_forms_the_jacobian_and_the_detector_can_tell(x64):
    dense_shape = f"tensor<{M_LSMR}x7xf64>"
    fun, x0 = _lsmr_problem()
    result = least_squares(fun, x0, tr_solver="lsmr")
    assert result.success and result.cost < 1e-6
    assert not isinstance(result.jac, np.ndarray)  # scipy keeps the operator
    assert dense_shape not in _compiled_text(fun)
    kinds = {key[0] for key in _compiled_for(fun)}
    assert {"residual_jvp", "residual_vjp"} <= kinds and not any("jac" in k for k in kinds)
    # The detector sees the matrix as soon as a path builds it.
    exact = least_squares(fun, x0, tr_solver="exact")
    assert dense_shape in _compiled_text(fun)
    assert exact.success

    # The lsmr path is scipy's with a LinearOperator from exact products on the flat vector.
    def flat_fun(u):  # optree order: extra, line, terms.amp, terms.rate
        tree = {"extra": u[0], "line": u[1:3], "terms": {"amp": u[3:5], "rate": u[5:7]}}
        return fun(tree)

    values = jax.jit(flat_fun)
    jvp = jax.jit(lambda u, v: jax.jvp(flat_fun, (u,), (v,))[1])
    vjp = jax.jit(lambda u, w: jax.vjp(flat_fun, u)[1](w)[0])

    def operator(u):
        u = np.array(u)
        return LinearOperator(
            (M_LSMR, 7),
            matvec=lambda v: np.asarray(jvp(u, np.ravel(v)), np.float64),
            rmatvec=lambda w: np.asarray(vjp(u, np.ravel(w)), np.float64),
            dtype=np.float64,
        )

    u0 = np.array([0.0, 0.0, 0.0, 1.0, 0.1, 1.0, 3.0])
    reference = sopt.least_squares(
        lambda u: np.asarray(values(u), np.float64), u0, jac=operator, tr_solver="lsmr"
    )
    flat_x = np.concatenate([np.ravel(v) for v in jax.tree.leaves(result.x)])
    np.testing.assert_allclose(flat_x, reference.x, rtol=1e-8, atol=1e-10)
    assert result.nfev == reference.nfev and result.njev == reference.njev


# ---------------------------------------------------------------------------------------------
# Errors name the argument.


def test_errors_name_the_argument(x64):
    x0 = x0_tree()
    with pytest.raises(TypeError, match="`fun` must return floating-point"):
        least_squares(lambda p: jnp.arange(3), x0)
    with pytest.raises(ValueError, match="method 'lm' needs at least as many residuals"):
        least_squares(lambda p: p["slow"], x0, method="lm")
    with pytest.raises(ValueError, match="`bounds` were given, but method 'lm'"):
        least_squares(residual_tree, x0, method="lm", bounds=Bounds(lb=0.0))
    with pytest.raises(ValueError, match=r"`bounds\.lb`.*structure"):
        least_squares(residual_tree, x0, bounds=Bounds(lb={"nope": 0.0}))
    with pytest.raises(ValueError, match=r"`x0` must be finite; `x0\['fast'\]`"):
        least_squares(residual_tree, dict(x0, fast=jnp.array([np.nan, 1.0])))
    with pytest.raises(ValueError, match="`x0` lies outside `bounds`"):
        least_squares(residual_tree, x0, bounds=Bounds(lb=3.0))
    with pytest.raises(ValueError, match="`method` must be one of"):
        least_squares(residual_tree, x0, method="newton")
    with pytest.raises(ValueError, match="`x_scale`"):
        least_squares(residual_tree, x0, x_scale={"fast": -1.0, "offset": 1.0, "slow": 1.0})
    with pytest.raises(TypeError, match=r"`x0\['a'\]` has dtype int"):
        least_squares(lambda p: p["a"] * 1.0, {"a": np.arange(3)})
    with pytest.raises(TypeError, match="`fun` must be callable"):
        least_squares(None, x0)
    with pytest.raises(ValueError, match="`jac` must be None"):
        least_squares(residual_tree, x0, jac="4-point")


def test_the_objectives_own_exception_reaches_the_caller():
    class Boom(Exception):
        pass

    def fun(p):
        raise Boom

    with pytest.raises(Boom):
        least_squares(fun, {"a": 1.0})


def test_complex_leaf_is_fitted_as_its_real_and_imaginary_parts(x64):
    w = jnp.array([1.0 + 2.0j, 0.5 - 1.0j, 2.0 + 0.0j])
    target = (1.5 - 0.5j) * w

    def fun(p):
        d = p["z"] * w - target
        return {"re": jnp.real(d), "im": jnp.imag(d)}

    result = least_squares(fun, {"z": jnp.array(0.0 + 0.0j)})
    assert complex(result.x["z"]) == pytest.approx(1.5 - 0.5j, abs=1e-10)
    assert result.x["z"].dtype == jnp.complex128 and result.cost < 1e-20


def test_history_records_the_cost_at_each_callback(x64):
    costs = []
    result = least_squares(
        residual_tree,
        x0_tree(),
        callback=lambda intermediate_result: costs.append(intermediate_result.cost),
    )
    assert len(costs) > 2 and result.history["fun"] == costs
    assert costs[-1] == pytest.approx(result.cost)


def test_progress_bar_counts_the_iterations(capsys, x64):
    costs = []
    result = least_squares(
        residual_tree,
        x0_tree(),
        progress=True,
        callback=lambda intermediate_result: costs.append(intermediate_result.cost),
    )
    err = capsys.readouterr().err
    assert f"{len(costs)}it" in err and "fun=" in err
    assert len(result.history["fun"]) == len(costs) and len(result.history["time"]) == len(costs)


def test_traced_values_point_to_the_entry_point():
    @jax.jit
    def solve(a):
        return least_squares(lambda p: p["x"] - a, {"x": a}).x

    with pytest.raises(TypeError, match="`least_squares` was called on traced values"):
        solve(jnp.ones(2))
