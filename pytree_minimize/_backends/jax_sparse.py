"""Sparse derivatives of JAX functions: sparsity detected from the program, coloured, and
evaluated with one Jacobian-vector (or vector-Jacobian, or Hessian-vector) product per colour.

The only module that knows the detector, asdex (the `sparse` extra): it reads the jaxpr of the
flat evaluation, finds the structural nonzeros (valid at every `x` and every value of `args`,
which enter the detection as inputs whose values are unknown), and colours them. Detection and
colouring run once per compiled problem and are kept in the compile cache beside the compiled
evaluations; the compiled evaluation returns the compressed matrix (colours by rows or
columns), which the host scatters into the nonzeros with indices computed once.
"""

from __future__ import annotations

import traceback
import warnings
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core.cache import CACHE
from .._core.sparse import PatternUnavailable, SparseMatrix, Sparsity, sparse_extra_missing
from .._core.tree import Layout

__all__ = ["Piece", "lagrangian_hessian", "load_asdex", "sparse_matrix"]

Compile = Callable[[str, Callable, Layout, tuple, Callable], "tuple[Any, list[Any]]"]


def load_asdex() -> Any:
    """The detector, or the error that names the extra to install."""
    try:
        import asdex
    except ImportError as error:
        raise sparse_extra_missing(error) from error
    return asdex


class _Colored(NamedTuple):
    """A detected, coloured pattern and what evaluating it needs."""

    sparsity: Sparsity
    colors: np.ndarray  # the colour of each seeded column (or row, in mode 'rev')
    num_colors: int
    mode: str
    #: For each nonzero, its position in the raveled compressed matrix.
    gather: np.ndarray
    #: The compressed matrix's second dimension (rows for 'fwd', columns otherwise).
    width: int


class Piece(NamedTuple):
    """One user function as the detector and the compile cache see it.

    Attributes:
        fun: The user's function (the cache's owner).
        args: Its extra arguments.
        make_body: `make_body(call, shardings)`: the traceable `(flat, *extra, args) -> output`
            over `x`, from the cache's weak caller.
        args_key: The structure and static leaves of `args` (the compile cache's own key).
        signature: The shapes and dtypes of the traced leaves of `args`, and whether x64 is
            on: a pattern is detected once per `(args_key, signature)`.
    """

    fun: Callable
    args: tuple
    make_body: Callable
    args_key: Hashable
    signature: tuple


def sparse_matrix(
    compile: Compile,
    kind: str,
    piece: Piece,
    layout: Layout,
    *,
    shape: tuple[int, int],
    extra: tuple[np.ndarray, ...] = (),
    hessian: bool = False,
) -> SparseMatrix:
    """The sparse Jacobian (of a vector function) or Hessian (of a scalar one) of a piece,
    `values(x, *extra)`.

    Args:
        compile: The backend's cached compiler (`JaxBackend._compile`).
        kind: The derivative, for cache keys.
        piece: The function.
        layout: x0's layout.
        shape: The matrix's shape over the flat vectors.
        extra: Example values of the inputs after `flat` (a Hessian of `v . c(x)`: `v`);
            differentiated with respect to `flat` only.
        hessian: Whether the matrix is the Hessian of a scalar output.

    Raises:
        PatternUnavailable: the detector does not handle an operation of the function.
        SparseExtraMissing: asdex is not installed.
    """
    asdex = load_asdex()
    traced, dynamic = compile(
        f"sparse_{kind}_program", piece.fun, layout, piece.args, piece.make_body
    )

    def detect(call: Callable) -> _Colored | PatternUnavailable:
        inputs = (np.zeros(layout.n, _dtype()), *extra, dynamic)
        return _detect(asdex, traced, inputs, hessian=hessian, shape=shape)

    key = (f"sparse_{kind}_pattern", layout.key, piece.args_key, piece.signature)
    colored = _found(CACHE.get(piece.fun, key, detect))
    if colored.sparsity.nnz == 0:
        empty = np.zeros(0)
        return SparseMatrix(colored.sparsity, lambda x, *more: empty)
    compressed = _compressed(compile, kind, piece, layout, colored, hessian=hessian)
    gather = colored.gather

    def values(x: np.ndarray, *more: np.ndarray) -> np.ndarray:
        return compressed(x, *more).ravel()[gather]

    return SparseMatrix(colored.sparsity, values)


