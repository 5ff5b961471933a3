"""LARS (You et al. 2017), as SimCLR trains with it: SGD with momentum and a per-layer trust ratio.

For every parameter the update ``u = g + wd * w`` is scaled by ``trust * ||w|| / ||u||`` (1 where
either norm is zero). Parameter groups with ``lars_adapt=False`` (norm layers and biases, see
:func:`~contrastkit.optim.param_groups`) get plain momentum SGD, as in SimCLR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["LARS"]


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling on top of momentum SGD (all updates on the device, no host sync).

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = LARS([w], lr=0.1, momentum=0.9, weight_decay=0.0, trust=0.001)
        >>> w.grad = torch.ones(3)
        >>> opt.step()
        >>> round(float(w.detach()[0]), 6)  # step = lr * trust * ||w|| / ||g|| * g = 0.1 * 0.001 * 1
        0.9999
    """

    def __init__(
        self,
        params: Iterable[Any],
        *,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust: float = 0.001,
        nesterov: bool = False,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0 (got {lr})")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "trust": trust, "nesterov": nesterov,
                    "lars_adapt": True}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update; ``closure`` re-evaluates the loss as in :class:`torch.optim.SGD`."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad: Tensor = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                if group["lars_adapt"]:
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(grad)
                    ratio = group["trust"] * w_norm / g_norm
                    # torch.where keeps this on the device: no .item() per parameter.
                    ratio = torch.where((w_norm > 0) & (g_norm > 0), ratio, torch.ones_like(ratio))
                    grad = grad.mul(ratio)
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = grad.detach().clone()
                else:
                    buf.mul_(group["momentum"]).add_(grad)
                update = grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.add_(update, alpha=-group["lr"])
        return loss
