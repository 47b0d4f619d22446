"""dict_minimize's `minimize`, one module per framework, each a change of import away:

    from pytree_minimize.compat.dict_minimize.numpy_api import minimize
    from pytree_minimize.compat.dict_minimize.torch_api import minimize
    from pytree_minimize.compat.dict_minimize.tensorflow_api import minimize
    from pytree_minimize.compat.dict_minimize.jax_api import minimize

Each has dict_minimize's signature, `minimize(fun, x0_dict, *, lb_dict=None, ub_dict=None,
args=(), method=None, tol=None, callback=None, options=None)`, and its behaviour: `fun(x, *args)`
returns `(value, gradient_dict)` and is called eagerly with the framework's own tensors (never
traced by `jax.jit` or `tf.function`), `callback(x)` receives the current dictionary alone for
every method (trust-constr included), and the result is an `OrderedDict` like `x0_dict`. The
iterations are scipy's on the same flat vector dict_minimize builds (the keys in order), run by
this library's driver; the solution also carries the driver's full result as `optimize_result`
(`fun`, `nit`, `message`, `history`, ...).

The modules are imported lazily: importing this package imports no framework, and the NumPy
module imports neither JAX, PyTorch nor TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["jax_api", "numpy_api", "tensorflow_api", "torch_api"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
