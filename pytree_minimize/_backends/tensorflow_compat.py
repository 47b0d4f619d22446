"""The private TensorFlow API this package uses, in one place: checked by `tests/test_compat.py`
against the installed TensorFlow, so that a change in TensorFlow fails a test loudly.

- `function_type_utils.canonicalize_function_inputs`, `FunctionType.unpack_inputs` and
  `ConcreteFunction._call_flat`: together they call a `tf.function`'s traced graph with its flat
  inputs, skipping the argument binding `tf.function` repeats in Python on every call (about
  110 us of the 190 one evaluation of a 1,000-element Rosenbrock takes).
- autograph's `ag_pass_through` attribute: an exception class that has it leaves a `tf.function`
  as itself. Without it autograph re-creates the exception from its message, which only works
  for classes with `Exception`'s own constructor; it turns any other into a `StagingError`. The
  package's structured errors (`_core.errors`) take keyword fields, so they need the attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf


def _canonicalize() -> Callable[..., Any] | None:
    try:
        from tensorflow.python.eager.polymorphic_function import function_type_utils
    except ImportError:
        return None
    return getattr(function_type_utils, "canonicalize_function_inputs", None)


_CANONICALIZE = _canonicalize()
#: Whether this TensorFlow has the private calls `flat_caller` needs (else ordinary calls).
AVAILABLE = _CANONICALIZE is not None


class InputsDoNotStartWithArrays(Exception):
    """The trace's flat inputs do not begin with the arrays (unusual `args`): call normally."""


def flat_caller(compiled: Any, arrays: tuple[np.ndarray, ...], args: tuple) -> Callable[..., Any]:
    """The concrete function `compiled` traced for `(*arrays, *args)`, as a call of arrays of
    the same dtypes and shapes alone: `args` are converted to the graph's flat inputs here,
    once.

    Raises:
        InputsDoNotStartWithArrays: the trace's flat inputs do not begin with the arrays.
    """
    if _CANONICALIZE is None:
        raise RuntimeError("flat_caller needs this TensorFlow's private calls (`AVAILABLE`)")
    concrete = compiled.get_concrete_function(*arrays, *args)
    bound = _CANONICALIZE((*arrays, *args), {}, concrete.function_type)
    flat = concrete.function_type.unpack_inputs(bound)
    count = len(arrays)
    if len(flat) < count or any(
        tuple(t.shape) != a.shape for t, a in zip(flat[:count], arrays, strict=False)
    ):
        raise InputsDoNotStartWithArrays
    rest, captured, run = list(flat[count:]), concrete.captured_inputs, concrete._call_flat
    if count == 1:
        return lambda x: run([tf.constant(x), *rest], captured)
    return lambda *arrays: run([*map(tf.constant, arrays), *rest], captured)


def passes_through_autograph(error_type: type[BaseException]) -> None:
    """Let exceptions of `error_type` raised while a `tf.function` traces leave it as
    themselves, their type and fields kept."""
    error_type.ag_pass_through = True  # type: ignore[attr-defined]
