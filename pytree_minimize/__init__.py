"""Every method of `scipy.optimize.minimize` on nested pytrees, with derivatives from autodiff."""

from ._argmin import Solution, argmin
from ._cache import clear_cache
from ._curve_fit import curve_fit, standard_errors
from ._global_optimize import basinhopping, differential_evolution, direct, dual_annealing, shgo
from ._least_squares import least_squares
from ._linear_constraint import LinearConstraint
from ._minimize import minimize
from ._plot import plot_history
from ._root import root
from ._sparse import Sparsity, SparsityWarning
from ._tree import Bounds

__all__ = [
    "Bounds",
    "LinearConstraint",
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
