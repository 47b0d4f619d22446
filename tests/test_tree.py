"""The flat layout: flatten order, ravel/unravel, leaf checks, bounds broadcasting.

The expected flat vectors are built here by hand from DESIGN.md's contract: leaves in
`optree.tree_flatten` order, each raveled in C order, complex leaves as their real parts then
their imaginary parts.
"""

from __future__ import annotations

import doctest
import re
from collections import OrderedDict, namedtuple
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import optree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytree_minimize._core import tree as _tree
from pytree_minimize._core.tree import NAMESPACE, Bounds, build_layout, flat_bounds, locate

Point = namedtuple("Point", ["y", "x"])


def describe(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    """A NumPy-only leaf description (the JAX backend has its own)."""
    if isinstance(leaf, np.ndarray | np.generic | float | int | complex):
        array = np.asarray(leaf)
        return array.shape, array.dtype
    return None


def layout_of(tree: Any) -> _tree.Layout:
    return build_layout(tree, describe_leaf=describe)


def by_hand(leaves: list[np.ndarray]) -> np.ndarray:
    parts = []
    for leaf in leaves:
        leaf = np.asarray(leaf)
        if leaf.dtype.kind == "c":
            parts += [leaf.real.ravel(), leaf.imag.ravel()]
        else:
            parts.append(leaf.ravel())
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


# ---------------------------------------------------------------------------------------------
# Property: ravel and unravel round-trip any nested tree of mixed shapes and dtypes.

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _elements(dtype: Any) -> st.SearchStrategy:
    # XLA on CPU flushes subnormal numbers to zero, so the JAX round trip cannot keep them.
    finite = {"allow_nan": False, "allow_infinity": False, "allow_subnormal": False}
    if dtype == np.complex64:
        return st.complex_numbers(width=64, **finite)
    if dtype == np.complex128:
        return st.complex_numbers(width=128, **finite)
    return st.floats(width=32 if dtype == np.float32 else 64, **finite)


@st.composite
def array_leaves(draw: Any) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    # 0-d, empty (a zero side) and ordinary shapes, mixed in one tree.
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))


