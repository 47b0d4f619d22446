"""Sparse derivatives and IPOPT at scale: time (split into detection, compile and solve) and peak
memory, against hand-written glue and against the dense path.

Problems:

* DTOC1L (CUTEst, sif2jax): 5,998 variables, 3,996 equalities, as a two-leaf pytree
  (`controls`, `states`).
* `control`: a discretised optimal-control problem (a forced Van der Pol oscillator, explicit
  Euler on a horizon of 10) written as a pytree `{'states': (T+1, 2), 'controls': (T, 2)}`:
  n = 4T + 2 variables, 2T equality constraints (the dynamics), the initial state fixed by
  bounds, controls in [-1, 1].

Contenders, each in a fresh subprocess (`ru_maxrss` is a per-process high-water mark), rounds
interleaved with the order rotating, medians reported:

* `ours`: `pytree_minimize.minimize(..., method=..., sparse='auto')` on the pytree;
* `ours-sparse`: the same with `sparse=True` (trust-constr: sparse Hessians in place of
  Hessian-vector products);
* `glue`: what a user writes by hand on the flat vector: asdex's documented calls
  (`jacobian_coloring`/`hessian_coloring`, then `jacobian_from_coloring`/
  `hessian_from_coloring` to scipy CSR matrices, or `decompress_data` for IPOPT's triplets)
  handed to `scipy.optimize.minimize(method='trust-constr')` or to a `cyipopt.Problem` with
  the Lagrangian's Hessian coloured as one function;
* `dense`: `pytree_minimize.minimize(..., sparse=False)` (run where it fits).

Time is split with JAX's own compile events (tracing, lowering, XLA compile) and a timer
around asdex's detection and colouring; "solve" is the rest (scipy or IPOPT, and every
evaluation). Imports and the problem's set-up are not counted.

    python benchmarks/sparse.py                       # DTOC1L, and control at 10^4 and 10^5
    python benchmarks/sparse.py --sizes 1e4 --rounds 3
    python benchmarks/sparse.py --million             # control at 10^6, IPOPT, once
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: Seconds a contender may run before it counts as "did not finish".
TIMEOUT = 900
#: ... and the dense path, which runs once (its ratio is to the first round's runs).
DENSE_TIMEOUT = 300

# ---------------------------------------------------------------------------------------------
# The problems (built in the child process).


def _jax() -> Any:
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def dtoc1l() -> dict[str, Any]:
    """DTOC1L from sif2jax, loaded alone (importing the sif2jax package builds every problem)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from conftest import load_cutest

    jax = _jax()
    import jax.numpy as jnp
    import numpy as np

    problem = load_cutest("_constrained_minimisation", "dtoc1l", "DTOC1L")
    k = (problem.n_periods - 1) * problem.n_controls
    args = problem.args

    def join(x: dict[str, Any]) -> Any:
        return jnp.concatenate([x["controls"], x["states"]])

    def split(y: Any) -> dict[str, Any]:
        return {"controls": y[:k], "states": y[k:]}

    lb, ub = (np.asarray(side) for side in problem.bounds)
    del jax
    return {
        "objective": lambda x: problem.objective(join(x), args),
        "constraint": lambda x: problem.constraint(join(x))[0],
        "x0": split(np.asarray(problem.y0)),
        "lb": split(lb),
        "ub": split(ub),
        "expected": float(problem.expected_objective_value),
    }


MU, RHO, HORIZON = 1.0, 0.1, 10.0


