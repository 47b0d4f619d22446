"""dict_minimize's `minimize`: its signature and docstring, written once for the four modules
(see `_core.surface`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..._core.surface import EntryPoint
from . import _core


def minimize(
    fun: Callable,
    x0_dict: OrderedDict,
    *,
    lb_dict: OrderedDict | None = None,
    ub_dict: OrderedDict | None = None,
    args: Sequence = (),
    method: str | Callable | None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: dict | None = None,
) -> OrderedDict:
    """Minimise `fun` over a dictionary of $arrays, as `dict_minimize.${api}.minimize`.

    Args:
        fun: `fun(x, *args) -> (value, gradient)`, $evaluated. `x` is an `OrderedDict`
            like `x0_dict`, of $x_leaves; `value` is $value;
            `gradient` is an `OrderedDict` of $arrays with the keys and shapes of `x`.
        x0_dict: Initial guess, an `OrderedDict` of floating-point $x0_leaves.
            Never mutated.
        lb_dict: Lower bounds, an `OrderedDict` like `x0_dict`, or None. Given with `ub_dict`.
        ub_dict: Upper bounds, likewise.
        args: Extra arguments, passed as `fun(x, *args)`.
        method: A `scipy.optimize.minimize` method; None chooses as scipy does (L-BFGS-B with
            bounds, BFGS otherwise).
        tol: Tolerance, passed to scipy.
        callback: `callback(x)`, called after each iteration of every method with the current
            `OrderedDict`; its return value is ignored.
        options: Method options, passed to scipy.

    Returns:
        The solution, an `OrderedDict` of $arrays with `x0_dict`'s keys, shapes and dtypes; its
        `optimize_result` attribute holds the full result (`fun`, `nit`, `message`, `history`).

    Examples:
        >>> from collections import OrderedDict
        >>> from pytree_minimize.compat.dict_minimize.${api} import minimize
        $example
    """
    raise NotImplementedError  # the stub of the four modules' `minimize` (`_core.surface`)


MINIMIZE = EntryPoint(minimize, _core.minimize)
