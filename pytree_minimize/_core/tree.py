"""The flat-vector layout that every backend shares.

scipy sees one float64 vector: the leaves of `x0` in `optree.tree_flatten` order, each raveled in
C order, complex leaves as their real parts followed by their imaginary parts. This module holds
that contract and nothing framework-specific: backends describe their leaves (shape and dtype) and
convert them to NumPy; the layout does the bookkeeping, the host-side ravel and unravel, the
broadcasting of bounds and the leaf paths used in error messages.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import optree

from .errors import EmptyTreeError, LeafTypeError
from .hints import float_cast_hint, not_array_hint

#: The optree namespace in which backends register framework-specific node types (for example
#: JAX-registered classes), so that the global optree registry stays untouched.
NAMESPACE = "pytree_minimize"

PyTree = Any
#: Describes a leaf as `(shape, dtype)`, or returns None for something that is not an array.
DescribeLeaf = Callable[[Any], "tuple[tuple[int, ...], np.dtype] | None"]
ToNumpy = Callable[[Any], np.ndarray]


class LeafSpec(NamedTuple):
    """One leaf's place in the flat vector."""

    shape: tuple[int, ...]
    dtype: np.dtype
    size: int
    offset: int
    width: int  # entries in the flat vector: `size`, or `2 * size` for a complex leaf


class Bounds(NamedTuple):
    """Lower and upper bounds on a pytree of parameters, with scipy's arguments.

    `Bounds(lb, ub, keep_feasible)` is called as `scipy.optimize.Bounds` is. For an array `x0`
    (and array-like sides: numbers, arrays, flat lists of numbers) it means what scipy's does,
    and where a problem goes to scipy unchanged (the NumPy port with a 1-D `x0`) scipy receives a
    `scipy.optimize.Bounds` made from it. For a pytree `x0` each side is a pytree prefix.

    Args:
        lb: None (unbounded below), a pytree like `x0`, or a prefix of it: a scalar or array at a
            node bounds every leaf under that node, broadcast to each leaf's shape. `None` at a
            node leaves that subtree unbounded; lists of numbers read as arrays. A flat vector
            of all of `x0`'s elements (in the layout's order) is also read. `-inf` is allowed.
        ub: The same for the upper bound.
        keep_feasible: Whether the iterates must stay inside the bounds (scipy's; trust-constr
            honours it): a bool, or per element like `lb`.

    Examples:
        >>> import numpy as np
        >>> from pytree_minimize import Bounds
        >>> b = Bounds(lb={"w": 0.0, "b": None}, ub=1.0)
        >>> b.ub
        1.0
    """

    lb: PyTree = None
    ub: PyTree = None
    keep_feasible: Any = False

    @property
    def is_pytree(self) -> bool:
        """Whether a side is a pytree rather than something scipy reads as an array (a number,
        None, a NumPy array, a flat list or tuple of numbers)."""
        return not all(map(is_array_like, (self.lb, self.ub, self.keep_feasible)))


def is_array_like(value: Any) -> bool:
    """What scipy reads as an array and this library as one too: None, a real number, a NumPy
    array of numbers, a flat list or tuple of real numbers."""
    if value is None or isinstance(value, bool | int | float | np.integer | np.floating):
        return True
    if isinstance(value, np.ndarray | np.bool_):
        return value.dtype.kind in "biuf"
    if type(value) in (list, tuple):
        return all(
            isinstance(v, bool | int | float | np.integer | np.floating | np.bool_) for v in value
        )
    return False


def flatten(tree: PyTree) -> tuple[list[Any], optree.PyTreeSpec]:
    """Leaves and structure of `tree` in the layout's order."""
    return optree.tree_flatten(tree, namespace=NAMESPACE)


def format_path(accessor: optree.PyTreeAccessor, root: str) -> str:
    return accessor.codify(root)


