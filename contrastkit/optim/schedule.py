"""Linear warm-up followed by cosine decay (or a constant rate), as a ``LambdaLR`` factor."""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["warmup_cosine"]


def warmup_cosine(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    min_ratio: float = 0.0,
    schedule: Literal["cosine", "constant"] = "cosine",
) -> float:
    """The learning-rate multiplier at optimizer step ``step`` (0-based).

    Warm-up rises linearly from ``1 / warmup_steps`` to 1; then ``cosine`` falls to ``min_ratio`` at
    ``total_steps`` and ``constant`` stays at 1.

    Example:
        >>> [round(warmup_cosine(s, total_steps=10, warmup_steps=2), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
