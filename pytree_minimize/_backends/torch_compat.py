"""The private PyTorch API this package uses, in one place: resolved once at import and checked
by `tests/test_compat.py` against the installed torch, so that a change in torch fails a test
loudly instead of silently slowing every evaluation down.

- `torch.autograd.graph._engine_run_backward`: the engine call behind `torch.autograd.grad`,
  without its per-call argument checks and seed construction (about 15 us of the few hundred an
  evaluation takes). Called with the engine's seven positional arguments: outputs, seeds,
  keep_graph, create_graph, inputs, allow_unreachable, accumulate_grad.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Gradients = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _engine_gradient() -> Gradients | None:
    try:
        from torch.autograd.graph import _engine_run_backward
    except ImportError:  # a torch without it: the public call (tests/test_compat.py fails)
        return None

    def gradient(value: torch.Tensor, seed: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        (grad,) = _engine_run_backward((value,), (seed,), False, False, (flat,), False, False)
        return grad

    return gradient


def _public_gradient(value: torch.Tensor, seed: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(value, flat, seed)
    return grad


#: d value / d flat for a scalar `value` that depends on `flat`, seeded with `seed` (ones of
#: value's dtype): the engine's own call where this torch has it, else `torch.autograd.grad`.
ENGINE_GRADIENT: Gradients | None = _engine_gradient()
gradient: Gradients = ENGINE_GRADIENT or _public_gradient
