"""Sparse derivatives (`sparse=`): patterns detected from the JAX program never miss a nonzero
and give the dense derivatives' values (CUTEst problems from sif2jax), the 'auto' threshold,
the dense fallback with one warning naming the operation, `res.sparsity`, detection once per
compiled problem, trust-constr's iterates against the dense path, `least_squares` and `root`
with sparse Jacobians, and the errors for the missing extra and bad input."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
import scipy.sparse
from _cutest import tree_problem

from pytree_minimize import (
    Bounds,
    LinearConstraint,
    Sparsity,
    SparsityWarning,
    least_squares,
    minimize,
    root,
)
from pytree_minimize._backends.jax import JaxBackend
from pytree_minimize._core.tree import build_layout

pytest.importorskip("asdex")

# ---------------------------------------------------------------------------------------------
# Sparse and dense derivatives agree on CUTEst problems with constraints: at random points the
# values are equal, and every entry the dense derivative holds lies in the detected pattern.

AGREEMENT = ["OPTCNTRL", "HS106", "ORTHREGB", "HS100", "HS71"]


def _dense_nonzeros_covered(pattern: Sparsity, dense: np.ndarray) -> bool:
    mask = np.zeros(dense.shape, dtype=bool)
    mask[pattern.rows, pattern.cols] = True
    return not np.any((dense != 0) & ~mask)


@pytest.mark.parametrize("name", AGREEMENT)
def test_sparse_derivatives_agree_with_dense_on_cutest(name: str, cutest: Any, x64: None) -> None:
    problem = tree_problem(cutest("_constrained_minimisation", name.lower(), name))
    backend = JaxBackend(problem.x0)
    layout = build_layout(problem.x0, describe_leaf=backend.describe_leaf)
    rng = np.random.default_rng(1)
    points = [layout.ravel(list(problem.x0.values())) + rng.normal(size=layout.n) for _ in range(2)]

    hessian = backend.sparse_hessian(problem.objective, layout, ())
    dense_hessian = jax.jit(jax.hessian(problem.flat_objective))
    for x in points:
        dense = np.asarray(dense_hessian(x))
        np.testing.assert_allclose(hessian.at(x).toarray(), dense, rtol=1e-10, atol=1e-10)
        assert _dense_nonzeros_covered(hessian.sparsity, dense)

    for constraint, (flat, _) in zip(problem.constraints, problem.flat_constraints, strict=True):
        out_layout = backend.residual_layout(constraint.fun, layout, (), problem.x0)
        jacobian = backend.sparse_jacobian(constraint.fun, layout, (), out_layout)
        weighted = backend.sparse_weighted_hessian(constraint.fun, layout, (), out_layout)
        dense_jacobian = jax.jit(jax.jacfwd(flat))
        dense_weighted = jax.jit(jax.hessian(lambda y, v, flat=flat: jnp.dot(flat(y), v)))
        for x in points:
            v = rng.normal(size=out_layout.n)
            dense = np.asarray(dense_jacobian(x))
            np.testing.assert_allclose(jacobian.at(x).toarray(), dense, rtol=1e-10, atol=1e-10)
            assert _dense_nonzeros_covered(jacobian.sparsity, dense)
            dense = np.asarray(dense_weighted(x, v))
            np.testing.assert_allclose(weighted.at(x, v).toarray(), dense, rtol=1e-9, atol=1e-9)
            assert _dense_nonzeros_covered(weighted.sparsity, dense)


def test_pattern_holds_for_any_value_of_args(x64: None) -> None:
    """`args` enter the detection as unknowns: a pattern found with one index array stays right
    for another of the same shape."""

    def c(x: dict[str, jax.Array], index: jax.Array) -> jax.Array:
        return x["u"][index] * x["v"][:3]

    x0 = {"u": np.linspace(1.0, 2.0, 6), "v": np.linspace(-1.0, 1.0, 4)}
    backend = JaxBackend(x0)
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    first, second = np.array([0, 1, 2]), np.array([5, 3, 4])
    out_layout = backend.residual_layout(c, layout, (first,), x0)
    backend.sparse_jacobian(c, layout, (first,), out_layout)
    jacobian = backend.sparse_jacobian(c, layout, (second,), out_layout)
    x = layout.ravel(list(x0.values()))
    dense = jax.jacfwd(lambda y: c({"u": y[:6], "v": y[6:]}, second))(x)
    np.testing.assert_allclose(jacobian.at(x).toarray(), dense, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# A banded problem whose pattern is known in closed form: c_i = x_{i+1} - x_i^2 (two nonzeros a
# row, two columns a colour in forward mode), f = sum (x_i - 1)^4 (a diagonal Hessian).


def _chain(x: dict[str, jax.Array]) -> jax.Array:
    y = jnp.concatenate([x["a"], x["b"]])
    return y[1:] - y[:-1] ** 2


def _quartic(x: dict[str, jax.Array]) -> jax.Array:
    return jnp.sum((x["a"] - 1.0) ** 4) + jnp.sum((x["b"] - 1.0) ** 4)


def _chain_start(n: int) -> dict[str, np.ndarray]:
    return {"a": np.full(n // 2, 0.5), "b": np.full(n - n // 2, 0.5)}


def test_res_sparsity_reports_nonzeros_and_colours(x64: None) -> None:
    n = 40
    res = minimize(
        _quartic,
        _chain_start(n),
        method="trust-constr",
        constraints=sopt.NonlinearConstraint(_chain, 0.0, 0.0),
        sparse=True,
        options={"maxiter": 3},
    )
    jac, hess = res.sparsity["constraints[0].jac"], res.sparsity["hess"]
    assert jac.shape == (n - 1, n) and jac.nnz == 2 * (n - 1)
    assert jac.colors == 2  # two columns a colour, or two rows a colour
    assert hess.shape == (n, n) and hess.nnz == n and hess.colors == 1
    c_hess = res.sparsity["constraints[0].hess"]
    assert c_hess.nnz == n - 1 and c_hess.colors == 1  # -2 v_i on the diagonal but the last
    expected = set(zip(range(n - 1), range(n - 1))) | set(zip(range(n - 1), range(1, n)))
    assert set(zip(jac.rows.tolist(), jac.cols.tolist())) == expected
    assert jac.pattern().shape == (n - 1, n) and jac.pattern().nnz == 2 * (n - 1)


def test_auto_uses_sparse_jacobians_above_a_million_entries(x64: None) -> None:
    """'auto': sparse where the dense constraint Jacobian would hold more than 10^6 entries (and
    then only the Jacobian: trust-constr's Hessians stay products)."""
    for n, sparse_expected in ((999, False), (1001, True)):  # (n - 1) * n around 10^6
        res = minimize(
            _quartic,
            _chain_start(n),
            method="trust-constr",
            constraints=sopt.NonlinearConstraint(_chain, 0.0, 0.0),
            options={"maxiter": 2},
        )
        assert ("sparsity" in res) == sparse_expected, n
        if sparse_expected:
            assert set(res.sparsity) == {"constraints[0].jac"}


def test_sparse_false_keeps_dense(x64: None) -> None:
    res = minimize(
        _quartic,
        _chain_start(1001),
        method="trust-constr",
        constraints=sopt.NonlinearConstraint(_chain, 0.0, 0.0),
        sparse=False,
        options={"maxiter": 2},
    )
    assert "sparsity" not in res


def test_trust_constr_follows_the_dense_iterates(x64: None) -> None:
    """Sparse Jacobian and Hessians change only the linear algebra: the iterates are the dense
    path's (to rounding)."""
    n = 30

    def run(sparse: bool) -> tuple[list[np.ndarray], Any]:
        iterates: list[np.ndarray] = []

        def callback(intermediate_result: Any) -> None:
            x = intermediate_result.x
            iterates.append(np.concatenate([x["a"], x["b"]]))

        res = minimize(
            lambda x: _quartic(x) + 0.1 * jnp.sum(jnp.concatenate([x["a"], x["b"]]) ** 2),
            _chain_start(n),
            method="trust-constr",
            constraints=[sopt.NonlinearConstraint(_chain, -0.1, 0.1)],
            bounds=Bounds(0.0, 2.0),
            callback=callback,
            sparse=sparse,
        )
        return iterates, res

    dense_iterates, dense = run(False)
    sparse_iterates, sparse = run(True)
    assert "sparsity" in sparse and "sparsity" not in dense
    assert dense.success and sparse.success
    steps = min(len(dense_iterates), len(sparse_iterates), 15)
    assert steps >= 10
    for ours, reference in zip(sparse_iterates[:steps], dense_iterates[:steps], strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sparse.fun, dense.fun, rtol=1e-8)


def test_linear_constraint_matrix_is_sparse(x64: None) -> None:
    """A `pytree_minimize.LinearConstraint` reaches trust-constr as a sparse matrix."""
    n = 12

    def differences(x: dict[str, jax.Array]) -> jax.Array:
        y = jnp.concatenate([x["a"], x["b"]])
        return y[1:] - y[:-1]

    res = minimize(
        _quartic,
        _chain_start(n),
        method="trust-constr",
        constraints=[LinearConstraint(differences, 0.0, 0.01)],
        sparse=True,
    )
    assert res.sparsity["constraints[0].jac"].nnz == 2 * (n - 1)
    y = np.concatenate([res.x["a"], res.x["b"]])
    assert np.all(np.diff(y) >= -1e-8) and np.all(np.diff(y) <= 0.01 + 1e-8)
    dense = minimize(
        _quartic,
        _chain_start(n),
        method="trust-constr",
        constraints=[LinearConstraint(differences, 0.0, 0.01)],
        sparse=False,
    )
    np.testing.assert_allclose(res.fun, dense.fun, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Detection once per compiled problem.


def test_detection_runs_once_per_compiled_problem(
    monkeypatch: pytest.MonkeyPatch, x64: None
) -> None:
    import asdex

    calls = []
    detect = asdex.jacobian_sparsity

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return detect(*args, **kwargs)

    monkeypatch.setattr(asdex, "jacobian_sparsity", counting)

    def residuals(x: dict[str, jax.Array], scale: jax.Array) -> jax.Array:
        return scale * _chain(x)

    for scale in (1.0, 2.0):  # a new value of `args`: the same compiled problem
        least_squares(residuals, _chain_start(20), args=(np.float64(scale),), sparse=True)
    assert len(calls) == 1
    least_squares(residuals, _chain_start(24), args=(np.float64(1.0),), sparse=True)
    assert len(calls) == 2  # new shapes: a new compiled problem


# ---------------------------------------------------------------------------------------------
# A pattern that cannot be detected: dense, with one warning naming the operation.


def _undetectable(x: dict[str, jax.Array]) -> jax.Array:
    return jax.lax.cumlogsumexp(jnp.concatenate([x["a"], x["b"]]))[1:] - 2.0


def test_undetectable_operation_falls_back_to_dense_with_one_warning(x64: None) -> None:
    kwargs: dict[str, Any] = {
        "method": "trust-constr",
        "constraints": sopt.NonlinearConstraint(_undetectable, -np.inf, 0.0),
        "options": {"maxiter": 20},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = minimize(_quartic, _chain_start(8), sparse=True, **kwargs)
    ours = [w for w in caught if issubclass(w.category, SparsityWarning)]
    assert len(ours) == 1
    assert "cumlogsumexp" in str(ours[0].message)
    assert "constraints[0].jac" not in res.get("sparsity", {})
    dense = minimize(_quartic, _chain_start(8), sparse=False, **kwargs)
    np.testing.assert_allclose(
        np.concatenate([res.x["a"], res.x["b"]]),
        np.concatenate([dense.x["a"], dense.x["b"]]),
        rtol=1e-10,
    )


# ---------------------------------------------------------------------------------------------
# least_squares and root.


def _banded_residuals(x: dict[str, jax.Array]) -> dict[str, jax.Array]:
    y = jnp.concatenate([x["a"], x["b"]])
    return {"smooth": 10.0 * (y[1:] - y[:-1] ** 2), "anchor": 1.0 - y}


@pytest.mark.parametrize(
    ("method", "tr_solver"), [("trf", None), ("trf", "lsmr"), ("dogbox", None)]
)
def test_least_squares_sparse_matches_dense(method: str, tr_solver: Any, x64: None) -> None:
    x0 = _chain_start(30)
    sparse = least_squares(_banded_residuals, x0, method=method, tr_solver=tr_solver, sparse=True)
    dense = least_squares(_banded_residuals, x0, method=method, tr_solver=tr_solver, sparse=False)
    assert scipy.sparse.issparse(sparse.jac)
    assert sparse.sparsity["jac"].nnz == 2 * 29 + 30
    for key in ("a", "b"):
        np.testing.assert_allclose(sparse.x[key], dense.x[key], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sparse.cost, dense.cost, rtol=1e-8, atol=1e-12)


def test_least_squares_auto_threshold(x64: None) -> None:
    small = least_squares(_banded_residuals, _chain_start(700), max_nfev=2)  # 1399 x 700
    large = least_squares(_banded_residuals, _chain_start(710), max_nfev=2)  # 1419 x 710
    assert "sparsity" not in small and not scipy.sparse.issparse(small.jac)
    assert "sparsity" in large and scipy.sparse.issparse(large.jac)


@pytest.mark.parametrize(("method", "tr_solver"), [("lm", None), ("trf", "exact")])
def test_least_squares_sparse_true_needs_a_method_that_takes_it(
    method: str, tr_solver: Any
) -> None:
    with pytest.raises(ValueError, match=r"`sparse=True`.*'trf' or 'dogbox'"):
        least_squares(
            _banded_residuals, _chain_start(6), method=method, tr_solver=tr_solver, sparse=True
        )


def _tridiagonal_system(x: dict[str, jax.Array]) -> jax.Array:
    y = jnp.concatenate([x["a"], x["b"]])
    padded = jnp.pad(y, 1)
    return 3.0 * y - padded[:-2] - padded[2:] + 0.1 * y**3 - 1.0


def test_root_krylov_with_a_sparse_jacobian(x64: None) -> None:
    x0 = {"a": np.zeros(20), "b": np.zeros(20)}
    sparse = root(_tridiagonal_system, x0, method="krylov", sparse=True)
    products = root(_tridiagonal_system, x0, method="krylov")
    assert sparse.success and products.success
    assert sparse.sparsity["jac"].nnz == 3 * 40 - 2
    assert "sparsity" not in products
    for key in ("a", "b"):
        np.testing.assert_allclose(sparse.x[key], products.x[key], rtol=1e-6)
    np.testing.assert_allclose(_tridiagonal_system(sparse.x), 0.0, atol=1e-6)


def test_root_sparse_true_needs_krylov() -> None:
    with pytest.raises(ValueError, match=r"`sparse=True`.*'hybr'.*'krylov'"):
        root(_tridiagonal_system, {"a": np.zeros(3), "b": np.zeros(3)}, sparse=True)


# ---------------------------------------------------------------------------------------------
# Errors: bad option, a method without sparse derivatives, a port, the missing extra.


@pytest.mark.parametrize("value", ["yes", None, 1.0])
def test_sparse_option_is_checked(value: Any) -> None:
    with pytest.raises(ValueError, match=r"`sparse` must be 'auto', True or False"):
        minimize(_quartic, _chain_start(4), sparse=value)


def test_sparse_true_needs_a_method_with_sparse_derivatives() -> None:
    with pytest.raises(ValueError, match=r"`sparse=True`.*'BFGS'.*'trust-constr'"):
        minimize(_quartic, _chain_start(4), method="BFGS", sparse=True)


def test_ports_refuse_sparse_true() -> None:
    from pytree_minimize.ports import numpy as numpy_port

    with pytest.raises(ValueError, match=r"`sparse=True` needs sparsity detection.*NumPy"):
        numpy_port.least_squares(lambda x: x["a"] - 1.0, {"a": np.zeros(3)}, sparse=True)


def test_missing_asdex(monkeypatch: pytest.MonkeyPatch, x64: None) -> None:
    monkeypatch.setitem(sys.modules, "asdex", None)  # `import asdex` raises ImportError
    with pytest.raises(ImportError, match=r"pip install pytree-minimize\[sparse\]"):
        least_squares(_banded_residuals, _chain_start(6), sparse=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = least_squares(_banded_residuals, _chain_start(6))  # 'auto', below the threshold
        large = least_squares(_banded_residuals, _chain_start(710), max_nfev=2)  # above it
    ours = [w for w in caught if issubclass(w.category, SparsityWarning)]
    assert len(ours) == 1 and "pytree-minimize[sparse]" in str(ours[0].message)
    assert "sparsity" not in small and "sparsity" not in large
    assert not scipy.sparse.issparse(large.jac)
