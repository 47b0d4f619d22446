"""What every entry point shares about the user's callables: which callback convention a
callback asks for, and the check that a callable argument is one."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def wants_intermediate_result(callback: Callable) -> bool:
    """scipy's rule: a callback whose only parameter is named `intermediate_result` receives an
    `OptimizeResult`; any other signature gets the legacy arguments (`xk`, ...)."""
    try:
        parameters = inspect.signature(callback).parameters
    except (TypeError, ValueError):
        return False
    return set(parameters) == {"intermediate_result"}


def check_callable(value: Any, name: str, usage: str, *, optional: bool = False) -> None:
    """Raise if `value` (the argument `name`) is not callable as `usage`.

    Raises:
        TypeError: `value` is not callable (and not None where `optional`).
    """
    if optional and value is None:
        return
    if not callable(value):
        hint = " or None" if optional else ""
        raise TypeError(
            f"`{name}` must be callable as `{usage}`{hint}; got {type(value).__name__}."
        )
