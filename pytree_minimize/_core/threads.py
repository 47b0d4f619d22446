"""How many threads BLAS may use while scipy iterates: the library's one thread policy.

NumPy and SciPy wheels each bundle their own OpenBLAS, each with its own pool of worker threads,
and XLA, PyTorch and TensorFlow bring pools of their own. After a threaded call a pool's workers
busy-wait for a while before they sleep. A method that only updates vectors (L-BFGS-B's `setulb`,
CG's line searches) calls BLAS a few dozen times per iteration on vectors long enough to be
threaded (OpenBLAS threads `dot` and `axpy` from 10,000 elements); each such call must wait for
its own workers to get a core that another pool's spinning workers hold. Measured on 2 cores at
n = 100,000, one BLAS `dot` in NumPy's pool between calls made scipy's threaded `ddot`/`daxpy`
about 150x slower, and scipy driving hand-written `jit(value_and_grad)` (with XLA's threads in
between) ran 17x slower at the default thread count than at one thread. Hence the policy:

- methods that work on vectors only (`MethodInfo.vector_only`) run with BLAS held to one thread;
- methods with dense matrices, where threads pay (BFGS's inverse Hessian, SLSQP, trust-constr,
  dogleg, trust-exact, COBYQA, a user's dense `hess`, custom methods), keep the default.

`blas_threads=` overrides it: an int holds BLAS to that many threads, None leaves it untouched.
Limits are process-wide (they are the libraries' own settings), so concurrent runs share them:
while several are active the smallest limit holds, and the last to finish restores the original.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_active: list[int] = []  # the limits of the runs in progress
_original: list[tuple[Any, int]] = []  # (library, its thread count before the first limit)
_controller: Any = None


def check_blas_threads(blas_threads: Any) -> None:
    if blas_threads == "auto" or blas_threads is None:
        return
    if isinstance(blas_threads, int) and not isinstance(blas_threads, bool) and blas_threads > 0:
        return
    raise ValueError(
        f"`blas_threads` must be 'auto' (one thread for vector-only methods), None (leave BLAS "
        f"alone) or a positive int; got {blas_threads!r}."
    )


def threads_for(vector_only: bool, *, hess: Any, blas_threads: Any) -> int | None:
    """The BLAS thread limit for one run, or None to leave BLAS as it is. `vector_only` is the
    method table's fact of that name (False for a custom method)."""
    if blas_threads != "auto":
        return blas_threads
    if vector_only and (hess is None or isinstance(hess, str)):
        return 1
    return None


def _blas_libraries() -> list[Any]:
    global _controller
    if _controller is None:
        # Built once: inspecting the loaded libraries costs milliseconds. BLAS libraries loaded
        # later are not seen, but NumPy's and SciPy's are loaded with this package.
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return list(_controller.lib_controllers)


def _apply() -> None:
    """Called with the lock held: the smallest active limit, or the original counts."""
    if _active:
        if not _original:
            _original.extend((lib, lib.num_threads) for lib in _blas_libraries())
        for lib, count in _original:
            _set(lib, min(count, min(_active)))
    else:
        for lib, count in _original:
            _set(lib, count)
        _original.clear()


def _set(lib: Any, threads: int) -> None:
    # threadpoolctl lets only one Python thread (the first to set a count, until it lets go)
    # change a pthreads OpenBLAS, and silently ignores the others; this module serialises its
    # changes itself, so the thread making one takes control for it and lets go after.
    clear = getattr(type(lib), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(threads)
    if clear is not None:
        clear()


@contextlib.contextmanager
def limit_blas(threads: int | None) -> Iterator[None]:
    """Hold every loaded BLAS library to `threads` threads inside the block (None: no change)."""
    if threads is None:
        yield
        return
    with _lock:
        _active.append(threads)
        _apply()
    try:
        yield
    finally:
        with _lock:
            _active.remove(threads)
            _apply()
