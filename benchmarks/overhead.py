"""Per-evaluation cost of `pytree_minimize` against hand-written glue, at every size.

Every contender minimises Rosenbrock with scipy's L-BFGS-B for a fixed number of iterations
(`gtol = ftol = 0`); the time per evaluation is a whole run's wall time divided by its `nfev`.
Runs are interleaved, the order rotating from round to round, and each ratio is the median of the
per-round ratios (see `_timing.py`), so a noisy, shared machine slows every contender alike.
Each ratio comes from its own pair of contenders (default threads; one thread), since a run at
default threads leaves BLAS threads spinning that slow whichever run follows it.

    python benchmarks/overhead.py                  # the whole table (a few minutes)
    python benchmarks/overhead.py --no-ports --rounds 9 --sizes 10 1000

JAX rows: the floor is scipy driving one hand-written `jax.jit(jax.value_and_grad(f))` on the flat
vector (for float32, the closure casts `x` to float32 and the gradient back to float64);
`pytree_minimize.minimize` gets the same numbers split into 3 leaves of the same dtype, and its
objective concatenates them. "default" leaves BLAS at the machine's thread count for both (the
library then applies its own policy: one thread for L-BFGS-B); "one" holds BLAS to one thread
around both runs.

Many-leaves row (`--leaves N`): the same with x in N leaves, against hand-written glue that
calls the same tree objective on the flat vector through `jax.flatten_util.ravel_pytree`.

Port rows: the torch and TensorFlow ports on 3 nested leaves against a hand-written closure on the
flat float64 tensor that splits it into the same leaves and calls the same nested objective
(torch: `torch.autograd.grad`; TensorFlow: a `tf.function` around a GradientTape), and, for
reference, against a closure whose objective takes the flat tensor directly, which skips the
nested objective's split and concatenation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as sopt  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's package, not another installed copy.
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _timing import Run, Times, measure, ratio, start_point, timed, with_one_blas_thread  # noqa: E402

import pytree_minimize  # noqa: E402
from pytree_minimize import minimize  # noqa: E402

#: Iterations per run at each size: enough evaluations to time, few enough for a few minutes.
ITERATIONS = {10: 300, 1_000: 300, 100_000: 30, 1_000_000: 8, 10_000_000: 4}
TARGET = 1.10


def options(n: int) -> dict:
    return {"maxiter": ITERATIONS.get(n, 20), "gtol": 0.0, "ftol": 0.0}


def rosenbrock(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_tree(params: dict) -> jax.Array:
    return rosenbrock(jnp.concatenate([params[k].ravel() for k in sorted(params)]))


def leaf_sizes(n: int, leaves: int = 3) -> list[int]:
    base = [n // leaves] * leaves
    base[-1] += n - sum(base)
    return base


def tree_start(n: int, dtype: type, leaves: int = 3) -> dict:
    # Zero-padded names keep sorted(keys) == optree's order == the flat order.
    parts = np.split(start_point(n), np.cumsum(leaf_sizes(n, leaves))[:-1])
    return {f"p{i:05d}": leaf.astype(dtype) for i, leaf in enumerate(parts)}


def hand_contender(n: int, dtype: type, leaves: int = 0) -> Run:
    """Hand-written glue: the flat objective, or with `leaves`, the tree objective on the flat
    vector through `jax.flatten_util.ravel_pytree`, which each run ravels `x0` with and unravels
    the result with, as glue for a tree does."""
    x0 = tree_start(n, dtype, leaves) if leaves else None
    if x0 is None:
        objective = rosenbrock
    else:
        _, unravel = ravel_pytree(x0)

        def objective(x: jax.Array) -> jax.Array:
            return rosenbrock_tree(unravel(x))

    value_and_grad = jax.jit(jax.value_and_grad(objective))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(x.astype(dtype, copy=False))
        return float(value), np.asarray(grad, dtype=np.float64)

    def run() -> int:
        if x0 is None:
            start, unravel_x = start_point(n), None
        else:
            flat, unravel_x = ravel_pytree(x0)
            start = np.asarray(flat, np.float64)
        result = sopt.minimize(fun, start, jac=True, method="L-BFGS-B", options=options(n))
        if unravel_x is not None:
            jax.block_until_ready(unravel_x(result.x))
        return result.nfev

    return lambda: timed(run)


def ours_contender(n: int, dtype: type, leaves: int = 3) -> Run:
    def run() -> int:
        x0 = tree_start(n, dtype, leaves)
        return minimize(rosenbrock_tree, x0, method="L-BFGS-B", options=options(n)).nfev

    return lambda: timed(run)


def jax_rows(sizes: list[int], rounds: int) -> list[list[str]]:
    return [row(n, dtype, 3, rounds) for n in sizes for dtype in (np.float64, np.float32)]


def many_leaves_rows(leaves: int, rounds: int) -> list[list[str]]:
    """The same measurement with x in `leaves` leaves (n = 1,000, or 10 per leaf beyond)."""
    return [row(1_000 if leaves <= 1_000 else 10 * leaves, np.float64, leaves, rounds)]


def row(n: int, dtype: type, leaves: int, rounds: int) -> list[str]:
    hand = hand_contender(n, dtype, leaves if leaves != 3 else 0)
    ours = ours_contender(n, dtype, leaves)
    # Each ratio from its own interleaved pair: in one cycle of all four, a run would always
    # follow the same neighbour, and a default-threads run leaves BLAS threads spinning.
    wall, _ = measure({"hand": hand, "ours": ours}, rounds)
    one_wall, cpu = measure(
        {"hand one": with_one_blas_thread(hand), "ours one": with_one_blas_thread(ours)}, rounds
    )
    default, one = ratio(wall, "ours", "hand"), ratio(one_wall, "ours one", "hand one")
    one_cpu = ratio(cpu, "ours one", "hand one")
    cells = [
        f"{n:,}" if leaves == 3 else f"{n:,} ({leaves:,} leaves)",
        np.dtype(dtype).name,
        ms(wall, "hand"),
        f"{default:.2f}x",
        ms(one_wall, "hand one"),
        f"{one:.2f}x",
        f"{one_cpu:.2f}x",
        verdict(default, one),
    ]
    print("  " + " | ".join(cells), flush=True)
    return cells


def ms(times: Times, name: str) -> str:
    return f"{1e3 * statistics.median(times[name]):.3f}"


def verdict(*ratios: float) -> str:
    return "ok" if all(r <= TARGET for r in ratios) else f"over {TARGET:.2f}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 100_000, 1_000_000])
    parser.add_argument("--port-sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--no-ports", action="store_true", help="skip the torch/TF ports")
    parser.add_argument("--leaves", type=int, default=0, help="add a row with this many leaves")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at start", flush=True)
    print(f"package: {os.path.dirname(pytree_minimize.__file__)}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rows = jax_rows(args.sizes, args.rounds)
        if args.leaves:
            rows += many_leaves_rows(args.leaves, args.rounds)
    header = [
        "n",
        "dtype",
        "hand ms/eval",
        "ours / hand",
        "hand ms/eval, one",
        "ours / hand, one",
        "same, CPU time",
    ]
    print(f"\nJAX, L-BFGS-B on Rosenbrock, 3 leaves, medians of {args.rounds} interleaved rounds")
    print(markdown([*header, f"<= {TARGET:.2f}"], rows))

    if not args.no_ports:
        import ports_overhead

        port_rows = ports_overhead.rows(args.port_sizes, args.rounds, options)
        if port_rows:
            print("\nPorts, L-BFGS-B on Rosenbrock, 3 nested leaves, float64, default BLAS threads")
            print(markdown(ports_overhead.HEADER, port_rows))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (started at {load:.1f})")


if __name__ == "__main__":
    main()
