"""Constraints on the pytree `x`: the forms they take, their derivatives over the flat vector,
and their hand-off to scipy (shared by `minimize`, `argmin` and the global methods)."""