KEYS = st.text(alphabet="abcxyz", min_size=1, max_size=3)
TREES = st.recursive(
    array_leaves() | st.none(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(KEYS, children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES)
def test_ravel_unravel_round_trip(tree):
    leaves, treedef = optree.tree_flatten(tree, namespace=NAMESPACE)
    if sum(np.size(leaf) for leaf in leaves) == 0:
        with pytest.raises(ValueError, match="`x0`"):
            layout_of(tree)
        return
    layout = layout_of(tree)
    assert layout.treedef == treedef
    assert layout.n == sum(
        2 * leaf.size if leaf.dtype.kind == "c" else leaf.size for leaf in leaves
    )

    flat = layout.ravel(leaves)
    assert flat.dtype == np.float64 and flat.shape == (layout.n,)
    np.testing.assert_array_equal(flat, by_hand(leaves))

    back = layout.unravel(flat)
    for got, leaf in zip(back, leaves, strict=True):
        assert isinstance(got, np.ndarray)
        assert got.dtype == leaf.dtype and got.shape == leaf.shape
        np.testing.assert_array_equal(got, leaf)
        if got.size:
            assert not np.shares_memory(got, flat)
    rebuilt = layout.unflatten(back)
    assert optree.tree_structure(rebuilt, namespace=NAMESPACE) == treedef


# ---------------------------------------------------------------------------------------------
# The order is optree's: sorted dict keys, OrderedDict and namedtuple in their own order.


def test_flat_order_is_optree_order():
    tree: dict[str, Any] = {
        "z": np.array([1.0, 2.0]),
        "a": [np.array([[3.0, 4.0], [5.0, 6.0]]), None, 7.0],
        "m": OrderedDict([("q", np.array(8.0)), ("b", np.array([9.0]))]),
        "p": Point(y=np.array(10.0), x=np.array(11.0)),
    }
    layout = layout_of(tree)
    paths = [layout.path(k) for k in range(len(layout.leaves))]
    assert paths == [
        "x0['a'][0]",
        "x0['a'][2]",
        "x0['m']['q']",
        "x0['m']['b']",
        "x0['p'].y",
        "x0['p'].x",
        "x0['z']",
    ]
    leaves: list[Any] = optree.tree_leaves(tree, namespace=NAMESPACE)  # type: ignore[arg-type]
    np.testing.assert_array_equal(
        layout.ravel(leaves), [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 1.0, 2.0]
    )
    assert [spec.offset for spec in layout.leaves] == [0, 4, 5, 6, 7, 8, 9]


def test_complex_leaf_is_real_parts_then_imaginary_parts():
    layout = layout_of({"a": np.array([1.0]), "c": np.array([1 + 2j, 3 - 4j], np.complex64)})
    flat = layout.ravel([np.array([1.0]), np.array([1 + 2j, 3 - 4j], np.complex64)])
    np.testing.assert_array_equal(flat, [1.0, 1.0, 3.0, 2.0, -4.0])
    spec = layout.leaves[1]
    assert (spec.offset, spec.size, spec.width) == (1, 2, 4)
    assert layout.has_complex and not layout.is_single_array


def test_layout_key_is_structure_shapes_and_dtypes():
    a = layout_of({"w": np.zeros(3), "b": 0.0})
    assert a.key == layout_of({"w": np.ones(3), "b": 2.0}).key
    assert a.key != layout_of({"w": np.zeros(3, np.float32), "b": 0.0}).key
    assert a.key != layout_of({"w": np.zeros(4), "b": 0.0}).key
    assert a.key != layout_of({"w": np.zeros(3), "c": 0.0}).key
    assert layout_of(np.zeros(3)).is_single_array
    assert not layout_of([np.zeros(3)]).is_single_array


def test_locate_names_leaf_and_element():
    layout = layout_of({"a": np.zeros((2, 3)), "b": [np.zeros(2, np.complex128)]})
    assert locate(layout, 0) == ("x0['a']", (0, 0))
    assert locate(layout, 5) == ("x0['a']", (1, 2))
    assert locate(layout, 7) == ("x0['b'][0]", (1,))
    assert locate(layout, 9) == ("x0['b'][0]", (1,))  # the imaginary part of element 1
    with pytest.raises(IndexError):
        locate(layout, 10)


# ---------------------------------------------------------------------------------------------
# Leaf checks.


@pytest.mark.parametrize(
    "tree,path,dtype",
    [
        ({"a": np.zeros(2), "b": [1.0, np.array([1, 2])]}, "x0['b'][1]", "int64"),
        ({"a": [np.zeros(2, bool)]}, "x0['a'][0]", "bool"),
        (Point(y=np.zeros(2), x=np.array(["s"])), "x0.x", "<U1"),
    ],
)
def test_non_float_leaf_is_named_by_path(tree, path, dtype):
    with pytest.raises(TypeError, match=f"`{re.escape(path)}` has dtype {re.escape(dtype)}") as e:
        layout_of(tree)
    assert "`args`" in str(e.value)


def test_non_array_leaf_is_named_by_path():
    with pytest.raises(TypeError, match=r"`params\['f'\]` is a str.*`params`"):
        build_layout({"f": "text", "g": 1.0}, describe_leaf=describe, name="params")


def test_complex_leaf_rejected_where_not_allowed():
    with pytest.raises(TypeError, match=r"`out\[0\]`.*floating-point"):
        build_layout(
            [np.zeros(1, complex)], describe_leaf=describe, name="out", allow_complex=False
        )


@pytest.mark.parametrize("tree", [{}, [], None, {"a": np.zeros(0), "b": [np.zeros((2, 0))]}])
def test_empty_tree_is_rejected(tree):
    with pytest.raises(ValueError, match=r"`x0` has no parameters"):
        layout_of(tree)


# ---------------------------------------------------------------------------------------------
# Bounds: pytree, prefix, scalar broadcast, None (unbounded) at any node, +-inf.

X0 = {"a": np.zeros(3), "b": {"c": np.zeros((2, 2)), "d": 0.0}}  # flat: a(3), b.c(4), b.d(1)
INF = np.inf


def bounds_of(lb: Any = None, ub: Any = None, x0: Any = X0) -> tuple[np.ndarray, np.ndarray]:
    return flat_bounds(Bounds(lb, ub), layout_of(x0), to_numpy=np.asarray)


@pytest.mark.parametrize(
    "lb,ub,flat_lb,flat_ub",
    [
        (None, None, [-INF] * 8, [INF] * 8),
        (0.0, 1.0, [0.0] * 8, [1.0] * 8),
        (
            {"a": np.array([0.0, 1.0, 2.0]), "b": {"c": np.full((2, 2), -1.0), "d": -INF}},
            {"a": 5.0, "b": {"c": np.array([[1.0, 2.0], [3.0, 4.0]]), "d": 9.0}},
            [0, 1, 2, -1, -1, -1, -1, -INF],
            [5, 5, 5, 1, 2, 3, 4, 9],
        ),
        ({"a": 0.0, "b": None}, {"a": None, "b": 2.0}, [0] * 3 + [-INF] * 5, [INF] * 3 + [2] * 5),
        ({"a": None, "b": {"c": None, "d": 1.0}}, None, [-INF] * 7 + [1.0], [INF] * 8),
        # a row vector broadcast along the leaf's first axis
        (
            {"a": -INF, "b": {"c": np.array([0.0, 1.0]), "d": None}},
            None,
            [-INF] * 3 + [0, 1, 0, 1] + [-INF],
            [INF] * 8,
        ),
    ],
)
def test_bounds_broadcast(lb, ub, flat_lb, flat_ub):
    got_lb, got_ub = bounds_of(lb, ub)
    np.testing.assert_array_equal(got_lb, np.array(flat_lb, dtype=float))
    np.testing.assert_array_equal(got_ub, np.array(flat_ub, dtype=float))


def test_bounds_structure_mismatch():
    with pytest.raises(ValueError, match=r"`bounds.lb`.*structure"):
        bounds_of(lb={"a": 0.0, "e": 1.0})
    with pytest.raises(ValueError, match=r"`bounds.ub`.*structure"):
        bounds_of(ub={"a": 0.0, "b": [1.0, 2.0]})


def test_bounds_shape_mismatch_names_the_leaf():
    with pytest.raises(
        ValueError, match=r"`bounds.lb\['a'\]` has shape \(2,\).*\(3,\) of `x0\['a'\]`"
    ):
        bounds_of(lb={"a": np.zeros(2), "b": None})
    # A prefix: the message names the part given and the leaf it does not fit.
    with pytest.raises(
        ValueError, match=r"`bounds.ub\['b'\]` has shape \(3,\).*\(2, 2\) of `x0\['b'\]\['c'\]`"
    ):
        bounds_of(ub={"a": None, "b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"`bounds.lb` has shape \(5,\); expected a scalar"):
        bounds_of(lb=np.zeros(5))


def test_bounds_as_lists_of_numbers_and_flat_vectors():
    """The forms every prefix argument takes (one broadcaster): lists of numbers read as arrays,
    and a flat vector over all of `x0`'s elements in the layout's order."""
    lb, _ = bounds_of(lb={"a": [0.0, 1.0, 2.0], "b": -1.0})
    np.testing.assert_array_equal(lb, [0, 1, 2] + [-1] * 5)
    lb, ub = bounds_of(lb=np.arange(8.0), ub=list(range(1, 9)))
    np.testing.assert_array_equal(lb, np.arange(8.0))
    np.testing.assert_array_equal(ub, np.arange(1.0, 9.0))


def test_bounds_order_and_nan():
    with pytest.raises(
        ValueError,
        match=r"`bounds` has lb > ub at `x0\['b'\]\['c'\]` element \(1, 0\): lb=0.0, ub=-1.0",
    ):
        bounds_of(lb=0.0, ub={"a": 1.0, "b": {"c": np.array([[1.0, 1.0], [-1.0, 1.0]]), "d": 1.0}})
    with pytest.raises(ValueError, match=r"`bounds.ub` is NaN at `x0\['a'\]` element \(0,\)"):
        bounds_of(ub=np.nan)
    with pytest.raises(ValueError, match=r"`bounds.lb` is NaN at `x0\['b'\]\['d'\]` element \(\)"):
        bounds_of(lb={"a": 0.0, "b": {"c": 0.0, "d": np.nan}})


def test_bounds_type_errors():
    with pytest.raises(TypeError, match=r"`bounds.lb\['a'\]` has dtype complex128.*real"):
        bounds_of(lb={"a": np.zeros(3, complex), "b": None})
    x0 = {"w": np.zeros(2), "z": np.zeros(2, complex)}
    with pytest.raises(TypeError, match=r"`bounds.ub`.*complex leaf `x0\['z'\]`"):
        bounds_of(ub=1.0, x0=x0)
    lb, _ = bounds_of(lb={"w": 0.0, "z": None}, x0=x0)  # a complex leaf left unbounded is fine
    np.testing.assert_array_equal(lb, [0.0, 0.0] + [-INF] * 4)


def test_doctests():
    results = doctest.testmod(_tree, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0 and results.failed == 0
