"""Per-evaluation cost on an accelerator: JAX and the torch port on CUDA against hand-written glue.

Every contender minimises Rosenbrock with scipy's L-BFGS-B for a fixed number of iterations on
parameters that live on the accelerator; the time per evaluation is a run's wall time over its
`nfev`, runs are interleaved and ratios are medians of per-round ratios (`_timing.py`).

- JAX: scipy driving a hand-written `jax.jit(jax.value_and_grad(f))` on the flat vector (cast on
  the host to the dtype, so float32 crosses as float32, and the gradient back as float64) against
  `pytree_minimize.minimize` on 3 leaves of that dtype placed on the device, with the library's
  BLAS policy ("auto") and with `blas_threads=None` (BLAS left at the machine's default).
- torch: a hand-written closure (`torch.from_numpy(x).to(device, dtype)`, split into the same
  three leaves, the same nested objective, `torch.autograd.grad`, gradient back as float64)
  against the torch port on 3 CUDA leaves.

The hand-written glue also runs with BLAS held to one thread ("hand, one"), so the table shows
what the thread count does to scipy's own work on this machine.

    python benchmarks/gpu.py                       # writes benchmarks/gpu.md where CUDA is present
    python benchmarks/gpu.py --sizes 1000 100000 --rounds 3
    python benchmarks/gpu.py --cpu --sizes 1000    # the same measurement on the CPU (a dry run)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as sopt  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # this checkout's package
from _timing import Run, Times, measure, ratio, start_point, timed, with_one_blas_thread  # noqa: E402

from pytree_minimize import minimize  # noqa: E402

ITERATIONS = {1_000: 100, 100_000: 40, 10_000_000: 8}
TARGET = 1.10


def options(n: int) -> dict:
    return {"maxiter": ITERATIONS.get(n, 20), "gtol": 0.0, "ftol": 0.0}


def thirds(n: int) -> list[int]:
    return [n // 3, n // 3, n - 2 * (n // 3)]


def rosenbrock(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def jax_contenders(n: int, dtype: type, device: jax.Device) -> dict[str, Run]:
    value_and_grad = jax.jit(jax.value_and_grad(rosenbrock))

    def hand_fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(jax.device_put(x.astype(dtype, copy=False), device))
        return float(value), np.asarray(grad, dtype=np.float64)

    def hand() -> int:
        x0 = start_point(n)
        return sopt.minimize(hand_fun, x0, jac=True, method="L-BFGS-B", options=options(n)).nfev

    def tree_objective(p: dict) -> jax.Array:
        return rosenbrock(jnp.concatenate([p["a"], p["b"], p["c"]]))

    def ours(blas_threads: object) -> Callable[[], int]:
        def run() -> int:
            parts = np.split(start_point(n).astype(dtype), np.cumsum(thirds(n))[:-1])
            x0 = dict(zip("abc", (jax.device_put(part, device) for part in parts)))
            result = minimize(
                tree_objective,
                x0,
                method="L-BFGS-B",
                options=options(n),
                blas_threads=blas_threads,
            )
            return result.nfev

        return run

    return {
        "hand": lambda: timed(hand),
        "hand, one": with_one_blas_thread(lambda: timed(hand)),
        "ours": lambda: timed(ours("auto")),
        "ours, BLAS default": lambda: timed(ours(None)),
    }


def torch_contenders(n: int, dtype: type, device: str) -> dict[str, Run]:
    import torch

    from pytree_minimize.ports.torch import minimize as torch_minimize

    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    widths = thirds(n)

    def rosenbrock_torch(x: torch.Tensor) -> torch.Tensor:
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    def tree_objective(p: dict) -> torch.Tensor:
        return rosenbrock_torch(torch.cat([p["a"], p["b"], p["c"]]))

    def hand_fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat = torch.from_numpy(x.astype(dtype, copy=False)).to(device).requires_grad_(True)
        value = tree_objective(dict(zip("abc", flat.split_with_sizes(widths))))
        (grad,) = torch.autograd.grad(value, flat)
        return value.item(), grad.cpu().numpy().astype(np.float64)

    def hand() -> int:
        x0 = start_point(n)
        return sopt.minimize(hand_fun, x0, jac=True, method="L-BFGS-B", options=options(n)).nfev

    def port() -> int:
        parts = np.split(start_point(n).astype(dtype), np.cumsum(widths)[:-1])
        x0 = {k: torch.from_numpy(part).to(device, torch_dtype) for k, part in zip("abc", parts)}
        return torch_minimize(tree_objective, x0, method="L-BFGS-B", options=options(n)).nfev

    return {"torch hand": lambda: timed(hand), "torch port": lambda: timed(port)}


def ms(times: Times, name: str) -> str:
    return f"{1e3 * float(np.median(times[name])):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (a dry run)")
    parser.add_argument("--out", type=Path, default=HERE / "gpu.md")
    args = parser.parse_args()

    accelerators = [d for d in jax.devices() if d.platform != "cpu"]
    if not accelerators and not args.cpu:
        print("No accelerator found by JAX: nothing measured (--cpu runs the same on the CPU).")
        return
    device = jax.devices("cpu")[0] if args.cpu else accelerators[0]
    torch_device = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch_device = "cpu" if args.cpu else ("cuda" if torch.cuda.is_available() else None)

    load = os.getloadavg()[0]
    header = (
        "| n | dtype | hand (ms/eval) | ours / hand | ours with BLAS default / hand | "
        "hand, one BLAS thread (ms/eval) | torch hand (ms/eval) | torch port / hand | "
        f"<= {TARGET:.2f} |"
    )
    rows = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for n in args.sizes:
        for dtype in (np.float32, np.float64):
            contenders = jax_contenders(n, dtype, device)
            if torch_device is not None:
                contenders.update(torch_contenders(n, dtype, torch_device))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                wall, _ = measure(contenders, args.rounds)
            ours = ratio(wall, "ours", "hand")
            checked = [ours]
            torch_cells = ["", ""]
            if torch_device is not None:
                port = ratio(wall, "torch port", "torch hand")
                checked.append(port)
                torch_cells = [ms(wall, "torch hand"), f"{port:.2f}x"]
            verdict = "ok" if max(checked) <= TARGET else f"over {TARGET:.2f}"
            cells = [
                f"{n:,}",
                np.dtype(dtype).name,
                ms(wall, "hand"),
                f"{ours:.2f}x",
                f"{ratio(wall, 'ours, BLAS default', 'hand'):.2f}x",
                ms(wall, "hand, one"),
                *torch_cells,
                verdict,
            ]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)

    text = "\n".join(
        [
            "# Per-evaluation cost on an accelerator",
            "",
            f"Produced by `python benchmarks/gpu.py{' --cpu' if args.cpu else ''}` "
            f"({time.strftime('%Y-%m-%d')}, {device.device_kind}, {platform.machine()} host with "
            f"{os.cpu_count()} cores, load average {load:.1f}). L-BFGS-B on Rosenbrock, 3 leaves "
            f"on the device, iterations {ITERATIONS}, medians of {args.rounds} interleaved "
            "rounds; ratios are per-evaluation wall time against the hand-written glue.",
            "",
            *rows,
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
