"""Fit a small nested-dict model with L-BFGS-B and bounds, then print the result."""

import jax.numpy as jnp
import numpy as np

from pytree_minimize import Bounds, minimize

rng = np.random.default_rng(0)
features = rng.normal(size=(200, 3))
targets = features @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.01 * rng.normal(size=200)


def loss(params, x, y):
    prediction = x @ params["linear"]["w"] + params["linear"]["b"]
    return jnp.mean((prediction - y) ** 2) + 1e-3 * params["scale"] ** 2


x0 = {"linear": {"w": np.zeros(3), "b": np.zeros(())}, "scale": np.ones(())}
bounds = Bounds(lb={"linear": {"w": -1.0, "b": None}, "scale": 0.0}, ub=None)
result = minimize(loss, x0, args=(features, targets), method="L-BFGS-B", bounds=bounds)

print(result.message)
print(f"fun = {result.fun:.6g} after {result.nit} iterations and {result.nfev} evaluations")
for name, value in [
    ("w", result.x["linear"]["w"]),
    ("b", result.x["linear"]["b"]),
    ("scale", result.x["scale"]),
]:
    print(f"{name:>5} = {np.round(value, 4)}")
