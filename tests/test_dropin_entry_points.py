"""The drop-in rule in the eight entry points beside `minimize`: where scipy accepts an input, the
JAX core and every port do what scipy does with it (its casts, calling conventions, counts,
warnings, error types); the NumPy port hands scipy's own problems to scipy's own function; and
`pytree_minimize.ports.numpy` replaces the `scipy.optimize` module."""

from __future__ import annotations

import pickle
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

import pytree_minimize
from pytree_minimize import Bounds, LinearConstraint
from pytree_minimize._core import dropin as _dropin
from pytree_minimize.ports import numpy as numpy_port

X = np.linspace(0.0, 3.0, 30)
Y = 2.0 * np.exp(-1.5 * X) + 0.3


def _decay_np(x, amp, rate, offset):
    return amp * np.exp(-rate * x) + offset


def _decay_jax(x, amp, rate, offset):
    return amp * jnp.exp(-rate * x) + offset


def _shifted_np(x):
    return np.asarray(x, dtype=float) - np.array([1.0, 2.0])


def _shifted_jax(x):
    return x - jnp.array([1.0, 2.0])


def _bowl_np(x):
    return float(np.sum((np.asarray(x) - 0.3) ** 2))


def _bowl_jax(x):
    return jnp.sum((x - 0.3) ** 2)


# ---------------------------------------------------------------------------------------------
# x0 as scipy reads it, in every entry point and framework.


@pytest.mark.parametrize("x0", [[0, 0], (0, 1), np.array([3, -1])], ids=["list", "tuple", "int"])
def test_least_squares_and_root_read_x0_as_scipy(x64, x0):
    for entry, scipy_entry in (
        ((pytree_minimize.least_squares, numpy_port.least_squares), sopt.least_squares),
        ((pytree_minimize.root, numpy_port.root), sopt.root),
    ):
        expected = scipy_entry(_shifted_np, x0)
        for function, fun in zip(entry, (_shifted_jax, _shifted_np), strict=True):
            result = function(fun, x0)
            assert isinstance(result.x, np.ndarray) and result.x.dtype == np.float64
            assert result.x.shape == expected.x.shape == (2,)
            np.testing.assert_allclose(result.x, expected.x, atol=1e-8)


def test_scalar_x0_gives_a_one_element_array_as_in_scipy(x64):
    expected = sopt.least_squares(lambda x: x**2 - 4.0, 1)
    for least_squares in (pytree_minimize.least_squares, numpy_port.least_squares):
        result = least_squares(lambda x: x**2 - 4.0, 1)
        assert result.x.shape == expected.x.shape == (1,)
        np.testing.assert_allclose(result.x, expected.x)
    expected = sopt.basinhopping(lambda x: float(np.cos(3 * x[0]) + x[0] ** 2), 1, niter=5, rng=0)
    result = pytree_minimize.basinhopping(
        lambda x: jnp.cos(3 * x[0]) + x[0] ** 2, 1, niter=5, rng=0
    )
    assert result.x.shape == expected.x.shape == (1,)
    np.testing.assert_allclose(result.x, expected.x, atol=1e-6)


