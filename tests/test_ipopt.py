"""`minimize(..., method='ipopt')`: published optimal values of constrained CUTEst problems
(sif2jax), multipliers as pytrees that satisfy the KKT conditions, callbacks and `StopIteration`,
options, every port (dense Jacobians, limited-memory Hessian), sparse derivatives, and the error
without the extra."""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from _cutest import tree_problem

from pytree_minimize import Bounds, LinearConstraint, minimize

pytest.importorskip("cyipopt")

# ---------------------------------------------------------------------------------------------
# CUTEst problems (two-leaf pytrees) reach their published optimal values.

PUBLISHED = ["HS71", "HS100", "HS113", "OPTCNTRL", "HS21", "HS35", "HS43", "HS65"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_cutest_problems_reach_published_values(name: str, cutest: Any, x64: None) -> None:
    problem = cutest("_constrained_minimisation", name.lower(), name)
    tree = tree_problem(problem)
    res = minimize(
        tree.objective, tree.x0, method="ipopt", bounds=tree.bounds, constraints=tree.constraints
    )
    expected = float(problem.expected_objective_value)
    assert res.success, res.message
    assert abs(res.fun - expected) <= 1e-6 * (1.0 + abs(expected))
    assert set(res.x) == {"head", "tail"} and res.x["head"].shape == tree.x0["head"].shape
    y = np.asarray(tree.join(res.x))
    for flat, upper in tree.flat_constraints:
        values = np.asarray(flat(jnp.asarray(y)))
        assert np.all(values >= -1e-6) and (upper > 0 or np.all(np.abs(values) <= 1e-6))


def test_medium_optimal_control_problem_with_sparse_derivatives(cutest: Any, x64: None) -> None:
    """HAGER2 (5,001 variables, 2,500 equalities): above 'auto''s threshold, so IPOPT gets the
    detected sparse Jacobian and Lagrangian Hessian, and reaches the published value."""
    problem = cutest("_constrained_minimisation", "hager2", "HAGER2")
    tree = tree_problem(problem)
    res = minimize(
        tree.objective, tree.x0, method="ipopt", bounds=tree.bounds, constraints=tree.constraints
    )
    expected = float(problem.expected_objective_value)
    assert res.success and abs(res.fun - expected) <= 1e-6 * (1.0 + abs(expected))
    jac = res.sparsity["constraints[0].jac"]
    assert jac.shape == (2500, 5001) and jac.nnz < 4 * 5001
    assert res.sparsity["lagrangian_hess"].nnz < 4 * 5001


# ---------------------------------------------------------------------------------------------
# HS71 on a pytree: KKT conditions with the multipliers as pytrees.

HS71_F = 17.0140173


def _join(x: dict[str, Any]) -> jax.Array:
    return jnp.concatenate([x["a"], jnp.stack([x["b"]["c"], x["b"]["d"]])])


def _hs71_f(x: dict[str, Any]) -> jax.Array:
    y = _join(x)
    return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]


def _hs71_product(x: dict[str, Any]) -> jax.Array:
    return jnp.prod(_join(x))


def _hs71_sphere(x: dict[str, Any]) -> dict[str, jax.Array]:
    return {"sphere": jnp.sum(_join(x) ** 2)}


def _hs71_x0() -> dict[str, Any]:
    return {"a": np.array([1.0, 5.0]), "b": {"c": np.array(5.0), "d": np.array(1.0)}}


HS71_CONSTRAINTS = [
    {"type": "ineq", "fun": lambda x: _hs71_product(x) - 25.0},
    sopt.NonlinearConstraint(_hs71_sphere, 40.0, 40.0),
]


def _flat(tree: Any) -> np.ndarray:
    return np.asarray(_join(jax.tree_util.tree_map(jnp.asarray, tree)))


