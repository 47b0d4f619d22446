"""The BLAS thread policy during scipy's loop: one thread for vector-only methods, the default for
dense ones, the `blas_threads=` override, and restoration afterwards, also across threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import jax.numpy as jnp
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from pytree_minimize import minimize
from pytree_minimize.ports.numpy import minimize as numpy_minimize


def _single_threaded_builds() -> set[str]:
    """BLAS libraries built to run one thread whatever the limit (cyipopt's bundled OpenBLAS,
    loaded once a test has run IPOPT): they say nothing about the policy."""
    with threadpool_limits(limits=2, user_api="blas"):
        return {
            lib["filepath"]
            for lib in threadpool_info()
            if lib["user_api"] == "blas" and lib["num_threads"] == 1
        }


def blas_counts() -> list[int]:
    fixed = _SINGLE_THREADED
    return [
        lib["num_threads"]
        for lib in threadpool_info()
        if lib["user_api"] == "blas" and lib["filepath"] not in fixed
    ]


_SINGLE_THREADED: set[str] = set()


@pytest.fixture
def two_threads() -> Iterator[None]:
    """BLAS at two threads, whatever the environment (CI runs with OPENBLAS_NUM_THREADS=1), so
    that one thread during a run is told apart from the default."""
    _SINGLE_THREADED.clear()
    _SINGLE_THREADED.update(_single_threaded_builds())
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(blas_counts()) == {2}
        yield


def quadratic(p: dict) -> jnp.ndarray:
    return jnp.sum((p["w"] - 3.0) ** 2) + (p["b"] + 1.0) ** 2


def counts_during(method: str, **kwargs: object) -> set[int]:
    seen: set[int] = set()
    x0 = {"w": np.zeros(3), "b": np.array(0.0)}
    result = minimize(
        quadratic, x0, method=method, callback=lambda xk: seen.update(blas_counts()), **kwargs
    )
    np.testing.assert_allclose(result.x["w"], 3.0, atol=1e-4)
    return seen


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("method", ["L-BFGS-B", "CG", "TNC", "trust-ncg", "Nelder-Mead"])
def test_vector_methods_run_with_one_blas_thread(method: str) -> None:
    assert counts_during(method) == {1}
    assert set(blas_counts()) == {2}


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("method", ["BFGS", "trust-exact", "SLSQP"])
def test_dense_methods_keep_the_default(method: str) -> None:
    assert counts_during(method) == {2}


@pytest.mark.usefixtures("two_threads")
def test_user_override() -> None:
    assert counts_during("BFGS", blas_threads=1) == {1}
    assert counts_during("L-BFGS-B", blas_threads=None) == {2}
    assert counts_during("L-BFGS-B", blas_threads=2) == {2}
    assert set(blas_counts()) == {2}


@pytest.mark.usefixtures("two_threads")
def test_a_dense_user_hessian_keeps_the_default() -> None:
    def hess(x: np.ndarray) -> np.ndarray:
        return 2.0 * np.eye(3)

    seen: set[int] = set()
    numpy_minimize(
        lambda x: float(np.sum((x - 3.0) ** 2)),
        np.zeros(3),
        method="Newton-CG",
        jac=lambda x: 2.0 * (x - 3.0),
        hess=hess,
        callback=lambda xk: seen.update(blas_counts()),
    )
    assert seen == {2}


@pytest.mark.usefixtures("two_threads")
def test_concurrent_runs_share_the_limit_and_restore_it() -> None:
    inside = threading.Barrier(2)
    seen: list[set[int]] = [set(), set()]

    def run(index: int) -> None:
        def callback(xk: object) -> None:
            if not seen[index]:
                inside.wait(timeout=30)  # both runs are in their loops together
            seen[index].update(blas_counts())

        minimize(
            quadratic,
            {"w": np.zeros(3), "b": np.array(0.0)},
            method="L-BFGS-B",
            callback=callback,
            options={"maxiter": 2},
        )

    workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert seen == [{1}, {1}]
    assert set(blas_counts()) == {2}


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "one"])
def test_bad_blas_threads(value: object) -> None:
    with pytest.raises(ValueError, match="`blas_threads`"):
        minimize(quadratic, {"w": np.zeros(3), "b": np.array(0.0)}, blas_threads=value)