def test_integer_list_x0_in_the_global_methods(x64):
    box = [(-1.0, 1.0)] * 2
    expected = sopt.dual_annealing(_bowl_np, box, x0=[0, 1], rng=1, maxiter=20)
    result = pytree_minimize.dual_annealing(_bowl_jax, box, x0=[0, 1], rng=1, maxiter=20)
    np.testing.assert_allclose(result.x, expected.x, atol=1e-6)
    expected = sopt.differential_evolution(_bowl_np, box, x0=[0, 1], rng=2, maxiter=5)
    result = pytree_minimize.differential_evolution(_bowl_jax, box, x0=[0, 1], rng=2, maxiter=5)
    np.testing.assert_allclose(result.x, expected.x, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# curve_fit: scipy's convention for p0 None or an array, the pytree one for a pytree p0.


def test_curve_fit_without_p0_counts_parameters_from_the_signature(x64):
    popt_ref, pcov_ref = sopt.curve_fit(_decay_np, X, Y)
    for curve_fit, model in (
        (pytree_minimize.curve_fit, _decay_jax),
        (numpy_port.curve_fit, _decay_np),
    ):
        popt, pcov = curve_fit(model, X, Y)
        assert isinstance(popt, np.ndarray) and popt.shape == (3,)
        np.testing.assert_allclose(popt, popt_ref, rtol=1e-7)
        np.testing.assert_allclose(pcov, pcov_ref, rtol=1e-5, atol=1e-14)


def test_curve_fit_without_p0_starts_inside_the_bounds_as_scipy(x64):
    bounds = ([0.0, 0.0, 0.0], [5.0, 5.0, 1.0])
    popt_ref, _ = sopt.curve_fit(_decay_np, X, Y, bounds=bounds)
    popt, _ = pytree_minimize.curve_fit(_decay_jax, X, Y, bounds=bounds)
    np.testing.assert_allclose(popt, popt_ref, rtol=1e-6)


@pytest.mark.parametrize(
    "p0", [[1, 1, 0], (1.0, 1.0, 0.0), np.array([1.0, 1.0, 0.0])], ids=["list", "tuple", "array"]
)
def test_curve_fit_with_an_array_p0_spreads_the_parameters(x64, p0):
    popt_ref, _ = sopt.curve_fit(_decay_np, X, Y, p0)
    popt, _ = pytree_minimize.curve_fit(_decay_jax, X, Y, p0)
    np.testing.assert_allclose(popt, popt_ref, rtol=1e-7)
    popt, _ = pytree_minimize.curve_fit(_decay_jax, X, Y, jnp.asarray(p0, dtype=jnp.float64))
    np.testing.assert_allclose(np.asarray(popt), popt_ref, rtol=1e-7)


def test_curve_fit_jacobian_in_scipys_convention(x64):
    def jac(x, amp, rate, offset):
        decay = np.exp(-rate * x)
        return np.stack([decay, -amp * x * decay, np.ones_like(x)], axis=1)

    popt_ref, _ = sopt.curve_fit(_decay_np, X, Y, [1.0, 1.0, 0.0], jac=jac)
    popt, _ = pytree_minimize.curve_fit(_decay_jax, X, Y, [1.0, 1.0, 0.0], jac=jac)
    np.testing.assert_allclose(popt, popt_ref, rtol=1e-7)


def test_curve_fit_with_a_pytree_p0_passes_it_whole():
    def model(x, p):
        return p["amp"] * np.exp(-p["rate"] * x) + p["offset"]

    popt_ref, _ = sopt.curve_fit(_decay_np, X, Y, [1.0, 1.0, 0.0])
    popt, _ = numpy_port.curve_fit(model, X, Y, {"amp": 1.0, "rate": 1.0, "offset": 0.0})
    assert set(popt) == {"amp", "rate", "offset"}
    np.testing.assert_allclose([popt["amp"], popt["rate"], popt["offset"]], popt_ref, rtol=1e-6)


def test_curve_fit_refuses_what_scipy_refuses():
    for curve_fit in (pytree_minimize.curve_fit, numpy_port.curve_fit):
        with pytest.raises(ValueError, match="Unable to determine number of fit parameters"):
            curve_fit(lambda x: x, X, Y)


# ---------------------------------------------------------------------------------------------
# The NumPy port is scipy for scipy's problems.


def _same_result(ours, theirs) -> None:
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    np.testing.assert_array_equal(ours.x, theirs.x)
    assert ours.nfev == theirs.nfev


def test_numpy_port_returns_scipys_own_results():
    box = [(-1.0, 1.0)] * 2
    calls = {
        "least_squares": ((_shifted_np, [0.0, 0.0]), {"bounds": ([0, 0], [0.5, 3])}),
        "root": ((_shifted_np, [0.0, 0.0]), {"method": "krylov"}),
        "differential_evolution": ((_bowl_np, box), {"rng": 0, "maxiter": 5}),
        "dual_annealing": ((_bowl_np, box), {"rng": 0, "maxiter": 5}),
        "basinhopping": ((_bowl_np, [1.0, 1.0]), {"rng": 0, "niter": 3}),
        "shgo": ((_bowl_np, box), {}),
        "direct": ((_bowl_np, box), {"maxfun": 200}),
    }
    for name, (args, kwargs) in calls.items():
        theirs = getattr(sopt, name)(*args, **kwargs)
        ours = getattr(numpy_port, name)(*args, **kwargs)
        if name == "least_squares":
            assert ours.pop("active_bounds") is not None  # the one field added to bounded results
        _same_result(ours, theirs)


def test_numpy_port_adds_history_only_to_a_monitored_run():
    box = [(-1.0, 1.0)] * 2
    seen = []
    plain = numpy_port.differential_evolution(_bowl_np, box, rng=0, maxiter=4, polish=False)
    watched = numpy_port.differential_evolution(
        _bowl_np, box, rng=0, maxiter=4, polish=False, callback=lambda xk, convergence: None
    )
    assert "history" not in plain
    assert len(watched.history["fun"]) == watched.nit
    np.testing.assert_array_equal(plain.x, watched.x)
    result = numpy_port.shgo(_bowl_np, box, callback=seen.append)
    assert seen and result.history["fun"][-1] == pytest.approx(result.fun, abs=1e-12)


def test_what_scipy_gets_from_the_numpy_port_pickles():
    """scipy pickles what it hands a process pool's `map` (`workers=pool.map`)."""

    def pickling_map(function, iterable):
        return list(map(pickle.loads(pickle.dumps(function)), iterable))

    result = numpy_port.least_squares(np.cos, [1.0], workers=pickling_map)
    np.testing.assert_allclose(np.cos(result.x), 0.0, atol=1e-8)
    result = numpy_port.differential_evolution(
        np.linalg.norm, [(-1.0, 1.0)], workers=pickling_map, updating="deferred", rng=0, maxiter=3
    )
    assert result.nfev > 0
    monitor = pytree_minimize._global.problem.Monitor(False)
    copy = pickle.loads(pickle.dumps(_dropin.BestSeen(np.linalg.norm, monitor)))
    assert copy.monitor is None and copy(np.array([3.0, 4.0])) == 5.0


def test_numpy_port_counts_every_call_of_fun_for_a_pytree_x0():
    calls = []

    def residuals(p):
        calls.append(1)
        return {"r": np.array([p["a"] - 1.0, 2.0 * p["b"] - 1.0])}

    result = numpy_port.root(residuals, {"a": 0.0, "b": 0.0}, method="hybr")
    assert result.success and len(calls) == result.nfev


# ---------------------------------------------------------------------------------------------
# Error types, legacy names and scipy's other conventions, in the core.


@pytest.mark.parametrize("port", ["jax", "numpy"])
def test_scipy_error_types_for_bad_bounds_and_scales(port):
    least_squares, de, direct = (
        (
            pytree_minimize.least_squares,
            pytree_minimize.differential_evolution,
            pytree_minimize.direct,
        )
        if port == "jax"
        else (numpy_port.least_squares, numpy_port.differential_evolution, numpy_port.direct)
    )
    x0 = {"a": np.array([2.0])}  # a pytree: the library's own reading, scipy's error types
    with pytest.raises(ValueError, match="`bounds`"):
        least_squares(lambda p: p["a"] - 1.0, x0, bounds=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="`x_scale`"):
        least_squares(lambda p: p["a"] - 1.0, x0, x_scale=1.0 + 2.0j)
    for bad in ([(-3)], [(-3, 3), (3, 4, 5)]):
        # The NumPy port hands these to scipy (no x0: scipy's problem), whose words they get.
        with pytest.raises(ValueError, match="`bounds`" if port == "jax" else None):
            de(_bowl_jax, bad, x0=np.zeros(2) if port == "jax" else None)
    for bad in ("bounds", 2.0, 0):
        with pytest.raises(ValueError):
            direct(_bowl_jax if port == "jax" else _bowl_np, bad)


def test_legacy_seed_takes_scipys_legacy_path(x64):
    box = [(-1.0, 1.0)] * 2
    for name, kwargs in (
        ("differential_evolution", {"maxiter": 5, "polish": False}),
        ("dual_annealing", {"maxiter": 5, "no_local_search": True}),
    ):
        theirs = getattr(sopt, name)(_bowl_np, box, seed=3, **kwargs)
        ours = getattr(pytree_minimize, name)(_bowl_jax, box, seed=3, **kwargs)
        np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-12)
        assert ours.nfev == theirs.nfev


