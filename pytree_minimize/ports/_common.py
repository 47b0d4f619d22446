"""Pieces the framework ports share: the missing-framework error and leaf bookkeeping."""

from __future__ import annotations

import contextlib
import importlib
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


class DenseDerivatives:
    """The sparse-derivative hooks of a framework whose programs cannot be read for sparsity
    (PyTorch, TensorFlow, NumPy): every answer is "not available" (None), so `sparse='auto'`
    keeps the dense derivatives, `sparse=True` is refused, and IPOPT approximates the
    Lagrangian's Hessian (limited-memory) over dense constraint Jacobians."""

    def sparse_jacobian(self, fun: Any, layout: Any, args: tuple, out_layout: Any) -> None:
        return None

    def sparse_hessian(self, fun: Any, layout: Any, args: tuple) -> None:
        return None

    def sparse_weighted_hessian(self, fun: Any, layout: Any, args: tuple, out_layout: Any) -> None:
        return None

    def sparse_lagrangian_hessian(
        self, fun: Any, args: tuple, constraints: Any, layout: Any
    ) -> None:
        return None

    def weighted_hessian(self, fun: Any, layout: Any, args: tuple, out_layout: Any) -> None:
        return None
