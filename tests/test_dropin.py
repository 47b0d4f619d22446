"""The drop-in rule: where scipy's `minimize` accepts an input, every entry point does what scipy
does with it (the same casts, warnings and results)."""

from __future__ import annotations

import multiprocessing
import pickle

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

import pytree_minimize
from pytree_minimize._core import dropin as _dropin
from pytree_minimize.ports import numpy as numpy_port


def _quadratic_np(x):
    return float(np.sum((np.asarray(x) - 3.0) ** 2))


def _quadratic_jax(x):
    return jnp.sum((x - 3.0) ** 2)


@pytest.mark.parametrize(
    "x0",
    [[1, 2], (1, 2.5), 0, 2.0, np.int32(4), np.array([1, 2]), np.array(5), [np.float64(1), 2]],
    ids=["int-list", "tuple", "int", "float", "np-int", "int-array", "0-d", "np-scalars"],
)
def test_scipy_array_is_scipys_cast(x0):
    expected = np.atleast_1d(np.asarray(x0))
    if expected.dtype.kind in "iu":
        expected = expected.astype(float)
    array = _dropin.scipy_array(x0)
    assert array is not None
    assert array.dtype == expected.dtype and array.shape == expected.shape
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(
    "x0",
    [{"a": 1.0}, [np.zeros(2), 1.0], [[1.0, 2.0]], np.zeros(3), np.zeros((2, 2)), [], [1j, 2.0]],
    ids=["dict", "ragged", "nested", "float-array", "2-d", "empty", "complex"],
)
def test_pytrees_and_float_arrays_are_left_alone(x0):
    assert _dropin.scipy_array(x0) is None


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Nelder-Mead", "SLSQP"])
@pytest.mark.parametrize("x0", [[1, 1], (0, 4), 7], ids=["list", "tuple", "number"])
def test_array_like_x0_matches_scipy_in_every_entry_point(method, x0):
    expected = sopt.minimize(_quadratic_np, x0, method=method)
    seen = []

    def recording(x):
        seen.append(x)
        return _quadratic_np(x)

    for minimize, fun in (
        (numpy_port.minimize, recording),
        (pytree_minimize.minimize, _quadratic_jax),
    ):
        result = minimize(fun, x0, method=method)
        assert isinstance(result.x, np.ndarray) and result.x.dtype == np.float64
        assert result.x.shape == expected.x.shape
        np.testing.assert_allclose(result.x, expected.x, atol=1e-5)
    assert all(isinstance(x, np.ndarray) and x.shape == expected.x.shape for x in seen)


def test_x0_is_not_mutated_and_res_x_is_new():
    x0 = np.array([1, 2])
    result = numpy_port.minimize(_quadratic_np, x0)
    np.testing.assert_array_equal(x0, [1, 2])
    assert x0.dtype.kind == "i"
    np.testing.assert_allclose(result.x, [3.0, 3.0], atol=1e-5)


def test_numpy_port_takes_derivatives_as_scipy_does():
    # A gradient as a list, a sparse Hessian: exactly what scipy returns for them.
    import scipy.sparse

    def jac(x):
        return list(sopt.rosen_der(x))

    def hess(x):
        return scipy.sparse.csr_matrix(sopt.rosen_hess(x))

    expected = sopt.minimize(sopt.rosen, [1.3, 0.7], jac=jac, hess=hess, method="Newton-CG")
    result = numpy_port.minimize(sopt.rosen, [1.3, 0.7], jac=jac, hess=hess, method="Newton-CG")
    np.testing.assert_array_equal(result.x, expected.x)
    assert result.nit == expected.nit


def test_numpy_port_objective_pickles_for_worker_pools():
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        expected = sopt.minimize(sopt.rosen, [1.3, 0.7], method="L-BFGS-B")
        result = numpy_port.minimize(
            sopt.rosen, [1.3, 0.7], method="L-BFGS-B", options={"workers": pool.map}
        )
    np.testing.assert_allclose(result.x, expected.x, rtol=1e-6)
    pickle.dumps(_dropin.RecordedObjective(sopt.rosen, object(), returns_grad=False))


def _pytree_quadratic(p):
    return jnp.sum((p["a"] - 3.0) ** 2) + (p["b"] - 1.0) ** 2


def test_bounds_for_a_method_without_bounds_warn_and_are_ignored_as_in_scipy():
    with pytest.warns(RuntimeWarning, match="cannot handle bounds"):
        expected = sopt.minimize(_quadratic_np, [0.0, 0.0], method="BFGS", bounds=[(0, 1)] * 2)
    with pytest.warns(RuntimeWarning, match="BFGS cannot handle bounds"):
        result = pytree_minimize.minimize(
            _pytree_quadratic,
            {"a": np.zeros(1), "b": 0.0},
            method="BFGS",
            bounds=pytree_minimize.Bounds(0.0, 0.5),
        )
    np.testing.assert_allclose(expected.x, [3.0, 3.0], atol=1e-5)  # scipy ignored them
    np.testing.assert_allclose(result.x["a"], [3.0], atol=1e-5)
    np.testing.assert_allclose(result.x["b"], 1.0, atol=1e-5)


