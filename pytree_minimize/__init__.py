"""Every method of `scipy.optimize.minimize` on nested pytrees, with derivatives from autodiff."""

from ._minimize import minimize
from ._tree import Bounds

__all__ = ["Bounds", "minimize"]
__version__ = "0.1.0"
