"""Subprocess worker for `tests/test_sharding.py`: JAX fixes its device count at start-up, so
sharded runs happen in fresh processes. Prints one JSON line, prefixed with `RESULT `.

    python tests/_sharding_worker.py mesh              # 8 host devices in one process
    python tests/_sharding_worker.py process I N PORT  # process I of N, via jax.distributed

The problem: least squares over data rows sharded across the mesh, with a replicated parameter
leaf `w` and a parameter leaf `v` sharded over the mesh, coupled through the residual.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ROWS, N, M = 296, 12, 16  # ROWS and M divide by 8 and by 4; shapes distinct in the HLO text
METHODS = ("L-BFGS-B", "BFGS", "trust-ncg", "trust-exact", "SLSQP")


def data() -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.normal(size=(ROWS, N))
    b = a @ rng.normal(size=N) + 0.1 * rng.normal(size=ROWS)
    t = rng.normal(size=M)
    return {"a": a, "b": b, "t": t}


def loss(p: dict, a: Any, b: Any, t: Any) -> Any:
    import jax.numpy as jnp

    r = a @ p["w"] + jnp.mean(p["v"]) - b
    return 0.5 * jnp.mean(r**2) + 0.5 * jnp.sum((p["v"] - t) ** 2) + 0.05 * jnp.sum(p["v"] ** 4)


def numpy_loss_and_grad(flat: Any, a: Any, b: Any, t: Any) -> tuple[float, Any]:
    """`loss` and its gradient by hand on scipy's flat vector (optree order: `v`, then `w`)."""
    import numpy as np

    v, w = flat[:M], flat[M:]
    r = a @ w + v.mean() - b
    value = 0.5 * np.mean(r**2) + 0.5 * np.sum((v - t) ** 2) + 0.05 * np.sum(v**4)
    grad_w = a.T @ r / ROWS
    grad_v = np.full(M, r.mean() / M) + (v - t) + 0.2 * v**3
    return float(value), np.concatenate([grad_v, grad_w])


def constraints() -> list[dict]:
    import jax.numpy as jnp

    return [{"type": "eq", "fun": lambda p: jnp.sum(p["v"]) - 1.0}]


def run(x0: dict, args: tuple, method: str) -> Any:
    from pytree_minimize import minimize

    return minimize(
        loss, x0, args=args, method=method, constraints=constraints() if method == "SLSQP" else ()
    )


def summary(res: Any) -> dict[str, Any]:
    import numpy as np

    from pytree_minimize._backends.jax import to_numpy
    from pytree_minimize._core.tree import flatten

    # `to_numpy` gathers a leaf that other processes hold parts of.
    leaves, _ = flatten(res.x)
    return {
        "fun": float(res.fun),
        "nfev": int(res.nfev),
        "x": np.concatenate([to_numpy(leaf).ravel() for leaf in leaves]).tolist(),
    }


def single_device() -> dict[str, Any]:
    """The reference: NumPy data and NumPy x0 on one device, and scipy on the hand-written flat
    problem."""
    import numpy as np
    import scipy.optimize as sopt

    d = data()
    x0 = {"w": np.zeros(N), "v": np.zeros(M)}
    out = {method: summary(run(x0, (d["a"], d["b"], d["t"]), method)) for method in METHODS}
    flat = sopt.minimize(
        numpy_loss_and_grad, np.zeros(M + N), args=(d["a"], d["b"], d["t"]), jac=True,
        method="L-BFGS-B",
    )  # fmt: skip
    out["scipy"] = {"fun": float(flat.fun), "nfev": int(flat.nfev), "x": flat.x.tolist()}
    return out


def sharded_problem(mesh: Any) -> tuple[dict, tuple]:
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    def put(array: Any, spec: Any) -> Any:
        # Works across processes too: each process supplies the blocks its devices hold.
        sharding = NamedSharding(mesh, spec)
        return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

    import numpy as np

    d = data()
    x0 = {"w": put(np.zeros(N), P()), "v": put(np.zeros(M), P("d"))}
    args = (put(d["a"], P("d", None)), put(d["b"], P("d")), put(d["t"], P("d")))
    return x0, args


