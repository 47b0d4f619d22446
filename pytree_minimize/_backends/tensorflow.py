"""The TensorFlow backend: one `tf.function` per evaluation kind around a GradientTape.

Each function takes the flat float64 vector (and `args`, which `tf.function` traces by its own
rules: tensors and arrays by shape and dtype, Python values by value), splits and casts it into the
leaves inside the graph, and returns one flat tensor: the value and gradient packed together, so an
evaluation is one call and one transfer back. Functions are cached per (user function, layout,
`jit_compile`), so a second `minimize` call on the same structure reuses the trace; a closure made
anew goes through its lifted form (`_core.closures`), its tensors and NumPy arrays graph inputs,
so a new closure over the same code reuses the trace too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree
import tensorflow as tf

from .._core import closures
from .._core.backend import Backend
from .._core.cache import CACHE
from .._core.errors import InputError, NotScalarError
from .._core.hints import no_gradient, returned_pair
from .._core.tree import NAMESPACE, Layout, PyTree, build_layout, describe_host_leaf
from . import tensorflow_compat

_ZERO = tf.UnconnectedGradients.ZERO
#: Marks this module's own traced helpers: plain Python that autograph need not rewrite.
_library = tf.autograph.experimental.do_not_convert
# The package's checks that run while a `tf.function` traces raise its structured errors.
tensorflow_compat.passes_through_autograph(InputError)


def describe_leaf(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    if isinstance(leaf, tf.Tensor | tf.Variable):
        if not leaf.shape.is_fully_defined():
            return None
        return tuple(leaf.shape.as_list()), np.dtype(leaf.dtype.as_numpy_dtype)
    described = describe_host_leaf(leaf)
    if described is None and _is_tensor_like(leaf):
        return describe_leaf(tf.convert_to_tensor(leaf))
    return described


def _is_tensor_like(leaf: Any) -> bool:
    """Objects TensorFlow converts to tensors, such as Keras 3 variables."""
    if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
        return False
    try:
        tf.convert_to_tensor(leaf)
    except (TypeError, ValueError):
        return False
    return True


def to_numpy(leaf: Any) -> np.ndarray:
    if isinstance(leaf, tf.Tensor | tf.Variable):
        return np.asarray(leaf.numpy())
    if isinstance(leaf, np.ndarray | np.generic | int | float | complex):
        return np.asarray(leaf)
    return np.asarray(tf.convert_to_tensor(leaf).numpy())


def restore_leaf(array: np.ndarray, like: Any) -> Any:
    if isinstance(like, tf.Tensor | tf.Variable):
        with tf.device(like.device or None):
            return tf.constant(array, dtype=like.dtype)
    if _is_tensor_like(like):  # Keras variables: a tensor of their dtype
        return tf.constant(array, dtype=tf.as_dtype(like.dtype))
    if isinstance(like, np.ndarray):
        return array
    if isinstance(like, np.generic):
        return array.dtype.type(array)
    return type(like)(array.item())


# ---------------------------------------------------------------------------------------------
# Inside the graph.


@_library
def unravel(layout: Layout, flat: tf.Tensor) -> PyTree:
    """The leaves of `flat`, shaped and typed like those of `x0` (traceable). A complex `flat`
    (complex-step differences) promotes every leaf to its complex counterpart."""
    widths = [spec.width for spec in layout.leaves]
    parts = tf.split(flat, widths) if len(widths) > 1 else [flat]
    promote = flat.dtype.is_complex
    leaves = []
    for part, spec in zip(parts, layout.leaves, strict=True):
        dtype = tf.as_dtype(spec.dtype)
        if dtype.is_complex:
            real = dtype.real_dtype
            leaf = tf.complex(tf.cast(part[: spec.size], real), tf.cast(part[spec.size :], real))
        elif promote:
            leaf = tf.cast(part, tf.complex64 if dtype.size <= 4 else tf.complex128)
        elif dtype != tf.float64:
            leaf = tf.cast(part, dtype)
        else:
            leaf = part
        leaves.append(tf.reshape(leaf, spec.shape) if len(spec.shape) != 1 else leaf)
    return layout.unflatten(leaves)


@_library
def scalar_output(
    value: Any, *, complex_ok: bool = False, differentiated: bool = False
) -> tf.Tensor:
    if isinstance(value, tuple | list):
        raise TypeError(
            f"`fun` must return a scalar tensor; it returned a {type(value).__name__}. If it "
            "returns `(value, gradient)`, pass `jac=True`."
        )
    try:
        value = tf.convert_to_tensor(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`fun` must return a scalar tensor; it returned a {type(value).__name__}."
        ) from None
    if value.shape.num_elements() != 1:
        raise NotScalarError(
            argument="fun", found=f"a tensor of shape {value.shape}", reduce="tf.reduce_sum"
        )
    if value.dtype.is_complex and not complex_ok:
        raise TypeError(
            "`fun` must return a real scalar; it returned a complex tensor. Return, for example, "
            "`tf.math.real(...)` or `tf.abs(z) ** 2`."
        )
    if not (value.dtype.is_floating or value.dtype.is_complex):
        if differentiated:
            raise TypeError(no_gradient(value.dtype.name))
        value = tf.cast(value, tf.float64)
    return tf.reshape(value, [])


def _shape(leaf: Any) -> tuple[int, ...] | None:
    """A leaf's static shape; None where it is not fully known (the layout then skips it)."""
    shape = tf.convert_to_tensor(leaf).shape
    return tuple(shape.as_list()) if shape.is_fully_defined() else None


