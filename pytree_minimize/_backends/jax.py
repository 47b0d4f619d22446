"""The JAX backend: one `jax.jit` per evaluation kind, unravel inside the compiled function.

Each compiled function takes the flat float64 vector (and the dynamic leaves of `args`), rebuilds
the pytree inside the trace, and returns one flat array, so an evaluation is one transfer in and one
out however many leaves there are. Compiled functions are cached per (function, layout, static
args), so a second `minimize` call with new values of `args` reuses the trace.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optree
from jax.sharding import NamedSharding, PartitionSpec

from .._core import closures
from .._core.backend import Backend
from .._core.cache import CACHE
from .._core.dropin import is_wide_int
from .._core.errors import NotScalarError
from .._core.hints import no_gradient, returned_pair, zero_gradient
from .._core.sparse import SparseMatrix
from .._core.tree import (
    NAMESPACE,
    HostReader,
    Layout,
    PyTree,
    build_layout,
    describe_host_leaf,
)
from .jax_chunks import chunk_bounds, in_chunks
from .jax_compat import is_traced

# ---------------------------------------------------------------------------------------------
# JAX-registered node types (equinox Modules, register_dataclass, flax structs) in optree.

_REGISTERED: set[type] = set()


class _JaxKeyEntry(optree.PyTreeEntry):
    """A path entry that prints JAX's own key (`.weight`, `['a']`, `[0]`)."""

    def codify(self, /, node: str = "") -> str:
        return f"{node}{self.entry}"


def _flatten_jax_node(node: Any) -> tuple[list[Any], Any, list[str]]:
    keyed, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda y: y is not node)
    children = [child for _, child in keyed]
    entries = [jax.tree_util.keystr(path) for path, _ in keyed]
    return children, treedef, entries


def _unflatten_jax_node(treedef: Any, children: Any) -> Any:
    return jax.tree_util.tree_unflatten(treedef, list(children))


def _is_jax_node(obj: Any) -> bool:
    if obj is None or isinstance(obj, jax.Array | np.ndarray | np.generic | float | int | complex):
        return False
    return not jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(obj))


def register_jax_nodes(tree: PyTree) -> None:
    """Register in the layout's optree namespace every node type JAX flattens and optree does not,
    so that the tree flattens as JAX flattens it."""
    while True:
        # Whether JAX flattens an object depends on its type alone: one object of each type.
        examples = {type(leaf): leaf for leaf in optree.tree_leaves(tree, namespace=NAMESPACE)}
        unknown = {
            cls for cls, leaf in examples.items() if cls not in _REGISTERED and _is_jax_node(leaf)
        }
        if not unknown:
            return
        for cls in unknown:
            optree.register_pytree_node(
                cls,
                _flatten_jax_node,
                _unflatten_jax_node,
                path_entry_type=_JaxKeyEntry,
                namespace=NAMESPACE,
            )
            _REGISTERED.add(cls)


# ---------------------------------------------------------------------------------------------
# Leaves.

_DYNAMIC_ARG_TYPES = (jax.Array, np.ndarray, np.generic, float, int, complex, bool)


