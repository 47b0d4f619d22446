"""Trees of many leaves: the flat vector enters each compiled evaluation in chunks, which must
cover it exactly at leaf boundaries and change no value, derivative or result."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from test_tree import layout_of

import pytree_minimize
from pytree_minimize import minimize
from pytree_minimize._backends import jax as _jax_backend
from pytree_minimize._backends import jax_chunks as _chunks
from pytree_minimize._core.cache import CACHE


def test_chunks_cover_the_flat_vector_at_leaf_boundaries():
    x0 = {f"p{i:03d}": np.zeros((i % 3) + 1) for i in range(_chunks.MANY_LEAVES + 37)}
    x0["z"] = np.zeros(2, dtype=np.complex128)  # two flat numbers per element
    layout = layout_of(x0)
    bounds = _chunks.chunk_bounds(layout)
    assert bounds is not None and bounds[0][0] == 0 and bounds[-1][1] == layout.n
    assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(bounds))
    leaf_starts = {spec.offset for spec in layout.leaves}
    assert {start for start, _ in bounds} <= leaf_starts
    # about sqrt(leaves) leaves per chunk
    assert len(bounds) == int(np.ceil(len(layout.leaves) / np.ceil(np.sqrt(len(layout.leaves)))))
    few = layout_of({f"p{i}": np.zeros(3) for i in range(_chunks.MANY_LEAVES - 1)})
    assert _chunks.chunk_bounds(few) is None


def _leafwise_rosenbrock(tree):
    total = jnp.zeros(())
    for x in jax.tree_util.tree_leaves(tree):
        total = total + jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return total


@pytest.mark.parametrize("method", ["L-BFGS-B", "trust-ncg", "trust-exact"])
def test_many_leaves_match_scipy_on_the_flat_problem(method):
    leaves = _chunks.MANY_LEAVES + 6
    rng = np.random.default_rng(0)
    x0 = {f"p{i:03d}": rng.uniform(-1.0, 1.0, 3) for i in range(leaves)}
    start = np.concatenate([x0[k] for k in sorted(x0)])

    def flat_objective(v):
        return _leafwise_rosenbrock([v[3 * i : 3 * i + 3] for i in range(leaves)])

    derivatives = {"jac": jax.jit(jax.grad(flat_objective))}
    if method != "L-BFGS-B":
        derivatives["hess"] = jax.jit(jax.hessian(flat_objective))
    expected = scipy.optimize.minimize(jax.jit(flat_objective), start, method=method, **derivatives)
    res = minimize(_leafwise_rosenbrock, x0, method=method)
    x = np.concatenate([res.x[k] for k in sorted(x0)])
    # Where the path turns on the last bits of each derivative (L-BFGS-B; trust-ncg, here
    # handed Hessian-vector products, there the matrix), both reach the minimum.
    if method == "trust-exact":
        np.testing.assert_allclose(x, expected.x, atol=1e-8)
        assert res.nfev == expected.nfev
    np.testing.assert_allclose(x, 1.0, atol=2e-3)  # Rosenbrock's minimum
    np.testing.assert_allclose(expected.x, 1.0, atol=2e-3)
    assert res.nit > 5


def test_many_leaves_evaluate_as_one_flat_vector(monkeypatch):
    # The same evaluations with and without chunks: values, gradients, Hessian products, NaN.
    leaves = _chunks.MANY_LEAVES + 11
    rng = np.random.default_rng(1)
    x0 = {f"p{i:03d}": rng.uniform(-1.0, 1.0, 3) for i in range(leaves)}
    layout = layout_of(x0)
    x, p = rng.uniform(-1.0, 1.0, (2, layout.n))
    bad = x.copy()
    bad[0] = np.nan

    def evaluate():
        backend = _jax_backend.JaxBackend(x0)
        with backend.precision(layout):
            value_and_grad = backend.value_and_grad(_leafwise_rosenbrock, layout, ())
            hvp = backend.hvp(_leafwise_rosenbrock, layout, ())
            return (*value_and_grad(x), hvp(x, p), *value_and_grad(bad))

    chunked = evaluate()
    # Inside, the chunks come out of `cond`s of at most CHUNKS_PER_COND chunks each.
    # (The layout, of this test's own leaves, names the entry: the objective is compiled as its
    # closure-converted function, whose arguments end with its closed-over arrays, none here.)
    compiled = [
        entry.compiled
        for full_key, entry in CACHE._table.items()
        if full_key[2][:2] == ("value_and_grad", layout.key)
    ]
    assert len(compiled) == 1
    with _jax_backend.JaxBackend(x0).precision(layout):
        lowered = compiled[0].lower(jax.ShapeDtypeStruct((layout.n,), jnp.float64), [()])
        # The module XLA runs, after its optimisations: had it folded the identical branches of
        # a `cond`, the chunks would be slices again and share no kernels.
        optimised = lowered.compile().as_text()
    chunks = len(_chunks.chunk_bounds(layout))
    conds = -(-chunks // _chunks.CHUNKS_PER_COND)
    assert conds > 1
    assert optimised.count(" conditional(") == conds
    pytree_minimize.clear_cache()
    monkeypatch.setattr(_chunks, "MANY_LEAVES", 10**9)
    whole = evaluate()
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert np.isnan(chunked[3]) and np.isnan(chunked[4][:2]).all()
