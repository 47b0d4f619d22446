"""Pieces the framework ports share: the missing-framework error and leaf bookkeeping."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import weakref
from collections.abc import Callable, Hashable
from types import ModuleType
from typing import Any


def require(module: str, extra: str, framework: str) -> ModuleType:
    """Import `module`, or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"`pytree_minimize.ports.{extra}` needs {framework}, which is not installed. "
            f"Install it with `pip install pytree_minimize[{extra}]`."
        ) from error


class PlainHooks:
    """The backend hooks of a framework with nothing to register, reject or scope: its nodes are
    optree's own, its tensors are never traced by the caller, and it computes in each leaf's
    dtype as it is."""

    def prepare(self, tree: Any) -> None:
        return None

    def check_args(self, x0: Any, args: tuple) -> None:
        return None

    def precision(self, layout: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()


class FunctionCache:
    """Compiled functions per user function and per hashable key.

    Entries are keyed weakly on the user's function, and `build` receives a caller that reaches
    the function through a weak reference, so a cached compiled function never keeps its user
    function alive: closures made afresh in a loop do not pile up. Bound methods (a new object
    at each attribute access) and functions that cannot be weakly referenced go to a bounded
    table keyed on identity instead.
    """

    _STRONG_LIMIT = 256

    def __init__(self) -> None:
        self._weak: weakref.WeakKeyDictionary[Any, dict[Hashable, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._strong: dict[Hashable, Any] = {}

    def get(self, fun: Any, key: Hashable, build: Callable[[Callable], Any]) -> Any:
        """The compiled function for `(fun, key)`, made by `build(call)` on a miss, where
        `call(*a)` calls `fun(*a)`."""
        table: dict[Hashable, Any] | None = None
        call: Callable = fun
        if not inspect.ismethod(fun):
            try:
                table = self._weak.setdefault(fun, {})
                call = _weak_caller(weakref.ref(fun))
            except TypeError:
                table = None
        if table is None:
            table = self._strong
            owner = fun.__func__ if inspect.ismethod(fun) else fun
            key = (id(owner), id(getattr(fun, "__self__", None)), key)
            if len(table) >= self._STRONG_LIMIT:
                table.clear()
        try:
            return table[key]
        except KeyError:
            compiled = table[key] = build(call)
            return compiled


def _weak_caller(ref: weakref.ref) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        fun = ref()
        if fun is None:  # pragma: no cover - the entry dies with the function
            raise ReferenceError("the objective was garbage-collected")
        return fun(*args, **kwargs)

    return call