@_library
def _ravel_like_x(layout: Layout, tree: PyTree, *, name: str) -> tf.Tensor:
    parts = []
    for spec, leaf in zip(layout.leaves, layout.leaves_like_x(tree, name=name, shape_of=_shape)):
        leaf = tf.convert_to_tensor(leaf)
        if not leaf.shape.is_fully_defined():  # for example from `tf.numpy_function`
            leaf = tf.reshape(leaf, spec.shape)
        if leaf.dtype.is_complex:
            parts += [tf.reshape(tf.math.real(leaf), [-1]), tf.reshape(tf.math.imag(leaf), [-1])]
        else:
            parts.append(tf.reshape(leaf, [-1]))
    parts = [tf.cast(part, tf.float64) for part in parts]
    return tf.concat(parts, 0) if len(parts) > 1 else parts[0]


@_library
def _ravel_output(out: PyTree) -> tf.Tensor:
    leaves = optree.tree_leaves(out, namespace=NAMESPACE)
    parts = [tf.reshape(tf.cast(tf.convert_to_tensor(leaf), tf.float64), [-1]) for leaf in leaves]
    return tf.concat(parts, 0) if len(parts) > 1 else parts[0]


@_library
def _pack(value: tf.Tensor, grad: tf.Tensor) -> tf.Tensor:
    return tf.concat([tf.reshape(tf.cast(value, grad.dtype), [1]), grad], 0)


def _graph_call(compiled: Any, args: tuple) -> Callable[..., tf.Tensor]:
    """`compiled(*arrays, *args)` for the NumPy arrays scipy passes, calling the traced graph
    itself from the second call on.

    `tf.function`'s own call binds, canonicalises and looks up its arguments in Python on every
    call: about 110 us of the 190 one evaluation of a 1,000-element Rosenbrock takes. After the
    first call (which traces, and raises what tracing raises), this takes that trace's concrete
    function once, converts `args` to its flat inputs once, and from then on only converts the
    arrays and runs the graph (`tensorflow_compat.flat_caller`). Arrays of another dtype or
    shape than the trace's (scipy's complex steps) take the ordinary call, as does a TensorFlow
    without the private call (which `tests/test_compat.py` reports).
    """

    def plain(*arrays: np.ndarray) -> tf.Tensor:
        return compiled(*arrays, *args)

    if not tensorflow_compat.AVAILABLE:
        return plain
    direct: Callable[..., tf.Tensor] | None = None
    signature: tuple[tuple[np.dtype, tuple[int, ...]], ...] | None = None

    def call(*arrays: np.ndarray) -> tf.Tensor:
        nonlocal direct, signature
        if direct is not None:
            try:
                same = tuple((a.dtype, a.shape) for a in arrays) == signature
            except AttributeError:  # not arrays: tf.function converts them
                same = False
            return direct(*arrays) if same else plain(*arrays)
        out = plain(*arrays)  # traces on the first call, and raises what tracing raises
        signature = tuple((a.dtype, a.shape) for a in arrays)
        try:
            direct = tensorflow_compat.flat_caller(compiled, arrays, args)
        except tensorflow_compat.InputsDoNotStartWithArrays:
            direct = plain
        return out

    return call


def _is_traceable_array(value: Any) -> bool:
    """A closed-over value that becomes a graph input: a tensor, or a numeric NumPy array (not
    a variable, which a traced function reads by reference)."""
    if isinstance(value, tf.Tensor):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "biufc"