def mesh_checks() -> dict[str, Any]:
    import jax
    import numpy as np
    from jax.sharding import Mesh

    from pytree_minimize import minimize

    mesh = Mesh(np.array(jax.devices()), ("d",))
    x0, args = sharded_problem(mesh)
    out: dict[str, Any] = {"devices": len(jax.devices()), "reference": single_device()}
    out["explicit"] = explicit_checks()
    results = {method: run(x0, args, method) for method in METHODS}
    out["sharded"] = {method: summary(res) for method, res in results.items()}

    # Result leaves (x and jac) carry x0's shardings.
    res = results["L-BFGS-B"]
    out["x_shardings_kept"] = all(
        res.x[k].sharding.is_equivalent_to(x0[k].sharding, x0[k].ndim) for k in x0
    )
    out["jac_shardings_kept"] = all(
        res.jac[k].sharding.is_equivalent_to(x0[k].sharding, x0[k].ndim) for k in x0
    )

    # The sharding each leaf has inside the compiled objective, as XLA placed it.
    seen: dict[str, Any] = {}

    def recorder(key: str) -> Any:
        def record(sharding: Any) -> None:
            seen[key] = sharding

        return record

    def inspected(p: dict, a: Any, b: Any, t: Any) -> Any:
        for key in p:
            jax.debug.inspect_array_sharding(p[key], callback=recorder(key))
        return loss(p, a, b, t)

    minimize(inspected, x0, args=args, method="L-BFGS-B", options={"maxiter": 2})
    out["leaf_shardings_inside"] = {
        key: bool(seen[key].is_equivalent_to(x0[key].sharding, x0[key].ndim)) for key in x0
    }

    # The compiled value-and-gradient that `minimize` ran: the data enters as per-device blocks
    # and is never gathered whole. A fresh objective compiles anew; the `jax.jit` it makes is
    # caught on its way out.
    made: list[Any] = []
    real_jit = jax.jit

    def catching_jit(fun: Any, **kwargs: Any) -> Any:
        made.append(real_jit(fun, **kwargs))
        return made[-1]

    def fresh(p: dict, a: Any, b: Any, t: Any) -> Any:
        return loss(p, a, b, t)

    jax.jit = catching_jit
    try:
        minimize(fresh, x0, args=args, method="L-BFGS-B", options={"maxiter": 2})
    finally:
        jax.jit = real_jit
    (compiled,) = [fn.lower(np.zeros(M + N), list(args)).compile() for fn in made]
    text = compiled.as_text()
    devices = len(jax.devices())
    out["hlo"] = {
        "full_data_shapes": [s for s in (f"f64[{ROWS},{N}]", f"f64[{ROWS}]") if s in text],
        "block_shapes": [
            s for s in (f"f64[{ROWS // devices},{N}]", f"f64[{ROWS // devices}]") if s in text
        ],
        "all_gather_of_data": any(
            "all-gather" in line and (f"[{ROWS}," in line or f"[{ROWS}]" in line)
            for line in text.splitlines()
        ),
        "input_shardings": [str(s) for s in compiled.input_shardings[0][1]],
        "output_sharding": str(compiled.output_shardings),
    }
    return out


def explicit_loss(p: dict, t: Any) -> Any:
    import jax.numpy as jnp

    v, w = p["v"], p["w"]
    return (
        0.5 * jnp.sum((v - t) ** 2) + 0.05 * jnp.sum(v**4) + 0.5 * jnp.sum((w - jnp.mean(v)) ** 2)
    )


def explicit_checks() -> dict[str, Any]:
    """A mesh with explicit axes (`jax.make_mesh`'s default), where shardings are part of the
    arrays' types."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from pytree_minimize import minimize

    mesh = jax.make_mesh((len(jax.devices()),), ("d",))
    t = data()["t"]
    reference = minimize(explicit_loss, {"w": np.zeros(N), "v": np.zeros(M)}, args=(t,))
    specs: dict[str, list] = {}

    def axes(spec: Any, ndim: int) -> list:
        # Mesh axes per dimension: P() and P(None) are the same placement.
        return list(spec) + [None] * (ndim - len(spec))

    def typed(p: dict, t: Any) -> Any:
        specs.update({k: axes(jax.typeof(v).sharding.spec, v.ndim) for k, v in p.items()})
        return explicit_loss(p, t)

    x0 = {
        "w": jax.device_put(np.zeros(N), NamedSharding(mesh, P())),
        "v": jax.device_put(np.zeros(M), NamedSharding(mesh, P("d"))),
    }
    res = minimize(typed, x0, args=(jax.device_put(t, NamedSharding(mesh, P("d"))),))
    return {
        "axis_types": str(mesh.axis_types),
        "reference": summary(reference),
        "sharded": summary(res),
        "specs_inside": specs,
        "x_specs": {k: axes(v.sharding.spec, v.ndim) for k, v in res.x.items()},
    }


def process_checks(process_id: int, num_processes: int, port: int) -> dict[str, Any]:
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
    )
    try:
        import numpy as np
        from jax.sharding import Mesh

        mesh = Mesh(np.array(jax.devices()), ("d",))
        x0, args = sharded_problem(mesh)
        out: dict[str, Any] = {
            "process": jax.process_index(),
            "processes": jax.process_count(),
            "devices": len(jax.devices()),
            "local_devices": len(jax.local_devices()),
        }
        results = {method: run(x0, args, method) for method in ("L-BFGS-B", "trust-ncg")}
        out["sharded"] = {method: summary(res) for method, res in results.items()}
        # Data parallel: NumPy parameters, only the data spread over the processes.
        numpy_x0 = {"w": np.zeros(N), "v": np.zeros(M)}
        out["numpy_x0"] = summary(run(numpy_x0, args, "L-BFGS-B"))
        res = results["L-BFGS-B"]
        out["x_shardings_kept"] = all(
            res.x[k].sharding.is_equivalent_to(x0[k].sharding, x0[k].ndim) for k in x0
        )
        out["v_fully_addressable"] = bool(res.x["v"].is_fully_addressable)
        return out
    finally:
        jax.distributed.shutdown()


def main() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    mode = sys.argv[1]
    if mode == "mesh":
        out = mesh_checks()
    elif mode == "process":
        out = process_checks(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "single":
        out = single_device()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
