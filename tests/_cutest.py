"""A sif2jax CUTEst problem as a user with a pytree would state it: the variables split into two
leaves, its equalities and inequalities as `NonlinearConstraint`s of that tree, its bounds as a
`pytree_minimize.Bounds`. Shared by the sparse-derivative and IPOPT tests."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize as sopt

from pytree_minimize import Bounds


class TreeProblem(NamedTuple):
    objective: Any  # f(tree)
    x0: dict[str, np.ndarray]
    bounds: Bounds | None
    constraints: list[sopt.NonlinearConstraint]
    #: The flat functions, for references computed with JAX directly.
    flat_objective: Any
    flat_constraints: list[Any]
    split: Any
    join: Any


def tree_problem(problem: Any) -> TreeProblem:
    """The sif2jax `problem` over `{'head': y[:k], 'tail': y[k:]}` with k = n // 2."""
    y0 = np.asarray(problem.y0, dtype=np.float64)
    k = y0.size // 2

    def split(y: Any) -> dict[str, Any]:
        return {"head": y[:k], "tail": y[k:]}

    def join(x: dict[str, Any]) -> jax.Array:
        return jnp.concatenate([jnp.atleast_1d(x["head"]), jnp.atleast_1d(x["tail"])])

    args = problem.args

    def flat_objective(y: jax.Array) -> jax.Array:
        return problem.objective(y, args)

    def objective(x: dict[str, Any]) -> jax.Array:
        return flat_objective(join(x))

    constraints, flat_constraints = [], []
    for position, upper in ((0, 0.0), (1, np.inf)):  # equalities, then inequalities >= 0
        if problem.constraint(jnp.asarray(y0))[position] is None:
            continue

        def flat(y: jax.Array, position: int = position) -> jax.Array:
            out = problem.constraint(y)[position]
            return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(out)])

        def tree(x: dict[str, Any], flat: Any = flat) -> jax.Array:
            return flat(join(x))

        flat_constraints.append((flat, upper))
        constraints.append(sopt.NonlinearConstraint(tree, 0.0, upper))
    bounds = None
    if problem.bounds is not None:
        lb, ub = (np.asarray(side, dtype=np.float64) for side in problem.bounds)
        bounds = Bounds(split(lb), split(ub))
    return TreeProblem(
        objective, split(y0), bounds, constraints, flat_objective, flat_constraints, split, join
    )