def lagrangian_hessian(
    compile: Compile,
    objective: Piece,
    constraints: Sequence[tuple[Piece, int]],
    layout: Layout,
) -> SparseMatrix:
    """The sparse Hessian of `sigma f(x) + sum_i v_i . c_i(x)`, `values(x, sigma, v_1, ...)`,
    on the union of the pieces' patterns: one detection and one (star) colouring for all of
    them, and one compiled compressed evaluation per function, summed before the nonzeros are
    read off (a colouring of the union is a colouring of each piece).

    Args:
        compile: The backend's cached compiler.
        objective: The scalar objective, `(flat, args) -> f`.
        constraints: Per constraint, its piece `(flat, v, args) -> v . c` and its size.
        layout: x0's layout.
    """
    asdex = load_asdex()
    objective_traced, objective_dynamic = compile(
        "sparse_hessian_program", objective.fun, layout, objective.args, objective.make_body
    )
    traced = [
        compile("sparse_weighted_hessian_program", p.fun, layout, p.args, p.make_body)
        for p, _ in constraints
    ]

    def lagrangian(flat: jax.Array, sigma: jax.Array, weights: list, dynamics: list) -> jax.Array:
        out = sigma * objective_traced(flat, dynamics[0])
        for (function, _), v, dynamic in zip(traced, weights, dynamics[1:], strict=True):
            out = out + function(flat, v, dynamic)
        return out

    def detect(call: Callable) -> _Colored | PatternUnavailable:
        dtype = _dtype()
        weights: list[np.ndarray] = [np.zeros(m, dtype) for _, m in constraints]
        dynamics = [objective_dynamic, *(dynamic for _, dynamic in traced)]
        inputs: tuple = (np.zeros(layout.n, dtype), np.ones((), dtype), weights, dynamics)
        return _detect(asdex, lagrangian, inputs, hessian=True, shape=(layout.n, layout.n))

    # The entry belongs to the objective; the constraint functions enter its key weakly.
    pieces_key = tuple((_weak(p.fun), p.args_key, p.signature, m) for p, m in constraints)
    key = (
        "sparse_lagrangian_pattern",
        layout.key,
        objective.args_key,
        objective.signature,
        pieces_key,
    )
    colored = _found(CACHE.get(objective.fun, key, detect))
    if colored.sparsity.nnz == 0:
        empty = np.zeros(0)
        return SparseMatrix(colored.sparsity, lambda x, *more: empty)
    objective_compressed = _compressed(compile, "hessian", objective, layout, colored, hessian=True)
    constraint_compressed = [
        _compressed(compile, "weighted_hessian", p, layout, colored, hessian=True)
        for p, _ in constraints
    ]
    gather = colored.gather

    def values(x: np.ndarray, sigma: float, *weights: np.ndarray) -> np.ndarray:
        total = sigma * objective_compressed(x) if sigma else None
        for compressed, v in zip(constraint_compressed, weights, strict=True):
            if np.any(v):
                part = compressed(x, v)
                total = part if total is None else total + part
        if total is None:
            return np.zeros(gather.size)
        return total.ravel()[gather]

    return SparseMatrix(colored.sparsity, values)


def _dtype() -> Any:
    return np.float64 if jax.config.read("jax_enable_x64") else np.float32


def _weak(fun: Callable) -> Any:
    """A key entry for a function that does not keep it alive (itself where it cannot be
    weakly referenced)."""
    try:
        return weakref.ref(fun)
    except TypeError:
        return fun


def _found(found: _Colored | PatternUnavailable) -> _Colored:
    if isinstance(found, PatternUnavailable):
        raise PatternUnavailable(found.operation)
    return found


def _compressed(
    compile: Compile,
    kind: str,
    piece: Piece,
    layout: Layout,
    colored: _Colored,
    *,
    hessian: bool,
) -> Callable[..., np.ndarray]:
    """`(x, *extra) -> B`, the compressed matrix (colours by `colored.width`), compiled: one
    product per colour. The colouring enters as an input, so the compiled function depends on
    its mode and number of colours only (both in its cache key)."""
    num_colors = colored.num_colors
    products = _products(colored.mode, hessian)

    def make(call: Callable, shardings: Any) -> Callable:
        body = piece.make_body(call, shardings)

        def compressed(flat: jax.Array, colors: jax.Array, *rest: Any) -> jax.Array:
            *extra_values, fun_args = rest

            def function(y: jax.Array) -> jax.Array:
                return body(y, *extra_values, fun_args)

            seeds = colors[None, :] == jnp.arange(num_colors)[:, None]
            return products(function, flat, seeds)

        return compressed

    compiled_kind = f"sparse_{kind}_{colored.mode}_{num_colors}{piece.signature!r}"
    compiled, dynamic = compile(compiled_kind, piece.fun, layout, piece.args, make)
    colors = jnp.asarray(colored.colors)  # on the device once, not at every evaluation

    def evaluate(x: np.ndarray, *extra: np.ndarray) -> np.ndarray:
        return np.asarray(compiled(x, colors, *extra, dynamic), dtype=np.float64)

    return evaluate


