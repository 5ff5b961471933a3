"""Shared test cases for the logit objectives: cosine-critic logits with excluded (-inf) columns."""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def cosine_case(seed: int, excluded_fraction: float = 0.3) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Cosine-critic logits cos / t [B, K+1] (float64), random sizes and targets, some -inf columns."""
    gen = torch.Generator().manual_seed(seed)
    b = int(torch.randint(1, 24, (1,), generator=gen))
    k = int(torch.randint(1, 30, (1,), generator=gen))
    d = int(torch.randint(2, 12, (1,), generator=gen))
    t = float(torch.empty(1, dtype=torch.float64).uniform_(0.1, 1.0, generator=gen))
    anchors = torch.nn.functional.normalize(torch.randn(b, d, generator=gen, dtype=torch.float64), dim=-1)
    candidates = torch.nn.functional.normalize(torch.randn(b, k + 1, d, generator=gen, dtype=torch.float64), dim=-1)
    logits = torch.einsum("bd,bkd->bk", anchors, candidates) / t
    target = torch.randint(0, k + 1, (b,), generator=gen)
    excluded = torch.rand(b, k + 1, generator=gen) < excluded_fraction
    if b > 1 and excluded_fraction > 0:
        excluded[-1] = True  # one anchor keeps no negative at all
    excluded[torch.arange(b), target] = False
    return logits.masked_fill(excluded, NEG_INF), target, t


def gradcheck_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float64 logits [5, 6] (requires grad), targets, and excluded columns, one anchor with none left."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.tensor([0, 3, 1, 5, 2])
    excluded = torch.zeros(5, 6, dtype=torch.bool)
    excluded[0, 4] = excluded[1, 0] = excluded[3, 1] = True
    excluded[2, [0, 2, 3, 4, 5]] = True  # anchor 2: every negative excluded
    return logits, target, excluded


def inf_leaf_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits with -inf entries (requires grad) and their targets."""
    logits = torch.tensor([[1.0, NEG_INF, -0.5], [NEG_INF, 0.3, NEG_INF]], requires_grad=True)
    return logits, torch.tensor([0, 1])
