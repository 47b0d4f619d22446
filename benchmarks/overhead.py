"""Per-evaluation overhead of `pytree_minimize.minimize` against hand-written glue.

Every contender minimises Rosenbrock (n = 1000, float64) with scipy's L-BFGS-B for a fixed number
of iterations; the time per evaluation is a whole run's wall time divided by its `nfev`. Runs
are interleaved and each ratio is a median of per-round ratios (see `_timing.py`).

    python benchmarks/overhead.py              # JAX, then the torch and TensorFlow ports
    python benchmarks/overhead.py --no-ports --rounds 9

The floor is scipy driving one hand-written `jax.jit(jax.value_and_grad(f))` on the flat float64
vector. The pytree contenders get the same numbers split into 3 leaves (300, 300, 400), or
(n = 2000) into 400 leaves of 5, and their objective concatenates the leaves before calling the
flat Rosenbrock.
jaxopt's `ScipyMinimize` runs on the same trees.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as sopt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import MAXITER, OPTIONS, N, Run, measure, ratio, start_point, timed  # noqa: E402

from pytree_minimize import minimize  # noqa: E402

THREE_LEAVES = [300, 300, 400]
MANY_LEAVES = [5] * 400


def rosenbrock_flat(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_tree(params: dict) -> jax.Array:
    return rosenbrock_flat(jnp.concatenate([params[k].ravel() for k in sorted(params)]))


def tree_start(sizes: list[int]) -> dict:
    # Zero-padded names keep sorted(keys) == optree's order == the flat order.
    parts = np.split(start_point(sum(sizes)), np.cumsum(sizes)[:-1])
    return {f"p{i:04d}": leaf for i, leaf in enumerate(parts)}


def flat_contender(n: int) -> Run:
    value_and_grad = jax.jit(jax.value_and_grad(rosenbrock_flat))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(x)
        return float(value), np.asarray(grad)

    def run() -> int:
        x0 = start_point(n)
        result = sopt.minimize(fun, x0, jac=True, method="L-BFGS-B", options=OPTIONS)
        return result.nfev

    return lambda: timed(run)


def ours_contender(sizes: list[int]) -> Run:
    def run() -> int:
        x0 = tree_start(sizes)
        return minimize(rosenbrock_tree, x0, method="L-BFGS-B", options=OPTIONS).nfev

    return lambda: timed(run)


def jaxopt_contender(sizes: list[int]) -> Run:
    import jaxopt

    tolerances = {k: v for k, v in OPTIONS.items() if k != "maxiter"}
    solver = jaxopt.ScipyMinimize(
        fun=rosenbrock_tree, method="L-BFGS-B", maxiter=MAXITER, options=tolerances
    )

    def run() -> int:
        x0 = {k: jnp.asarray(v) for k, v in tree_start(sizes).items()}
        _, state = solver.run(x0)
        return int(state.num_fun_eval)

    return lambda: timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-ports", action="store_true", help="skip the torch/TF ports")
    options = parser.parse_args()

    contenders: dict[str, Run] = {
        "flat": flat_contender(N),
        "ours 3": ours_contender(THREE_LEAVES),
        "flat 2000": flat_contender(sum(MANY_LEAVES)),
        "ours 400": ours_contender(MANY_LEAVES),
    }
    has_jaxopt = importlib.util.find_spec("jaxopt") is not None
    if has_jaxopt:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            contenders["jaxopt 3"] = jaxopt_contender(THREE_LEAVES)
            contenders["jaxopt 400"] = jaxopt_contender(MANY_LEAVES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        wall, cpu = measure(contenders, options.rounds)

    print(
        f"JAX: Rosenbrock n={N}, L-BFGS-B, {MAXITER} iterations, medians of {options.rounds} "
        "interleaved rounds (wall clock; process CPU time in brackets)"
    )
    flat, flat_cpu = (1e6 * statistics.median(t["flat"]) for t in (wall, cpu))
    print(
        f"  hand-written flat jit(value_and_grad), n={N}: {flat:.1f} us/eval [{flat_cpu:.1f} CPU]"
    )
    rows: list[tuple[str, str, str, str]] = [
        ("pytree_minimize, 3 leaves / flat", "ours 3", "flat", "<= 1.10"),
        ("pytree_minimize, 400 leaves of 5 / flat (n=2000)", "ours 400", "flat 2000", "<= 1.15"),
    ]
    if has_jaxopt:
        rows += [
            ("jaxopt.ScipyMinimize, 3 leaves / flat", "jaxopt 3", "flat", "(jaxopt's own cost)"),
            ("jaxopt.ScipyMinimize / pytree_minimize, 3 leaves", "jaxopt 3", "ours 3", ">= 2.5"),
            (
                f"jaxopt.ScipyMinimize / pytree_minimize, {len(MANY_LEAVES)} leaves",
                "jaxopt 400",
                "ours 400",
                ">= 2.5",
            ),
        ]
    for label, name, baseline, target in rows:
        print(
            f"  {label:<52} {ratio(wall, name, baseline):6.3f}x "
            f"[{ratio(cpu, name, baseline):6.3f}x]   target {target}"
        )

    if not options.no_ports:
        import ports_overhead

        ports_overhead.main(rounds=options.rounds)


if __name__ == "__main__":
    main()
