"""scipy's own reading of its inputs, where `minimize` must behave exactly as scipy does.

The drop-in rule: where `scipy.optimize.minimize` accepts an input, do what scipy does. This module
alone knows which `x0` scipy reads as a 1-D array (a number, a flat list or tuple of numbers, an
integer array) and how it casts it, and it holds the picklable wrappers that hand a user's own
callables to scipy unchanged (scipy pickles the objective for `options={'workers': pool.map}`,
so nothing handed to scipy may be a local closure).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .scipy_compat import approx_derivative

_NUMBER_KINDS = "biuf"


def _is_real_number(value: Any) -> bool:
    """A Python or NumPy real number (bool and int included, complex not: complex parameters are
    this project's extension and keep pytree semantics)."""
    if isinstance(value, bool | int | float):
        return True
    return isinstance(value, np.generic | np.ndarray) and (
        value.ndim == 0 and value.dtype.kind in _NUMBER_KINDS
    )


def scipy_array(x0: Any) -> np.ndarray | None:
    """`x0` as scipy reads it, where scipy reads it as a 1-D array; None for a pytree.

    scipy runs `np.atleast_1d(np.asarray(x0))` and casts integer dtypes to float64. That array is
    what `fun` receives and what `res.x` is, so an `x0` of that kind becomes that array here too:
    a Python or NumPy real number (shape `(1,)`), a plain list or tuple of such numbers (not a
    namedtuple, and not nested: scipy refuses more than one dimension), and a NumPy array of
    integer or boolean dtype with at most one dimension. Floating NumPy scalars and 0-d arrays
    become shape `(1,)` as in scipy; floating arrays of one or more dimensions keep their dtype,
    as scipy keeps them. Everything else (dicts, ragged or nested sequences, framework tensors,
    complex values) is a pytree.
    """
    if type(x0) in (list, tuple):
        if not x0 or not all(_is_real_number(v) for v in x0):
            return None
    elif isinstance(x0, np.ndarray):
        if x0.ndim > 1 or x0.dtype.kind not in _NUMBER_KINDS:
            return None
        if x0.ndim == 1 and x0.dtype.kind == "f":
            return None  # already the array scipy would use; kept as the user's leaf
    elif not _is_real_number(x0):
        return None
    array = np.atleast_1d(np.asarray(x0))
    if array.dtype.kind in "biu":
        # scipy casts integers to float64; it leaves booleans alone and then fails on them, so
        # they get the same cast rather than an error from deep inside a method.
        array = array.astype(np.float64)
    else:
        array = array.copy()  # never alias (or later mutate) the caller's array
    return array


class BoundArgs:
    """`function(x, *args)` as a picklable callable of `x` alone: the user's function reaches
    scipy unchanged, with whatever it returns (a list, a sparse matrix, a complex value)."""

    __slots__ = ("args", "function")

    def __init__(self, function: Callable, args: tuple) -> None:
        self.function = function
        self.args = args

    def __call__(self, x: np.ndarray, *more: Any) -> Any:
        return self.function(x, *more, *self.args)


class RecordedObjective:
    """The user's objective, remembering real evaluations for `res.history`.

    A module-level class so that scipy can pickle it for `options={'workers': ...}` (a worker
    process records into its own copy, which is harmless: history is kept from the main
    process's evaluations and callbacks).
    """

    __slots__ = ("fun", "recorder", "returns_grad")

    def __init__(self, fun: Callable, recorder: Any, *, returns_grad: bool) -> None:
        self.fun = fun
        self.recorder = recorder
        self.returns_grad = returns_grad

    def __call__(self, x: np.ndarray, *args: Any) -> Any:
        out = self.fun(x, *args)
        if not np.iscomplexobj(x):  # complex-step points are not iterates
            # A malformed return is left for scipy to report, in its own words.
            with contextlib.suppress(TypeError, ValueError, IndexError):
                self._remember(x, out)
        return out

    def _remember(self, x: np.ndarray, out: Any) -> None:
        value, grad = (out[0], np.asarray(out[1])) if self.returns_grad else (out, None)
        if grad is not None and (grad.shape != np.shape(x) or grad.dtype.kind != "f"):
            grad = None
        self.recorder.remember(x, float(np.real(np.asarray(value)).reshape(-1)[0]), grad)


def warn_ignored_constraints(method: str) -> None:
    """scipy warns (RuntimeWarning) and ignores `constraints` given to a method without them."""
    warnings.warn(
        f"Method {method} cannot handle constraints. `constraints` are ignored, as scipy ignores "
        "them; use SLSQP, trust-constr, COBYLA or COBYQA to respect them.",
        RuntimeWarning,
        stacklevel=4,
    )


def warn_ignored_bounds(method: str) -> None:
    """scipy warns (RuntimeWarning) and ignores `bounds` given to a method that cannot use them."""
    warnings.warn(
        f"Method {method} cannot handle bounds. `bounds` are ignored, as scipy ignores them; use "
        "L-BFGS-B, TNC, SLSQP, trust-constr, Powell, Nelder-Mead, COBYLA or COBYQA to respect "
        "them.",
        RuntimeWarning,
        stacklevel=4,
    )


def is_flat_vector(layout: Any) -> bool:
    """True where `x0` is one real 1-D array: the flat vector itself, so a derivative may come
    back in any form scipy takes for it (a list, a scalar for one element, nested lists)."""
    if not layout.is_single_array:
        return False
    spec = layout.leaves[0]
    return len(spec.shape) == 1 and spec.dtype.kind == "f"


def flat_gradient(out: Any, n: int) -> np.ndarray | None:
    """A gradient as scipy reads it (`np.atleast_1d` of what `jac` returned: a list, a scalar
    for one element), or None where it is not an n-vector. Complex values (the complex step of
    `hess='cs'`) stay complex."""
    try:
        array = np.atleast_1d(np.asarray(out))
    except (TypeError, ValueError):
        return None
    if array.shape != (n,) or array.dtype.kind not in "biufc":
        return None
    return array if array.dtype.kind in "fc" else array.astype(np.float64)


def flat_matrix(out: Any, m: int, n: int) -> np.ndarray | None:
    """An (m, n) matrix given as scipy takes it (nested lists, or one row as a flat list), or
    None where it is not one."""
    if not isinstance(out, list | tuple):
        return None
    try:
        array = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.shape == (m, n):
        return array
    if array.size == m * n and array.ndim <= 2 and (m == 1 or n == 1):
        return array.reshape(m, n)
    return None


def is_host_scalar(leaf: Any) -> bool:
    """A Python or NumPy scalar leaf, which a complex-step point passes on as a 0-d complex array
    (its own type would drop the step)."""
    return isinstance(leaf, bool | int | float | complex | np.generic)


class GradientDifferences:
    """The dense Hessian as scipy's forward differences of a gradient (what scipy computes for
    `hess='2-point'`), for methods that take only a callable Hessian (dogleg, trust-exact).
    `value_and_grad(x)` returns `(value, gradient)` over the flat vector."""

    __slots__ = ("rel_step", "value_and_grad")

    def __init__(self, value_and_grad: Callable, rel_step: float) -> None:
        self.value_and_grad = value_and_grad
        self.rel_step = rel_step

    def __call__(self, x: np.ndarray) -> np.ndarray:
        def gradient(y: np.ndarray) -> np.ndarray:
            return np.asarray(self.value_and_grad(y)[1], dtype=np.float64)

        x = np.asarray(x, dtype=np.float64)
        # scipy's step rule, `rel_step * max(1, |x|)` signed like x, with the relative step of the
        # least precise leaf (scipy's own `rel_step` would scale by |x| alone, zero at x = 0).
        step = self.rel_step * np.where(x >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(x))
        hessian = np.atleast_2d(approx_derivative(gradient, x, method="2-point", abs_step=step))
        return 0.5 * (hessian + hessian.T)  # symmetric, as the methods expect


_INT32 = np.iinfo(np.int32)


def is_wide_int(value: Any) -> bool:
    """A Python int that a traced argument could not hold (outside int32, JAX's default integer;
    beyond int64 no dtype holds it). Such an argument stays a static Python object, as scipy
    passes it: it is never converted, so it never overflows (a new value recompiles)."""
    return type(value) is int and not (_INT32.min <= value <= _INT32.max)
