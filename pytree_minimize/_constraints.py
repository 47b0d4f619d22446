"""Constraints on pytrees, translated into scipy's constraint objects over the flat vector.

A constraint function takes the pytree `x` (and, for the dict form, its `args`) and returns an
array or a pytree of arrays. Its values, Jacobian and (for trust-constr) the Hessian of `v . c(x)`
as Hessian-vector products come from the backend, compiled once; user-supplied `jac` and `hess`
take pytrees and are translated to and from the flat vector here.

Every constraint the user gives is first *prepared*: its output layout, its bounds as flat
vectors, and flat callables. The prepared constraints are then emitted in the form the method
takes (old-style dicts for SLSQP, `NonlinearConstraint`/`LinearConstraint` for trust-constr,
COBYLA and COBYQA), and the bookkeeping is kept so that the multipliers scipy returns can be
reshaped like each constraint's output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import optree
import scipy.optimize as sopt
import scipy.sparse as sparse
from scipy.sparse.linalg import LinearOperator

from ._tree import NAMESPACE

if TYPE_CHECKING:
    from ._backend import Backend
    from ._driver import MethodInfo
    from ._tree import Layout, PyTree

__all__ = ["LinearConstraint"]


class LinearConstraint:
    """A linear constraint `lb <= fun(x, *args) <= ub` stated as a function of the pytree `x`.

    `fun` must be affine in `x` (a sum of matrix products, sums, slices, constants...). Its
    matrix over the flat vector is computed once, by autodiff at `x0`, and scipy receives a real
    `scipy.optimize.LinearConstraint`, so trust-constr and COBYQA treat the constraint as linear
    and SLSQP gets a constant Jacobian. Before the run `fun` is checked at a second point; a
    function that is not affine raises `ValueError` (state it as a `NonlinearConstraint`).

    Args:
        fun: `fun(x, *args)` returning an array or a pytree of arrays, linear in `x`.
        lb: Lower bound: a scalar, a pytree like `fun`'s output (or a prefix of it: a scalar for
            a whole subtree), or a flat vector over the raveled output. None or `-inf`: no
            lower bound.
        ub: Upper bound, the same way. `lb == ub` states an equality.
        args: Extra arguments for `fun` (traced, so new values never recompile).
        keep_feasible: Passed to scipy (trust-constr keeps the iterates feasible); a bool or a
            pytree of bools like `lb`.

    Examples:
        Portfolio weights split by asset class must sum to one:

        >>> import jax.numpy as jnp
        >>> from pytree_minimize import LinearConstraint
        >>> total = lambda w: jnp.sum(w["stocks"]) + jnp.sum(w["bonds"])
        >>> budget = LinearConstraint(total, lb=1.0, ub=1.0)
    """

    __slots__ = ("args", "fun", "keep_feasible", "lb", "ub")

    def __init__(
        self,
        fun: Callable[..., Any],
        lb: Any = -np.inf,
        ub: Any = np.inf,
        *,
        args: tuple = (),
        keep_feasible: Any = False,
    ) -> None:
        self.fun = fun
        self.lb = lb
        self.ub = ub
        self.args = args
        self.keep_feasible = keep_feasible

    def __repr__(self) -> str:
        name = getattr(self.fun, "__name__", type(self.fun).__name__)
        return f"LinearConstraint(fun={name}, lb={self.lb!r}, ub={self.ub!r})"


_CONSTRAINT_TYPES = (dict, sopt.NonlinearConstraint, sopt.LinearConstraint, LinearConstraint)
_DICT_KEYS = {"type", "fun", "jac", "args"}
_FINITE_DIFFERENCES = ("2-point", "3-point", "cs")
_EXPECTED = (
    "a dict {'type': 'eq' | 'ineq', 'fun': ..., 'jac'?: ..., 'args'?: ...}, a "
    "`scipy.optimize.NonlinearConstraint`, a `pytree_minimize.LinearConstraint`, or (for a "
    "single-array `x0`) a `scipy.optimize.LinearConstraint`"
)


def as_list(constraints: Any) -> list[Any]:
    """The user's constraints as a list (scipy takes one constraint or a sequence)."""
    if constraints is None:
        return []
    if isinstance(constraints, _CONSTRAINT_TYPES):
        return [constraints]
    if isinstance(constraints, Sequence) and not isinstance(constraints, str | bytes):
        return list(constraints)
    raise TypeError(
        f"`constraints` must be one constraint or a list of them; got "
        f"{type(constraints).__name__}. Each constraint is {_EXPECTED}."
    )


# ---------------------------------------------------------------------------------------------
# Prepared constraints: one per entry of the user's list.


