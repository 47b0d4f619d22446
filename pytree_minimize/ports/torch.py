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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._backends.common import require
from .._core.surface import Framework, build
from .._core.tree import Bounds
from .._global import api as _global
from .._minimize import api as _minimize
from .._residual import api as _residual

require("torch", "torch", "PyTorch")

from .._backends.torch import TorchBackend  # noqa: E402

if TYPE_CHECKING:
    import torch as _torch

__all__ = [
    "Bounds",
    "basinhopping",
    "curve_fit",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "least_squares",
    "load_into",
    "minimize",
    "parameters_of",
    "root",
    "shgo",
]

TORCH = Framework(
    module=__name__,
    backend=TorchBackend,
    words={
        "framework": "PyTorch",
        "tree": "nested structure of tensors",
        "leaves": (
            "floating-point (or complex) tensors (Python floats and NumPy arrays become CPU "
            "tensors inside the function)"
        ),
        "code": "written with torch operations on the tensors of `x` (differentiated by autograd)",
        "derivatives": "autograd, with tensors kept on their device",
        "args": "passed unchanged",
        "jac_none": "autograd",
        "hess_none": (
            "autograd where the method uses it: a dense Hessian for dogleg and trust-exact, "
            "Hessian-vector products (double backward) for the others"
        ),
        "hessp_none": "autograd Hessian-vector products where the method uses them",
        "constraint_derivatives": "come from autograd unless given",
        "jacobian_none": (
            "autograd: the dense Jacobian, forward mode when there are at least as many "
            "residuals as parameters, else reverse mode; with `tr_solver='lsmr'` a matrix-free "
            "`LinearOperator` from Jacobian-vector products"
        ),
        "root_jacobian_none": (
            "for 'hybr' and 'lm' the dense Jacobian from autograd; for 'krylov' exact "
            "Jacobian-vector products in place of scipy's finite differences; the other "
            "methods use no Jacobian"
        ),
        "ipopt_derivatives": ("dense constraint Jacobians from autograd, a limited-memory Hessian"),
        "sparse_support": (
            "This port detects no sparsity: 'auto' and False keep dense derivatives, True is "
            "refused (sparse derivatives need the JAX core)."
        ),
        "result_leaves": "detached tensors of its leaves' dtypes and devices",
        "batched": "evaluated in one call of `torch.func.vmap` over the members",
        "module": __name__,
        "import": "import torch",
        "tensor": "torch.asarray",
        "sum": "torch.sum",
        "exp": "torch.exp",
        "cos": "torch.cos",
    },
)

minimize = build(_minimize.MINIMIZE, TORCH)
least_squares = build(_residual.LEAST_SQUARES, TORCH)
curve_fit = build(_residual.CURVE_FIT, TORCH)
root = build(_residual.ROOT, TORCH)
differential_evolution = build(_global.DIFFERENTIAL_EVOLUTION, TORCH)
dual_annealing = build(_global.DUAL_ANNEALING, TORCH)
basinhopping = build(_global.BASINHOPPING, TORCH)
shgo = build(_global.SHGO, TORCH)
direct = build(_global.DIRECT, TORCH)


def parameters_of(module: _torch.nn.Module) -> dict[str, _torch.Tensor]:
    """The named parameters of `module` as a dict of detached copies: an `x0` for fitting it
    with `torch.func.functional_call`.

    Args:
        module: A `torch.nn.Module`.

    Returns:
        `{name: tensor}` for every parameter that requires a gradient, in registration order.

    Examples:
        >>> import torch
        >>> from pytree_minimize.ports.torch import parameters_of
        >>> x0 = parameters_of(torch.nn.Linear(3, 1))
        >>> {name: tuple(tensor.shape) for name, tensor in x0.items()}
        {'weight': (1, 3), 'bias': (1,)}
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
