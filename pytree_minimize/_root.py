"""`root` for JAX (and NumPy) pytrees: the public entry point and its docstring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.optimize as sopt

from . import _root_driver
from ._jax_backend import JaxBackend
from ._tree import PyTree


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
    """Find a root of a vector function of a pytree with `scipy.optimize.root`.

    The arguments, their order and their defaults are scipy's; `x0` may be any pytree of
    floating-point arrays and `fun` may return any pytree with as many elements in all.

    Args:
        fun: `fun(x, *args)` returning an array or a pytree of arrays with as many elements as
            `x0` (method 'lm' also accepts more: it then solves in the least-squares sense).
        x0: Initial guess, a pytree of floating-point arrays. Never mutated.
        args: Extra arguments for `fun` (traced: new values never recompile).
        method: 'hybr', 'lm', 'broyden1', 'broyden2', 'anderson', 'linearmixing',
            'diagbroyden', 'excitingmixing', 'krylov' or 'df-sane'.
        jac: None: for 'hybr' and 'lm' the dense Jacobian from autodiff; for 'krylov' exact
            Jacobian-vector products in place of scipy's finite differences; the other
            methods use no Jacobian. True: `fun` returns `(residuals, jacobian)`. A callable
            `jac(x, *args)`. A Jacobian is the square matrix over the flat vectors (leaves
            raveled in optree order).
        tol: Tolerance, passed to scipy.
        callback: `callback(x, f)` with pytree `x` and `f` (every method but 'hybr' and 'lm',
            which scipy never calls back).
        options: Method options, passed to scipy. For 'krylov', `jac_options` are scipy's
            (`method`, `inner_maxiter`, `inner_M`, `outer_k`, `inner_*`).
        sparse: For 'krylov': True solves its inner linear systems with the sparse Jacobian
            (detected from the JAX program and coloured once, the `sparse` extra) in place of
            Jacobian-vector products; 'auto' and False keep the products. scipy's other root
            methods take a dense Jacobian or none (`sparse=True` is refused there; a large
            sparse system goes to `least_squares`).

    Returns:
        scipy's `OptimizeResult` with `x` a pytree like `x0` and `fun` a pytree shaped like
        `fun`'s output (NumPy leaves); the other fields as scipy reports them.

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import root
        >>> def equations(p):
        ...     return {"sum": p["a"] + p["b"] - 3.0, "product": p["a"] * p["b"] - 2.0}
        >>> sol = root(equations, {"a": 0.5, "b": 2.5})
        >>> round(float(sol.x["a"]), 6), round(float(sol.x["b"]), 6)
        (1.0, 2.0)
    """
    return _root_driver.root(
        JaxBackend(),  # one per call: it records x0's shardings
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