@dataclass
class _Prepared:
    """One user constraint over the flat vector: `lb <= values(x) <= ub`, with `m` values."""

    index: int
    #: Layout of the output (None for scipy's `LinearConstraint`, whose output is flat).
    out_layout: Layout | None
    lb: np.ndarray
    ub: np.ndarray
    values: Callable[[np.ndarray], np.ndarray]
    #: A flat (m, n) Jacobian callable, a finite-difference scheme, or None (derivative-free).
    jacobian: Any = None
    #: trust-constr's `hess(x, v)`: a callable, a `HessianUpdateStrategy`, or a scheme.
    hess: Any = None
    #: The (m, n) matrix of a linear constraint, whose `values(x)` is `matrix @ x`.
    matrix: np.ndarray | None = None
    keep_feasible: Any = False
    #: Where this constraint's rows sit in SLSQP's `multipliers` (filled in when emitted).
    rows: dict[str, Any] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.lb.size

    def tree(self, flat: np.ndarray) -> PyTree:
        """A flat vector of `m` values shaped like the constraint's output (float64 NumPy)."""
        flat = np.asarray(flat, dtype=np.float64)
        if self.out_layout is None:
            return flat
        leaves = [
            flat[spec.offset : spec.offset + spec.size].reshape(spec.shape)
            for spec in self.out_layout.leaves
        ]
        return self.out_layout.unflatten(leaves)


class _Memo:
    """The last evaluation of a flat callable: SLSQP asks for the equality and the inequality
    part of one constraint at the same `x`, and should not pay for two evaluations."""

    __slots__ = ("_evaluate", "_value", "_x")

    def __init__(self, evaluate: Callable[[np.ndarray], Any]) -> None:
        self._evaluate = evaluate
        self._x: np.ndarray | None = None
        self._value: Any = None

    def __call__(self, x: np.ndarray) -> Any:
        if self._x is None or not np.array_equal(self._x, x):
            value = self._evaluate(x)
            self._x = np.array(x, dtype=np.float64, copy=True)
            self._value = value
        return self._value


def _name(index: int) -> str:
    return f"constraints[{index}]"


def _is_default_hess(hess: Any) -> bool:
    """True for the fresh `BFGS()` that `NonlinearConstraint` stores when `hess` is omitted."""
    return (
        type(hess) is sopt.BFGS
        and isinstance(hess.init_scale, str)
        and hess.init_scale == "auto"
        and hess.exception_strategy == "skip_update"
        and hess.min_curvature == 1e-8
        and getattr(hess, "B", None) is None
        and getattr(hess, "H", None) is None
    )


