"""The compile cache: weak on the user's function, keyed through partials, bounded, thread-safe,
and cleared by `pytree_minimize.clear_cache()`."""

from __future__ import annotations

import functools
import gc
import sys
import threading
import time
import weakref

import jax.numpy as jnp
import numpy as np
import pytest

import pytree_minimize
from pytree_minimize import argmin, clear_cache, minimize
from pytree_minimize._core.cache import CompileCache


def _traced_objective(traces: list):
    def fun(p, *, mode="square"):
        traces.append(mode)
        return jnp.sum(p**2) if mode == "square" else jnp.sum(jnp.abs(p) ** 3)

    return fun


def test_clear_cache_is_public_and_forces_a_new_trace():
    assert "clear_cache" in pytree_minimize.__all__
    traces: list[str] = []
    fun = _traced_objective(traces)
    minimize(fun, np.ones(2))
    minimize(fun, np.ones(2))
    assert traces == ["square"]
    clear_cache()
    minimize(fun, np.ones(2))
    assert traces == ["square", "square"]


def test_partial_made_anew_in_a_loop_hits_the_cache():
    traces: list[str] = []
    fun = _traced_objective(traces)
    for _ in range(3):
        res = minimize(functools.partial(fun, mode="cube"), np.ones(2), method="BFGS")
        assert np.all(np.abs(res.x) < 0.05)
    assert traces == ["cube"]
    minimize(functools.partial(fun, mode="square"), np.ones(2))
    assert traces == ["cube", "square"]


def test_a_dropped_function_is_released():
    captured = jnp.arange(3.0)

    def fun(p):
        return jnp.sum((p - captured) ** 2)

    res = minimize(fun, np.zeros(3))
    np.testing.assert_allclose(res.x, captured, atol=1e-6)
    argmin(fun, np.zeros(3))
    ref = weakref.ref(fun)
    del fun, res
    gc.collect()
    assert ref() is None


def test_a_dropped_bound_method_owner_is_released():
    class Model:
        def loss(self, p):
            return jnp.sum((p - 1.0) ** 2)

    model = Model()
    minimize(model.loss, np.zeros(2))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_entries_leave_with_their_function():
    cache = CompileCache(size=8)

    def fun():
        return 1

    assert cache.get(fun, "k", lambda call: call) is not None
    assert len(cache) == 1
    del fun
    gc.collect()
    assert len(cache) == 0


class _Unreferenceable:
    """A callable that cannot be weakly referenced: kept strongly, so only the bound applies."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self) -> int:
        return self.n


def test_the_cache_is_bounded_and_calls_through():
    cache = CompileCache(size=4)
    funs = [_Unreferenceable(i) for i in range(10)]
    for f in funs:
        assert cache.get(f, "k", lambda call: call)() == f.n
    assert len(cache) == 4
    # the most recent entries stay
    built: list[int] = []
    cache.get(funs[-1], "k", lambda call: built.append(1))
    assert built == []


class _YieldingKey:
    """A key whose hashing lets other threads run, as a key holding Python objects may."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __hash__(self) -> int:
        time.sleep(0)
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _YieldingKey) and other.value == self.value


def test_lookups_evictions_and_inserts_from_many_threads():
    # Without a lock, a thread evicting between another's lookup and its move to the end
    # raises KeyError there.
    cache = CompileCache(size=4)
    funs = [_Unreferenceable(i) for i in range(5)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                f = funs[(i + offset) % len(funs)]
                assert cache.get(f, _YieldingKey(i % 2), lambda call: call)() == f.n
        except BaseException as error:
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(cache) <= 4


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B"])
def test_a_fresh_closure_per_call_gives_the_same_answer(method):
    # Closures made anew each call compile anew, find nothing stale, and leave nothing behind.
    for target in (1.0, 2.0, 3.0):
        res = minimize(lambda p, t=target: jnp.sum((p - t) ** 2), np.zeros(2), method=method)
        np.testing.assert_allclose(res.x, [target, target], atol=1e-6)
