"""Memory: the peak of one L-BFGS-B run at n = 10^7 float64, and resident memory over many
compiled shapes.

Peak: pytree_minimize against scipy driving a hand-written `jax.jit(jax.value_and_grad(f))`.
Each contender runs in a fresh subprocess (`ru_maxrss` is a high-water mark per process); the
table gives each peak and the difference in n-vectors of float64 (80 MB at n = 10^7).

Shapes (`--shapes N`): `minimize` called with N different shapes of `x0` in one process, so
every call compiles anew and the compile cache (256 entries) evicts; resident memory is read
every N/8 calls and when the cache first holds 256 entries. The summary line gives the growth
per 1,000 calls from that point on (target: at most 100 MB). What still grows is JAX's own
metadata caches keyed by shape (traced programs, shardings, layouts: bounded by JAX at 2,048 to
4,096 entries each), not compiled programs: `pytree_minimize.clear_cache()` frees those.

    python benchmarks/memory.py [--n 10000000] [--iterations 5]
    python benchmarks/memory.py --shapes 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[4])  # this checkout's package
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np, scipy.optimize as sopt
n, iterations, contender = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
options = {"maxiter": iterations, "gtol": 0.0, "ftol": 0.0}

def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

x0 = np.random.default_rng(0).uniform(-1.0, 1.0, n)
if contender == "hand":
    value_and_grad = jax.jit(jax.value_and_grad(rosenbrock))

    def fun(x):
        value, grad = value_and_grad(x)
        return float(value), np.asarray(grad)

    result = sopt.minimize(fun, x0, jac=True, method="L-BFGS-B", options=options)
else:
    from pytree_minimize import minimize

    def tree_objective(p):
        return rosenbrock(jnp.concatenate([p["a"], p["b"], p["c"]]))

    a, b, c = np.split(x0, [n // 3, 2 * (n // 3)])
    del x0
    result = minimize(tree_objective, {"a": a, "b": b, "c": c}, method="L-BFGS-B", options=options)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, result.nfev)
"""


def peak(contender: str, n: int, iterations: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(iterations), contender, ROOT],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()
    return int(out[-2]), int(out[-1])


SHAPES_CHILD = """
import sys
sys.path.insert(0, sys.argv[2])  # this checkout's package
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
from pytree_minimize import minimize

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6

def objective(p):
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(jnp.cos(p["b"]))

from pytree_minimize._core.cache import CACHE

calls = int(sys.argv[1])
full = False
for i in range(1, calls + 1):
    x0 = {"w": np.zeros(i), "b": np.zeros(3)}
    minimize(objective, x0, method="L-BFGS-B", options={"maxiter": 2})
    now_full = not full and len(CACHE) >= 256
    full = full or now_full
    if i == 1 or i % max(1, calls // 8) == 0 or now_full:
        print(i, f"{resident_mb():.0f}", "full" if now_full else "", flush=True)
"""


def shapes(calls: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SHAPES_CHILD, str(calls), ROOT],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split("\n")
    print(f"`minimize` with {calls:,} different shapes of x0 (each compiles; the cache keeps 256)")
    print("| calls | resident memory (MB) |")
    print("|---|---|")
    readings = []
    full_at = None
    for line in filter(None, out):
        call, resident, *note = line.split()
        readings.append((int(call), float(resident)))
        if note:
            full_at = readings[-1]
        print(f"| {int(call):,} | {resident}{' (cache full)' if note else ''} |")
    last = readings[-1]
    if full_at is not None and last[0] > full_at[0]:
        growth = (last[1] - full_at[1]) / (last[0] - full_at[0]) * 1000
        print(
            f"growth once the cache is full (calls {full_at[0]:,} to {last[0]:,}): "
            f"{growth:+.0f} MB per 1,000 calls (target: at most +100)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--shapes", type=int, default=0, help="calls with different shapes")
    args = parser.parse_args()
    if args.shapes:
        shapes(args.shapes)
        return
    vector = 8 * args.n
    hand, hand_nfev = peak("hand", args.n, args.iterations)
    ours, ours_nfev = peak("ours", args.n, args.iterations)
    print(f"L-BFGS-B, Rosenbrock n={args.n:,} float64, {args.iterations} iterations")
    print("| contender | peak RSS (MB) | nfev |")
    print("|---|---|---|")
    print(f"| scipy + hand-written jit(value_and_grad) | {hand / 1e6:,.0f} | {hand_nfev} |")
    print(f"| pytree_minimize, 3 leaves | {ours / 1e6:,.0f} | {ours_nfev} |")
    print(f"extra: {(ours - hand) / vector:+.2f} n-vectors (target <= +3)")


if __name__ == "__main__":
    main()
