"""Per-iteration history and the optional progress bar."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np


def progress_on(progress: Any) -> bool:
    """Whether `progress` asks for a bar: True or a tqdm instance (None and False do not)."""
    return not (progress is None or (isinstance(progress, bool | np.bool_) and not progress))


def make_progress(progress: Any, *, total: Any = None) -> Any:
    """A tqdm bar for `progress=True` (with `total` iterations where the cap is known), the
    user's own tqdm instance, or None when off."""
    if not progress_on(progress):
        return None
    if isinstance(progress, bool | np.bool_):
        from tqdm.auto import tqdm

        return tqdm(desc="minimize", unit="it", total=iteration_cap(total), leave=True)
    if hasattr(progress, "update") and hasattr(progress, "set_postfix"):
        return progress
    raise TypeError(
        f"`progress` must be True, False or a tqdm instance; got {type(progress).__name__}."
    )


def iteration_cap(value: Any) -> int | None:
    """An iteration cap as a bar's total: a positive whole number, else None (unknown).

    Examples:
        >>> iteration_cap(50), iteration_cap(None), iteration_cap("many")
        (50, None, None)
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        return None
    return int(value) if value > 0 else None


class Series(list):
    """A history's list of per-iteration values, which prints as a summary (its length, first
    and last values) inside `repr(result)`; otherwise an ordinary list.

    Examples:
        >>> str(Series([3.0, 2.0, 1.5, 1.25, 1.125]))
        '[3, 2, ..., 1.125] (5 values)'
    """

    def __str__(self) -> str:
        if len(self) <= 4:
            return list.__repr__(self)
        first, second, last = (_short(v) for v in (self[0], self[1], self[-1]))
        return f"[{first}, {second}, ..., {last}] ({len(self)} values)"


def _short(value: Any) -> str:
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return repr(value)


class History:
    """Collects `fun`, `time` and (for gradient methods) `grad_norm` once per iteration."""

    def __init__(self, *, gradient: bool, bar: Any = None, owns_bar: bool = True):
        self.gradient = gradient
        self.bar = bar
        self.owns_bar = owns_bar
        self.fun: list[float] = []
        self.time: list[float] = []
        self.grad_norm: list[float] = []
        self._start = time.perf_counter()

    def start(self, start: float) -> None:
        self._start = start

    def record(self, fun: float, grad: np.ndarray | None) -> None:
        self.fun.append(fun)
        self.time.append(time.perf_counter() - self._start)
        norm = _norm(grad)
        if self.gradient:
            self.grad_norm.append(norm)
        if self.bar is not None:
            postfix = {"fun": f"{fun:.6g}"}
            if self.gradient and np.isfinite(norm):
                postfix["|grad|"] = f"{norm:.3g}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        """Closes the bar made for `progress=True`; a caller's own tqdm is only refreshed, so it
        can go on counting across several runs."""
        if self.bar is None:
            return
        if self.owns_bar:
            self.bar.close()
        elif hasattr(self.bar, "refresh"):
            self.bar.refresh()

    def as_dict(
        self, nit: int | None, *, fun: float = np.nan, grad: np.ndarray | None = None
    ) -> dict[str, list[float]]:
        """The history, cut or padded to `nit` iterations where scipy reports `nit` (some methods
        call back once more or once less than they count). A missing last iteration is the
        result's: its `fun` and gradient `grad` (Nelder-Mead counts one iteration it never
        reports, and with `maxiter=0` reports none)."""
        history = {"fun": self.fun, "time": self.time}
        # Finite differences happen inside scipy, out of sight: then no norm is known.
        if self.gradient and (not self.grad_norm or np.isfinite(self.grad_norm).any()):
            history["grad_norm"] = self.grad_norm
        if nit is None:
            return {key: Series(values) for key, values in history.items()}
        nit = int(nit)
        final = {
            "fun": float(fun),
            "time": time.perf_counter() - self._start,
            "grad_norm": _norm(grad),
        }
        return {key: Series(_fit(values, nit, final[key])) for key, values in history.items()}


#: The longest vector whose norm BLAS sums: OpenBLAS runs `ddot` on one thread up to 10,000
#: elements, so no pool wakes; it is 3-4x faster than `einsum` there (1.6 vs 0.4 us at 1,000).
_BLAS_NORM_MAX = 10_000


def _norm(grad: np.ndarray | None) -> float:
    """The Euclidean norm. A long vector's is summed by NumPy's own loop rather than BLAS: a BLAS
    `dot` on it wakes NumPy's OpenBLAS thread pool, whose threads then busy-wait on the cores
    that scipy's own OpenBLAS (a second copy, with its own pool) needs for L-BFGS-B's vector
    updates; on 2 cores at n = 100,000 that made each `setulb` call several times slower."""
    if grad is None:
        return np.nan
    flat = np.ravel(grad)
    if flat.size <= _BLAS_NORM_MAX and flat.dtype == np.float64:
        return math.sqrt(float(flat.dot(flat)))
    return math.sqrt(float(np.einsum("i,i->", flat, flat)))


def _fit(values: list[float], n: int, final: float) -> list[float]:
    if len(values) >= n:
        return values[:n]
    return values + [final] * (n - len(values))
