"""The PyTorch backend: autograd on one flat float64 tensor that is split into leaf views.

One evaluation moves the flat vector to the leaves' device once (`torch.from_numpy(x).to(device)`),
splits it there into views shaped and typed like the leaves of `x0`, and differentiates with
respect to the flat tensor itself, so the gradient arrives as one flat vector that crosses back to
the host once. Hessian-vector products are double backward on a graph kept for the current `x`
(Newton-CG and the trust-region methods ask for many products at one point).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree
import torch

from .._core.backend import Backend
from .._core.errors import NotScalarError
from .._core.hints import no_gradient, returned_pair, torch_module_hint
from .._core.tree import NAMESPACE, Layout, PyTree, build_layout, describe_host_leaf, flatten
from . import torch_compat

_NUMPY_DTYPES: dict[torch.dtype, np.dtype] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.complex64: np.dtype(np.complex64),
    torch.complex128: np.dtype(np.complex128),
}
_REAL_OF_COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_COMPLEX_OF_REAL = {
    torch.float16: torch.complex32,
    torch.float32: torch.complex64,
    torch.float64: torch.complex128,
}


def describe_leaf(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    if isinstance(leaf, torch.Tensor):
        dtype = _NUMPY_DTYPES.get(leaf.dtype)
        if dtype is None:
            if leaf.dtype == torch.bfloat16:
                # The layout keeps bfloat16 leaves as float32 on the host; inside `fun` they stay
                # bfloat16 (the tensor's own dtype).
                return tuple(leaf.shape), np.dtype(np.float32)
            # Integer and boolean tensors: let the layout name the leaf and its dtype.
            try:
                return tuple(leaf.shape), np.dtype(str(leaf.dtype).removeprefix("torch."))
            except TypeError:
                return tuple(leaf.shape), np.dtype(object)
        return tuple(leaf.shape), dtype
    return describe_host_leaf(leaf)


def to_numpy(leaf: Any) -> np.ndarray:
    if isinstance(leaf, torch.Tensor):
        leaf = leaf.detach()
        if leaf.dtype == torch.bfloat16:
            leaf = leaf.float()
        return leaf.resolve_conj().resolve_neg().cpu().numpy()
    return np.asarray(leaf)


def restore_leaf(array: np.ndarray, like: Any) -> Any:
    if isinstance(like, torch.Tensor):
        dtype = like.dtype
        if array.dtype.kind == "c" and not like.is_complex():
            # A complex-step point of scipy's 'cs' differences: the step must survive.
            dtype = _COMPLEX_OF_REAL.get(dtype, torch.complex128)
        # `np.ascontiguousarray` turns a 0-d array into shape (1,); the reshape keeps the leaf's
        # own shape (0-d tensors stay 0-d in `res.x` and callbacks).
        contiguous = np.ascontiguousarray(array).reshape(array.shape)
        return torch.from_numpy(contiguous).to(device=like.device, dtype=dtype)
    if isinstance(like, np.ndarray):
        return array
    if isinstance(like, np.generic):
        return array.dtype.type(array)
    return type(like)(array.item())


# ---------------------------------------------------------------------------------------------
# The flat tensor and its leaves.


class _Plan:
    """How a flat float64 tensor becomes the leaves of `x0`: device, split sizes, and for each
    leaf its shape and (where it differs from float64 or the main device) its dtype and device.
    Built once per `minimize` call so that an evaluation does no per-leaf bookkeeping."""

    def __init__(self, layout: Layout, x0_leaves: Sequence[Any]):
        self.layout = layout
        self.treedef = layout.treedef
        self.n = layout.n
        tensors = [leaf for leaf in x0_leaves if isinstance(leaf, torch.Tensor)]
        self.device = tensors[0].device if tensors else torch.device("cpu")
        self.on_cpu = self.device.type == "cpu"
        self.widths = [spec.width for spec in layout.leaves]
        self.single = len(layout.leaves) == 1
        # One entry per leaf: (shape, dtype or None, complex real dtype or None, device or None).
        self.steps: list[tuple[tuple[int, ...], Any, Any, Any]] = []
        simple = True
        for spec, leaf in zip(layout.leaves, x0_leaves, strict=True):
            if isinstance(leaf, torch.Tensor):
                dtype, device = leaf.dtype, leaf.device
            else:
                dtype = torch.from_numpy(np.zeros((), spec.dtype)).dtype
                device = torch.device("cpu")
            real = _REAL_OF_COMPLEX.get(dtype)
            cast = None if dtype == torch.float64 or real is not None else dtype
            move = None if device == self.device else device
            simple &= cast is None and real is None and move is None
            self.steps.append((spec.shape, cast, real, move))
        # Views only where a part of the split is not already shaped like its leaf.
        self.shapes = [None if len(step[0]) == 1 else step[0] for step in self.steps]
        self.reshape = any(shape is not None for shape in self.shapes)
        self.simple = simple
        # Every leaf float32 on the one device: `x` crosses as float32 (see `to_device`).
        self.narrow = all(
            cast == torch.float32 and real is None and move is None
            for _, cast, real, move in self.steps
        )

    def to_device(self, x: np.ndarray, *, narrow: bool = False) -> torch.Tensor:
        """The host vector `x` as a float64 (or complex128) tensor on the device: one transfer.
        With `narrow` and float32 leaves, a float32 tensor: cast on the host, so that no float64
        copy of `x` reaches the device (the leaves' casts are then no-ops)."""
        if narrow and self.narrow and x.dtype == np.float64:
            return self._on_device(torch.from_numpy(x.astype(np.float32)))
        if type(x) is not np.ndarray or not x.flags.writeable:
            x = np.array(x)  # torch warns on read-only arrays
        flat = torch.from_numpy(x)
        if flat.dtype is not torch.float64 and flat.dtype is not torch.complex128:
            flat = flat.to(torch.complex128 if flat.is_complex() else torch.float64)
        return self._on_device(flat)

    def _on_device(self, flat: torch.Tensor) -> torch.Tensor:
        return flat if self.on_cpu else flat.to(self.device)

    def leaves(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of `flat` shaped, typed and placed like the leaves of `x0` (differentiable)."""
        parts = (flat,) if self.single else flat.split_with_sizes(self.widths)
        if self.simple:
            if not self.reshape:
                return list(parts)
            return [
                part if shape is None else part.view(shape)
                for part, shape in zip(parts, self.shapes)
            ]
        promote = flat.is_complex()  # complex-step differences: every leaf becomes complex
        leaves = []
        for part, (shape, cast, real, move) in zip(parts, self.steps):
            if real is not None:
                half = part.shape[0] // 2
                leaf = torch.complex(part[:half].to(real), part[half:].to(real)).view(shape)
            else:
                leaf = part.view(shape)
                if cast is not None:
                    leaf = leaf.to(_COMPLEX_OF_REAL.get(cast, cast) if promote else cast)
            if move is not None:
                leaf = leaf.to(move)
            leaves.append(leaf)
        return leaves

    def tree(self, flat: torch.Tensor) -> PyTree:
        return optree.tree_unflatten(self.treedef, self.leaves(flat))


def _scalar(value: Any, *, complex_ok: bool = False, differentiated: bool = False) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        if isinstance(value, tuple | list):
            raise TypeError(
                f"`fun` must return a 0-d tensor; it returned a {type(value).__name__}. If it "
                "returns `(value, gradient)`, pass `jac=True`."
            )
        raise TypeError(
            f"`fun` must return a 0-d tensor; it returned a {type(value).__name__}. Compute the "
            "objective with torch operations on the tensors of `x`."
        )
    if value.numel() != 1:
        raise NotScalarError(
            argument="fun", found=f"a tensor of shape {tuple(value.shape)}", reduce=".sum()"
        )
    if value.is_complex() and not complex_ok:
        raise TypeError(
            "`fun` must return a real scalar; it returned a complex tensor. Return, for example, "
            "`z.abs().square().sum()` or `.real`."
        )
    if differentiated and not (value.is_floating_point() or value.is_complex()):
        raise TypeError(no_gradient(value.dtype))
    return value.reshape(())


def _flat_grad(value: torch.Tensor, flat: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """d value / d flat; zeros where `value` does not depend on `flat`.

    Raises:
        TypeError: `value` requires a gradient through tensors other than `x` alone (a module's
            own parameters), so the function ignores the `x` it is given.
    """
    if not value.requires_grad:
        return torch.zeros_like(flat)
    (grad,) = torch.autograd.grad(value, flat, allow_unused=True, **kwargs)
    if grad is None:
        raise TypeError(_IGNORES_X)
    return grad


#: `fun`'s value requires a gradient, yet not through `x`: the newcomer's closure
#: `lambda p: loss(model(X), Y)` with `x0 = list(model.parameters())`.
_IGNORES_X = (
    "`fun`'s value does not depend on the `x` it is given: it was computed from other tensors "
    "that require gradients, such as a module's own parameters (`model(X)` uses `model`'s "
    "parameters, not the copies in `x`). " + torch_module_hint()
)


def _ravel_output(out: PyTree, name: str) -> torch.Tensor:
    leaves = optree.tree_leaves(out, namespace=NAMESPACE)
    parts = []
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            leaf = torch.as_tensor(np.asarray(leaf, dtype=np.float64))
        parts.append(leaf.reshape(-1).to(torch.float64))
    if not parts:
        raise ValueError(f"`{name}` returned no values.")
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def _batched_rows(
    outputs: torch.Tensor, flat: torch.Tensor, m: int, *, create_graph: bool = False
) -> torch.Tensor:
    """The m-by-n Jacobian of the vector `outputs` with respect to `flat`, by reverse mode: one
    vectorised backward pass where the operations allow, else one pass per row."""
    if not outputs.requires_grad:
        return torch.zeros((m, flat.shape[0]), dtype=flat.dtype, device=flat.device)
    eye = torch.eye(m, dtype=outputs.dtype, device=outputs.device)
    try:
        (rows,) = torch.autograd.grad(
            outputs, flat, eye, retain_graph=True, is_grads_batched=True, allow_unused=True
        )
        if rows is not None:
            return rows
    except RuntimeError:
        pass
    result = []
    for i in range(m):
        (row,) = torch.autograd.grad(outputs, flat, eye[i], retain_graph=True, allow_unused=True)
        result.append(torch.zeros_like(flat) if row is None else row)
    return torch.stack(result)


class TorchBackend(Backend):
    """Backend for PyTorch tensors (see :mod:`pytree_minimize._backend`). One instance per
    `minimize` call: it keeps the leaves of `x0` for their dtypes and devices."""

    name = "PyTorch"
    conjugate_gradients = False
    autodiff = True
    #: Any PyTorch function can be batched with `torch.func.vmap`.
    vectorizes = True

    describe_leaf = staticmethod(describe_leaf)
    to_numpy = staticmethod(to_numpy)
    restore_leaf = staticmethod(restore_leaf)

    def __init__(self, template: PyTree, args: tuple = (), *, entry: str = "minimize") -> None:
        super().__init__(template, args, entry=entry)
        self._x0_leaves, _ = flatten(template)
        self._plan: _Plan | None = None

    def precision(self, layout: Layout) -> contextlib.AbstractContextManager[Any]:
        # Autograd must be on even where the caller runs under `torch.no_grad()`.
        return torch.enable_grad()

    def plan(self, layout: Layout) -> _Plan:
        if self._plan is None or self._plan.layout is not layout:
            self._plan = _Plan(layout, self._x0_leaves)
        return self._plan

    # Objective evaluations.

    def value(
        self, fun: Callable, layout: Layout, args: tuple, *, complex_step: bool = False
    ) -> Callable[[np.ndarray], Any]:
        plan = self.plan(layout)

        def value(x: np.ndarray) -> Any:
            with torch.no_grad():
                out = _scalar(fun(plan.tree(plan.to_device(x)), *args), complex_ok=complex_step)
                return out.item()

        return value

    def value_and_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        plan = self.plan(layout)
        tree, to_device, on_cpu = plan.tree, plan.to_device, plan.on_cpu
        engine = torch_compat.ENGINE_GRADIENT if plan.simple else None
        seeds: dict[torch.dtype, torch.Tensor] = {}

        def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            flat = to_device(x, narrow=True).requires_grad_(True)
            value = fun(tree(flat), *args)
            if (
                type(value) is not torch.Tensor
                or value.ndim
                or not value.requires_grad
                or value.is_complex()
            ):
                value = _scalar(value, differentiated=True)
                grad = _flat_grad(value, flat)
            elif engine is not None:
                seed = seeds.get(value.dtype)
                if seed is None:
                    seed = seeds[value.dtype] = torch.ones(
                        (), dtype=value.dtype, device=flat.device
                    )
                try:
                    grad = engine(value, seed, flat)
                except RuntimeError:  # `flat` not in the graph: `_flat_grad` says why
                    grad = _flat_grad(value, flat)
            else:
                grad = _flat_grad(value, flat)
            if on_cpu:
                return value.item(), grad.numpy().astype(np.float64, copy=False)
            packed = torch.cat([value.detach().to(grad.dtype).reshape(1), grad]).cpu().numpy()
            packed = packed.astype(np.float64, copy=False)
            return packed[0], packed[1:]

        return value_and_grad

    def value_and_user_grad(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        plan = self.plan(layout)

        def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            # The leaves require grad, so a `fun` that differentiates itself with
            # `torch.autograd.grad(value, leaves)` (dict_minimize's convention) works.
            out = fun(plan.tree(plan.to_device(x).requires_grad_(True)), *args)
            value, grad = returned_pair(out, derivative="gradient", source="autograd")
            if isinstance(value, torch.Tensor):
                value = _scalar(value).detach().item()
            return float(value), self._ravel_like_x(plan, grad, name="fun")

        return value_and_grad

    def _ravel_like_x(self, plan: _Plan, tree: PyTree, *, name: str) -> np.ndarray:
        leaves = plan.layout.leaves_like_x(tree, name=name, shape_of=lambda leaf: leaf.shape)
        parts = []
        for leaf in leaves:
            leaf = torch.as_tensor(leaf).detach()
            if leaf.is_complex():
                parts += [leaf.real.reshape(-1), leaf.imag.reshape(-1)]
            else:
                parts.append(leaf.reshape(-1))
        parts = [part.to(device=plan.device, dtype=torch.float64) for part in parts]
        return torch.cat(parts).cpu().numpy()

    # Second derivatives.

    def hessian(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        plan = self.plan(layout)

        def hessian(x: np.ndarray) -> np.ndarray:
            flat = plan.to_device(x).requires_grad_(True)
            value = _scalar(fun(plan.tree(flat), *args), differentiated=True)
            grad = _flat_grad(value, flat, create_graph=True)
            return _batched_rows(grad, flat, plan.n).detach().cpu().numpy()

        return hessian

    def hvp(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        plan = self.plan(layout)
        # The gradient graph at the latest `x`: scipy asks for many products at one point.
        state: dict[str, Any] = {}

        def hvp(x: np.ndarray, p: np.ndarray) -> np.ndarray:
            if "x" not in state or not np.array_equal(state["x"], x):
                state.clear()
                flat = plan.to_device(np.array(x, dtype=np.float64)).requires_grad_(True)
                value = _scalar(fun(plan.tree(flat), *args), differentiated=True)
                state.update(
                    x=np.array(x), flat=flat, grad=_flat_grad(value, flat, create_graph=True)
                )
            flat, grad = state["flat"], state["grad"]
            if not grad.requires_grad:
                return np.zeros(plan.n)
            tangent = plan.to_device(np.asarray(p, dtype=np.float64))
            (product,) = torch.autograd.grad(
                grad, flat, tangent, retain_graph=True, allow_unused=True
            )
            if product is None:
                return np.zeros(plan.n)
            return product.detach().cpu().numpy()

        return hvp

    # Constraints.

    def _as_evaluated(self, layout: Layout, x0: PyTree) -> PyTree:
        """`x0` as the evaluations pass it to the user's function: tensors (a NumPy `x0`, such as
        the array scipy makes of a list, becomes float64 CPU tensors, as in every evaluation)."""
        plan = self.plan(layout)
        leaves = optree.tree_leaves(x0, namespace=NAMESPACE)
        flat = layout.ravel([np.asarray(self.to_numpy(leaf)) for leaf in leaves])
        return plan.tree(plan.to_device(flat))

    def output_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        with torch.no_grad():
            out = fun(self._as_evaluated(layout, x0), *args)
        return build_layout(
            out, describe_leaf=describe_leaf, name="constraint output", allow_complex=False
        )

    def constraint(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> tuple[Callable, Callable, Callable]:
        plan = self.plan(layout)
        m = out_layout.n

        def values(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = fun(plan.tree(plan.to_device(x)), *args)
                return _ravel_output(out, "constraint").cpu().numpy()

        def jacobian(x: np.ndarray) -> np.ndarray:
            flat = plan.to_device(x).requires_grad_(True)
            out = _ravel_output(fun(plan.tree(flat), *args), "constraint")
            return _batched_rows(out, flat, m).detach().cpu().numpy()

        def weighted_hvp(x: np.ndarray, v: np.ndarray, p: np.ndarray) -> np.ndarray:
            flat = plan.to_device(x).requires_grad_(True)
            out = _ravel_output(fun(plan.tree(flat), *args), "constraint")
            weights = torch.as_tensor(np.asarray(v, dtype=np.float64), device=out.device)
            grad = _flat_grad((out * weights).sum(), flat, create_graph=True)
            if not grad.requires_grad:
                return np.zeros(plan.n)
            tangent = plan.to_device(np.asarray(p, dtype=np.float64))
            (product,) = torch.autograd.grad(grad, flat, tangent, allow_unused=True)
            return np.zeros(plan.n) if product is None else product.detach().cpu().numpy()

        return values, jacobian, weighted_hvp

    # Populations (global methods).

    def batched_value(
        self, fun: Callable, layout: Layout, args: tuple
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Values at the S rows of an (S, n) array, by `torch.func.vmap` over the members."""
        plan = self.plan(layout)

        def member(flat: torch.Tensor) -> torch.Tensor:
            return _scalar(fun(plan.tree(flat), *args))

        batched = torch.func.vmap(member)

        def evaluate(xs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = batched(plan.to_device(np.ascontiguousarray(xs, dtype=np.float64)))
            return out.detach().cpu().numpy().astype(np.float64, copy=False)

        return evaluate

    # Residual functions (`least_squares`, `curve_fit`, `root`).

    def residual_layout(self, fun: Callable, layout: Layout, args: tuple, x0: PyTree) -> Layout:
        with torch.no_grad():
            out = fun(self._as_evaluated(layout, x0), *args)
        return build_layout(out, describe_leaf=describe_leaf, name="fun(x)")

    def _residual_function(self, fun: Callable, layout: Layout, args: tuple) -> Callable:
        plan = self.plan(layout)

        def values(flat: torch.Tensor) -> torch.Tensor:
            parts = []
            for leaf in optree.tree_leaves(fun(plan.tree(flat), *args), namespace=NAMESPACE):
                leaf = torch.as_tensor(leaf)
                if leaf.is_complex() and not flat.is_complex():
                    # A complex residual is two real ones, as in the output's layout.
                    parts += [leaf.real.reshape(-1), leaf.imag.reshape(-1)]
                else:
                    parts.append(leaf.reshape(-1))
            out = torch.cat(parts) if len(parts) > 1 else parts[0]
            return out.to(flat.dtype) if flat.is_complex() else out.to(torch.float64)

        return values

    def residual_values(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        plan, values = self.plan(layout), self._residual_function(fun, layout, args)

        def evaluate(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return values(plan.to_device(x)).cpu().numpy()

        return evaluate

    def residual_jacobian(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray], np.ndarray]:
        plan, values = self.plan(layout), self._residual_function(fun, layout, args)
        forward = out_layout.n >= layout.n

        def jacobian(x: np.ndarray) -> np.ndarray:
            flat = plan.to_device(x)
            if forward:
                try:
                    return torch.func.jacfwd(values)(flat).detach().cpu().numpy()
                except RuntimeError:  # an operation without a forward-mode rule
                    pass
            flat = flat.requires_grad_(True)
            return _batched_rows(values(flat), flat, out_layout.n).detach().cpu().numpy()

        return jacobian

    def residual_jvp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        plan, values = self.plan(layout), self._residual_function(fun, layout, args)

        def jvp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            tangent = plan.to_device(np.asarray(v, dtype=np.float64))
            product = torch.func.jvp(values, (plan.to_device(x),), (tangent,))[1]
            return product.detach().cpu().numpy()

        return jvp

    def residual_vjp(
        self, fun: Callable, layout: Layout, args: tuple, out_layout: Layout
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        plan, values = self.plan(layout), self._residual_function(fun, layout, args)

        def vjp(x: np.ndarray, u: np.ndarray) -> np.ndarray:
            flat = plan.to_device(x).requires_grad_(True)
            out = values(flat)
            if not out.requires_grad:
                return np.zeros(plan.n)
            weights = torch.as_tensor(np.asarray(u, dtype=np.float64), device=out.device)
            (product,) = torch.autograd.grad(out, flat, weights, allow_unused=True)
            return np.zeros(plan.n) if product is None else product.detach().cpu().numpy()

        return vjp
