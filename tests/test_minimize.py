"""The public `minimize`: scipy's signature, the docstring example, and every kind of tree
coming back with x0's structure, leaf types, shapes and dtypes.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections import OrderedDict, namedtuple
from typing import Any

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

import pytree_minimize
from pytree_minimize import Bounds, minimize

pytestmark = pytest.mark.usefixtures("x64")

Pair = namedtuple("Pair", ["second", "first"])


@functools.partial(jax.tree_util.register_dataclass, data_fields=["w", "b"], meta_fields=["tag"])
@dataclasses.dataclass
class Layer:
    w: Any
    b: Any
    tag: str = "layer"


def test_public_names():
    assert set(pytree_minimize.__all__) >= {"minimize", "Bounds"}
    for name in pytree_minimize.__all__:
        assert hasattr(pytree_minimize, name)


def test_signature_matches_scipy():
    ours = inspect.signature(minimize).parameters
    theirs = inspect.signature(sopt.minimize).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
    assert ours["progress"].kind is inspect.Parameter.KEYWORD_ONLY


# ---------------------------------------------------------------------------------------------
# Trees of every kind. The objective pulls leaf i towards 0.25 * (i + 1) (i in JAX's leaf order,
# which is optree's), so the optimum is known leaf by leaf.


def pull(tree: Any) -> Any:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum((leaf - 0.25 * (i + 1)) ** 2) for i, leaf in enumerate(leaves))


def _mlp_params() -> Any:
    model = eqx.nn.MLP(2, 1, 3, 1, key=jax.random.PRNGKey(0))
    return eqx.partition(model, eqx.is_inexact_array)[0]


TREES = {
    "dict": lambda: {"b": np.zeros(3), "a": jnp.zeros((2, 2))},
    "list": lambda: [np.zeros(2), 0.0, jnp.zeros(())],
    "tuple": lambda: (np.zeros((1, 2)), (jnp.zeros(3), np.float64(0.0))),
    "namedtuple": lambda: Pair(second=np.zeros(2), first=jnp.zeros(1)),
    "OrderedDict": lambda: OrderedDict([("z", np.zeros(2)), ("a", jnp.zeros(2))]),
    "None subtrees": lambda: {"a": None, "b": [None, np.zeros(2)], "c": (None, 0.0)},
    "equinox": _mlp_params,
    "dataclass": lambda: Layer(w=jnp.zeros((2, 3)), b={"u": np.zeros(2), "v": None}),
    "mixed": lambda: {"l": [Layer(w=np.zeros(2), b=0.0)], "p": Pair(np.zeros(1), None)},
    "single array": lambda: np.zeros(4),
    "single jax array": lambda: jnp.zeros((2, 2)),
    # A bare Python float is read as scipy reads it (a 1-D array, see test_dropin.py); as a leaf
    # of a pytree it stays a Python float.
    "Python float": lambda: {"a": 0.0},
    "float32": lambda: {"a": np.zeros(2, np.float32), "b": jnp.zeros(3, jnp.float32)},
}


def assert_like(result: Any, x0: Any) -> None:
    """`result` has x0's structure, and each leaf its type, shape and dtype."""
    expected_def: Any = jax.tree_util.tree_structure(x0)
    assert jax.tree_util.tree_structure(result) == expected_def
    assert type(result) is type(x0)
    for got, leaf in zip(jax.tree_util.tree_leaves(result), jax.tree_util.tree_leaves(x0)):
        if isinstance(leaf, jax.Array):
            assert isinstance(got, jax.Array) and got.sharding == leaf.sharding
        else:
            assert type(got) is type(leaf)
        assert np.shape(got) == np.shape(leaf)
        assert np.asarray(got).dtype == np.asarray(leaf).dtype


@pytest.mark.parametrize("kind", sorted(TREES))
def test_result_has_x0_structure_and_leaf_types(kind):
    x0 = TREES[kind]()
    res = minimize(pull, x0, method="L-BFGS-B")
    assert res.success
    assert_like(res.x, x0)
    assert_like(res.jac, x0)
    for i, leaf in enumerate(jax.tree_util.tree_leaves(res.x)):
        tol = 1e-4 if np.asarray(leaf).dtype == np.float32 else 1e-6
        np.testing.assert_allclose(np.asarray(leaf), 0.25 * (i + 1), atol=tol)
    for leaf in jax.tree_util.tree_leaves(res.jac):
        np.testing.assert_allclose(np.asarray(leaf), 0.0, atol=1e-4)


