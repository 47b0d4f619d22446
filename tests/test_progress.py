"""`result.history` and the `progress=` bar, checked against scipy's own Rosenbrock function."""

from __future__ import annotations

import io
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from tqdm import tqdm

from pytree_minimize import minimize
from pytree_minimize._core.methods import METHOD_NAMES

GRADIENT_FREE = {"Nelder-Mead", "Powell", "COBYLA", "COBYQA"}
CONSTRAINED = {"COBYLA", "COBYQA", "SLSQP", "trust-constr"}


def flat(p):
    return np.concatenate([np.asarray(p["a"]), np.asarray(p["b"])])


def rosen_tree(p):
    x = jnp.concatenate([p["a"], p["b"]])
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def x0():
    # float64 numpy leaves: the objective runs in float64, so scipy's `rosen` is an exact oracle.
    # The Hessian is positive definite here, which dogleg needs for its first step.
    return {"a": np.array([1.5, 2.0]), "b": np.array([3.0, 8.0])}


# An inactive constraint, so the constrained methods take the same problem.
LOOSE = {"type": "ineq", "fun": lambda p: 10.0 - p["a"][0]}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_history_matches_the_objective_at_each_iterate(method):
    iterates = []
    if method == "TNC":  # scipy calls TNC's callback only as callback(xk)

        def callback(xk):
            iterates.append(flat(xk))
    else:

        def callback(intermediate_result):
            iterates.append(flat(intermediate_result.x))

    kwargs = {"constraints": [LOOSE]} if method in CONSTRAINED else {}
    limit = {"maxfun": 60} if method == "TNC" else {"maxiter": 25}  # TNC counts evaluations
    res = minimize(rosen_tree, x0(), method=method, callback=callback, options=limit, **kwargs)
    history = res.history

    expected_keys = {"fun", "time"} if method in GRADIENT_FREE else {"fun", "time", "grad_norm"}
    assert set(history) == expected_keys
    nit = res.get("nit")
    if nit is not None:
        assert all(len(values) == nit for values in history.values())
    n = min(len(iterates), len(history["fun"]))
    assert n >= 5 or (method == "Powell" and n >= 3)

    fun = [sopt.rosen(x) for x in iterates[:n]]
    np.testing.assert_allclose(history["fun"][:n], fun, rtol=1e-12, atol=1e-14)
    if "grad_norm" in history:
        norms = [np.linalg.norm(sopt.rosen_der(x)) for x in iterates[:n]]
        np.testing.assert_allclose(history["grad_norm"][:n], norms, rtol=1e-10, atol=1e-12)

    times = np.asarray(history["time"])
    assert times[0] >= 0.0
    assert np.all(np.diff(times) >= 0.0)


def test_history_follows_scipys_own_run_on_the_flat_problem():
    seen = []
    sopt.minimize(
        sopt.rosen,
        flat(x0()),
        jac=sopt.rosen_der,
        method="L-BFGS-B",
        callback=lambda intermediate_result: seen.append(intermediate_result.fun),
        options={"maxiter": 20},
    )
    # Rounding differences between autodiff and scipy's hand-written gradient grow along the
    # path, so compare the first 20 iterations.
    res = minimize(rosen_tree, x0(), method="L-BFGS-B", options={"maxiter": 20})
    assert len(res.history["fun"]) == res.nit == len(seen)
    np.testing.assert_allclose(res.history["fun"], seen, rtol=1e-8, atol=1e-12)


def test_grad_norm_with_a_user_jacobian():
    def grad(p):
        g = sopt.rosen_der(flat(p))
        return {"a": g[:2], "b": g[2:]}

    iterates = []
    res = minimize(
        rosen_tree,
        x0(),
        method="BFGS",
        jac=grad,
        callback=lambda intermediate_result: iterates.append(flat(intermediate_result.x)),
        options={"maxiter": 10},
    )
    norms = [np.linalg.norm(sopt.rosen_der(x)) for x in iterates]
    np.testing.assert_allclose(res.history["grad_norm"], norms, rtol=1e-12)


def test_no_grad_norm_when_scipy_takes_finite_differences_out_of_sight(capsys):
    res = minimize(rosen_tree, x0(), method="BFGS", jac="2-point", progress=True)
    assert set(res.history) == {"fun", "time"}
    assert "|grad|" not in capsys.readouterr().err


def test_trust_constr_reports_its_finite_difference_gradient():
    iterates = []
    res = minimize(
        rosen_tree,
        x0(),
        method="trust-constr",
        jac="2-point",
        callback=lambda intermediate_result: iterates.append(flat(intermediate_result.x)),
        options={"maxiter": 15},
    )
    norms = [np.linalg.norm(sopt.rosen_der(x)) for x in iterates[: res.nit]]
    # 2-point differences: accurate to about sqrt(machine epsilon) times the curvature.
    np.testing.assert_allclose(res.history["grad_norm"], norms, rtol=1e-4)


