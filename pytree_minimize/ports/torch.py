"""`minimize` for PyTorch: nested structures of tensors, derivatives from autograd.

`x0` is any nested structure of tensors (dict, list, tuple, namedtuple, OrderedDict) that optree
flattens; `fun(x, *args)` returns a 0-d tensor. Gradients come from autograd on one flat tensor
split into leaf views, Hessian-vector products from double backward, dense Hessians (dogleg,
trust-exact) from a vectorised backward over the gradient. Leaves keep their dtype and device
inside `fun` (float32 stays float32, a CUDA tensor stays on its GPU); the flat vector crosses
between host and device once per evaluation in each direction. Results are detached tensors
(`requires_grad=False`) of the dtype and device of the leaves of `x0`.

Fitting an `nn.Module`: optimise a dict of its parameters and evaluate the module functionally
with `torch.func.functional_call`, then write the solution back with :func:`load_into`::

    import torch
    from pytree_minimize.ports.torch import minimize, load_into, parameters_of

    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def loss(params, inputs, targets):
        predictions = torch.func.functional_call(model, params, (inputs,))
        return torch.nn.functional.mse_loss(predictions, targets)

    result = minimize(loss, parameters_of(model), args=(inputs, targets), method="L-BFGS-B")
    load_into(model, result.x)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import scipy.optimize as sopt

from .. import _driver
from .._global_optimize import global_optimizers
from .._tree import Bounds, PyTree
from ._common import require

require("torch", "torch", "PyTorch")

from ._torch_backend import TorchBackend  # noqa: E402

if TYPE_CHECKING:
    import torch as _torch

__all__ = [
    "Bounds",
    "basinhopping",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "load_into",
    "minimize",
    "parameters_of",
    "shgo",
]


def minimize(
    fun: Callable[..., Any],
    x0: PyTree,
    args: Any = (),
    method: str | Callable | None = None,
    jac: Any = None,
    hess: Any = None,
    hessp: Callable | None = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    *,
    progress: Any = False,
) -> sopt.OptimizeResult:
    """Minimise a scalar PyTorch function of a nested structure of tensors with any
    `scipy.optimize.minimize` method.

    The arguments and their order are scipy's and :func:`pytree_minimize.minimize`'s.

    Args:
        fun: `fun(x, *args) -> 0-d tensor`; `x` has the structure of `x0`, with tensors of the
            dtypes and devices of its leaves.
        x0: Initial guess: a nested structure of floating-point (or complex) tensors. Never
            mutated. Python floats and NumPy arrays are accepted as leaves (as CPU tensors inside
            `fun`).
        args: Extra arguments for `fun`, passed unchanged.
        method: A scipy method name; None chooses as scipy does.
        jac: None (autograd), True (`fun` returns `(value, gradient_structure)`), a callable
            returning a structure like `x`, or `'2-point'`, `'3-point'`, `'cs'`.
        hess: None (autograd where the method uses it), a callable returning the dense Hessian over
            the flat vector, a `HessianUpdateStrategy`, or a finite-difference scheme.
        hessp: None (autograd Hessian-vector products where the method uses them) or
            `hessp(x, p, *args)` returning a structure like `x`.
        bounds: `Bounds(lb, ub)` with bounds shaped like `x0` (or a prefix of it: a scalar bounds a
            whole subtree); for a single-tensor `x0` also scipy's `Bounds` or `(min, max)` pairs.
        constraints: scipy's constraint forms, with functions of the structure `x` returning
            tensors; their Jacobians come from autograd.
        tol: Tolerance, passed to scipy.
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` a structure of
            tensors.
        options: Method options, passed to scipy.
        progress: True for a tqdm progress bar, or a tqdm instance.

    Returns:
        scipy's `OptimizeResult`, with `x` and `jac` structured like `x0` (detached tensors of its
        leaves' dtypes and devices) and `history`.

    Examples:
        >>> import torch
        >>> from pytree_minimize.ports.torch import minimize
        >>> def f(p):
        ...     return ((p["w"] - 3.0) ** 2).sum() + (p["b"] + 1.0) ** 2
        >>> x0 = {"w": torch.zeros(2, dtype=torch.float64), "b": torch.tensor(0.0)}
        >>> res = minimize(f, x0, method="L-BFGS-B")
        >>> res.x["w"].round(decimals=4).tolist(), round(res.x["b"].item(), 4), res.x["b"].dtype
        ([3.0, 3.0], -1.0, torch.float32)
    """
    return _driver.minimize(
        TorchBackend(x0),
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        bounds=bounds,
        constraints=constraints,
        tol=tol,
        callback=callback,
        options=options,
        progress=progress,
    )


def parameters_of(module: _torch.nn.Module) -> dict[str, _torch.Tensor]:
    """The named parameters of `module` as a dict of detached copies: an `x0` for fitting it
    with `torch.func.functional_call`.

    Args:
        module: A `torch.nn.Module`.

    Returns:
        `{name: tensor}` for every parameter that requires a gradient, in registration order.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module; got {type(module).__name__}.")
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def load_into(module: _torch.nn.Module, x: Mapping[str, Any]) -> _torch.nn.Module:
    """Write a solution (for example `result.x`) into the parameters and buffers of `module`.

    Args:
        module: The `torch.nn.Module` whose parameters `x` names.
        x: `{name: tensor}` with names from `module.named_parameters()` (or its buffers).

    Returns:
        `module`, updated in place.

    Examples:
        >>> import torch
        >>> from pytree_minimize.ports.torch import load_into
        >>> layer = torch.nn.Linear(2, 1)
        >>> _ = load_into(layer, {"bias": torch.tensor([0.5])})
        >>> layer.bias.item()
        0.5
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module; got {type(module).__name__}.")
    if not isinstance(x, Mapping):
        raise TypeError(
            f"`x` must be a dict of tensors keyed by parameter name; got {type(x).__name__}. "
            "Optimise `parameters_of(module)` to get one."
        )
    targets: dict[str, torch.Tensor] = dict(module.named_parameters())
    targets.update(module.named_buffers())
    unknown = [name for name in x if name not in targets]
    if unknown:
        raise ValueError(
            f"`x` names {unknown}, which `module` has no parameter or buffer for; expected names "
            f"from {sorted(targets)}."
        )
    with torch.no_grad():
        for name, value in x.items():
            target = targets[name]
            value = torch.as_tensor(value)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"`x['{name}']` has shape {tuple(value.shape)}; the module's has "
                    f"{tuple(target.shape)}."
                )
            target.copy_(value)
    return module


# The global optimisers: one `TorchBackend` per call, made from the parameters' structure.
(
    differential_evolution,
    dual_annealing,
    basinhopping,
    shgo,
    direct,
) = global_optimizers(
    TorchBackend,
    leaves="PyTorch floating-point tensors",
    traceable=" of torch operations (vmappable for batched populations)",
    batched="evaluated in one `torch.func.vmap` call",
)