def test_multipliers_are_pytrees_satisfying_kkt(x64: None) -> None:
    x0 = _hs71_x0()
    res = minimize(
        _hs71_f, x0, method="ipopt", bounds=Bounds(1.0, 5.0), constraints=HS71_CONSTRAINTS
    )
    assert res.success and abs(res.fun - HS71_F) <= 1e-6
    product, sphere = res.constraint_multipliers
    assert np.shape(product) == () and set(sphere) == {"sphere"}
    assert jax.tree_util.tree_structure(res.bound_multipliers) == jax.tree_util.tree_structure(x0)
    y = jnp.asarray(_flat(res.x))

    def tree(v: jax.Array) -> dict[str, Any]:
        return {"a": v[:2], "b": {"c": v[2], "d": v[3]}}

    grad = np.asarray(jax.grad(lambda v: _hs71_f(tree(v)))(y))
    j_product = np.asarray(jax.grad(lambda v: _hs71_product(tree(v)))(y))
    j_sphere = np.asarray(jax.grad(lambda v: _hs71_sphere(tree(v))["sphere"])(y))
    # The library's convention: grad f = sum_i J_i^T lambda_i + bound multipliers.
    rhs = j_product * product + j_sphere * sphere["sphere"] + _flat(res.bound_multipliers)
    np.testing.assert_allclose(grad, rhs, atol=1e-6)
    assert float(product) >= 0.0  # active lower bound of `product >= 25`
    bound = _flat(res.bound_multipliers)
    assert bound[0] > 0.0 and np.all(np.abs(bound[1:]) < 1e-6)  # x1 at its lower bound
    assert res.active_bounds["a"].tolist() == [-1, 0]
    # The same multipliers as SLSQP's, the library's one convention.
    slsqp = minimize(
        _hs71_f, x0, method="SLSQP", bounds=Bounds(1.0, 5.0), constraints=HS71_CONSTRAINTS
    )
    np.testing.assert_allclose(float(product), float(slsqp.constraint_multipliers[0]), rtol=1e-4)
    np.testing.assert_allclose(
        sphere["sphere"], slsqp.constraint_multipliers[1]["sphere"], rtol=1e-4
    )
    assert x0["a"].tolist() == [1.0, 5.0]  # x0 untouched


def test_result_fields(x64: None) -> None:
    res = minimize(
        _hs71_f, _hs71_x0(), method="ipopt", bounds=Bounds(1.0, 5.0), constraints=HS71_CONSTRAINTS
    )
    assert res.status == 0 and "successfully" in res.message
    assert res.nit > 0 and res.nfev >= res.nit and res.njev >= res.nit and res.nhev > 0
    np.testing.assert_allclose(
        _flat(res.jac), np.asarray(jax.grad(lambda v: _hs71_f({"a": v[:2], "b": {"c": v[2],
        "d": v[3]}}))(jnp.asarray(_flat(res.x)))), rtol=1e-10)  # fmt: skip
    assert len(res.history["fun"]) == res.nit
    np.testing.assert_allclose(res.history["fun"][-1], res.fun, rtol=1e-6)
    assert float(res.constr[0]) >= -1e-8 and abs(res.constr[1]["sphere"] - 40.0) <= 1e-6


def test_linear_constraints_in_every_form(x64: None) -> None:
    """minimise |x - (1, 2, 3)|^2 subject to x0 + x1 + x2 = 3 (pytree `LinearConstraint`) and
    x2 <= 1 (scipy's `LinearConstraint` on a single-array x0): x = (0.5, 1.5, 1)."""

    def f(x: jax.Array) -> jax.Array:
        return jnp.sum((x - jnp.array([1.0, 2.0, 3.0])) ** 2)

    res = minimize(
        f,
        np.zeros(3),
        method="ipopt",
        constraints=[
            LinearConstraint(lambda x: jnp.sum(x), 3.0, 3.0),
            sopt.LinearConstraint(np.array([[0.0, 0.0, 1.0]]), -np.inf, 1.0),
        ],
    )
    np.testing.assert_allclose(res.x, [0.5, 1.5, 1.0], atol=1e-7)
    np.testing.assert_allclose(float(res.constraint_multipliers[0]), -1.0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Callbacks, options and errors.


def _rosen(x: dict[str, jax.Array]) -> jax.Array:
    y = jnp.concatenate([x["p"], x["q"]])
    return jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)