@pytest.mark.parametrize("kind", ["equinox", "dataclass", "mixed"])
def test_jax_registered_nodes_same_path_as_flat_scipy(kind, flat_reference):
    """JAX's own ravel_pytree (an independent implementation of the same order) as the
    flat reference."""
    x0 = TREES[kind]()
    flat0, unravel = jax.flatten_util.ravel_pytree(x0)
    reference = flat_reference(lambda v: pull(unravel(v)))
    for method in ("BFGS", "trust-exact", "Nelder-Mead"):
        ref = reference.minimize(np.asarray(flat0), method, options={"maxiter": 200})
        res = minimize(pull, x0, method=method, options={"maxiter": 200})
        np.testing.assert_allclose(
            np.asarray(jax.flatten_util.ravel_pytree(res.x)[0]), ref.x, rtol=0, atol=1e-6
        )
        assert res.nfev == ref.nfev and res.nit == ref.nit


def test_equinox_model_fit():
    """A model's parameters through `eqx.partition`: the fitted model reproduces a linear map."""
    model = eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(1))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(20, 3))
    true_w, true_b = rng.normal(size=(2, 3)), rng.normal(size=2)
    targets = inputs @ true_w.T + true_b

    def loss(p, inputs, targets):
        fitted = eqx.combine(p, static)
        return jnp.mean((jax.vmap(fitted)(inputs) - targets) ** 2)

    res = minimize(loss, params, args=(inputs, targets), method="BFGS", options={"gtol": 1e-8})
    assert isinstance(res.x, eqx.nn.Linear)
    fitted = eqx.combine(res.x, static)
    np.testing.assert_allclose(np.asarray(fitted.weight), true_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fitted.bias), true_b, atol=1e-5)


def test_dataclass_bounds_and_meta_fields():
    x0 = Layer(w=np.array([0.5, 0.5]), b=jnp.zeros(2), tag="kept")
    res = minimize(
        lambda p: jnp.sum((p.w - 2.0) ** 2) + jnp.sum((p.b + 2.0) ** 2),
        x0,
        bounds=Bounds(
            lb=Layer(w=0.0, b=-1.0, tag="kept"),
            ub=Layer(w=np.array([1.0, 3.0]), b=None, tag="kept"),
        ),
    )
    assert res.x.tag == "kept"
    np.testing.assert_allclose(res.x.w, [1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.x.b), [-1.0, -1.0], atol=1e-6)


def test_complex_leaves_same_path_as_flat_scipy(flat_reference):
    """A complex leaf is its real parts then its imaginary parts in the flat vector; the
    gradient handed to scipy is d/dRe and d/dIm (not JAX's conjugate)."""
    target = np.array([1.0 + 2.0j, -0.5 + 0.25j])

    def fun(p):
        return (
            jnp.sum(jnp.abs(p["z"] - target) ** 2)
            + jnp.sum((p["r"] - 3.0) ** 2)
            + jnp.sum(jnp.real(p["z"]) * jnp.imag(p["z"]))
        )

    def flat(v):
        return fun({"r": v[0:1], "z": v[1:3] + 1j * v[3:5]})

    x0 = {"z": np.zeros(2, complex), "r": np.zeros(1)}
    reference = flat_reference(flat)
    ref = reference.minimize(np.zeros(5), "BFGS")
    res = minimize(fun, x0, method="BFGS")
    got = np.concatenate([res.x["r"], res.x["z"].real, res.x["z"].imag])
    np.testing.assert_allclose(got, ref.x, rtol=0, atol=1e-6)
    assert res.nfev == ref.nfev
    assert res.x["z"].dtype == np.complex128
    # the reported gradient is in JAX's convention, conj(d/dRe + i d/dIm), like jax.grad's
    np.testing.assert_allclose(
        res.jac["z"], np.conj(ref.jac[1:3] + 1j * ref.jac[3:5]), rtol=1e-6, atol=1e-9
    )