@pytest.mark.parametrize("method", ["Nelder-Mead", "BFGS"])
def test_non_finite_x0_starts_as_in_scipy(method):
    start = [np.nan, 1.0]
    expected = sopt.minimize(_quadratic_np, start, method=method, options={"maxiter": 3})
    result = pytree_minimize.minimize(
        lambda p: jnp.sum((p["a"] - 3.0) ** 2),
        {"a": np.array(start)},
        method=method,
        options={"maxiter": 3},
    )
    np.testing.assert_array_equal(np.isnan(result.x["a"]), np.isnan(expected.x))
    assert result.success == expected.success


def _rosen_jax(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_core_takes_user_derivatives_in_scipys_forms():
    import scipy.sparse

    x0 = [1.3, 0.7, 0.8]
    expected = sopt.minimize(
        sopt.rosen,
        x0,
        method="Newton-CG",
        jac=lambda x: list(sopt.rosen_der(x)),
        hess=lambda x: scipy.sparse.csr_matrix(sopt.rosen_hess(x)),
    )
    result = pytree_minimize.minimize(
        _rosen_jax,
        x0,
        method="Newton-CG",
        jac=lambda x: list(sopt.rosen_der(x)),
        hess=lambda x: scipy.sparse.csr_matrix(sopt.rosen_hess(x)),
    )
    np.testing.assert_allclose(result.x, expected.x, rtol=1e-10)
    # A scalar derivative for a one-element x0, and a constraint Jacobian as nested lists.
    one = pytree_minimize.minimize(
        lambda x: jnp.sum((x - 2.0) ** 2), 0, jac=lambda x: 2 * (x[0] - 2)
    )
    np.testing.assert_allclose(one.x, [2.0], atol=1e-6)
    constraint = {"type": "eq", "fun": lambda x: x[0] + x[1] - 1.0, "jac": lambda x: [[1.0, 1.0]]}
    expected = sopt.minimize(
        lambda x: x[0] ** 2 + 2 * x[1] ** 2,
        [0, 0],
        method="SLSQP",
        constraints={**constraint, "fun": lambda x: x[0] + x[1] - 1.0},
    )
    result = pytree_minimize.minimize(
        lambda x: x[0] ** 2 + 2 * x[1] ** 2, [0, 0], method="SLSQP", constraints=constraint
    )
    np.testing.assert_allclose(result.x, expected.x, atol=1e-8)
    np.testing.assert_allclose(result.x, [2 / 3, 1 / 3], atol=1e-3)


@pytest.mark.parametrize("method", ["Newton-CG", "trust-ncg", "trust-constr"])
@pytest.mark.parametrize("port", ["core", "numpy"])
def test_complex_step_hessian_reaches_the_users_jac(method, port):
    # hess='cs' differentiates the user's `jac` by complex steps; a cast to float would zero the
    # Hessian and stop at x0. The optimum is the flat problem's, as scipy finds it.
    def jac(p):
        a, b = p["a"], p["b"]
        return {"a": 2.0 * (a - 3.0) + 0.5 * a**3, "b": 2.0 * (b + 1.0)}

    def fun(p):
        a, b = p["a"], p["b"]
        value = np.sum((a - 3.0) ** 2) + 0.125 * np.sum(a**4) + (b + 1.0) ** 2
        return value if port == "numpy" else jnp.asarray(value)

    def flat_fun(x):
        return fun({"a": x[:2], "b": x[2]})

    def flat_jac(x):
        g = jac({"a": x[:2], "b": x[2]})
        return np.concatenate([g["a"], [g["b"]]])

    expected = sopt.minimize(flat_fun, np.zeros(3), jac=flat_jac, hess="cs", method=method)
    minimize = numpy_port.minimize if port == "numpy" else pytree_minimize.minimize
    x0 = {"a": np.zeros(2), "b": 0.0}
    result = minimize(
        fun if port == "numpy" else _jax_version, x0, jac=jac, hess="cs", method=method
    )
    assert result.nit > 1
    np.testing.assert_allclose(result.x["a"], expected.x[:2], atol=1e-4)
    np.testing.assert_allclose(result.x["b"], expected.x[2], atol=1e-4)


def _jax_version(p):
    a, b = p["a"], p["b"]
    return jnp.sum((a - 3.0) ** 2) + 0.125 * jnp.sum(a**4) + (b + 1.0) ** 2


@pytest.mark.parametrize("port", ["core", "numpy"])
def test_custom_method_gets_scipys_own_arguments(port):
    seen = {}

    def custom(fun, x0, args=(), jac=None, bounds=None, constraints=(), callback=None, **options):
        seen.update(bounds=bounds, constraints=constraints, callback=callback, options=options)
        callback(np.asarray(x0))
        return sopt.OptimizeResult(x=x0, fun=fun(x0, *args), success=True, nit=1)

    bounds = [(0, 1), (None, 2)]
    constraints = {"type": "ineq", "fun": lambda x: x[0]}

    def report(xk):
        seen["xk"] = xk

    minimize, fun = (
        (numpy_port.minimize, _quadratic_np)
        if port == "numpy"
        else (pytree_minimize.minimize, _quadratic_jax)
    )
    result = minimize(
        fun,
        [1, 2],
        method=custom,
        bounds=bounds,
        constraints=constraints,
        callback=report,
        options={"stepsize": 0.5},
    )
    expected = sopt.minimize(
        _quadratic_np,
        [1, 2],
        method=custom,
        bounds=bounds,
        constraints=constraints,
        callback=report,
        options={"stepsize": 0.5},
    )
    assert seen["bounds"] is bounds and seen["constraints"] is constraints
    assert seen["callback"] is report and seen["options"]["stepsize"] == 0.5
    np.testing.assert_array_equal(seen["xk"], [1.0, 2.0])
    np.testing.assert_allclose(result.fun, expected.fun)


def test_custom_method_gets_constraints_this_library_would_not_read():
    # scipy's gh-10771: anything given as `constraints` reaches a custom method unchanged.
    constraints = "constraints"
    seen = []

    def custom(fun, x0, constraints=(), **options):
        seen.append(constraints)
        return sopt.OptimizeResult(x=x0, fun=fun(x0), success=True)

    sopt.minimize(_quadratic_np, [1, 2], method=custom, constraints=constraints)
    numpy_port.minimize(_quadratic_np, [1, 2], method=custom, constraints=constraints)
    assert len(seen) == 2 and seen[0] is constraints and seen[1] is constraints


def test_torch_zero_d_tensors_keep_their_shape():
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports.torch import minimize

    shapes = []
    x0 = {"a": torch.tensor(0.0, dtype=torch.float64), "b": torch.zeros(2, dtype=torch.float64)}
    result = minimize(
        lambda p: (p["a"] - 1) ** 2 + ((p["b"] - 2) ** 2).sum(),
        x0,
        callback=lambda xk: shapes.append(tuple(xk["a"].shape)),
    )
    assert tuple(result.x["a"].shape) == () and tuple(result.jac["a"].shape) == ()
    assert shapes and set(shapes) == {()}
    assert result.x["a"].item() == pytest.approx(1.0, abs=1e-6)


def test_jax_second_order_with_jac_true_is_exact():
    # The Hessian from forward mode through the user's gradient: Newton's method ends a
    # quadratic in one step, as scipy does given the exact Hessian.
    import jax

    a = np.array([[3.0, 1.0], [1.0, 2.0]])

    def fun(x):
        return jax.value_and_grad(lambda y: 0.5 * y @ (a @ y) - y[0])(x)

    for method in ("trust-exact", "Newton-CG", "trust-krylov"):
        expected = sopt.minimize(
            lambda x: (0.5 * x @ a @ x - x[0], a @ x - [1.0, 0.0]),
            [1.0, 1.0],
            jac=True,
            hess=lambda x: a,
            method=method,
        )
        result = pytree_minimize.minimize(fun, [1.0, 1.0], jac=True, method=method)
        np.testing.assert_allclose(result.x, np.linalg.solve(a, [1.0, 0.0]), atol=1e-8)
        assert result.nit == expected.nit


@pytest.mark.parametrize("big", [2**40, 2**70, -(2**65)])
def test_python_ints_in_args_never_overflow(big):
    # scipy passes args unchanged; a traced int32/int64 would overflow.
    def fun(x, n):
        return jnp.sum((x["x"] - (n % 7)) ** 2)

    result = pytree_minimize.minimize(fun, {"x": np.zeros(2)}, args=(big,))
    np.testing.assert_allclose(result.x["x"], big % 7, atol=1e-5)
    solution = pytree_minimize.argmin(fun, {"x": np.zeros(2)}, args=(big,))
    np.testing.assert_allclose(solution.x["x"], big % 7, atol=1e-5)


def _numpy_objective(x):
    return np.sum(np.asarray(x["a"]) ** 2)


def _branching_objective(x):
    return x["a"][0] ** 2 if x["a"][0] > 0 else -x["a"][0]


@pytest.mark.parametrize(
    "fun,operation",
    [(_numpy_objective, "np.asarray"), (_branching_objective, "if x")],
    ids=["numpy-call", "python-if"],
)
def test_core_names_the_fix_for_a_non_jax_objective(fun, operation):
    with pytest.raises(TypeError) as info:
        pytree_minimize.minimize(fun, {"a": np.ones(2)})
    message = str(info.value)
    assert "`fun` must be JAX code" in message
    assert operation in message and "test_dropin.py" in message
    assert "pytree_minimize.ports.numpy" in message


@pytest.mark.parametrize("x0", [[1, 2], [1.0, 2.0], 3], ids=["int-list", "list", "number"])
def test_argmin_reads_array_like_x0_as_scipy_does(x0):
    expected = sopt.minimize(_quadratic_np, x0)
    solution = pytree_minimize.argmin(_quadratic_jax, x0)
    assert solution.x.shape == expected.x.shape
    np.testing.assert_allclose(solution.x, expected.x, atol=1e-4)
