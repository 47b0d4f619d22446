"""What the framework backends share: the error for a framework that is not installed."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, framework: str) -> ModuleType:
    """Import `module`, or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"`pytree_minimize.ports.{extra}` needs {framework}, which is not installed. "
            f"Install it with `pip install pytree_minimize[{extra}]`."
        ) from error
