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
    right, in its run's colour. To compare several runs, pass a dict of labelled results
    (`{"BFGS": res1, "L-BFGS-B": res2}`): each is drawn with its label on the same axes. (Passing
    the same `ax` to several calls, each with a `label`, also works.)

    Args:
        result: The `OptimizeResult` of `pytree_minimize.minimize` (or any port), its `history`
            dict with per-iteration lists `fun`, `time` and optionally `grad_norm`, or a dict
            `{label: result}` of several of these.
        ax: A matplotlib `Axes` to draw into; None makes a new figure.
        label: Legend label of the `fun` curve of a single run; None uses "fun".
        xaxis: "iteration" (1, 2, ..., nit) or "time" (seconds since the start of the run).
        grad_norm: Whether to draw the gradient norm where the history has it.

    Returns:
        The matplotlib `Figure` that holds the axes.

    Examples:
        >>> import jax.numpy as jnp
        >>> from pytree_minimize import minimize, plot_history
        >>> def loss(p):
        ...     return jnp.sum((p["w"] - 1.0) ** 2) + 1.0
        >>> res = minimize(loss, {"w": jnp.zeros(3)})
        >>> fig = plot_history(res)
        >>> fig.axes[0].get_ylabel()
        'fun'
        >>> runs = {m: minimize(loss, {"w": jnp.zeros(3)}, method=m) for m in ("BFGS", "CG")}
        >>> fig = plot_history(runs)
        >>> [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
        ['BFGS', 'CG']
    """
    runs = _runs_of(result, label)
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
    ax.set_xlabel("time (s)" if xaxis == "time" else "iteration")
    ax.set_ylabel("fun")

    lines, grad_lines, funs, norms_seen = [], [], [], []
    right = None
    for name, history in runs:
        fun = np.asarray(history["fun"], dtype=np.float64)
        if xaxis == "time":
            x = np.asarray(history["time"], dtype=np.float64)
        else:
            x = np.arange(1, fun.size + 1, dtype=np.float64)
        (line,) = ax.plot(x, fun, label=name if name is not None else "fun")
        lines.append(line)
        funs.append(fun)
        norms = history.get("grad_norm")
        if grad_norm and norms is not None and len(norms):
            norms = np.asarray(norms, dtype=np.float64)
            if right is None:
                right = ax.twinx()
                right.set_ylabel("gradient norm")
            grad_label = "|grad|" if len(runs) == 1 else f"|grad| ({name})"
            (grad_line,) = right.plot(
                x, norms, linestyle="--", color=line.get_color(), alpha=0.7, label=grad_label
            )
            grad_lines.append(grad_line)
            norms_seen.append(norms)
    values = np.concatenate(funs) if funs else np.zeros(0)
    if values.size and np.all(values[np.isfinite(values)] > 0):
        ax.set_yscale("log")
    finite = np.concatenate(norms_seen) if norms_seen else np.zeros(0)
    finite = finite[np.isfinite(finite)]
    if right is not None and finite.size and np.all(finite > 0):
        right.set_yscale("log")
    if len(runs) > 1:
        ax.legend(handles=lines, loc="upper right")
    elif grad_lines:
        ax.legend(handles=[*lines, *grad_lines], loc="upper right")
    elif label is not None:
        ax.legend()
    return fig


def _runs_of(result: Any, label: str | None) -> list[tuple[str | None, Mapping[str, Any]]]:
    """`(label, history)` per run: one for a result or history, one per entry of a dict of
    labelled results."""
    if _is_run(result):
        return [(label, _history_of(result))]
    if isinstance(result, Mapping) and result:
        if label is not None:
            raise TypeError(
                "`label` names a single run; with a dict of results the dict's keys are the labels."
            )
        return [
            (str(name), _history_of(run, name=f"result[{name!r}]")) for name, run in result.items()
        ]
    return [(label, _history_of(result))]


def _is_run(result: Any) -> bool:
    if getattr(result, "history", None) is not None:
        return True
    return isinstance(result, Mapping) and ("history" in result or "fun" in result)


def _history_of(result: Any, *, name: str = "result") -> Mapping[str, Any]:
    # An OptimizeResult is itself a dict holding a scalar "fun": look for "history" first.
    history = getattr(result, "history", None)
    if history is None and isinstance(result, Mapping):
        history = result.get("history", result)
    if not isinstance(history, Mapping) or "fun" not in history or "time" not in history:
        raise TypeError(
            f"`{name}` must be an OptimizeResult from `pytree_minimize.minimize` (it carries "
            "`history`), a history dict with 'fun' and 'time', or a dict of such results "
            f"keyed by label; got {type(result).__name__}."
        )
    return history