def test_root_with_jac_true_and_a_method_without_jacobian_warns_as_scipy(x64):
    def fun_and_jac(x):
        return x**3 - 1.0, jnp.diag(3.0 * x**2)

    with pytest.warns(RuntimeWarning, match="Method broyden1 does not use the jacobian"):
        result = pytree_minimize.root(fun_and_jac, [2.0, 3.0], jac=True, method="broyden1")
    assert result.success
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-5)


def test_float32_residuals_are_differenced_in_float32():
    """scipy differences float32 residuals with a float32 step; a float64 step would see no
    change and stop at x0 reporting success."""
    x = np.linspace(0.0, 1.0, 20, dtype=np.float32)
    y = (2.0 + 3.0 * x).astype(np.float32)

    def err_jax(p):
        return (p[0] + p[1] * x - y).astype(jnp.float32)

    def err_tree(p):
        return (p["a"] + p["b"] * x - y).astype(np.float32)

    result = pytree_minimize.least_squares(err_jax, [-1.0, -1.0], jac="2-point")
    assert result.nfev > 2
    np.testing.assert_allclose(result.x, [2.0, 3.0], atol=1e-3)
    result = numpy_port.least_squares(err_tree, {"a": -1.0, "b": -1.0})
    assert result.nfev > 2
    np.testing.assert_allclose([result.x["a"], result.x["b"]], [2.0, 3.0], atol=1e-3)