def _rosen_x0() -> dict[str, np.ndarray]:
    return {"p": np.array([-1.2, 1.0]), "q": np.array([-1.2, 1.0])}


def test_callback_intermediate_result_and_stop_iteration(x64: None) -> None:
    seen: list[Any] = []

    def callback(intermediate_result: Any) -> None:
        seen.append(intermediate_result)
        if len(seen) == 3:
            raise StopIteration

    res = minimize(_rosen, _rosen_x0(), method="ipopt", callback=callback)
    assert len(seen) == 3 and [r.nit for r in seen] == [1, 2, 3]
    assert set(seen[0].x) == {"p", "q"}
    np.testing.assert_allclose(seen[-1].fun, float(_rosen(seen[-1].x)), rtol=1e-12)
    assert res.status == 5 and not res.success  # IPOPT's User_Requested_Stop
    assert res.nit == 3


def test_legacy_callback_gets_the_pytree(x64: None) -> None:
    seen: list[Any] = []
    res = minimize(_rosen, _rosen_x0(), method="ipopt", callback=lambda xk: seen.append(xk))
    assert res.success and len(seen) == res.nit and set(seen[0]) == {"p", "q"}


def test_options_reach_ipopt(x64: None) -> None:
    res = minimize(_rosen, _rosen_x0(), method="ipopt", options={"max_iter": 4})
    assert res.nit == 4 and res.status == -1  # Maximum_Iterations_Exceeded
    res = minimize(_rosen, _rosen_x0(), method="ipopt", options={"maxiter": 4})  # scipy's name
    assert res.nit == 4
    res = minimize(
        _rosen, _rosen_x0(), method="ipopt", options={"hessian_approximation": "limited-memory"}
    )
    assert res.success and res.nhev == 0
    with pytest.raises(ValueError, match=r"`options\['no_such_option'\]`"):
        minimize(_rosen, _rosen_x0(), method="ipopt", options={"no_such_option": 1})


def test_exceptions_of_the_objective_reach_the_caller() -> None:
    from pytree_minimize.ports import numpy as numpy_port

    calls = []

    def f(x: dict[str, np.ndarray]) -> float:
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("the model broke")
        return float(np.sum((x["p"] - 1.0) ** 2))

    with pytest.raises(RuntimeError, match="the model broke"):
        numpy_port.minimize(f, {"p": np.zeros(3)}, method="ipopt")


def test_user_hessians(x64: None) -> None:
    """A user `hess` for the objective and for a constraint: IPOPT runs on the exact Hessian."""
    target = jnp.array([1.0, 2.0])

    def f(x: jax.Array) -> jax.Array:
        return jnp.sum((x - target) ** 2)

    circle = sopt.NonlinearConstraint(
        lambda x: jnp.sum(x**2), -np.inf, 1.0, hess=lambda x, v: 2.0 * v * np.eye(2)
    )
    res = minimize(
        f, np.zeros(2), method="ipopt", hess=lambda x: 2.0 * np.eye(2), constraints=[circle]
    )
    np.testing.assert_allclose(res.x, np.asarray(target) / np.sqrt(5.0), atol=1e-7)
    assert res.nhev > 0


def test_hessp_is_ignored_with_a_warning(x64: None) -> None:
    with pytest.warns(RuntimeWarning, match="Hessian-vector"):
        res = minimize(_rosen, _rosen_x0(), method="ipopt", hessp=lambda x, p: p)
    assert res.success