class _Shape:
    """Prints a leaf's shape inside a structure, for messages."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __repr__(self) -> str:
        return f"<shape {self.shape}>"


def _describe_output(out_layout: Layout | None, m: int) -> str:
    if out_layout is None:
        return f"an array of shape ({m},)"
    if out_layout.is_single_array:
        return f"an array of shape {out_layout.leaves[0].shape}"
    shapes = out_layout.unflatten([_Shape(spec.shape) for spec in out_layout.leaves])
    return f"a pytree {shapes!r} ({m} values)"


def _check_output(out: Any, index: int, backend: Backend) -> None:
    """Reject a constraint output that is not a (non-empty) array or pytree of real arrays."""
    backend.prepare(out)
    accessors, leaves, _ = optree.tree_flatten_with_accessor(out, namespace=NAMESPACE)
    name = _name(index)
    if not leaves:
        raise ValueError(
            f"`{name}`'s function returned {out!r}, which holds no values; a constraint function "
            "must return an array or a pytree of arrays."
        )
    total = 0
    for accessor, leaf in zip(accessors, leaves, strict=True):
        path = accessor.codify(f"{name}(x)")
        described = backend.describe_leaf(leaf)
        if described is None:
            raise TypeError(
                f"`{name}`'s function returned a {type(leaf).__name__} at `{path}`; a constraint "
                "function must return an array or a pytree of floating-point arrays."
            )
        shape, dtype = described
        kind = np.dtype(dtype).kind
        if kind == "c":
            raise TypeError(
                f"`{name}`'s function returned complex values at `{path}`; constraint values "
                "must be real. Constrain, for example, `jnp.real(z)` and `jnp.imag(z)`, or "
                "`jnp.abs(z) ** 2`."
            )
        if kind != "f":
            raise TypeError(
                f"`{name}`'s function returned dtype {np.dtype(dtype)} at `{path}`; constraint "
                "values must be floating-point (a differentiable function of `x`)."
            )
        total += int(np.prod(shape, dtype=np.int64))
    if total == 0:
        raise ValueError(
            f"`{name}`'s function returned arrays with no elements; a constraint function must "
            "return at least one value."
        )


def _output_layout(
    fun: Callable, args: tuple, index: int, backend: Backend, layout: Layout, x0: PyTree
) -> Layout:
    def checked(x: Any, *args: Any) -> Any:
        out = fun(x, *args)
        _check_output(out, index, backend)
        return out

    return backend.output_layout(checked, layout, args, x0)


# Bounds of a constraint, as flat vectors of its `m` values.


class _Slot:
    """A leaf of the output in a structure handed to `tree_broadcast_prefix`."""

    __slots__ = ("spec",)

    def __init__(self, spec: Any) -> None:
        self.spec = spec


class _Unbounded:
    def __repr__(self) -> str:
        return "None"


_UNBOUNDED = _Unbounded()


def _as_array(value: Any, backend: Backend) -> np.ndarray | None:
    """`value` as a NumPy array when it is one array-like thing (an array, a number, or a
    list of numbers); None when it is a pytree of arrays."""
    if backend.describe_leaf(value) is not None:
        return np.asarray(backend.to_numpy(value))
    if isinstance(value, int | float | np.number):
        return np.asarray(value)
    if isinstance(value, list | tuple):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            return None
        return array if array.dtype.kind in "biuf" else None
    return None


def _flat_side(
    value: Any,
    out_layout: Layout | None,
    m: int,
    *,
    what: str,
    fill: float,
    backend: Backend,
    dtype: Any = np.float64,
) -> np.ndarray:
    """One of `lb`, `ub`, `keep_feasible` broadcast to a flat vector of the `m` values."""
    if value is None:
        return np.full(m, fill, dtype=dtype)
    expected = (
        f"expected a scalar, {'a pytree like ' if out_layout is not None else ''}the constraint's "
        f"output ({_describe_output(out_layout, m)}) or a prefix of it, or a flat vector of its "
        f"{m} values"
    )
    array = _as_array(value, backend)
    is_container = out_layout is not None and not optree.tree_is_leaf(
        value, none_is_leaf=True, namespace=NAMESPACE
    )
    if is_container and out_layout is not None:
        # A pytree like the output, or a prefix of it; a list or tuple of numbers that does not
        # match the structure may still be a flat vector.
        try:
            return _flat_from_tree(
                value, out_layout, m, what=what, fill=fill, dtype=dtype, backend=backend
            )
        except ValueError:
            if array is None:
                raise
    if array is None:
        raise TypeError(f"`{what}` is a {type(value).__name__}; {expected}.")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{what}` has dtype {array.dtype}; it must hold real numbers.")
    array = array.astype(dtype)
    if array.ndim == 0:
        return np.full(m, array, dtype=dtype)
    if out_layout is not None and out_layout.is_single_array:
        try:
            return np.broadcast_to(array, out_layout.leaves[0].shape).ravel().copy()
        except ValueError:
            pass
    if array.size == m and array.ndim == 1:
        return array.copy()
    raise ValueError(f"`{what}` has shape {array.shape}; {expected}.")


def _flat_from_tree(
    value: Any, out_layout: Layout, m: int, *, what: str, fill: float, dtype: Any, backend: Backend
) -> np.ndarray:
    slots = out_layout.unflatten([_Slot(spec) for spec in out_layout.leaves])

    def numbers(v: Any) -> bool:
        return isinstance(v, list | tuple) and _as_array(v, backend) is not None

    def broadcast_with(is_leaf: Any) -> Any:
        marked = optree.tree_map(
            lambda v: _UNBOUNDED if v is None else v,
            value,
            is_leaf=is_leaf,
            none_is_leaf=True,
            namespace=NAMESPACE,
        )
        return optree.tree_broadcast_prefix(marked, slots, is_leaf=is_leaf, namespace=NAMESPACE)

    # First as a pytree; then with lists of numbers read as arrays (`{'p': [0.0, 1.0]}` for an
    # output leaf of shape (2,)), as scipy users write bounds.
    try:
        broadcast = broadcast_with(None)
    except ValueError:
        try:
            broadcast = broadcast_with(numbers)
        except ValueError as error:
            raise ValueError(
                f"`{what}` must be a scalar, a pytree like the constraint's output "
                f"({_describe_output(out_layout, m)}) or a prefix of it, or a flat vector "
                f"of its {m} values; its structure does not match: {error}"
            ) from None
    flat = np.full(m, fill, dtype=dtype)
    accessors = out_layout.treedef.accessors()
    leaves = optree.tree_leaves(broadcast, is_leaf=numbers, namespace=NAMESPACE)
    for spec, accessor, leaf in zip(out_layout.leaves, accessors, leaves, strict=True):
        if leaf is _UNBOUNDED:
            continue
        path = accessor.codify(what)
        array = _as_array(leaf, backend)
        if array is None or array.dtype.kind not in "biuf":
            raise TypeError(
                f"`{path}` is a {type(leaf).__name__}; bounds must be real numbers or arrays."
            )
        try:
            array = np.broadcast_to(array.astype(dtype), spec.shape)
        except ValueError:
            raise ValueError(
                f"`{path}` has shape {array.shape}, which does not broadcast to the constraint "
                f"output's shape {spec.shape} there."
            ) from None
        flat[spec.offset : spec.offset + spec.size] = array.ravel()
    return flat


def _bounds(
    lb: Any, ub: Any, out_layout: Layout | None, m: int, index: int, backend: Backend
) -> tuple[np.ndarray, np.ndarray]:
    name = _name(index)
    lower = _flat_side(lb, out_layout, m, what=f"{name}.lb", fill=-np.inf, backend=backend)
    upper = _flat_side(ub, out_layout, m, what=f"{name}.ub", fill=np.inf, backend=backend)
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError(
            f"`{name}` has NaN in `lb` or `ub`; use -inf or inf for an unbounded side."
        )
    bad = np.flatnonzero(lower > upper)
    if bad.size:
        raise ValueError(
            f"`{name}` has lb > ub at {_locate(out_layout, int(bad[0]), name)}: "
            f"lb={lower[bad[0]]}, ub={upper[bad[0]]}. Each lower bound must not exceed its upper "
            "bound."
        )
    return lower, upper


def _locate(out_layout: Layout | None, flat_index: int, name: str) -> str:
    if out_layout is None:
        return f"element {flat_index}"
    accessors = out_layout.treedef.accessors()
    for spec, accessor in zip(out_layout.leaves, accessors, strict=True):
        if spec.offset <= flat_index < spec.offset + spec.size:
            element = tuple(int(i) for i in np.unravel_index(flat_index - spec.offset, spec.shape))
            return f"`{accessor.codify(name + '(x)')}` element {element}"
    return f"element {flat_index}"


# User-supplied derivatives, translated from pytrees to the flat vector.


def _user_jacobian(
    jac: Callable,
    args: tuple,
    out_layout: Layout,
    m: int,
    index: int,
    backend: Backend,
    trees: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    layout: Layout = trees.layout
    name = _name(index)

    def flat_jacobian(x: np.ndarray) -> np.ndarray:
        return _dense_jacobian(jac(trees.tree(x), *args), layout, out_layout, m, name, backend)

    return flat_jacobian


def _dense_jacobian(
    out: Any, layout: Layout, out_layout: Layout, m: int, name: str, backend: Backend
) -> np.ndarray:
    """A user Jacobian as a dense (m, n) matrix over the flat vectors of output and `x`."""
    n = layout.n
    if sparse.issparse(out):
        out = out.toarray()
    if backend.describe_leaf(out) is not None:
        array = np.asarray(backend.to_numpy(out), dtype=np.float64)
        if array.shape == (m, n):
            return array
        if m == 1 and array.shape == (n,):
            return array.reshape(1, n)
        if out_layout.is_single_array and layout.is_single_array and not layout.has_complex:
            expected_shape = out_layout.leaves[0].shape + layout.leaves[0].shape
            if array.shape == expected_shape:
                return array.reshape(m, n)
        raise ValueError(
            f"`{name}`'s `jac` returned shape {array.shape}; expected ({m}, {n}), the Jacobian "
            "of the raveled output with respect to the flat vector of `x`, or a pytree like "
            "`jax.jacrev(fun)(x)`."
        )
    if layout.has_complex:
        raise TypeError(
            f"`{name}`'s `jac` returned a {type(out).__name__}; with complex leaves in `x0` a "
            f"constraint `jac` must return the dense ({m}, {n}) Jacobian over the flat real "
            "vector (real parts, then imaginary parts, per leaf)."
        )
    try:
        blocks = out_layout.treedef.flatten_up_to(out)
    except ValueError as error:
        raise ValueError(
            f"`{name}`'s `jac` returned a {type(out).__name__} whose structure does not match "
            f"the constraint's output ({_describe_output(out_layout, m)}): {error}. Return the "
            f"dense ({m}, {n}) Jacobian, or a pytree like `jax.jacrev(fun)(x)`."
        ) from None
    rows = []
    for spec, block in zip(out_layout.leaves, blocks, strict=True):
        leaves, treedef = optree.tree_flatten(block, namespace=NAMESPACE)
        if treedef != layout.treedef:
            raise ValueError(
                f"`{name}`'s `jac` holds {treedef} for output leaf {spec.shape}; expected a "
                f"pytree like `x` ({layout.treedef}), as `jax.jacrev(fun)(x)` returns."
            )
        row = []
        for x_spec, leaf in zip(layout.leaves, leaves, strict=True):
            array = np.asarray(backend.to_numpy(leaf), dtype=np.float64)
            if array.shape != spec.shape + x_spec.shape:
                raise ValueError(
                    f"`{name}`'s `jac` has shape {array.shape} for the derivative of an output "
                    f"leaf of shape {spec.shape} by `{x_spec.path}` of shape {x_spec.shape}; "
                    f"expected {spec.shape + x_spec.shape}."
                )
            row.append(array.reshape(spec.size, x_spec.size))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def _user_hess(
    hess: Callable, prepared: _Prepared, index: int, trees: Any
) -> Callable[[np.ndarray, np.ndarray], Any]:
    n = trees.layout.n
    name = _name(index)

    def flat_hess(x: np.ndarray, v: np.ndarray) -> Any:
        matrix = hess(trees.tree(x), prepared.tree(v))
        if isinstance(matrix, LinearOperator) or sparse.issparse(matrix):
            if matrix.shape != (n, n):
                raise ValueError(
                    f"`{name}`'s `hess` returned shape {matrix.shape}; expected ({n}, {n})."
                )
            return matrix
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (n, n):
            raise ValueError(
                f"`{name}`'s `hess` returned shape {matrix.shape}; expected ({n}, {n}), the "
                "Hessian of `v . c(x)` over the flat vector of `x` (a `LinearOperator` also "
                "does)."
            )
        return matrix

    return flat_hess


def _hvp_operator(
    hvp: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], n: int
) -> Callable[[np.ndarray, np.ndarray], LinearOperator]:
    """trust-constr's `hess(x, v)`: the Hessian of `v . c(x)` as Hessian-vector products, so no
    n-by-n matrix is ever built."""

    def hess(x: np.ndarray, v: np.ndarray) -> LinearOperator:
        x = np.array(x, dtype=np.float64, copy=True)
        v = np.array(v, dtype=np.float64, copy=True)

        def matvec(p: np.ndarray) -> np.ndarray:
            return hvp(x, v, np.ravel(p))

        return LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)

    return hess


# Preparing each form.


def _prepare(
    constraint: Any,
    index: int,
    *,
    derivatives: bool,
    hessians: bool,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    x0_flat: np.ndarray,
    trees: Any,
) -> _Prepared:
    name = _name(index)
    if isinstance(constraint, sopt.LinearConstraint):
        return _prepare_scipy_linear(constraint, index, layout, backend)
    if isinstance(constraint, LinearConstraint):
        return _prepare_linear(constraint, index, backend, layout, x0, x0_flat)
    if isinstance(constraint, dict):
        unknown = set(constraint) - _DICT_KEYS
        if unknown:
            raise ValueError(
                f"`{name}` has unknown key(s) {sorted(map(str, unknown))}; a constraint dict "
                "takes 'type' ('eq' or 'ineq'), 'fun', and optionally 'jac' and 'args'."
            )
        kind = constraint.get("type")
        if not isinstance(kind, str) or kind.lower() not in ("eq", "ineq"):
            raise ValueError(
                f"`{name}['type']` is {kind!r}; expected 'eq' (fun(x) == 0) or 'ineq' "
                "(fun(x) >= 0)."
            )
        fun = constraint.get("fun")
        if not callable(fun):
            raise TypeError(
                f"`{name}['fun']` must be callable as `fun(x, *args)`; got {type(fun).__name__}."
            )
        args = constraint.get("args", ())
        if not isinstance(args, tuple):
            args = (args,)
        jac = constraint.get("jac")
        if jac is not None and not callable(jac):
            raise TypeError(
                f"`{name}['jac']` must be callable as `jac(x, *args)` or left out (autodiff); "
                f"got {type(jac).__name__}."
            )
        upper = 0.0 if kind.lower() == "eq" else np.inf
        return _prepare_function(
            fun,
            args,
            0.0,
            upper,
            jac,
            None,
            False,
            index,
            derivatives=derivatives,
            hessians=hessians,
            backend=backend,
            layout=layout,
            x0=x0,
            trees=trees,
        )
    if isinstance(constraint, sopt.NonlinearConstraint):
        if not callable(constraint.fun):
            raise TypeError(
                f"`{name}.fun` must be callable as `fun(x)`; got {type(constraint.fun).__name__}."
            )
        jac = constraint.jac
        if isinstance(jac, str):
            if jac not in _FINITE_DIFFERENCES:
                raise ValueError(
                    f"`{name}.jac` is {jac!r}; expected a callable, '2-point' (the default: "
                    "autodiff) or '3-point'."
                )
            if jac == "cs":
                raise ValueError(
                    f"`{name}.jac` is 'cs'; complex-step differences are not available for "
                    "constraints. Leave `jac` out to use autodiff."
                )
            jac = None if jac == "2-point" else jac
        elif not callable(jac):
            raise TypeError(
                f"`{name}.jac` must be a callable `jac(x)`, or left out (autodiff); got "
                f"{type(jac).__name__}."
            )
        hess = constraint.hess
        if _is_default_hess(hess):
            hess = None
        elif isinstance(hess, str) and hess == "cs":
            raise ValueError(
                f"`{name}.hess` is 'cs'; complex-step differences are not available for "
                "constraints. Leave `hess` out to use autodiff Hessian-vector products."
            )
        elif not (
            callable(hess)
            or isinstance(hess, sopt.HessianUpdateStrategy)
            or (isinstance(hess, str) and hess in _FINITE_DIFFERENCES)
        ):
            raise TypeError(
                f"`{name}.hess` must be a callable `hess(x, v)`, a `HessianUpdateStrategy`, "
                f"'2-point', '3-point', or left out (autodiff); got {type(hess).__name__}."
            )
        return _prepare_function(
            constraint.fun,
            (),
            constraint.lb,
            constraint.ub,
            jac,
            hess,
            constraint.keep_feasible,
            index,
            derivatives=derivatives,
            hessians=hessians,
            backend=backend,
            layout=layout,
            x0=x0,
            trees=trees,
        )
    raise TypeError(f"`{name}` is a {type(constraint).__name__}; expected {_EXPECTED}.")


def _prepare_function(
    fun: Callable,
    args: tuple,
    lb: Any,
    ub: Any,
    jac: Any,
    hess: Any,
    keep_feasible: Any,
    index: int,
    *,
    derivatives: bool,
    hessians: bool,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    trees: Any,
) -> _Prepared:
    out_layout = _output_layout(fun, args, index, backend, layout, x0)
    m = out_layout.n
    lower, upper = _bounds(lb, ub, out_layout, m, index, backend)
    keep = _flat_side(
        keep_feasible,
        out_layout,
        m,
        what=f"{_name(index)}.keep_feasible",
        fill=0.0,
        backend=backend,
        dtype=bool,
    )
    values, jacobian, hvp = backend.constraint(fun, layout, args, out_layout)
    prepared = _Prepared(index, out_layout, lower, upper, _Memo(values), keep_feasible=keep)
    # A backend without autodiff (NumPy) leaves missing derivatives to scipy's defaults.
    autodiff = getattr(backend, "autodiff", True)
    if derivatives:
        if callable(jac):
            prepared.jacobian = _Memo(
                _user_jacobian(jac, args, out_layout, m, index, backend, trees)
            )
        elif isinstance(jac, str):
            prepared.jacobian = jac
        elif autodiff:
            prepared.jacobian = _Memo(jacobian)
    if hessians:
        if hess is None:
            prepared.hess = _hvp_operator(hvp, layout.n) if autodiff else None
        elif callable(hess) and not isinstance(hess, sopt.HessianUpdateStrategy):
            prepared.hess = _user_hess(hess, prepared, index, trees)
        else:
            prepared.hess = hess
    return prepared


def _prepare_linear(
    constraint: LinearConstraint,
    index: int,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    x0_flat: np.ndarray,
) -> _Prepared:
    name = _name(index)
    if not callable(constraint.fun):
        raise TypeError(
            f"`{name}.fun` must be callable as `fun(x, *args)`; got "
            f"{type(constraint.fun).__name__}."
        )
    args = constraint.args if isinstance(constraint.args, tuple) else (constraint.args,)
    out_layout = _output_layout(constraint.fun, args, index, backend, layout, x0)
    m = out_layout.n
    lower, upper = _bounds(constraint.lb, constraint.ub, out_layout, m, index, backend)
    keep = _flat_side(
        constraint.keep_feasible,
        out_layout,
        m,
        what=f"{name}.keep_feasible",
        fill=0.0,
        backend=backend,
        dtype=bool,
    )
    values, jacobian, _ = backend.constraint(constraint.fun, layout, args, out_layout)
    if getattr(backend, "autodiff", True):
        matrix = np.array(jacobian(x0_flat), dtype=np.float64).reshape(m, layout.n)
    else:
        matrix = _columns(values, x0_flat, m)
    offset = values(x0_flat) - matrix @ x0_flat
    _check_affine(values, matrix, offset, x0_flat, out_layout, name)
    return _Prepared(
        index,
        out_layout,
        lower - offset,
        upper - offset,
        _Memo(lambda x: matrix @ x),
        jacobian=lambda x: matrix,
        matrix=matrix,
        keep_feasible=keep,
    )


def _columns(values: Callable, x0_flat: np.ndarray, m: int) -> np.ndarray:
    """The matrix of an affine function by unit steps (exact up to rounding), for a backend
    without autodiff."""
    base = np.asarray(values(x0_flat), dtype=np.float64)
    matrix = np.empty((m, x0_flat.size))
    for j in range(x0_flat.size):
        x = x0_flat.copy()
        x[j] += 1.0
        matrix[:, j] = np.asarray(values(x), dtype=np.float64) - base
    return matrix


def _check_affine(
    values: Callable,
    matrix: np.ndarray,
    offset: np.ndarray,
    x0_flat: np.ndarray,
    out_layout: Layout,
    name: str,
) -> None:
    """`values` must be `matrix @ x + offset` at a second, pseudo-random point."""
    rng = np.random.default_rng(20240611)
    step = rng.standard_normal(x0_flat.size) * (1.0 + np.abs(x0_flat))
    x1 = x0_flat + step
    actual = values(x1)
    predicted = matrix @ x1 + offset
    eps = max(np.finfo(spec.dtype).eps for spec in out_layout.leaves)
    scale = np.abs(matrix) @ np.abs(x1) + np.abs(offset) + 1.0
    error = np.abs(actual - predicted)
    if not np.all(error <= 1e3 * eps * scale):
        worst = int(np.argmax(error / scale))
        raise ValueError(
            f"`{name}` is a `LinearConstraint`, but its function is not linear in `x`: at a "
            f"second point it differs from its linearisation at `x0` by {error[worst]:.3g} at "
            f"{_locate(out_layout, worst, name)}. State it as a `NonlinearConstraint`."
        )


def _prepare_scipy_linear(
    constraint: sopt.LinearConstraint, index: int, layout: Layout, backend: Backend
) -> _Prepared:
    name = _name(index)
    if not layout.is_single_array or layout.has_complex:
        raise TypeError(
            f"`{name}` is scipy's `LinearConstraint`, whose matrix acts on a single real array; "
            "for a pytree `x0` state it as `pytree_minimize.LinearConstraint(fun, lb, ub)` with "
            "`fun` a linear function of the pytree `x`."
        )
    matrix = constraint.A
    matrix = matrix.toarray() if sparse.issparse(matrix) else np.atleast_2d(np.asarray(matrix))
    matrix = matrix.astype(np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != layout.n:
        raise ValueError(
            f"`{name}.A` has shape {matrix.shape}; expected (m, {layout.n}), one column per "
            "element of `x0` (raveled in C order)."
        )
    m = matrix.shape[0]
    lower, upper = _bounds(constraint.lb, constraint.ub, None, m, index, backend)
    keep = np.broadcast_to(np.asarray(constraint.keep_feasible, dtype=bool), (m,)).copy()
    return _Prepared(
        index,
        None,
        lower,
        upper,
        _Memo(lambda x: matrix @ x),
        jacobian=lambda x: matrix,
        matrix=matrix,
        keep_feasible=keep,
    )


# ---------------------------------------------------------------------------------------------
# Emitting scipy's forms.


class ScipyConstraints(list):  # type: ignore[type-arg]
    """The constraints handed to scipy, remembering which user constraint each came from."""

    def __init__(self, items: list[Any], prepared: list[_Prepared], method: str) -> None:
        super().__init__(items)
        self.prepared = prepared
        self.method = method


def _slsqp_dicts(prepared: list[_Prepared]) -> list[dict[str, Any]]:
    """Old-style dicts. `lb <= c(x) <= ub` becomes `c[eq] - lb[eq] == 0` and
    `[c - lb, ub - c][finite] >= 0`; SLSQP orders its multipliers equalities first."""
    equalities: list[dict[str, Any]] = []
    inequalities: list[dict[str, Any]] = []
    for p in prepared:
        eq = np.flatnonzero(p.lb == p.ub)
        lower = np.flatnonzero((p.lb != p.ub) & np.isfinite(p.lb))
        upper = np.flatnonzero((p.lb != p.ub) & np.isfinite(p.ub))
        p.rows = {"eq": eq, "lower": lower, "upper": upper}
        jacobian = p.jacobian if callable(p.jacobian) else None
        if eq.size:
            equalities.append(_slsqp_eq(p, eq, jacobian))
        if lower.size or upper.size:
            inequalities.append(_slsqp_ineq(p, lower, upper, jacobian))
    offset = 0
    for p in prepared:
        p.rows["eq_offset"] = offset
        offset += p.rows["eq"].size
    for p in prepared:
        p.rows["ineq_offset"] = offset
        offset += p.rows["lower"].size + p.rows["upper"].size
    return equalities + inequalities


def _slsqp_eq(p: _Prepared, rows: np.ndarray, jacobian: Callable | None) -> dict[str, Any]:
    target = p.lb[rows]
    if rows.size == p.m and not target.any():
        out: dict[str, Any] = {"type": "eq", "fun": p.values}
        if jacobian is not None:
            out["jac"] = jacobian
        return out
    out = {"type": "eq", "fun": lambda x: p.values(x)[rows] - target}
    if jacobian is not None:
        out["jac"] = lambda x: np.atleast_2d(jacobian(x))[rows]
    return out


def _slsqp_ineq(
    p: _Prepared, lower: np.ndarray, upper: np.ndarray, jacobian: Callable | None
) -> dict[str, Any]:
    lb, ub = p.lb[lower], p.ub[upper]
    if lower.size == p.m and not upper.size and not lb.any():
        out: dict[str, Any] = {"type": "ineq", "fun": p.values}
        if jacobian is not None:
            out["jac"] = jacobian
        return out

    def fun(x: np.ndarray) -> np.ndarray:
        c = p.values(x)
        return np.concatenate([c[lower] - lb, ub - c[upper]])

    out = {"type": "ineq", "fun": fun}
    if jacobian is not None:

        def jac(x: np.ndarray) -> np.ndarray:
            matrix = np.atleast_2d(jacobian(x))
            return np.concatenate([matrix[lower], -matrix[upper]])

        out["jac"] = jac
    return out


def _new_style(
    p: _Prepared, *, derivatives: bool, fixed: _Fixed | None = None, method: str = ""
) -> Any:
    keep = p.keep_feasible
    if fixed is not None and (p.matrix is None or method == "cobyla"):
        # Variables fixed by the bounds: a function that also accepts the shortened vector
        # (for COBYLA linear constraints too, whose matrix it would not shorten).
        return sopt.NonlinearConstraint(fixed.complete(p.values), p.lb, p.ub)
    if p.matrix is not None:
        return sopt.LinearConstraint(p.matrix, p.lb, p.ub, keep_feasible=keep)
    if not derivatives:
        return sopt.NonlinearConstraint(p.values, p.lb, p.ub)
    return sopt.NonlinearConstraint(
        p.values,
        p.lb,
        p.ub,
        jac="2-point" if p.jacobian is None else p.jacobian,
        hess=p.hess,
        keep_feasible=keep,
    )


class _Fixed:
    """Variables that scipy 1.17's COBYLA and COBYQA remove because their bounds fix them.

    Both drop such variables from the objective but call nonlinear constraints with the
    shortened vector (COBYQA when it measures the constraint violation); COBYLA's PRIMA port
    also keeps linear constraints at full width (libprima/prima#249, fixed upstream in
    libprima/prima#251). Constraint functions wrapped by `complete` put the fixed values back;
    called with the full vector, they pass it on unchanged. The test for "fixed" is theirs.
    """

    def __init__(self, mask: np.ndarray, values: np.ndarray) -> None:
        self.mask = mask
        self.values = values

    @classmethod
    def find(cls, bounds: Any, n: int) -> _Fixed | None:
        if bounds is None:
            return None
        lb = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,))
        ub = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,))
        # PRIMA's test: |lb - ub| below a tolerance relative to the bounds' magnitude.
        finite = np.concatenate([lb[np.isfinite(lb)], ub[np.isfinite(ub)]])
        scale = max(float(np.max(np.abs(finite), initial=1.0)), 1.0)
        tol = 10.0 * np.finfo(np.float64).eps * n * scale
        mask = (lb <= ub) & (np.abs(lb - ub) < tol)
        if not mask.any():
            return None
        return cls(mask, np.clip(0.5 * (lb + ub), lb, ub)[mask])

    def complete(self, evaluate: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
        n = self.mask.size

        def completed(x: np.ndarray) -> Any:
            x = np.asarray(x, dtype=np.float64)
            if x.size != n:
                full = np.empty(n)
                full[self.mask] = self.values
                full[~self.mask] = x
                x = full
            return evaluate(x)

        return completed


def to_scipy(
    constraints: list[Any],
    info: MethodInfo,
    *,
    backend: Backend,
    layout: Layout,
    x0: PyTree,
    trees: Any,
    bounds: sopt.Bounds | None = None,
) -> list[Any]:
    """scipy constraint objects over the flat vector, in the form the method takes."""
    if not constraints:
        return []
    if not info.constraints:
        raise ValueError(
            f"`constraints` were given, but method {info.name!r} does not take constraints; use "
            "'SLSQP', 'trust-constr', 'COBYLA' or 'COBYQA' (or drop `constraints`)."
        )
    method = info.name.lower()
    derivative_free = method in ("cobyla", "cobyqa")
    new_style = method in ("trust-constr", "cobyla", "cobyqa")
    x0_flat = layout.ravel([backend.to_numpy(leaf) for leaf in trees.x0_leaves])
    prepared = [
        _prepare(
            c,
            i,
            derivatives=not derivative_free,
            hessians=method == "trust-constr",
            backend=backend,
            layout=layout,
            x0=x0,
            x0_flat=x0_flat,
            trees=trees,
        )
        for i, c in enumerate(constraints)
    ]
    if new_style:
        fixed = _Fixed.find(bounds, layout.n) if derivative_free else None
        items = [
            _new_style(p, derivatives=not derivative_free, fixed=fixed, method=method)
            for p in prepared
        ]
    else:
        # SLSQP, and custom methods, which scipy hands old-style dicts.
        items = _slsqp_dicts(prepared)
    return ScipyConstraints(items, prepared, method)


# ---------------------------------------------------------------------------------------------
# Results.


def attach_multipliers(
    result: sopt.OptimizeResult, constraints: list[Any], scipy_constraints: Any, info: MethodInfo
) -> None:
    """Add `constraint_multipliers`: one pytree per user constraint, shaped like its output.

    The sign convention is one for every method: at a solution, `grad f(x) = sum_i J_i(x)^T
    lambda_i` plus the bounds' terms, so `lambda_i` is the rate at which the optimal value
    rises as the bound that holds constraint `i` is tightened by one unit: >= 0 on an active
    lower bound (and on an active 'ineq' dict), <= 0 on an active upper bound, zero where no
    bound is active. For SLSQP this equals scipy's `multipliers` on dict constraints; for
    trust-constr it is minus scipy's `v`. scipy's own fields are left as they are.
    """
    if not isinstance(scipy_constraints, ScipyConstraints) or not scipy_constraints.prepared:
        return
    prepared = scipy_constraints.prepared
    if scipy_constraints.method == "slsqp":
        flat = result.get("multipliers")
        if flat is None:
            return
        flat = np.asarray(flat, dtype=np.float64)
        trees = []
        for p in prepared:
            lam = np.zeros(p.m)
            rows = p.rows
            start = rows["eq_offset"]
            lam[rows["eq"]] = flat[start : start + rows["eq"].size]
            start = rows["ineq_offset"]
            n_lower = rows["lower"].size
            lam[rows["lower"]] += flat[start : start + n_lower]
            lam[rows["upper"]] -= flat[start + n_lower : start + n_lower + rows["upper"].size]
            trees.append(p.tree(lam))
        result.constraint_multipliers = trees
    elif scipy_constraints.method == "trust-constr":
        v = result.get("v")
        if v is None or len(v) < len(prepared):
            return
        result.constraint_multipliers = [
            p.tree(-np.asarray(vi, dtype=np.float64)) for p, vi in zip(prepared, v, strict=False)
        ]
