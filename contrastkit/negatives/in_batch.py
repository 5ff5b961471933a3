"""``in-batch``: every other sample of the batch is a negative (SimCLR, CMC without a memory bank).

For anchors ``z_i`` from view ``i`` and positives ``z_j`` from view ``j`` (batch ``B``), the logits
are the score matrix ``critic.score(z_i, z_j)`` ``[B, B]`` with the positive on the diagonal, so
``K = B - 1``.

``same_view=True`` (asked for by ``infonce`` with ``same_view_negatives = true``, SimCLR's NT-Xent)
adds the anchor view's other samples as negatives: row ``b`` is ``[s(z_i[b], z_j[0..B-1]),
s(z_i[b], z_i[c]) for c != b]``, ``[B, 2B-1]``, target ``b``, so ``K = 2B - 2``. The anchor's score
with itself is left out (not set to ``-inf``), so ``PairLogits.num_negatives`` is the true ``K``.
It costs one ``[B, B]`` block more than the cross-view form, plus the concatenated
``[B, 2B-1]`` logits that ``cross_entropy`` reads.

``momentum = m`` (MoCo v3, Chen, Xie & He 2021) asks the pipeline for an EMA key encoder: the
candidates are then its keys (no gradient), ``logits = score(q_i, k_j)`` over the batch, and the
two-way sum is MoCo v3's symmetric ``ctr(q1, k2) + ctr(q2, k1)``.

``positive_mask(pair, labels)`` marks the candidates sharing the anchor's label in this layout, for
objectives with several positives per row (``supcon``).

Distributed training: when ``torch.distributed`` is initialised with ``world_size = W > 1``, the
candidates are the embeddings of the whole *global* batch: each rank all-gathers the positives
``z_j`` (and, with ``same_view``, the anchors ``z_i``) of every rank in rank order with
:func:`contrastkit.distributed.gather_with_grad`, which keeps the gradients of every rank's
negatives. Each rank scores only its own ``B`` anchors against them: logits ``[B, W*B]``
(``[B, 2*W*B - 1]`` with ``same_view``), target ``rank * B + b``, ``K = W*B - 1`` (``2*W*B - 2``).
Each rank's loss is the mean over its own anchors; their mean over ranks equals the loss of one
process with the whole ``W*B`` batch, and ``DistributedDataParallel``'s gradient average equals
that process's gradient (see :mod:`contrastkit.distributed` for why). Every rank must have the same
batch size each step (``DistributedSampler(drop_last=True)``). Without ``torch.distributed`` (or
with ``W = 1``) nothing is gathered. With ``train.accumulate_steps > 1`` each micro-batch is
contrasted on its own.

Example:
    >>> import torch
    >>> from contrastkit.critics.cosine import CosineCritic
    >>> critic = CosineCritic(feature_dims=(4, 4), head="none")
    >>> z = critic.embed(torch.rand(6, 4), 0)
    >>> sampler = InBatchNegatives(num_views=2, dataset_size=6, embedding_dim=4)
    >>> pl = sampler.pair_logits(critic, z, z, index=torch.arange(6), anchor_view=0, target_view=1)
    >>> pl.logits.shape, pl.target.tolist(), pl.num_negatives
    (torch.Size([6, 6]), [0, 1, 2, 3, 4, 5], 5)
    >>> sampler.pair_logits(critic, z, z, index=torch.arange(6), anchor_view=0, target_view=1,
    ...                     same_view=True).num_negatives   # NT-Xent: 2B - 2
    10
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from contrastkit import distributed
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import Critic, PairLogits

__all__ = ["InBatchNegatives", "drop_diagonal"]


def drop_diagonal(scores: Tensor) -> Tensor:
    """A square ``[B, B]`` matrix without its diagonal, ``[B, B-1]``, each row's order kept.

    One copy of the off-diagonal entries (the flattened matrix read with stride ``B + 1``).

    Example:
        >>> import torch
        >>> drop_diagonal(torch.arange(9.0).view(3, 3)).tolist()
        [[1.0, 2.0], [3.0, 5.0], [6.0, 7.0]]
    """
    n = scores.shape[0]
    if scores.ndim != 2 or scores.shape[1] != n:
        raise ShapeError(f"drop_diagonal: expected a square matrix, got {tuple(scores.shape)}")
    return scores.flatten()[1:].view(n - 1, n + 1)[:, :-1].reshape(n, n - 1)


class InBatchNegatives:
    """In-batch negatives: candidates are the other view's embeddings of the whole (global) batch.

    ``pair_logits(..., same_view=True)`` adds the anchor view's other samples (SimCLR's NT-Xent).

    Example:
        >>> InBatchNegatives(num_views=2, dataset_size=100, embedding_dim=128).update([], None)
    """

    def __init__(self, *, num_views: int, dataset_size: int, embedding_dim: int,
                 momentum: float | None = None) -> None:
        if momentum is not None and (isinstance(momentum, bool) or not 0.0 <= float(momentum) <= 1.0):
            raise InvalidParameter("momentum", "must be in [0, 1], or omitted for no momentum encoder", momentum)
        self.num_views = num_views
        self.embedding_dim = embedding_dim
        #: With ``momentum`` the pipeline builds an EMA key encoder whose keys are the candidates (MoCo v3).
        self.key_momentum = None if momentum is None else float(momentum)

    def pair_logits(self, critic: Critic, anchors: Tensor, positives: Tensor, *, index: Tensor, anchor_view: int,
                    target_view: int, same_view: bool = False) -> PairLogits:
        """Each anchor against every positive of the batch (target: its own), plus its own view's others.

        ``same_view=False``: ``[B, W*B]``; ``same_view=True``: ``[B, 2*W*B - 1]`` (``W`` ranks).
        """
        if anchors.ndim != 2 or anchors.shape != positives.shape:
            raise ShapeError(
                f"in-batch negatives: view {anchor_view + 1} embeddings {tuple(anchors.shape)} and "
                f"view {target_view + 1} embeddings {tuple(positives.shape)} must both be [B, D]"
            )
        batch = anchors.shape[0]
        gather = distributed.world_size() > 1
        offset = distributed.rank() * batch if gather else 0
        all_positives = distributed.gather_with_grad(positives) if gather else positives
        target = torch.arange(offset, offset + batch, device=anchors.device)
        cross = critic.score(anchors, all_positives)
        if not same_view:
            return PairLogits(logits=cross, target=target, anchor_view=anchor_view, target_view=target_view)

        # Same-view negatives: every anchor-view embedding but the anchor itself. The other ranks'
        # blocks come from the gathered anchors; the local block is scored from the local anchors
        # and loses its diagonal (the anchor's similarity with itself).
        blocks = [cross]
        all_anchors = distributed.gather_with_grad(anchors) if gather else anchors
        if offset > 0:
            blocks.append(critic.score(anchors, all_anchors[:offset]))
        blocks.append(drop_diagonal(critic.score(anchors, anchors)))
        if offset + batch < all_anchors.shape[0]:
            blocks.append(critic.score(anchors, all_anchors[offset + batch :]))
        logits = torch.cat(blocks, dim=1)
        return PairLogits(logits=logits, target=target, anchor_view=anchor_view, target_view=target_view)

    def reverse_pair_logits(self, forward: PairLogits) -> PairLogits | None:
        """The reverse direction's logits as the forward's transposed, or ``None`` where that is wrong.

        For a symmetric critic (``score(a, b) == score(b, a).T``, e.g. ``cosine``) the scores of view
        ``j``'s anchors against view ``i``'s batch are the transpose of the forward ``[B, B]`` matrix,
        so two-way InfoNCE needs one matrix product, not two (and one fewer in the backward). The
        pipeline calls this only for a symmetric critic without same-view negatives or momentum
        keys. Under ``torch.distributed`` each rank holds only its own anchors' rows of the global
        matrix, so this returns ``None`` and the pipeline scores the reverse direction itself.

        Example:
            >>> import torch
            >>> forward = PairLogits(logits=torch.arange(4.0).view(2, 2), target=torch.arange(2),
            ...                      anchor_view=0, target_view=1)
            >>> reverse = InBatchNegatives(num_views=2, dataset_size=2, embedding_dim=2).reverse_pair_logits(forward)
            >>> reverse.logits.tolist(), (reverse.anchor_view, reverse.target_view)
            ([[0.0, 2.0], [1.0, 3.0]], (1, 0))
        """
        logits = forward.logits
        if distributed.world_size() > 1 or logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
            return None
        return PairLogits(logits=logits.T, target=forward.target, anchor_view=forward.target_view,
                          target_view=forward.anchor_view)

    def positive_mask(self, pair: PairLogits, labels: Tensor) -> Tensor:
        """``[B, K+1]`` bool: the candidates sharing the anchor's label, in this sampler's column layout.

        The cross-view block is the (global) batch in rank order; with same-view negatives the anchor
        view's other samples follow, the anchor itself left out (see the module docstring). Labels
        of other ranks are all-gathered. The row's own positive (``target``) is always ``True``.

        Example:
            >>> import torch
            >>> sampler = InBatchNegatives(num_views=2, dataset_size=4, embedding_dim=2)
            >>> pair = PairLogits(logits=torch.zeros(3, 5), target=torch.arange(3), anchor_view=0, target_view=1)
            >>> sampler.positive_mask(pair, torch.tensor([7, 8, 7])).int().tolist()  # [B, B + B - 1]
            [[1, 0, 1, 0, 1], [0, 1, 0, 0, 0], [1, 0, 1, 1, 0]]
        """
        batch = labels.shape[0]
        gather = distributed.world_size() > 1
        offset = distributed.rank() * batch if gather else 0
        all_labels = distributed.gather_with_grad(labels) if gather else labels
        same = labels.view(-1, 1) == all_labels.view(1, -1)  # [B, W*B]
        columns = pair.logits.shape[1]
        if columns == all_labels.shape[0]:
            return same
        if columns != 2 * all_labels.shape[0] - 1:
            raise ShapeError(f"in-batch positive_mask: logits {tuple(pair.logits.shape)} are not this sampler's "
                             f"layout for a batch of {batch} x {all_labels.shape[0] // batch} rank(s)")
        local = same[:, offset : offset + batch]
        return torch.cat([same, same[:, :offset], drop_diagonal(local), same[:, offset + batch :]], dim=1)

    def update(self, embeddings: Sequence[Tensor], index: Tensor | None) -> None:
        """Nothing to store: the negatives are recomputed from every batch."""
