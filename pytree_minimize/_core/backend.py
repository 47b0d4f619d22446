"""The backend contract: everything a driver asks of a framework.

A backend turns a user's function of a pytree into flat float64 callables for scipy, and converts
leaves between its framework and NumPy. The drivers know scipy; a backend knows one framework.

One backend object serves one call of an entry point, and the driver creates it in one way only:
`backend_type(template, args, entry=name)` (a `BackendType`; framework options such as
TensorFlow's `jit_compile` are bound beforehand with `functools.partial`). Its constructor checks
what the framework cannot take, makes the template's node types known to the layout, and keeps
what the call's evaluations need (the JAX backend: the template's shardings; the torch backend:
its leaves' dtypes and devices). Every method a driver calls is declared here, abstract unless
the base class's answer holds for every framework.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .sparse import SparseMatrix
from .tree import Layout, PyTree

FlatValue = Callable[[np.ndarray], float]
FlatValueAndGrad = Callable[[np.ndarray], "tuple[float, np.ndarray]"]
FlatHessian = Callable[[np.ndarray], np.ndarray]
FlatHvp = Callable[[np.ndarray, np.ndarray], np.ndarray]
FlatConstraint = Callable[[np.ndarray], np.ndarray]
FlatConstraintHvp = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
FlatResiduals = Callable[[np.ndarray], np.ndarray]
FlatProduct = Callable[[np.ndarray, np.ndarray], np.ndarray]
FlatBatchedValue = Callable[[np.ndarray], np.ndarray]
FlatWeightedHessian = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Backend(abc.ABC):
    """A framework's side of the drivers, for one call of an entry point.

    Args:
        template: The call's parameter pytree (`x0`, `p0`, or the pytree the bounds describe).
        args: The extra arguments the user's function receives.
        entry: The entry point's public name, for messages ("minimize", "least_squares", ...).

    Raises:
        TypeError: `template` or `args` hold what the framework cannot take (JAX: traced
            values); the message names `entry`.
    """

    #: Name used in error messages, for example "JAX" or "PyTorch".
    name: ClassVar[str]
    #: True where the framework's gradient of a real function of a complex leaf is the conjugate
    #: of d/d(real) + i d/d(imag) (JAX, NumPy's convention); False where it is that value itself
    #: (PyTorch, TensorFlow).
    conjugate_gradients: ClassVar[bool]
    #: False for a backend without autodiff (NumPy): with `jac=None` and `hess=None` the drivers
    #: leave derivatives to scipy (finite differences) instead of asking the backend.
    autodiff: ClassVar[bool]
    #: True where `batched_value` works for any objective (the framework vectorises it: JAX,
    #: PyTorch, TensorFlow); False where the user's function itself must take a batch (NumPy).
    vectorizes: ClassVar[bool]

    def __init__(self, template: PyTree, args: tuple = (), *, entry: str = "minimize") -> None:
        self.entry = entry
        self.prepare(template)

    # Leaves.

    def prepare(self, tree: PyTree) -> None:  # noqa: B027 - most frameworks need nothing
        """Make `tree`'s node types known to the layout (JAX: registered node classes)."""

    @staticmethod
    @abc.abstractmethod
    def describe_leaf(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
        """`(shape, dtype)` of an array leaf of this framework (or a host array or number); None
        for anything else."""

    @staticmethod
    @abc.abstractmethod
    def to_numpy(leaf: Any) -> np.ndarray:
        """A leaf as a NumPy array (a copy where the framework shares memory)."""

    @staticmethod
    @abc.abstractmethod
    def restore_leaf(array: np.ndarray, like: Any) -> Any:
        """A NumPy array turned into a leaf of the same kind, dtype and device as `like`."""

    def precision(self, layout: Layout) -> contextlib.AbstractContextManager[Any]:
        """A context in which the evaluations run in each leaf's own precision (JAX: x64 on
        for float64 leaves; PyTorch: autograd on)."""
        return contextlib.nullcontext()

    # The objective: `fun(x, *args)` returning a scalar.

    @abc.abstractmethod
    def value(
        self, fun: Callable, layout: Layout, args: tuple, *, complex_step: bool = False
    ) -> FlatValue:
        """`x -> fun(x, *args)` over the flat vector (complex-step points pass through where
        `complex_step`)."""

    @abc.abstractmethod
    def value_and_grad(self, fun: Callable, layout: Layout, args: tuple) -> FlatValueAndGrad:
        """`x -> (value, gradient)` by the framework's autodiff."""

    @abc.abstractmethod
    def value_and_user_grad(self, fun: Callable, layout: Layout, args: tuple) -> FlatValueAndGrad:
        """`x -> (value, gradient)` where `fun` returns both (`jac=True`)."""

    @abc.abstractmethod
    def hessian(self, fun: Callable, layout: Layout, args: tuple) -> FlatHessian:
        """`x -> H(x)`, the dense n-by-n Hessian."""

    @abc.abstractmethod
    def hvp(self, fun: Callable, layout: Layout, args: tuple) -> FlatHvp:
        """`(x, p) -> H(x) p` without forming H."""

    def user_gradient_derivative(
        self, fun: Callable, layout: Layout, args: tuple, *, dense: bool
    ) -> FlatHessian | FlatHvp | None:
        """With `jac=True` (`fun` returns `(value, gradient)`): the Hessian (`dense`) or
        Hessian-vector products as the exact derivative of the user's own gradient, or None
        where the framework cannot differentiate it (the driver then takes scipy's finite
        differences of that gradient)."""
        return None

    # Constraints: a function of the pytree `x` returning an array or a pytree of arrays.

    @abc.abstractmethod
    def output_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        """The layout of a constraint function's output at `x0`."""

    @abc.abstractmethod
    def constraint(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> tuple[FlatConstraint, FlatConstraint, FlatConstraintHvp]:
        """Values, Jacobian (dense, m by n) and `v`-weighted Hessian-vector product of a
        constraint function whose output has `out_layout`."""

    # Sparse derivatives (`sparse.py`). Each returns None where the backend cannot read its
    # programs for sparsity (PyTorch, TensorFlow, NumPy: the caller takes the dense path; IPOPT
    # approximates the Lagrangian's Hessian), raises `sparse.PatternUnavailable` where its
    # detector cannot follow an operation of the function, and `sparse.SparseExtraMissing` where
    # the detector is not installed.

    def sparse_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> SparseMatrix | None:
        """The Jacobian of a vector function (a constraint or residuals, output `out_layout`),
        its pattern detected and coloured once per compiled problem; `values(x)`."""
        return None

    def sparse_hessian(self, fun: Callable, layout: Layout, args: tuple) -> SparseMatrix | None:
        """The Hessian of the scalar objective, likewise; `values(x)`."""
        return None

    def sparse_weighted_hessian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> SparseMatrix | None:
        """The Hessian of `v . fun(x)` for a vector function, likewise; `values(x, v)`."""
        return None

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
        return None

    def weighted_hessian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatWeightedHessian | None:
        """The dense Hessian of `v . fun(x)`, `(x, v) -> (n, n)`; None where the backend gives
        none (IPOPT then approximates the Lagrangian's Hessian)."""
        return None

    # Populations (the global methods' batched path).

    @abc.abstractmethod
    def batched_value(self, fun: Callable, layout: Layout, args: tuple) -> FlatBatchedValue:
        """Values at the S rows of an (S, n) float64 array, as an (S,) float64 array."""

    # Residual functions (`least_squares`, `curve_fit`, `root`): a function of the pytree `x`
    # returning a pytree of floating-point arrays, raveled in its own flattening order.

    @abc.abstractmethod
    def residual_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        """The layout of `fun(x0, *args)`, real leaves only.

        Raises:
            LeafError: an output leaf that is not a floating-point array, or no elements at
                all (`build_layout`'s structured errors, with `argument="fun(x)"`).
        """

    @abc.abstractmethod
    def residual_values(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatResiduals:
        """The flat residual vector (float64; complex at the complex-step points of
        `jac='cs'`)."""

    @abc.abstractmethod
    def residual_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatResiduals:
        """The dense m-by-n Jacobian, forward mode where m >= n and reverse mode otherwise."""

    @abc.abstractmethod
    def residual_jvp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatProduct:
        """`(x, v) -> J(x) v`, an m-vector, without forming J."""

    @abc.abstractmethod
    def residual_vjp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> FlatProduct:
        """`(x, u) -> J(x)^T u`, an n-vector, without forming J."""


#: How a driver makes the backend of a call: `backend_type(template, args, entry=name)`.
BackendType = Callable[..., Backend]


def backend_class(backend_type: BackendType) -> type[Backend]:
    """The class `backend_type` makes (a `Backend` subclass, or a `functools.partial` of one
    binding a framework's options), for its class-level facts before any backend is made."""
    while isinstance(backend_type, functools.partial):
        backend_type = backend_type.func
    if not (isinstance(backend_type, type) and issubclass(backend_type, Backend)):
        raise TypeError(f"not a backend type: {backend_type!r}")
    return backend_type
