"""Recompiles: the time per call of a fit wrapped in a helper that builds its objective anew.

A helper such as

    def fit(X, Y):
        def loss(p):
            return jnp.mean((X @ p["w"] + p["b"] - Y) ** 2)
        return minimize(loss, x0)

makes a new closure on every call. Each contender below fits new data on every call; "closure"
is that helper, "args" the same objective defined once with the data passed through `args` (the
compiled evaluation is reused: the floor). Rows: `minimize` (L-BFGS-B), `least_squares` and
`curve_fit`; `--tensorflow` adds `minimize` of the TensorFlow port. Calls are interleaved, the
order rotating from round to round, after one warm-up call of each; the table gives the median
time per call and the median of the per-round ratios.

    python benchmarks/recompile.py [--rounds 15] [--tensorflow]
    python benchmarks/recompile.py --checkout /path/to/other/checkout   # e.g. before a change
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def contenders() -> dict[str, tuple[Callable[[int], object], Callable[[int], object]]]:
    """Per entry point: (closure made anew per call, objective defined once with `args`), each
    taking a seed for new data."""
    import jax.numpy as jnp
    import numpy as np

    from pytree_minimize import curve_fit, least_squares, minimize

    def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(200, 5))
        return X, X @ np.arange(1.0, 6.0) + 0.5 + 0.01 * rng.normal(size=200)

    x0 = {"w": jnp.zeros(5), "b": jnp.array(0.0)}
    options = {"maxiter": 50}

    def minimize_closure(seed: int) -> object:
        X, Y = data(seed)

        def loss(p: dict) -> object:
            return jnp.mean((X @ p["w"] + p["b"] - Y) ** 2)

        return minimize(loss, x0, method="L-BFGS-B", options=options)

    def loss_with_data(p: dict, X: object, Y: object) -> object:
        return jnp.mean((X @ p["w"] + p["b"] - Y) ** 2)

    def minimize_args(seed: int) -> object:
        return minimize(loss_with_data, x0, args=data(seed), method="L-BFGS-B", options=options)

    def least_squares_closure(seed: int) -> object:
        X, Y = data(seed)

        def residuals(p: dict) -> object:
            return X @ p["w"] + p["b"] - Y

        return least_squares(residuals, x0)

    def residuals_with_data(p: dict, X: object, Y: object) -> object:
        return X @ p["w"] + p["b"] - Y

    def least_squares_args(seed: int) -> object:
        return least_squares(residuals_with_data, x0, args=data(seed))

    def curve_fit_closure(seed: int) -> object:
        X, Y = data(seed)
        offset = jnp.asarray(X.mean())

        def model(x: object, p: dict) -> object:
            return x @ p["w"] + p["b"] + 0.0 * offset

        return curve_fit(model, X, Y, p0=x0)

    def model_once(x: object, p: dict) -> object:
        return x @ p["w"] + p["b"]

    def curve_fit_once(seed: int) -> object:
        X, Y = data(seed)
        return curve_fit(model_once, X, Y, p0=x0)

    return {
        "minimize (L-BFGS-B)": (minimize_closure, minimize_args),
        "least_squares": (least_squares_closure, least_squares_args),
        "curve_fit": (curve_fit_closure, curve_fit_once),
    }


def tensorflow_contenders() -> dict[str, tuple[Callable[[int], object], Callable[[int], object]]]:
    """The `minimize` row for the TensorFlow port (its `tf.function`s trace per closure)."""
    import numpy as np
    import tensorflow as tf

    from pytree_minimize.ports.tensorflow import minimize

    def data(seed: int) -> tuple[object, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(200, 5))
        return tf.constant(X), X @ np.arange(1.0, 6.0) + 0.5

    x0 = {"w": tf.zeros(5, tf.float64), "b": tf.constant(0.0, tf.float64)}
    options = {"maxiter": 50}

    def closure(seed: int) -> object:
        X, Y = data(seed)

        def loss(p: dict) -> object:
            return tf.reduce_mean((tf.linalg.matvec(X, p["w"]) + p["b"] - Y) ** 2)

        return minimize(loss, x0, method="L-BFGS-B", options=options)

    def loss_with_data(p: dict, X: object, Y: object) -> object:
        return tf.reduce_mean((tf.linalg.matvec(X, p["w"]) + p["b"] - Y) ** 2)

    def once(seed: int) -> object:
        return minimize(loss_with_data, x0, args=data(seed), method="L-BFGS-B", options=options)

    return {"TensorFlow port, minimize (L-BFGS-B)": (closure, once)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--checkout", default=ROOT, help="the checkout whose package to time")
    parser.add_argument("--tensorflow", action="store_true", help="add the TensorFlow port's row")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.checkout))
    warnings.simplefilter("ignore")  # the recompile warning, where the checkout has one
    print(f"package: {args.checkout}")
    print(
        "| entry point | closure made anew per call (ms) | objective once, data in `args` "
        "(ms) | ratio |"
    )
    print("|---|---|---|---|")
    rows = contenders()
    if args.tensorflow:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        rows.update(tensorflow_contenders())
    for name, (closure, once) in rows.items():
        closure(0), once(0)  # warm-up: the first compile of each
        times: dict[str, list[float]] = {"closure": [], "once": []}
        ratios = []
        for seed in range(1, args.rounds + 1):
            order = [("closure", closure), ("once", once)]
            if seed % 2:
                order.reverse()
            round_times = {}
            for label, run in order:
                start = time.perf_counter()
                run(seed)
                round_times[label] = time.perf_counter() - start
                times[label].append(round_times[label])
            ratios.append(round_times["closure"] / round_times["once"])
        print(
            f"| {name} | {1e3 * statistics.median(times['closure']):.1f} | "
            f"{1e3 * statistics.median(times['once']):.1f} | {statistics.median(ratios):.2f} |"
        )


if __name__ == "__main__":
    main()
