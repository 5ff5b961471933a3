"""``Pipeline.describe()``: the resolved structure in a few lines, as ``--dry-run`` and the run header print it.

Example:
    >>> from contrastkit.pipeline import Pipeline
    >>> print(summarize(Pipeline(encoder={"name": "convnet", "width": 8})).splitlines()[1])
    augment      none
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contrastkit.interfaces import describe
from contrastkit.optional_hooks import TemperedCritic

if TYPE_CHECKING:
    from contrastkit.pipeline.model import Pipeline

__all__ = ["summarize"]


def summarize(pipeline: Pipeline) -> str:
    """A multi-line summary: views and channels, encoders and feature sizes, critic, negatives, objective.

    Example:
        >>> from contrastkit.pipeline import Pipeline
        >>> print(summarize(Pipeline(encoder={"name": "convnet", "width": 8})).splitlines()[0])
        views        color-split: 2 views, channels (1, 2), graph core -> pairs v1-v2
    """
    p = pipeline
    pairs = ", ".join(f"v{i + 1}-v{j + 1}" for i, j in p.pairs)
    lines = [
        f"views        {describe(p.view_maker)}: {len(p.view_channels)} views, "
        f"channels {p.view_channels}, graph {p.graph} -> pairs {pairs}",
        "augment      " + ", ".join(
            f"v{i + 1} {describe(p.augmentations[k])}" for i, k in enumerate(p.view_augmentation)
        )
        if len(p.augmentations) > 1
        else f"augment      {describe(p.augment)}",
    ]
    for i, c in enumerate(p.view_channels):
        enc = p.encoders[p.view_encoder[i]]
        params = sum(q.numel() for q in enc.parameters())
        shared = " (shared)" if len(p.encoders) == 1 and len(p.view_channels) > 1 else ""
        lines.append(
            f"encoder v{i + 1}   {describe(enc)}{shared}: in_channels {c} -> features {p.feature_dims[i]} "
            f"({params / 1e6:.2f} M parameters)"
        )
    temperature = p.critic.temperature if isinstance(p.critic, TemperedCritic) else None
    lines += [
        f"critic       {describe(p.critic)}: embedding {p.critic.embedding_dim}"
        + (f", temperature {temperature:g}" if temperature is not None else ""),
        f"negatives    {describe(p.negatives)}",
        f"objective    {describe(p.objective)}" + (" (two-way)" if p.two_way else " (one-way)"),
        f"regularizer  {describe(p.regularizer) if p.regularizer is not None else 'none'}",
    ]
    if p.dataset is not None:
        lines.insert(0, f"data         {describe(p.dataset)}: {len(p.dataset)} samples")
    return "\n".join(lines)
