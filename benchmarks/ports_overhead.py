"""Per-evaluation overhead of the PyTorch and TensorFlow ports against hand-written glue.

Every contender minimises Rosenbrock (n = 1000, float64) with scipy's L-BFGS-B for a fixed number
of iterations; the time per evaluation is a whole run's wall time divided by its number of
objective evaluations. The ports get the parameters as a nested structure of three leaves,
`{"a": (300,), "b": {"c": (20, 20), "d": (300,)}}`, and concatenate them inside the objective.
Runs are interleaved (one of each contender per round, after a warm-up run each) and each ratio is
the median over rounds of the per-round ratio, so a noisy, shared machine slows all alike. BLAS
is held to one thread for every contender (threadpoolctl, where installed).

Baselines, per framework:

- flat: scipy driving a hand-written closure on one flat float64 tensor (torch:
  `torch.autograd.grad`; TensorFlow: a `tf.function` around a GradientTape);
- flat, same objective: the same closure, but it splits the flat tensor into the three leaves
  and calls the ports' objective (which concatenates them again), so the ratio against it is
  what the port itself costs, apart from the objective's own work on a structure;
- dict_minimize: `dict_minimize.torch_api.minimize` / `dict_minimize.tensorflow_api.minimize` on
  the same three leaves (as a flat OrderedDict, which is what it takes), with its convention of an
  objective returning the value and a dict of gradients (from `torch.autograd.grad`, or a
  GradientTape inside a `tf.function`).

    python benchmarks/ports_overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt
from _timing import MAXITER, OPTIONS, N, Run, measure, ratio, start_point, timed

SIZES = (300, 400, 300)


def _parts(x: np.ndarray) -> list[np.ndarray]:
    return np.split(x, np.cumsum(SIZES)[:-1])


class _Counted:
    """Counts the calls of an objective (dict_minimize does not report `nfev`)."""

    def __init__(self, fun: Callable):
        self.fun = fun
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.fun(*args)


# ---------------------------------------------------------------------------------------------
# PyTorch.


def torch_contenders() -> dict[str, Run]:
    import torch
    from dict_minimize.torch_api import minimize as dm_minimize

    from pytree_minimize.ports.torch import minimize

    def rosenbrock(x: torch.Tensor) -> torch.Tensor:
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    def tree_objective(p: dict) -> torch.Tensor:
        return rosenbrock(torch.cat([p["a"], p["b"]["c"].reshape(-1), p["b"]["d"]]))

    def tree_start() -> dict:
        a, c, d = (torch.from_numpy(v.copy()) for v in _parts(start_point()))
        return {"a": a, "b": {"c": c.reshape(20, 20), "d": d}}

    def flat_closure(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat = torch.from_numpy(x).requires_grad_(True)
        value = rosenbrock(flat)
        (grad,) = torch.autograd.grad(value, flat)
        return value.item(), grad.numpy()

    def split_closure(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat = torch.from_numpy(x).requires_grad_(True)
        a, c, d = flat.split_with_sizes(SIZES)
        value = tree_objective({"a": a, "b": {"c": c.view(20, 20), "d": d}})
        (grad,) = torch.autograd.grad(value, flat)
        return value.item(), grad.numpy()

    def dict_objective(p: OrderedDict) -> tuple[torch.Tensor, OrderedDict]:
        value = rosenbrock(torch.cat([p["a"], p["c"].reshape(-1), p["d"]]))
        grads = torch.autograd.grad(value, list(p.values()))
        return value, OrderedDict(zip(p.keys(), grads))

    def port() -> int:
        return minimize(tree_objective, tree_start(), method="L-BFGS-B", options=OPTIONS).nfev

    def flat() -> int:
        result = sopt.minimize(
            flat_closure, start_point(), jac=True, method="L-BFGS-B", options=OPTIONS
        )
        return result.nfev

    def split() -> int:
        result = sopt.minimize(
            split_closure, start_point(), jac=True, method="L-BFGS-B", options=OPTIONS
        )
        return result.nfev

    def dict_minimize() -> int:
        start = tree_start()
        x0 = OrderedDict(a=start["a"], c=start["b"]["c"], d=start["b"]["d"])
        counted = _Counted(dict_objective)
        dm_minimize(counted, x0, method="L-BFGS-B", options=OPTIONS)
        return counted.calls

    return {
        "torch flat": lambda: timed(flat),
        "torch split": lambda: timed(split),
        "torch port": lambda: timed(port),
        "torch dict_minimize": lambda: timed(dict_minimize),
    }


# ---------------------------------------------------------------------------------------------
# TensorFlow.


def tensorflow_contenders() -> dict[str, Run]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from dict_minimize.tensorflow_api import minimize as dm_minimize

    from pytree_minimize.ports.tensorflow import minimize

    def rosenbrock(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def tree_objective(p: dict) -> tf.Tensor:
        return rosenbrock(tf.concat([p["a"], tf.reshape(p["b"]["c"], [-1]), p["b"]["d"]], 0))

    def tree_start() -> dict:
        a, c, d = (tf.constant(v) for v in _parts(start_point()))
        return {"a": a, "b": {"c": tf.reshape(c, (20, 20)), "d": d}}

    @tf.function
    def flat_value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = rosenbrock(x)
        return value, tape.gradient(value, x)

    def flat_closure(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = flat_value_and_grad(x)
        return value.numpy(), grad.numpy()

    @tf.function
    def split_value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            a, c, d = tf.split(x, SIZES)
            value = tree_objective({"a": a, "b": {"c": tf.reshape(c, (20, 20)), "d": d}})
        return value, tape.gradient(value, x)

    def split_closure(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = split_value_and_grad(x)
        return value.numpy(), grad.numpy()

    @tf.function
    def dict_value_and_grad(p: OrderedDict) -> tuple[tf.Tensor, OrderedDict]:
        leaves = list(p.values())
        with tf.GradientTape() as tape:
            tape.watch(leaves)
            value = rosenbrock(tf.concat([p["a"], tf.reshape(p["c"], [-1]), p["d"]], 0))
        return value, OrderedDict(zip(p.keys(), tape.gradient(value, leaves)))

    def port() -> int:
        return minimize(tree_objective, tree_start(), method="L-BFGS-B", options=OPTIONS).nfev

    def flat() -> int:
        result = sopt.minimize(
            flat_closure, start_point(), jac=True, method="L-BFGS-B", options=OPTIONS
        )
        return result.nfev

    def split() -> int:
        result = sopt.minimize(
            split_closure, start_point(), jac=True, method="L-BFGS-B", options=OPTIONS
        )
        return result.nfev

    def dict_minimize() -> int:
        start = tree_start()
        x0 = OrderedDict(a=start["a"], c=start["b"]["c"], d=start["b"]["d"])
        counted = _Counted(dict_value_and_grad)
        dm_minimize(counted, x0, method="L-BFGS-B", options=OPTIONS)
        return counted.calls

    return {
        "tf flat": lambda: timed(flat),
        "tf split": lambda: timed(split),
        "tf port": lambda: timed(port),
        "tf dict_minimize": lambda: timed(dict_minimize),
    }


# ---------------------------------------------------------------------------------------------


def main(rounds: int = 5) -> dict[str, float]:
    """Measure and print the ports' per-evaluation ratios; returns them by label."""
    contenders: dict[str, Run] = {}
    frameworks = []
    for framework, module, build in (
        ("torch", "torch", torch_contenders),
        ("tf", "tensorflow", tensorflow_contenders),
    ):
        if (
            importlib.util.find_spec(module) is None
            or importlib.util.find_spec("dict_minimize") is None
        ):
            print(f"  ({module} or dict_minimize not installed: skipping the {module} port)")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            contenders.update(build())
        frameworks.append(framework)
    if not contenders:
        return {}
    wall, cpu = measure(contenders, rounds)

    print(
        f"Ports: Rosenbrock n={N} in 3 leaves, L-BFGS-B, {MAXITER} iterations, "
        f"medians of {rounds} interleaved rounds (wall clock; process CPU time in brackets)"
    )
    ratios: dict[str, float] = {}
    for framework in frameworks:
        flat, flat_cpu = (statistics.median(t[f"{framework} flat"]) for t in (wall, cpu))
        print(
            f"  {framework} hand-written flat closure: {1e6 * flat:8.1f} us/eval "
            f"[{1e6 * flat_cpu:.1f} us CPU]"
        )
        rows = [
            ("port / flat closure", "port", "flat", "<= 1.15"),
            ("port / flat closure, same objective", "port", "split", "(the port's own cost)"),
            ("dict_minimize / port", "dict_minimize", "port", "(> 1: port faster)"),
        ]
        for label, name, baseline, target in rows:
            label = f"{framework} {label}"
            name, baseline = f"{framework} {name}", f"{framework} {baseline}"
            ratios[label] = ratio(wall, name, baseline)
            ratios[f"{label} (cpu)"] = ratio(cpu, name, baseline)
            print(
                f"  {label:<50} {ratios[label]:6.3f}x [{ratios[label + ' (cpu)']:6.3f}x]   "
                f"target {target}"
            )
    return ratios


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    main(rounds=parser.parse_args().rounds)