class _GraphWithFallback:
    """A lifted closure's graph call that, where it fails, calls the function as it is from
    then on (whose own errors then reach the caller)."""

    def __init__(
        self, traced: Callable, unlifted: Callable[[], Callable], lifted: closures.Lift
    ) -> None:
        self._call = traced
        self._unlifted = unlifted
        self._lifted: closures.Lift | None = lifted

    def __call__(self, *arrays: Any) -> tf.Tensor:
        if self._lifted is None:
            return self._call(*arrays)
        try:
            return self._call(*arrays)
        except Exception as error:
            plain = self._unlifted()
            out = plain(*arrays)  # raises the user's own error, if any
            closures.lift_failed(self._lifted, error)
            self._call, self._lifted = plain, None
            return out


class TensorFlowBackend(Backend):
    """Backend for TensorFlow tensors and variables (see
    :class:`pytree_minimize._core.backend.Backend`).

    Args:
        jit_compile: Compile the evaluations with XLA (`tf.function(jit_compile=True)`); bound
            with `functools.partial` by the port.

    Raises:
        TypeError: `jit_compile` is not a bool.
    """

    name = "TensorFlow"
    conjugate_gradients = False
    autodiff = True
    #: Any TensorFlow function can be batched with `tf.vectorized_map`.
    vectorizes = True

    describe_leaf = staticmethod(describe_leaf)
    to_numpy = staticmethod(to_numpy)
    restore_leaf = staticmethod(restore_leaf)

    def __init__(
        self,
        template: PyTree,
        args: tuple = (),
        *,
        entry: str = "minimize",
        jit_compile: bool = False,
    ) -> None:
        if not isinstance(jit_compile, bool):
            raise TypeError(
                f"`jit_compile` must be True or False; got {type(jit_compile).__name__}."
            )
        super().__init__(template, args, entry=entry)
        self.jit_compile = jit_compile
        #: `_lift`'s results during this call, by the ids of the function and its `args`.
        self._lifts: dict[tuple[int, int], tuple[Callable, tuple, closures.Lift]] = {}

    def _function(
        self, kind: str, fun: Callable, key: Any, make: Callable, lifted: closures.Lift
    ) -> Any:
        """The cached `tf.function` of `make(call)`, where `call` stands for `fun` (see
        `pytree_minimize._cache`: the traced function does not keep `fun` alive)."""

        def build(call: Callable) -> Any:
            closures.note_compile(fun, lifted, (kind, key))
            return tf.function(make(call), jit_compile=self.jit_compile, reduce_retracing=False)

        return CACHE.get(fun, (kind, key, self.jit_compile), build)

    def _graph(
        self, kind: str, fun: Callable, key: Any, make: Callable, args: tuple
    ) -> Callable[..., tf.Tensor]:
        """`_graph_call` of the cached `tf.function` of `make(call)` for `fun` and `args`. A
        closure goes through its lifted form (`_core.closures`: a new closure over the same code
        reuses the trace, its tensors and arrays graph inputs); where that fails, through the
        function as it is."""
        lifted = self._lift(fun, args)
        if lifted.fun is None:
            return _graph_call(self._function(kind, fun, key, make, lifted), args)
        traced = _graph_call(self._function(kind, lifted.fun, key, make, lifted), lifted.args)

        def unlifted() -> Callable[..., tf.Tensor]:
            return _graph_call(self._function(kind, fun, key, make, lifted), args)

        return _GraphWithFallback(traced, unlifted, lifted)

    def _lift(self, fun: Callable, args: tuple) -> closures.Lift:
        memo = self._lifts.get((id(fun), id(args)))
        if memo is not None and memo[0] is fun and memo[1] is args:
            return memo[2]
        lifted = closures.lift(
            fun,
            args,
            is_array=_is_traceable_array,
            flatten=closures.flatten_optree,
            unflatten=closures.unflatten_optree,
            place=lambda a: tf.convert_to_tensor(a) if isinstance(a, np.ndarray) else a,
            numbers=False,  # `tf.function` traces a Python number by its value
        )
        self._lifts[(id(fun), id(args))] = (fun, args, lifted)
        return lifted

    # Objective evaluations.

    def value(
        self, fun: Callable, layout: Layout, args: tuple, *, complex_step: bool = False
    ) -> Callable[[np.ndarray], Any]:
        def make(call: Callable) -> Callable:
            def body(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                return scalar_output(call(unravel(layout, flat), *args), complex_ok=complex_step)

            return body

        kind = "value_cs" if complex_step else "value"
        call = self._graph(kind, fun, layout.key, make, args)
        if complex_step:
            # One complex trace for every point; at a real point scipy wants a real value.
            def value_cs(x: np.ndarray) -> Any:
                out = call(np.asarray(x, dtype=np.complex128)).numpy()
                return complex(out) if np.iscomplexobj(x) else float(out.real)

            return value_cs
        return lambda x: float(call(x).numpy())

    def value_and_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        def make(call: Callable) -> Callable:
            def body(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    tape.watch(flat)
                    value = scalar_output(call(unravel(layout, flat), *args), differentiated=True)
                return _pack(value, tape.gradient(value, flat, unconnected_gradients=_ZERO))

            return body

        return _unpack(self._graph("value_and_grad", fun, layout.key, make, args))

    def value_and_user_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        def make(call: Callable) -> Callable:
            def body(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                out = call(unravel(layout, flat), *args)
                value, grad = returned_pair(out, derivative="gradient", source="the GradientTape")
                return _pack(scalar_output(value), _ravel_like_x(layout, grad, name="fun"))

            return body

        return _unpack(self._graph("value_and_user_grad", fun, layout.key, make, args))

    # Second derivatives.

    @staticmethod
    def _gradient(call: Callable, layout: Layout) -> Callable:
        def gradient(flat: tf.Tensor, args: tuple) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(flat)
                value = scalar_output(call(unravel(layout, flat), *args), differentiated=True)
            return tape.gradient(value, flat, unconnected_gradients=_ZERO)

        return gradient

    def hessian(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        def make(call: Callable) -> Callable:
            gradient = self._gradient(call, layout)

            def body(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    tape.watch(flat)
                    grad = gradient(flat, args)
                return tape.jacobian(grad, flat, unconnected_gradients=_ZERO)

            return body

        call = self._graph("hessian", fun, layout.key, make, args)
        return lambda x: np.asarray(call(x).numpy(), dtype=np.float64)

    def hvp(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def make(call: Callable) -> Callable:
            gradient = self._gradient(call, layout)

            def body(flat: tf.Tensor, tangent: tf.Tensor, *args: Any) -> tf.Tensor:
                # Forward over reverse: one gradient evaluation carrying a tangent.
                with tf.autodiff.ForwardAccumulator(flat, tangent) as accumulator:
                    grad = gradient(flat, args)
                return accumulator.jvp(grad, unconnected_gradients=_ZERO)

            return body

        call = self._graph("hvp", fun, layout.key, make, args)
        return lambda x, p: np.asarray(
            call(x, np.asarray(p, dtype=np.float64)).numpy(), dtype=np.float64
        )

    # Constraints.

    def output_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        return build_layout(
            fun(x0, *args),
            describe_leaf=describe_leaf,
            name="constraint output",
            allow_complex=False,
        )

    def constraint(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> tuple[Callable, Callable, Callable]:
        def values_of(call: Callable) -> Callable:
            def values(flat: tf.Tensor, args: tuple) -> tf.Tensor:
                return _ravel_output(call(unravel(layout, flat), *args))

            return values

        def make_values(call: Callable) -> Callable:
            values = values_of(call)

            def body(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                return values(flat, args)

            return body

        def make_jacobian(call: Callable) -> Callable:
            values = values_of(call)

            def body(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    tape.watch(flat)
                    out = values(flat, args)
                return tape.jacobian(out, flat, unconnected_gradients=_ZERO)

            return body

        def make_hvp(call: Callable) -> Callable:
            values = values_of(call)

            def body(flat: tf.Tensor, v: tf.Tensor, p: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.autodiff.ForwardAccumulator(flat, p) as accumulator:
                    with tf.GradientTape() as tape:
                        tape.watch(flat)
                        weighted = tf.reduce_sum(values(flat, args) * v)
                    grad = tape.gradient(weighted, flat, unconnected_gradients=_ZERO)
                return accumulator.jvp(grad, unconnected_gradients=_ZERO)

            return body

        key = (layout.key, out_layout.key)
        values_c = self._graph("constraint", fun, key, make_values, args)
        jacobian_c = self._graph("constraint_jac", fun, key, make_jacobian, args)
        hvp_c = self._graph("constraint_hvp", fun, key, make_hvp, args)

        def flat64(a: Any) -> np.ndarray:
            return np.asarray(a, dtype=np.float64)

        return (
            lambda x: flat64(values_c(x).numpy()),
            lambda x: flat64(jacobian_c(x).numpy()),
            lambda x, v, p: flat64(hvp_c(x, flat64(v), flat64(p)).numpy()),
        )

    # Populations (global methods).

    def batched_value(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Values at the S rows of an (S, n) array, by `tf.vectorized_map` in one traced
        function (one trace per population size)."""

        def make(call: Callable) -> Callable:
            def body(flats: tf.Tensor, *args: Any) -> tf.Tensor:
                def member(flat: tf.Tensor) -> tf.Tensor:
                    return tf.cast(scalar_output(call(unravel(layout, flat), *args)), tf.float64)

                return tf.vectorized_map(member, flats)

            return body

        call = self._graph("batched_value", fun, layout.key, make, args)
        return lambda xs: np.asarray(
            call(np.asarray(xs, dtype=np.float64)).numpy(), dtype=np.float64
        )

    # Residual functions (`least_squares`, `curve_fit`, `root`).

    def residual_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        return build_layout(fun(x0, *args), describe_leaf=describe_leaf, name="fun(x)")

    def _residual_function(
        self, kind: str, fun: Callable, layout: Layout, args: tuple, make: Callable
    ) -> Callable[..., tf.Tensor]:
        """The cached `tf.function` of `make(values)`, `values(flat, args)` the flat residuals,
        as a call of the arrays alone (`_graph_call`)."""

        def build(call: Callable) -> Callable:
            @_library
            def values(flat: tf.Tensor, args: tuple) -> tf.Tensor:
                # Complex at the complex-step points of `jac='cs'`, else float64.
                dtype = flat.dtype if flat.dtype.is_complex else tf.float64
                leaves = optree.tree_leaves(call(unravel(layout, flat), *args), namespace=NAMESPACE)
                parts = []
                for leaf in map(tf.convert_to_tensor, leaves):
                    if leaf.dtype.is_complex and not flat.dtype.is_complex:
                        # A complex residual is two real ones, as in the output's layout.
                        parts += [tf.math.real(leaf), tf.math.imag(leaf)]
                    else:
                        parts.append(leaf)
                parts = [tf.reshape(tf.cast(part, dtype), [-1]) for part in parts]
                return tf.concat(parts, 0) if len(parts) > 1 else parts[0]

            return make(values)

        return self._graph(kind, fun, layout.key, build, args)

    def residual_values(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        def make(values: Callable) -> Callable:
            return lambda flat, *args: values(flat, args)

        call = self._residual_function("residuals", fun, layout, args, make)

        def evaluate(x: np.ndarray) -> np.ndarray:
            dtype = np.complex128 if np.iscomplexobj(x) else np.float64
            return np.asarray(call(np.asarray(x, dtype=dtype)).numpy(), dtype=dtype)

        return evaluate

    def residual_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        forward = out_layout.n >= layout.n

        def make(values: Callable) -> Callable:
            def reverse(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    tape.watch(flat)
                    out = values(flat, args)
                return tape.jacobian(out, flat, unconnected_gradients=_ZERO)

            def forward_mode(flat: tf.Tensor, *args: Any) -> tf.Tensor:
                # One forward pass per parameter, vectorised over the columns.
                def column(tangent: tf.Tensor) -> tf.Tensor:
                    with tf.autodiff.ForwardAccumulator(flat, tangent) as accumulator:
                        out = values(flat, args)
                    return accumulator.jvp(out, unconnected_gradients=_ZERO)

                eye = tf.eye(layout.n, dtype=flat.dtype)
                return tf.transpose(tf.vectorized_map(column, eye))

            return forward_mode if forward else reverse

        kind = "residual_jacfwd" if forward else "residual_jacrev"
        call = self._residual_function(kind, fun, layout, args, make)
        return lambda x: np.asarray(call(x).numpy(), dtype=np.float64)

    def residual_jvp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def make(values: Callable) -> Callable:
            def jvp(flat: tf.Tensor, tangent: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.autodiff.ForwardAccumulator(flat, tangent) as accumulator:
                    out = values(flat, args)
                return accumulator.jvp(out, unconnected_gradients=_ZERO)

            return jvp

        call = self._residual_function("residual_jvp", fun, layout, args, make)
        return lambda x, v: np.asarray(
            call(x, np.asarray(v, dtype=np.float64)).numpy(), dtype=np.float64
        )

    def residual_vjp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def make(values: Callable) -> Callable:
            def vjp(flat: tf.Tensor, weights: tf.Tensor, *args: Any) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    tape.watch(flat)
                    out = values(flat, args)
                return tape.gradient(
                    out, flat, output_gradients=weights, unconnected_gradients=_ZERO
                )

            return vjp

        call = self._residual_function("residual_vjp", fun, layout, args, make)
        return lambda x, u: np.asarray(
            call(x, np.asarray(u, dtype=np.float64)).numpy(), dtype=np.float64
        )


def _unpack(call: Callable) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        out = call(x).numpy()
        return out[0], out[1:]

    return value_and_grad