def test_shgo_takes_open_bounds_and_options_derivatives(x64):
    result = pytree_minimize.shgo(_bowl_jax, [(None, None), (-1.0, 1.0)])
    np.testing.assert_allclose(result.x, [0.3, 0.3], atol=1e-6)
    calls = []

    def jac(x):
        calls.append(1)
        return 2.0 * (x - 0.3)

    result = pytree_minimize.shgo(_bowl_jax, [(-1.0, 1.0)] * 2, options={"jac": jac})
    np.testing.assert_allclose(result.x, [0.3, 0.3], atol=1e-6)
    assert calls, "the local minimiser used the `jac` given in `options`, as scipy's does"


def test_differential_evolution_vectorized_with_constraints_matches_scipy(x64):
    box = [(-1.0, 1.0)] * 2
    kwargs = {"rng": 1, "updating": "deferred", "polish": False, "maxiter": 20}
    theirs = sopt.differential_evolution(
        _bowl_np,
        box,
        constraints=sopt.NonlinearConstraint(lambda x: x[0] + x[1], -np.inf, 0.5),
        **kwargs,
    )
    ours = pytree_minimize.differential_evolution(
        _bowl_jax,
        box,
        vectorized=True,
        constraints=sopt.NonlinearConstraint(lambda x: x[0] + x[1], -np.inf, 0.5),
        **kwargs,
    )
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-10)
    assert ours.x.sum() <= 0.5 + 1e-9


def test_differential_evolution_polish_callable_gets_scipys_bounds_for_an_array(x64):
    seen = {}

    def polish(fun, x0, **kwargs):
        seen.update(kwargs)
        return pytree_minimize.minimize(fun, x0, method="L-BFGS-B", bounds=kwargs["bounds"])

    result = pytree_minimize.differential_evolution(
        _bowl_jax, [(-1.0, 1.0)] * 2, rng=0, maxiter=2, polish=polish
    )
    assert isinstance(seen["bounds"], sopt.Bounds)
    assert result.jac is not None
    np.testing.assert_allclose(result.x, [0.3, 0.3], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The module-level swap: `from pytree_minimize.ports import numpy as optimize`.


def test_numpy_port_has_every_public_name_of_scipy_optimize():
    ours = set(dir(numpy_port))
    assert set(sopt.__all__) <= ours, sorted(set(sopt.__all__) - ours)
    wrapped = {
        "minimize", "least_squares", "curve_fit", "root", "differential_evolution",
        "dual_annealing", "basinhopping", "shgo", "direct", "Bounds", "LinearConstraint",
    }  # fmt: skip
    for name in sopt.__all__:
        mine = getattr(numpy_port, name)
        if name in wrapped:
            assert mine is not getattr(sopt, name), name
        else:
            assert mine is getattr(sopt, name), name
    from pytree_minimize.ports.numpy import fsolve, rosen  # the import form works too

    assert fsolve is sopt.fsolve and rosen is sopt.rosen
    with pytest.raises(AttributeError):
        numpy_port.no_such_name  # noqa: B018


def test_scipys_bounds_and_linear_constraint_calls_work_there():
    optimize = numpy_port
    bounds = optimize.Bounds([0.0, 0.0], [0.5, 2.0], True)
    assert bounds.keep_feasible is True and not bounds.is_pytree
    constraint = optimize.LinearConstraint([[1.0, 1.0]], -np.inf, 1.0)
    assert isinstance(constraint, sopt.LinearConstraint)  # scipy's own object for a matrix
    kwargs = {"method": "trust-constr", "constraints": constraint}
    theirs = sopt.minimize(
        sopt.rosen, [0.1, 0.1], bounds=sopt.Bounds([0, 0], [0.5, 2], True), **kwargs
    )
    ours = optimize.minimize(sopt.rosen, [0.1, 0.1], bounds=bounds, **kwargs)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-10)
    # The pytree forms keep their meaning.
    tree_bounds = Bounds({"a": 0.0, "b": None}, {"a": 0.5, "b": 2.0})
    assert tree_bounds.is_pytree
    result = optimize.minimize(
        lambda p: (1 - p["a"]) ** 2 + 100 * (p["b"] - p["a"] ** 2) ** 2,
        {"a": 0.1, "b": 0.1},
        method="L-BFGS-B",
        bounds=tree_bounds,
    )
    assert result.x["a"] == pytest.approx(0.5, abs=1e-6)
    budget = LinearConstraint(lambda p: p["a"] + p["b"], -np.inf, 1.0)
    assert isinstance(budget, LinearConstraint)


