"""`scipy.optimize` for NumPy: nested structures of arrays, gradients from the user or from scipy.

There is no autodiff. Give the gradient as scipy (and dict_minimize) take it: `jac=True` with
`fun(x, *args)` returning `(value, gradient)` where `gradient` is shaped like `x`, or a callable
`jac(x, *args)` returning a structure like `x`. With `jac=None` gradient methods use scipy's
finite differences, as scipy does. Second-order methods take `hess` (dense over the flat vector)
or `hessp(x, p, *args)`; constraint Jacobians come from finite differences.

The module replaces `scipy.optimize` itself: `from pytree_minimize.ports import numpy as
optimize` works for code written against `scipy.optimize`. The nine entry points, `Bounds` and
`LinearConstraint` are this library's (scipy's calls mean what they mean in scipy; pytrees
where scipy takes none); every other public name of `scipy.optimize` is scipy's own object.
"""

from __future__ import annotations

from typing import Any

import scipy.optimize as _scipy_optimize

from .._backends.numpy import NumpyBackend
from .._constraints.linear import LinearConstraint
from .._core.surface import Framework, build
from .._core.tree import Bounds
from .._global import api as _global
from .._minimize import api as _minimize
from .._residual import api as _residual

__all__ = [
    "Bounds",
    "LinearConstraint",
    "basinhopping",
    "curve_fit",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "least_squares",
    "minimize",
    "root",
    "shgo",
]

NUMPY = Framework(
    module=__name__,
    backend=NumpyBackend,
    words={
        "framework": "NumPy",
        "tree": "nested structure of arrays",
        "leaves": "floating-point (or complex) NumPy arrays or Python floats",
        "code": "NumPy code, called as it is",
        "derivatives": (
            "the user (`jac=True`, a `jac` callable, `hess`, `hessp`) or scipy's finite "
            "differences: this port has no autodiff"
        ),
        "args": "passed unchanged",
        "jac_none": (
            "scipy's finite differences; Newton-CG, dogleg and the trust-region methods need `jac`"
        ),
        "hess_none": (
            "scipy's default; dogleg and the trust-region methods need `hess` or `hessp`, or "
            "`jac=True` (the Hessian is then differenced from the user's gradient)"
        ),
        "hessp_none": "none",
        "constraint_derivatives": "come from finite differences unless given",
        "jacobian_none": "scipy's '2-point' finite differences, as scipy's default",
        "root_jacobian_none": ("scipy's finite differences where the method uses a Jacobian"),
        "ipopt_derivatives": ("finite-difference constraint Jacobians, a limited-memory Hessian"),
        "sparse_support": (
            "This port has no derivatives to make sparse: 'auto' and False keep scipy's forms, True"
            " is refused (sparse derivatives need the JAX core)."
        ),
        "result_leaves": "NumPy arrays (or Python floats) like its leaves",
        "batched": (
            "evaluated in one call of `func` when `vectorized=True` (then `func` takes the "
            "whole population, every leaf with a leading axis of S members, and returns S "
            "values); otherwise member by member"
        ),
        "module": __name__,
        "import": "import numpy as np",
        "tensor": "np.asarray",
        "sum": "np.sum",
        "exp": "np.exp",
        "cos": "np.cos",
    },
)

minimize = build(_minimize.MINIMIZE, NUMPY)
least_squares = build(_residual.LEAST_SQUARES, NUMPY)
curve_fit = build(_residual.CURVE_FIT, NUMPY)
root = build(_residual.ROOT, NUMPY)
differential_evolution = build(_global.DIFFERENTIAL_EVOLUTION, NUMPY)
dual_annealing = build(_global.DUAL_ANNEALING, NUMPY)
basinhopping = build(_global.BASINHOPPING, NUMPY)
shgo = build(_global.SHGO, NUMPY)
direct = build(_global.DIRECT, NUMPY)


def __getattr__(name: str) -> Any:
    """Every other public name of `scipy.optimize`: scipy's own object."""
    if name in _scipy_optimize.__all__:
        return getattr(_scipy_optimize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_scipy_optimize.__all__})
