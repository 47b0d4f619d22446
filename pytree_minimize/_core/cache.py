"""The compile cache: the only module that knows how compiled evaluations are kept and let go.

Every backend keeps its compiled functions here, per user function and per hashable key (the
evaluation kind, the layout, static arguments...). The cache is

* weak on the user's function: an entry lives only while its function (for a bound method, its
  object) does, and `build` receives a caller that reaches the function through a weak reference,
  so a compiled function never keeps its user function (or the arrays it closes over) alive;
* keyed through `functools.partial`: a partial made anew in a loop finds the entry of its
  function, positional arguments and keywords, when they are hashable;
* bounded: at most `size` entries, least recently used first out (a function that cannot be
  weakly referenced stays until evicted or `clear_cache()`);
* thread-safe: lookups, inserts and evictions happen under one lock (`argmin` solves batches in
  a thread pool); compilation itself runs outside it.

The memory that freed executables leave with the C allocator is given back to the system
(`malloc_trim(0)` on glibc) every few evictions.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from . import closures

__all__ = ["CompileCache", "clear_cache"]

#: Evictions between two calls of `malloc_trim`.
_TRIM_EVERY = 16


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


class _Entry:
    __slots__ = ("compiled", "owner", "strong")

    def __init__(self, owner: Any, strong: bool, compiled: Any) -> None:
        self.owner = owner  # a weakref.ref to the owner, or the owner itself when `strong`
        self.strong = strong
        self.compiled = compiled

    def owned_by(self, owner: Any) -> bool:
        return (self.owner if self.strong else self.owner()) is owner


def _weak_caller(resolve: Callable[[], Any]) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        fun = resolve()
        if fun is None:  # pragma: no cover - the entry dies with the function
            raise ReferenceError("the objective was garbage-collected")
        return fun(*args, **kwargs)

    return call


def _identify(fun: Any) -> tuple[Any, Hashable, Callable[[Any], Callable]]:
    """`(owner, identity, caller)`: the object whose life bounds the entry, what else tells
    `fun` apart from other callables of that owner, and `caller(ref)`, which makes a function
    calling `fun` from a weak reference to the owner."""
    if isinstance(fun, functools.partial):
        keywords = tuple(sorted(fun.keywords.items()))
        try:
            hash((fun.args, keywords))
        except TypeError:
            pass
        else:
            owner, identity, inner = _identify(fun.func)
            p_args, p_kw = fun.args, dict(fun.keywords)

            def partial_caller(ref: Any) -> Callable:
                call = inner(ref)
                return lambda *a, **k: call(*p_args, *a, **{**p_kw, **k})

            return owner, ("partial", identity, p_args, keywords), partial_caller
    if inspect.ismethod(fun):
        func = fun.__func__
        return fun.__self__, ("method", func), lambda ref: _weak_caller(lambda: _bind(ref, func))
    return fun, None, lambda ref: _weak_caller(ref)


def _bind(ref: Any, func: Callable) -> Any:
    obj = ref()
    return None if obj is None else func.__get__(obj)


class _StrongRef:
    """Stands for a weak reference where the owner cannot be weakly referenced."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


class CompileCache:
    """Compiled functions per user function and hashable key (see the module docstring)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._table: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
        self._refs: dict[int, weakref.ref] = {}
        self._dead: list[int] = []
        self._evicted = 0

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._table)

    def get(self, fun: Any, key: Hashable, build: Callable[[Callable], Any]) -> Any:
        """The compiled function for `(fun, key)`, made by `build(call)` on a miss, where
        `call(*a, **k)` calls `fun(*a, **k)` without keeping it alive."""
        owner, identity, caller = _identify(fun)
        full_key = (id(owner), identity, key)
        try:
            hash(full_key)
        except TypeError:  # unhashable static arguments: compile without caching
            return build(caller(_StrongRef(owner)))
        with self._lock:
            self._purge()
            entry = self._table.get(full_key)
            if entry is not None and entry.owned_by(owner):
                self._table.move_to_end(full_key)
                return entry.compiled
            ref = self._ref(owner)
        compiled = build(caller(ref if ref is not None else _StrongRef(owner)))
        with self._lock:
            if ref is None:
                self._table[full_key] = _Entry(owner, True, compiled)
            else:
                self._table[full_key] = _Entry(ref, False, compiled)
            self._table.move_to_end(full_key)
            evicted = 0
            while len(self._table) > self._size:
                self._table.popitem(last=False)
                evicted += 1
        self._count_evictions(evicted)
        return compiled

    def clear(self) -> None:
        """Drop every compiled function and give the memory back."""
        with self._lock:
            evicted = len(self._table)
            self._table.clear()
            self._dead.clear()
        self._count_evictions(evicted, trim_now=True)

    def _ref(self, owner: Any) -> weakref.ref | None:
        """A weak reference to `owner` whose death drops its entries (None: not weakly
        referenceable). Called under the lock."""
        ident = id(owner)
        ref = self._refs.get(ident)
        if ref is not None and ref() is owner:
            return ref

        def forget(_: Any) -> None:
            self._forget(ident)

        try:
            ref = weakref.ref(owner, forget)
        except TypeError:
            return None
        self._refs[ident] = ref
        return ref

    def _forget(self, ident: int) -> None:
        # Called when an owner dies, possibly by the garbage collector inside a locked section
        # of this very thread: never wait for the lock, leave the work to the next holder.
        self._dead.append(ident)
        if self._lock.acquire(blocking=False):
            try:
                evicted = self._purge()
            finally:
                self._lock.release()
            self._count_evictions(evicted)

    def _purge(self) -> int:
        """Drop the entries of dead owners (called under the lock)."""
        if not self._dead:
            return 0
        self._dead.clear()
        # Every entry whose owner died (a dead owner's id may already belong to a new object).
        stale = [k for k, e in self._table.items() if not e.strong and e.owner() is None]
        for k in stale:
            del self._table[k]
        for ident in [i for i, ref in self._refs.items() if ref() is None]:
            del self._refs[ident]
        return len(stale)

    def _count_evictions(self, evicted: int, *, trim_now: bool = False) -> None:
        self._evicted += evicted
        if _MALLOC_TRIM is not None and (trim_now or self._evicted >= _TRIM_EVERY):
            self._evicted = 0
            _MALLOC_TRIM(0)


#: The one cache every backend uses.
CACHE = CompileCache()


def clear_cache() -> None:
    """Drop every compiled function `minimize`, `argmin` and the ports keep.

    Compiled evaluations are cached per objective function (at most 256, least recently used
    first out) so that a second call with the same function skips compilation; a closure made
    anew is cached by its code and the values it closes over that are not traced (see the
    guide "Tracing"). An entry holds compiled code, and lives no longer than its function (a
    closure's, until evicted). Call this to release them all at once, for example after
    finishing with a large model; it also resets the compile counts behind
    `RecompileWarning`.

    Examples:
        >>> import pytree_minimize
        >>> pytree_minimize.clear_cache()
    """
    CACHE.clear()
    closures.clear()
