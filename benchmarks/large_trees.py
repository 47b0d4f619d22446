"""First-call time on trees of many leaves: `minimize` against plain `jit(value_and_grad(f))`.

The objective works leaf by leaf (a Rosenbrock term per leaf of 3 numbers), so the compiled
program grows with the number of leaves. Each contender runs in a fresh process, so nothing is
cached: "plain" is the first call of `jax.jit(jax.value_and_grad(f))` on the tree (trace, compile,
run); "ours" is a whole first `minimize(f, tree, method="L-BFGS-B")` call of one iteration
(checks, layout, trace, compile, scipy, result). Rounds alternate which goes first; the ratio is
the median of the per-round ratios.

    python benchmarks/large_trees.py                      # 1, 100, 1,000 leaves, 3 rounds
    python benchmarks/large_trees.py --leaves 10000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGET = 1.5


def objective(tree: dict):  # type: ignore[no-untyped-def]
    import jax
    import jax.numpy as jnp

    total = jnp.zeros(())
    for x in jax.tree_util.tree_leaves(tree):
        total = total + jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return total


def first_call(contender: str, leaves: int) -> float:
    """Seconds of the first call of `contender` in this (fresh) process."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    rng = np.random.default_rng(0)
    # Zero-padded names: sorted keys are the flat order.
    tree = {f"p{i:05d}": rng.uniform(-1.0, 1.0, 3) for i in range(leaves)}
    if contender == "plain":
        start = time.perf_counter()
        value_and_grad = jax.jit(jax.value_and_grad(objective))
        jax.block_until_ready(value_and_grad(tree))
        return time.perf_counter() - start
    from pytree_minimize import minimize

    start = time.perf_counter()
    minimize(objective, tree, method="L-BFGS-B", options={"maxiter": 1})
    return time.perf_counter() - start


def in_fresh_process(contender: str, leaves: int) -> float:
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(here), here]))
    out = subprocess.run(
        [sys.executable, __file__, "--one", contender, str(leaves)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--leaves", type=int, nargs="+", default=[1, 100, 1_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("CONTENDER", "LEAVES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(first_call(args.one[0], int(args.one[1])))
        return

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    rows = []
    for leaves in args.leaves:
        times: dict[str, list[float]] = {"plain": [], "ours": []}
        for round_index in range(args.rounds):
            order = ["plain", "ours"] if round_index % 2 == 0 else ["ours", "plain"]
            for contender in order:
                times[contender].append(in_fresh_process(contender, leaves))
        ratio = statistics.median(o / p for o, p in zip(times["ours"], times["plain"]))
        plain, ours = statistics.median(times["plain"]), statistics.median(times["ours"])
        verdict = "ok" if ratio <= TARGET else f"over {TARGET}"
        rows.append(f"| {leaves:,} | {plain:.2f} | {ours:.2f} | {ratio:.2f}x | {verdict} |")
        print(rows[-1], flush=True)
    print(f"\nFirst call, leaf-by-leaf Rosenbrock on leaves of 3, medians of {args.rounds} rounds")
    print("| leaves | plain jit(value_and_grad) (s) | minimize (s) | ours / plain | <= 1.5 |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
