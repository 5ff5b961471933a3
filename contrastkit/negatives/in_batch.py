"""``in-batch``: every other sample of the batch is a negative (SimCLR, CMC without a memory bank).

For anchors from view ``i`` and positives from view ``j``, the logits are the full ``[B, B]`` score
matrix ``critic.score(z_i, z_j)`` with the positive on the diagonal, so ``K = B - 1``.

Distributed training: this sampler uses the local batch only; the all-gather across ranks arrives
with the distributed-training issue.

Example:
    >>> import torch
    >>> from contrastkit.critics.cosine import CosineCritic
    >>> critic = CosineCritic(feature_dims=(4, 4), head="none")
    >>> z = critic.embed(torch.rand(6, 4), 0)
    >>> pl = InBatchNegatives(num_views=2, dataset_size=6, embedding_dim=4).pair_logits(
    ...     critic, z, z, index=torch.arange(6), anchor_view=0, target_view=1)
    >>> pl.logits.shape, pl.target.tolist(), pl.num_negatives
    (torch.Size([6, 6]), [0, 1, 2, 3, 4, 5], 5)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from contrastkit.errors import ShapeError
from contrastkit.interfaces import Critic, PairLogits

__all__ = ["InBatchNegatives"]


class InBatchNegatives:
    """In-batch negatives: candidates are the other view's embeddings of the whole batch.

    Example:
        >>> InBatchNegatives(num_views=2, dataset_size=100, embedding_dim=128).update([], None)
    """

    def __init__(self, *, num_views: int, dataset_size: int, embedding_dim: int) -> None:
        self.num_views = num_views
        self.embedding_dim = embedding_dim

    def pair_logits(
        self,
        critic: Critic,
        anchors: Tensor,
        positives: Tensor,
        *,
        index: Tensor,
        anchor_view: int,
        target_view: int,
    ) -> PairLogits:
        """``[B, B]`` logits of each anchor against every positive of the batch; target = diagonal."""
        if anchors.shape != positives.shape:
            raise ShapeError(
                f"in-batch negatives: view {anchor_view + 1} embeddings {tuple(anchors.shape)} and "
                f"view {target_view + 1} embeddings {tuple(positives.shape)} differ in shape"
            )
        logits = critic.score(anchors, positives)
        target = torch.arange(anchors.shape[0], device=anchors.device)
        return PairLogits(logits=logits, target=target, anchor_view=anchor_view, target_view=target_view)

    def update(self, embeddings: Sequence[Tensor], index: Tensor | None) -> None:
        """Nothing to store: the negatives are recomputed from every batch."""
