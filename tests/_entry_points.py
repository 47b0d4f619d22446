"""Every entry point that takes `minimize`'s arguments, each with a way to make a 1-d float64
start and a sum-of-squares objective in its framework, for tests of shared behaviour."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest


class EntryPoint(NamedTuple):
    name: str
    #: `minimize(fun, x0, **kwargs)` returning an object with `.x`.
    minimize: Callable[..., Any]
    #: A 1-d float64 array in the framework's own type.
    array: Callable[[np.ndarray], Any]
    #: `sum(x ** 2)` in the framework (for the NumPy port, with its gradient: `jac=True`).
    sum_of_squares: Callable[[Any], Any]
    #: Extra keyword arguments the entry point needs with that objective.
    extra: dict
    #: The framework's values back to NumPy.
    to_numpy: Callable[[Any], np.ndarray]


def _jax() -> EntryPoint:
    import jax.numpy as jnp

    from pytree_minimize import minimize

    return EntryPoint("jax", minimize, np.array, lambda x: jnp.sum(x**2), {}, np.asarray)


def _argmin() -> EntryPoint:
    import jax.numpy as jnp

    from pytree_minimize import argmin

    def run(fun: Callable, x0: Any, **kwargs: Any) -> Any:
        return argmin(fun, jnp.asarray(x0, dtype=jnp.float32), **kwargs)

    return EntryPoint("argmin", run, np.array, lambda x: jnp.sum(x**2), {}, np.asarray)


def _torch() -> EntryPoint:
    import torch

    from pytree_minimize.ports.torch import minimize

    return EntryPoint(
        "torch",
        minimize,
        lambda a: torch.tensor(a, dtype=torch.float64),
        lambda x: (x**2).sum(),
        {},
        lambda t: t.detach().cpu().numpy(),
    )


def _tensorflow() -> EntryPoint:
    import tensorflow as tf

    from pytree_minimize.ports.tensorflow import minimize

    return EntryPoint(
        "tensorflow",
        minimize,
        lambda a: tf.constant(a, dtype=tf.float64),
        lambda x: tf.reduce_sum(x**2),
        {},
        lambda t: np.asarray(t),
    )


def _numpy() -> EntryPoint:
    from pytree_minimize.ports.numpy import minimize

    return EntryPoint(
        "numpy",
        minimize,
        np.array,
        lambda x: (float(np.sum(x**2)), 2.0 * x),
        {"jac": True},
        np.asarray,
    )


_MAKERS = {
    "jax": (_jax, None),
    "argmin": (_argmin, None),
    "torch": (_torch, "torch"),
    "tensorflow": (_tensorflow, "tensorflow"),
    "numpy": (_numpy, None),
}
NAMES = tuple(_MAKERS)


def entry_point(name: str) -> EntryPoint:
    """The entry point `name`, skipping the test where its framework is not installed."""
    maker, module = _MAKERS[name]
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    return maker()
