"""`minimize` for JAX (and NumPy) pytrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.optimize as sopt

from . import _driver
from ._jax_backend import JaxBackend
from ._tree import PyTree


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
    """Minimise a scalar JAX function of a pytree with any `scipy.optimize.minimize` method.

    The arguments and their order are scipy's; `x0` may be any pytree of floating-point arrays
    (dict, list, tuple, namedtuple, None subtrees, equinox Modules, registered dataclasses).
    Derivatives come from autodiff, compiled once with `jax.jit` and cached across calls.

    Args:
        fun: `fun(x, *args) -> scalar`, JAX-traceable; `x` has `x0`'s structure.
        x0: Initial guess, a pytree of floating-point (or complex) arrays. Never mutated.
        args: Extra arguments for `fun` (traced: new values never recompile).
        method: A scipy method name, or 'ipopt' (IPOPT, the `ipopt` extra: exact sparse
            constraint Jacobians and Lagrangian Hessians); None chooses as scipy does (SLSQP
            with constraints, L-BFGS-B with bounds, BFGS otherwise).
        jac: None (autodiff), True (`fun` returns `(value, grad_pytree)`), a callable returning
            a pytree like `x`, or `'2-point'`, `'3-point'`, `'cs'`.
        hess: None (autodiff where the method uses it), a callable returning the dense Hessian
            over the flat vector, a `HessianUpdateStrategy`, or a finite-difference scheme.
        hessp: None (autodiff Hessian-vector products where the method uses them) or
            `hessp(x, p, *args)` returning a pytree like `x`.
        bounds: `pytree_minimize.Bounds(lb, ub)` with pytree (or prefix, or scalar) bounds; for a
            single-array `x0` also scipy's `Bounds` or `(min, max)` pairs.
        constraints: scipy's forms (dicts, `NonlinearConstraint`, `LinearConstraint` for a
            single-array `x0`) with functions of the pytree `x`, or
            `pytree_minimize.LinearConstraint(fun, lb, ub)` for a function linear in `x`; one
            or a list. Jacobians and constraint Hessians come from autodiff.
        tol: Tolerance, passed to scipy.
        callback: `callback(intermediate_result)` or `callback(xk)`, with pytree `x`.
        options: Method options, passed to scipy.
        progress: True for a tqdm progress bar, or a tqdm instance.
        blas_threads: BLAS threads while scipy iterates. 'auto' holds BLAS to one thread for
            the methods that only update vectors (L-BFGS-B, CG, TNC, Newton-CG, trust-ncg,
            trust-krylov, Nelder-Mead, Powell, COBYLA), where threaded BLAS calls wait on cores
            held by other thread pools, and leaves it alone for methods with dense matrices; an
            int holds it to that many threads; None leaves it alone.
        sparse: Sparse derivatives, their pattern detected from the JAX program and coloured
            once per compiled problem (the `sparse` extra, asdex). 'auto' makes a derivative
            sparse where its dense matrix would hold more than 10^6 entries (trust-constr's
            constraint Jacobians, IPOPT's Jacobians and Hessians); True makes every derivative
            the method can take sparse (trust-constr's Hessians too, in place of products);
            False keeps them dense. A pattern that cannot be detected falls back to dense with
            one `SparsityWarning` naming the operation.

    Returns:
        scipy's `OptimizeResult`, with `x` and `jac` shaped, typed and placed like `x0`,
        `history` (per-iteration `fun`, `time` and, for gradient methods, `grad_norm`) and, for
        SLSQP and trust-constr with constraints, `constraint_multipliers` (one pytree per
        constraint, shaped like its output); with `bounds`, `active_bounds` (a pytree like `x0`
        of int8: -1 at the lower bound, 0 free, +1 at the upper bound); where a derivative
        was sparse, `sparsity` (its `Sparsity` pattern, nonzeros and colours, by argument:
        'hess', 'constraints[0].jac', ...). IPOPT's results also carry `bound_multipliers`
        (a pytree like `x0`).

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import minimize
        >>> def f(p):
        ...     return jnp.sum((p["w"] - 3.0) ** 2) + (p["b"] + 1.0) ** 2
        >>> res = minimize(f, {"w": jnp.zeros(2), "b": jnp.array(0.0)}, method="L-BFGS-B")
        >>> [round(float(v), 4) for v in res.x["w"]], round(float(res.x["b"]), 4)
        ([3.0, 3.0], -1.0)
    """
    return _driver.minimize(
        JaxBackend(),  # one per call: it records x0's shardings
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
