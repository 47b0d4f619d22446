"""Convergence plots from `result.history` (matplotlib is an optional dependency)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_XAXES = ("iteration", "time")


def plot_history(
    result: Any,
    ax: Any = None,
    *,
    label: str | None = None,
    xaxis: str = "iteration",
    grad_norm: bool = True,
) -> Any:
    """Draw the convergence curve of a run: `fun` per iteration and, where known, the gradient norm.

    `fun` goes on a logarithmic axis when every value is positive. The gradient norm, when the
    method used a gradient and `grad_norm` is True, is drawn dashed on a second y axis on the
    right. To compare several runs on one axes, pass the same `ax`, a `label` for each and
    `grad_norm=False`.

    Args:
        result: The `OptimizeResult` of `pytree_minimize.minimize` (or any port), or its
            `history` dict with per-iteration lists `fun`, `time` and optionally `grad_norm`.
        ax: A matplotlib `Axes` to draw into; None makes a new figure.
        label: Legend label of the `fun` curve; None uses "fun".
        xaxis: "iteration" (1, 2, ..., nit) or "time" (seconds since the start of the run).
        grad_norm: Whether to draw the gradient norm where the history has it.

    Returns:
        The matplotlib `Figure` that holds the axes.

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import minimize, plot_history
        >>> res = minimize(lambda p: jnp.sum((p["w"] - 1.0) ** 2) + 1.0, {"w": jnp.zeros(3)})
        >>> fig = plot_history(res)
        >>> fig.axes[0].get_ylabel()
        'fun'
    """
    history = _history_of(result)
    if xaxis not in _XAXES:
        raise ValueError(f"`xaxis` must be one of {', '.join(map(repr, _XAXES))}; got {xaxis!r}.")
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "`plot_history` needs matplotlib, an optional dependency: `pip install matplotlib`."
        ) from None

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
    fig = ax.figure

    fun = np.asarray(history["fun"], dtype=np.float64)
    if xaxis == "time":
        x = np.asarray(history["time"], dtype=np.float64)
        ax.set_xlabel("time (s)")
    else:
        x = np.arange(1, fun.size + 1, dtype=np.float64)
        ax.set_xlabel("iteration")
    (line,) = ax.plot(x, fun, label=label if label is not None else "fun")
    if fun.size and np.all(fun[np.isfinite(fun)] > 0):
        ax.set_yscale("log")
    ax.set_ylabel("fun")

    norms = history.get("grad_norm")
    if grad_norm and norms is not None and len(norms):
        norms = np.asarray(norms, dtype=np.float64)
        right = ax.twinx()
        (grad_line,) = right.plot(
            x, norms, linestyle="--", color=line.get_color(), alpha=0.7, label="|grad|"
        )
        finite = norms[np.isfinite(norms)]
        if finite.size and np.all(finite > 0):
            right.set_yscale("log")
        right.set_ylabel("gradient norm")
        ax.legend(handles=[line, grad_line], loc="upper right")
    elif label is not None:
        ax.legend()
    return fig


def _history_of(result: Any) -> Mapping[str, Any]:
    # An OptimizeResult is itself a dict holding a scalar "fun": look for "history" first.
    history = getattr(result, "history", None)
    if history is None and isinstance(result, Mapping):
        history = result.get("history", result)
    if not isinstance(history, Mapping) or "fun" not in history or "time" not in history:
        raise TypeError(
            "`result` must be an OptimizeResult from `pytree_minimize.minimize` (it carries "
            f"`history`) or a history dict with 'fun' and 'time'; got {type(result).__name__}."
        )
    return history
