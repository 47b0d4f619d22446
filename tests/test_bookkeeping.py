"""Per-evaluation bookkeeping that does not grow with n: the recorder holds no copies of `x`, only
the latest two gradients, and finds the iterate without comparing whole vectors; float32 leaves
cross to the compiled evaluation as float32."""

from __future__ import annotations

import gc
import weakref

import jax.numpy as jnp
import numpy as np
import pytest

from pytree_minimize import minimize
from pytree_minimize._backends import jax as _jax_backend
from pytree_minimize._core.methods import METHODS
from pytree_minimize._core.recorder import Recorder


@pytest.mark.parametrize(("method", "kept"), [("L-BFGS-B", 1), ("trust-ncg", 2)])
def test_recorder_keeps_no_x_and_the_latest_gradients(method: str, kept: int) -> None:
    info = METHODS[method.lower()]
    recorder = Recorder(keep_two=info.reports_earlier_iterate)
    points, grads = [], []

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        grad = 2.0 * x
        grads.append(weakref.ref(grad))
        return float(x @ x), grad

    recorded = recorder.value_and_grad(evaluate)
    for k in range(6):
        x = np.full(1000, float(k))
        points.append(weakref.ref(x))
        recorded(x)
        del x
    gc.collect()
    assert [p() is None for p in points] == [True] * 6
    assert [g() is not None for g in grads] == [False] * (6 - kept) + [True] * kept
    # The callback at the latest point gets its value and gradient.
    fun, grad = recorder.iterate(np.full(1000, 5.0), None, None)
    assert fun == 25_000.0
    np.testing.assert_array_equal(grad, np.full(1000, 10.0))


def test_recorder_tells_points_apart_by_fun_where_samples_agree() -> None:
    recorder = Recorder(keep_two=True)
    recorded = recorder.value_and_grad(lambda x: (float(x.sum()), x + 1.0))
    first, second = np.zeros(10_000), np.zeros(10_000)
    second[1] = 3.0  # not among the sampled elements
    recorded(first)
    recorded(second)
    fun, grad = recorder.iterate(first, 0.0, None)
    assert fun == 0.0 and grad[1] == 1.0
    fun, grad = recorder.iterate(second, 3.0, None)
    assert fun == 3.0 and grad[1] == 4.0


def test_float32_leaves_cross_as_float32(monkeypatch) -> None:
    seen: list[np.dtype] = []
    cache = _jax_backend.CACHE

    class RecordingCache:
        def get(self, fun, key, build):
            compiled = cache.get(fun, key, build)

            def call(x, *rest):
                seen.append(np.asarray(x).dtype)
                return compiled(x, *rest)

            return call

    monkeypatch.setattr(_jax_backend, "CACHE", RecordingCache())

    def f(p):
        return jnp.sum((p["a"] - 2.0) ** 2) + jnp.sum(p["b"] ** 2)

    x0 = {"a": np.zeros(3, np.float32), "b": np.ones(2, np.float32)}
    result = minimize(f, x0, method="L-BFGS-B")
    np.testing.assert_allclose(result.x["a"], 2.0, atol=1e-4)
    assert result.x["a"].dtype == np.float32
    assert set(seen) == {np.dtype(np.float32)}

    seen.clear()
    minimize(f, {"a": np.zeros(3), "b": np.ones(2, np.float32)}, method="L-BFGS-B")
    assert set(seen) == {np.dtype(np.float64)}


def test_torch_float32_leaves_cross_as_float32() -> None:
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports.torch import minimize as torch_minimize

    bases: set = set()

    def f(p):
        bases.add(None if p["a"]._base is None else p["a"]._base.dtype)
        return ((p["a"] - 2.0) ** 2).sum() + (p["b"] ** 2).sum()

    x0 = {"a": torch.zeros(3), "b": torch.ones(2, 2)}
    result = torch_minimize(f, x0, method="L-BFGS-B")
    torch.testing.assert_close(result.x["a"], torch.full((3,), 2.0), atol=1e-4, rtol=0)
    assert result.x["a"].dtype == torch.float32
    assert bases == {torch.float32}  # views of one float32 flat tensor, no float64 copy
    assert result.jac["a"].dtype == torch.float32