def describe_host_leaf(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    """`(shape, dtype)` of a NumPy array or Python number, the leaves every backend takes beside
    its own tensors; None for anything else."""
    if isinstance(leaf, np.ndarray | np.generic):
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    if isinstance(leaf, bool):
        return (), np.dtype(bool)
    if isinstance(leaf, int | float | complex):
        return (), np.asarray(leaf).dtype
    return None


def is_floating(dtype: np.dtype) -> bool:
    """Whether `dtype` is real floating-point, the extension types of `ml_dtypes` included
    (bfloat16, float8_*: NumPy gives them kind 'V', as it does structured dtypes)."""
    if dtype.kind == "f":
        return True
    if dtype.kind != "V":
        return False
    import ml_dtypes  # a dependency of jax, loaded only for such a dtype

    try:
        ml_dtypes.finfo(dtype)
    except ValueError:  # ml_dtypes' integer types (int4) and structured dtypes
        return False
    return True


def _is_inexact(dtype: np.dtype) -> bool:
    return dtype.kind == "c" or is_floating(dtype)


class Layout:
    """The flat float64 layout of one pytree structure with fixed shapes and dtypes.

    Args:
        treedef: optree structure of `x0` (namespace :data:`NAMESPACE`).
        leaves: one :class:`LeafSpec` per leaf, in flattening order.
    """

    __slots__ = ("_key", "leaves", "n", "root", "treedef")

    def __init__(self, treedef: optree.PyTreeSpec, leaves: Sequence[LeafSpec], root: str = "x0"):
        self.treedef = treedef
        self.leaves = tuple(leaves)
        self.n = sum(leaf.width for leaf in self.leaves)
        #: The name paths start from in messages.
        self.root = root
        self._key = (treedef, tuple((leaf.shape, leaf.dtype.str) for leaf in self.leaves))

    def path(self, k: int, root: str | None = None) -> str:
        """Leaf `k`'s path under `root` (the layout's own by default), for messages: made only
        when asked, since a tree of thousands of leaves would pay for every one on each call."""
        return format_path(self.treedef.accessors()[k], root or self.root)

    @property
    def key(self) -> tuple:
        """Hashable identity: structure, shapes and dtypes."""
        return self._key

    @property
    def is_single_array(self) -> bool:
        return self.treedef.num_nodes == 1 and self.treedef.num_leaves == 1

    @property
    def has_complex(self) -> bool:
        return any(leaf.dtype.kind == "c" for leaf in self.leaves)

    def unflatten(self, leaves: Sequence[Any]) -> PyTree:
        return optree.tree_unflatten(self.treedef, leaves)

    def leaves_like_x(
        self,
        tree: PyTree,
        *,
        name: str,
        shape_of: Callable[[Any], Sequence[int] | None] = np.shape,
        leading: tuple[int, ...] = (),
    ) -> list[Any]:
        """The leaves of `tree`, which a user function `name` returned as a pytree like `x`.

        Args:
            leading: Dimensions each leaf has before its `x` leaf's shape: a block of a
                Jacobian, for an output leaf of shape `leading`, as `jax.jacrev(fun)(x)` returns.

        Raises:
            ValueError: `tree`'s structure or a leaf's shape differs from `x0`'s.
        """
        leaves, treedef = flatten(tree)
        if treedef != self.treedef:
            raise ValueError(
                f"`{name}` returned a pytree of structure {treedef}; expected the structure of "
                f"`x0`, {self.treedef}."
            )
        for k, (spec, leaf) in enumerate(zip(self.leaves, leaves, strict=True)):
            shape = shape_of(leaf)  # None: not known before the run (checked where it is)
            expected = leading + spec.shape
            if shape is not None and tuple(shape) != expected:
                why = (
                    f" (output leaf {leading} by `x` leaf {spec.shape}, as `jax.jacrev(fun)(x)` "
                    "returns)"
                    if leading
                    else ""
                )
                raise ValueError(
                    f"`{name}` returned shape {tuple(shape)} at `{self.path(k)}`; expected "
                    f"{expected}{why}."
                )
        return leaves

    def ravel(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Host-side ravel of NumPy leaves into a new float64 vector; complex128 where a real
        leaf holds complex values (a derivative at a complex-step point of scipy's `'cs'`
        differences, which scipy reads off the imaginary part)."""
        arrays = [np.asarray(array) for array in arrays]
        stepped = any(
            spec.dtype.kind != "c" and np.iscomplexobj(array)
            for spec, array in zip(self.leaves, arrays, strict=True)
        )
        flat = np.empty(self.n, dtype=np.complex128 if stepped else np.float64)
        for spec, array in zip(self.leaves, arrays, strict=True):
            if spec.dtype.kind == "c":
                flat[spec.offset : spec.offset + spec.size] = array.real.ravel()
                flat[spec.offset + spec.size : spec.offset + spec.width] = array.imag.ravel()
            else:
                flat[spec.offset : spec.offset + spec.width] = array.ravel()
        return flat

    def unravel(self, flat: np.ndarray) -> list[np.ndarray]:
        """Host-side unravel into NumPy arrays of each leaf's shape and dtype (new arrays). A
        complex `flat` (a complex-step point of scipy's `'cs'` differences) promotes every real
        leaf to complex, so that the imaginary step reaches the user's function."""
        stepped = np.iscomplexobj(flat)
        out = []
        for spec in self.leaves:
            segment = flat[spec.offset : spec.offset + spec.width]
            if spec.dtype.kind == "c":
                values = segment[: spec.size].real + 1j * segment[spec.size :].real
            else:
                values = segment
            dtype = np.result_type(spec.dtype, np.complex64) if stepped else spec.dtype
            out.append(np.array(values, dtype=dtype).reshape(spec.shape))
        return out


def build_layout(
    tree: PyTree, *, describe_leaf: DescribeLeaf, name: str = "x0", allow_complex: bool = True
) -> Layout:
    """Validate `tree` and return its :class:`Layout`.

    Raises:
        LeafTypeError: a leaf that is not a floating-point (or complex) array, named by its path.
        EmptyTreeError: a tree with no elements.
    """
    leaves, treedef = flatten(tree)
    specs = []
    offset = 0
    for k, leaf in enumerate(leaves):
        described = describe_leaf(leaf)
        if described is None:
            path = format_path(treedef.accessors()[k], name)
            raise LeafTypeError(
                f"`{path}` is a {type(leaf).__name__}, not an array: every leaf of `{name}` must "
                f"be a floating-point array or Python float. {not_array_hint(leaf, tree)}",
                argument=name,
                path=path,
                found=type(leaf).__name__,
                not_array=True,
            )
        shape, dtype = described
        dtype = np.dtype(dtype)
        if not _is_inexact(dtype) or (dtype.kind == "c" and not allow_complex):
            path = format_path(treedef.accessors()[k], name)
            expected = "floating-point or complex" if allow_complex else "floating-point"
            raise LeafTypeError(
                f"`{path}` has dtype {dtype}; every leaf of `{name}` must be {expected}. Pass "
                f"fixed (for example integer) values through `args`, or {float_cast_hint(leaf)}.",
                argument=name,
                path=path,
                found=dtype,
                not_array=False,
            )
        size = math.prod(shape)
        width = 2 * size if dtype.kind == "c" else size
        specs.append(LeafSpec(tuple(shape), dtype, size, offset, width))
        offset += width
    layout = Layout(treedef, specs, root=name)
    if layout.n == 0:
        raise EmptyTreeError(
            f"`{name}` has no parameters to optimise (its leaves hold 0 elements); pass a pytree "
            "with at least one floating-point element.",
            argument=name,
        )
    return layout


class _Unbounded:
    """Stands for `None` inside a bounds tree, which optree would otherwise read as empty."""

    def __repr__(self) -> str:
        return "None"


UNBOUNDED = _Unbounded()


class _ArrayReader:
    """The broadcaster's view of the user's arrays given only a `to_numpy`: anything with a
    `shape` and a `dtype` is an array of the backend; numbers and NumPy arrays are read as such."""

    def __init__(self, to_numpy: ToNumpy) -> None:
        self.to_numpy = to_numpy

    def describe_leaf(self, leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            array = np.asarray(self.to_numpy(leaf))
            return tuple(array.shape), array.dtype
        return describe_host_leaf(leaf)


def flat_bounds(
    bounds: Bounds, layout: Layout, *, to_numpy: ToNumpy, like: str = "x0"
) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast pytree bounds to flat `(lb, ub)` vectors (by :func:`broadcast_prefix`) and check
    `lb <= ub`; `like` names the pytree they describe in messages."""
    host = _ArrayReader(to_numpy)
    lb = broadcast_prefix(bounds.lb, layout, name="bounds.lb", fill=-np.inf, host=host, like=like)
    ub = broadcast_prefix(bounds.ub, layout, name="bounds.ub", fill=np.inf, host=host, like=like)
    check_bound_order(lb, ub, layout)
    return lb, ub


def check_bound_order(
    lb: np.ndarray,
    ub: np.ndarray,
    layout: Layout | None,
    *,
    name: str = "bounds",
    root: str | None = None,
) -> None:
    """Reject NaN and `lb > ub` in flat bounds over `layout`: of `x0` (`name` "bounds"), or of
    a constraint's output (`name` "constraints[i]", `root` its output's name, `layout` None for a
    flat output). The message names the argument, the element and both values.

    Raises:
        ValueError: a NaN, or a lower bound above its upper bound.
    """
    for side, values in (("lb", lb), ("ub", ub)):
        nan = np.flatnonzero(np.isnan(values))
        if nan.size:
            raise ValueError(
                f"`{name}.{side}` is NaN at {element_at(layout, int(nan[0]), root=root)}; use "
                "-inf or inf for an unbounded side."
            )
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        raise ValueError(
            f"`{name}` has lb > ub at {element_at(layout, int(bad[0]), root=root)}: "
            f"lb={lb[bad[0]]}, ub={ub[bad[0]]}. Each lower bound must not exceed its upper bound."
        )


def locate(
    layout: Layout, flat_index: int, *, root: str | None = None
) -> tuple[str, tuple[int, ...]]:
    """The leaf path (under `root` when given, else the layout's own) and element index of one
    entry of the flat vector."""
    for k, spec in enumerate(layout.leaves):
        if spec.offset <= flat_index < spec.offset + spec.width:
            within = (flat_index - spec.offset) % max(spec.size, 1)
            path = layout.path(k, root)
            return path, tuple(int(i) for i in np.unravel_index(within, spec.shape))
    raise IndexError(flat_index)


def element_at(layout: Layout | None, flat_index: int, *, root: str | None = None) -> str:
    """One entry of a flat vector over `layout`, for messages: its leaf path and element, or its
    index when `layout` is None (a flat vector)."""
    if layout is None:
        return f"element {flat_index}"
    path, index = locate(layout, flat_index, root=root)
    return f"`{path}` element {index}"


# ---------------------------------------------------------------------------------------------
# Prefix broadcasting: a value given for every element of a layout (bounds, constraint bounds,
# `x_scale`-like arguments) as a scalar, a flat vector or a pytree prefix. The one place that
# checks such a value's structure and shapes against a layout.


class HostLeaves(Protocol):
    """What the broadcaster asks of a backend: recognise and read the user's arrays."""

    def describe_leaf(self, leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None: ...

    def to_numpy(self, leaf: Any) -> np.ndarray: ...


class HostReader(NamedTuple):
    """A framework's leaf readers without a backend (for what is read before or outside a
    call: `argmin`'s bounds while tracing)."""

    describe_leaf: DescribeLeaf
    to_numpy: ToNumpy


class _Shape:
    """Prints a leaf's shape inside a structure, for messages."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __repr__(self) -> str:
        return f"<shape {self.shape}>"


def describe_output(out_layout: Layout | None, m: int) -> str:
    """The structure of `m` values laid out by `out_layout` (None: flat), for messages."""
    if out_layout is None:
        return f"an array of shape ({m},)"
    if out_layout.is_single_array:
        return f"an array of shape {out_layout.leaves[0].shape}"
    shapes = out_layout.unflatten([_Shape(spec.shape) for spec in out_layout.leaves])
    return f"a pytree {shapes!r} ({m} values)"


def _as_array(value: Any, host: HostLeaves) -> np.ndarray | None:
    """`value` as a NumPy array when it is one array-like thing (an array, a number, or a
    list of numbers); None when it is a pytree of arrays."""
    if host.describe_leaf(value) is not None:
        return np.asarray(host.to_numpy(value))
    if isinstance(value, int | float | np.number):
        return np.asarray(value)
    if isinstance(value, list | tuple):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            return None
        return array if array.dtype.kind in "biuf" else None
    return None


def _real(array: np.ndarray | None, value: Any, where: str) -> np.ndarray:
    if array is None:
        raise TypeError(
            f"`{where}` is a {type(value).__name__}; it must hold real numbers (a number or an "
            "array)."
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{where}` has dtype {array.dtype}; it must hold real numbers.")
    return array


def broadcast_prefix(
    value: Any,
    layout: Layout | None,
    *,
    name: str,
    fill: float,
    host: HostLeaves,
    size: int | None = None,
    dtype: Any = np.float64,
    like: str | None = None,
) -> np.ndarray:
    """`value` broadcast to a flat vector over `layout` (of `size` values when `layout` is None,
    a flat output), as bounds of `x0`, `lb`, `ub` or `keep_feasible` of a constraint, or an
    `x_scale`-like argument: None (`fill` everywhere), a scalar, an array that broadcasts to
    every leaf, a pytree like the layout's tree or a prefix of it (a scalar or array for a whole
    subtree, broadcast to each leaf's shape; None inside for `fill` there; lists of numbers read
    as arrays), or a flat vector of all the values in the layout's order. Over a flat output, an
    array that broadcasts to `(size,)`, as scipy reads it.

    Args:
        value: What the user gave.
        layout: The layout of what `value` describes, or None for a flat vector.
        name: The argument's name in messages, for example "constraints[0].lb".
        fill: The value where `value` holds None.
        host: The backend: its `describe_leaf` and `to_numpy` read the user's arrays.
        size: The number of values; `layout.n` by default.
        dtype: The result's dtype.
        like: The name of the tree `layout` lays out, for messages ("x0"); None for a
            constraint's output, whose leaves are then named `name`'s constraint applied to `x`.

    Returns:
        A new flat NumPy array of `size` values. Leaves of a complex layout leaf hold `fill`:
        such a leaf cannot be given values (a `TypeError` says so).

    Raises:
        TypeError, ValueError: `value` is none of the accepted forms; the message names `name`,
            the path of the part that does not fit, what it is and what was expected.
    """
    m = layout.n if size is None and layout is not None else int(size or 0)
    if value is None:
        return np.full(m, fill, dtype=dtype)
    array = _as_array(value, host)
    if layout is None:
        array = _real(array, value, name)
        try:
            return np.broadcast_to(array.astype(dtype), (m,)).copy()
        except ValueError:
            raise ValueError(
                f"`{name}` has shape {array.shape}; expected a scalar or a flat vector of its {m} "
                "values."
            ) from None
    subject = f"`{like}`" if like is not None else "the constraint's output"
    expected = (
        f"a scalar, a pytree like {subject} ({describe_output(layout, m)}) or a prefix of it, "
        f"or a flat vector of its {m} values"
    )
    root = like if like is not None else f"{name.rsplit('.', 1)[0]}(x)"
    try:
        return _flat_from_tree(
            value,
            layout,
            m,
            name=name,
            root=root,
            subject=subject,
            fill=fill,
            dtype=dtype,
            host=host,
            expected=expected,
        )
    except ValueError:
        if array is None:
            raise
        array = _real(array, value, name)
        if array.ndim == 1 and array.size == m and not layout.has_complex:
            return array.astype(dtype)
        raise ValueError(f"`{name}` has shape {array.shape}; expected {expected}.") from None


class _Slot:
    """A leaf of the layout in a structure handed to `tree_broadcast_prefix`."""

    __slots__ = ("spec",)

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def __repr__(self) -> str:  # optree prints the expected structure with these in it
        return f"<leaf of shape {self.spec.shape}>"


def _prefix_sources(
    value: PyTree, layout: Layout, *, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[Any], list[optree.PyTreeAccessor]]:
    """For each leaf of `layout`: the part of `value` that covers it (`UNBOUNDED` for None) and
    where that part sits in `value`."""
    marked = optree.tree_map(
        lambda v: UNBOUNDED if v is None else v,
        value,
        is_leaf=is_leaf,
        none_is_leaf=True,
        namespace=NAMESPACE,
    )
    accessors, parts, treedef = optree.tree_flatten_with_accessor(
        marked, is_leaf=is_leaf, namespace=NAMESPACE
    )
    numbered = optree.tree_unflatten(treedef, list(range(len(parts))))
    slots = layout.unflatten([_Slot(spec) for spec in layout.leaves])
    indices = optree.tree_leaves(
        optree.tree_broadcast_prefix(numbered, slots, namespace=NAMESPACE), namespace=NAMESPACE
    )
    return [parts[i] for i in indices], [accessors[i] for i in indices]


def prefix_leaves(
    value: PyTree, layout: Layout, *, is_leaf: Callable[[Any], bool] | None = None
) -> list[Any]:
    """One entry per leaf of `layout`: the part of `value` (a pytree like the layout's tree, or
    a prefix of it) that covers that leaf, or `UNBOUNDED` where `value` holds None.

    Raises:
        ValueError: `value`'s structure is not a prefix of the layout's (optree's message).
    """
    return _prefix_sources(value, layout, is_leaf=is_leaf)[0]


def structure_difference(value: Any, like: PyTree, *, name: str, root: str) -> str | None:
    """Where `value` (meant as a prefix of `like`) first departs from `like`'s structure, in the
    words of the user's argument `name` against the tree `root`: the keys it has that `root`
    lacks (with the close matches), the keys it lacks, or the node types or lengths that differ.
    None where `value` is a prefix of `like`."""
    if value is None or optree.tree_is_leaf(value, namespace=NAMESPACE):
        return None
    if optree.tree_is_leaf(like, namespace=NAMESPACE):
        return None if isinstance(like, _Slot) else f"`{name}` is a {type(value).__name__}"
    mine = optree.tree_flatten_one_level(value, namespace=NAMESPACE)
    theirs = optree.tree_flatten_one_level(like, namespace=NAMESPACE)
    if isinstance(value, Mapping) and isinstance(like, Mapping):
        extra = [k for k in mine.entries if k not in theirs.entries]
        missing = [k for k in theirs.entries if k not in mine.entries]
        if extra:
            hints = []
            for key in extra:
                close = [k for k in missing if str(k).lower() == str(key).lower()]
                close = close or difflib.get_close_matches(str(key), map(str, missing), n=1)
                if close:
                    hints.append(f"{close[0]!r} for {key!r}")
            meant = f" (did you mean {', '.join(hints)}? keys are case-sensitive)" if hints else ""
            return (
                f"`{name}` has key(s) {extra} that `{root}` does not have{meant}; `{root}` has "
                f"key(s) {sorted(theirs.entries, key=str)}"
            )
        if missing:
            # A mapping prefix names every key of its node (None leaves a subtree unbounded).
            return (
                f"`{name}` lacks key(s) {missing} of `{root}`; give them (None for no bound there)"
            )
    elif type(value) is not type(like) and not (
        isinstance(value, list | tuple) and isinstance(like, list | tuple)
    ):
        return f"`{name}` is a {type(value).__name__} where `{root}` is a {type(like).__name__}"
    elif len(mine.children) != len(theirs.children):
        return (
            f"`{name}` has {len(mine.children)} entries where `{root}` has {len(theirs.children)}"
        )
    children = dict(zip(theirs.entries, theirs.children, strict=True))
    for entry, child in zip(mine.entries, mine.children, strict=True):
        if entry not in children:
            continue
        found = structure_difference(
            child, children[entry], name=f"{name}[{entry!r}]", root=f"{root}[{entry!r}]"
        )
        if found is not None:
            return found
    return None


def _flat_from_tree(
    value: Any,
    layout: Layout,
    m: int,
    *,
    name: str,
    root: str,
    subject: str,
    fill: float,
    dtype: Any,
    host: HostLeaves,
    expected: str,
) -> np.ndarray:
    def numbers(v: Any) -> bool:
        return isinstance(v, list | tuple) and _as_array(v, host) is not None

    # First as a pytree; then with lists of numbers read as arrays (`{'p': [0.0, 1.0]}` for a
    # leaf of shape (2,)), as scipy users write bounds.
    structure_error: ValueError | None = None
    try:
        parts, sources = _prefix_sources(value, layout)
    except ValueError as error:
        try:
            parts, sources = _prefix_sources(value, layout, is_leaf=numbers)
        except ValueError:
            parts = []
        slots = layout.unflatten([_Slot(spec) for spec in layout.leaves])
        difference = structure_difference(value, slots, name=name, root=root) or str(error)
        structure_error = ValueError(
            f"`{name}` must be {expected}; its structure does not match {subject}: {difference}"
        )
        if not parts:
            raise structure_error from None
    flat = np.full(m, fill, dtype=dtype)
    accessors = layout.treedef.accessors()
    for spec, accessor, part, source in zip(layout.leaves, accessors, parts, sources, strict=True):
        if part is UNBOUNDED:
            continue
        where = source.codify(name)
        if spec.dtype.kind == "c":
            raise TypeError(
                f"`{where}` bounds the complex leaf `{accessor.codify(root)}`; bounds apply to "
                "real leaves only. Split the leaf into real and imaginary parts to bound them."
            )
        array = _real(_as_array(part, host), part, where)
        try:
            array = np.broadcast_to(array.astype(dtype), spec.shape)
        except ValueError:
            if structure_error is not None:
                raise structure_error from None
            raise ValueError(
                f"`{where}` has shape {array.shape}, which does not broadcast to the shape "
                f"{spec.shape} of `{accessor.codify(root)}`."
            ) from None
        flat[spec.offset : spec.offset + spec.size] = array.ravel()
    return flat