def describe_leaf(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    if isinstance(leaf, jax.Array):
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    return describe_host_leaf(leaf)


def to_numpy(leaf: Any) -> np.ndarray:
    if isinstance(leaf, jax.Array) and not (leaf.is_fully_addressable or leaf.is_fully_replicated):
        # A leaf spread over other processes' devices. Every process runs the same scipy loop, so
        # all of them reach this collective in the same order and get the same global value.
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
    return np.asarray(leaf)


#: JAX's leaf readers, for what is read outside a call (`argmin` while tracing).
LEAVES = HostReader(describe_leaf, to_numpy)


def restore_leaf(array: np.ndarray, like: Any) -> Any:
    if isinstance(like, jax.Array):
        return jax.device_put(array, like.sharding)
    if isinstance(like, np.ndarray):
        return array
    if isinstance(like, np.generic):
        return array.dtype.type(array)
    return type(like)(array.item())


# ---------------------------------------------------------------------------------------------
# Sharded leaves and data.
#
# scipy's flat vector reaches the compiled evaluation replicated on every device; `unravel` puts
# each leaf back on x0's sharding, and sharded `args` stay where they are, so the objective runs
# SPMD over the mesh. The result comes back replicated, which every process can read.


class _Placement(NamedTuple):
    leaves: tuple[Any, ...] | None  # per leaf: its sharding, or None to leave it to XLA
    output: Any  # a replicated sharding over the mesh, or None


def _spread(value: Any) -> Any:
    """The sharding of a jax.Array placed over more than one device, else None."""
    if isinstance(value, jax.Array) and len(value.sharding.device_set) > 1:
        return value.sharding
    return None


def _place(leaf: jax.Array, sharding: Any) -> jax.Array:
    """`leaf` (traced) on `sharding`: a sharding constraint for XLA, or, on a mesh with explicit
    axes (`jax.make_mesh`'s default), a `reshard` of the array's sharded type."""
    mesh = getattr(sharding, "mesh", None)
    if mesh is not None and jax.sharding.AxisType.Explicit in mesh.axis_types:
        return jax.sharding.reshard(leaf, sharding)
    return jax.lax.with_sharding_constraint(leaf, sharding)


def x0_shardings(x0: PyTree) -> tuple[Any, tuple[Any, ...]] | None:
    """x0's structure and per-leaf shardings, or None when no leaf is spread over devices."""
    leaves, treedef = optree.tree_flatten(x0, namespace=NAMESPACE)
    shardings = tuple(_spread(leaf) for leaf in leaves)
    return (treedef, shardings) if any(s is not None for s in shardings) else None


def _placement(
    layout: Layout, dynamic_args: list[Any], recorded: tuple[Any, tuple[Any, ...]] | None
) -> _Placement | None:
    """Where an evaluation runs: None (one device, the common case) or over a mesh taken from
    x0's sharded leaves (`recorded`, from `x0_shardings`) or, failing those, from sharded
    `args`."""
    leaves = recorded[1] if recorded is not None and recorded[0] == layout.treedef else None
    spread = [s for s in leaves or () if s is not None]
    spread = spread or [s for s in map(_spread, dynamic_args) if s is not None]
    if not spread:
        return None
    mesh = getattr(spread[0], "mesh", None)
    output = NamedSharding(mesh, PartitionSpec()) if mesh is not None else None
    return _Placement(leaves, output)


# ---------------------------------------------------------------------------------------------
# Flat evaluations.


def unravel(layout: Layout, flat: jax.Array, shardings: tuple[Any, ...] | None = None) -> PyTree:
    """The pytree of `flat` (traceable), each leaf on its entry of `shardings` if given. A
    complex `flat` (complex-step differences) promotes every leaf to its complex counterpart."""
    # One split (whose transpose is one concatenate) rather than a slice per leaf, whose
    # transposes would pad and add a full-length vector per leaf in the gradient.
    widths = [spec.width for spec in layout.leaves]
    segments = jax.lax.split(flat, widths) if len(widths) > 1 else [flat]
    leaves = []
    for spec, segment in zip(layout.leaves, segments, strict=True):
        if spec.dtype.kind == "c":
            segment = jax.lax.complex(segment[: spec.size], segment[spec.size :])
        # Only a complex `flat` promotes (float32 -> complex64); a complex leaf keeps its dtype.
        dtype = jnp.result_type(spec.dtype, jnp.complex64) if flat.dtype.kind == "c" else None
        leaves.append(segment.reshape(spec.shape).astype(dtype or spec.dtype))
    if shardings is not None:
        # Each leaf back on x0's sharding, so the objective runs SPMD as it would on x0 itself.
        leaves = [
            leaf if sharding is None else _place(leaf, sharding)
            for leaf, sharding in zip(leaves, shardings, strict=True)
        ]
    return layout.unflatten(leaves)


def ravel(layout: Layout, tree: PyTree, *, name: str) -> jax.Array:
    """The flat vector of a pytree like `x` (traceable); checks structure and shapes."""
    parts = []
    for spec, leaf in zip(layout.leaves, layout.leaves_like_x(tree, name=name), strict=True):
        leaf = jnp.asarray(leaf)
        if spec.dtype.kind == "c":
            # JAX's gradient of a real function of z is conj(d/dRe + i d/dIm).
            leaf = jnp.conj(leaf)
            parts += [jnp.real(leaf).ravel(), jnp.imag(leaf).ravel()]
        else:
            parts.append(jnp.real(leaf).ravel())
    return jnp.concatenate(parts) if len(parts) > 1 else parts[0]


def scalar_output(
    value: Any, *, complex_ok: bool = False, differentiated: bool = False
) -> jax.Array:
    """Check that `fun` returned a real scalar and return it as a 0-d array. A bool or integer
    value is taken as a float where nothing differentiates it (derivative-free methods, as scipy
    does) and rejected where something does."""
    try:
        value = jnp.asarray(value)
    except (TypeError, ValueError):  # ValueError: for example a tuple holding a dict
        raise TypeError(
            f"`fun` must return a scalar; it returned a {type(value).__name__}. If it returns "
            "`(value, gradient)`, pass `jac=True`."
        ) from None
    if value.size != 1:
        raise NotScalarError(
            argument="fun", found=f"an array of shape {value.shape}", reduce="jnp.sum"
        )
    if not jnp.issubdtype(value.dtype, jnp.inexact):
        if differentiated:
            raise TypeError(no_gradient(value.dtype))
        value = value.astype(float)
    if not complex_ok and jnp.issubdtype(value.dtype, jnp.complexfloating):
        raise TypeError(
            "`fun` must return a real scalar; it returned a complex value. Return, for example, "
            "`jnp.abs(z) ** 2` or `jnp.real(...)`."
        )
    return value.reshape(())


def _split_args(args: tuple) -> tuple[list[Any], Any, tuple[Any, ...], list[bool]]:
    """Split `args` into traced leaves (arrays and numbers) and static leaves (the rest)."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    dynamic_mask = [
        isinstance(leaf, _DYNAMIC_ARG_TYPES) and not is_wide_int(leaf) for leaf in leaves
    ]
    dynamic = [leaf for leaf, d in zip(leaves, dynamic_mask) if d]
    static = tuple(leaf for leaf, d in zip(leaves, dynamic_mask) if not d)
    return dynamic, treedef, static, dynamic_mask


def _merge_args(dynamic: list[Any], treedef: Any, static: tuple, mask: list[bool]) -> tuple:
    dynamic_iter, static_iter = iter(dynamic), iter(static)
    leaves = [next(dynamic_iter) if d else next(static_iter) for d in mask]
    return jax.tree_util.tree_unflatten(treedef, leaves)


# ---------------------------------------------------------------------------------------------
# Closure conversion (`_core.closures`): what JAX traces, and its containers.


def _is_traceable_array(value: Any) -> bool:
    if isinstance(value, jax.Array):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "biufc"


def _flatten_node(value: Any) -> tuple[list[Any], Any, list[str]] | None:
    """One level of a JAX pytree node: `(children, treedef, labels)`, or None for a leaf."""
    keyed, treedef = jax.tree_util.tree_flatten_with_path(value, is_leaf=lambda y: y is not value)
    if jax.tree_util.treedef_is_leaf(treedef) and len(keyed) == 1:
        return None
    return [child for _, child in keyed], treedef, [jax.tree_util.keystr(k) for k, _ in keyed]


def _on_device(value: Any) -> Any:
    """A closed-over NumPy array on the device once, rather than at every evaluation."""
    return jax.device_put(value) if isinstance(value, np.ndarray) else value


def _unflatten(treedef: Any, children: list[Any]) -> Any:
    return jax.tree_util.tree_unflatten(treedef, children)


class _LiftError(Exception):
    """Tracing the lifted form of a closure failed (the error is the cause)."""


class _WithFallback:
    """A compiled lifted evaluation that, where its first trace fails, compiles and calls the
    user's function as it is from then on (whose own errors then reach the caller)."""

    def __init__(self, compiled: Any, unlifted: Callable[[], tuple[Any, list[Any]]], lifted: Any):
        self._compiled = compiled
        self._unlifted = unlifted
        self._lifted = lifted
        self._fallback: tuple[Any, list[Any]] | None = None

    def __call__(self, *inputs: Any) -> Any:
        if self._fallback is None:
            try:
                return self._compiled(*inputs)
            except _LiftError as error:
                compiled, dynamic = self._unlifted()
                out = compiled(*inputs[:-1], dynamic)  # raises the user's own error, if any
                self._fallback = (compiled, dynamic)
                closures.lift_failed(self._lifted, error.__cause__ or error)
                return out
        compiled, dynamic = self._fallback
        return compiled(*inputs[:-1], dynamic)

    @property
    def active(self) -> Any:
        """The compiled function in use: the lifted one, or the fallback."""
        return self._compiled if self._fallback is None else self._fallback[0]

    def trace(self, *inputs: Any) -> Any:
        """The staged program of the evaluation in use (`jax.jit(...).trace`)."""
        if self._fallback is None:
            return self._compiled.trace(*inputs)
        compiled, dynamic = self._fallback
        return compiled.trace(*inputs[:-1], dynamic)


class JaxBackend(Backend):
    """Backend for JAX (and NumPy) leaves; see :class:`pytree_minimize._core.backend.Backend`.

    It records the template's leaf shardings for the evaluations compiled during the call.

    Raises:
        TypeError: the template or `args` hold JAX tracers (the call is inside `jax.jit`,
            `jax.vmap` or `jax.grad`), which scipy on the host cannot take.
    """

    name = "JAX"
    conjugate_gradients = True
    autodiff = True
    #: Any JAX function can be batched with `jax.vmap`.
    vectorizes = True

    describe_leaf = staticmethod(describe_leaf)
    to_numpy = staticmethod(to_numpy)
    restore_leaf = staticmethod(restore_leaf)

    def __init__(self, template: PyTree, args: tuple = (), *, entry: str = "minimize") -> None:
        if is_traced(template) or is_traced(args):
            raise TypeError(
                f"`{entry}` was called on traced values (inside `jax.jit`, `jax.vmap` or "
                "`jax.grad`); it runs scipy on the host and cannot be traced. Use "
                "`pytree_minimize.argmin`, its traceable and differentiable twin."
            )
        super().__init__(template, args, entry=entry)
        #: x0's structure and leaf shardings, for the evaluations compiled during this call.
        self._x0_shardings = x0_shardings(template)
        #: `_lift`'s results during this call, by the ids of the function and its `args`.
        self._lifts: dict[tuple[int, int], tuple[Callable, tuple, closures.Lift]] = {}

    def prepare(self, tree: PyTree) -> None:
        register_jax_nodes(tree)

    def precision(self, layout: Layout) -> contextlib.AbstractContextManager[Any]:
        wide = any(spec.dtype.itemsize >= 8 and spec.dtype.kind == "f" for spec in layout.leaves)
        wide |= any(spec.dtype.itemsize >= 16 for spec in layout.leaves)
        if wide and not _x64_enabled():
            return jax.enable_x64(True)
        return contextlib.nullcontext()

    # The compiled evaluations. `kind` names the evaluation in the cache key.

    def _compile(
        self, kind: str, fun: Callable, layout: Layout, args: tuple, make_body: Callable
    ) -> tuple[Any, list[Any]]:
        """The cached `jax.jit` of `make_body(call, shardings)` (`call` stands for `fun`, see
        `_cache`) and the dynamic leaves of `args` to pass it.

        A closure is compiled through its lifted form (`_core.closures`), so that a new closure
        over the same code reuses the evaluation; where tracing the lifted form fails, the
        function as it is is compiled instead, at its first evaluation."""
        lifted = self._lift(fun, args)
        if lifted.fun is None:
            return self._compile_as(kind, fun, layout, args, make_body, lifted, strict=False)
        compiled, dynamic = self._compile_as(
            kind, lifted.fun, layout, lifted.args, make_body, lifted, strict=True
        )

        def unlifted() -> tuple[Any, list[Any]]:
            return self._compile_as(kind, fun, layout, args, make_body, lifted, strict=False)

        return _WithFallback(compiled, unlifted, lifted), dynamic

    def _lift(self, fun: Callable, args: tuple) -> closures.Lift:
        """`fun` and `args` with `fun`'s closed-over arrays as traced arguments; once per call
        (the arrays are put on the device once)."""
        memo = self._lifts.get((id(fun), id(args)))
        if memo is not None and memo[0] is fun and memo[1] is args:
            return memo[2]
        lifted = closures.lift(
            fun,
            args,
            is_array=_is_traceable_array,
            flatten=_flatten_node,
            unflatten=_unflatten,
            place=_on_device,
        )
        self._lifts[(id(fun), id(args))] = (fun, args, lifted)
        return lifted

    def _compile_as(
        self,
        kind: str,
        fun: Callable,
        layout: Layout,
        args: tuple,
        make_body: Callable,
        lifted: closures.Lift,
        *,
        strict: bool,
    ) -> tuple[Any, list[Any]]:
        """`_compile` for `fun` itself; `strict`: any error while tracing raises `_LiftError`
        (for the fallback) rather than reaching the caller."""
        dynamic, treedef, static, mask = _split_args(args)
        placement = _placement(layout, dynamic, self._x0_shardings)
        shardings = placement.leaves if placement is not None else None

        def build(call: Callable) -> Any:
            closures.note_compile(fun, lifted, (kind, layout.key))
            body = make_body(call, shardings)
            # Sharded leaves stay as their placement slices them.
            bounds = chunk_bounds(layout) if placement is None else None

            def flat_fun(*inputs: Any) -> Any:
                *arrays, dynamic_args = inputs
                # Every flat vector over `x` (the point, and a tangent where there is one).
                if bounds is not None:
                    arrays = [in_chunks(a, bounds) if a.shape == (layout.n,) else a for a in arrays]
                try:
                    return body(*arrays, _merge_args(dynamic_args, treedef, static, mask))
                except Exception as error:
                    if strict:
                        raise _LiftError(error) from error
                    if isinstance(error, _TRACING_ERRORS):
                        raise _not_traceable(error, kind) from error
                    raise

            if placement is None:
                return jax.jit(flat_fun)
            return jax.jit(flat_fun, out_shardings=placement.output)

        key = (kind, layout.key, treedef, static, tuple(mask), placement)
        return CACHE.get(fun, key, build), dynamic

    @staticmethod
    def _objective(
        call: Callable,
        layout: Layout,
        shardings: Any,
        *,
        complex_ok: bool = False,
        differentiated: bool = True,
    ) -> Callable:
        def objective(flat: jax.Array, args: tuple) -> jax.Array:
            out = call(unravel(layout, flat, shardings), *args)
            return scalar_output(out, complex_ok=complex_ok, differentiated=differentiated)

        return objective

    def value(
        self, fun: Callable, layout: Layout, args: tuple, *, complex_step: bool = False
    ) -> Callable[[np.ndarray], Any]:
        kind = "value-cs" if complex_step else "value"

        def make(call: Callable, shardings: Any) -> Callable:
            return self._objective(
                call, layout, shardings, complex_ok=complex_step, differentiated=False
            )

        compiled, dynamic = self._compile(kind, fun, layout, args, make)
        if complex_step:
            # Complex only at the complex-step points: scipy compares the value at a real `x`
            # with floats.
            return lambda x: (complex if np.iscomplexobj(x) else float)(compiled(x, dynamic))
        dtype = transfer_dtype(layout)
        return lambda x: float(compiled(x.astype(dtype, copy=False), dynamic))

    def value_and_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:

        def make(call: Callable, shardings: Any) -> Callable:
            value_and_grad = jax.value_and_grad(self._objective(call, layout, shardings))

            def packed(flat: jax.Array, args: tuple) -> jax.Array:
                value, grad = value_and_grad(flat, args)
                return jnp.concatenate([value.astype(grad.dtype)[None], grad])

            return packed

        compiled, dynamic = self._compile("value_and_grad", fun, layout, args, make)
        return _unpack(compiled, dynamic, transfer_dtype(layout), check_gradient=True)

    def value_and_user_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        def make(call: Callable, shardings: Any) -> Callable:
            def packed(flat: jax.Array, args: tuple) -> jax.Array:
                out = call(unravel(layout, flat, shardings), *args)
                value, grad = returned_pair(out, derivative="gradient", source="autodiff")
                value = scalar_output(value)
                grad = ravel(layout, grad, name="fun")
                dtype = jnp.result_type(value.dtype, grad.dtype)
                return jnp.concatenate([value.astype(dtype)[None], grad.astype(dtype)])

            return packed

        compiled, dynamic = self._compile("value_and_user_grad", fun, layout, args, make)
        return _unpack(compiled, dynamic, transfer_dtype(layout))

    def hessian(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:

        def make(call: Callable, shardings: Any) -> Callable:
            return jax.hessian(self._objective(call, layout, shardings))

        compiled, dynamic = self._compile("hessian", fun, layout, args, make)
        return lambda x: np.asarray(compiled(x, dynamic), dtype=np.float64)

    def hvp(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:

        def make(call: Callable, shardings: Any) -> Callable:
            grad = jax.grad(self._objective(call, layout, shardings))

            def hvp(flat: jax.Array, tangent: jax.Array, args: tuple) -> jax.Array:
                return jax.jvp(lambda y: grad(y, args), (flat,), (tangent.astype(flat.dtype),))[1]

            return hvp

        compiled, dynamic = self._compile("hvp", fun, layout, args, make)
        return lambda x, p: np.asarray(compiled(x, p, dynamic), dtype=np.float64)

    def user_gradient_derivative(
        self, fun: Callable, layout: Layout, args: tuple, *, dense: bool
    ) -> Callable[..., np.ndarray] | None:
        """With `jac=True` (`fun` returns `(value, gradient)`): the Hessian (`dense`) or
        Hessian-vector products as the forward-mode derivative of the user's own gradient."""

        def user_gradient(call: Callable, shardings: Any) -> Callable:
            def gradient(flat: jax.Array, args: tuple) -> jax.Array:
                out = call(unravel(layout, flat, shardings), *args)
                _, grad = returned_pair(out, derivative="gradient", source="autodiff")
                return ravel(layout, grad, name="fun").astype(flat.dtype)

            return gradient

        if dense:

            def make_hessian(call: Callable, shardings: Any) -> Callable:
                return jax.jacfwd(user_gradient(call, shardings))

            compiled, dynamic = self._compile(
                "user_gradient_hessian", fun, layout, args, make_hessian
            )
            return lambda x: np.asarray(compiled(x, dynamic), dtype=np.float64)

        def make_hvp(call: Callable, shardings: Any) -> Callable:
            gradient = user_gradient(call, shardings)

            def hvp(flat: jax.Array, tangent: jax.Array, args: tuple) -> jax.Array:
                tangent = tangent.astype(flat.dtype)
                return jax.jvp(lambda y: gradient(y, args), (flat,), (tangent,))[1]

            return hvp

        compiled, dynamic = self._compile("user_gradient_hvp", fun, layout, args, make_hvp)
        return lambda x, p: np.asarray(compiled(x, p, dynamic), dtype=np.float64)

    # Constraints: a function of the pytree `x` returning an array or a pytree of arrays.

    def output_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        shapes = jax.eval_shape(lambda flat: fun(unravel(layout, flat), *args), _flat_spec(layout))
        register_jax_nodes(shapes)
        return build_layout(
            shapes, describe_leaf=describe_shape, name="constraint output", allow_complex=False
        )

    def constraint(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> tuple[Callable, Callable, Callable]:
        forward = out_layout.n >= layout.n

        def make_values(call: Callable, shardings: Any) -> Callable:
            def values(flat: jax.Array, args: tuple) -> jax.Array:
                out = call(unravel(layout, flat, shardings), *args)
                return _ravel_output(out_layout, out).astype(flat.dtype)

            return values

        def make_jacobian(call: Callable, shardings: Any) -> Callable:
            values = make_values(call, shardings)
            return jax.jacfwd(values) if forward else jax.jacrev(values)

        def make_hvp(call: Callable, shardings: Any) -> Callable:
            values = make_values(call, shardings)

            def weighted_hvp(flat: jax.Array, v: jax.Array, p: jax.Array, args: tuple) -> jax.Array:
                grad = jax.grad(lambda y: jnp.dot(values(y, args), v.astype(y.dtype)))
                return jax.jvp(grad, (flat,), (p.astype(flat.dtype),))[1]

            return weighted_hvp

        values_c, dynamic = self._compile("constraint", fun, layout, args, make_values)
        jacobian_c, _ = self._compile(f"constraint_jac_{forward}", fun, layout, args, make_jacobian)
        hvp_c, _ = self._compile("constraint_hvp", fun, layout, args, make_hvp)
        return (
            lambda x: np.asarray(values_c(x, dynamic), dtype=np.float64),
            lambda x: np.asarray(jacobian_c(x, dynamic), dtype=np.float64),
            lambda x, v, p: np.asarray(hvp_c(x, v, p, dynamic), dtype=np.float64),
        )

    # Sparse derivatives (`_jax_sparse`): patterns detected and coloured once per compiled
    # problem; `weighted_hessian` is the dense Hessian of `v . c(x)` (IPOPT's exact Hessian).

    def _piece(self, fun: Callable, args: tuple, make: Callable) -> Any:
        from .jax_sparse import Piece

        dynamic, treedef, static, mask = _split_args(args)
        shapes = tuple((np.shape(a), np.result_type(a).str) for a in dynamic)
        return Piece(fun, args, make, (treedef, static, tuple(mask)), (shapes, _x64_enabled()))

    def sparse_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> SparseMatrix:
        from .jax_sparse import sparse_matrix

        def make(call: Callable, shardings: Any) -> Callable:
            return _residual_body(call, layout, shardings)

        piece = self._piece(fun, args, make)
        return sparse_matrix(
            self._compile, "jacobian", piece, layout, shape=(out_layout.n, layout.n)
        )

    def sparse_hessian(self, fun: Callable, layout: Layout, args: tuple) -> SparseMatrix:
        from .jax_sparse import sparse_matrix

        piece = self._piece(fun, args, self._scalar_body(layout))
        shape = (layout.n, layout.n)
        return sparse_matrix(self._compile, "hessian", piece, layout, shape=shape, hessian=True)

    def sparse_weighted_hessian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> SparseMatrix:
        from .jax_sparse import sparse_matrix

        piece = self._piece(fun, args, _weighted(layout))
        weights = np.zeros(out_layout.n, dtype=np.float64 if _x64_enabled() else np.float32)
        return sparse_matrix(
            self._compile,
            "weighted_hessian",
            piece,
            layout,
            shape=(layout.n, layout.n),
            extra=(weights,),
            hessian=True,
        )

    def sparse_lagrangian_hessian(
        self,
        fun: Callable,
        args: tuple,
        constraints: Sequence[tuple[Callable, tuple, Layout]],
        layout: Layout,
    ) -> SparseMatrix:
        from .jax_sparse import lagrangian_hessian

        objective = self._piece(fun, args, self._scalar_body(layout))
        pieces = [
            (self._piece(c, c_args, _weighted(layout)), out.n) for c, c_args, out in constraints
        ]
        return lagrangian_hessian(self._compile, objective, pieces, layout)

    def _scalar_body(self, layout: Layout) -> Callable:
        def make(call: Callable, shardings: Any) -> Callable:
            return self._objective(call, layout, shardings)

        return make

    def weighted_hessian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        weighted = _weighted(layout)

        def make(call: Callable, shardings: Any) -> Callable:
            return jax.hessian(weighted(call, shardings))

        compiled, dynamic = self._compile("weighted_hessian", fun, layout, args, make)
        return lambda x, v: np.asarray(compiled(x, v, dynamic), dtype=np.float64)

    # Populations (global methods): one compiled, vmapped call per population.

    def batched_value(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Values at the S rows of an (S, n) array, in one compiled call of `jax.vmap(fun)`;
        one trace per population size, kept in the compile cache."""

        def make(call: Callable, shardings: Any) -> Callable:
            # Members are not laid out like x0's sharded leaves: no per-leaf placement here.
            objective = self._objective(call, layout, None)

            def batched(flats: jax.Array, args: tuple) -> jax.Array:
                return jax.vmap(objective, in_axes=(0, None))(flats, args)

            return batched

        compiled, dynamic = self._compile("batched_value", fun, layout, args, make)
        return lambda xs: np.asarray(compiled(xs, dynamic), dtype=np.float64)

    # Residual functions (`least_squares`, `curve_fit`, `root`): a function of the pytree `x`
    # returning a pytree of floating-point arrays, raveled in its own flattening order.

    def residual_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        def build(call: Callable) -> Layout:
            spec = _flat_spec(layout)
            shapes = jax.eval_shape(lambda flat: call(unravel(layout, flat), *args), spec)
            register_jax_nodes(shapes)
            return build_layout(shapes, describe_leaf=describe_shape, name="fun(x)")

        # Cached like a compiled function: tracing `fun` for its output shapes costs about as
        # much as a few evaluations. The output may depend on the shapes of `args`. A closure is
        # keyed by its lifted form (its arrays are concrete here, so nothing is traced anew).
        lifted = self._lift(fun, args)
        if lifted.fun is not None:
            fun, args = lifted.fun, lifted.args
        dynamic, treedef, static, mask = _split_args(args)
        shapes = tuple((np.shape(a), np.dtype(getattr(a, "dtype", type(a))).str) for a in dynamic)
        key = ("residual_layout", layout.key, _x64_enabled(), treedef, static, tuple(mask), shapes)
        return CACHE.get(fun, key, build)

    def residual_values(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        def make(call: Callable, shardings: Any) -> Callable:
            return _residual_body(call, layout, shardings)

        compiled, dynamic = self._compile("residuals", fun, layout, args, make)
        return lambda x: _host(compiled(x, dynamic), x)

    def residual_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        forward = out_layout.n >= layout.n

        def make(call: Callable, shardings: Any) -> Callable:
            body = _residual_body(call, layout, shardings)
            return jax.jacfwd(body) if forward else jax.jacrev(body)

        kind = "residual_jacfwd" if forward else "residual_jacrev"
        compiled, dynamic = self._compile(kind, fun, layout, args, make)
        return lambda x: np.asarray(compiled(x, dynamic), dtype=np.float64)

    def residual_jvp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def make(call: Callable, shardings: Any) -> Callable:
            values = _residual_body(call, layout, shardings)

            def jvp(flat: jax.Array, v: jax.Array, args: tuple) -> jax.Array:
                return jax.jvp(lambda y: values(y, args), (flat,), (v.astype(flat.dtype),))[1]

            return jvp

        compiled, dynamic = self._compile("residual_jvp", fun, layout, args, make)
        return lambda x, v: np.asarray(compiled(x, v, dynamic), dtype=np.float64)

    def residual_vjp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def make(call: Callable, shardings: Any) -> Callable:
            values = _residual_body(call, layout, shardings)

            def vjp(flat: jax.Array, u: jax.Array, args: tuple) -> jax.Array:
                out, pullback = jax.vjp(lambda y: values(y, args), flat)
                return pullback(u.astype(out.dtype))[0]

            return vjp

        compiled, dynamic = self._compile("residual_vjp", fun, layout, args, make)
        return lambda x, u: np.asarray(compiled(x, u, dynamic), dtype=np.float64)


#: What JAX raises when a function it traces treats a traced array as a concrete value (NumPy
#: calls, `float(x)`, Python `if` on an array).
_TRACING_ERRORS = (
    jax.errors.TracerArrayConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _not_traceable(error: Exception, kind: str) -> TypeError:
    """The error for a user function that is not JAX code: what it must be, the operation JAX
    stopped at (the user's line where the traceback shows it, and JAX's own first line), and
    the port that runs NumPy code."""
    name = "a constraint function" if kind.startswith("constraint") else "`fun`"
    reported = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = frame.filename.replace("\\", "/")
        if not any(part in path for part in ("/jax/", "/jaxlib/", "/numpy/", "/pytree_minimize/")):
            where = (
                f" The offending operation is at {frame.filename}:{frame.lineno}: `{frame.line}`."
            )
            break
    return TypeError(
        f"{name} must be JAX code: `pytree_minimize.minimize` compiles it with `jax.jit`, and "
        f"JAX could not trace it ({type(error).__name__}: {reported}).{where} Write it with "
        "`jax.numpy` in place of `numpy` and without Python `if`/`float()` on arrays, or run "
        "NumPy code with `pytree_minimize.ports.numpy.minimize` (user gradients or finite "
        "differences)."
    )


def _reaches(jaxpr: Any, source: Any, target: Any) -> bool:
    """Whether the variable `target` of `jaxpr` depends on the variable `source` (an equation
    with any input that depends on it counts as depending on it in every output)."""
    if not _is_var(target):
        return False
    reached = {source}
    for equation in jaxpr.eqns:
        if any(_is_var(v) and v in reached for v in equation.invars):
            reached.update(equation.outvars)
    return target in reached


def _is_var(atom: Any) -> bool:
    return type(atom).__name__ != "Literal"


def _flat_spec(layout: Layout) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((layout.n,), jnp.float64 if _x64_enabled() else float)


def describe_shape(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    return None


def _ravel_output(out_layout: Layout, out: PyTree) -> jax.Array:
    leaves = optree.tree_leaves(out, namespace=NAMESPACE)
    parts = [jnp.asarray(leaf).ravel() for leaf in leaves]
    return jnp.concatenate(parts) if len(parts) > 1 else parts[0]


def _unpack(
    compiled: Any, dynamic: list[Any], dtype: type = np.float64, *, check_gradient: bool = False
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """scipy's `(value, gradient)` from the packed output; `check_gradient`: after the first
    evaluation, warn where autodiff's gradient is zero by construction (`_gradient_is_constant`
    and zero)."""
    unchecked = [check_gradient]

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat: np.ndarray = x.astype(dtype, copy=False)
        out = np.asarray(compiled(flat, dynamic), dtype=np.float64)
        if unchecked[0]:
            unchecked[0] = False
            # A gradient that does not depend on `x` is the same everywhere: zero here, zero
            # everywhere (a linear objective's constant gradient is not zero).
            constant = _gradient_is_constant(compiled, flat, dynamic)
            if constant and not np.any(out[1:]):
                warnings.warn(zero_gradient(), RuntimeWarning, stacklevel=closures.caller_level())
        return out[0], out[1:]

    return value_and_grad


#: Per compiled value-and-gradient (weakly): whether its gradient does not depend on `x`.
_CONSTANT_GRADIENT: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _gradient_is_constant(compiled: Any, flat: np.ndarray, dynamic: list[Any]) -> bool:
    """Whether the packed `[value, gradient]` of `compiled` has a gradient that does not depend
    on `x` while the value does (then a zero gradient is one JAX knew to be zero: the value
    reaches `x` only through comparisons, rounding or integer casts). Read off the program
    already traced for the evaluation just made (`trace` finds it in JAX's cache: the user's
    function does not run again), once per compiled function."""
    jitted = compiled.active if isinstance(compiled, _WithFallback) else compiled
    try:
        return _CONSTANT_GRADIENT[jitted]
    except (KeyError, TypeError):
        pass
    constant = _packed_gradient_is_constant(compiled, flat, dynamic)
    with contextlib.suppress(TypeError):
        _CONSTANT_GRADIENT[jitted] = constant
    return constant


def _packed_gradient_is_constant(compiled: Any, flat: np.ndarray, dynamic: list[Any]) -> bool:
    trace = getattr(compiled, "trace", None)
    if trace is None:
        return False
    try:
        jaxpr = trace(flat, dynamic).jaxpr.jaxpr
    except Exception:  # pragma: no cover - JAX's staging API changed: no warning
        return False
    producers = {v: eqn for eqn in jaxpr.eqns for v in eqn.outvars}
    eqn = producers.get(jaxpr.outvars[0]) if _is_var(jaxpr.outvars[0]) else None
    # Through the single-input steps after the packing (a sharding constraint, a copy).
    while eqn is not None and eqn.primitive.name != "concatenate" and len(eqn.invars) == 1:
        eqn = producers.get(eqn.invars[0]) if _is_var(eqn.invars[0]) else None
    if eqn is None or eqn.primitive.name != "concatenate" or len(eqn.invars) != 2:
        return False
    # A value that does not depend on `x` at all is a constant objective (a feasibility
    # problem under constraints): deliberate, not worth a warning.
    value, gradient = eqn.invars
    flat = jaxpr.invars[0]
    return _reaches(jaxpr, flat, value) and not _reaches(jaxpr, flat, gradient)


def transfer_dtype(layout: Layout) -> type:
    """The dtype scipy's float64 vector crosses to the device in: float32 where no leaf needs
    more (float32, float16, bfloat16, complex64 leaves), so that a float32 problem on a GPU moves
    and stores no float64 copy of `x`; the cast on the host rounds as the device would."""
    wide = any(spec.dtype.itemsize > (8 if spec.dtype.kind == "c" else 4) for spec in layout.leaves)
    return np.float64 if wide else np.float32


def _x64_enabled() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def _residual_body(call: Callable, layout: Layout, shardings: Any) -> Callable:
    """The flat residual vector of `call` in the flat vector's dtype (traceable)."""

    def values(flat: jax.Array, args: tuple) -> jax.Array:
        out = call(unravel(layout, flat, shardings), *args)
        parts = []
        for leaf in optree.tree_leaves(out, namespace=NAMESPACE):
            leaf = jnp.asarray(leaf)
            if jnp.iscomplexobj(leaf) and not jnp.iscomplexobj(flat):
                # A complex residual is two real ones, as in the output's layout (a complex
                # `flat` is a complex-step point: its residuals stay complex).
                parts += [jnp.real(leaf).ravel(), jnp.imag(leaf).ravel()]
            else:
                parts.append(leaf.ravel())
        out = jnp.concatenate(parts) if len(parts) > 1 else parts[0]
        return out.astype(jnp.result_type(flat.dtype, out.dtype))

    return values


def _weighted(layout: Layout) -> Callable:
    """`make(call, shardings)` of the traceable `(flat, v, args) -> v . c(x)`."""

    def make(call: Callable, shardings: Any) -> Callable:
        values = _residual_body(call, layout, shardings)

        def weighted(flat: jax.Array, v: jax.Array, args: tuple) -> jax.Array:
            return jnp.dot(values(flat, args), v.astype(flat.dtype))

        return weighted

    return make


def _host(out: Any, x: np.ndarray) -> np.ndarray:
    """A compiled residual vector on the host: float64, complex128 at a complex-step point."""
    return np.asarray(out, dtype=np.complex128 if np.iscomplexobj(x) else np.float64)
