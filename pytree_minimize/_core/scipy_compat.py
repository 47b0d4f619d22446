"""The private scipy API this package uses, in one place: checked by `tests/test_compat.py`
against the installed scipy, so that a change in scipy fails a test loudly.

- `scipy.optimize._numdiff.approx_derivative`: scipy's finite differences with an absolute step
  (the public `approx_fprime` takes only a scalar or vector step and no method), for a Hessian
  differenced from a user's gradient and for constraint Jacobians without autodiff.
- `scipy.optimize._dual_annealing.LocalSearchWrapper`'s iteration cap for its L-BFGS-B local
  search (`LS_MAXITER_RATIO`, `_MIN`, `_MAX`), which `dual_annealing` reproduces when the
  local search runs through this package's driver.
- `dual_annealing` counts evaluations in the objective wrapper whose bound method it hands to
  its local minimiser; a local search that evaluates the compiled objective directly adds its
  count there (`add_evaluations`).
"""

from __future__ import annotations

from typing import Any

from scipy.optimize._dual_annealing import LocalSearchWrapper
from scipy.optimize._numdiff import approx_derivative

__all__ = ["add_evaluations", "approx_derivative", "dual_annealing_local_maxiter"]


def dual_annealing_local_maxiter(n: int) -> int:
    """scipy's iteration cap for `dual_annealing`'s own local search over `n` parameters."""
    wrapper = LocalSearchWrapper
    return int(
        min(max(n * wrapper.LS_MAXITER_RATIO, wrapper.LS_MAXITER_MIN), wrapper.LS_MAXITER_MAX)
    )


def add_evaluations(fun: Any, count: int) -> None:
    """Add `count` evaluations to the counter of scipy's objective wrapper whose bound method
    `fun` is (dual_annealing's `ObjectiveFunWrapper.fun`).

    Raises:
        RuntimeError: `fun` is not such a bound method (scipy's internals changed).
    """
    wrapper: Any = getattr(fun, "__self__", None)
    if not isinstance(getattr(wrapper, "nfev", None), int):
        raise RuntimeError(
            "scipy's dual_annealing no longer hands its local minimiser a bound method of an "
            "objective wrapper with an `nfev` counter; pytree_minimize cannot count its local "
            "evaluations. Please report this with your scipy version."
        )
    wrapper.nfev += count