def test_progress_bar_writes_iterations_fun_and_gradient_norm_to_stderr(capsys):
    res = minimize(rosen_tree, x0(), method="BFGS", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert "minimize" in err
    assert f"{res.nit}it" in err
    final = err.rsplit("\r", 1)[-1]
    assert f"fun={res.history['fun'][-1]:.6g}" in final
    assert f"|grad|={res.history['grad_norm'][-1]:.3g}" in final


def test_progress_bar_without_gradient_shows_no_gradient_norm(capsys):
    res = minimize(rosen_tree, x0(), method="Nelder-Mead", progress=True)
    err = capsys.readouterr().err
    assert f"{len(res.history['fun'])}it" in err or f"{res.nit - 1}it" in err
    assert "fun=" in err
    assert "|grad|" not in err


def test_progress_takes_numpy_booleans(capsys):
    minimize(rosen_tree, x0(), method="BFGS", progress=np.bool_(False))
    assert capsys.readouterr().err == ""
    res = minimize(rosen_tree, x0(), method="BFGS", progress=np.bool_(True))
    assert f"{res.nit}it" in capsys.readouterr().err


def test_progress_is_off_by_default(capsys):
    minimize(rosen_tree, x0(), method="BFGS")
    minimize(rosen_tree, x0(), method="BFGS", progress=False)
    assert capsys.readouterr().err == ""


def test_progress_off_never_imports_tqdm():
    code = (
        "import sys\n"
        "import numpy as np, jax.numpy as jnp\n"
        "from pytree_minimize import minimize\n"
        "minimize(lambda p: jnp.sum(p['w'] ** 2), {'w': np.ones(3)})\n"
        "print('tqdm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def test_a_tqdm_instance_counts_across_runs_and_stays_open():
    stream = io.StringIO()
    bar = tqdm(file=stream, desc="mine")
    first = minimize(rosen_tree, x0(), method="BFGS", progress=bar)
    second = minimize(rosen_tree, x0(), method="CG", progress=bar)
    assert bar.n == first.nit + second.nit
    assert not bar.disable  # still open: the caller closes it
    assert bar.postfix is not None and "fun=" in bar.postfix
    bar.close()
    assert "mine" in stream.getvalue()


@pytest.mark.parametrize("progress", [1, "yes", object()])
def test_progress_rejects_other_values(progress):
    with pytest.raises(TypeError, match="`progress`"):
        minimize(rosen_tree, x0(), method="BFGS", progress=progress)


@pytest.mark.parametrize("maxiter", [0, 1, 5])
def test_history_ends_at_the_result_when_nelder_mead_counts_an_unreported_iteration(maxiter):
    # scipy's Nelder-Mead counts one iteration more than it calls back (with `maxiter=0`, one
    # and none): the missing entry is the result's, never NaN.
    reported = []
    ref = sopt.minimize(
        sopt.rosen,
        flat(x0()),
        method="Nelder-Mead",
        options={"maxiter": maxiter},
        callback=lambda intermediate_result: reported.append(intermediate_result.fun),
    )
    res = minimize(rosen_tree, x0(), method="Nelder-Mead", options={"maxiter": maxiter})
    assert res.nit == ref.nit == len(reported) + 1
    history = res.history
    assert len(history["fun"]) == len(history["time"]) == ref.nit
    np.testing.assert_allclose(history["fun"], [*reported, ref.fun], rtol=1e-12)
    assert np.all(np.isfinite(history["time"])) and np.all(np.diff(history["time"]) >= 0.0)


def test_slsqp_history_is_the_objective_at_the_points_scipy_reports():
    # x log x is NaN at negative x, where SLSQP's full steps land: scipy's callback reports those
    # points (NaN included), and history follows it.
    def entropy_flat(v):
        return float(np.sum(v * np.log(v)) + 0.01 * np.sum((v - 3.0) ** 2))

    def entropy(p):
        v = jnp.concatenate([p["a"], p["b"]])
        return jnp.sum(v * jnp.log(v)) + 0.01 * jnp.sum((v - 3.0) ** 2)

    start = {"a": np.array([0.05, 2.0]), "b": np.array([0.7])}
    reported = []
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = sopt.minimize(
            entropy_flat,
            flat(start),
            jac=lambda v: np.log(v) + 1.0 + 0.02 * (v - 3.0),
            method="SLSQP",
            callback=lambda intermediate_result: reported.append(
                entropy_flat(intermediate_result.x)
            ),
        )
    res = minimize(entropy, start, method="SLSQP")
    assert res.nit == ref.nit == len(reported)
    assert np.isnan(reported).any()
    np.testing.assert_allclose(res.history["fun"], reported, rtol=1e-10)
    np.testing.assert_allclose(res.history["fun"][-1], res.fun, rtol=1e-12)


@pytest.mark.parametrize("n", [0, 3, 10_000, 10_001, 30_000])
def test_gradient_norm_on_both_sides_of_the_blas_limit(n):
    from pytree_minimize._core.progress import _norm

    grad = np.random.default_rng(n).normal(size=n)
    assert _norm(grad) == pytest.approx(np.sqrt(np.sum(grad**2)), rel=1e-13, abs=0.0)
    assert _norm(grad[::2]) == pytest.approx(np.sqrt(np.sum(grad[::2] ** 2)), rel=1e-13, abs=0.0)