def control(n: int) -> dict[str, Any]:
    """The forced Van der Pol problem with about `n` variables."""
    _jax()
    import jax.numpy as jnp
    import numpy as np

    steps = max(2, (n - 2) // 4)
    h = HORIZON / steps

    def velocity(x: Any, u: Any) -> Any:
        x1, x2 = x[:, 0], x[:, 1]
        return jnp.stack([x2 + u[:, 0], -x1 + MU * (1.0 - x1**2) * x2 + u[:, 1]], axis=1)

    def objective(z: dict[str, Any]) -> Any:
        x, u = z["states"], z["controls"]
        running = jnp.sum(x[:-1] ** 2) + RHO * jnp.sum(u**2)
        return h * running + 10.0 * jnp.sum(x[-1] ** 2)

    def dynamics(z: dict[str, Any]) -> Any:
        x, u = z["states"], z["controls"]
        return x[1:] - x[:-1] - h * velocity(x[:-1], u)

    start = np.array([2.0, 0.0])
    x0 = {"states": np.tile(start, (steps + 1, 1)), "controls": np.zeros((steps, 2))}
    lb = {"states": np.full((steps + 1, 2), -np.inf), "controls": np.full((steps, 2), -1.0)}
    ub = {"states": np.full((steps + 1, 2), np.inf), "controls": np.full((steps, 2), 1.0)}
    lb["states"][0] = ub["states"][0] = start
    return {
        "objective": objective,
        "constraint": dynamics,
        "x0": x0,
        "lb": lb,
        "ub": ub,
        "expected": None,
    }


# ---------------------------------------------------------------------------------------------
# Timers: JAX's compile events and asdex's detection and colouring.


class Clock:
    def __init__(self) -> None:
        self.compile = 0.0
        self.detection = 0.0
        self._depth = 0

    def install(self) -> None:
        import asdex
        import jax

        def listener(event: str, duration: float, **kwargs: Any) -> None:
            if self._depth == 0 and event.startswith("/jax/core/compile/"):
                self.compile += duration

        jax.monitoring.register_event_duration_secs_listener(listener)
        for name in (
            "jacobian_sparsity",
            "hessian_sparsity",
            "jacobian_coloring",
            "hessian_coloring",
            "jacobian_coloring_from_sparsity",
            "hessian_coloring_from_sparsity",
        ):
            setattr(asdex, name, self._timed(getattr(asdex, name)))

    def _timed(self, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.detection += time.perf_counter() - start

        return timed


# ---------------------------------------------------------------------------------------------
# The contenders.


def run_ours(problem: dict[str, Any], method: str, sparse: Any) -> dict[str, Any]:
    import scipy.optimize as sopt

    from pytree_minimize import Bounds, minimize

    res = minimize(
        problem["objective"],
        problem["x0"],
        method=method,
        bounds=Bounds(problem["lb"], problem["ub"]),
        constraints=sopt.NonlinearConstraint(problem["constraint"], 0.0, 0.0),
        sparse=sparse,
        options=_options(method),
    )
    sparsity = res.get("sparsity", {})
    jac = sparsity.get("constraints[0].jac")
    return {
        "fun": float(res.fun),
        "nit": int(res.nit),
        "status": int(res.status),
        "nnz": None if jac is None else int(jac.nnz),
        "colors": None if jac is None else int(jac.colors),
    }


def run_glue(problem: dict[str, Any], method: str) -> dict[str, Any]:
    """The hand-written glue on the flat vector."""
    import asdex
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.optimize as sopt
    from jax.flatten_util import ravel_pytree

    y0, unravel = ravel_pytree(problem["x0"])
    y0 = np.asarray(y0)

    def f(y: Any) -> Any:
        return problem["objective"](unravel(y))

    def c(y: Any) -> Any:
        return jnp.ravel(problem["constraint"](unravel(y)))

    lb = np.asarray(ravel_pytree(problem["lb"])[0])
    ub = np.asarray(ravel_pytree(problem["ub"])[0])
    m = int(jax.eval_shape(c, y0).shape[0])
    value_and_grad = jax.jit(jax.value_and_grad(f))
    values = jax.jit(c)
    jac_coloring = asdex.jacobian_coloring(c, y0)

    if method == "trust-constr":
        jacobian = asdex.jacobian_from_coloring(c, jac_coloring, "scipy_csr")
        hessian = asdex.hessian_from_coloring(f, asdex.hessian_coloring(f, y0), "scipy_csr")

        def weighted(y: Any, v: Any) -> Any:
            return jnp.dot(c(y), v)

        weighted_coloring = asdex.hessian_coloring(weighted, y0, np.ones(m), argnums=0)
        weighted_hessian = asdex.hessian_from_coloring(weighted, weighted_coloring, "scipy_csr")

        def fun(y: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(y)
            return float(value), np.asarray(grad)

        res = sopt.minimize(
            fun,
            y0,
            jac=True,
            hess=hessian,
            method="trust-constr",
            bounds=sopt.Bounds(lb, ub),
            constraints=sopt.NonlinearConstraint(
                lambda y: np.asarray(values(y)), 0.0, 0.0, jac=jacobian, hess=weighted_hessian
            ),
            options=_options(method),
        )
        return {"fun": float(res.fun), "nit": int(res.nit), "status": int(res.status)}

    import cyipopt

    def lagrangian(y: Any, weights: Any) -> Any:
        return weights[0] * f(y) + jnp.dot(c(y), weights[1:])

    hess_coloring = asdex.hessian_coloring(lagrangian, y0, np.ones(m + 1), argnums=0)
    compressed_jacobian = asdex.compressed_jacobian_from_coloring(c, jac_coloring)
    compressed_hessian = asdex.compressed_hessian_from_coloring(lagrangian, hess_coloring)
    jac_values = jax.jit(lambda y: asdex.decompress_data(compressed_jacobian(y), jac_coloring))
    hess_values = jax.jit(
        lambda y, w: asdex.decompress_data(compressed_hessian(y, w), hess_coloring)
    )
    rows, cols = hess_coloring.sparsity.rows, hess_coloring.sparsity.cols
    lower = rows >= cols

    class Problem:
        def objective(self, y: np.ndarray) -> float:
            return float(value_and_grad(y)[0])

        def gradient(self, y: np.ndarray) -> np.ndarray:
            return np.asarray(value_and_grad(y)[1])

        def constraints(self, y: np.ndarray) -> np.ndarray:
            return np.asarray(values(y))

        def jacobian(self, y: np.ndarray) -> np.ndarray:
            return np.asarray(jac_values(y))

        def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
            return jac_coloring.sparsity.rows, jac_coloring.sparsity.cols

        def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
            return rows[lower], cols[lower]

        def hessian(self, y: np.ndarray, multipliers: np.ndarray, sigma: float) -> np.ndarray:
            weights = np.concatenate([[sigma], multipliers])
            return np.asarray(hess_values(y, weights))[lower]

    solver = cyipopt.Problem(
        n=y0.size, m=m, problem_obj=Problem(), lb=lb, ub=ub, cl=np.zeros(m), cu=np.zeros(m)
    )
    for key, value in {"print_level": 0, "sb": "yes", **_options(method)}.items():
        solver.add_option(key, value)
    _, info = solver.solve(y0)
    return {"fun": float(info["obj_val"]), "nit": None, "status": int(info["status"])}


def _options(method: str) -> dict[str, Any]:
    return {"maxiter": 1000} if method == "trust-constr" else {}


def child(name: str, size: int, method: str, contender: str) -> dict[str, Any]:
    import resource

    problem = dtoc1l() if name == "dtoc1l" else control(size)
    clock = Clock()
    clock.install()
    base = _rss()
    start, cpu = time.perf_counter(), time.process_time()
    if contender == "glue":
        out = run_glue(problem, method)
    else:
        sparse = {"ours": "auto", "ours-sparse": True, "dense": False}[contender]
        out = run_ours(problem, method, sparse)
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.update(
        total=total,
        cpu=cpu,
        detection=clock.detection,
        compile=clock.compile,
        solve=total - clock.detection - clock.compile,
        peak_mb=peak / 2**20,
        base_mb=base / 2**20,
        n=sum(int(a.size) for a in problem["x0"].values()),
    )
    return out


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------
# The parent: interleaved rounds of subprocesses, medians, the table.


def spawn(name: str, size: int, method: str, contender: str) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--child", name, str(size), method, contender]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=ROOT)
    timeout = DENSE_TIMEOUT if contender == "dense" else TIMEOUT
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"  {name} {size} {method} {contender} failed:\n{out.stderr[-2000:]}", flush=True)
        return None
    return json.loads(lines[-1])


def measure(
    name: str, size: int, method: str, contenders: list[str], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for round_index in range(rounds):
        shift = round_index % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            if contender == "dense" and runs[contender]:
                continue  # minutes where the others take seconds: once
            if runs[contender] and runs[contender][-1] is None:
                continue  # did not finish once: not again
            result = spawn(name, size, method, contender)
            runs[contender].append(result)  # type: ignore[arg-type]
            summary = "did not finish" if result is None else (
                f"total {result['total']:.2f}s, peak {result['peak_mb']:.0f} MB, "
                f"fun {result['fun']:.7g}"
            )  # fmt: skip
            print(f"  {name} n={size} {method} {contender}: {summary}", flush=True)
    return runs


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _ratio_cell(mine: list[dict], theirs: list[dict], key: str) -> str:
    """The median per-round ratio (a baseline that ran once pairs with the first round); where
    the baseline did not finish, the bound its time limit gives."""
    if not theirs:
        return ""
    pairs = [(a, b) for a, b in zip(mine, theirs) if a is not None and b is not None]
    if pairs:
        return f"{statistics.median(a[key] / b[key] for a, b in pairs):.2f}"
    if key == "total" and mine and mine[0] is not None:
        return f"< {mine[0][key] / DENSE_TIMEOUT:.3f}"
    return ""


def table(rows: list[tuple[str, str, str, dict[str, list[dict]]]]) -> str:
    header = (
        "| problem | n | method | contender | detection s | compile s | solve s | total s | "
        "CPU s | peak MB | time vs glue | CPU vs glue | memory vs glue | time vs dense | "
        "memory vs dense | f |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for problem, size, method, runs in rows:
        for contender, results in runs.items():
            done = [r for r in results if r is not None]
            if not done:
                limit = DENSE_TIMEOUT if contender == "dense" else TIMEOUT
                lines.append(
                    f"| {problem} | {size} | {method} | {contender} | | | | > {limit} "
                    "| | | | | | | | did not finish |"
                )
                continue
            keys = ("detection", "compile", "solve", "total", "cpu")
            cells = [f"{_median(done, k):.2f}" for k in keys]
            cells.append(f"{_median(done, 'peak_mb'):.0f}")
            for baseline, ratios in (
                ("glue", ("total", "cpu", "peak_mb")),
                ("dense", ("total", "peak_mb")),
            ):
                for key in ratios:
                    theirs = runs.get(baseline, []) if contender != baseline else []
                    cells.append(_ratio_cell(results, theirs, key))
            cells.append(f"{_median(done, 'fun'):.7g}")
            n = done[0]["n"]
            lines.append(
                f"| {problem} | {n:,} | {method} | {contender} | " + " | ".join(cells) + " |"
            )
    return header + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1e4,1e5", help="control-problem sizes")
    parser.add_argument("--no-dtoc1l", action="store_true")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense path")
    parser.add_argument("--million", action="store_true", help="control at 10^6, IPOPT, once")
    options = parser.parse_args()
    if options.child:
        name, size, method, contender = options.child
        print(json.dumps(child(name, int(size), method, contender)), flush=True)
        return
    rows = []
    if options.million:
        runs = measure("control", 10**6, "ipopt", ["ours"], 1)
        rows.append(("control", "1e6", "ipopt", runs))
    else:
        if not options.no_dtoc1l:
            for method in ("trust-constr", "ipopt"):
                contenders = ["ours", "glue"] + ([] if options.no_dense else ["dense"])
                if method == "trust-constr":
                    contenders.insert(1, "ours-sparse")
                runs = measure("dtoc1l", 0, method, contenders, options.rounds)
                rows.append(("DTOC1L", "5998", method, runs))
        for text in options.sizes.split(","):
            size = int(float(text))
            for method in ("trust-constr", "ipopt"):
                dense = size <= 10**4 and not options.no_dense
                contenders = ["ours", "glue"] + (["dense"] if dense else [])
                runs = measure("control", size, method, contenders, options.rounds)
                rows.append(("control", text, method, runs))
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