def test_sparse_true_on_a_small_problem(x64: None) -> None:
    res = minimize(
        _hs71_f,
        _hs71_x0(),
        method="ipopt",
        bounds=Bounds(1.0, 5.0),
        constraints=HS71_CONSTRAINTS,
        sparse=True,
    )
    assert abs(res.fun - HS71_F) <= 1e-6
    assert set(res.sparsity) == {"constraints[0].jac", "constraints[1].jac", "lagrangian_hess"}
    assert res.sparsity["lagrangian_hess"].nnz == 16  # a dense 4 x 4


def test_missing_cyipopt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cyipopt", None)  # `import cyipopt` raises ImportError
    with pytest.raises(ImportError, match=r"pip install pytree-minimize\[ipopt\]"):
        minimize(_rosen, _rosen_x0(), method="ipopt")


# ---------------------------------------------------------------------------------------------
# Every port: dense constraint Jacobians and IPOPT's limited-memory Hessian.


def test_numpy_port() -> None:
    from pytree_minimize.ports import numpy as numpy_port

    def f(x: dict[str, np.ndarray]) -> float:
        y = np.concatenate([x["a"], [x["b"]["c"], x["b"]["d"]]])
        return float(y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2])

    def join(x: dict[str, Any]) -> np.ndarray:
        return np.concatenate([x["a"], [x["b"]["c"], x["b"]["d"]]])

    constraints = [
        {"type": "ineq", "fun": lambda x: np.prod(join(x)) - 25.0},
        {"type": "eq", "fun": lambda x: np.sum(join(x) ** 2) - 40.0},
    ]
    res = numpy_port.minimize(
        f, _hs71_x0(), method="ipopt", bounds=Bounds(1.0, 5.0), constraints=constraints
    )
    assert abs(res.fun - HS71_F) <= 1e-5 and res.nhev == 0
    assert isinstance(res.x["a"], np.ndarray)


def test_torch_port() -> None:
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports import torch as torch_port

    def join(x: dict[str, Any]) -> Any:
        return torch.cat([x["a"], x["b"]["c"].reshape(1), x["b"]["d"].reshape(1)])

    def f(x: dict[str, Any]) -> Any:
        y = join(x)
        return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]

    x0 = {
        "a": torch.tensor([1.0, 5.0], dtype=torch.float64),
        "b": {
            "c": torch.tensor(5.0, dtype=torch.float64),
            "d": torch.tensor(1.0, dtype=torch.float64),
        },
    }
    constraints = [
        {"type": "ineq", "fun": lambda x: torch.prod(join(x)) - 25.0},
        sopt.NonlinearConstraint(lambda x: torch.sum(join(x) ** 2), 40.0, 40.0),
    ]
    res = torch_port.minimize(
        f, x0, method="ipopt", bounds=Bounds(1.0, 5.0), constraints=constraints
    )
    assert abs(res.fun - HS71_F) <= 1e-6 and res.nhev == 0
    assert isinstance(res.x["a"], torch.Tensor) and res.x["a"].dtype == torch.float64
    assert float(res.constraint_multipliers[0]) > 0.0


def test_tensorflow_port() -> None:
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports import tensorflow as tf_port

    def join(x: dict[str, Any]) -> Any:
        return tf.concat([x["a"], tf.reshape(x["b"]["c"], [1]), tf.reshape(x["b"]["d"], [1])], 0)

    def f(x: dict[str, Any]) -> Any:
        y = join(x)
        return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]

    x0 = {
        "a": tf.constant([1.0, 5.0], tf.float64),
        "b": {"c": tf.constant(5.0, tf.float64), "d": tf.constant(1.0, tf.float64)},
    }
    constraints = [
        {"type": "ineq", "fun": lambda x: tf.reduce_prod(join(x)) - 25.0},
        {"type": "eq", "fun": lambda x: tf.reduce_sum(join(x) ** 2) - 40.0},
    ]
    res = tf_port.minimize(f, x0, method="ipopt", bounds=Bounds(1.0, 5.0), constraints=constraints)
    assert abs(res.fun - HS71_F) <= 1e-6 and res.nhev == 0
    assert isinstance(res.x["a"], tf.Tensor)


