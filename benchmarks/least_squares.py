"""`pytree_minimize.least_squares` against hand-written glue, and the matrix-free `lsmr` path.

1. Per evaluation of residuals plus Jacobian: a sum of decaying exponentials fitted to
   m = 10,000 points with n = 10 parameters in 3 leaves (amplitudes, rates, a line), scipy's
   'trf' for a fixed number of evaluations. The floor is scipy driving a hand-written
   `jax.jit(f)` and `jax.jit(jax.jacfwd(f))` on the flat float64 vector. Runs are interleaved,
   each ratio a median of per-round ratios (see `_timing.py`). Target: within 1.10x.
2. `tr_solver='lsmr'` at n = 100,000: a nonlinear smoothing problem with m = 2n - 1 residuals,
   whose dense Jacobian (m x n float64) would need 160 GB. The matrix-free path runs in the
   memory printed here (the process's peak resident set).

    python benchmarks/least_squares.py [--rounds 7] [--skip-lsmr]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as sopt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import Run, measure, ratio, timed  # noqa: E402

from pytree_minimize import least_squares  # noqa: E402

M = 10_000
T = np.linspace(0.0, 5.0, M)
_TRUE = np.array([1.0, 0.8, 0.6, 0.4, 0.5, 1.5, 3.0, 6.0, 0.1, -0.02])
MAX_NFEV = 40
#: Tolerances that never stop a run early, so every contender makes MAX_NFEV evaluations.
TOLERANCES = {"ftol": None, "xtol": None, "gtol": 1e-15, "max_nfev": MAX_NFEV}


def model_flat(v: jax.Array, t: jax.Array) -> jax.Array:
    amps, rates, line = v[:4], v[4:8], v[8:]
    return jnp.exp(-t[:, None] * rates[None, :]) @ amps + line[0] + line[1] * t


Y = np.asarray(model_flat(jnp.asarray(_TRUE), jnp.asarray(T))) + 0.01 * np.sin(37 * T)
V0 = np.array([0.5, 0.5, 0.5, 0.5, 0.3, 1.0, 2.0, 4.0, 0.0, 0.0])


def residual_flat(v: jax.Array, t: jax.Array, y: jax.Array) -> jax.Array:
    return model_flat(v, t) - y


def residual_tree(p: dict, t: jax.Array, y: jax.Array) -> jax.Array:
    # optree order (amps, line, rates) is not the flat model's order; the model takes it as is.
    v = jnp.concatenate([p["amps"], p["rates"], p["line"]])
    return residual_flat(v, t, y)


def tree_start() -> dict:
    return {"amps": V0[:4], "line": V0[8:], "rates": V0[4:8]}


def flat_contender() -> Run:
    t, y = jnp.asarray(T), jnp.asarray(Y)
    values = jax.jit(residual_flat)
    jacobian = jax.jit(jax.jacfwd(residual_flat))

    def run() -> int:
        result = sopt.least_squares(
            lambda v: np.asarray(values(v, t, y), dtype=np.float64),
            V0,
            jac=lambda v: np.asarray(jacobian(v, t, y), dtype=np.float64),
            **TOLERANCES,
        )
        return int(result.nfev)

    return lambda: timed(run)


def pytree_contender() -> Run:
    t, y = jnp.asarray(T), jnp.asarray(Y)

    def run() -> int:
        result = least_squares(residual_tree, tree_start(), args=(t, y), **TOLERANCES)
        return int(result.nfev)

    return lambda: timed(run)


def evaluation_ratio(rounds: int) -> None:
    contenders = {"flat jit(jacfwd) glue": flat_contender(), "pytree": pytree_contender()}
    wall, cpu = measure(contenders, rounds)
    base = "flat jit(jacfwd) glue"
    for name in contenders:
        per_eval = np.median(wall[name]) * 1e3
        print(f"{name:>24}: {per_eval:.3f} ms per evaluation (residuals + Jacobian)")
    print(
        f"pytree / flat glue: wall {ratio(wall, 'pytree', base):.3f}x, "
        f"CPU {ratio(cpu, 'pytree', base):.3f}x (median of {rounds} rounds; target <= 1.10x)"
    )


# ---------------------------------------------------------------------------------------------
# The lsmr path at n = 100,000.

N_LARGE = 100_000


def smoothing(p: dict, y: jax.Array) -> dict:
    """Fit a signal `x` to noisy `y` (a mildly nonlinear sensor) with a smoothness penalty."""
    x = p["signal"]
    return {"data": x + 0.1 * x**3 - y, "smooth": 3.0 * (x[1:] - x[:-1])}


def lsmr_memory() -> None:
    rng = np.random.default_rng(0)
    truth = np.sin(np.linspace(0.0, 20.0, N_LARGE))
    y = jnp.asarray(truth + 0.1 * truth**3 + 0.3 * rng.standard_normal(N_LARGE))
    m = 2 * N_LARGE - 1
    dense_gb = m * N_LARGE * 8 / 1e9
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB (Linux)
    start = time.perf_counter()
    result = least_squares(
        smoothing, {"signal": np.zeros(N_LARGE)}, args=(y,), tr_solver="lsmr", max_nfev=10
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"lsmr, n = {N_LARGE:,}, m = {m:,}: {result.nfev} evaluations in {seconds:.1f} s, "
        f"cost {result.cost:.4g} (from {0.5 * float(jnp.sum(y**2)):.4g}); peak resident "
        f"memory {peak:.2f} GB (before the run {before:.2f} GB); the dense Jacobian alone "
        f"would need {dense_gb:,.0f} GB."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-lsmr", action="store_true")
    options = parser.parse_args()
    evaluation_ratio(options.rounds)
    if not options.skip_lsmr:
        lsmr_memory()


if __name__ == "__main__":
    main()
