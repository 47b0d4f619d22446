"""The recent evaluations behind `history`: what scipy's callbacks do not report.

Some methods call back with `x` alone, or with an earlier iterate after rejecting a trial point;
this module alone knows how to find `fun` and the gradient at that `x` from the evaluations the
flat callables made, in O(1) per evaluation and without keeping vectors scipy does not keep.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np


class Recorder:
    """Remembers the latest few evaluations, so history has `fun` and the gradient norm at the
    iterate for methods whose callback reports only `x`. A single "latest" is not enough: after
    rejecting a trial point, trust-region methods call back at the previous iterate.

    The bookkeeping costs O(1) per evaluation and holds no vector scipy does not hold: an
    evaluation is known by a fingerprint of `x` (a few sampled elements, see `_fingerprint`),
    told apart further by `fun` where the callback reports it, and only the latest keeps its
    gradient (the array scipy keeps too: holding one more would also keep the evaluation's
    output buffer from being reused, which cost 15% per evaluation at n = 100,000). Methods that
    report an earlier evaluation as the iterate without its gradient (`keep_two`, the method
    table's `reports_earlier_iterate`: trust-region methods after rejecting a trial point) keep
    the latest two.
    """

    __slots__ = ("_gradients", "_recent", "fun", "grad")

    def __init__(self, *, keep_two: bool = False) -> None:
        self._gradients = 2 if keep_two else 1
        self.fun: Any = np.nan
        self.grad: np.ndarray | None = None
        self._recent: collections.deque[list[Any]] = collections.deque(maxlen=4)

    def _append(self, x: np.ndarray, fun: Any, grad: np.ndarray | None) -> None:
        if len(self._recent) >= self._gradients:
            self._recent[-self._gradients][2] = None  # older gradients are not kept alive
        self._recent.append([_fingerprint(x), fun, grad])

    def remember(self, x: np.ndarray, fun: Any, grad: np.ndarray | None) -> None:
        self.fun, self.grad = fun, grad
        self._append(x, fun, grad)

    def _entry(self, x: np.ndarray, fun: Any = None) -> list[Any] | None:
        key = _fingerprint(x)
        matches = [entry for entry in reversed(self._recent) if entry[0] == key]
        for entry in matches:
            if fun is None or entry[1] == fun:
                return entry
        return matches[0] if matches else None

    def iterate(self, x: np.ndarray, fun: Any, grad: Any) -> tuple[Any, np.ndarray | None]:
        """`(fun, grad)` at the iterate `x` of a callback, taking what the callback lacks from
        the evaluation at `x` (else from the latest one), and keeping `x` among the recent
        evaluations: a trust-region method may report it again after rejecting a trial point."""
        entry = self._entry(x, fun)
        seen = entry if entry is not None else [None, self.fun, self.grad]
        fun = seen[1] if fun is None else fun
        grad = seen[2] if grad is None else grad
        if entry is None or entry is not self._recent[-1]:
            self._append(x, fun, grad)
        return fun, grad

    def value(self, evaluate: Callable) -> Callable:
        def recorded(x: np.ndarray) -> Any:
            value = evaluate(x)
            if not np.iscomplexobj(x):  # complex-step points (jac='cs') are not iterates
                self.remember(x, value, None)
            return value

        return recorded

    def gradient(self, evaluate: Callable) -> Callable:
        def recorded(x: np.ndarray) -> np.ndarray:
            grad = evaluate(x)
            entry = self._entry(x)
            if entry is None or entry is not self._recent[-1]:
                self.remember(x, np.nan, grad)
            else:
                entry[2] = grad
            self.grad = grad
            return grad

        return recorded

    def value_and_grad(self, evaluate: Callable) -> Callable:
        def recorded(x: np.ndarray) -> tuple[Any, np.ndarray]:
            out = evaluate(x)
            self.fun, self.grad = out
            self._append(x, *out)
            return out

        return recorded


#: Elements of `x` sampled for its fingerprint.
_SAMPLES = 32


def _fingerprint(x: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    """A key for `x` read from `_SAMPLES` evenly spaced elements (all of a short `x`): O(1) where
    comparing whole vectors would be O(n) per callback. Two recent evaluation points that agree
    on every sampled element are told apart by `fun`."""
    flat = x if type(x) is np.ndarray and x.ndim == 1 else np.ravel(x)  # scipy's: no ravel
    # Every element of a short `x` (a step of 1 up to `_SAMPLES`; an empty `x` has none).
    return np.shape(x), flat[:: -(-flat.size // _SAMPLES) or 1].tobytes()
