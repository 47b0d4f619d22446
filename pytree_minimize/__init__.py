"""Every method of `scipy.optimize.minimize` on nested pytrees, with derivatives from autodiff."""

from ._argmin import Solution, argmin
from ._cache import clear_cache
from ._global_optimize import basinhopping, differential_evolution, direct, dual_annealing, shgo
from ._linear_constraint import LinearConstraint
from ._minimize import minimize
from ._plot import plot_history
from ._tree import Bounds

__all__ = [
    "Bounds",
    "LinearConstraint",
    "Solution",
    "argmin",
    "basinhopping",
    "clear_cache",
    "differential_evolution",
    "direct",
    "dual_annealing",
    "minimize",
    "plot_history",
    "shgo",
]
__version__ = "0.1.0"
