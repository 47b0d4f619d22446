"""Data-parallel least squares on 1, 2, 4 and 8 devices: time per evaluation.

The rows of the data are sharded over a one-axis mesh of devices: the machine's accelerators
where it has some (as many of 1, 2, 4, 8 as it holds; 10^6 rows by default), else CPU host
devices (`--platform cpu` forces those); the parameters are replicated. Each device count runs
in its own process (JAX fixes the device count when it starts) and reports two figures:

- *evaluation*: one call of the flat value-and-gradient that scipy drives, from a NumPy float64
  vector in to the float64 value and gradient out (median over calls);
- *in minimize*: the wall time of a whole L-BFGS-B run divided by its `nfev` (median over runs),
  which adds scipy's own work and the conversions.

    python benchmarks/sharded.py                    # writes benchmarks/sharded.md
    python benchmarks/sharded.py --rows 1000000     # the full size, on a machine with the memory

The issue asks for 10^4 parameters and 10^6 rows; 10^6 x 10^4 float32 is 40 GB, so the default
scales the rows down to what the machine holds (`--rows`). Host devices share the machine's
cores, so on a small machine more devices cannot run faster: the table then shows what sharding
costs, not what it gains.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEVICE_COUNTS = (1, 2, 4, 8)
HERE = Path(__file__).resolve().parent


def child(devices: int, rows: int, params: int, calls: int, runs: int, iters: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from pytree_minimize import minimize
    from pytree_minimize._backends.jax import JaxBackend
    from pytree_minimize._core.tree import build_layout

    assert len(jax.devices()) >= devices, jax.devices()
    mesh = Mesh(np.array(jax.devices()[:devices]), ("rows",))
    by_rows = NamedSharding(mesh, P("rows"))
    replicated = NamedSharding(mesh, P())

    # The data is generated on the devices, block by block, so no host copy of it ever exists;
    # partitionable threefry gives the same numbers whatever the device count.
    jax.config.update("jax_threefry_partitionable", True)

    @jax.jit
    def make_data(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_a, k_w, k_e = jax.random.split(key, 3)
        a = jax.random.normal(k_a, (rows, params), jnp.float32)
        a = jax.lax.with_sharding_constraint(a, NamedSharding(mesh, P("rows", None)))
        w = jax.random.normal(k_w, (params,), jnp.float32) / np.sqrt(params)
        b = a @ w + 0.1 * jax.random.normal(k_e, (rows,), jnp.float32)
        return a, jax.lax.with_sharding_constraint(b, by_rows)

    a, b = make_data(jax.random.key(0))
    a.block_until_ready()

    def loss(p: dict, a: jax.Array, b: jax.Array) -> jax.Array:
        return 0.5 * jnp.mean((a @ p["w"] + p["c"] - b) ** 2)

    x0 = {
        "w": jax.device_put(np.zeros(params, np.float32), replicated),
        "c": jax.device_put(np.zeros((), np.float32), replicated),
    }

    # The exact callable `minimize` hands to scipy.
    backend = JaxBackend(x0, (a, b))
    layout = build_layout(x0, describe_leaf=backend.describe_leaf)
    evaluate = backend.value_and_grad(loss, layout, (a, b))
    x = np.random.default_rng(0).normal(size=layout.n) / np.sqrt(params)
    evaluate(x)  # compile
    per_call, cpu_per_call = [], []
    for _ in range(calls):
        start, cpu_start = time.perf_counter(), time.process_time()
        evaluate(x)
        per_call.append(time.perf_counter() - start)
        cpu_per_call.append(time.process_time() - cpu_start)

    options = {"maxiter": iters, "gtol": 0.0, "ftol": 0.0}
    minimize(loss, x0, args=(a, b), method="L-BFGS-B", options={"maxiter": 1})  # warm
    per_eval, fun, nfev = [], None, None
    for _ in range(runs):
        start = time.perf_counter()
        res = minimize(loss, x0, args=(a, b), method="L-BFGS-B", options=options)
        per_eval.append((time.perf_counter() - start) / res.nfev)
        fun, nfev = float(res.fun), int(res.nfev)
    return {
        "devices": devices,
        "evaluation_ms": 1e3 * statistics.median(per_call),
        "evaluation_cpu_ms": 1e3 * statistics.median(cpu_per_call),
        "minimize_ms": 1e3 * statistics.median(per_eval),
        "fun": fun,
        "nfev": nfev,
        "block_rows": rows // devices,
    }


def accelerators() -> tuple[str, int]:
    """The platform and device count JAX finds by default ("cpu" where no accelerator)."""
    probe = "import jax; print(jax.default_backend(), jax.device_count())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if out.returncode != 0:
        return "cpu", 1
    platform_name, count = out.stdout.split()[-2:]
    return platform_name, int(count)


def run_child(devices: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    if args.platform == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", str(devices),
        "--rows", str(args.rows), "--params", str(args.params), "--calls", str(args.calls),
        "--runs", str(args.runs), "--iters", str(args.iters),
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{devices} devices failed:\n{out.stderr[-4000:]}")
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def table(results: list[dict], args: argparse.Namespace, command: str, load: list) -> str:
    lines = [
        "# Sharded least squares: time per evaluation",
        "",
        f"Produced by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores, {args.platform} devices; 1-minute load average "
        f"{min(load):.1f} to {max(load):.1f} during the runs).",
        "",
        f"Data-parallel least squares: {args.params:,} float32 parameters (replicated) and "
        f"{args.rows:,} rows sharded over the devices; value and gradient in one compiled call.",
        f"*evaluation*: median of {args.calls} calls of the flat value-and-gradient that scipy "
        "drives (wall time, and CPU time of all the process's threads). *in minimize*: L-BFGS-B, "
        f"{args.iters} iterations, wall time / nfev, median of {args.runs} runs; it adds "
        f"scipy's own work on the {args.params:,}-vector.",
        "",
        "| devices | rows per device | evaluation (ms) | evaluation CPU (ms) | "
        "in minimize (ms per eval) | speed-up | fun | nfev |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    base = results[0]["evaluation_ms"]
    for r in results:
        lines.append(
            f"| {r['devices']} | {r['block_rows']:,} | {r['evaluation_ms']:.1f} | "
            f"{r['evaluation_cpu_ms']:.1f} | {r['minimize_ms']:.1f} | "
            f"{base / r['evaluation_ms']:.2f}x | {r['fun']:.6g} | {r['nfev']} |"
        )
    same = "The `fun` column is the same answer on every device count."
    if args.platform == "cpu":
        note = (
            "Host devices share the machine's cores, so on a machine with fewer cores than "
            "devices more devices cannot run faster; there the table shows what partitioning "
            f"costs. {same}"
        )
    else:
        note = f"The data is generated on the devices; no host copy of it exists. {same}"
    lines += ["", note]
    if args.rows < 1_000_000:
        lines.append(
            f"The target size, 10^6 rows, is {4e6 * args.params / 1e9:.0f} GB of float32 data; "
            f"this run scales the rows down to {args.rows:,} to fit the machine "
            "(`--rows 1000000` runs the full size)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="65,536 on CPU, 10^6 on accelerators")
    parser.add_argument("--platform", choices=["auto", "cpu"], default="auto")
    parser.add_argument("--params", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--devices", type=int, nargs="+", default=list(DEVICE_COUNTS))
    parser.add_argument("--out", type=Path, default=HERE / "sharded.md")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(HERE.parent))  # this checkout's package
        result = child(args.child, args.rows, args.params, args.calls, args.runs, args.iters)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.platform == "auto":
        args.platform, count = accelerators()
        if args.platform != "cpu":
            args.devices = [d for d in args.devices if d <= count]
    if args.rows is None:
        args.rows = 65_536 if args.platform == "cpu" else 1_000_000
    if any(args.rows % d for d in args.devices):
        parser.error(f"--rows {args.rows} must divide by every device count {args.devices}")
    results, load = [], [os.getloadavg()[0]]
    for devices in args.devices:
        results.append(run_child(devices, args))
        load.append(os.getloadavg()[0])
        print(json.dumps(results[-1]), flush=True)
    changed = [
        f" --{name} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for name, value in vars(args).items()
        if name not in ("out", "child", "platform", "devices", "rows")
        and value != parser.get_default(name)
    ]
    changed += [
        f" --rows {args.rows}"
        for default in [65_536 if args.platform == "cpu" else 1_000_000]
        if args.rows != default
    ]
    command = "python benchmarks/sharded.py" + "".join(changed)
    text = table(results, args, command, load)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
