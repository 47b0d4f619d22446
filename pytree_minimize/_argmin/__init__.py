"""`argmin`: the traceable, differentiable twin of `minimize` (JAX only)."""
