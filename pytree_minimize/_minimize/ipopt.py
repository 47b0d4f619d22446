"""IPOPT over flat vectors: the only module that knows cyipopt (the `ipopt` extra).

It takes a problem as flat float64 callables (objective, gradient, stacked constraint values,
the constraint Jacobian and the Lagrangian's Hessian as triplets), hands it to IPOPT with the
user's options, calls back once per iteration, and returns IPOPT's answer over the flat vector.
Pytrees, constraint forms and multiplier conventions are `_ipopt_driver`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize as sopt

__all__ = ["EXTRA", "FlatProblem", "load_cyipopt", "solve"]

EXTRA = "pip install pytree-minimize[ipopt]"

#: scipy's names for two of IPOPT's options, read as cyipopt's `minimize_ipopt` reads them.
_SCIPY_NAMES = {"maxiter": "max_iter", "disp": "print_level"}
#: Quiet by default, as scipy's methods are: no iteration log and no banner.
_DEFAULTS = {"print_level": 0, "sb": "yes"}
#: IPOPT's statuses that mean it converged (to its tolerances, or to its acceptable ones).
_CONVERGED = (0, 1)


def load_cyipopt() -> Any:
    """cyipopt, or the error that names the extra to install."""
    try:
        import cyipopt
    except ImportError as error:
        raise ImportError(
            f"`method='ipopt'` needs cyipopt, which is not installed ({error}). Install it with "
            f"`{EXTRA}`."
        ) from error
    return cyipopt


@dataclass
class FlatProblem:
    """A nonlinear program over the flat vector: minimise `objective(x)` subject to
    `cl <= constraints(x) <= cu` and `lb <= x <= ub`.

    `jacobian_rows`/`jacobian_cols` are the constraint Jacobian's structure and `jacobian(x)`
    its values in that order; `hessian_rows`/`hessian_cols` (lower triangle) and
    `hessian(x, multipliers, sigma)` the Hessian of `sigma f + multipliers . g`, or None for
    IPOPT's limited-memory approximation.
    """

    objective: Callable[[np.ndarray], float]
    gradient: Callable[[np.ndarray], np.ndarray]
    constraints: Callable[[np.ndarray], np.ndarray]
    jacobian: Callable[[np.ndarray], np.ndarray]
    jacobian_rows: np.ndarray
    jacobian_cols: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    cl: np.ndarray
    cu: np.ndarray
    hessian: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None
    hessian_rows: np.ndarray | None = None
    hessian_cols: np.ndarray | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"nfev": 0, "njev": 0, "nhev": 0})


class _Callbacks:
    """cyipopt's problem object over a `FlatProblem`, counting evaluations."""

    def __init__(self, problem: FlatProblem, intermediate: Callable[..., bool] | None) -> None:
        self.problem = problem
        self.counts = problem.counts
        self._intermediate = intermediate
        self.nit = 0
        self.solver: Any = None
        self.error: BaseException | None = None

    def objective(self, x: np.ndarray) -> float:
        self.counts["nfev"] += 1
        return float(self.problem.objective(x))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        self.counts["njev"] += 1
        return self.problem.gradient(x)

    def constraints(self, x: np.ndarray) -> np.ndarray:
        return self.problem.constraints(x)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return self.problem.jacobian(x)

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.problem.jacobian_rows, self.problem.jacobian_cols

    def intermediate(self, alg_mod: int, iter_count: int, obj_value: float, inf_pr: float,
                     inf_du: float, mu: float, d_norm: float, regularization_size: float,
                     alpha_du: float, alpha_pr: float, ls_trials: int) -> bool:  # fmt: skip
        self.nit = int(iter_count)
        if self.error is not None:
            return False
        if self._intermediate is None or iter_count == 0:
            return True  # scipy calls back after each iteration, not at the start
        iterate = self.solver.get_current_iterate(scaled=False)
        state = {
            "nit": int(iter_count),
            "fun": float(obj_value),
            "constr_violation": float(inf_pr),
            "optimality": float(inf_du),
            "barrier_parameter": float(mu),
            "step_norm": float(d_norm),
            "restoration_phase": bool(alg_mod == 1),
        }
        x = None if iterate is None else np.array(iterate["x"], dtype=np.float64)
        return self._intermediate(x, state)


