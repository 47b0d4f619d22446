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

import numpy as np
import scipy.optimize as sopt

from .. import _curve_fit_driver, _driver, _least_squares_driver, _root_driver
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
    blas_threads: int | str | None = "auto",
    sparse: bool | str = "auto",
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
        method: A scipy method name, or 'ipopt' (IPOPT, the `ipopt` extra: dense constraint
            Jacobians, limited-memory Hessian); None chooses as scipy does.
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
        blas_threads: BLAS threads while scipy iterates. 'auto' holds BLAS to one thread for
            the methods that only update vectors (L-BFGS-B, CG, TNC, Newton-CG, trust-ncg,
            trust-krylov, Nelder-Mead, Powell, COBYLA), where threaded BLAS calls wait on cores
            held by other thread pools, and leaves it alone for methods with dense matrices; an
            int holds it to that many threads; None leaves it alone.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False use
            dense derivatives, True is refused (sparse derivatives need the JAX core).

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
        blas_threads=blas_threads,
        sparse=sparse,
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

# ---------------------------------------------------------------------------------------------
# least_squares, curve_fit and root: the drivers of `pytree_minimize`, with
# Jacobians from autograd.


def least_squares(
    fun: Callable[..., Any],
    x0: PyTree,
    jac: Any = None,
    bounds: Any = (-np.inf, np.inf),
    method: str = "trf",
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: Any = "linear",
    f_scale: float = 1.0,
    diff_step: Any = None,
    tr_solver: str | None = None,
    tr_options: dict | None = None,
    jac_sparsity: Any = None,
    max_nfev: int | None = None,
    verbose: int = 0,
    args: Any = (),
    kwargs: dict | None = None,
    callback: Callable | None = None,
    workers: Any = None,
    *,
    progress: Any = False,
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Solve a nonlinear least-squares problem over a nested structure of tensors with
    `scipy.optimize.least_squares`; see :func:`pytree_minimize.least_squares`.

    Args:
        fun: `fun(x, *args, **kwargs)` returning the residuals as tensors or a nested
            structure of them; `x` has the structure of `x0`.
        x0: Initial guess, a nested structure of tensors of floating-point tensors. Never mutated.
        jac: None (autograd: dense, or matrix-free with `tr_solver='lsmr'`), a finite-difference
            scheme, or a callable returning the m-by-n Jacobian over the flat vectors.
        bounds: `Bounds(lb, ub)`, scipy's `Bounds` or a pair `(lb, ub)`, each side a scalar or
            a structure like `x0` (or a prefix of it).
        method: 'trf', 'dogbox' or 'lm'.
        ftol, xtol, gtol, loss, f_scale, diff_step, tr_solver, tr_options, jac_sparsity,
            max_nfev, verbose, workers: As scipy's.
        x_scale: None, 'jac', a positive scalar or a structure like `x0` (or a prefix of it).
        args, kwargs: Extra arguments for `fun`.
        callback: `callback(intermediate_result)` or `callback(xk)`, with `x` like `x0`.
        progress: True for a tqdm progress bar, or a tqdm instance.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False use
            a dense Jacobian, True is refused (sparse Jacobians need the JAX core).

    Returns:
        scipy's `OptimizeResult`: `x`, `grad` and `active_mask` structured like `x0`, `fun`
        like the residuals (NumPy arrays), `jac` over the flat vectors, and scipy's fields.


    Examples:
        >>> import torch
        >>> from pytree_minimize.ports.torch import least_squares
        >>> def f64(v):
        ...     return torch.tensor(v, dtype=torch.float64)
        >>> t = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
        >>> def residuals(p):
        ...     return p["amp"] * torch.exp(-p["rate"] * t) - 2.0 * torch.exp(-3.0 * t)
        >>> res = least_squares(residuals, {"amp": f64(1.0), "rate": f64(1.0)})
        >>> round(res.x["amp"].item(), 4), round(res.x["rate"].item(), 4)
        (2.0, 3.0)
    """
    return _least_squares_driver.least_squares(
        TorchBackend(x0),
        fun,
        x0,
        jac=jac,
        bounds=bounds,
        method=method,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        x_scale=x_scale,
        loss=loss,
        f_scale=f_scale,
        diff_step=diff_step,
        tr_solver=tr_solver,
        tr_options=tr_options,
        jac_sparsity=jac_sparsity,
        max_nfev=max_nfev,
        verbose=verbose,
        args=args,
        kwargs=kwargs,
        callback=callback,
        workers=workers,
        progress=progress,
        sparse=sparse,
    )


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: PyTree,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool | None = None,
    bounds: Any = (-np.inf, np.inf),
    method: str | None = None,
    jac: Any = None,
    *,
    full_output: bool = False,
    nan_policy: str | None = None,
    **kwargs: Any,
) -> tuple:
    """Fit `f(xdata, params)` with `scipy.optimize.curve_fit`, `params` being a nested
    structure of tensors;
    see :func:`pytree_minimize.curve_fit`.

    Args:
        f: `f(xdata, params)` returning the model at `xdata` as tensors.
        xdata: The independent variable, passed to `f` as it is.
        ydata: The dependent data, m values.
        p0: Initial parameters, a nested structure of tensors of floating-point tensors (required).
        sigma, absolute_sigma, check_finite, method, full_output, nan_policy: As scipy's.
        bounds: `Bounds(lb, ub)`, scipy's `Bounds` or `(lb, ub)`, sides like `p0` or prefixes.
        jac: None (autograd), a finite-difference scheme, or `jac(xdata, params)`.
        **kwargs: Passed to scipy's `leastsq` or `least_squares`.

    Returns:
        `(popt, pcov)` (plus scipy's `infodict, mesg, ier` with `full_output=True`): `popt`
        structured like `p0`, `pcov` n-by-n over the flat vector;
        `pytree_minimize.standard_errors(pcov, popt)` gives errors structured like `p0`.


    Examples:
        >>> import torch
        >>> from pytree_minimize.ports.torch import curve_fit
        >>> def f64(v):
        ...     return torch.tensor(v, dtype=torch.float64)
        >>> x = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
        >>> def model(x, p):
        ...     return p["slope"] * x + p["intercept"]
        >>> p0 = {"slope": f64(0.0), "intercept": f64(0.0)}
        >>> popt, pcov = curve_fit(model, x, 3.0 * x.numpy() + 1.0, p0)
        >>> round(popt["slope"].item(), 6), round(popt["intercept"].item(), 6), pcov.shape
        (3.0, 1.0, (2, 2))
    """
    return _curve_fit_driver.curve_fit(
        TorchBackend(p0),
        f,
        xdata,
        ydata,
        p0,
        sigma=sigma,
        absolute_sigma=absolute_sigma,
        check_finite=check_finite,
        bounds=bounds,
        method=method,
        jac=jac,
        full_output=full_output,
        nan_policy=nan_policy,
        **kwargs,
    )


def root(
    fun: Callable[..., Any],
    x0: PyTree,
    args: Any = (),
    method: str = "hybr",
    jac: Any = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
    *,
    sparse: bool | str = "auto",
) -> sopt.OptimizeResult:
    """Find a root of a vector function of a nested structure of tensors with `scipy.optimize.root`
    (any of its ten methods); see :func:`pytree_minimize.root`.

    Args:
        fun: `fun(x, *args)` returning tensors (or a structure of them) with as many
            elements as `x0`.
        x0: Initial guess, a nested structure of tensors of floating-point tensors. Never mutated.
        args: Extra arguments for `fun`.
        method: Any scipy root method ('hybr', 'lm', 'broyden1', 'broyden2', 'anderson',
            'linearmixing', 'diagbroyden', 'excitingmixing', 'krylov', 'df-sane').
        jac: None (autograd: dense for 'hybr' and 'lm', exact products for 'krylov'), True,
            or a callable returning the Jacobian over the flat vectors.
        tol, options: As scipy's.
        callback: `callback(x, f)` with `x` and `f` structured like `x0` and `fun`'s output.
        sparse: 'auto', True or False. This port detects no sparsity: 'auto' and False keep
            scipy's forms, True is refused (sparse Jacobians need the JAX core).

    Returns:
        scipy's `OptimizeResult` with `x` structured like `x0` and `fun` like `fun`'s output.


    Examples:
        >>> import torch
        >>> from pytree_minimize.ports.torch import root
        >>> def f64(v):
        ...     return torch.tensor(v, dtype=torch.float64)
        >>> def equations(p):
        ...     return [p["a"] + p["b"] - 3.0, p["a"] * p["b"] - 2.0]
        >>> sol = root(equations, {"a": f64(0.5), "b": f64(2.5)})
        >>> round(sol.x["a"].item(), 6), round(sol.x["b"].item(), 6)
        (1.0, 2.0)
    """
    return _root_driver.root(
        TorchBackend(x0),
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        tol=tol,
        callback=callback,
        options=options,
        sparse=sparse,
    )
