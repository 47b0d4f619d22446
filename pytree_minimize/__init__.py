"""Every method of `scipy.optimize.minimize` on nested pytrees, with derivatives from autodiff."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._argmin import Solution, argmin
    from ._cache import clear_cache
    from ._curve_fit import curve_fit, standard_errors
    from ._global_optimize import (
        basinhopping,
        differential_evolution,
        direct,
        dual_annealing,
        shgo,
    )
    from ._least_squares import least_squares
    from ._linear_constraint import LinearConstraint
    from ._minimize import minimize
    from ._plot import plot_history
    from ._root import root
    from ._tree import Bounds

#: Each public name and the module that defines it. Loaded on first use, so that the parts of the
#: package that need no JAX (`pytree_minimize.compat.dict_minimize.numpy_api`, `.torch_api`,
#: `.tensorflow_api`) do not import it.
_SOURCES = {
    "Bounds": "._tree",
    "LinearConstraint": "._linear_constraint",
    "Solution": "._argmin",
    "argmin": "._argmin",
    "basinhopping": "._global_optimize",
    "clear_cache": "._cache",
    "curve_fit": "._curve_fit",
    "differential_evolution": "._global_optimize",
    "direct": "._global_optimize",
    "dual_annealing": "._global_optimize",
    "least_squares": "._least_squares",
    "minimize": "._minimize",
    "plot_history": "._plot",
    "root": "._root",
    "shgo": "._global_optimize",
    "standard_errors": "._curve_fit",
}

__all__ = [
    "Bounds",
    "LinearConstraint",
    "Solution",
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
