"""The JAX internals this package uses, in one place: checked by `tests/test_compat.py` against
the installed JAX.

- `jax.core.Tracer`: what a traced value is (to refuse `minimize` inside `jit` and to find the
  traced values a function closes over).
- `jax.core.eval_jaxpr`: `argmin` evaluates a closed-over jaxpr with its traced constants as
  explicit operands.
"""

from __future__ import annotations

from typing import Any

import jax

Tracer = jax.core.Tracer
eval_jaxpr = jax.core.eval_jaxpr


def is_traced(tree: Any) -> bool:
    """Whether any leaf of `tree` is a JAX tracer."""
    return any(isinstance(leaf, Tracer) for leaf in jax.tree_util.tree_leaves(tree))
