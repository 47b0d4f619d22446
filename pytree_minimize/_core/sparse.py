"""Sparse derivatives, framework-neutral: the `sparse=` option and what it decides, the pattern
record reported as `res.sparsity`, and sparse matrices assembled for scipy and IPOPT.

A backend that can detect sparsity (the JAX core, `_jax_sparse`) returns a `SparseMatrix`: the
detected and coloured pattern and a compiled function of its nonzeros. This module alone decides
when to ask for one (`SparsePolicy`: `'auto'` asks where the dense matrix would hold more than
`AUTO_ENTRIES` entries), what happens when a pattern cannot be detected (one `SparsityWarning`
naming the operation, then the dense path: never a wrong pattern), and how nonzeros become
`scipy.sparse` matrices or IPOPT's triplets.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse

if TYPE_CHECKING:
    from .backend import Backend
    from .tree import Layout

__all__ = [
    "AUTO_ENTRIES",
    "PatternUnavailable",
    "SparseExtraMissing",
    "SparseMatrix",
    "SparsePolicy",
    "Sparsity",
    "SparsityWarning",
    "check_sparse",
]

#: `sparse='auto'` detects sparsity where a dense derivative would hold more entries than this
#: (8 MB of float64).
AUTO_ENTRIES = 1_000_000

#: What `pip` installs for sparsity detection.
EXTRA = "pip install pytree-minimize[sparse]"


class SparsityWarning(UserWarning):
    """A sparse derivative was asked for but the dense one is used: the sparsity pattern could not
    be detected (an operation the detector does not handle) or the detector is not installed.

    Examples:
        >>> import warnings
        >>> from pytree_minimize import SparsityWarning
        >>> warnings.simplefilter("error", SparsityWarning)  # make a dense fallback an error
        >>> issubclass(SparsityWarning, UserWarning)
        True
        >>> warnings.resetwarnings()
    """


class PatternUnavailable(Exception):
    """Raised by a backend whose detector cannot follow an operation of the function; `operation`
    names it (for example a JAX primitive)."""

    def __init__(self, operation: str) -> None:
        super().__init__(operation)
        self.operation = operation


class SparseExtraMissing(ImportError):
    """The sparsity detector (asdex, the `sparse` extra) is not installed."""


def check_sparse(sparse: Any) -> bool | str:
    """The `sparse` option, checked: `'auto'`, True or False."""
    if isinstance(sparse, bool | np.bool_):
        return bool(sparse)
    if isinstance(sparse, str) and sparse == "auto":
        return "auto"
    raise ValueError(
        f"`sparse` must be 'auto', True or False; got {sparse!r}. 'auto' uses sparse derivatives "
        f"where a dense one would hold more than {AUTO_ENTRIES:,} entries, True always, False "
        "never."
    )


def refuse_forced(sparse: Any, backend_name: str) -> None:
    """Check the `sparse` option, and raise where `sparse=True` meets a path that detects no
    sparsity (a backend without detection, or scipy's own function taking the problem as it
    is)."""
    if check_sparse(sparse) is True:
        raise ValueError(_no_detection(backend_name))


def _no_detection(backend_name: str) -> str:
    return (
        f"`sparse=True` needs sparsity detection from the function's program, which the "
        f"{backend_name} backend does not have; sparse derivatives come from the JAX entry "
        "points (`pytree_minimize.minimize`, `least_squares`, `root`). Pass `sparse='auto'` or "
        "False here."
    )


# ---------------------------------------------------------------------------------------------
# Patterns and sparse matrices.


@dataclass(frozen=True, eq=False)
class Sparsity:
    """The sparsity pattern of one derivative matrix, as detected and coloured (`res.sparsity`).

    Attributes:
        shape: `(rows, columns)` of the matrix over the flat vectors.
        nnz: Structural nonzeros: entries that may differ from zero at some `x`.
        colors: Products (Jacobian-vector, vector-Jacobian or Hessian-vector) per evaluation
            of the whole matrix.
        mode: How it is evaluated: 'fwd' (JVPs), 'rev' (VJPs) or a Hessian mode such as
            'fwd_over_rev'.
        rows: Row index of each nonzero.
        cols: Column index of each nonzero.

    Examples:
        >>> import numpy as np
        >>> from pytree_minimize import Sparsity
        >>> s = Sparsity((2, 3), 2, 1, "fwd", np.array([0, 1]), np.array([0, 2]))
        >>> s
        Sparsity(2x3, nnz=2, colors=1, mode='fwd')
        >>> s.pattern().toarray().astype(int).tolist()
        [[1, 0, 0], [0, 0, 1]]
    """

    shape: tuple[int, int]
    nnz: int
    colors: int
    mode: str
    rows: np.ndarray = field(repr=False)
    cols: np.ndarray = field(repr=False)

    def pattern(self) -> scipy.sparse.coo_matrix:
        """The pattern as a boolean `scipy.sparse` matrix (for example for `plt.spy`)."""
        ones = np.ones(self.nnz, dtype=bool)
        return scipy.sparse.coo_matrix((ones, (self.rows, self.cols)), shape=self.shape)

    def __repr__(self) -> str:
        return (
            f"Sparsity({self.shape[0]}x{self.shape[1]}, nnz={self.nnz}, colors={self.colors}, "
            f"mode={self.mode!r})"
        )


class SparseMatrix:
    """A derivative matrix with a fixed sparsity pattern: `values(x, *extra)` returns its
    nonzeros in the pattern's order (float64), `at(x, *extra)` the `scipy.sparse` CSR matrix.

    Args:
        sparsity: The pattern.
        values: The compiled nonzeros, `(x, *extra) -> (nnz,)` float64.
    """

    def __init__(self, sparsity: Sparsity, values: Callable[..., np.ndarray]) -> None:
        self.sparsity = sparsity
        self.values = values
        rows = np.asarray(sparsity.rows, dtype=np.int64)
        cols = np.asarray(sparsity.cols, dtype=np.int64)
        keys = rows * sparsity.shape[1] + cols
        # Row-major order once, so that each evaluation only permutes its values (detected
        # patterns are already in that order: then no permutation at all).
        order = None if np.all(np.diff(keys) > 0) else np.argsort(keys, kind="stable")
        sorted_rows = rows if order is None else rows[order]
        self._order = order
        self._indices = (cols if order is None else cols[order]).astype(np.int32)
        self._indptr = np.searchsorted(sorted_rows, np.arange(sparsity.shape[0] + 1)).astype(
            np.int32
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.sparsity.shape

    def csr(self, data: np.ndarray) -> scipy.sparse.csr_matrix:
        """The CSR matrix of the nonzeros `data` (in the pattern's order)."""
        if self._order is not None:
            data = data[self._order]
        return scipy.sparse.csr_matrix((data, self._indices, self._indptr), shape=self.shape)

    def at(self, x: np.ndarray, *extra: Any) -> scipy.sparse.csr_matrix:
        return self.csr(self.values(x, *extra))


def dense_pattern(shape: tuple[int, int], *, lower: bool = False) -> Sparsity:
    """Every entry of a dense matrix (its lower triangle with `lower`), row by row: the pattern
    under which a dense derivative is handed to IPOPT."""
    rows, cols = np.indices(shape).reshape(2, -1)
    if lower:
        keep = rows >= cols
        rows, cols = rows[keep], cols[keep]
    return Sparsity(shape, rows.size, shape[1], "dense", rows, cols)


# ---------------------------------------------------------------------------------------------
# The policy: when to ask for a sparse derivative, and what to do when none comes.


class SparsePolicy:
    """One call's `sparse=` option: which derivatives become sparse, the patterns used (reported
    as `res.sparsity`), and the fallback to dense.

    Args:
        sparse: The checked option ('auto', True or False).
        backend: The call's backend (its name is used in messages).
    """

    def __init__(self, sparse: Any, backend: Backend) -> None:
        self.sparse = check_sparse(sparse)
        self.backend = backend
        #: The patterns used, by the argument they belong to ('hess', 'constraints[0].jac', ...).
        self.records: dict[str, Sparsity] = {}
        self._warned: set[str] = set()
        if not backend.autodiff:
            self.refuse_forced()  # no autodiff, so no derivatives to make sparse

    def wants(self, dense_entries: int | None) -> bool:
        """Whether a derivative is asked for sparse: always with `sparse=True`; with 'auto',
        where its dense form would hold more than `AUTO_ENTRIES` entries (`dense_entries` None:
        the dense path builds no matrix, it takes products, and 'auto' keeps it)."""
        if self.sparse is True:
            return True
        if self.sparse == "auto" and dense_entries is not None:
            return dense_entries > AUTO_ENTRIES
        return False

    def jacobian(
        self,
        name: str,
        fun: Callable,
        layout: Layout,
        args: tuple,
        out_layout: Layout,
        *,
        matrix_free: bool = False,
    ) -> SparseMatrix | None:
        """The sparse Jacobian of a vector function (a constraint, residuals), or None for the
        dense path. `matrix_free`: the dense path takes products and builds no matrix."""
        entries = None if matrix_free else out_layout.n * layout.n
        if not self.wants(entries):
            return None
        return self._ask(name, lambda: self.backend.sparse_jacobian(fun, layout, args, out_layout))

    def hessian(
        self, name: str, fun: Callable, layout: Layout, args: tuple, *, matrix_free: bool = False
    ) -> SparseMatrix | None:
        """The sparse Hessian of a scalar function, or None for the dense path."""
        if not self.wants(None if matrix_free else layout.n * layout.n):
            return None
        return self._ask(name, lambda: self.backend.sparse_hessian(fun, layout, args))

    def weighted_hessian(
        self,
        name: str,
        fun: Callable,
        layout: Layout,
        args: tuple,
        out_layout: Layout,
        *,
        matrix_free: bool = False,
    ) -> SparseMatrix | None:
        """The sparse Hessian of `v . fun(x)` (values `(x, v)`), or None for the dense path."""
        if not self.wants(None if matrix_free else layout.n * layout.n):
            return None
        return self._ask(
            name, lambda: self.backend.sparse_weighted_hessian(fun, layout, args, out_layout)
        )

    def lagrangian_hessian(
        self,
        fun: Callable,
        args: tuple,
        constraints: Sequence[tuple[Callable, tuple, Layout]],
        layout: Layout,
    ) -> SparseMatrix | None:
        """The sparse Hessian of `sigma f + sum_i v_i . c_i` (values `(x, sigma, v_1, ...)`),
        or None for the dense path."""
        if not self.wants(layout.n * layout.n):
            return None
        return self._ask(
            "lagrangian_hess",
            lambda: self.backend.sparse_lagrangian_hessian(fun, args, constraints, layout),
        )

    def refuse_forced(self) -> None:
        """Raise where `sparse=True` meets a path that detects no sparsity."""
        refuse_forced(self.sparse, self.backend.name)

    def _no_detection(self) -> str:
        return _no_detection(self.backend.name)

    def _ask(self, name: str, build: Callable[[], SparseMatrix | None]) -> SparseMatrix | None:
        try:
            matrix = build()
        except SparseExtraMissing as error:
            if self.sparse is True:
                raise
            self._warn(
                "missing",
                f"{error} The dense derivatives are used; install the detector with `{EXTRA}` "
                "or pass `sparse=False` to silence this warning.",
            )
            return None
        except PatternUnavailable as error:
            self._warn(
                error.operation,
                f"The sparsity pattern of `{name}` could not be detected: the detector does not "
                f"handle the operation `{error.operation}`. The dense derivative is used instead "
                "(pass `sparse=False` to silence this warning).",
            )
            return None
        if matrix is None:
            self.refuse_forced()
            return None
        self.records[name] = matrix.sparsity
        return matrix

    def _warn(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        warnings.warn(message, SparsityWarning, stacklevel=4)

    def attach(self, result: Any) -> None:
        """`result.sparsity`: the patterns used, where any derivative was sparse."""
        if self.records:
            result.sparsity = dict(self.records)


def sparse_extra_missing(error: ImportError) -> SparseExtraMissing:
    """The error for a missing detector, raised from the import that failed."""
    missing = SparseExtraMissing(
        f"Sparse derivatives need the `asdex` package, which is not installed ({error}). "
        f"Install it with `{EXTRA}`."
    )
    missing.__cause__ = error
    return missing


# ---------------------------------------------------------------------------------------------
# IPOPT's triplets: stacked constraint Jacobians and the Lagrangian's Hessian.


class StackedJacobian:
    """The Jacobians of several constraints stacked row-wise, as IPOPT's triplets.

    Args:
        blocks: Per constraint, `(pattern, values)`: its pattern (`Sparsity`, over its own rows)
            and `values(x)`, its nonzeros in that pattern's order.
    """

    def __init__(self, blocks: Sequence[tuple[Sparsity, Callable[[np.ndarray], np.ndarray]]]):
        offsets = np.cumsum([0] + [pattern.shape[0] for pattern, _ in blocks])
        self.rows = np.concatenate(
            [np.asarray(p.rows, dtype=np.int64) + o for (p, _), o in zip(blocks, offsets)]
            or [np.zeros(0, np.int64)]
        )
        self.cols = np.concatenate(
            [np.asarray(p.cols, dtype=np.int64) for p, _ in blocks] or [np.zeros(0, np.int64)]
        )
        self._values = [values for _, values in blocks]

    def values(self, x: np.ndarray) -> np.ndarray:
        parts = [np.asarray(values(x), dtype=np.float64).ravel() for values in self._values]
        return np.concatenate(parts) if parts else np.zeros(0)


class AssembledLagrangian:
    """IPOPT's Lagrangian Hessian from one sparse matrix of `(x, sigma, v_1, ...)`: its lower
    triangle, with each constraint's multipliers cut from IPOPT's stacked ones.

    Args:
        matrix: The Hessian of `sigma f + sum_i v_i . c_i` (`SparsePolicy.lagrangian_hessian`).
        rows: Per constraint in the matrix, the slice of IPOPT's multipliers that is its `v`.
    """

    def __init__(self, matrix: SparseMatrix, rows: Sequence[slice]) -> None:
        self._matrix = matrix
        self._rows = list(rows)
        pattern = matrix.sparsity
        self._lower = np.asarray(pattern.rows) >= np.asarray(pattern.cols)
        self.rows = np.asarray(pattern.rows)[self._lower]
        self.cols = np.asarray(pattern.cols)[self._lower]
        self.nnz = int(self.rows.size)

    def values(self, x: np.ndarray, multipliers: np.ndarray, sigma: float) -> np.ndarray:
        weights = [multipliers[rows] for rows in self._rows]
        return self._matrix.values(x, sigma, *weights)[self._lower]


class LagrangianHessian:
    """`sigma * H_f(x) + sum_k H_(v_k . c_k)(x)`, the Hessian of IPOPT's Lagrangian, as the
    nonzeros of its lower triangle on the union of the pieces' patterns.

    Args:
        objective: `(pattern, values)` of the objective's Hessian (`values(x)`), or None for
            none.
        constraints: Per nonlinear constraint, `(pattern, values, rows)`: the pattern of the
            Hessian of `v . c(x)`, `values(x, v)`, and the slice of IPOPT's multipliers that is
            its `v`.
        n: The number of variables.
    """

    def __init__(
        self,
        objective: tuple[Sparsity, Callable[[np.ndarray], np.ndarray]] | None,
        constraints: Sequence[tuple[Sparsity, Callable[..., np.ndarray], slice]],
        n: int,
    ) -> None:
        pieces: list[tuple[Sparsity, Callable[..., np.ndarray], slice | None]] = []
        if objective is not None:
            pieces.append((objective[0], objective[1], None))
        pieces += list(constraints)
        lowers = [np.asarray(p.rows) >= np.asarray(p.cols) for p, _, _ in pieces]
        keys = [
            np.asarray(p.rows, dtype=np.int64)[low] * n + np.asarray(p.cols, dtype=np.int64)[low]
            for (p, _, _), low in zip(pieces, lowers)
        ]
        union = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        self.rows, self.cols = union // max(n, 1), union % max(n, 1)
        self.nnz = union.size
        self._pieces = [
            (values, rows, low, np.searchsorted(union, key))
            for (_, values, rows), low, key in zip(pieces, lowers, keys)
        ]

    def values(self, x: np.ndarray, multipliers: np.ndarray, sigma: float) -> np.ndarray:
        out = np.zeros(self.nnz)
        for values, rows, low, where in self._pieces:
            if rows is None:
                if sigma == 0.0:
                    continue
                data = sigma * np.asarray(values(x), dtype=np.float64)
            else:
                v = multipliers[rows]
                if not v.any():
                    continue
                data = np.asarray(values(x, v), dtype=np.float64)
            out += np.bincount(where, weights=data[low], minlength=self.nnz)
        return out
