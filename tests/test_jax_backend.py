"""The JAX backend: traceable unravel, JAX-registered nodes, leaf types, compiled-once
evaluations with traced `args`, one compiled call per evaluation, and each leaf's precision.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optree
import pytest
from hypothesis import HealthCheck, given, settings
from test_tree import TREES, by_hand, layout_of

import pytree_minimize
from pytree_minimize import Bounds, minimize
from pytree_minimize._backends import jax as _jax_backend
from pytree_minimize._core.tree import NAMESPACE, flatten

# ---------------------------------------------------------------------------------------------
# Property: the traceable unravel (inside every compiled evaluation) inverts the host ravel.


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES)
def test_jax_unravel_round_trip(tree):
    leaves = optree.tree_leaves(tree, namespace=NAMESPACE)
    if sum(np.size(leaf) for leaf in leaves) == 0:
        return
    layout = layout_of(tree)
    flat = by_hand(leaves)
    with jax.enable_x64(True):
        rebuilt = _jax_backend.unravel(layout, jnp.asarray(flat))
        got, treedef = flatten(rebuilt)
        assert treedef == layout.treedef
        for leaf, original in zip(got, leaves, strict=True):
            assert isinstance(leaf, jax.Array)
            assert leaf.dtype == original.dtype and leaf.shape == original.shape
            np.testing.assert_array_equal(np.asarray(leaf), original)
        # The traceable ravel takes gradients back to the flat vector. JAX's gradient of a real
        # function of z is conj(d/dRe + i d/dIm), so complex leaves come back conjugated.
        expected = by_hand([np.conj(leaf) for leaf in leaves])
        raveled = _jax_backend.ravel(layout, rebuilt, name="jac")
        np.testing.assert_array_equal(np.asarray(raveled, dtype=np.float64), expected)


def test_jax_unravel_promotes_for_complex_step():
    layout = layout_of({"a": np.zeros(2, np.float32), "b": np.zeros(1)})
    with jax.enable_x64(True):
        tree = _jax_backend.unravel(layout, jnp.array([1.0, 2.0, 3.0]) + 1e-20j)
    assert tree["a"].dtype == jnp.complex64 and tree["b"].dtype == jnp.complex128


# ---------------------------------------------------------------------------------------------
# JAX-registered nodes flatten as JAX flattens them.


@functools.partial(jax.tree_util.register_dataclass, data_fields=["w", "b"], meta_fields=["name"])
@dataclasses.dataclass
class Affine:
    w: Any
    b: Any
    name: str = "affine"


def _mlp_params() -> tuple[Any, Any]:
    model = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.PRNGKey(0))
    return eqx.partition(model, eqx.is_inexact_array)


@pytest.mark.parametrize(
    "make",
    [
        lambda: _mlp_params()[0],
        lambda: Affine(w=jnp.ones((2, 2)), b={"u": np.zeros(3), "v": None}),
        lambda: {"outer": [Affine(w=np.ones(2), b=1.0), _mlp_params()[0]]},
    ],
)
def test_jax_registered_nodes_flatten_as_jax(make):
    tree = make()
    _jax_backend.register_jax_nodes(tree)
    leaves, treedef = flatten(tree)
    expected = jax.tree_util.tree_leaves(tree)
    assert len(leaves) == len(expected)
    assert all(a is b for a, b in zip(leaves, expected))
    rebuilt = optree.tree_unflatten(treedef, leaves)
    expected_def: Any = jax.tree_util.tree_structure(tree)
    assert jax.tree_util.tree_structure(rebuilt) == expected_def


def test_jax_node_paths_name_fields():
    _jax_backend.register_jax_nodes(Affine(w=1.0, b=2.0))
    with pytest.raises(TypeError, match=r"`x0.b\['k'\]` has dtype int"):
        minimize(lambda p: p.w**2, Affine(w=1.0, b={"k": np.arange(2)}))


# ---------------------------------------------------------------------------------------------
# Leaf types, devices and dtypes come back as they went in.


def test_restore_leaf_keeps_kind_dtype_and_placement():
    array = np.array([1.5, 2.5])
    jax_leaf = jnp.zeros(2, jnp.float32)
    restored = _jax_backend.restore_leaf(array.astype(np.float32), jax_leaf)
    assert isinstance(restored, jax.Array) and restored.sharding == jax_leaf.sharding
    assert restored.dtype == jnp.float32
    assert type(_jax_backend.restore_leaf(array, np.zeros(2))) is np.ndarray
    scalar = _jax_backend.restore_leaf(np.array(2.5, np.float32), np.float32(0.0))
    assert type(scalar) is np.float32 and scalar == 2.5
    assert type(_jax_backend.restore_leaf(np.array(2.5), 0.0)) is float
    assert _jax_backend.describe_leaf("text") is None
    assert _jax_backend.describe_leaf(jax_leaf) == ((2,), np.dtype(np.float32))


def test_float32_leaves_stay_float32_inside_the_objective():
    seen: list[dict] = []

    def fun(p):
        seen.append({k: v.dtype for k, v in p.items()})
        return jnp.sum((p["lo"] - 1.0) ** 2) + jnp.sum((p["hi"] - 2.0) ** 2) + (p["s"] + 3) ** 2

    x0 = {"lo": jnp.zeros(3, jnp.float32), "hi": np.zeros(2), "s": np.float32(0.0)}
    for method in ("BFGS", "trust-exact", "Newton-CG"):
        seen.clear()
        res = minimize(fun, x0, method=method)
        assert seen and all(
            d == {"lo": jnp.float32, "hi": jnp.float64, "s": jnp.float32} for d in seen
        ), seen
        assert isinstance(res.x["lo"], jax.Array) and res.x["lo"].dtype == jnp.float32
        assert type(res.x["hi"]) is np.ndarray and res.x["hi"].dtype == np.float64
        assert type(res.x["s"]) is np.float32
        assert res.jac["lo"].dtype == jnp.float32 and type(res.jac["s"]) is np.float32
        np.testing.assert_allclose(np.asarray(res.x["lo"]), 1.0, atol=1e-5)
        np.testing.assert_allclose(res.x["hi"], 2.0, atol=1e-6)
        np.testing.assert_allclose(res.x["s"], -3.0, atol=1e-5)


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "trust-constr"])
def test_bfloat16_leaves_computed_in_bfloat16(method):
    target = np.array([1.0, -2.0, 0.5])  # exact in bfloat16
    seen: list[Any] = []

    def fun(p):
        seen.append(p["w"].dtype)
        return jnp.sum((p["w"] - target.astype(p["w"].dtype)) ** 2) + (p["s"] - 3.0) ** 2

    x0 = {"w": jnp.zeros(3, jnp.bfloat16), "s": np.float32(0.0)}
    res = minimize(fun, x0, method=method)
    assert seen and all(d == jnp.bfloat16 for d in seen), seen
    assert res.success, res.message
    assert isinstance(res.x["w"], jax.Array) and res.x["w"].dtype == jnp.bfloat16
    gradient = (
        res.grad if method == "trust-constr" else res.jac
    )  # trust-constr's `jac`: constraints'
    assert gradient["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(res.x["w"], np.float64), target, atol=1e-2)
    np.testing.assert_allclose(res.x["s"], 3.0, atol=1e-4)
    solution = pytree_minimize.argmin(fun, x0, method=method)
    assert solution.x["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(solution.x["w"], np.float64), target, atol=1e-2)


_X64_OFF_SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    import jax.numpy as jnp
    import numpy as np

    assert not jax.config.read("jax_enable_x64")
    from pytree_minimize import minimize

    seen = []

    def rosenbrock(p):
        seen.append([str(p["x"].dtype), str(p["y"].dtype)])
        v = jnp.concatenate([p["x"], p["y"]])
        return jnp.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)

    x0 = {"x": np.array([-1.2, 1.0, -1.2]), "y": np.array([1.0, -1.2, 1.0])}
    res = minimize(rosenbrock, x0, method="BFGS", options={"gtol": 1e-12})
    x0_32 = {"x": np.float32([-1.2, 1.0, -1.2]), "y": np.float32([1.0, -1.2, 1.0])}
    single = minimize(rosenbrock, x0_32, method="BFGS")
    # The same float64 leaves, computed in float32 on purpose: how far float32 gets.
    downcast = minimize(
        lambda p: rosenbrock(jax.tree_util.tree_map(lambda v: v.astype(jnp.float32), p)),
        x0,
        method="BFGS",
        options={"gtol": 1e-12},
    )
    print(json.dumps({
        "seen": seen,
        "error": float(np.max(np.abs(np.concatenate([res.x["x"], res.x["y"]]) - 1.0))),
        "dtypes": [str(res.x["x"].dtype), str(res.jac["y"].dtype), str(single.x["x"].dtype)],
        "error32": float(np.max(np.abs(np.concatenate([downcast.x["x"], downcast.x["y"]]) - 1.0))),
        "x64_after": bool(jax.config.read("jax_enable_x64")),
    }))
    """
)


