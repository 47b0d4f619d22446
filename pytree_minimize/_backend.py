"""What the driver asks of a framework backend.

A backend turns a user's function of a pytree into flat float64 callables for scipy, and converts
leaves between its framework and NumPy. The driver knows scipy; a backend knows one framework.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from ._sparse import SparseMatrix
from ._tree import Layout, PyTree

FlatValue = Callable[[np.ndarray], float]
FlatValueAndGrad = Callable[[np.ndarray], "tuple[float, np.ndarray]"]
FlatHessian = Callable[[np.ndarray], np.ndarray]
FlatHvp = Callable[[np.ndarray, np.ndarray], np.ndarray]
FlatConstraint = Callable[[np.ndarray], np.ndarray]
FlatConstraintHvp = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
FlatWeightedHessian = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Backend(Protocol):
    """A framework's side of the driver. Every method is called once per `minimize` call except
    the callables it returns, which scipy calls once per evaluation."""

    #: Name used in error messages, for example "JAX" or "PyTorch".
    name: str
    #: True where the framework's gradient of a real function of a complex leaf is the conjugate of
    #: d/d(real) + i d/d(imag) (JAX); False where it is that value itself (PyTorch).
    conjugate_gradients: bool
    #: False for a backend without autodiff (NumPy): with `jac=None` and `hess=None` the driver
    #: leaves derivatives to scipy (finite differences) instead of asking the backend.
    autodiff: bool

    def prepare(self, tree: PyTree) -> None:
        """Make the tree's node types known to the layout (for example JAX-registered nodes)."""

    def describe_leaf(self, leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None: ...

    def to_numpy(self, leaf: Any) -> np.ndarray: ...

    def restore_leaf(self, array: np.ndarray, like: Any) -> Any:
        """A NumPy array turned into a leaf of the same kind, dtype and device as `like`."""
        ...

    def check_args(self, x0: PyTree, args: tuple) -> None:
        """Reject inputs the backend cannot take (for example JAX tracers). The driver calls it
        first, on the backend object made for this call, which may record what later
        evaluations of the call need (the JAX backend: x0's shardings)."""

    def precision(self, layout: Layout) -> AbstractContextManager[Any]:
        """A context in which the evaluations run in each leaf's own precision."""
        ...

    def value(
        self, fun: Callable, layout: Layout, args: tuple, *, complex_step: bool = False
    ) -> FlatValue: ...

    def value_and_grad(self, fun: Callable, layout: Layout, args: tuple) -> FlatValueAndGrad: ...

    def value_and_user_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> FlatValueAndGrad: ...

    def hessian(self, fun: Callable, layout: Layout, args: tuple) -> FlatHessian: ...

    def hvp(self, fun: Callable, layout: Layout, args: tuple) -> FlatHvp: ...

    def constraint(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> tuple[FlatConstraint, FlatConstraint, FlatConstraintHvp]:
        """Values, Jacobian (dense, m by n) and `v`-weighted Hessian-vector product of a
        constraint function whose output has `out_layout`."""
        ...

    def output_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        """The layout of a constraint function's output at `x0`."""
        ...

    # Sparse derivatives (`_sparse`). Each returns None where the backend cannot detect
    # sparsity (then the caller takes the dense path), raises `_sparse.PatternUnavailable`
    # where its detector cannot follow an operation of the function, and
    # `_sparse.SparseExtraMissing` where the detector is not installed.

    def sparse_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> SparseMatrix | None:
        """The Jacobian of a vector function (a constraint or residuals, output `out_layout`),
        its pattern detected and coloured once per compiled problem; `values(x)`."""
        ...

    def sparse_hessian(self, fun: Callable, layout: Layout, args: tuple) -> SparseMatrix | None:
        """The Hessian of the scalar objective, likewise; `values(x)`."""
        ...

    def sparse_weighted_hessian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> SparseMatrix | None:
        """The Hessian of `v . fun(x)` for a vector function, likewise; `values(x, v)`."""
        ...

    def sparse_lagrangian_hessian(
        self,
        fun: Callable,
        args: tuple,
        constraints: Sequence[tuple[Callable, tuple, Layout]],
        layout: Layout,
    ) -> SparseMatrix | None:
        """The Hessian of `sigma fun(x) + sum_i v_i . c_i(x)` over `(c_i, args_i, out_layout_i)`,
        on the union of the pieces' patterns (one detection for all); `values(x, sigma, v_1,
        ...)`."""
        ...

    def weighted_hessian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatWeightedHessian | None:
        """The dense Hessian of `v . fun(x)`, `(x, v) -> (n, n)`; None where the backend gives
        none (IPOPT then approximates the Lagrangian's Hessian)."""
        ...

    # Residual functions (`least_squares`, `curve_fit`, `root`): a function of the pytree `x`
    # returning a pytree of floating-point arrays, raveled in its own flattening order.

    def residual_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        """The layout of `fun(x0, *args)`, named `fun(x)` in messages; real leaves only."""
        ...

    def residual_values(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatResiduals:
        """The flat residual vector (float64; complex at the complex-step points of
        `jac='cs'`)."""
        ...

    def residual_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatResiduals:
        """The dense m-by-n Jacobian, forward mode where m >= n and reverse mode otherwise."""
        ...

    def residual_jvp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatProduct:
        """`(x, v) -> J(x) v`, an m-vector, without forming J."""
        ...

    def residual_vjp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatProduct:
        """`(x, u) -> J(x)^T u`, an n-vector, without forming J."""
        ...


FlatResiduals = Callable[[np.ndarray], np.ndarray]
FlatProduct = Callable[[np.ndarray, np.ndarray], np.ndarray]

FlatBatchedValue = Callable[[np.ndarray], np.ndarray]


class BatchedBackend(Backend, Protocol):
    """A backend that evaluates whole populations (the global methods' batched path)."""

    #: True where `batched_value` works for any objective (the framework vectorises it: JAX,
    #: PyTorch, TensorFlow); False where the user's function itself must take a batch (NumPy).
    vectorizes: bool

    def batched_value(self, fun: Callable, layout: Layout, args: tuple) -> FlatBatchedValue:
        """Values at the S rows of an (S, n) float64 array, as an (S,) float64 array."""
        ...
