"""Every method of `scipy.optimize.minimize` on nested pytrees, with derivatives from autodiff.

The public names are loaded on first use (PEP 562), so that `import pytree_minimize.ports.numpy`
or `.torch` never imports JAX: only the JAX entry points (and `argmin`) need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._argmin.argmin import Solution, argmin
    from ._constraints.linear import LinearConstraint
    from ._core.cache import clear_cache
    from ._core.closures import RecompileWarning
    from ._core.sparse import Sparsity, SparsityWarning
    from ._core.tree import Bounds
    from ._jax import (
        basinhopping,
        curve_fit,
        differential_evolution,
        direct,
        dual_annealing,
        least_squares,
        minimize,
        root,
        shgo,
    )
    from ._plot import plot_history
    from ._residual.curve_fit import standard_errors

#: Each public name and the module that defines it.
_SOURCES = {
    "Bounds": "._core.tree",
    "LinearConstraint": "._constraints.linear",
    "RecompileWarning": "._core.closures",
    "Solution": "._argmin.argmin",
    "argmin": "._argmin.argmin",
    "basinhopping": "._jax",
    "clear_cache": "._core.cache",
    "curve_fit": "._jax",
    "differential_evolution": "._jax",
    "direct": "._jax",
    "dual_annealing": "._jax",
    "least_squares": "._jax",
    "minimize": "._jax",
    "plot_history": "._plot",
    "root": "._jax",
    "shgo": "._jax",
    "standard_errors": "._residual.curve_fit",
    "Sparsity": "._core.sparse",
    "SparsityWarning": "._core.sparse",
}

__all__ = [
    "Bounds",
    "LinearConstraint",
    "RecompileWarning",
    "Solution",
    "Sparsity",
    "SparsityWarning",
    "argmin",
    "basinhopping",
    "clear_cache",
    "curve_fit",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "least_squares",
    "minimize",
    "plot_history",
    "root",
    "shgo",
    "standard_errors",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