def test_float64_leaves_computed_in_float64_with_x64_off():
    env = {**os.environ, "JAX_ENABLE_X64": "0", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", _X64_OFF_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["seen"][0] == ["float64", "float64"]
    assert ["float32", "float32"] in report["seen"]
    assert report["error"] < 1e-8  # Rosenbrock solved in float64
    assert report["dtypes"] == ["float64", "float64", "float32"]
    assert report["error32"] > 1e-8  # float32 arithmetic does not get there: the check can fail
    assert report["x64_after"] is False  # the float64 scope does not leak


# ---------------------------------------------------------------------------------------------
# Speed structure: compiled once, `args` traced; one compiled call per evaluation.


def test_new_args_values_never_retrace():
    traces: list[int] = []

    def fun(p, target, scale):
        traces.append(1)
        return scale * jnp.sum((p["w"] - target) ** 2) + (p["b"] - scale) ** 2

    x0 = {"w": np.zeros(3), "b": 0.0}
    for target, scale in ((np.array([1.0, 2.0, 3.0]), 2.0), (np.array([-1.0, 0.0, 5.0]), 3.0)):
        res = minimize(fun, x0, args=(target, scale), method="L-BFGS-B")
        np.testing.assert_allclose(res.x["w"], target, atol=1e-5)
        np.testing.assert_allclose(res.x["b"], scale, atol=1e-5)
    assert len(traces) == 1
    # A jax.Array of the same dtype is traced too; only new shapes (or dtypes) trace again.
    with jax.enable_x64(True):
        target_jax = jnp.ones(3)
    minimize(fun, x0, args=(target_jax, 4.0), method="L-BFGS-B")
    assert len(traces) == 1
    minimize(fun, {"w": np.zeros(4), "b": 0.0}, args=(np.ones(4), 1.0), method="L-BFGS-B")
    assert len(traces) == 2


def test_static_args_are_part_of_the_key():
    traces: list[str] = []

    def fun(p, mode):
        traces.append(mode)
        return jnp.sum(p**2) if mode == "square" else jnp.sum(jnp.abs(p) ** 3)

    minimize(fun, np.ones(2), args=("square",))
    minimize(fun, np.ones(2), args=("square",))
    minimize(fun, np.ones(2), args=("cube",))
    assert traces == ["square", "cube"]


def test_one_compiled_call_per_evaluation_with_400_leaves(monkeypatch):
    # Every `jax.jit` made during the test counts its calls from the host (scipy's flat numpy
    # vectors; JAX's own jitted helpers see JAX arrays or tracers).
    calls: list[tuple[str, list, tuple]] = []
    real_jit = jax.jit

    def counting_jit(fun, **kwargs):
        compiled = real_jit(fun, **kwargs)

        def counted(*inputs):
            out = compiled(*inputs)
            if isinstance(inputs[0], np.ndarray):
                arrays = [np.shape(i) for i in inputs[:-1]]
                kind = "hvp" if len(arrays) == 2 else "value_and_grad"
                calls.append((kind, arrays, out.shape))
            return out

        return counted

    monkeypatch.setattr(jax, "jit", counting_jit)
    traces: list[int] = []

    def rosenbrock(p):
        traces.append(1)
        v = jnp.concatenate([p[k] for k in sorted(p)])
        return jnp.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)

    x0 = {f"p{i:03d}": np.full(5, 0.5) for i in range(400)}
    res = minimize(rosenbrock, x0, method="L-BFGS-B", options={"maxiter": 15})
    assert res.nfev > 5 and len(traces) == 1
    assert len(calls) == res.nfev
    # one flat vector in, one packed (value, gradient) array out, however many leaves
    assert all(c == ("value_and_grad", [(2000,)], (2001,)) for c in calls)

    calls.clear()
    res = minimize(rosenbrock, x0, method="trust-krylov", options={"maxiter": 3})
    kinds = [c[0] for c in calls]
    # (scipy's trust-krylov counts one Hessian product more than it asks for)
    assert kinds.count("value_and_grad") == res.nfev and 0 < kinds.count("hvp") <= res.nhev
    assert set(kinds) == {"value_and_grad", "hvp"}
    assert all(c[1:] == ([(2000,), (2000,)], (2000,)) for c in calls if c[0] == "hvp")


def test_bounds_with_jax_registered_nodes():
    params = Affine(w=np.array([0.5, 0.5]), b=0.5)
    res = minimize(
        lambda p: jnp.sum((p.w - 2.0) ** 2) + (p.b + 2.0) ** 2,
        params,
        bounds=Bounds(lb=Affine(w=0.0, b=-1.0), ub=Affine(w=np.array([1.0, 3.0]), b=1.0)),
    )
    assert isinstance(res.x, Affine) and res.x.name == "affine"
    np.testing.assert_allclose(res.x.w, [1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(res.x.b, -1.0, atol=1e-6)
