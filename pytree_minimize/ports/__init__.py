"""`minimize` for PyTorch, TensorFlow and NumPy users, over their own nested structures.

Each port has the signature of :func:`pytree_minimize.minimize` and plugs its framework's autodiff
into the same driver and flat layout; switching is a change of import::

    from pytree_minimize.ports.torch import minimize
    from pytree_minimize.ports.tensorflow import minimize
    from pytree_minimize.ports.numpy import minimize

Each port also has `least_squares`, `curve_fit` and `root`, with Jacobians from its framework's
autodiff (NumPy: from the user or scipy's finite differences).

The ports are imported lazily: `import pytree_minimize.ports` imports neither torch nor TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["numpy", "tensorflow", "torch"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