def _products(mode: str, hessian: bool) -> Callable:
    """`(function, flat, seeds) -> compressed`: one product per colour (row of `seeds`)."""
    if hessian:

        def hvps(function: Callable, flat: jax.Array, seeds: jax.Array) -> jax.Array:
            gradient = jax.grad(function)

            def one(seed: jax.Array) -> jax.Array:
                return jax.jvp(gradient, (flat,), (seed.astype(flat.dtype),))[1]

            return jax.vmap(one)(seeds)

        return hvps
    if mode == "rev":

        def vjps(function: Callable, flat: jax.Array, seeds: jax.Array) -> jax.Array:
            out, pullback = jax.vjp(function, flat)
            return jax.vmap(lambda seed: pullback(seed.astype(out.dtype))[0])(seeds)

        return vjps

    def jvps(function: Callable, flat: jax.Array, seeds: jax.Array) -> jax.Array:
        def one(seed: jax.Array) -> jax.Array:
            return jax.jvp(function, (flat,), (seed.astype(flat.dtype),))[1]

        return jax.vmap(one)(seeds)

    return jvps


def _detect(
    asdex: Any,
    traced: Callable,
    inputs: tuple,
    *,
    hessian: bool,
    shape: tuple[int, int],
) -> _Colored | PatternUnavailable:
    """Detect and colour the pattern of `traced(*inputs)` with respect to its first input; a
    `PatternUnavailable` (kept in the cache like a pattern) where the detector stops."""
    detect = asdex.hessian_sparsity if hessian else asdex.jacobian_sparsity
    try:
        pattern = detect(traced, *inputs, argnums=0)
    except NotImplementedError as error:
        return PatternUnavailable(_operation(error))
    with warnings.catch_warnings():
        # A dense pattern is still a right one; its colour count says so in `res.sparsity`.
        warnings.simplefilter("ignore", asdex.DenseColoringWarning)
        if hessian:
            coloring = asdex.hessian_coloring_from_sparsity(pattern)
        else:
            coloring = asdex.jacobian_coloring_from_sparsity(pattern)
    num_colors = int(coloring.num_colors)
    width = shape[0] if coloring.mode == "fwd" else shape[1]
    rows = np.asarray(pattern.rows, dtype=np.int64)
    cols = np.asarray(pattern.cols, dtype=np.int64)
    colors = np.asarray(coloring.colors, dtype=np.int64)
    gather = _positions(rows, cols, colors, num_colors, width, coloring.mode, hessian)
    if gather is None:
        # Not readable directly from one side (no coloring asdex makes today): asdex's own
        # gather, on the matrix of positions.
        positions = jnp.arange(num_colors * width, dtype=jnp.int32).reshape(num_colors, width)
        gather = np.asarray(asdex.decompress_data(positions, coloring), dtype=np.int64)
    sparsity = Sparsity(shape, int(rows.size), num_colors, str(coloring.mode), rows, cols)
    return _Colored(sparsity, colors.astype(np.int32), num_colors, coloring.mode, gather, width)


def _positions(
    rows: np.ndarray,
    cols: np.ndarray,
    colors: np.ndarray,
    num_colors: int,
    width: int,
    mode: str,
    symmetric: bool,
) -> np.ndarray | None:
    """Where each nonzero sits in the raveled compressed matrix (colours by `width`).

    Forward mode: column j's colour, at row i; reverse mode: row i's colour, at column j. A
    symmetric (star) colouring reads H_ij from colour(j) at row i where j is the only neighbour
    of i with that colour (the sum in that entry then holds H_ij alone), else from colour(i) at
    row j under the same condition; None where neither holds for some entry.
    """
    if not symmetric:
        if mode == "rev":
            return colors[rows] * width + cols
        return colors[cols] * width + rows

    def alone(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        _, inverse, counts = np.unique(
            i * num_colors + colors[j], return_inverse=True, return_counts=True
        )
        return counts[inverse.ravel()] == 1

    direct, mirrored = alone(rows, cols), alone(cols, rows)
    if not np.all(direct | mirrored):
        return None
    return np.where(direct, colors[cols] * width + rows, colors[rows] * width + cols)


def _operation(error: NotImplementedError) -> str:
    """The operation the detector stopped at: the primitive of the equation it was reading
    (from the failing frame), else the error itself."""
    for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):
        equation = frame.f_locals.get("eqn")
        primitive = getattr(equation, "primitive", None)
        if primitive is not None:
            return str(primitive.name)
    return str(error) or type(error).__name__
