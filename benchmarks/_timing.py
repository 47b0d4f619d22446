"""Shared measurement for the benchmarks: interleaved rounds, medians of per-round ratios.

Every contender is one whole scipy run returning its number of objective evaluations; a round
runs each contender once, and each ratio is the median over rounds of the per-round ratio, so a
noisy, shared machine slows every contender alike. BLAS keeps the machine's default thread count
unless a contender is wrapped in `one_blas_thread`.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

N = 1_000
MAXITER = 300
#: gtol = ftol = 0 so that every contender runs exactly MAXITER iterations.
OPTIONS = {"maxiter": MAXITER, "gtol": 0.0, "ftol": 0.0}

#: One run: `(wall seconds, process CPU seconds, objective evaluations)`.
Run = Callable[[], "tuple[float, float, int]"]
Times = dict[str, list[float]]


def start_point(n: int = N) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1.0, 1.0, n)


def timed(run: Callable[[], int]) -> tuple[float, float, int]:
    """Wall and CPU seconds of `run()`, and the evaluation count it returns."""
    wall, cpu = time.perf_counter(), time.process_time()
    nfev = run()
    return time.perf_counter() - wall, time.process_time() - cpu, nfev


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def with_one_blas_thread(run: Run) -> Run:
    """`run` with every BLAS library held to one thread."""

    def limited() -> tuple[float, float, int]:
        with one_blas_thread():
            return run()

    return limited


def measure(contenders: dict[str, Run], rounds: int) -> tuple[Times, Times]:
    """Wall and CPU seconds per evaluation over `rounds` interleaved rounds (the order rotating
    from round to round), after one warm-up run of each contender."""
    for run in contenders.values():
        run()
    wall: Times = {name: [] for name in contenders}
    cpu: Times = {name: [] for name in contenders}
    names = list(contenders)
    for round_index in range(rounds):
        # Rotate who goes first, so no contender always follows the same neighbour.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            run = contenders[name]
            wall_seconds, cpu_seconds, nfev = run()
            wall[name].append(wall_seconds / nfev)
            cpu[name].append(cpu_seconds / nfev)
    return wall, cpu


def ratio(times: Times, name: str, baseline: str) -> float:
    return statistics.median(a / b for a, b in zip(times[name], times[baseline], strict=True))