def test_keep_feasible_reaches_trust_constr_for_a_pytree(x64):
    def flat(v):
        return (v[0] - 2.0) ** 2 + (v[1] + 1.0) ** 2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trust-constr's notes on its own steps
        for keep in (True, False):
            theirs = sopt.minimize(
                flat,
                [0.5, 0.5],
                jac=lambda v: np.array([2.0 * (v[0] - 2.0), 2.0 * (v[1] + 1.0)]),
                method="trust-constr",
                bounds=sopt.Bounds([0, 0], [1, 1], keep),
            )
            ours = pytree_minimize.minimize(
                lambda p: flat([p["a"], p["b"]]),
                {"a": 0.5, "b": 0.5},
                method="trust-constr",
                bounds=Bounds(0.0, 1.0, {"a": keep, "b": keep}),
            )
            np.testing.assert_allclose([ours.x["a"], ours.x["b"]], theirs.x, rtol=1e-9)


def test_scalar_forms_scipy_reads_as_arrays(x64):
    """A scalar `sigma` (every point's error), a one-element Hessian given as a number: scipy
    reads both as arrays; a Jacobian of three dimensions it refuses."""
    x, y = np.array([1.0, 3.2, 9.5, 13.7]), np.array([20.0, 30.0, 50.0, 60.0])
    _, pcov_ref = sopt.curve_fit(lambda x, a, b: a * x + b, x, y, sigma=2.0)
    _, pcov = pytree_minimize.curve_fit(lambda x, a, b: a * x + b, x, y, sigma=2.0)
    np.testing.assert_allclose(pcov, pcov_ref, rtol=1e-6)
    result = pytree_minimize.minimize(
        lambda x: (x[0] - 2.0) ** 4, [0.0], method="Newton-CG", hess=lambda x: 12 * (x[0] - 2) ** 2
    )
    np.testing.assert_allclose(result.x, [2.0], atol=1e-2)
    with pytest.raises(ValueError, match="`jac` returned shape"):
        pytree_minimize.least_squares(
            lambda x: x**2 + 5.0, 2.0, jac=lambda x: np.atleast_3d(2.0 * x)
        )


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_framework_ports_read_array_like_x0_as_scipy(framework):
    """The torch and TensorFlow ports: an integer list is scipy's float64 array, which the
    user's function receives as a float64 tensor (in the first evaluation too)."""
    module = pytest.importorskip(framework)
    port = __import__(f"pytree_minimize.ports.{framework}", fromlist=["root"])
    if framework == "torch":
        target, exp = module.tensor([1.0, 2.0], dtype=module.float64), module.exp
    else:
        target, exp = module.constant([1.0, 2.0], dtype=module.float64), module.exp
    expected = sopt.least_squares(_shifted_np, [0, 0]).x
    for entry in (port.least_squares, port.root):
        result = entry(lambda v: v - target, [0, 0])
        np.testing.assert_allclose(np.asarray(result.x), expected, atol=1e-8)

    def decay(x, amp, rate, offset):
        return amp * exp(-rate * x) + offset

    xdata = module.tensor(X) if framework == "torch" else module.constant(X)
    popt, _ = port.curve_fit(decay, xdata, Y)
    np.testing.assert_allclose(np.asarray(popt), sopt.curve_fit(_decay_np, X, Y)[0], rtol=1e-6)
