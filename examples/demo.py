"""Fit a small nested-dict model with L-BFGS-B and bounds; print the fit beside the truth.

The data come from known weights, and the bound `w >= -1` excludes one of them (w[1] = -2), so
the fit pins w[1] at -1: `result.active_bounds` says which variables a bound holds, so that a
pinned variable is not mistaken for a failed fit. The same fit without bounds recovers the truth.
"""

import jax.numpy as jnp
import numpy as np

from pytree_minimize import Bounds, minimize

TRUE_W, TRUE_B = np.array([1.5, -2.0, 0.5]), 0.3
rng = np.random.default_rng(0)
features = rng.normal(size=(200, 3))
targets = features @ TRUE_W + TRUE_B + 0.01 * rng.normal(size=200)


def loss(params, x, y):
    prediction = x @ params["linear"]["w"] + params["linear"]["b"]
    return jnp.mean((prediction - y) ** 2)


x0 = {"linear": {"w": np.zeros(3), "b": np.zeros(())}}
lower = {"linear": {"w": -1.0, "b": None}}  # w >= -1 elementwise; b unbounded
result = minimize(loss, x0, args=(features, targets), method="L-BFGS-B", bounds=Bounds(lb=lower))
free = minimize(loss, x0, args=(features, targets), method="L-BFGS-B")

print(f"L-BFGS-B with w >= -1: {result.message}")
print(f"fun = {result.fun:.6g} after {result.nit} iterations and {result.nfev} evaluations")
print(f"(without the bound: fun = {free.fun:.3g}, the noise level)\n")
print(f"{'parameter':<10}{'true':>8}{'fitted':>10}  bound")
rows = [(f"w[{i}]", TRUE_W[i], result.x["linear"]["w"][i], result.active_bounds["linear"]["w"][i])
        for i in range(3)]  # fmt: skip
rows.append(("b", TRUE_B, result.x["linear"]["b"], result.active_bounds["linear"]["b"]))
for name, true, fitted, active in rows:
    note = {-1: "at its lower bound (w >= -1)", 0: "free", 1: "at its upper bound"}[int(active)]
    print(f"{name:<10}{true:>8.4f}{float(fitted):>10.4f}  {note}")
pinned = [name for name, *_, active in rows if active != 0]
print(
    f"\nresult.active_bounds marks {', '.join(pinned)} as held by its bound: the data want it "
    "below -1,\nso this is the best fit the bound allows, not a failed one."
)