class _CallbacksWithHessian(_Callbacks):
    """... with the Lagrangian's exact Hessian (cyipopt reads its presence from the object)."""

    def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.problem.hessian_rows, self.problem.hessian_cols  # type: ignore[return-value]

    def hessian(self, x: np.ndarray, multipliers: np.ndarray, sigma: float) -> np.ndarray:
        self.counts["nhev"] += 1
        try:
            return self.problem.hessian(x, multipliers, sigma)  # type: ignore[misc]
        except BaseException as error:
            # cyipopt 1.x drops an exception raised here (its Hessian callback, unlike the
            # others, cannot store it): keep it, stop at the next iteration, raise it after.
            self.error = error
            return np.zeros(self.problem.hessian_rows.size)  # type: ignore[union-attr]


def _option_value(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def ipopt_options(options: dict | None, tol: float | None, *, exact_hessian: bool) -> dict:
    """IPOPT's options: quiet by default, the user's `options` (scipy's `maxiter` and `disp`
    read as `max_iter` and `print_level`), `tol`, and the limited-memory Hessian where no exact
    one is known."""
    merged: dict[str, Any] = dict(_DEFAULTS)
    for key, value in (options or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"`options` keys must be IPOPT option names (str); got {key!r}.")
        merged[_SCIPY_NAMES.get(key, key)] = _option_value(value)
    if tol is not None:
        merged.setdefault("tol", float(tol))
    if not exact_hessian:
        merged.setdefault("hessian_approximation", "limited-memory")
    return merged


def uses_exact_hessian(options: dict) -> bool:
    return options.get("hessian_approximation", "exact") == "exact"


def solve(
    problem: FlatProblem,
    x0: np.ndarray,
    options: dict,
    *,
    intermediate: Callable[[np.ndarray | None, dict], bool] | None = None,
) -> sopt.OptimizeResult:
    """Run IPOPT from `x0` with `options` (from `ipopt_options`). `intermediate(x, state)` is
    called after each iteration with the iterate (None where IPOPT gives none) and IPOPT's
    figures; it returns False to stop.

    Returns:
        An `OptimizeResult` over the flat vector: `x`, `fun`, `status` (IPOPT's), `message`,
        `success`, `nit`, `nfev`, `njev`, `nhev`, `constr` (the constraint values), and IPOPT's
        multipliers `mult_g`, `mult_x_L`, `mult_x_U` in its own signs (its Lagrangian is
        `f + mult_g . g - mult_x_L . (x - lb) + mult_x_U . (x - ub)`).
    """
    cyipopt = load_cyipopt()
    exact = problem.hessian is not None and uses_exact_hessian(options)
    callbacks = (_CallbacksWithHessian if exact else _Callbacks)(problem, intermediate)
    solver = cyipopt.Problem(
        n=x0.size,
        m=problem.cl.size,
        problem_obj=callbacks,
        lb=problem.lb,
        ub=problem.ub,
        cl=problem.cl,
        cu=problem.cu,
    )
    callbacks.solver = solver
    try:
        for key, value in options.items():
            try:
                solver.add_option(key, value)
            except TypeError:
                raise ValueError(
                    f"`options[{key!r}]` = {value!r} is not an IPOPT option IPOPT accepts; see "
                    "https://coin-or.github.io/Ipopt/OPTIONS.html for names, types and ranges."
                ) from None
        x, info = solver.solve(np.array(x0, dtype=np.float64))
    finally:
        solver.close()
    if callbacks.error is not None:
        raise callbacks.error
    status = int(info["status"])
    message = info["status_msg"]
    if isinstance(message, bytes):
        message = message.decode()
    return sopt.OptimizeResult(
        x=np.asarray(x, dtype=np.float64),
        fun=float(info["obj_val"]),
        status=status,
        message=message,
        success=status in _CONVERGED,
        nit=callbacks.nit,
        nfev=problem.counts["nfev"],
        njev=problem.counts["njev"],
        nhev=problem.counts["nhev"],
        constr=np.asarray(info["g"], dtype=np.float64),
        mult_g=np.asarray(info["mult_g"], dtype=np.float64),
        mult_x_L=np.asarray(info["mult_x_L"], dtype=np.float64),
        mult_x_U=np.asarray(info["mult_x_U"], dtype=np.float64),
    )
