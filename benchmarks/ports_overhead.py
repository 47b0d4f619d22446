"""Per-evaluation cost of the PyTorch and TensorFlow ports against hand-written closures.

Every contender minimises Rosenbrock (float64) with scipy's L-BFGS-B for a fixed number of
iterations; the time per evaluation is a whole run's wall time divided by its `nfev`, runs are
interleaved and ratios are medians of per-round ratios (`_timing.py`). The ports get three nested
leaves, `{"a": (0.3 n,), "b": {"c": (0.04 n, 10), "d": (0.3 n,)}}`, and the objective concatenates
them. Baselines, per framework:

- split (the target's baseline): scipy driving a hand-written closure on one flat tensor that
  splits it into the same three leaves and calls the same nested objective (torch:
  `torch.autograd.grad`; TensorFlow: a `tf.function` around a GradientTape);
- flat (reference): the same closure with an objective of the flat tensor itself. It skips the
  nested objective's split and concatenation (and their transposes in the backward pass), which
  the port cannot skip: that work belongs to the objective, not to the glue, so a port/flat ratio
  above 1 measures the objective's structure, and port/split measures the port.

The closures are the idiomatic ones and stay so: the ports beat them at small n because they skip
per-call dispatch a hand-written closure pays, not because the closures do extra work. The
TensorFlow port calls its trace's concrete function directly after the first evaluation, where a
`tf.function` call binds and canonicalises its arguments in Python every time (about 110 us of
190 at n = 1,000); the torch port calls autograd's engine without `torch.autograd.grad`'s
argument checks (about 5%).

"default" leaves BLAS at the machine's thread count around both runs (the port then holds it to
one thread itself, its policy for L-BFGS-B; the closure keeps every thread, so on a busy machine
its BLAS threads wait for cores, which can make it many times slower); "one" holds BLAS to one
thread around both. The CPU column is the same ratio of process CPU time (all threads), default
and one: below the wall-time ratio where the closure's idle BLAS threads spin. Each ratio comes
from its own interleaved pair (`PAIRS`): with the five runs in one cycle, the port's one-thread run
always followed the flat closure's default-thread run, whose spinning threads made it up to 2x
slower.

    python benchmarks/ports_overhead.py [--rounds 5] [--sizes 1000 100000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import warnings
from collections.abc import Callable

import numpy as np
import scipy.optimize as sopt
from _timing import Run, measure, ratio, start_point, timed, with_one_blas_thread

HEADER = [
    "framework",
    "n",
    "split closure (ms/eval)",
    "port / split closure",
    "port / split closure, one BLAS thread",
    "split closure, one BLAS thread (ms/eval)",
    "port / flat closure",
    "CPU time: port / split (default, one)",
    "<= 1.10",
]


def sizes(n: int) -> tuple[int, int, int]:
    a = 3 * n // 10
    c = 4 * n // 10 // 10 * 10
    return a, c, n - a - c


def torch_contenders(n: int, options: dict) -> dict[str, Run]:
    import torch

    from pytree_minimize.ports.torch import minimize

    widths = sizes(n)

    def rosenbrock(x: torch.Tensor) -> torch.Tensor:
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    def tree_objective(p: dict) -> torch.Tensor:
        return rosenbrock(torch.cat([p["a"], p["b"]["c"].reshape(-1), p["b"]["d"]]))

    def tree_start() -> dict:
        a, c, d = np.split(start_point(n), np.cumsum(widths)[:-1])
        a, c, d = (torch.from_numpy(v.copy()) for v in (a, c, d))
        return {"a": a, "b": {"c": c.reshape(-1, 10), "d": d}}

    def flat_closure(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat = torch.from_numpy(x).requires_grad_(True)
        value = rosenbrock(flat)
        (grad,) = torch.autograd.grad(value, flat)
        return value.item(), grad.numpy()

    def split_closure(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat = torch.from_numpy(x).requires_grad_(True)
        a, c, d = flat.split_with_sizes(widths)
        value = tree_objective({"a": a, "b": {"c": c.view(-1, 10), "d": d}})
        (grad,) = torch.autograd.grad(value, flat)
        return value.item(), grad.numpy()

    def port() -> int:
        return minimize(tree_objective, tree_start(), method="L-BFGS-B", options=options).nfev

    return {
        "port": lambda: timed(port),
        **_scipy_contenders(n, options, split=split_closure, flat=flat_closure),
    }


def tensorflow_contenders(n: int, options: dict) -> dict[str, Run]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from pytree_minimize.ports.tensorflow import minimize

    widths = sizes(n)

    def rosenbrock(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def tree_objective(p: dict) -> tf.Tensor:
        return rosenbrock(tf.concat([p["a"], tf.reshape(p["b"]["c"], [-1]), p["b"]["d"]], 0))

    def tree_start() -> dict:
        a, c, d = (tf.constant(v) for v in np.split(start_point(n), np.cumsum(widths)[:-1]))
        return {"a": a, "b": {"c": tf.reshape(c, (-1, 10)), "d": d}}

    @tf.function
    def flat_value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = rosenbrock(x)
        return value, tape.gradient(value, x)

    @tf.function
    def split_value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            a, c, d = tf.split(x, widths)
            value = tree_objective({"a": a, "b": {"c": tf.reshape(c, (-1, 10)), "d": d}})
        return value, tape.gradient(value, x)

    def closure(value_and_grad: Callable) -> Callable:
        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(x)
            return value.numpy(), grad.numpy()

        return fun

    def port() -> int:
        return minimize(tree_objective, tree_start(), method="L-BFGS-B", options=options).nfev

    return {
        "port": lambda: timed(port),
        **_scipy_contenders(
            n, options, split=closure(split_value_and_grad), flat=closure(flat_value_and_grad)
        ),
    }


def _scipy_contenders(n: int, options: dict, **closures: Callable) -> dict[str, Run]:
    def contender(fun: Callable) -> Run:
        def run() -> int:
            x0 = start_point(n)
            return sopt.minimize(fun, x0, jac=True, method="L-BFGS-B", options=options).nfev

        return lambda: timed(run)

    return {name: contender(fun) for name, fun in closures.items()}


#: The ratios of the table, each from its own interleaved pair of contenders: a run is slowed by
#: the thread pools the run before it left spinning, and among three or more contenders taking
#: turns in a fixed cycle, the same one always follows the same other.
PAIRS = (("port", "split"), ("port one", "split one"), ("port", "flat"))


def rows(port_sizes: list[int], rounds: int, options: Callable[[int], dict]) -> list[list[str]]:
    """One table row per framework and size: the port's ratios to both closures."""
    out = []
    for framework, module, build in (
        ("torch", "torch", torch_contenders),
        ("TensorFlow", "tensorflow", tensorflow_contenders),
    ):
        if importlib.util.find_spec(module) is None:
            print(f"  ({module} not installed: skipping its port)")
            continue
        for n in port_sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                contenders = build(n, options(n))
                contenders["port one"] = with_one_blas_thread(contenders["port"])
                contenders["split one"] = with_one_blas_thread(contenders["split"])
                wall, cpu = {}, {}
                for pair in PAIRS:
                    wall[pair], cpu[pair] = measure({k: contenders[k] for k in pair}, rounds)
            split, one, flat = (ratio(wall[pair], *pair) for pair in PAIRS)
            cpu_split, cpu_one = (ratio(cpu[pair], *pair) for pair in PAIRS[:2])
            split_ms, one_ms = (
                f"{1e3 * statistics.median(wall[pair][pair[1]]):.3f}" for pair in PAIRS[:2]
            )
            cells = [f"{split:.2f}x", f"{one:.2f}x", one_ms, f"{flat:.2f}x"]
            cpu_cell = f"{cpu_split:.2f}x, {cpu_one:.2f}x"
            out.append([framework, f"{n:,}", split_ms, *cells, cpu_cell, _ok(max(split, one))])
            print("  " + " | ".join(out[-1]), flush=True)
    return out


def _ok(value: float) -> str:
    return "ok" if value <= 1.10 else "over 1.10"


if __name__ == "__main__":
    from overhead import markdown, options

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    args = parser.parse_args()
    print(markdown(HEADER, rows(args.sizes, args.rounds, options)))