# ---------------------------------------------------------------------------------------------
# What IPOPT is handed: the Jacobian's and the Lagrangian Hessian's triplets, sparse and dense,
# against JAX's dense derivatives of the flat problem.


@pytest.mark.parametrize("sparse", [True, False])
def test_triplets_handed_to_ipopt(sparse: bool, monkeypatch: pytest.MonkeyPatch, x64: None) -> None:
    from pytree_minimize._minimize import ipopt as _ipopt

    handed: list[Any] = []
    solve = _ipopt.solve

    def spy(problem: Any, x0: Any, options: Any, **kwargs: Any) -> Any:
        handed.append(problem)
        return solve(problem, x0, options, **kwargs)

    monkeypatch.setattr(_ipopt, "solve", spy)
    minimize(
        _hs71_f,
        _hs71_x0(),
        method="ipopt",
        bounds=Bounds(1.0, 5.0),
        constraints=[*HS71_CONSTRAINTS, LinearConstraint(lambda x: x["a"][1] - x["a"][0], 0.0)],
        sparse=sparse,
        options={"max_iter": 1},
    )
    problem = handed[0]

    def tree(v: jax.Array) -> dict[str, Any]:
        return {"a": v[:2], "b": {"c": v[2], "d": v[3]}}

    def g(v: jax.Array) -> jax.Array:
        x = tree(v)
        return jnp.stack([_hs71_product(x), _hs71_sphere(x)["sphere"], x["a"][1] - x["a"][0]])

    rng = np.random.default_rng(3)
    for _ in range(2):
        y = rng.uniform(1.0, 5.0, 4)
        multipliers, sigma = rng.normal(size=3), float(rng.uniform(0.5, 2.0))
        jacobian = np.zeros((3, 4))
        np.add.at(jacobian, (problem.jacobian_rows, problem.jacobian_cols), problem.jacobian(y))
        np.testing.assert_allclose(jacobian, jax.jacfwd(g)(y), rtol=1e-12, atol=1e-12)

        def lagrangian_of(v: jax.Array, w: jax.Array, s: float) -> jax.Array:
            return s * _hs71_f(tree(v)) + jnp.dot(w, g(v))

        expected = jax.hessian(lagrangian_of)(y, multipliers, sigma)
        assert np.all(problem.hessian_rows >= problem.hessian_cols)  # the lower triangle
        lower = np.zeros((4, 4))
        np.add.at(
            lower,
            (problem.hessian_rows, problem.hessian_cols),
            problem.hessian(y, multipliers, sigma),
        )
        np.testing.assert_allclose(lower, np.tril(expected), rtol=1e-12, atol=1e-12)


def test_lagrangian_pattern_detected_once_and_constraints_not_kept_alive(
    monkeypatch: pytest.MonkeyPatch, x64: None
) -> None:
    import gc
    import weakref

    import asdex

    calls = []
    detect = asdex.hessian_sparsity

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return detect(*args, **kwargs)

    monkeypatch.setattr(asdex, "hessian_sparsity", counting)

    def sphere(x: dict[str, Any]) -> jax.Array:
        return jnp.sum(_join(x) ** 2)

    constraint = sopt.NonlinearConstraint(sphere, 40.0, 40.0)
    for _ in range(2):
        res = minimize(
            _hs71_f,
            _hs71_x0(),
            method="ipopt",
            bounds=Bounds(1.0, 5.0),
            constraints=[constraint],
            sparse=True,
        )
        assert res.success
    assert len(calls) == 1  # the Lagrangian's pattern, once for both calls
    alive = weakref.ref(sphere)
    del sphere, constraint, res
    gc.collect()
    assert alive() is None  # the cached pattern does not hold the constraint function
