"""``queue``: MoCo's FIFO queue of keys from a momentum (EMA) key encoder (He et al. 2020).

MoCo ("Momentum Contrast for Unsupervised Visual Representation Learning", He, Fan, Wu, Xie &
Girshick, 2020, Sec. 3.2 and Algorithm 1) contrasts each query ``q`` (online encoder, one view)
with its key ``k+`` (key encoder, the other view of the same image) and with the ``K`` keys of
earlier batches, kept in a first-in-first-out queue::

    logits[b] = [ s(q[b], k+[b]),  s(q[b], queue_j[0]),  ...,  s(q[b], queue_j[K-1]) ]
    target[b] = 0

with ``s = critic.score`` (``q . k / tau`` for the ``cosine`` critic). The key encoder is an EMA of
the online encoder, ``theta_k <- m * theta_k + (1 - m) * theta_q`` with ``m = momentum`` (0.999):
this sampler exposes ``key_momentum``, so the :class:`~contrastkit.pipeline.Pipeline` builds a
:class:`~contrastkit.momentum.MomentumTarget`, passes its keys (computed without gradient) as the
``positives`` of every pair, and hands the keys, not the online embeddings, to :meth:`update`. The
Trainer runs the EMA after every optimizer step.

Standalone (no momentum target: the sampler used directly, or a pipeline built by hand), the given
positives are the keys: it then behaves as a queue of past embeddings.

There is one queue per view, a registered buffer ``queue`` ``[M, K, D]``, plus ``queue_index``
``[M, K]`` (the dataset index of each key, ``-1`` for the random start) and the write position
``ptr``; all three are in the pipeline's ``state_dict`` (checkpoints, ``--resume``). Like MoCo's, the
queue starts full of random unit vectors, so ``K`` is constant from the first step. Anchors of view
``i`` scored towards view ``j`` use view ``j``'s queue.

``update`` enqueues the step's keys of every view, oldest overwritten first, with one
``index_copy`` (positions ``(ptr + arange(n)) % K``, no loop, no host sync); it makes a new
``queue`` tensor rather than writing in place, because the step's logits (whose backward has not run
yet) hold the old one for the anchors' gradient. A batch larger than
the queue keeps its last ``K`` keys, exactly what enqueuing one key at a time would leave. ``K`` need
not be a multiple of the batch size (MoCo asserts it; wrap-around makes it unnecessary here).

``exclude_same_index = true`` (default; MoCo has no such option) masks (``-inf``) the queued keys of
the anchor's own sample: when the dataset is not much larger than the queue, older keys of the same
image are still queued and would otherwise be false negatives.

Distributed training: when ``torch.distributed`` is initialised, :meth:`update` all-gathers every
rank's keys and indices (in rank order) and enqueues the whole global batch on every rank, so every
rank holds the same queue (as MoCo's ``concat_all_gather``). Every rank must call ``update`` every
step with the same batch size. MoCo's shuffling batch norm (keys computed on a batch shuffled across
ranks) is not implemented: use an encoder without batch norm, or accept the leak it guards against.

Example:
    >>> import torch
    >>> from contrastkit.critics.cosine import CosineCritic
    >>> critic = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.5)
    >>> queue = QueueNegatives(num_views=2, dataset_size=100, embedding_dim=8, size=6)
    >>> keys = [critic.embed(torch.randn(4, 8), view) for view in (0, 1)]
    >>> queue.update(keys, torch.arange(4))  # slots 0-3 now hold samples 0-3's keys
    >>> int(queue.ptr), queue.queue_index[1].tolist(), bool(torch.equal(queue.queue[1, :4], keys[1]))
    (4, [0, 1, 2, 3, -1, -1], True)
    >>> pair = queue.pair_logits(critic, keys[0], keys[1], index=torch.arange(4), anchor_view=0, target_view=1)
    >>> pair.logits.shape, pair.target.tolist()  # column 0 scores the key, the other 6 the queue
    (torch.Size([4, 7]), [0, 0, 0, 0])
    >>> pair.logits[:, 1:5].isinf().int().tolist()  # each anchor's own queued key is masked
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter
from contrastkit.interfaces import Critic, PairLogits
from contrastkit.negatives._checks import check_pair_inputs, check_sizes, gathered_update_rows

__all__ = ["QueueNegatives", "enqueue_positions", "fifo_slots"]


def enqueue_positions(ptr: Tensor, count: int, size: int) -> Tensor:
    """The queue slots ``(ptr + arange(count)) % size`` written by enqueuing ``count <= size`` keys.

    Example:
        >>> import torch
        >>> enqueue_positions(torch.tensor(6), 3, 8).tolist()
        [6, 7, 0]
    """
    return (ptr + torch.arange(count, device=ptr.device)) % size


def fifo_slots(ptr: Tensor, count: int, size: int) -> tuple[Tensor, int]:
    """Where ``count`` new rows go in a FIFO of ``size`` written at ``ptr``: ``(positions, skip)``.

    Only the last ``size`` rows survive (``skip`` leading rows are dropped), at the slots one-by-one
    enqueuing would leave them; the next write position is ``(ptr + count) % size``.

    Example:
        >>> import torch
        >>> positions, skip = fifo_slots(torch.tensor(1), 5, 3)
        >>> positions.tolist(), skip
        ([0, 1, 2], 2)
    """
    skip = max(0, count - size)
    return enqueue_positions(ptr + skip, count - skip, size), skip


class QueueNegatives(nn.Module):
    """One FIFO queue of ``size`` keys per view; every queued key is a negative of every anchor.

    ``momentum`` is the key encoder's EMA rate, exposed as ``key_momentum`` for the pipeline.

    Example:
        >>> sampler = QueueNegatives(num_views=3, dataset_size=50, embedding_dim=4, size=32)
        >>> tuple(sampler.queue.shape), sampler.num_negatives, sampler.key_momentum
        ((3, 32, 4), 32, 0.999)
    """

    queue: Tensor
    queue_index: Tensor
    ptr: Tensor

    def __init__(
        self,
        *,
        num_views: int,
        dataset_size: int,
        embedding_dim: int,
        size: int = 65536,
        momentum: float = 0.999,
        exclude_same_index: bool = True,
    ) -> None:
        super().__init__()
        del dataset_size  # not needed: the queue's size does not depend on the dataset
        check_sizes(num_views=num_views, embedding_dim=embedding_dim)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidParameter("size", "must be an int >= 1", size)
        if isinstance(momentum, bool) or not 0.0 <= float(momentum) <= 1.0:
            raise InvalidParameter("momentum", "must be in [0, 1]", momentum)
        self.num_views = int(num_views)
        self.embedding_dim = int(embedding_dim)
        self.size = int(size)
        #: ``K``: every queued key is a negative of every anchor.
        self.num_negatives = self.size
        #: Asks the pipeline for a momentum (EMA) key encoder with this ``m``.
        self.key_momentum = float(momentum)
        self.exclude_same_index = bool(exclude_same_index)
        start = F.normalize(torch.randn(self.num_views, self.size, self.embedding_dim), dim=-1)
        self.register_buffer("queue", start)
        self.register_buffer("queue_index", torch.full((self.num_views, self.size), -1, dtype=torch.int64))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.int64))

    def pair_logits(self, critic: Critic, anchors: Tensor, positives: Tensor, *, index: Tensor, anchor_view: int,
                    target_view: int) -> PairLogits:
        """``[B, K+1]`` logits: column 0 scores the positive (key), the rest ``target_view``'s queue."""
        check_pair_inputs("queue", "queue", self.embedding_dim, anchors, positives, index, anchor_view, target_view)
        keys = self.queue[target_view].to(anchors.dtype)  # [K, D], shared by every anchor: one matmul
        positive = critic.score(anchors, positives.unsqueeze(1))  # [B, 1]
        negatives = critic.score(anchors, keys)  # [B, K]
        if self.exclude_same_index:
            own = self.queue_index[target_view][None, :] == index.to(self.queue_index.device)[:, None]
            negatives = negatives.masked_fill(own.to(negatives.device), float("-inf"))
        logits = torch.cat([positive, negatives], dim=1)
        target = torch.zeros(anchors.shape[0], dtype=torch.int64, device=anchors.device)
        return PairLogits(logits=logits, target=target, anchor_view=anchor_view, target_view=target_view)

    @torch.no_grad()
    def update(self, embeddings: Sequence[Tensor], index: Tensor) -> None:
        """Enqueue the step's ``M`` keys ``[B, D]`` (all ranks' under DDP), overwriting the oldest."""
        keys, index = gathered_update_rows("queue", embeddings, index, num_views=self.num_views,
                                           embedding_dim=self.embedding_dim, store=self.queue)
        count = keys.shape[1]
        positions, skip = fifo_slots(self.ptr, count, self.size)
        keys, index = keys[:, skip:], index[skip:]
        # Out of place: this step's logits saved the old queue for their backward (the gradient w.r.t.
        # the anchors needs it), so writing into it would break that backward. One [M, K, D] copy a step.
        self.queue = self.queue.index_copy(1, positions, keys)
        self.queue_index.index_copy_(1, positions, index.expand(self.num_views, -1))
        self.ptr.copy_((self.ptr + count) % self.size)

    def extra_repr(self) -> str:
        return (
            f"num_views={self.num_views}, embedding_dim={self.embedding_dim}, size={self.size}, "
            f"momentum={self.key_momentum}, exclude_same_index={self.exclude_same_index}"
        )
