"""Wall time of `differential_evolution` with batched populations against scipy member by member.

Rastrigin with n = 10 (as a pytree of two leaves, 4 + 6), popsize 15 (150 members), 60
generations (`maxiter=60, tol=0, polish=False`), `rng=0`. Every contender is one whole run;
rounds are interleaved with a rotating order and each ratio is the median of per-round ratios
(see `_timing.py`).

    python benchmarks/global_de.py                   # the comparison
    python benchmarks/global_de.py --rounds 9
    python benchmarks/global_de.py --sweep           # one batched call against one evaluation
    python benchmarks/global_de.py --sweep --device gpu

Contenders:
- `scipy member by member` (the baseline): scipy's default `updating='immediate'`, calling a
  hand-written `jax.jit(f)` on the flat vector once per member;
- `scipy deferred, member by member`: the same objective, `updating='deferred'`;
- `hand-written vectorised glue`: scipy with `vectorized=True` and `jax.jit(jax.vmap(f))`;
- `pytree_minimize deferred` and `pytree_minimize vectorized`: `differential_evolution` on the
  pytree, each generation one compiled `jax.vmap` call.

`--sweep` times one batched evaluation of S members (S from 1 to 10,000) against one single
evaluation, on the chosen JAX device: on a GPU a population of 10,000 costs about one evaluation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as sopt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import measure, ratio  # noqa: E402

import pytree_minimize as pm  # noqa: E402

N = 10
SETTINGS = {"popsize": 15, "maxiter": 60, "tol": 0.0, "polish": False, "rng": 0}
BASELINE = "scipy member by member"


def rastrigin_flat(v: jax.Array) -> jax.Array:
    return jnp.sum(v**2 - 10.0 * jnp.cos(2.0 * jnp.pi * v)) + 10.0 * v.shape[0]


def rastrigin(p: dict) -> jax.Array:
    return rastrigin_flat(jnp.concatenate([p["a"], p["b"]]))


def contenders() -> dict:
    box = pm.Bounds({"a": np.full(4, -5.12), "b": np.full(6, -5.12)}, 5.12)
    flat_box = sopt.Bounds(np.full(N, -5.12), np.full(N, 5.12))
    value = jax.jit(rastrigin_flat)
    batch = jax.jit(jax.vmap(rastrigin_flat, in_axes=1))

    def member(x: np.ndarray) -> float:
        return float(value(x))

    def vectorised(xt: np.ndarray) -> np.ndarray:
        return np.asarray(batch(xt))

    def run(solve):  # type: ignore[no-untyped-def]
        def timed() -> tuple[float, float, int]:
            wall, cpu = time.perf_counter(), time.process_time()
            solve()
            # One "evaluation" per run: the figures below are seconds per whole run.
            return time.perf_counter() - wall, time.process_time() - cpu, 1

        return timed

    return {
        BASELINE: run(lambda: sopt.differential_evolution(member, flat_box, **SETTINGS)),
        "scipy deferred, member by member": run(
            lambda: sopt.differential_evolution(member, flat_box, updating="deferred", **SETTINGS)
        ),
        "hand-written vectorised glue": run(
            lambda: sopt.differential_evolution(
                vectorised, flat_box, updating="deferred", vectorized=True, **SETTINGS
            )
        ),
        "pytree_minimize deferred": run(
            lambda: pm.differential_evolution(rastrigin, box, updating="deferred", **SETTINGS)
        ),
        "pytree_minimize vectorized": run(
            lambda: pm.differential_evolution(
                rastrigin, box, updating="deferred", vectorized=True, **SETTINGS
            )
        ),
    }


def compare(rounds: int) -> None:
    wall, _ = measure(contenders(), rounds)
    print(f"Rastrigin n={N}, popsize 15, 60 generations; {rounds} interleaved rounds, medians")
    print(f"{'contender':36s} {'wall s/run':>11s} {'speed-up vs baseline':>22s}")
    for name, times in wall.items():
        speedup = 1.0 / ratio(wall, name, BASELINE)
        print(f"{name:36s} {statistics.median(times):11.4f} {speedup:21.2f}x")


def sweep(device: str, repeats: int) -> None:
    target = jax.devices(device)[0]
    value = jax.jit(rastrigin_flat)
    batch = jax.jit(jax.vmap(rastrigin_flat))
    rng = np.random.default_rng(0)

    def seconds(fn, x) -> float:  # type: ignore[no-untyped-def]
        x = jax.device_put(x, target)
        fn(x).block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x).block_until_ready()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    one = seconds(value, rng.uniform(-5.12, 5.12, N))
    print(f"device {target}; one evaluation: {one * 1e6:.1f} us (median of {repeats})")
    print(f"{'members':>8s} {'batched call (us)':>18s} {'/ one evaluation':>17s}")
    for size in (1, 150, 1_000, 10_000, 100_000):
        t = seconds(batch, rng.uniform(-5.12, 5.12, (size, N)))
        print(f"{size:8d} {t * 1e6:18.1f} {t / one:17.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sweep", action="store_true", help="population-size sweep")
    parser.add_argument("--device", default="cpu", help="JAX platform for --sweep (cpu, gpu)")
    parser.add_argument("--repeats", type=int, default=50)
    options = parser.parse_args()
    if options.sweep:
        sweep(options.device, options.repeats)
    else:
        compare(options.rounds)


if __name__ == "__main__":
    main()
